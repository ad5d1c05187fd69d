package main

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hubexport/hubexport/internal/seed"
)

// sessionE2EFixture takes a seeded session with at least two live requests, numbers them 1,
// 2, ... and makes them come from one key whose key string is unique. It returns the session
// id and that key's id.
func sessionE2EFixture(s *stack) (sid string, keyID int64) {
	s.t.Helper()
	ctx := context.Background()
	pool := s.pool()
	if err := pool.QueryRow(ctx, `
		SELECT session_id FROM message_request WHERE session_id IS NOT NULL AND deleted_at IS NULL
		GROUP BY session_id HAVING count(*) >= 2 ORDER BY session_id LIMIT 1`).Scan(&sid); err != nil {
		s.t.Fatalf("pick a seeded session: %v", err)
	}
	var key string
	var userID int64
	if err := pool.QueryRow(ctx, `
		SELECT id, key, user_id FROM keys WHERE key IN (SELECT key FROM keys GROUP BY key HAVING count(*) = 1)
		ORDER BY id LIMIT 1`).Scan(&keyID, &key, &userID); err != nil {
		s.t.Fatalf("pick a key: %v", err)
	}
	s.exec(`
		UPDATE message_request m SET request_sequence = r.n, key = $2, user_id = $3, special_settings = NULL
		FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM message_request
			WHERE session_id = $1 AND deleted_at IS NULL) r
		WHERE m.id = r.id`, sid, key, userID)
	return sid, keyID
}

