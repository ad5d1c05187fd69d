package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/seed"
	"github.com/hubexport/hubexport/internal/usagelog"
)

// usageE2EFixture adds two requests on 2026-02-01, after all seeded traffic: an admin's retried
// request with a cost past 15 significant digits, and alice's warmup (no provider, NULL cost).
func usageE2EFixture(s *stack) {
	s.exec(`INSERT INTO message_request (id, user_id, key, provider_id, model, original_model, endpoint, status_code,
		input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens, cost_usd, duration_ms,
		session_id, provider_chain, blocked_by, created_at) VALUES
		(900002, 1, $1, 1, 'claude-sonnet-4-5-20250929', 'claude-sonnet-4-5-20250929', '/v1/messages', 200,
			100, 200, 0, 50, 12.345678901234567, 1500, 'sess_e2e',
			'[{"id":1,"reason":"retry_failed","statusCode":500},{"id":1,"reason":"retry_success","statusCode":200}]', NULL, '2026-02-01T03:04:05.678Z'),
		(900001, 2, $2, 0, 'claude-haiku-4-5-20251001', 'claude-haiku-4-5-20251001', '/v1/messages', 200,
			NULL, NULL, NULL, NULL, NULL, 2, 'sess_w', NULL, 'warmup', '2026-02-01T03:00:00Z')`,
		seed.AdminKey, seed.UserKey)
}

const (
	usageE2EHeader = "\uFEFFTime,User,Key,Provider,Model,Original Model,Endpoint,Status Code,Input Tokens,Output Tokens,Cache Write 5m,Cache Write 1h,Cache Read,Total Tokens,Cost (USD),Duration (ms),Session ID,Retry Count\n"
	usageE2EAdmin  = "2026-02-01T11:04:05.678+08:00,Admin 管理员,admin key,Anthropic Official,claude-sonnet-4-5-20250929,claude-sonnet-4-5-20250929,/v1/messages,200,100,200,0,0,50,350,12.3456789012346,1500,sess_e2e,1\n"
	usageE2EAlice  = "2026-02-01T11:00:00.000+08:00,alice,alice laptop 💻,,claude-haiku-4-5-20251001,claude-haiku-4-5-20251001,/v1/messages,200,0,0,0,0,0,0,0,2,sess_w,0\n"
)

// usageExport runs one usage_logs export to its end and returns the job and the file.
func usageExport(t *testing.T, s *stack, token, format string, params map[string]any) (job, []byte) {
	t.Helper()
	body := map[string]any{"type": "usage_logs", "params": params}
	if format != "" {
		body["format"] = format
	}
	j := s.create(token, body)
	j = s.wait(token, j.ID, 60*time.Second)
	if j.Status != "succeeded" {
		t.Fatalf("%s export %v: %s %+v", format, params, j.Status, j.Error)
	}
	file, _, _ := s.download(token, j.ID)
	sum := sha256.Sum256(file)
	if j.Result.SHA256 != hex.EncodeToString(sum[:]) || j.Result.SizeBytes != int64(len(file)) {
		t.Errorf("%s export: result %+v does not describe the %d-byte file", format, j.Result, len(file))
	}
	if j.Progress.Percent != 100 || j.Progress.Done != j.Result.Rows {
		t.Errorf("%s export: progress %+v for %d rows", format, j.Progress, j.Result.Rows)
	}
	return j, file
}

