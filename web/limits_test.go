package web

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubexport/hubexport/internal/export"
)

// Open event streams are capped per principal and in all; a refused one is
// a 429 with Retry-After, and closing a stream frees its slot.
func TestEventStreamsAreCapped(t *testing.T) {
	t.Parallel()
	b := setup(t, func(h *handler) { h.streams = newStreamGate(2, 3) })
	srv := httptest.NewServer(b.h)
	t.Cleanup(srv.Close)
	seedJob(b, "exp_a", alice, export.StatusRunning)
	seedJob(b, "exp_b", bob, export.StatusRunning)

	open := func(id, token string) (*http.Response, context.CancelFunc) {
		ctx, cancel := context.WithCancel(t.Context())
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/exports/"+id+"/events", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cancel(); resp.Body.Close() })
		return resp, cancel
	}
	wantRefused := func(resp *http.Response, why string) {
		t.Helper()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "too_many_streams") {
			t.Fatalf("%s: %d Retry-After %q %s, want 429 too_many_streams with Retry-After", why, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
	first, closeFirst := open("exp_a", aliceToken)
	second, _ := open("exp_a", aliceToken)
	if first.StatusCode != 200 || second.StatusCode != 200 {
		t.Fatalf("first two streams: %d %d", first.StatusCode, second.StatusCode)
	}
	third, _ := open("exp_a", aliceToken)
	wantRefused(third, "alice's third stream (per-principal cap 2)")
	bobs, _ := open("exp_b", bobToken)
	if bobs.StatusCode != 200 {
		t.Fatalf("bob's first stream: %d", bobs.StatusCode)
	}
	fourth, _ := open("exp_a", adminToken)
	wantRefused(fourth, "a fourth stream in all (cap 3)")

	closeFirst()
	var again *http.Response
	for deadline := time.Now().Add(5 * time.Second); ; {
		again, _ = open("exp_a", aliceToken)
		if again.StatusCode == 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if again.StatusCode != 200 {
		t.Fatalf("after closing a stream: %d, want its slot back", again.StatusCode)
	}
}

// However many streams follow one job, the job is read once per poll.
func TestEventStreamsShareOnePoll(t *testing.T) {
	t.Parallel()
	const poll = 20 * time.Millisecond
	b := setup(t, func(h *handler) {
		h.streams = newStreamGate(0, 0)
		h.watches = newJobWatches(h.svc.Load, poll, h.log)
	})
	srv := httptest.NewServer(b.h)
	t.Cleanup(srv.Close)
	seedJob(b, "exp_shared", alice, export.StatusRunning)

	const streams = 50
	var readers []*sseReader
	for range streams {
		_, r := openEvents(t, srv, "exp_shared", aliceToken)
		if _, err := r.next(); err != nil {
			t.Fatal(err)
		}
		readers = append(readers, r)
	}
	before := b.store.reads.Load()
	const polls = 10
	time.Sleep(polls * poll)
	reads := b.store.reads.Load() - before
	// One shared poll makes about 10 reads in that time; one per stream would make 500.
	if reads > 3*polls {
		t.Fatalf("%d reads of the job in %d poll intervals with %d streams open: the streams poll it each", reads, polls, streams)
	}
	// And every stream still hears the change.
	b.store.update("exp_shared", func(j *export.Job) { j.Status = export.StatusSucceeded })
	for i, r := range readers {
		ev, err := r.next()
		if err != nil || ev.job.Status != export.StatusSucceeded {
			t.Fatalf("stream %d: %+v, %v", i, ev, err)
		}
	}
}

// revocableAuth is fakeAuth whose alice key can be disabled mid-test.
type revocableAuth struct {
	fakeAuth
	revoked atomic.Bool
	checks  atomic.Int64
}

func (a *revocableAuth) Authenticate(ctx context.Context, token string) (export.Principal, error) {
	a.checks.Add(1)
	if token == aliceToken && a.revoked.Load() {
		return export.Principal{}, export.ErrUnauthenticated
	}
	return a.fakeAuth.Authenticate(ctx, token)
}

// An open stream re-checks its key and ends, saying why, once the key is
// no longer valid.
func TestEventStreamEndsWhenTheKeyIsRevoked(t *testing.T) {
	t.Parallel()
	auth := &revocableAuth{}
	b := setup(t, func(h *handler) { h.auth = auth; h.recheck = 30 * time.Millisecond })
	srv := httptest.NewServer(b.h)
	t.Cleanup(srv.Close)
	seedJob(b, "exp_key", alice, export.StatusRunning)
	_, stream := openEvents(t, srv, "exp_key", aliceToken)
	if _, err := stream.next(); err != nil {
		t.Fatal(err)
	}
	auth.revoked.Store(true)
	done := make(chan string, 1)
	go func() {
		rest, _ := io.ReadAll(stream.r)
		done <- string(rest)
	}()
	select {
	case rest := <-done:
		if !strings.HasSuffix(rest, "event: closed\ndata: {\"reason\":\"credential_invalid\",\"message\":\"the API key is no longer valid (disabled, expired or deleted)\"}\n\n") {
			t.Fatalf("stream after the key was disabled: %q, want an event: closed and the end", rest)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream of a disabled key is still open 10 s later (re-check every 30 ms)")
	}
}

// Failed authentications are limited per client address: over the limit,
// requests get 429 with Retry-After without a lookup; other addresses are
// not affected.
func TestFailedAuthenticationIsRateLimited(t *testing.T) {
	t.Parallel()
	auth := &revocableAuth{}
	b := setup(t, func(h *handler) { h.auth = auth; h.failures = newFailureLimiter(3) })
	from := func(addr, token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/api/v1/exports", nil)
		req.RemoteAddr = addr + ":40000"
		req.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		b.h.ServeHTTP(w, req)
		return w
	}
	for i := range 3 {
		if w := from("192.0.2.7", "sk-guess-"+strconv.Itoa(i)); w.Code != 401 {
			t.Fatalf("guess %d: %d", i, w.Code)
		}
	}
	lookups := auth.checks.Load()
	w := from("192.0.2.7", "sk-guess-4")
	wantError(t, w, http.StatusTooManyRequests, "too_many_auth_failures")
	if s, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || s < 1 || s > 20 {
		t.Fatalf("Retry-After %q, want the seconds until one more try (20 s at 3 a minute)", w.Header().Get("Retry-After"))
	}
	if auth.checks.Load() != lookups {
		t.Fatal("a refused address's token was still looked up")
	}
	if w := from("192.0.2.8", aliceToken); w.Code != 200 {
		t.Fatalf("another address: %d", w.Code)
	}
	if w := from("192.0.2.8", "sk-typo"); w.Code != 401 {
		t.Fatalf("another address's first failure: %d", w.Code)
	}
}

// A local download whose client stops reading is dropped after
// DOWNLOAD_WRITE_TIMEOUT instead of holding its connection.
func TestLocalDownloadDropsAStalledReader(t *testing.T) {
	t.Parallel()
	ended := make(chan error, 1)
	files := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 64<<10)
		for range 64 << 10 { // up to 4 GiB: far more than the socket buffers hold
			if _, err := w.Write(chunk); err != nil {
				ended <- err
				return
			}
		}
		ended <- nil
	})
	b := setup(t, func(h *handler) { h.files = writeTimeout(files, 200*time.Millisecond) })
	srv := httptest.NewServer(b.h)
	t.Cleanup(srv.Close)

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, "GET /api/v1/files/exports/x.csv?sig=1 HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	status, err := bufio.NewReader(conn).ReadString('\n') // then read nothing more
	if err != nil || !strings.Contains(status, "200") {
		t.Fatalf("status line %q, %v", status, err)
	}
	select {
	case err := <-ended:
		if err == nil {
			t.Fatal("the whole body was written to a client that reads nothing")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the download to a stalled client is still open 30 s later")
	}
}
