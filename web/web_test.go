package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hubexport/hubexport/internal/export"
)

type apiError struct {
	Error struct {
		Code    string            `json:"code"`
		Message string            `json:"message"`
		Fields  map[string]string `json:"fields"`
	} `json:"error"`
}

// wantError checks the status and the JSON error code, and returns the error.
func wantError(t *testing.T, w *httptest.ResponseRecorder, status int, code string) apiError {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d, want %d; body %s", w.Code, status, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want JSON", ct)
	}
	var e apiError
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("error body %q: %v", w.Body, err)
	}
	if e.Error.Code != code {
		t.Errorf("error code = %q, want %q; body %s", e.Error.Code, code, w.Body)
	}
	if e.Error.Message == "" {
		t.Errorf("error without a message: %s", w.Body)
	}
	return e
}

func wantJSON[T any](t *testing.T, w *httptest.ResponseRecorder, status int) T {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d, want %d; body %s", w.Code, status, w.Body)
	}
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	return v
}

const probeBody = `{"type":"probe_logs","params":{"max_lines":10}}`

func TestAuthentication(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tc := range []struct {
		name string
		hdr  []string
	}{
		{"no token", nil},
		{"bad bearer token", []string{"Authorization", "Bearer nope"}},
		{"bad x-api-key", []string{"x-api-key", "nope"}},
		{"empty bearer", []string{"Authorization", "Bearer "}},
		{"basic auth", []string{"Authorization", "Basic " + aliceToken}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := b.do(t, "GET", "/api/v1/exports", "", "", tc.hdr...)
			wantError(t, w, http.StatusUnauthorized, "unauthenticated")
			if got := w.Header().Get("WWW-Authenticate"); got != "Bearer" {
				t.Errorf("WWW-Authenticate = %q, want Bearer", got)
			}
		})
	}
	for _, tc := range []struct {
		name string
		hdr  []string
	}{
		{"bearer", []string{"Authorization", "Bearer " + aliceToken}},
		{"lower-case scheme", []string{"Authorization", "bearer " + aliceToken}},
		{"x-api-key", []string{"x-api-key", aliceToken}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := b.do(t, "GET", "/api/v1/exports", "", "", tc.hdr...)
			wantJSON[export.JobPage](t, w, http.StatusOK)
		})
	}
}

func TestCreate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := b.do(t, "POST", "/api/v1/exports", adminToken, probeBody)
	job := wantJSON[export.Job](t, w, http.StatusAccepted)
	if job.ID == "" || job.Type != export.TypeProbeLogs || job.Format != export.FormatText || job.Status != export.StatusQueued {
		t.Errorf("job = %+v", job)
	}
	if got, want := w.Header().Get("Location"), "/api/v1/exports/"+job.ID; got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	if got := w.Header().Get("Idempotent-Replayed"); got != "" {
		t.Errorf("first create has Idempotent-Replayed: %q", got)
	}
	var params export.ProbeLogParams
	if err := json.Unmarshal(job.Params, &params); err != nil || params.MaxLines != 10 || params.Timezone != "UTC" {
		t.Errorf("params = %s (%v), want normalised with max_lines 10", job.Params, err)
	}
	got := wantJSON[export.Job](t, b.do(t, "GET", w.Header().Get("Location"), adminToken, ""), http.StatusOK)
	if got.ID != job.ID {
		t.Errorf("GET Location gave job %q, want %q", got.ID, job.ID)
	}
}

func TestCreateForbiddenForUser(t *testing.T) {
	t.Parallel()
	b := setup(t)
	wantError(t, b.do(t, "POST", "/api/v1/exports", aliceToken, probeBody), http.StatusForbidden, "admin_only")
}

func TestCreateRejectsBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tc := range []struct {
		name, body, field string
	}{
		{"no type", `{}`, "type"},
		{"unknown type", `{"type":"everything"}`, "type"},
		{"unknown format", `{"type":"probe_logs","format":"csv"}`, "format"},
		{"unknown top-level field", `{"type":"probe_logs","colour":"red"}`, "colour"},
		{"unknown param", `{"type":"probe_logs","params":{"colour":"red"}}`, "params.colour"},
		{"end before start", `{"type":"probe_logs","params":{"start_time":"2026-01-02T00:00:00Z","end_time":"2026-01-01T00:00:00Z"}}`, "params.end_time"},
		{"unknown time zone", `{"type":"probe_logs","params":{"timezone":"Mars/Olympus_Mons"}}`, "params.timezone"},
		{"non-numeric endpoint_id", `{"type":"probe_logs","params":{"endpoint_id":"abc"}}`, "params.endpoint_id"},
		{"negative max_lines", `{"type":"probe_logs","params":{"max_lines":-1}}`, "params.max_lines"},
		{"type not a string", `{"type":7}`, "type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := wantError(t, b.do(t, "POST", "/api/v1/exports", adminToken, tc.body), http.StatusBadRequest, "invalid_request")
			if _, ok := e.Error.Fields[tc.field]; !ok || len(e.Error.Fields) != 1 {
				t.Errorf("fields = %v, want exactly %q", e.Error.Fields, tc.field)
			}
		})
	}
	t.Run("malformed JSON", func(t *testing.T) {
		t.Parallel()
		wantError(t, b.do(t, "POST", "/api/v1/exports", adminToken, `{"type":`), http.StatusBadRequest, "invalid_request")
	})
	t.Run("not JSON", func(t *testing.T) {
		t.Parallel()
		wantError(t, b.do(t, "POST", "/api/v1/exports", adminToken, "type=probe_logs"), http.StatusBadRequest, "invalid_request")
	})
	t.Run("multipart content type", func(t *testing.T) {
		t.Parallel()
		w := b.do(t, "POST", "/api/v1/exports", adminToken, probeBody, "Content-Type", "multipart/form-data; boundary=x")
		e := wantError(t, w, http.StatusBadRequest, "invalid_request")
		if _, ok := e.Error.Fields["Content-Type"]; !ok {
			t.Errorf("fields = %v, want Content-Type", e.Error.Fields)
		}
	})
	t.Cleanup(func() {
		if n := len(b.store.audits()); n == 0 {
			t.Error("no audit entries: the bad requests did not reach the service")
		}
		page, _ := b.store.Jobs(context.Background(), export.JobFilter{Limit: 10})
		if n := len(page.Jobs); n != 0 {
			t.Errorf("bad requests stored %d jobs", n)
		}
	})
}

func TestCreateBodyTooLarge(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := `{"type":"probe_logs","params":{"search":"` + strings.Repeat("a", maxBodyBytes) + `"}}`
	t.Run("with Content-Length", func(t *testing.T) {
		t.Parallel()
		wantError(t, b.do(t, "POST", "/api/v1/exports", adminToken, body), http.StatusRequestEntityTooLarge, "body_too_large")
	})
	t.Run("chunked", func(t *testing.T) {
		t.Parallel()
		req := httptest.NewRequest("POST", "/api/v1/exports", strings.NewReader(body))
		req.ContentLength = -1
		req.Header.Set("Authorization", "Bearer "+adminToken)
		w := httptest.NewRecorder()
		b.h.ServeHTTP(w, req)
		wantError(t, w, http.StatusRequestEntityTooLarge, "body_too_large")
	})
}

func TestCreateIdempotency(t *testing.T) {
	t.Parallel()
	b := setup(t)
	first := wantJSON[export.Job](t, b.do(t, "POST", "/api/v1/exports", adminToken, probeBody, "Idempotency-Key", "k-1"), http.StatusAccepted)

	w := b.do(t, "POST", "/api/v1/exports", adminToken, probeBody, "Idempotency-Key", "k-1")
	again := wantJSON[export.Job](t, w, http.StatusAccepted)
	if again.ID != first.ID {
		t.Errorf("replay made job %q, want %q", again.ID, first.ID)
	}
	if got := w.Header().Get("Idempotent-Replayed"); got != "true" {
		t.Errorf("Idempotent-Replayed = %q, want true", got)
	}
	if got, want := w.Header().Get("Location"), "/api/v1/exports/"+first.ID; got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}

	other := `{"type":"probe_logs","params":{"max_lines":20}}`
	wantError(t, b.do(t, "POST", "/api/v1/exports", adminToken, other, "Idempotency-Key", "k-1"), http.StatusConflict, "idempotency_key_reused")

	fresh := wantJSON[export.Job](t, b.do(t, "POST", "/api/v1/exports", adminToken, probeBody, "Idempotency-Key", "k-2"), http.StatusAccepted)
	if fresh.ID == first.ID {
		t.Errorf("a new key replayed job %q", first.ID)
	}
}

