package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hubexport/hubexport/internal/seed"
)

// The API process applies the stream and failed-authentication limits its
// variables set.
func TestLimitsFromTheEnvironment(t *testing.T) {
	t.Parallel()
	s := newStack(t, withEnv("EVENT_STREAMS_PER_PRINCIPAL", "1"), withEnv("AUTH_FAILURES_PER_MINUTE", "2"))
	s.start("api") // no worker: the job stays queued and its stream open
	j := s.create(seed.UserKey, map[string]any{"type": "usage_logs", "params": map[string]any{"start_time": "2026-02-01T00:00:00Z"}})

	stream := func() *http.Response {
		ctx, cancel := context.WithCancel(t.Context())
		req, _ := http.NewRequestWithContext(ctx, "GET", s.base+"/api/v1/exports/"+j.ID+"/events", nil)
		req.Header.Set("Authorization", "Bearer "+seed.UserKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cancel(); resp.Body.Close() })
		return resp
	}
	if first := stream(); first.StatusCode != 200 {
		t.Fatalf("first stream: %d", first.StatusCode)
	}
	if second := stream(); second.StatusCode != http.StatusTooManyRequests || second.Header.Get("Retry-After") == "" {
		t.Fatalf("second stream with EVENT_STREAMS_PER_PRINCIPAL=1: %d, want 429 with Retry-After", second.StatusCode)
	}

	for range 2 {
		if r := s.do("GET", "/api/v1/exports", "sk-not-a-key", nil); r.status != 401 {
			t.Fatalf("bad key: %d", r.status)
		}
	}
	r := s.do("GET", "/api/v1/exports", "sk-not-a-key-either", nil)
	if code, _ := r.errorCode(t); r.status != 429 || code != "too_many_auth_failures" {
		t.Fatalf("third failure with AUTH_FAILURES_PER_MINUTE=2: %d %s", r.status, r.body)
	}
}

// An open event stream ends once its key is disabled in the hub, within
// KEY_CACHE_TTL, saying why.
func TestEventStreamEndsWhenKeyDisabledInHub(t *testing.T) {
	t.Parallel()
	s := newStack(t, withEnv("KEY_CACHE_TTL", "1s"))
	s.start("api") // no worker: the job stays queued and its stream open
	j := s.create(seed.UserKey, map[string]any{"type": "usage_logs", "params": map[string]any{"start_time": "2026-02-01T00:00:00Z"}})
	req, _ := http.NewRequestWithContext(t.Context(), "GET", s.base+"/api/v1/exports/"+j.ID+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+seed.UserKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	s.exec(`UPDATE keys SET is_enabled = false WHERE key = $1`, seed.UserKey)
	done := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(resp.Body)
		done <- string(b)
	}()
	select {
	case body := <-done:
		if !strings.Contains(body, "event: closed\ndata: {\"reason\":\"credential_invalid\"") {
			t.Fatalf("stream ended without saying why: %q", body)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the stream of a key disabled in the hub is still open 15 s later (KEY_CACHE_TTL=1s)")
	}
}
