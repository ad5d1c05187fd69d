package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubexport/hubexport/internal/seed"
	"github.com/hubexport/hubexport/internal/testenv"
)

// verifySignature checks a delivery exactly as the Standard Webhooks spec
// tells receivers to, independently of the code under test: the key is the
// base64 after "whsec_", the signed content "id.timestamp.body", and any
// "v1,<base64>" entry of the space-separated header may match.
func verifySignature(secret, id, timestamp string, body []byte, header string) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(header) {
		version, b64, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue
		}
		if got, err := base64.StdEncoding.DecodeString(b64); err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

// hookRequest is one request a receiver accepted as authentic.
type hookRequest struct {
	id, timestamp, signature string
	body                     []byte
	at                       time.Time
	event                    hookEvent
}

type hookEvent struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      struct {
		JobID   string `json:"job_id"`
		JobType string `json:"job_type"`
		Status  string `json:"status"`
		Result  *struct {
			Filename  string `json:"filename"`
			SizeBytes int64  `json:"size_bytes"`
			SHA256    string `json:"sha256"`
			Rows      int64  `json:"rows"`
		} `json:"result"`
		ErrorCode  *string `json:"error_code"`
		EndpointID string  `json:"endpoint_id"`
		Links      struct {
			Self     string `json:"self"`
			Download string `json:"download"`
		} `json:"links"`
	} `json:"data"`
}

// hookReceiver is a webhook receiver on loopback that verifies every
// request's signature and timestamp (5 minutes' tolerance, as the
// reference libraries), answering 401 to anything it cannot verify.
type hookReceiver struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	secrets  []string
	accepted []hookRequest
	rejected int
	// respond answers the n-th accepted request (from 0).
	respond func(n int) (status int, header http.Header)
}

func newHookReceiver(t *testing.T) *hookReceiver {
	r := &hookReceiver{t: t, respond: func(int) (int, http.Header) { return http.StatusNoContent, nil }}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *hookReceiver) url() string { return r.srv.URL + "/hooks/hubexport" }

func (r *hookReceiver) trust(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets = secrets
}

func (r *hookReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	id, ts, sig := req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp"), req.Header.Get("webhook-signature")
	r.mu.Lock()
	defer r.mu.Unlock()
	unix, err := strconv.ParseInt(ts, 10, 64)
	fresh := err == nil && time.Since(time.Unix(unix, 0)).Abs() <= 5*time.Minute
	verified := false
	for _, s := range r.secrets {
		verified = verified || verifySignature(s, id, ts, body, sig)
	}
	if !fresh || !verified || req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" {
		r.rejected++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	hr := hookRequest{id: id, timestamp: ts, signature: sig, body: body, at: time.Now()}
	if err := json.Unmarshal(body, &hr.event); err != nil {
		r.t.Errorf("delivery body is not the event JSON: %q", body)
	}
	r.accepted = append(r.accepted, hr)
	status, header := r.respond(len(r.accepted) - 1)
	for k, v := range header {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
}

func (r *hookReceiver) requests() []hookRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.accepted)
}

