package export

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// Fuzz targets for the request decoding and every export type's params.
// Each accepted input must come out normalised: it encodes to JSON, parses
// again to the same bytes (what a retried job reads back) and holds no
// NUL (PostgreSQL's text and jsonb refuse it). Each refused input must be a
// bad-input error naming one field under the given prefix, which the API
// answers with 400. The seed corpus is in testdata/fuzz/<target>/.

var (
	fuzzAdmin = Principal{UserID: 1, KeyID: 1, Admin: true}
	fuzzUser  = Principal{UserID: 2, KeyID: 2}
)

func fuzzPrincipal(admin bool) Principal {
	if admin {
		return fuzzAdmin
	}
	return fuzzUser
}

// wantFieldError fails unless err is a KindInvalid *Error naming exactly
// one field that starts with prefix.
func wantFieldError(t *testing.T, err error, prefix string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *export.Error: the API would answer 500", err, err)
	}
	if e.Kind != KindInvalid || e.Code != "invalid_request" {
		t.Fatalf("error %v: kind %d code %q, want KindInvalid invalid_request", err, e.Kind, e.Code)
	}
	if len(e.Fields) != 1 {
		t.Fatalf("error %v names %d fields, want 1", err, len(e.Fields))
	}
	for f, msg := range e.Fields {
		if !strings.HasPrefix(f, prefix) && f != strings.TrimSuffix(prefix, ".") {
			t.Fatalf("error %v names field %q, want one under %q", err, f, prefix)
		}
		if msg == "" || e.Message == "" {
			t.Fatalf("error %v names field %q without saying what is wrong", err, f)
		}
	}
}

// wantStorable fails if the JSON b holds a NUL character, which PostgreSQL
// cannot store in text or jsonb.
func wantStorable(t *testing.T, b []byte) {
	t.Helper()
	if bytes.Contains(b, []byte(`\u0000`)) || bytes.IndexByte(b, 0) >= 0 {
		t.Fatalf("accepted params %s hold a NUL character, which PostgreSQL cannot store", b)
	}
}

// checkSpecParse runs spec's Parse as the service does and checks the
// properties above; it returns the normalised params, or nil if refused.
func checkSpecParse(t *testing.T, spec TypeSpec, raw []byte, p Principal) json.RawMessage {
	t.Helper()
	out, err := spec.Parse(raw, p)
	if err != nil {
		wantFieldError(t, err, "params.")
		return nil
	}
	if !json.Valid(out) {
		t.Fatalf("accepted params encode to invalid JSON %q", out)
	}
	wantStorable(t, out)
	again, err := spec.Parse(out, p)
	if err != nil {
		t.Fatalf("normalised params %s are refused when read back: %v", out, err)
	}
	if !bytes.Equal(again, out) {
		t.Fatalf("normalised params are not stable:\n first %s\nsecond %s", out, again)
	}
	return out
}

func FuzzDecodeStrict(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte) {
		var req CreateRequest
		if err := DecodeStrict(raw, &req, ""); err != nil {
			wantFieldError(t, err, "")
			return
		}
		// What was accepted encodes and decodes back to itself.
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("decoded request %+v does not encode: %v", req, err)
		}
		var again CreateRequest
		if err := DecodeStrict(b, &again, ""); err != nil {
			t.Fatalf("re-encoded request %s is refused: %v", b, err)
		}
		b2, _ := json.Marshal(again)
		if !bytes.Equal(b, b2) {
			t.Fatalf("request does not round-trip:\n first %s\nsecond %s", b, b2)
		}
	})
}

func FuzzUsageLogParams(f *testing.F) {
	spec := UsageLogSpec()
	f.Fuzz(func(t *testing.T, admin bool, raw []byte) {
		p := fuzzPrincipal(admin)
		out := checkSpecParse(t, spec, raw, p)
		if out == nil {
			return
		}
		var got UsageLogParams
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		if !admin && (got.UserID == nil || *got.UserID != p.UserID) {
			t.Fatalf("a user's export %s is not limited to their own user id %d", out, p.UserID)
		}
		if got.StartTime != nil && got.EndTime != nil && !got.EndTime.After(*got.StartTime) {
			t.Fatalf("accepted an empty time range: %s", out)
		}
	})
}

