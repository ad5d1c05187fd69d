package export

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

var (
	usageAdmin = Principal{UserID: 1, KeyID: 1, Admin: true}
	usageUser  = Principal{UserID: 2, KeyID: 2}
)

func TestParseUsageLogParams(t *testing.T) {
	t.Parallel()
	p, err := ParseUsageLogParams(json.RawMessage(`{
		"user_id": 4, "key_id": 10, "provider_id": 0, "session_id": "  sess_abc  ",
		"start_time": 1769682600000, "end_time": "2026-01-30T00:00:00+08:00",
		"exclude_status_200": true, "model": "gpt-4.1", "endpoint": " /v1/Messages/ ",
		"min_retry_count": 2, "header_lang": "en", "timezone": "Asia/Shanghai"}`), usageAdmin)
	if err != nil {
		t.Fatal(err)
	}
	want := UsageLogParams{
		UserID: ptr[int64](4), KeyID: ptr[int64](10), ProviderID: ptr[int64](0), SessionID: "sess_abc",
		StartTime: ptr(time.Date(2026, 1, 29, 10, 30, 0, 0, time.UTC)), EndTime: ptr(time.Date(2026, 1, 29, 16, 0, 0, 0, time.UTC)),
		ExcludeStatus200: true, Model: "gpt-4.1", Endpoint: "/v1/Messages/", MinRetryCount: 2, HeaderLang: "en", Timezone: "Asia/Shanghai",
	}
	if a, b := mustJSON(t, p), mustJSON(t, want); a != b {
		t.Errorf("got  %s\nwant %s", a, b)
	}

	d, err := ParseUsageLogParams(nil, usageAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if got := mustJSON(t, d); got != `{"header_lang":"zh","timezone":"UTC"}` {
		t.Errorf("admin defaults %s", got)
	}

	// A status code makes exclude_status_200 moot; the stored params say so.
	s, err := ParseUsageLogParams(json.RawMessage(`{"status_code":500,"exclude_status_200":true}`), usageAdmin)
	if err != nil || *s.StatusCode != 500 || s.ExcludeStatus200 {
		t.Errorf("status_code with exclude_status_200: %+v, %v", s, err)
	}
}

func TestParseUsageLogParamsForcesUsersOwnRows(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{`{}`, `{"user_id":1}`, `{"user_id":2}`, `{"user_id":-7}`, `{"user_id":null}`} {
		p, err := ParseUsageLogParams(json.RawMessage(raw), usageUser)
		if err != nil {
			t.Errorf("%s: %v", raw, err)
			continue
		}
		if p.UserID == nil || *p.UserID != usageUser.UserID {
			t.Errorf("%s: user_id %v, want the caller's own (2)", raw, p.UserID)
		}
	}
	p, err := ParseUsageLogParams(json.RawMessage(`{"user_id":7}`), AdminToken())
	if err != nil || *p.UserID != 7 {
		t.Errorf("admin token asking for user 7: %+v, %v", p, err)
	}
}

func TestParseUsageLogParamsErrors(t *testing.T) {
	t.Parallel()
	for raw, field := range map[string]string{
		`{"user_id":0}`:      "params.user_id",
		`{"user_id":"x"}`:    "params.user_id",
		`{"key_id":0}`:       "params.key_id",
		`{"provider_id":-1}`: "params.provider_id",
		`{"session_id":"` + strings.Repeat("s", 65) + `"}`:                        "params.session_id",
		`{"session_id":"` + strings.Repeat("会", 65) + `"}`:                        "params.session_id",
		`{"start_time":"last week"}`:                                              "params.start_time",
		`{"end_time":1.5}`:                                                        "params.end_time",
		`{"start_time":1000,"end_time":1000}`:                                     "params.end_time",
		`{"start_time":"2026-01-02T00:00:00Z","end_time":"2026-01-01T00:00:00Z"}`: "params.end_time",
		`{"status_code":99}`:                                                      "params.status_code",
		`{"status_code":600}`:                                                     "params.status_code",
		`{"exclude_status_200":"yes"}`:                                            "params.exclude_status_200",
		`{"model":"` + strings.Repeat("m", 129) + `"}`:                            "params.model",
		`{"endpoint":"` + strings.Repeat("e", 257) + `"}`:                         "params.endpoint",
		`{"min_retry_count":-1}`:                                                  "params.min_retry_count",
		`{"header_lang":"fr"}`:                                                    "params.header_lang",
		`{"header_lang":"ZH"}`:                                                    "params.header_lang",
		`{"timezone":"Mars/Olympus"}`:                                             "params.timezone",
		`{"timezone":"Local"}`:                                                    "params.timezone",
		`{"limit":10}`:                                                            "params.limit",
		`"csv"`:                                                                   "params",
	} {
		_, err := ParseUsageLogParams(json.RawMessage(raw), usageAdmin)
		e, ok := err.(*Error)
		if !ok || e.Kind != KindInvalid {
			t.Errorf("%.60s: %v, want an invalid-input error", raw, err)
			continue
		}
		if _, ok := e.Fields[field]; !ok {
			t.Errorf("%.60s: fields %v do not name %s", raw, e.Fields, field)
		}
	}
	// Exactly 64 characters is fine.
	if _, err := ParseUsageLogParams(json.RawMessage(`{"session_id":"`+strings.Repeat("会", 64)+`"}`), usageAdmin); err != nil {
		t.Errorf("64-character session id: %v", err)
	}
}

func TestUsageLogSpec(t *testing.T) {
	t.Parallel()
	s := UsageLogSpec()
	if s.Type != TypeUsageLogs || s.AdminOnly || s.Formats[0] != FormatCSV || len(s.Formats) != 5 {
		t.Fatalf("spec %+v", s)
	}
	created := time.Date(2026, 1, 29, 18, 30, 5, 0, time.FixedZone("CST", 8*3600))
	for f, want := range map[Format][2]string{
		FormatCSV:     {"usage-logs-20260129-103005.csv", "text/csv; charset=utf-8"},
		FormatCSVGz:   {"usage-logs-20260129-103005.csv.gz", "application/gzip"},
		FormatXLSX:    {"usage-logs-20260129-103005.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
		FormatJSONL:   {"usage-logs-20260129-103005.jsonl", "application/x-ndjson"},
		FormatParquet: {"usage-logs-20260129-103005.parquet", "application/vnd.apache.parquet"},
	} {
		j := &Job{Format: f, CreatedAt: created}
		if got := s.Filename(j, created.Add(time.Hour)); got != want[0] {
			t.Errorf("%s: filename %q, want %q", f, got, want[0])
		}
		if got := s.ContentType(f); got != want[1] {
			t.Errorf("%s: content type %q, want %q", f, got, want[1])
		}
	}
	raw, err := s.Parse(json.RawMessage(`{"user_id":9,"header_lang":"en"}`), usageUser)
	if err != nil || string(raw) != `{"user_id":2,"header_lang":"en","timezone":"UTC"}` {
		t.Errorf("stored params %s, %v", raw, err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