// waitFor waits until the receiver has accepted n requests.
func (r *hookReceiver) waitFor(n int, timeout time.Duration) []hookRequest {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := r.requests()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("receiver accepted %d requests after %s, want %d (rejected %d)", len(got), timeout, n, r.rejected)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hook is the endpoint object, as created (with its secret) or read.
type hook struct {
	ID                      string     `json:"id"`
	URL                     string     `json:"url"`
	Events                  []string   `json:"events"`
	Enabled                 bool       `json:"enabled"`
	DisabledReason          string     `json:"disabled_reason"`
	Admin                   bool       `json:"admin"`
	UserID                  int64      `json:"user_id"`
	Secret                  string     `json:"secret"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
}

type hookDelivery struct {
	ID        string `json:"id"`
	EventType string `json:"event_type"`
	Status    string `json:"status"`
	Attempts  []struct {
		Attempt    int    `json:"attempt"`
		StatusCode int    `json:"status_code"`
		LatencyMS  int64  `json:"latency_ms"`
		Error      string `json:"error"`
	} `json:"attempts"`
}

func (s *stack) createHook(token string, body map[string]any) hook {
	s.t.Helper()
	r := s.do("POST", "/api/v1/webhooks", token, body)
	if r.status != http.StatusCreated {
		s.t.Fatalf("create webhook: status %d: %s", r.status, r.body)
	}
	var h hook
	r.json(s.t, &h)
	if r.header.Get("Location") != "/api/v1/webhooks/"+h.ID || r.header.Get("Cache-Control") != "no-store" {
		s.t.Fatalf("create webhook: Location %q, Cache-Control %q", r.header.Get("Location"), r.header.Get("Cache-Control"))
	}
	return h
}

func (s *stack) getHook(token, id string) (hook, response) {
	s.t.Helper()
	r := s.do("GET", "/api/v1/webhooks/"+id, token, nil)
	var h hook
	if r.status == 200 {
		r.json(s.t, &h)
	}
	return h, r
}

func (s *stack) deliveries(token, hookID string) []hookDelivery {
	s.t.Helper()
	r := s.do("GET", "/api/v1/webhooks/"+hookID+"/deliveries", token, nil)
	if r.status != 200 {
		s.t.Fatalf("deliveries: status %d: %s", r.status, r.body)
	}
	var page struct {
		Data []hookDelivery `json:"data"`
	}
	r.json(s.t, &page)
	return page.Data
}

// waitDelivery polls the delivery log until its newest delivery is no
// longer pending and has at least attempts attempts.
func (s *stack) waitDelivery(token, hookID string, attempts int, timeout time.Duration) hookDelivery {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ds := s.deliveries(token, hookID)
		if len(ds) > 0 && len(ds[0].Attempts) >= attempts && (ds[0].Status != "pending" || attempts > 0) {
			return ds[0]
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("deliveries of %s after %s: %+v", hookID, timeout, ds)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func withPrivateWebhooks() stackOpt { return withEnv("WEBHOOK_ALLOW_PRIVATE", "true") }

// A finished export is announced to a receiver that checks signatures the
// spec's way; a 500 is retried about 5 s later with the same webhook-id
// and body; the delivery log shows both attempts.
func TestWebhookSignedDeliveryAndRetry(t *testing.T) {
	t.Parallel()
	s := newStack(t, withPrivateWebhooks())
	s.start("serve")
	rcv := newHookReceiver(t)
	rcv.respond = func(n int) (int, http.Header) {
		if n == 0 {
			return http.StatusInternalServerError, nil
		}
		return http.StatusOK, nil
	}

	h := s.createHook(adminToken, map[string]any{"url": rcv.url(), "events": []string{"export.succeeded"}, "description": "ops"})
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h.Secret, "whsec_"))
	if !strings.HasPrefix(h.Secret, "whsec_") || err != nil || len(key) != 32 {
		t.Fatalf("secret %q is not whsec_ + base64 of 32 bytes", h.Secret)
	}
	if !h.Admin || !h.Enabled || h.UserID != -1 || !slices.Equal(h.Events, []string{"export.succeeded"}) {
		t.Fatalf("created %+v", h)
	}
	// The secret is shown once.
	if _, r := s.getHook(adminToken, h.ID); r.status != 200 || bytes.Contains(r.body, []byte("secret\"")) || bytes.Contains(r.body, []byte(h.Secret)) {
		t.Fatalf("GET webhook: %d %s", r.status, r.body)
	}
	list := s.do("GET", "/api/v1/webhooks", adminToken, nil)
	if list.status != 200 || bytes.Contains(list.body, []byte(h.Secret)) || !bytes.Contains(list.body, []byte(h.ID)) {
		t.Fatalf("list webhooks: %d %s", list.status, list.body)
	}
	rcv.trust(h.Secret)

	probeFixture(s)
	j := s.create(adminToken, map[string]any{"type": "probe_logs"})
	j = s.wait(adminToken, j.ID, 30*time.Second)
	if j.Status != "succeeded" {
		t.Fatalf("job %s: %+v", j.Status, j.Error)
	}

	got := rcv.waitFor(2, 40*time.Second)
	first, second := got[0], got[1]
	if first.id != second.id || !strings.HasPrefix(first.id, "msg_") {
		t.Errorf("webhook-id changed across the retry: %q then %q", first.id, second.id)
	}
	if !bytes.Equal(first.body, second.body) {
		t.Errorf("body changed across the retry:\n%s\n%s", first.body, second.body)
	}
	if gap := second.at.Sub(first.at); gap < 4*time.Second || gap > 20*time.Second {
		t.Errorf("retry came %s after the 500, want about 5 s", gap)
	}
	ev := second.event
	if ev.Type != "export.succeeded" || ev.Data.JobID != j.ID || ev.Data.JobType != "probe_logs" || ev.Data.Status != "succeeded" ||
		ev.Data.ErrorCode != nil || ev.Data.Result == nil || ev.Data.Result.SHA256 != j.Result.SHA256 ||
		ev.Data.Result.SizeBytes != j.Result.SizeBytes || ev.Data.Result.Rows != j.Result.Rows || ev.Data.Result.Filename != j.Result.Filename {
		t.Errorf("event %s does not describe job %+v", second.body, j)
	}
	if ev.Data.Links.Self != s.base+"/api/v1/exports/"+j.ID || ev.Data.Links.Download != s.base+"/api/v1/exports/"+j.ID+"/download" {
		t.Errorf("links %+v", ev.Data.Links)
	}
	if time.Since(ev.Timestamp).Abs() > time.Minute {
		t.Errorf("event timestamp %s", ev.Timestamp)
	}
	// Thin: no file, no signed link.
	if bytes.Contains(second.body, []byte("/files/")) || bytes.Contains(second.body, []byte("X-Amz")) || bytes.Contains(second.body, []byte("expires")) {
		t.Errorf("payload carries a file link: %s", second.body)
	}

	// The receiver's check is real: a tampered body is refused, the
	// original accepted.
	replay := func(body []byte) int {
		req, _ := http.NewRequest("POST", rcv.url(), bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("webhook-id", second.id)
		req.Header.Set("webhook-timestamp", second.timestamp)
		req.Header.Set("webhook-signature", second.signature)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	tampered := bytes.Replace(second.body, []byte(`"succeeded"`), []byte(`"failed"`), 1)
	if code := replay(tampered); code != http.StatusUnauthorized {
		t.Errorf("tampered body: receiver answered %d, want 401", code)
	}
	if code := replay(second.body); code != http.StatusOK {
		t.Errorf("original body: receiver answered %d, want 200", code)
	}

	d := s.waitDelivery(adminToken, h.ID, 2, 10*time.Second)
	if d.ID != first.id || d.Status != "succeeded" || d.EventType != "export.succeeded" || len(d.Attempts) != 2 ||
		d.Attempts[0].StatusCode != 500 || !strings.Contains(d.Attempts[0].Error, "500") ||
		d.Attempts[1].StatusCode != 200 || d.Attempts[1].Error != "" || d.Attempts[1].Attempt != 2 {
		t.Errorf("delivery log %+v", d)
	}

	// Resend: the same message again, freshly signed.
	r := s.do("POST", "/api/v1/webhooks/"+h.ID+"/deliveries/"+d.ID+"/resend", adminToken, nil)
	if r.status != http.StatusAccepted {
		t.Fatalf("resend: %d %s", r.status, r.body)
	}
	again := rcv.waitFor(3, 20*time.Second)[2]
	if again.id != first.id || !bytes.Equal(again.body, first.body) {
		t.Errorf("resend sent %q %s", again.id, again.body)
	}
	if r := s.do("POST", "/api/v1/webhooks/"+h.ID+"/deliveries/msg_nope/resend", adminToken, nil); r.status != 404 {
		t.Errorf("resend of an unknown delivery: %d %s", r.status, r.body)
	}
}

// A receiver answering 410 Gone disables its endpoint at the first attempt;
// Retry-After is honoured on other failures.
func TestWebhookGoneDisablesAndRetryAfter(t *testing.T) {
	t.Parallel()
	s := newStack(t, withPrivateWebhooks())
	s.start("serve")

	gone := newHookReceiver(t)
	gone.respond = func(int) (int, http.Header) { return http.StatusGone, nil }
	h := s.createHook(seed.UserKey, map[string]any{"url": gone.url()})
	gone.trust(h.Secret)
	if h.Admin || h.UserID != seed.UserID || len(h.Events) != 6 {
		t.Fatalf("user endpoint %+v, want every event type by default", h)
	}
	if r := s.do("POST", "/api/v1/webhooks/"+h.ID+"/test", seed.UserKey, nil); r.status != http.StatusAccepted {
		t.Fatalf("test: %d %s", r.status, r.body)
	}
	ev := gone.waitFor(1, 20*time.Second)[0].event
	if ev.Type != "webhook.test" || ev.Data.EndpointID != h.ID {
		t.Errorf("test event %+v", ev)
	}
	d := s.waitDelivery(seed.UserKey, h.ID, 1, 10*time.Second)
	if d.Status != "failed" || len(d.Attempts) != 1 || d.Attempts[0].StatusCode != 410 {
		t.Errorf("delivery after 410: %+v", d)
	}
	got, _ := s.getHook(seed.UserKey, h.ID)
	if got.Enabled || !strings.Contains(got.DisabledReason, "410") {
		t.Fatalf("endpoint after 410: %+v", got)
	}
	if r := s.do("POST", "/api/v1/webhooks/"+h.ID+"/test", seed.UserKey, nil); r.status != http.StatusConflict {
		t.Errorf("test on a disabled endpoint: %d %s", r.status, r.body)
	}
	time.Sleep(6 * time.Second) // no retry follows a 410
	if n := len(gone.requests()); n != 1 {
		t.Errorf("the 410 was retried: %d requests", n)
	}
	r := s.do("PATCH", "/api/v1/webhooks/"+h.ID, seed.UserKey, map[string]any{"enabled": true})
	var patched hook
	r.json(t, &patched)
	if r.status != 200 || !patched.Enabled || patched.DisabledReason != "" {
		t.Errorf("re-enable: %d %s", r.status, r.body)
	}

	// 503 with Retry-After: 12 → the retry waits 12 s, not the schedule's 5 s.
	busy := newHookReceiver(t)
	busy.respond = func(n int) (int, http.Header) {
		if n == 0 {
			return http.StatusServiceUnavailable, http.Header{"Retry-After": {"12"}}
		}
		return http.StatusOK, nil
	}
	h2 := s.createHook(seed.UserKey, map[string]any{"url": busy.url()})
	busy.trust(h2.Secret)
	if r := s.do("POST", "/api/v1/webhooks/"+h2.ID+"/test", seed.UserKey, nil); r.status != http.StatusAccepted {
		t.Fatalf("test: %d %s", r.status, r.body)
	}
	reqs := busy.waitFor(2, 40*time.Second)
	if gap := reqs[1].at.Sub(reqs[0].at); gap < 11500*time.Millisecond {
		t.Errorf("retry %s after a Retry-After of 12 s", gap)
	}
}

// Each user's endpoint hears only of that user's jobs; an admin's hears of
// everyone's. Another principal's endpoint does not exist for the caller.
func TestWebhookOwnership(t *testing.T) {
	t.Parallel()
	s := newStack(t, withPrivateWebhooks())
	s.start("serve")
	admin, alice, dup := newHookReceiver(t), newHookReceiver(t), newHookReceiver(t)
	ha := s.createHook(adminToken, map[string]any{"url": admin.url()})
	h2 := s.createHook(seed.UserKey, map[string]any{"url": alice.url()})
	h4 := s.createHook(seed.DuplicateKey, map[string]any{"url": dup.url()})
	admin.trust(ha.Secret)
	alice.trust(h2.Secret)
	dup.trust(h4.Secret)

	window := map[string]any{"start_time": "2026-02-01T00:00:00Z", "end_time": "2026-02-02T00:00:00Z"}
	j2 := s.create(seed.UserKey, map[string]any{"type": "usage_logs", "params": window})
	j4 := s.create(seed.DuplicateKey, map[string]any{"type": "usage_logs", "params": window})
	ja := s.create(adminToken, map[string]any{"type": "probe_logs"})
	for _, c := range []struct{ token, id string }{{seed.UserKey, j2.ID}, {seed.DuplicateKey, j4.ID}, {adminToken, ja.ID}} {
		if j := s.wait(c.token, c.id, 60*time.Second); j.Status != "succeeded" {
			t.Fatalf("job %s: %s %+v", c.id, j.Status, j.Error)
		}
	}
	jobsOf := func(rs []hookRequest) []string {
		var ids []string
		for _, r := range rs {
			ids = append(ids, r.event.Data.JobID)
		}
		slices.Sort(ids)
		return ids
	}
	all := []string{j2.ID, j4.ID, ja.ID}
	slices.Sort(all)
	if got := jobsOf(admin.waitFor(3, 30*time.Second)); !slices.Equal(got, all) {
		t.Errorf("admin endpoint heard of %v, want %v", got, all)
	}
	alice.waitFor(1, 10*time.Second)
	dup.waitFor(1, 10*time.Second)
	time.Sleep(2 * time.Second) // anything misrouted would have arrived by now
	if got := jobsOf(alice.requests()); !slices.Equal(got, []string{j2.ID}) {
		t.Errorf("user %d's endpoint heard of %v, want only %s", seed.UserID, got, j2.ID)
	}
	if got := jobsOf(dup.requests()); !slices.Equal(got, []string{j4.ID}) {
		t.Errorf("user %d's endpoint heard of %v, want only %s", seed.DuplicateKeyUserID, got, j4.ID)
	}

	// Another principal's endpoint: 404 for every route, admins included.
	for _, token := range []string{seed.DuplicateKey, adminToken, seed.AdminKey} {
		for _, rq := range []struct{ method, path string }{
			{"GET", ""}, {"PATCH", ""}, {"DELETE", ""}, {"POST", "/rotate"}, {"POST", "/test"}, {"GET", "/deliveries"},
		} {
			var body any
			if rq.method == "PATCH" {
				body = map[string]any{"enabled": false}
			}
			if r := s.do(rq.method, "/api/v1/webhooks/"+h2.ID+rq.path, token, body); r.status != 404 {
				t.Errorf("%s %s%s by another principal: %d %s", rq.method, h2.ID, rq.path, r.status, r.body)
			}
		}
	}
	r := s.do("GET", "/api/v1/webhooks", seed.DuplicateKey, nil)
	if r.status != 200 || bytes.Contains(r.body, []byte(h2.ID)) || !bytes.Contains(r.body, []byte(h4.ID)) {
		t.Errorf("list as user %d: %s", seed.DuplicateKeyUserID, r.body)
	}
	if h, _ := s.getHook(seed.UserKey, h2.ID); h.ID != h2.ID || !h.Enabled {
		t.Errorf("the owner's endpoint changed: %+v", h)
	}
	if r := s.do("DELETE", "/api/v1/webhooks/"+h2.ID, seed.UserKey, nil); r.status != http.StatusNoContent {
		t.Errorf("owner's delete: %d %s", r.status, r.body)
	}
	if _, r := s.getHook(seed.UserKey, h2.ID); r.status != 404 {
		t.Errorf("deleted endpoint: %d", r.status)
	}
}

// After a rotation both secrets sign, each signature verifies with its own
// secret, and the old secret stops after 24 hours.
func TestWebhookRotation(t *testing.T) {
	t.Parallel()
	s := newStack(t, withPrivateWebhooks())
	s.start("serve")
	rcv := newHookReceiver(t)
	h := s.createHook(seed.UserKey, map[string]any{"url": rcv.url(), "events": []string{"export.failed"}})
	old := h.Secret

	r := s.do("POST", "/api/v1/webhooks/"+h.ID+"/rotate", seed.UserKey, nil)
	var rotated hook
	r.json(t, &rotated)
	if r.status != 200 || !strings.HasPrefix(rotated.Secret, "whsec_") || rotated.Secret == old || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("rotate: %d %s", r.status, r.body)
	}
	if e := rotated.PreviousSecretExpiresAt; e == nil || time.Until(*e) < 23*time.Hour || time.Until(*e) > 25*time.Hour {
		t.Errorf("previous secret expires at %v, want in 24 h", e)
	}
	// The receiver trusts only the new secret, as after switching over.
	rcv.trust(rotated.Secret)
	if r := s.do("POST", "/api/v1/webhooks/"+h.ID+"/test", seed.UserKey, nil); r.status != http.StatusAccepted {
		t.Fatalf("test: %d %s", r.status, r.body)
	}
	got := rcv.waitFor(1, 20*time.Second)[0]
	sigs := strings.Fields(got.signature)
	if len(sigs) != 2 {
		t.Fatalf("signature header %q, want two signatures", got.signature)
	}
	if !verifySignature(rotated.Secret, got.id, got.timestamp, got.body, sigs[0]) || verifySignature(old, got.id, got.timestamp, got.body, sigs[0]) {
		t.Errorf("first signature is not the new secret's")
	}
	if !verifySignature(old, got.id, got.timestamp, got.body, sigs[1]) || verifySignature(rotated.Secret, got.id, got.timestamp, got.body, sigs[1]) {
		t.Errorf("second signature is not the old secret's")
	}

	// Once the old secret has expired, only the new one signs.
	s.exec(`UPDATE hubexport.webhook_endpoints SET previous_secret_expires_at = now() - interval '1 second' WHERE id = $1`, h.ID)
	if r := s.do("POST", "/api/v1/webhooks/"+h.ID+"/test", seed.UserKey, nil); r.status != http.StatusAccepted {
		t.Fatalf("test: %d %s", r.status, r.body)
	}
	if sig := rcv.waitFor(2, 20*time.Second)[1].signature; len(strings.Fields(sig)) != 1 {
		t.Errorf("after expiry: signature header %q", sig)
	}
}

// A job canceled while Redis is unreachable is still announced: the
// delivery is recorded in PostgreSQL and queued once Redis is back.
func TestWebhookCanceledWhileRedisDown(t *testing.T) {
	t.Parallel()
	s := newStack(t, withPrivateWebhooks())
	redisProxy := testenv.NewProxy(t, s.redis.Addr)
	s.env["REDIS_URL"] = fmt.Sprintf("%s/%d", redisProxy.URL("redis"), s.redis.DB)
	s.env["HUB_REDIS_URL"] = s.redis.URL
	api := s.start("api")
	rcv := newHookReceiver(t)
	h := s.createHook(adminToken, map[string]any{"url": rcv.url(), "events": []string{"export.canceled"}})
	rcv.trust(h.Secret)

	j := s.create(adminToken, map[string]any{"type": "probe_logs"}) // no worker runs: it stays queued
	redisProxy.Cut()
	r := s.do("DELETE", "/api/v1/exports/"+j.ID, adminToken, nil)
	if r.status != 200 {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	if ds := s.deliveries(adminToken, h.ID); len(ds) != 1 || ds[0].Status != "pending" {
		t.Fatalf("deliveries while Redis is down: %+v", ds)
	}
	redisProxy.Restore()
	s.start("worker")
	ev := rcv.waitFor(1, 30*time.Second)[0].event
	if ev.Type != "export.canceled" || ev.Data.JobID != j.ID || ev.Data.Status != "canceled" || ev.Data.Result != nil ||
		ev.Data.ErrorCode == nil || *ev.Data.ErrorCode != "canceled" || ev.Data.Links.Download != "" {
		t.Errorf("canceled event %+v", ev)
	}
	if !strings.Contains(api.Logs(), "webhook_enqueue_deferred") {
		t.Errorf("the API did not report deferring the delivery")
	}
}

// Without WEBHOOK_ALLOW_PRIVATE, private addresses are refused when an
// endpoint is created and again when a delivery dials; bad input names its
// field.
func TestWebhookPrivateAddressesAndBadInput(t *testing.T) {
	t.Parallel()
	s := newStack(t, withPrivateWebhooks())
	rcv := newHookReceiver(t)
	// An endpoint made while private addresses were allowed...
	p := s.start("serve")
	h := s.createHook(adminToken, map[string]any{"url": rcv.url()})
	rcv.trust(h.Secret)
	p.Stop(t)
	// ...is refused at dial time once they are not.
	s.env["WEBHOOK_ALLOW_PRIVATE"] = "false"
	s.start("serve")
	if r := s.do("POST", "/api/v1/webhooks/"+h.ID+"/test", adminToken, nil); r.status != http.StatusAccepted {
		t.Fatalf("test: %d %s", r.status, r.body)
	}
	d := s.waitDelivery(adminToken, h.ID, 1, 20*time.Second)
	if a := d.Attempts[0]; a.StatusCode != 0 || !strings.Contains(a.Error, "refused") || !strings.Contains(a.Error, "loopback") {
		t.Errorf("attempt to a loopback receiver: %+v", a)
	}

	_, port, _ := strings.Cut(strings.TrimPrefix(rcv.srv.URL, "http://"), ":")
	for _, c := range []struct {
		name  string
		body  any
		field string
	}{
		{"loopback", map[string]any{"url": rcv.url()}, "url"},
		{"localhost", map[string]any{"url": "http://localhost:" + port + "/hook"}, "url"},
		{"metadata", map[string]any{"url": "http://169.254.169.254/latest/meta-data/"}, "url"},
		{"private", map[string]any{"url": "https://10.1.2.3/hook"}, "url"},
		{"cgnat", map[string]any{"url": "https://100.64.1.1/hook"}, "url"},
		{"ipv6 metadata", map[string]any{"url": "https://[fd00:ec2::254]/hook"}, "url"},
		{"not http", map[string]any{"url": "ftp://example.com/hook"}, "url"},
		{"javascript", map[string]any{"url": "javascript:alert(1)"}, "url"},
		{"no host", map[string]any{"url": "https:///hook"}, "url"},
		{"missing url", map[string]any{"events": []string{"export.failed"}}, "url"},
		{"unknown event", map[string]any{"url": "https://8.8.8.8/hook", "events": []string{"export.finished"}}, "events"},
		{"test event", map[string]any{"url": "https://8.8.8.8/hook", "events": []string{"webhook.test"}}, "events"},
		{"no events", map[string]any{"url": "https://8.8.8.8/hook", "events": []string{}}, "events"},
		{"unknown field", map[string]any{"url": "https://8.8.8.8/hook", "secret": "whsec_mine"}, "secret"},
		{"events type", `{"url": "https://8.8.8.8/hook", "events": "export.failed"}`, "events"},
	} {
		r := s.do("POST", "/api/v1/webhooks", adminToken, c.body)
		code, fields := r.errorCode(t)
		if r.status != 400 || code != "invalid_request" || fields[c.field] == "" {
			t.Errorf("%s: %d %s, want 400 naming %s", c.name, r.status, r.body, c.field)
		}
	}
	if r := s.do("PATCH", "/api/v1/webhooks/"+h.ID, adminToken, map[string]any{"url": "http://127.0.0.2/x"}); r.status != 400 {
		t.Errorf("PATCH to a loopback URL: %d %s", r.status, r.body)
	}
	if r := s.do("PATCH", "/api/v1/webhooks/"+h.ID, adminToken, map[string]any{"events": []string{"nope"}}); r.status != 400 {
		t.Errorf("PATCH to an unknown event: %d %s", r.status, r.body)
	}
	if r := s.do("POST", "/api/v1/webhooks", adminToken, map[string]any{"url": "https://8.8.8.8/hook"}); r.status != http.StatusCreated {
		t.Errorf("public address: %d %s", r.status, r.body)
	}
	if n := len(rcv.requests()); n != 0 || rcv.rejected != 0 {
		t.Errorf("the loopback receiver was reached %d times", n+rcv.rejected)
	}
}

type auditEntry struct {
	ID      int64          `json:"id"`
	At      time.Time      `json:"at"`
	Actor   string         `json:"actor"`
	UserID  int64          `json:"user_id"`
	Action  string         `json:"action"`
	Target  string         `json:"target"`
	Params  map[string]any `json:"params"`
	Outcome string         `json:"outcome"`
}

func (s *stack) audit(query string) ([]auditEntry, string) {
	s.t.Helper()
	r := s.do("GET", "/api/v1/audit?"+query, adminToken, nil)
	if r.status != 200 {
		s.t.Fatalf("audit?%s: %d %s", query, r.status, r.body)
	}
	var page struct {
		Data       []auditEntry `json:"data"`
		NextCursor string       `json:"next_cursor"`
	}
	r.json(s.t, &page)
	return page.Data, page.NextCursor
}

// Webhook changes land in the audit trail, which administrators list with
// filters and cursor pagination, newest first; users may not.
func TestAuditListing(t *testing.T) {
	t.Parallel()
	s := newStack(t, withPrivateWebhooks())
	s.start("serve")
	start := time.Now()
	h := s.createHook(adminToken, map[string]any{"url": "http://127.0.0.1:9/hook?token=secret-in-url"})
	s.createHook(seed.UserKey, map[string]any{"url": "http://127.0.0.1:9/user"})
	s.do("PATCH", "/api/v1/webhooks/"+h.ID, adminToken, map[string]any{"enabled": false})
	s.do("POST", "/api/v1/webhooks/"+h.ID+"/rotate", adminToken, nil)
	s.do("POST", "/api/v1/webhooks", seed.UserKey, map[string]any{"url": "gopher://x"})
	s.do("DELETE", "/api/v1/webhooks/"+h.ID, adminToken, nil)
	mid := time.Now()
	time.Sleep(20 * time.Millisecond)
	s.create(adminToken, map[string]any{"type": "probe_logs"})

	if r := s.do("GET", "/api/v1/audit", seed.UserKey, nil); r.status != 403 {
		t.Errorf("user: %d %s", r.status, r.body)
	}
	all, next := s.audit("")
	if len(all) != 7 || next != "" {
		t.Fatalf("audit: %d entries (next %q): %+v", len(all), next, all)
	}
	for i := 1; i < len(all); i++ {
		if all[i].At.After(all[i-1].At) {
			t.Errorf("not newest first: %v after %v", all[i].At, all[i-1].At)
		}
	}
	if all[0].Action != "export.create" || all[len(all)-1].Action != "webhook.create" {
		t.Errorf("order: first %s, last %s", all[0].Action, all[len(all)-1].Action)
	}
	for _, e := range all {
		raw, _ := json.Marshal(e)
		if bytes.Contains(raw, []byte("secret-in-url")) || bytes.Contains(raw, []byte("whsec_")) {
			t.Errorf("audit entry carries a secret: %s", raw)
		}
	}

	created, _ := s.audit("action=webhook.create")
	if len(created) != 3 || created[0].Outcome != "error:invalid_request" || created[1].Outcome != "ok" || created[2].Target != "webhook:"+h.ID {
		t.Errorf("webhook.create entries: %+v", created)
	}
	hooks, _ := s.audit("action=" + url.QueryEscape("webhook.*"))
	var actions []string
	for _, e := range hooks {
		actions = append(actions, e.Action)
	}
	if want := []string{"webhook.delete", "webhook.create", "webhook.rotate", "webhook.update", "webhook.create", "webhook.create"}; !slices.Equal(actions, want) {
		t.Errorf("webhook.* actions %v, want %v", actions, want)
	}
	users, _ := s.audit("actor=" + url.QueryEscape(fmt.Sprintf("user:%d", seed.UserID)))
	if len(users) != 2 || users[0].UserID != seed.UserID || !strings.HasPrefix(users[1].Actor, fmt.Sprintf("user:%d/key:", seed.UserID)) {
		t.Errorf("actor=user:%d: %+v", seed.UserID, users)
	}
	if exact, _ := s.audit("actor=" + url.QueryEscape(users[0].Actor)); len(exact) != 2 {
		t.Errorf("actor=%s: %d entries", users[0].Actor, len(exact))
	}
	admin, _ := s.audit("actor=admin_token&action=webhook.rotate")
	if len(admin) != 1 || admin[0].Target != "webhook:"+h.ID {
		t.Errorf("admin rotations: %+v", admin)
	}

	// Time filters, RFC 3339 and epoch milliseconds.
	after, _ := s.audit("since=" + url.QueryEscape(mid.UTC().Format(time.RFC3339Nano)))
	if len(after) != 1 || after[0].Action != "export.create" {
		t.Errorf("since mid: %+v", after)
	}
	before, _ := s.audit("until=" + strconv.FormatInt(mid.UnixMilli()+1, 10) + "&since=" + strconv.FormatInt(start.Add(-time.Second).UnixMilli(), 10))
	if len(before) != 6 {
		t.Errorf("until mid: %d entries", len(before))
	}

	// Pages of 2 cover the listing exactly once, in order.
	var paged []int64
	cursor := ""
	for range 10 {
		q := "limit=2"
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		page, next := s.audit(q)
		for _, e := range page {
			paged = append(paged, e.ID)
		}
		if cursor = next; cursor == "" {
			break
		}
	}
	var ids []int64
	for _, e := range all {
		ids = append(ids, e.ID)
	}
	if !slices.Equal(paged, ids) {
		t.Errorf("paged ids %v, want %v", paged, ids)
	}

	for q, field := range map[string]string{"since=yesterday": "since", "until=2026-13-01T00:00:00Z": "until",
		"cursor=bm9wZQ": "cursor", "limit=0": "limit", "limit=201": "limit"} {
		r := s.do("GET", "/api/v1/audit?"+q, adminToken, nil)
		if _, fields := r.errorCode(t); r.status != 400 || fields[field] == "" {
			t.Errorf("audit?%s: %d %s", q, r.status, r.body)
		}
	}
}

// A worker that died between ending a job and recording its announcement:
// the delivery pump announces the job once, later.
func TestWebhookAnnouncesJobsAWorkerDidNot(t *testing.T) {
	t.Parallel()
	s := newStack(t, withPrivateWebhooks())
	s.start("serve")
	j := s.create(adminToken, map[string]any{"type": "probe_logs"})
	if j = s.wait(adminToken, j.ID, 30*time.Second); j.Status != "succeeded" {
		t.Fatalf("job %s", j.Status)
	}
	rcv := newHookReceiver(t)
	h := s.createHook(adminToken, map[string]any{"url": rcv.url(), "events": []string{"export.succeeded"}})
	rcv.trust(h.Secret)
	// As PostgreSQL reads after a crash right after the job's final status.
	s.exec(`UPDATE hubexport.jobs SET notify_pending = true, finished_at = now() - interval '1 minute' WHERE id = $1`, j.ID)
	got := rcv.waitFor(1, 30*time.Second)
	if got[0].event.Type != "export.succeeded" || got[0].event.Data.JobID != j.ID {
		t.Fatalf("announcement %+v", got[0].event)
	}
	// Several pump passes later it has still been announced once.
	time.Sleep(3 * time.Second)
	if n := len(rcv.requests()); n != 1 {
		t.Fatalf("job announced %d times", n)
	}
}