func TestCreateActiveJobCap(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		retryAfter time.Duration
		want       string
	}{
		{7 * time.Second, "7"},
		{1500 * time.Millisecond, "2"},
		{0, "30"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.svc.MaxActive = 1
			b.store.retryAfter = tc.retryAfter
			wantJSON[export.Job](t, b.do(t, "POST", "/api/v1/exports", adminToken, probeBody), http.StatusAccepted)
			w := b.do(t, "POST", "/api/v1/exports", adminToken, probeBody)
			wantError(t, w, http.StatusTooManyRequests, "too_many_active_jobs")
			if got := w.Header().Get("Retry-After"); got != tc.want {
				t.Errorf("Retry-After = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestClientAddressInAudit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		proxies []string
		want    string
	}{
		{"no trusted proxies", nil, "192.0.2.1"},
		{"trusted proxy", []string{"192.0.2.0/24"}, "203.0.113.9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(h *handler) { h.proxies = tc.proxies })
			// httptest requests come from 192.0.2.1.
			wantJSON[export.Job](t, b.do(t, "POST", "/api/v1/exports", adminToken, probeBody, "X-Forwarded-For", "203.0.113.9"), http.StatusAccepted)
			audits := b.store.audits()
			if len(audits) != 1 || audits[0].Address != tc.want || audits[0].Action != "export.create" {
				t.Errorf("audit = %+v, want one export.create from %s", audits, tc.want)
			}
		})
	}
}

func seedJob(b *bundle, id string, owner export.Principal, status export.Status) {
	b.store.put(&export.Job{ID: id, Type: export.TypeProbeLogs, Format: export.FormatText, Status: status, UserID: owner.UserID, KeyID: owner.KeyID})
}

func TestList(t *testing.T) {
	t.Parallel()
	b := setup(t)
	seedJob(b, "exp_001", alice, export.StatusSucceeded)
	seedJob(b, "exp_002", bob, export.StatusQueued)
	seedJob(b, "exp_003", alice, export.StatusQueued)
	seedJob(b, "exp_004", alice, export.StatusFailed)

	ids := func(p export.JobPage) []string {
		var out []string
		for _, j := range p.Jobs {
			out = append(out, j.ID)
		}
		return out
	}

	page := wantJSON[export.JobPage](t, b.do(t, "GET", "/api/v1/exports?limit=2", aliceToken, ""), http.StatusOK)
	if got := strings.Join(ids(page), ","); got != "exp_004,exp_003" || page.NextCursor == "" {
		t.Fatalf("page 1 = %s, next %q; want exp_004,exp_003 and a cursor", got, page.NextCursor)
	}
	page = wantJSON[export.JobPage](t, b.do(t, "GET", "/api/v1/exports?limit=2&cursor="+page.NextCursor, aliceToken, ""), http.StatusOK)
	if got := strings.Join(ids(page), ","); got != "exp_001" || page.NextCursor != "" {
		t.Errorf("page 2 = %s, next %q; want exp_001 and no cursor", got, page.NextCursor)
	}

	// A user's user_id filter cannot reach someone else's jobs.
	page = wantJSON[export.JobPage](t, b.do(t, "GET", "/api/v1/exports?user_id=2", aliceToken, ""), http.StatusOK)
	if got := strings.Join(ids(page), ","); got != "exp_004,exp_003,exp_001" {
		t.Errorf("alice with user_id=2 saw %s", got)
	}
	page = wantJSON[export.JobPage](t, b.do(t, "GET", "/api/v1/exports?user_id=2", adminToken, ""), http.StatusOK)
	if got := strings.Join(ids(page), ","); got != "exp_002" {
		t.Errorf("admin with user_id=2 saw %s, want exp_002", got)
	}
	page = wantJSON[export.JobPage](t, b.do(t, "GET", "/api/v1/exports?status=queued&type=probe_logs", adminToken, ""), http.StatusOK)
	if got := strings.Join(ids(page), ","); got != "exp_003,exp_002" {
		t.Errorf("admin with status=queued saw %s, want exp_003,exp_002", got)
	}

	w := b.do(t, "GET", "/api/v1/exports?status=canceled", aliceToken, "")
	if body := strings.TrimSpace(w.Body.String()); w.Code != http.StatusOK || !strings.Contains(body, `"data":[]`) {
		t.Errorf("empty listing = %d %s, want 200 with \"data\":[]", w.Code, body)
	}

	for _, tc := range []struct{ query, field string }{
		{"status=bogus", "status"},
		{"type=bogus", "type"},
		{"user_id=abc", "user_id"},
		{"limit=0", "limit"},
		{"limit=201", "limit"},
		{"limit=-1", "limit"},
		{"limit=ten", "limit"},
	} {
		e := wantError(t, b.do(t, "GET", "/api/v1/exports?"+tc.query, adminToken, ""), http.StatusBadRequest, "invalid_request")
		if _, ok := e.Error.Fields[tc.field]; !ok {
			t.Errorf("%s: fields = %v, want %q", tc.query, e.Error.Fields, tc.field)
		}
	}
}

func TestOtherUsersJobIsNotFound(t *testing.T) {
	t.Parallel()
	b := setup(t)
	seedJob(b, "exp_alice", alice, export.StatusQueued)
	for _, tc := range []struct{ method, path string }{
		{"GET", "/api/v1/exports/exp_alice"},
		{"GET", "/api/v1/exports/exp_alice/events"},
		{"GET", "/api/v1/exports/exp_alice/download"},
		{"DELETE", "/api/v1/exports/exp_alice"},
		{"GET", "/api/v1/exports/exp_missing"},
		{"GET", "/api/v1/exports/exp_missing/events"},
	} {
		wantError(t, b.do(t, tc.method, tc.path, bobToken, ""), http.StatusNotFound, "not_found")
	}
	// Bob's attempt changed nothing; the owner and an admin still see it.
	job := wantJSON[export.Job](t, b.do(t, "GET", "/api/v1/exports/exp_alice", aliceToken, ""), http.StatusOK)
	if job.Status != export.StatusQueued {
		t.Errorf("status = %s after bob's DELETE", job.Status)
	}
	wantJSON[export.Job](t, b.do(t, "GET", "/api/v1/exports/exp_alice", adminToken, ""), http.StatusOK)
}

func TestCancel(t *testing.T) {
	t.Parallel()
	b := setup(t)
	seedJob(b, "exp_q", alice, export.StatusQueued)
	job := wantJSON[export.Job](t, b.do(t, "DELETE", "/api/v1/exports/exp_q", aliceToken, ""), http.StatusOK)
	if job.Status != export.StatusCanceled || job.Error == nil || job.Error.Code != "canceled" {
		t.Errorf("canceled job = %+v", job)
	}
}

func TestDownload(t *testing.T) {
	t.Parallel()
	b := setup(t)
	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	b.store.put(&export.Job{ID: "exp_ok", Type: export.TypeProbeLogs, Status: export.StatusSucceeded, UserID: alice.UserID,
		StorageKey: "exports/2026/01/exp_ok/probe-logs-2026-01-29.txt",
		Result:     &export.Result{Filename: "probe-logs-2026-01-29.txt", ExpiresAt: expires}})
	b.store.put(&export.Job{ID: "exp_old", Type: export.TypeProbeLogs, Status: export.StatusSucceeded, UserID: alice.UserID,
		StorageKey: "exports/2026/01/exp_old/probe-logs-2026-01-01.txt",
		Result:     &export.Result{Filename: "probe-logs-2026-01-01.txt", ExpiresAt: time.Now().Add(-time.Minute)}})
	seedJob(b, "exp_run", alice, export.StatusRunning)

	w := b.do(t, "GET", "/api/v1/exports/exp_ok/download", aliceToken, "")
	if w.Code != http.StatusFound {
		t.Fatalf("status = %d, want 302; body %s", w.Code, w.Body)
	}
	loc := w.Header().Get("Location")
	if !strings.HasPrefix(loc, "https://files.example/exports/2026/01/exp_ok/probe-logs-2026-01-29.txt?") {
		t.Errorf("Location = %q", loc)
	}
	if got := w.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}

	w = b.do(t, "GET", "/api/v1/exports/exp_ok/download?redirect=false", aliceToken, "")
	link := wantJSON[export.Link](t, w, http.StatusOK)
	if link.URL != loc || link.ExpiresAt.IsZero() || link.ExpiresAt.After(expires) {
		t.Errorf("link = %+v, want %s expiring by %s", link, loc, expires)
	}
	if got := w.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}

	wantError(t, b.do(t, "GET", "/api/v1/exports/exp_run/download", aliceToken, ""), http.StatusConflict, "job_not_succeeded")
	wantError(t, b.do(t, "GET", "/api/v1/exports/exp_old/download", aliceToken, ""), http.StatusGone, "artifact_expired")
	e := wantError(t, b.do(t, "GET", "/api/v1/exports/exp_ok/download?redirect=maybe", aliceToken, ""), http.StatusBadRequest, "invalid_request")
	if _, ok := e.Error.Fields["redirect"]; !ok {
		t.Errorf("fields = %v, want redirect", e.Error.Fields)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	ok := func(context.Context) error { return nil }
	down := func(context.Context) error { return errors.New("dial tcp 127.0.0.1:6379: connect: connection refused") }

	b := setup(t, func(h *handler) {
		h.ready = map[string]func(context.Context) error{"postgres": ok, "redis": ok, "storage": ok}
	})
	if got := b.do(t, "GET", "/healthz", "", "").Body.String(); got != `{"status":"ok"}` {
		t.Errorf("healthz = %s", got)
	}
	type readiness struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	r := wantJSON[readiness](t, b.do(t, "GET", "/readyz", "", ""), http.StatusOK)
	if r.Status != "ready" || len(r.Checks) != 3 || r.Checks["redis"] != "ok" {
		t.Errorf("readyz = %+v", r)
	}

	b = setup(t, func(h *handler) {
		h.ready = map[string]func(context.Context) error{"postgres": ok, "redis": down}
	})
	w := b.do(t, "GET", "/readyz", "", "")
	r = wantJSON[readiness](t, w, http.StatusServiceUnavailable)
	if r.Status != "unavailable" || r.Checks["postgres"] != "ok" || r.Checks["redis"] != "failed" {
		t.Errorf("readyz = %+v", r)
	}
	// The cause (addresses, ports) is for the log, not for callers without a token.
	if strings.Contains(w.Body.String(), "6379") || !strings.Contains(b.logs.String(), "connection refused") {
		t.Errorf("readyz body %s; log %s", w.Body.String(), b.logs.String())
	}
}

