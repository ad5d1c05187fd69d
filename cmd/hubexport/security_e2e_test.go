package main

import (
	"testing"

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