func TestUsageLogExport(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	usageE2EFixture(s)
	s.start("serve")
	window := func(extra map[string]any) map[string]any {
		p := map[string]any{"start_time": "2026-02-01T00:00:00Z", "end_time": 1769990400000, "header_lang": "en", "timezone": "Asia/Shanghai"}
		for k, v := range extra {
			p[k] = v
		}
		return p
	}

	j, csvFile := usageExport(t, s, adminToken, "", window(nil))
	if want := usageE2EHeader + usageE2EAdmin + usageE2EAlice; string(csvFile) != want {
		t.Errorf("admin CSV\n%q\nwant\n%q", csvFile, want)
	}
	if !strings.HasPrefix(j.Result.Filename, "usage-logs-") || !strings.HasSuffix(j.Result.Filename, ".csv") ||
		j.Result.ContentType != "text/csv; charset=utf-8" || j.Result.Rows != 2 {
		t.Errorf("admin CSV result %+v", j.Result)
	}

	// A user asking for the admin's rows gets their own, and the stored params say so.
	j, userFile := usageExport(t, s, seed.UserKey, "csv", window(map[string]any{"user_id": seed.AdminUserID}))
	if want := usageE2EHeader + usageE2EAlice; string(userFile) != want {
		t.Errorf("user CSV\n%q\nwant\n%q", userFile, want)
	}
	r := s.do("GET", "/api/v1/exports/"+j.ID, seed.UserKey, nil)
	var withParams struct {
		Params map[string]any `json:"params"`
	}
	r.json(t, &withParams)
	if withParams.Params["user_id"] != float64(seed.UserID) {
		t.Errorf("user's job params %v: user_id not forced to %d", withParams.Params, seed.UserID)
	}

	// csv.gz is the same bytes, gzipped.
	j, gz := usageExport(t, s, adminToken, "csv.gz", window(nil))
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	if !bytes.Equal(plain, csvFile) || j.Result.ContentType != "application/gzip" || !strings.HasSuffix(j.Result.Filename, ".csv.gz") {
		t.Errorf("csv.gz: %q (%+v), want the CSV gzipped", plain, j.Result)
	}

	// JSON Lines: one object per row.
	j, lines := usageExport(t, s, adminToken, "jsonl", window(nil))
	var objs []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(lines))
	for sc.Scan() {
		var o map[string]any
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			t.Fatalf("jsonl line %q: %v", sc.Bytes(), err)
		}
		objs = append(objs, o)
	}
	if len(objs) != 2 || objs[0]["cost_usd"] != "12.345678901234567" || objs[0]["retry_count"] != float64(1) ||
		objs[1]["provider"] != nil || objs[0]["time"] != "2026-02-01T11:04:05.678+08:00" || j.Result.ContentType != "application/x-ndjson" {
		t.Errorf("jsonl %s (%+v)", lines, j.Result)
	}

	if objs[0]["id"] != float64(900002) || objs[0]["user_id"] != float64(1) || objs[1]["provider_id"] != float64(0) ||
		objs[1]["key_id"] == nil {
		t.Errorf("jsonl ids: %s", lines)
	}

	// Parquet: the JSON Lines' rows and values, typed; rendered as CSV records they are the CSV.
	j, pq := usageExport(t, s, adminToken, "parquet", window(nil))
	if !strings.HasSuffix(j.Result.Filename, ".parquet") || j.Result.ContentType != "application/vnd.apache.parquet" || j.Result.Rows != 2 {
		t.Errorf("parquet result %+v", j.Result)
	}
	pqRows := parquetMatchesJSONL(t, pq, lines)
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	rendered := []byte(usageE2EHeader)
	for _, r := range pqRows {
		rendered = usagelog.AppendCSVRecord(rendered, usageRowOf(t, r), shanghai)
	}
	if !bytes.Equal(rendered, csvFile) {
		t.Errorf("parquet rows as CSV\n%q\nwant the CSV\n%q", rendered, csvFile)
	}

	// XLSX opens, with the rows and a summary.
	j, book := usageExport(t, s, adminToken, "xlsx", window(nil))
	f, err := excelize.OpenReader(bytes.NewReader(book))
	if err != nil {
		t.Fatalf("xlsx does not open: %v", err)
	}
	defer f.Close()
	rows, _ := f.GetRows("Usage Logs")
	if got := f.GetSheetList(); len(got) != 2 || got[1] != "Hourly Summary" || len(rows) != 3 || rows[1][1] != "Admin 管理员" ||
		j.Result.ContentType != "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" {
		t.Errorf("xlsx sheets %q, rows %q, result %+v", got, rows, j.Result)
	}

	// Without a window: the user's whole export is exactly the admin's export of that user.
	_, userAll := usageExport(t, s, seed.UserKey, "", map[string]any{"user_id": 3})
	_, adminOfUser := usageExport(t, s, adminToken, "", map[string]any{"user_id": seed.UserID})
	_, adminAll := usageExport(t, s, adminToken, "", nil)
	if !bytes.Equal(userAll, adminOfUser) || bytes.Count(userAll, []byte("\n")) < 10 {
		t.Errorf("user's export (%d bytes) differs from the admin's export of that user (%d bytes)", len(userAll), len(adminOfUser))
	}
	for _, line := range strings.Split(strings.TrimSuffix(string(userAll), "\n"), "\n")[1:] {
		if !strings.Contains(line, ",alice,") {
			t.Fatalf("user's export has another user's row: %q", line)
		}
	}
	if len(adminAll) <= len(userAll) {
		t.Errorf("admin's whole export (%d bytes) is not larger than one user's (%d)", len(adminAll), len(userAll))
	}

	// The whole seeded hub: Parquet and JSON Lines hold the same values, and the CSV's rows.
	_, allPQ := usageExport(t, s, adminToken, "parquet", nil)
	_, allJSONL := usageExport(t, s, adminToken, "jsonl", nil)
	all := parquetMatchesJSONL(t, allPQ, allJSONL)
	rendered = []byte(nil)
	for _, r := range all {
		rendered = usagelog.AppendCSVRecord(rendered, usageRowOf(t, r), time.UTC)
	}
	if want := adminAll[bytes.IndexByte(adminAll, '\n')+1:]; !bytes.Equal(rendered, want) || len(all) < 100 {
		t.Errorf("whole-hub parquet (%d rows) as CSV differs from the CSV (%d bytes, want %d)", len(all), len(rendered), len(want))
	}
}