func FuzzProbeLogParams(f *testing.F) {
	spec := ProbeLogSpec()
	f.Fuzz(func(t *testing.T, admin bool, raw []byte) {
		out := checkSpecParse(t, spec, raw, fuzzPrincipal(admin))
		if out == nil {
			return
		}
		var got ProbeLogParams
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		if got.MaxLines < 1 || got.MaxLines > MaxProbeMaxLines {
			t.Fatalf("accepted max_lines %d", got.MaxLines)
		}
	})
}

func FuzzSessionRequestParams(f *testing.F) {
	spec := SessionRequestSpec()
	f.Fuzz(func(t *testing.T, admin bool, raw []byte) {
		out := checkSpecParse(t, spec, raw, fuzzPrincipal(admin))
		if out == nil {
			return
		}
		var got SessionRequestParams
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		if got.SessionID == "" || got.SessionID != strings.TrimSpace(got.SessionID) {
			t.Fatalf("accepted session id %q", got.SessionID)
		}
		if got.WholeSession && got.Sequence != nil {
			t.Fatalf("accepted whole_session with a sequence: %s", out)
		}
	})
}

func FuzzBackupParams(f *testing.F) {
	spec := BackupSpec(nil, BackupEncryption{})
	f.Fuzz(func(t *testing.T, admin bool, raw []byte) {
		out := checkSpecParse(t, spec, raw, fuzzPrincipal(admin))
		if out == nil {
			return
		}
		var got BackupParams
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		switch got.Mode {
		case BackupModeFull, BackupModeExcludeLogs, BackupModeLedgerOnly:
		default:
			t.Fatalf("accepted mode %q", got.Mode)
		}
	})
}

func FuzzRestoreParams(f *testing.F) {
	// The URL check stands in for the restore tools' parser; its refusal
	// must still come out as a field error.
	spec := RestoreSpec(func(u string) error {
		if strings.ContainsAny(u, " \t") {
			return errors.New("cannot contain spaces")
		}
		return nil
	})
	f.Fuzz(func(t *testing.T, admin bool, raw []byte) {
		out := checkSpecParse(t, spec, raw, fuzzPrincipal(admin))
		if out == nil {
			return
		}
		var got RestoreParams
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		if (got.BackupJobID == "") == (got.UploadID == "") {
			t.Fatalf("accepted a restore without exactly one source: %s", out)
		}
		if got.UploadID != "" && !ValidUploadID(got.UploadID) {
			t.Fatalf("accepted upload id %q", got.UploadID)
		}
		if got.BackupJobID != "" && !jobIDPattern.MatchString(got.BackupJobID) {
			t.Fatalf("accepted backup job id %q", got.BackupJobID)
		}
	})
}

// FuzzRetentionQuery: the retention dry run's query (GET
// /schedules/{id}/retention?keep_last=...).
func FuzzRetentionQuery(f *testing.F) {
	base := Retention{KeepLast: DefaultKeepLast}
	f.Fuzz(func(t *testing.T, query string) {
		values := parseQueryLoosely(query)
		r, err := ParseRetentionQuery(base, func(k string) string { return values[k] })
		if err != nil {
			wantFieldError(t, err, "")
			return
		}
		if r.KeepLast < 1 || r.KeepLast > maxKeepLast || r.MaxAgeDays < 0 || r.MaxAgeDays > maxMaxAgeDays {
			t.Fatalf("accepted retention %+v", r)
		}
		for _, rule := range calendarRules {
			if n := rule.keep(r); n < 0 || n > maxKeepPeriod {
				t.Fatalf("accepted %s = %d", rule.field, n)
			}
		}
	})
}

// parseQueryLoosely splits a=b&c=d without unescaping failures getting in
// the way: the fuzzer's bytes reach the parser as they are.
func parseQueryLoosely(q string) map[string]string {
	out := map[string]string{}
	for part := range strings.SplitSeq(q, "&") {
		k, v, _ := strings.Cut(part, "=")
		out[k] = v
	}
	return out
}