func TestUnknownRouteAndMethod(t *testing.T) {
	t.Parallel()
	b := setup(t)
	wantError(t, b.do(t, "GET", "/api/v1/nothing", adminToken, ""), http.StatusNotFound, "route_not_found")
	wantError(t, b.do(t, "GET", "/api/v1/exports/", adminToken, ""), http.StatusNotFound, "route_not_found")
	w := b.do(t, "PUT", "/api/v1/exports", adminToken, "")
	wantError(t, w, http.StatusMethodNotAllowed, "method_not_allowed")
	if allow := w.Header().Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "POST") {
		t.Errorf("Allow = %q", allow)
	}
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	generated := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for _, tc := range []struct{ name, in, want string }{
		{"none", "", ""},
		{"sane", "req-42.a_b:c", "req-42.a_b:c"},
		{"insane", "<script>", ""},
		{"too long", strings.Repeat("a", 129), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var hdr []string
			if tc.in != "" {
				hdr = []string{"X-Request-Id", tc.in}
			}
			for _, path := range []string{"/healthz", "/api/v1/exports", "/nowhere"} {
				got := b.do(t, "GET", path, "", "", hdr...).Header().Get("X-Request-Id")
				if tc.want != "" && got != tc.want || tc.want == "" && !generated.MatchString(got) {
					t.Errorf("%s: X-Request-Id = %q (sent %q)", path, got, tc.in)
				}
			}
		})
	}
}

