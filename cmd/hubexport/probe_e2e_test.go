package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubexport/hubexport/internal/seed"
)

// probeFixture replaces the seeded probe logs with a few known ones.
func probeFixture(s *stack) {
	s.exec(`DELETE FROM provider_endpoint_probe_logs`)
	s.exec(`INSERT INTO provider_endpoint_probe_logs (endpoint_id, ok, status_code, latency_ms, error_type, error_message, created_at) VALUES
		(1, true,  200,  45,   NULL,       NULL,                  '2026-01-29T10:30:00Z'),
		(2, true,  200,  999,  NULL,       NULL,                  '2026-01-29T10:29:30Z'),
		(1, false, 503,  1125, 'http_5xx', 'Service Unavailable', '2026-01-29T10:29:00Z'),
		(1, false, NULL, NULL, 'timeout',  'connect timeout',     '2026-01-29T10:28:00Z'),
		(1, true,  204,  1005, NULL,       NULL,                  '2026-01-29T10:27:00Z'),
		(2, false, 0,    2000, 'network_error', 'ECONNRESET 100%_done', '2026-01-28T23:59:59Z')`)
}

func TestProbeLogExportLocal(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	probeFixture(s)
	s.start("serve")

	cases := []struct {
		name   string
		params map[string]any
		want   string
	}{
		{"one endpoint, UTC", map[string]any{"endpoint_id": 1},
			"[10:30:00] OK 200 45ms \n[10:29:00] FAIL 503 1.13s Service Unavailable\n[10:28:00] FAIL - - connect timeout\n[10:27:00] OK 204 1.00s "},
		{"all endpoints, Shanghai", map[string]any{"timezone": "Asia/Shanghai"},
			"[18:30:00] #1 OK 200 45ms \n[18:29:30] #2 OK 200 999ms \n[18:29:00] #1 FAIL 503 1.13s Service Unavailable\n[18:28:00] #1 FAIL - - connect timeout\n[18:27:00] #1 OK 204 1.00s \n[07:59:59] #2 FAIL - 2.00s ECONNRESET 100%_done"},
		{"failures only", map[string]any{"result": "fail", "endpoint_id": 1},
			"[10:29:00] FAIL 503 1.13s Service Unavailable\n[10:28:00] FAIL - - connect timeout"},
		{"search by type, time window", map[string]any{"search": "TIME", "start_time": "2026-01-29T10:00:00Z", "end_time": 1769682600000},
			"[10:28:00] #1 FAIL - - connect timeout"},
		{"search by status", map[string]any{"search": "503"},
			"[10:29:00] #1 FAIL 503 1.13s Service Unavailable"},
		{"search with LIKE wildcards", map[string]any{"search": "%_"},
			"[23:59:59] #2 FAIL - 2.00s ECONNRESET 100%_done"},
		{"newest lines only", map[string]any{"max_lines": 2, "result": "ok"},
			"[10:30:00] #1 OK 200 45ms \n[10:29:30] #2 OK 200 999ms "},
	}
	for _, c := range cases {
		j := s.create(adminToken, map[string]any{"type": "probe_logs", "params": c.params})
		j = s.wait(adminToken, j.ID, 30*time.Second)
		if j.Status != "succeeded" {
			t.Fatalf("%s: job %s %s: %+v", c.name, j.ID, j.Status, j.Error)
		}
		body, hdr, _ := s.download(adminToken, j.ID)
		if string(body) != c.want {
			t.Errorf("%s: file\n%q\nwant\n%q", c.name, body, c.want)
		}
		sum := sha256.Sum256(body)
		// Named by the job's creation day (UTC), which a run across midnight must not change.
		wantName := "probe-logs-" + j.CreatedAt.UTC().Format("2006-01-02") + ".txt"
		if j.CreatedAt.IsZero() {
			t.Fatalf("%s: job has no created_at", c.name)
		}
		if j.Result.SHA256 != hex.EncodeToString(sum[:]) || j.Result.SizeBytes != int64(len(body)) ||
			j.Result.Rows != int64(strings.Count(c.want, "\n")+1) || j.Result.Filename != wantName ||
			j.Result.ContentType != "text/plain; charset=utf-8" {
			t.Errorf("%s: result %+v does not describe the file (%d bytes)", c.name, j.Result, len(body))
		}
		if cd := hdr.Get("Content-Disposition"); !strings.Contains(cd, wantName) {
			t.Errorf("%s: Content-Disposition %q does not name %s", c.name, cd, wantName)
		}
		if j.Progress.Percent != 100 {
			t.Errorf("%s: progress %+v", c.name, j.Progress)
		}
	}

	// The event stream shows the job to its end.
	j := s.create(adminToken, map[string]any{"type": "probe_logs"})
	req, _ := http.NewRequest("GET", s.base+"/api/v1/exports/"+j.ID+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("events content type %q", ct)
	}
	var last string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			last = d
		}
	}
	if !strings.Contains(last, `"status":"succeeded"`) {
		t.Fatalf("last event %q is not the succeeded job", last)
	}
	// Listing shows the jobs newest first, and pages.
	r := s.do("GET", "/api/v1/exports?limit=3&type=probe_logs", adminToken, nil)
	var page struct {
		Data       []job  `json:"data"`
		NextCursor string `json:"next_cursor"`
	}
	r.json(t, &page)
	if len(page.Data) != 3 || page.Data[0].ID != j.ID || page.NextCursor == "" {
		t.Fatalf("first page: %s", r.body)
	}
	seen := map[string]bool{}
	for cursor := ""; ; {
		r := s.do("GET", "/api/v1/exports?limit=3&cursor="+cursor, adminToken, nil)
		var p struct {
			Data       []job  `json:"data"`
			NextCursor string `json:"next_cursor"`
		}
		r.json(t, &p)
		for _, x := range p.Data {
			if seen[x.ID] {
				t.Fatalf("job %s listed twice", x.ID)
			}
			seen[x.ID] = true
		}
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	if len(seen) != len(cases)+1 {
		t.Fatalf("listing covered %d jobs, want %d", len(seen), len(cases)+1)
	}
}

