package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hubexport/hubexport/internal/seed"
)

// Idempotency keys belong to the token that sent them: the same key from
// two API keys of one user makes two jobs; from the same key it replays.
func TestIdempotencyKeyPerToken(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	// A second valid key of the same user.
	s.exec(`UPDATE keys SET is_enabled = true WHERE key = $1`, seed.DisabledKey)
	s.start("api")
	body := map[string]any{"type": "usage_logs", "params": map[string]any{"start_time": "2026-02-01T00:00:00Z"}}

	laptop := s.create(seed.UserKey, body, "Idempotency-Key", "nightly")
	other := s.do("POST", "/api/v1/exports", seed.DisabledKey, body, "Idempotency-Key", "nightly")
	var oj job
	other.json(t, &oj)
	if other.status != 202 || oj.ID == laptop.ID || other.header.Get("Idempotent-Replayed") != "" {
		t.Errorf("same key from another token of the same user: %d %s (first job %s), want a new job", other.status, other.body, laptop.ID)
	}
	again := s.do("POST", "/api/v1/exports", seed.UserKey, body, "Idempotency-Key", "nightly")
	var aj job
	again.json(t, &aj)
	if again.status != 202 || aj.ID != laptop.ID || again.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("same key from the same token: %d %s, want job %s replayed", again.status, again.body, laptop.ID)
	}
	again = s.do("POST", "/api/v1/exports", seed.DisabledKey, body, "Idempotency-Key", "nightly")
	again.json(t, &aj)
	if again.status != 202 || aj.ID != oj.ID || again.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("same key from the second token: %d %s, want job %s replayed", again.status, again.body, oj.ID)
	}
}

// A user's delivery log shows the receiver's status and a fixed reason,
// never what the receiver answered (with WEBHOOK_ALLOW_PRIVATE=true that
// would let anyone read internal services); an admin's log keeps it.
func TestWebhookDeliveryLogHidesResponses(t *testing.T) {
	t.Parallel()
	s := newStack(t, withPrivateWebhooks())
	s.start("serve")
	httpish := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		body := "root:x:0:0:internal-secret"
		fmt.Fprintf(buf, "HTTP/1.1 500 Reason-Secret\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
		buf.Flush()
	}))
	t.Cleanup(httpish.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// After the request, so the client reads it as the answer (a banner sent before
			// the request is an unsolicited response to an idle connection, a different error).
			go func(c net.Conn) {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				io.WriteString(c, "SSH-2.0-OpenSSH_9.6 banner-secret\r\n")
				time.Sleep(100 * time.Millisecond)
			}(c)
		}
	}()

	cases := []struct {
		name, url, wantUser string
		status              int
		adminSees           string
	}{
		{"HTTP 500 with a body", httpish.URL + "/hook", "the receiver answered 500 Internal Server Error", 500, "internal-secret"},
		{"not HTTP", "http://" + ln.Addr().String() + "/hook", "no valid HTTP answer", 0, "banner-secret"},
	}
	for _, c := range cases {
		for _, who := range []struct {
			token string
			admin bool
		}{{seed.UserKey, false}, {seed.AdminKey, true}} {
			h := s.createHook(who.token, map[string]any{"url": c.url})
			if r := s.do("POST", "/api/v1/webhooks/"+h.ID+"/test", who.token, nil); r.status != http.StatusAccepted {
				t.Fatalf("%s: test: %d %s", c.name, r.status, r.body)
			}
			d := s.waitDelivery(who.token, h.ID, 1, 30*time.Second)
			a := d.Attempts[0]
			if who.admin {
				if !strings.Contains(a.Error, c.adminSees) {
					t.Errorf("%s: the admin's delivery log says %q, want the answer (%q) in it", c.name, a.Error, c.adminSees)
				}
				continue
			}
			if a.StatusCode != c.status || a.Error != c.wantUser {
				t.Errorf("%s: the user's delivery log says %d %q, want %d %q", c.name, a.StatusCode, a.Error, c.status, c.wantUser)
			}
		}
	}
}