func TestPanicAnswers500(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := b.do(t, "GET", "/api/v1/exports/"+panicJobID, adminToken, "", "X-Request-Id", "req-panic")
	e := wantError(t, w, http.StatusInternalServerError, "internal")
	if e.Error.Message != "internal error; request id req-panic" {
		t.Errorf("message = %q", e.Error.Message)
	}
	logs := b.logs.String()
	if !strings.Contains(logs, `"msg":"http_panic"`) || !strings.Contains(logs, "corrupted row") {
		t.Errorf("panic not logged: %s", logs)
	}
	// The server keeps serving.
	wantJSON[export.JobPage](t, b.do(t, "GET", "/api/v1/exports", adminToken, ""), http.StatusOK)
}

func TestInternalErrorIsLoggedNotShown(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := b.do(t, "GET", "/api/v1/exports/"+brokenJobID, adminToken, "", "X-Request-Id", "req-broken")
	e := wantError(t, w, http.StatusInternalServerError, "internal")
	if strings.Contains(w.Body.String(), "connection reset") || e.Error.Message != "internal error; request id req-broken" {
		t.Errorf("body = %s", w.Body)
	}
	var logged int
	for line := range strings.Lines(b.logs.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] != "http_internal_error" {
			continue
		}
		logged++
		if rec["request_id"] != "req-broken" || rec["method"] != "GET" || rec["route"] != "/api/v1/exports/:id" ||
			!strings.Contains(rec["error"].(string), brokenCause) {
			t.Errorf("internal error logged as %s", line)
		}
	}
	if logged != 1 {
		t.Errorf("internal error logged %d times, want once", logged)
	}
}