func TestAuthorization(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.start("serve")
	adminJob := s.create(seed.AdminKey, map[string]any{"type": "probe_logs"})

	r := s.do("POST", "/api/v1/exports", seed.UserKey, map[string]any{"type": "probe_logs"})
	if code, _ := r.errorCode(t); r.status != 403 || code != "admin_only" {
		t.Fatalf("user creating probe_logs: %d %s", r.status, r.body)
	}
	for _, path := range []string{"", "/events", "/download"} {
		r := s.do("GET", "/api/v1/exports/"+adminJob.ID+path, seed.UserKey, nil)
		if r.status != 404 {
			t.Errorf("user reading admin's job%s: %d %s", path, r.status, r.body)
		}
	}
	if r := s.do("DELETE", "/api/v1/exports/"+adminJob.ID, seed.UserKey, nil); r.status != 404 {
		t.Errorf("user deleting admin's job: %d", r.status)
	}
	r = s.do("GET", "/api/v1/exports", seed.UserKey, nil)
	if r.status != 200 || strings.Contains(string(r.body), adminJob.ID) {
		t.Errorf("user's listing shows admin's job: %d %s", r.status, r.body)
	}
	for name, tok := range map[string]string{
		"disabled key": seed.DisabledKey, "expired key": seed.ExpiredKey, "deleted key": seed.DeletedKey,
		"disabled user": seed.DisabledUserKey, "expired user": seed.ExpiredUserKey, "deleted user": seed.DeletedUserKey,
		"unknown key": seed.UnknownKey, "no token": "",
	} {
		if r := s.do("GET", "/api/v1/exports", tok, nil); r.status != 401 {
			t.Errorf("%s: status %d, want 401", name, r.status)
		}
	}
	// An admin's API key sees the admin token's jobs and vice versa.
	if j := s.get(adminToken, adminJob.ID); j.ID != adminJob.ID {
		t.Fatal("admin token cannot see the admin key's job")
	}
	// x-api-key works as well as a bearer token.
	if r := s.do("GET", "/api/v1/exports/"+adminJob.ID, "", nil, "x-api-key", seed.AdminKey); r.status != 200 {
		t.Errorf("x-api-key: %d", r.status)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.start("api") // no worker: jobs stay queued

	for name, c := range map[string]struct {
		body        string
		status      int
		code, field string
	}{
		"unknown type":       {`{"type":"everything"}`, 400, "invalid_request", "type"},
		"unknown field":      {`{"type":"probe_logs","colour":"red"}`, 400, "invalid_request", "colour"},
		"unknown param":      {`{"type":"probe_logs","params":{"endpoint":1}}`, 400, "invalid_request", "params.endpoint"},
		"end before start":   {`{"type":"probe_logs","params":{"start_time":"2026-01-02T00:00:00Z","end_time":"2026-01-01T00:00:00Z"}}`, 400, "invalid_request", "params.end_time"},
		"unknown time zone":  {`{"type":"probe_logs","params":{"timezone":"Mars/Olympus"}}`, 400, "invalid_request", "params.timezone"},
		"non-numeric id":     {`{"type":"probe_logs","params":{"endpoint_id":"abc"}}`, 400, "invalid_request", "params.endpoint_id"},
		"negative max_lines": {`{"type":"probe_logs","params":{"max_lines":-5}}`, 400, "invalid_request", "params.max_lines"},
		"bad format":         {`{"type":"probe_logs","format":"xlsx"}`, 400, "invalid_request", "format"},
		"not json":           {`type=probe_logs`, 400, "invalid_request", ""},
	} {
		r := s.do("POST", "/api/v1/exports", adminToken, c.body)
		code, fields := r.errorCode(t)
		if r.status != c.status || code != c.code {
			t.Errorf("%s: %d %s", name, r.status, r.body)
			continue
		}
		if _, ok := fields[c.field]; c.field != "" && !ok {
			t.Errorf("%s: fields %v do not name %s", name, fields, c.field)
		}
	}
	big := `{"type":"probe_logs","params":{"search":"` + strings.Repeat("x", 2<<20) + `"}}`
	if r := s.do("POST", "/api/v1/exports", adminToken, big); r.status != 413 {
		t.Errorf("oversized body: %d %s", r.status, r.body)
	}

	// Idempotency: the same key and body give the same job; another body is a conflict.
	a := s.create(adminToken, map[string]any{"type": "probe_logs", "params": map[string]any{"max_lines": 10}}, "Idempotency-Key", "k-1")
	b := s.do("POST", "/api/v1/exports", adminToken, map[string]any{"type": "probe_logs", "params": map[string]any{"max_lines": 10}}, "Idempotency-Key", "k-1")
	var bj job
	b.json(t, &bj)
	if b.status != 202 || bj.ID != a.ID || b.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay: %d %s (first job %s)", b.status, b.body, a.ID)
	}
	c := s.do("POST", "/api/v1/exports", adminToken, map[string]any{"type": "probe_logs", "params": map[string]any{"max_lines": 11}}, "Idempotency-Key", "k-1")
	if code, _ := c.errorCode(t); c.status != 409 || code != "idempotency_key_reused" {
		t.Errorf("reused key: %d %s", c.status, c.body)
	}

	// The cap on active jobs: a is queued; two more fill the cap.
	s.create(adminToken, map[string]any{"type": "probe_logs"})
	queued := s.create(adminToken, map[string]any{"type": "probe_logs"})
	r := s.do("POST", "/api/v1/exports", adminToken, map[string]any{"type": "probe_logs"})
	if code, _ := r.errorCode(t); r.status != 429 || code != "too_many_active_jobs" || r.header.Get("Retry-After") == "" {
		t.Errorf("over the cap: %d %s %v", r.status, r.body, r.header)
	}
	// Cancelling a queued job frees a slot; its download is a conflict.
	r = s.do("DELETE", "/api/v1/exports/"+queued.ID, adminToken, nil)
	var cj job
	r.json(t, &cj)
	if r.status != 200 || cj.Status != "canceled" {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	if r := s.do("GET", "/api/v1/exports/"+queued.ID+"/download", adminToken, nil); r.status != 409 {
		t.Errorf("download of a canceled job: %d", r.status)
	}
	s.create(adminToken, map[string]any{"type": "probe_logs"})

	// Each request that reached the service is in the audit trail, with who,
	// from where and how it ended (bodies that are not even JSON, or too
	// large, are refused before that).
	rows, err := s.pool().Query(context.Background(), `SELECT action, outcome, actor, address FROM hubexport.audit_log ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for rows.Next() {
		var action, outcome, actor, address string
		if err := rows.Scan(&action, &outcome, &actor, &address); err != nil {
			t.Fatal(err)
		}
		if actor != "admin_token" || address != "127.0.0.1" {
			t.Errorf("audit row %s %s by %q from %q", action, outcome, actor, address)
		}
		counts[action+" "+outcome]++
	}
	for want, n := range map[string]int{
		"export.create ok": 5, "export.create error:invalid_request": 7, "export.create error:idempotency_key_reused": 1,
		"export.create error:too_many_active_jobs": 1, "export.cancel ok": 1, "export.download_link error:job_not_succeeded": 1,
	} {
		if counts[want] != n {
			t.Errorf("audit: %d × %q, want %d (all: %v)", counts[want], want, n, counts)
		}
	}
	for _, q := range []string{"status=bogus", "user_id=abc", "type=nope", "limit=0", "cursor=bm9wZQ"} {
		if r := s.do("GET", "/api/v1/exports?"+q, adminToken, nil); r.status != 400 {
			t.Errorf("list ?%s: %d %s", q, r.status, r.body)
		}
	}
}

// filesUnder lists the regular files under dir, relative to it.
func filesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