// A failed job tells its owner a stable code and a plain message; the raw
// database or storage error is for administrators (error.detail) and the
// logs only.
func TestFailedJobErrorsPerRole(t *testing.T) {
	t.Parallel()
	storage := t.TempDir()
	s := newStack(t, withEnv("STORAGE_URL", "file://"+storage))
	p := s.start("serve")
	window := map[string]any{"start_time": "2026-02-01T00:00:00Z", "end_time": "2026-02-02T00:00:00Z"}

	type jobError struct {
		Code    string  `json:"code"`
		Message string  `json:"message"`
		Detail  *string `json:"detail"`
	}
	read := func(token, id string) jobError {
		t.Helper()
		var j struct {
			Status string    `json:"status"`
			Error  *jobError `json:"error"`
		}
		s.do("GET", "/api/v1/exports/"+id, token, nil).json(t, &j)
		if j.Status != "failed" || j.Error == nil {
			t.Fatalf("job %s: %s %+v, want failed with an error", id, j.Status, j.Error)
		}
		return *j.Error
	}
	check := func(name, id, code, raw string) {
		t.Helper()
		user := read(seed.UserKey, id)
		if user.Code != code || user.Detail != nil || strings.Contains(user.Message, raw) || user.Message == "" {
			t.Errorf("%s: the owner reads %+v, want code %s, a plain message and no detail", name, user, code)
		}
		r := s.do("GET", "/api/v1/exports", seed.UserKey, nil)
		if strings.Contains(string(r.body), raw) || strings.Contains(string(r.body), `"detail"`) {
			t.Errorf("%s: the owner's listing shows the detail: %s", name, r.body)
		}
		admin := read(adminToken, id)
		if admin.Code != code || admin.Message != user.Message || admin.Detail == nil || !strings.Contains(*admin.Detail, raw) {
			t.Errorf("%s: an admin reads %+v, want the detail (%q) too", name, admin, raw)
		}
		if !strings.Contains(p.Logs(), raw) {
			t.Errorf("%s: the logs do not carry the detail %q", name, raw)
		}
	}

	// A database error.
	s.exec(`ALTER TABLE message_request RENAME TO message_request_gone`)
	j := s.create(seed.UserKey, map[string]any{"type": "usage_logs", "params": window})
	s.wait(seed.UserKey, j.ID, 60*time.Second)
	check("database error", j.ID, "export_failed", "message_request")
	s.exec(`ALTER TABLE message_request_gone RENAME TO message_request`)

	// A storage error: the storage folder is now a file.
	if err := os.RemoveAll(storage); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(storage, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	j = s.create(seed.UserKey, map[string]any{"type": "usage_logs", "params": window})
	s.wait(seed.UserKey, j.ID, 60*time.Second)
	check("storage error", j.ID, "storage_unavailable", storage)
}

// A webhook's scope follows its owner's role and state in the hub now, not
// at creation: a demoted admin's endpoint stops hearing of other users'
// jobs (even a retry already scheduled) but still hears of its owner's
// own; a deleted owner's endpoint stops, saying why.
func TestWebhookScopeFollowsOwner(t *testing.T) {
	t.Parallel()
	s := newStack(t, withPrivateWebhooks())
	s.start("serve")
	boss, alice := newHookReceiver(t), newHookReceiver(t)
	boss.respond = func(n int) (int, http.Header) {
		if n == 0 {
			return http.StatusServiceUnavailable, nil
		}
		return http.StatusNoContent, nil
	}
	alice.respond = func(n int) (int, http.Header) {
		if n == 1 {
			return http.StatusServiceUnavailable, nil
		}
		return http.StatusNoContent, nil
	}
	hb := s.createHook(seed.AdminKey, map[string]any{"url": boss.url()})
	ha := s.createHook(seed.UserKey, map[string]any{"url": alice.url()})
	boss.trust(hb.Secret)
	alice.trust(ha.Secret)
	if !hb.Admin {
		t.Fatalf("the admin's endpoint: %+v", hb)
	}
	window := map[string]any{"start_time": "2026-02-01T00:00:00Z", "end_time": "2026-02-02T00:00:00Z"}
	run := func(token, typ string) string {
		t.Helper()
		params := window
		if typ == "probe_logs" {
			params = nil
		}
		j := s.create(token, map[string]any{"type": typ, "params": params})
		if j = s.wait(token, j.ID, 60*time.Second); j.Status != "succeeded" {
			t.Fatalf("job %s: %s %+v", j.ID, j.Status, j.Error)
		}
		return j.ID
	}

	// User 2's job reaches the admin's endpoint, which answers 503; the
	// admin is demoted before the retry, which is therefore not sent.
	j1 := run(seed.UserKey, "usage_logs")
	if got := boss.waitFor(1, 30*time.Second); got[0].event.Data.JobID != j1 {
		t.Fatalf("the admin's endpoint heard of %s, want %s", got[0].event.Data.JobID, j1)
	}
	s.exec(`UPDATE users SET role = 'user' WHERE id = $1`, seed.AdminUserID)
	d := s.waitDelivery(seed.AdminKey, hb.ID, 2, 30*time.Second)
	if d.Status != "failed" || !strings.Contains(d.Attempts[1].Error, "no longer an administrator") {
		t.Errorf("the retry after the demotion: %+v", d)
	}
	if h, _ := s.getHook(seed.AdminKey, hb.ID); h.Admin || !h.Enabled {
		t.Errorf("GET the demoted admin's endpoint: %+v, want admin false, still enabled", h)
	}

	// Another user's job no longer reaches it; its owner's own job does.
	alice.waitFor(1, 30*time.Second)
	j2 := run(seed.UserKey, "usage_logs")
	alice.waitFor(2, 30*time.Second)
	j3 := run(seed.AdminKey, "usage_logs")
	boss.waitFor(2, 30*time.Second)
	time.Sleep(2 * time.Second) // anything misrouted would have arrived by now
	got := boss.requests()
	if len(got) != 2 || got[1].event.Data.JobID != j3 {
		var ids []string
		for _, r := range got {
			ids = append(ids, r.event.Data.JobID)
		}
		t.Errorf("the demoted admin's endpoint heard of %v, want [%s %s] (not %s)", ids, j1, j3, j2)
	}

	// User 2's endpoint answered 503 to j2; user 2 is deleted before the
	// retry: it is not sent, and the endpoint stops, saying why.
	s.exec(`UPDATE users SET deleted_at = now() WHERE id = $1`, seed.UserID)
	pool := s.pool()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var status string
		if err := pool.QueryRow(context.Background(), `SELECT status FROM hubexport.webhook_deliveries
			WHERE endpoint_id = $1 ORDER BY id DESC LIMIT 1`, ha.ID).Scan(&status); err != nil {
			t.Fatal(err)
		}
		if status != "pending" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the retry to the deleted user's endpoint is still pending")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := len(alice.requests()); n != 2 {
		t.Errorf("the deleted user's endpoint got %d requests, want 2", n)
	}
	// Restored in the hub, the user finds the endpoint stopped, and why.
	s.exec(`UPDATE users SET deleted_at = NULL WHERE id = $1`, seed.UserID)
	h, r := s.getHook(seed.UserKey, ha.ID)
	if r.status != 200 || h.Enabled || !strings.Contains(h.DisabledReason, "deleted") {
		t.Errorf("GET the deleted owner's endpoint: %d %+v, want disabled with the reason", r.status, h)
	}
	if d := s.deliveries(seed.UserKey, ha.ID)[0]; d.Status != "failed" || len(d.Attempts) != 2 || !strings.Contains(d.Attempts[1].Error, "deleted") {
		t.Errorf("the deleted owner's last delivery: %+v", d)
	}
}