func TestSessionRequestExport(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	sid, keyID := sessionE2EFixture(s)
	s.start("serve")

	// The stack's Redis is also the hub's (HUB_REDIS_URL defaults to REDIS_URL): write the
	// snapshot of request 2 as CCH's session manager does, with SETEX.
	rdb := redis.NewClient(&redis.Options{Addr: s.redis.Addr, DB: s.redis.DB})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	base := "session:" + sid + ":req:2:"
	for k, v := range map[string]string{
		base + "owner":                            strconv.FormatInt(keyID, 10),
		base + "snapshot:request:after:body":      `{"model":"claude-sonnet-4","max_tokens":1024,"messages":[{"role":"user","content":"[REDACTED]"}],"stream":true}`,
		base + "snapshot:request:after:messages":  `[{"role":"user","content":"[REDACTED]"}]`,
		base + "snapshot:request:after:headers":   `{"content-type":"application/json","authorization":"Bearer sk-live-0123456789abcdef","cookie":"sid=1","x-api-key":"sk-a******cdef"}`,
		base + "snapshot:request:after:meta":      `{"clientUrl":"https://hub.example/v1/messages","upstreamUrl":"https://api.anthropic.com/v1/messages","method":"POST"}`,
		base + "specialSettings":                  `[{"type":"anthropic_cache_ttl","ttl":"1h"}]`,
		"session:" + sid + ":req:1:owner":         strconv.FormatInt(keyID, 10),
		"session:" + sid + ":req:1:reqHeaders":    `{"accept":"*/*"}`,
		"session:" + sid + ":req:1:clientReqMeta": `{"url":"https://hub.example/v1/messages","method":"POST"}`,
	} {
		if err := rdb.Set(ctx, k, v, 300*time.Second).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.Set(ctx, "session:"+sid+":seq", 2, 0).Err(); err != nil {
		t.Fatal(err)
	}

	want := `{
  "sessionId": "` + sid + `",
  "sequence": 2,
  "view": "after",
  "request": {
    "body": {
      "model": "claude-sonnet-4",
      "max_tokens": 1024,
      "messages": [
        {
          "role": "user",
          "content": "[REDACTED]"
        }
      ],
      "stream": true
    },
    "messages": [
      {
        "role": "user",
        "content": "[REDACTED]"
      }
    ],
    "headers": {
      "content-type": "application/json",
      "authorization": "Bearer sk-l******cdef",
      "cookie": "[REDACTED]",
      "x-api-key": "sk-a******cdef"
    },
    "meta": {
      "clientUrl": "https://hub.example/v1/messages",
      "upstreamUrl": "https://api.anthropic.com/v1/messages",
      "method": "POST"
    }
  },
  "specialSettings": [
    {
      "type": "anthropic_cache_ttl",
      "ttl": "1h"
    }
  ]
}`
	short := sid
	if len(short) > 8 {
		short = short[:8]
	}
	for _, c := range []struct {
		name, filename string
		params         map[string]any
	}{
		{"sequence 2", "session-" + short + "-seq-2-request.json", map[string]any{"session_id": "  " + sid + " ", "sequence": 2}},
		{"latest", "session-" + short + "-request.json", map[string]any{"session_id": sid}},
	} {
		j := s.create(seed.AdminKey, map[string]any{"type": "session_request", "format": "json", "params": c.params})
		j = s.wait(adminToken, j.ID, 30*time.Second)
		if j.Status != "succeeded" {
			t.Fatalf("%s: job %s: %+v", c.name, j.Status, j.Error)
		}
		body, hdr, _ := s.download(adminToken, j.ID)
		if string(body) != want {
			t.Errorf("%s: file:\n%s\nwant:\n%s", c.name, body, want)
		}
		if j.Result.Filename != c.filename || j.Result.ContentType != "application/json" || j.Result.Rows != 1 {
			t.Errorf("%s: result %+v", c.name, j.Result)
		}
		if cd := hdr.Get("Content-Disposition"); !strings.Contains(cd, c.filename) {
			t.Errorf("%s: Content-Disposition %q", c.name, cd)
		}
	}

	// Request 1 has headers but no body left: expired, not retried.
	j := s.create(adminToken, map[string]any{"type": "session_request", "params": map[string]any{"session_id": sid, "sequence": 1}})
	j = s.wait(adminToken, j.ID, 30*time.Second)
	if j.Status != "failed" || j.Error == nil || j.Error.Code != "session_data_expired" ||
		!strings.Contains(j.Error.Message, "SESSION_TTL") || !strings.Contains(j.Error.Message, "STORE_SESSION_MESSAGES") {
		t.Errorf("expired: %s %+v", j.Status, j.Error)
	}

	// Another key's snapshot is not the request's: CCH refuses it, so do we.
	if err := rdb.Set(ctx, base+"owner", strconv.FormatInt(keyID+1000, 10), 300*time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	j = s.create(adminToken, map[string]any{"type": "session_request", "params": map[string]any{"session_id": sid, "sequence": 2}})
	j = s.wait(adminToken, j.ID, 30*time.Second)
	if j.Status != "failed" || j.Error == nil || j.Error.Code != "session_owner_mismatch" {
		t.Errorf("owner mismatch: %s %+v", j.Status, j.Error)
	}

	r := s.do("POST", "/api/v1/exports", seed.UserKey, map[string]any{"type": "session_request", "params": map[string]any{"session_id": sid}})
	if code, _ := r.errorCode(t); r.status != 403 || code != "admin_only" {
		t.Errorf("user key: %d %s", r.status, r.body)
	}
	for params, field := range map[string]string{
		`{"session_id":"` + strings.Repeat("s", 65) + `"}`: "params.session_id",
		`{"session_id":"s","sequence":0}`:                  "params.sequence",
		`{"session_id":"s","view":"sideways"}`:             "params.view",
	} {
		r := s.do("POST", "/api/v1/exports", adminToken, `{"type":"session_request","params":`+params+`}`)
		if code, fields := r.errorCode(t); r.status != 400 || code != "invalid_request" || fields[field] == "" {
			t.Errorf("%s: %d %s, want 400 naming %s", params, r.status, r.body, field)
		}
	}
	r = s.do("POST", "/api/v1/exports", adminToken, map[string]any{"type": "session_request", "format": "csv", "params": map[string]any{"session_id": sid}})
	if r.status != 400 {
		t.Errorf("csv format: %d %s", r.status, r.body)
	}
}
