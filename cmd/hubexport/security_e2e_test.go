package main

import (
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
			io.WriteString(c, "SSH-2.0-OpenSSH_9.6 banner-secret\r\n")
			time.Sleep(100 * time.Millisecond)
			c.Close()
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
