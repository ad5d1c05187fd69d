package seed_test

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/hub"
	"github.com/hubexport/hubexport/internal/seed"
	"github.com/hubexport/hubexport/internal/testenv"
)

// The snapshots the seed writes are what the session_request export reads, owner check
// included, with CCH's expiry on the request keys and none on the counter.
func TestWriteSessionsServeSessionRequests(t *testing.T) {
	t.Parallel()
	pool, _ := seeded(t, seed.Options{Rows: 2000, Seed: 3, Now: testNow})
	r := testenv.NewRedis(t)
	opts, err := redis.ParseURL(r.URL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()

	got, err := seed.WriteSessions(ctx, pool, rdb, seed.SessionOptions{Sessions: 3, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d sessions, want 3: %+v", len(got), got)
	}
	sessions := hub.NewSessions(rdb, hub.New(pool))
	for _, s := range got {
		if len(s.Sequences) < 1 || len(s.Sequences) > 3 || !slices.IsSorted(s.Sequences) {
			t.Errorf("session %s: sequences %v", s.ID, s.Sequences)
			continue
		}
		last := s.Sequences[len(s.Sequences)-1]
		var model, originalModel, key string
		var maxSeq int64
		if err := pool.QueryRow(ctx, `SELECT model, COALESCE(original_model, model), key,
				(SELECT max(request_sequence) FROM message_request WHERE session_id = $1 AND deleted_at IS NULL)
			FROM message_request WHERE session_id = $1 AND request_sequence = $2 AND deleted_at IS NULL ORDER BY id DESC LIMIT 1`,
			s.ID, last).Scan(&model, &originalModel, &key, &maxSeq); err != nil {
			t.Fatal(err)
		}

		for view, wantModel := range map[string]string{export.SessionViewAfter: model, export.SessionViewBefore: originalModel} {
			reqs, err := sessions.SessionRequests(ctx, export.SessionRequestParams{SessionID: s.ID, View: view})
			if err != nil {
				t.Fatalf("session %s, %s view: %v", s.ID, view, err)
			}
			if len(reqs) != 1 || reqs[0].Sequence != last {
				t.Fatalf("session %s latest: %+v, want sequence %d", s.ID, reqs, last)
			}
			var body struct{ Model string }
			if err := json.Unmarshal(reqs[0].Body, &body); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(wantModel, "gemini") && body.Model != wantModel {
				t.Errorf("session %s %s view: body model %q, want %q", s.ID, view, body.Model, wantModel)
			}
			if strings.Contains(string(reqs[0].Headers), key) || !strings.Contains(string(reqs[0].Headers), "******") {
				t.Errorf("session %s %s view: headers not masked: %s", s.ID, view, reqs[0].Headers)
			}
			if !strings.Contains(string(reqs[0].Body), "[REDACTED]") {
				t.Errorf("session %s: content not redacted: %s", s.ID, reqs[0].Body)
			}
		}
		whole, err := sessions.SessionRequests(ctx, export.SessionRequestParams{SessionID: s.ID, View: export.SessionViewAfter, WholeSession: true})
		if err != nil {
			t.Fatal(err)
		}
		var seqs []int64
		for _, w := range whole {
			seqs = append(seqs, w.Sequence)
		}
		if !slices.Equal(seqs, s.Sequences) {
			t.Errorf("session %s whole: sequences %v, want %v", s.ID, seqs, s.Sequences)
		}

		owner := "session:" + s.ID + ":req:" + strconv.FormatInt(last, 10) + ":owner"
		if ttl := rdb.TTL(ctx, owner).Val(); ttl <= 0 || ttl > time.Minute {
			t.Errorf("%s TTL %v, want up to 1m", owner, ttl)
		}
		if v, _ := rdb.Get(ctx, owner).Result(); v != strconv.FormatInt(s.KeyID, 10) {
			t.Errorf("%s = %q, want key id %d", owner, v, s.KeyID)
		}
		seqKey := "session:" + s.ID + ":seq"
		if ttl := rdb.TTL(ctx, seqKey).Val(); ttl != -1 {
			t.Errorf("%s TTL %v, want none", seqKey, ttl)
		}
		if v, _ := rdb.Get(ctx, seqKey).Int64(); v != maxSeq {
			t.Errorf("%s = %d, want %d", seqKey, v, maxSeq)
		}
	}
}