// parquetMatchesJSONL reads a Parquet export back with parquet-go and checks that every row and
// value is the JSON Lines export's (times compared as instants), returning the rows.
func parquetMatchesJSONL(t *testing.T, pq, jsonl []byte) []usagelog.JSONLRow {
	t.Helper()
	got, err := usagelog.ReadParquet(bytes.NewReader(pq), int64(len(pq)))
	if err != nil {
		t.Fatal(err)
	}
	var want []usagelog.JSONLRow
	sc := bufio.NewScanner(bytes.NewReader(jsonl))
	for sc.Scan() {
		var r usagelog.JSONLRow
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if r.Time != nil {
			tm, err := time.Parse(time.RFC3339Nano, *r.Time)
			if err != nil {
				t.Fatal(err)
			}
			u := tm.UTC().Format("2006-01-02T15:04:05.000Z07:00")
			r.Time = &u
		}
		want = append(want, r)
	}
	if len(got) != len(want) {
		t.Fatalf("parquet has %d rows, jsonl %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			g, _ := json.Marshal(got[i])
			w, _ := json.Marshal(want[i])
			t.Fatalf("row %d: parquet\n%s\njsonl\n%s", i, g, w)
		}
	}
	return got
}

// usageRowOf turns a row read back into the row the encoders take.
func usageRowOf(t *testing.T, r usagelog.JSONLRow) *export.UsageRow {
	t.Helper()
	s := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	u := &export.UsageRow{ID: r.ID, UserID: r.UserID, User: r.User, KeyID: r.KeyID, Key: r.Key, ProviderID: r.ProviderID,
		Provider: r.Provider, Model: s(r.Model), OriginalModel: s(r.OriginalModel), Endpoint: s(r.Endpoint),
		StatusCode: r.StatusCode, InputTokens: r.InputTokens, OutputTokens: r.OutputTokens, CacheWrite5m: r.CacheWrite5m,
		CacheWrite1h: r.CacheWrite1h, CacheRead: r.CacheRead, TotalTokens: r.TotalTokens, CostUSD: r.CostUSD,
		DurationMs: r.DurationMs, SessionID: s(r.SessionID), RetryCount: r.RetryCount}
	if r.Time != nil {
		tm, err := time.Parse(time.RFC3339Nano, *r.Time)
		if err != nil {
			t.Fatal(err)
		}
		u.CreatedAt = tm
	}
	return u
}

func TestUsageLogBadInput(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.start("api")
	for name, c := range map[string]struct{ body, field string }{
		"unknown format":       {`{"type":"usage_logs","format":"orc"}`, "format"},
		"probe format":         {`{"type":"usage_logs","format":"txt"}`, "format"},
		"unknown header_lang":  {`{"type":"usage_logs","params":{"header_lang":"fr"}}`, "params.header_lang"},
		"negative min retries": {`{"type":"usage_logs","params":{"min_retry_count":-1}}`, "params.min_retry_count"},
		"session id too long":  {`{"type":"usage_logs","params":{"session_id":"` + strings.Repeat("s", 65) + `"}}`, "params.session_id"},
		"end before start":     {`{"type":"usage_logs","params":{"start_time":1769990400000,"end_time":"2026-02-01T00:00:00Z"}}`, "params.end_time"},
		"unknown param":        {`{"type":"usage_logs","params":{"limit":10}}`, "params.limit"},
	} {
		for _, token := range []string{adminToken, seed.UserKey} {
			r := s.do("POST", "/api/v1/exports", token, c.body)
			code, fields := r.errorCode(t)
			if r.status != 400 || code != "invalid_request" {
				t.Errorf("%s: %d %s", name, r.status, r.body)
				continue
			}
			if _, ok := fields[c.field]; !ok {
				t.Errorf("%s: fields %v do not name %s", name, fields, c.field)
			}
		}
	}
}