// Input PostgreSQL cannot hold or Go cannot represent is a 400 naming the
// field, never a 500; a refused create is audited with the unprintable
// input escaped.
func TestBadInputNamesTheField(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.start("api") // no worker: nothing runs

	for _, c := range []struct {
		method, path, token string
		body                any
		field               string
	}{
		{"POST", "/api/v1/exports", seed.UserKey, `{"type":"usage_logs","params":{"start_time":253402300800000}}`, "params.start_time"},
		{"POST", "/api/v1/exports", seed.UserKey, `{"type":"usage_logs","params":{"end_time":9223372036854775807}}`, "params.end_time"},
		{"POST", "/api/v1/exports", seed.UserKey, `{"type":"usage_logs","params":{"start_time":-9223372036854775808}}`, "params.start_time"},
		{"POST", "/api/v1/exports", seed.UserKey, `{"type":"usage_logs","params":{"start_time":9223372036854775808}}`, "params.start_time"},
		{"POST", "/api/v1/exports", adminToken, `{"type":"probe_logs","params":{"start_time":253402300800000}}`, "params.start_time"},
		{"POST", "/api/v1/exports", adminToken, `{"type":"probe_logs","params":{"end_time":-9223372036854775808}}`, "params.end_time"},
		{"POST", "/api/v1/exports", adminToken, `{"type":"probe_logs","params":{"start_time":"10000-01-01T00:00:00Z"}}`, "params.start_time"},
		{"GET", "/api/v1/exports/%00", seed.UserKey, nil, "id"},
		{"DELETE", "/api/v1/exports/%C0%AF", seed.UserKey, nil, "id"},
		{"GET", "/api/v1/exports/%00/events", seed.UserKey, nil, "id"},
		{"GET", "/api/v1/webhooks/%00", seed.UserKey, nil, "id"},
		{"POST", "/api/v1/webhooks/%FF/test", seed.UserKey, nil, "id"},
		{"GET", "/api/v1/exports?cursor=ZXhwXwA", seed.UserKey, nil, "cursor"},
		{"GET", "/api/v1/webhooks?cursor=d2hrXwA", seed.UserKey, nil, "cursor"},
		{"GET", "/api/v1/exports?schedule_id=%00", adminToken, nil, "schedule_id"},
		{"GET", "/api/v1/audit?actor=%00", adminToken, nil, "actor"},
		{"GET", "/api/v1/audit?action=%C0%AF", adminToken, nil, "action"},
		{"POST", "/api/v1/exports", seed.UserKey, `{"type":"usage_logs","params":{"model":"\u0000"}}`, "params.model"},
		{"POST", "/api/v1/exports", seed.UserKey, `{"type":"usage_logs","params":{"session_id":"a\u0000b"}}`, "params.session_id"},
		{"POST", "/api/v1/webhooks", seed.UserKey, `{"url":"https://example.com/h","description":"\u0000"}`, "description"},
		{"PATCH", "/api/v1/webhooks/whk_x", seed.UserKey, `{"description":"\u0000"}`, "description"},
		{"POST", "/api/v1/exports", seed.UserKey, `{"type":"database_backup","format":"\u0000\u00e9"}`, "format"},
	} {
		r := s.do(c.method, c.path, c.token, c.body)
		if r.status != 400 {
			t.Errorf("%s %s %v: %d %s, want 400", c.method, c.path, c.body, r.status, r.body)
			continue
		}
		if code, fields := r.errorCode(t); code != "invalid_request" || fields[c.field] == "" {
			t.Errorf("%s %s %v: %s %v, want invalid_request naming %s", c.method, c.path, c.body, code, fields, c.field)
		}
	}

	// Every refused change is in the audit trail, unprintable input
	// escaped: refused by the service under its own action, refused before
	// it as request.refused, naming the route and the field.
	r := s.do("POST", "/api/v1/exports", seed.UserKey, `{"type":"usage_logs\u0000","format":"csv"}`)
	if r.status != 400 {
		t.Errorf("NUL in the type: %d %s", r.status, r.body)
	}
	rows, err := s.pool().Query(context.Background(), `SELECT action, target, outcome, COALESCE(params::text, '') FROM hubexport.audit_log
		WHERE actor = 'user:2/key:2' AND outcome <> 'ok' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var action, target, outcome, params string
		if err := rows.Scan(&action, &target, &outcome, &params); err != nil {
			t.Fatal(err)
		}
		got = append(got, action+" "+target+" "+outcome+" "+params)
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{
		`export.create  error:invalid_request {"type": "usage_logs", "format": ""}`,
		`request.refused DELETE /api/v1/exports/:id error:invalid_request {"path": "/api/v1/exports/\\xc0\\xaf", "fields": {"id": "must be UTF-8 text without NUL bytes, not \"\\xc0\\xaf\""}}`,
		`request.refused POST /api/v1/webhooks/:id/test error:invalid_request {"path": "/api/v1/webhooks/\\xff/test"`,
		`request.refused POST /api/v1/exports error:invalid_request {"path": "/api/v1/exports", "fields": {"format": "must be UTF-8 text without NUL bytes, not \"\\x00é\""}}`,
		`request.refused POST /api/v1/exports error:invalid_request {"path": "/api/v1/exports", "fields": {"type": "must be UTF-8 text without NUL bytes, not \"usage_logs\\x00\""}}`,
		`export.create  error:invalid_request {"type": "usage_logs", "format": ""}`, // params.model
	} {
		if !strings.Contains(all, want) {
			t.Errorf("the audit trail has no row %s\nall rows:\n%s", want, all)
		}
	}
}