func TestAccessLog(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.do(t, "GET", "/api/v1/exports?cursor=SECRET-CURSOR&limit=5", adminToken, "", "X-Request-Id", "req-log")
	logs := b.logs.String()
	for _, secret := range []string{adminToken, "SECRET-CURSOR", "limit=5"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q: %s", secret, logs)
		}
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(logs)), &rec); err != nil {
		t.Fatalf("want one access log line, got %s (%v)", logs, err)
	}
	want := map[string]any{"msg": "http_request", "method": "GET", "route": "/api/v1/exports", "status": 200.0,
		"request_id": "req-log", "principal": "admin_token", "client": "192.0.2.1"}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("access log %s = %v, want %v", k, rec[k], v)
		}
	}
	if _, ok := rec["duration_ms"].(float64); !ok {
		t.Errorf("access log has no duration_ms: %s", logs)
	}
}

func TestFilesAreServedWithoutAuth(t *testing.T) {
	t.Parallel()
	b := setup(t, func(h *handler) {
		h.files = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("sig") != "good" {
				http.Error(w, "bad signature", http.StatusForbidden)
				return
			}
			w.Header().Set("Content-Type", "text/plain")
			if r.Method == "GET" {
				w.Write([]byte(r.URL.Path))
			}
		})
	})
	const path = "/api/v1/files/exports/2026/01/exp_1/probe-logs.txt"
	w := b.do(t, "GET", path+"?sig=good", "", "")
	if w.Code != http.StatusOK || w.Body.String() != path {
		t.Errorf("GET = %d %q, want 200 with the full path", w.Code, w.Body)
	}
	if w := b.do(t, "HEAD", path+"?sig=good", "", ""); w.Code != http.StatusOK {
		t.Errorf("HEAD = %d", w.Code)
	}
	if w := b.do(t, "GET", path+"?sig=bad", "", ""); w.Code != http.StatusForbidden {
		t.Errorf("bad signature = %d, want the handler's 403", w.Code)
	}
	if logs := b.logs.String(); strings.Contains(logs, "sig=") || strings.Contains(logs, "probe-logs.txt") {
		t.Errorf("logs contain the link: %s", logs)
	}

	// Without a Files handler the path is just an unknown route.
	wantError(t, setup(t).do(t, "GET", path, "", ""), http.StatusNotFound, "route_not_found")
}

func TestServerTimeouts(t *testing.T) {
	t.Parallel()
	s := Server(":0", http.NotFoundHandler())
	if s.ReadHeaderTimeout != 10*time.Second || s.ReadTimeout != time.Minute || s.WriteTimeout != 0 ||
		s.IdleTimeout != 2*time.Minute || s.MaxHeaderBytes != 64<<10 {
		t.Errorf("server = %+v", s)
	}
}

// curl -d sends a JSON body labelled as a form; it is still read as JSON.
func TestCreateAcceptsCurlsDefaultContentType(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := b.do(t, "POST", "/api/v1/exports", adminToken, probeBody, "Content-Type", "application/x-www-form-urlencoded")
	if w.Code != http.StatusAccepted {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
}
