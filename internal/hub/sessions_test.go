package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/hub"
	"github.com/hubexport/hubexport/internal/testenv"
)

// sessionFixture takes a seeded session with at least three live requests, numbers them 1, 2,
// 3... and makes them all come from one key with a unique key string. It returns the session
// id and that key's id.
func sessionFixture(t *testing.T, pool *pgxpool.Pool) (sid string, keyID int64) {
	t.Helper()
	ctx := context.Background()
	if err := pool.QueryRow(ctx, `
		SELECT session_id FROM message_request WHERE session_id IS NOT NULL AND deleted_at IS NULL
		GROUP BY session_id HAVING count(*) >= 3 ORDER BY session_id LIMIT 1`).Scan(&sid); err != nil {
		t.Fatalf("pick a seeded session: %v", err)
	}
	var key string
	var userID int64
	if err := pool.QueryRow(ctx, `
		SELECT id, key, user_id FROM keys WHERE key IN (SELECT key FROM keys GROUP BY key HAVING count(*) = 1)
		ORDER BY id LIMIT 1`).Scan(&keyID, &key, &userID); err != nil {
		t.Fatalf("pick a key: %v", err)
	}
	if _, err := pool.Exec(ctx, `
		UPDATE message_request m SET request_sequence = r.n, key = $2, user_id = $3, special_settings = NULL
		FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM message_request
			WHERE session_id = $1 AND deleted_at IS NULL) r
		WHERE m.id = r.id`, sid, key, userID); err != nil {
		t.Fatalf("number the session's requests: %v", err)
	}
	return sid, keyID
}

// cchWrite stores a key the way CCH's session manager does: SETEX with SESSION_TTL.
func cchWrite(t *testing.T, rdb *redis.Client, kv map[string]string) {
	t.Helper()
	for k, v := range kv {
		if err := rdb.Set(context.Background(), k, v, 300*time.Second).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSessionRequests(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, db := setup(t)
	sid, keyID := sessionFixture(t, pool)
	owner := strconv.FormatInt(keyID, 10)
	r := testenv.NewRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr, DB: r.DB})
	t.Cleanup(func() { _ = rdb.Close() })
	sessions := hub.NewSessions(rdb, db)

	base := func(seq int) string { return "session:" + sid + ":req:" + strconv.Itoa(seq) + ":" }
	// Sequence 1: only the legacy flat fields (an older CCH), headers stored in clear.
	cchWrite(t, rdb, map[string]string{
		base(1) + "owner":           owner,
		base(1) + "requestBody":     `{"model":"m1","messages":[{"role":"user","content":"[REDACTED]"}]}`,
		base(1) + "messages":        `[{"role":"user","content":"[REDACTED]"}]`,
		base(1) + "reqHeaders":      `{"x-api-key":"sk-ant-api03-secretsecret","accept":"*/*"}`,
		base(1) + "clientReqMeta":   `{"url":"https://hub.example/v1/messages","method":"POST"}`,
		base(1) + "upstreamReqMeta": `{"url":"https://api.example/v1/messages","method":"POST"}`,
	})
	// Sequence 2: the snapshot layout, both views, plus special settings.
	cchWrite(t, rdb, map[string]string{
		base(2) + "owner":                            owner,
		base(2) + "snapshot:request:after:body":      `{"model":"m2-up","z":1,"a":2}`,
		base(2) + "snapshot:request:after:messages":  `[{"role":"user","content":"hi"}]`,
		base(2) + "snapshot:request:after:headers":   `{"authorization":"Bearer sk-a******wxyz","content-type":"application/json"}`,
		base(2) + "snapshot:request:after:meta":      `{"clientUrl":"https://hub.example/v1/messages","upstreamUrl":"https://api.example/v1/messages","method":"POST"}`,
		base(2) + "snapshot:request:before:body":     `{"model":"m2","z":1,"a":2}`,
		base(2) + "snapshot:request:before:messages": `null`,
		base(2) + "snapshot:request:before:headers":  `{"x-api-key":"[REDACTED]"}`,
		base(2) + "snapshot:request:before:meta":     `{"clientUrl":"https://hub.example/v1/messages","upstreamUrl":null,"method":"POST"}`,
		base(2) + "specialSettings":                  `[{"type":"thinking_budget","value":1024}]`,
		base(2) + "requestBody":                      `{"stale":true}`,
	})
	// Sequence 3: headers but no body, so nothing to export. The counter says 4.
	cchWrite(t, rdb, map[string]string{
		base(3) + "owner":                          owner,
		base(3) + "snapshot:request:after:headers": `{}`,
	})
	if err := rdb.Set(ctx, "session:"+sid+":seq", 4, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE message_request SET special_settings = '[{"type": "db"}]' WHERE session_id = $1 AND request_sequence = 1`, sid); err != nil {
		t.Fatal(err)
	}

	get := func(p export.SessionRequestParams) ([]export.SessionRequest, error) {
		t.Helper()
		p.SessionID = sid
		if p.View == "" {
			p.View = export.SessionViewAfter
		}
		return sessions.SessionRequests(ctx, p)
	}
	seq := func(n int64) *int64 { return &n }

	t.Run("legacy flat layout", func(t *testing.T) {
		got, err := get(export.SessionRequestParams{Sequence: seq(1)})
		if err != nil {
			t.Fatal(err)
		}
		want := export.SessionRequest{
			Sequence:        1,
			Body:            json.RawMessage(`{"model":"m1","messages":[{"role":"user","content":"[REDACTED]"}]}`),
			Messages:        json.RawMessage(`[{"role":"user","content":"[REDACTED]"}]`),
			Headers:         json.RawMessage(`{"x-api-key":"sk-ant-api03-secretsecret","accept":"*/*"}`),
			Meta:            json.RawMessage(`{"clientUrl":"https://hub.example/v1/messages","upstreamUrl":"https://api.example/v1/messages","method":"POST"}`),
			SpecialSettings: json.RawMessage(`[{"type": "db"}]`),
		}
		assertRequests(t, got, want)
	})
	t.Run("snapshot layout", func(t *testing.T) {
		got, err := get(export.SessionRequestParams{Sequence: seq(2)})
		if err != nil {
			t.Fatal(err)
		}
		assertRequests(t, got, export.SessionRequest{
			Sequence:        2,
			Body:            json.RawMessage(`{"model":"m2-up","z":1,"a":2}`),
			Messages:        json.RawMessage(`[{"role":"user","content":"hi"}]`),
			Headers:         json.RawMessage(`{"authorization":"Bearer sk-a******wxyz","content-type":"application/json"}`),
			Meta:            json.RawMessage(`{"clientUrl":"https://hub.example/v1/messages","upstreamUrl":"https://api.example/v1/messages","method":"POST"}`),
			SpecialSettings: json.RawMessage(`[{"type":"thinking_budget","value":1024}]`),
		})
		got, err = get(export.SessionRequestParams{Sequence: seq(2), View: export.SessionViewBefore})
		if err != nil {
			t.Fatal(err)
		}
		assertRequests(t, got, export.SessionRequest{
			Sequence:        2,
			Body:            json.RawMessage(`{"model":"m2","z":1,"a":2}`),
			Messages:        json.RawMessage(`null`),
			Headers:         json.RawMessage(`{"x-api-key":"[REDACTED]"}`),
			Meta:            json.RawMessage(`{"clientUrl":"https://hub.example/v1/messages","upstreamUrl":null,"method":"POST"}`),
			SpecialSettings: json.RawMessage(`[{"type":"thinking_budget","value":1024}]`),
		})
	})
	t.Run("latest skips sequences without a snapshot", func(t *testing.T) {
		got, err := get(export.SessionRequestParams{})
		if err != nil || len(got) != 1 || got[0].Sequence != 2 {
			t.Fatalf("latest: %+v, %v", got, err)
		}
		// The before view exists only for 2 as well; the legacy fields stand in for after only.
		got, err = get(export.SessionRequestParams{View: export.SessionViewBefore})
		if err != nil || len(got) != 1 || got[0].Sequence != 2 {
			t.Fatalf("latest before: %+v, %v", got, err)
		}
	})
	t.Run("whole session", func(t *testing.T) {
		got, err := get(export.SessionRequestParams{WholeSession: true})
		if err != nil || len(got) != 2 || got[0].Sequence != 1 || got[1].Sequence != 2 {
			t.Fatalf("whole session: %+v, %v", got, err)
		}
	})
	t.Run("expired", func(t *testing.T) {
		for _, p := range []export.SessionRequestParams{
			{Sequence: seq(3)},
			{Sequence: seq(9)},
			{Sequence: seq(1), View: export.SessionViewBefore},
		} {
			_, err := get(p)
			var e *export.Error
			if !errors.As(err, &e) || e.Code != "session_data_expired" || e.Kind != export.KindGone {
				t.Errorf("%+v: %v, want session_data_expired", p, err)
			}
		}
		other := hub.NewSessions(rdb, db)
		_, err := other.SessionRequests(ctx, export.SessionRequestParams{SessionID: "no-such-session", View: "after", WholeSession: true})
		if e, ok := errors.AsType[*export.Error](err); !ok || e.Code != "session_data_expired" {
			t.Errorf("unknown session: %v", err)
		}
	})
	t.Run("owner mismatch", func(t *testing.T) {
		cchWrite(t, rdb, map[string]string{
			base(3) + "owner":                       strconv.FormatInt(keyID+1000, 10),
			base(3) + "snapshot:request:after:body": `{"model":"m3"}`,
		})
		t.Cleanup(func() { rdb.Del(ctx, base(3)+"snapshot:request:after:body") })
		_, err := get(export.SessionRequestParams{Sequence: seq(3)})
		if e, ok := errors.AsType[*export.Error](err); !ok || e.Code != "session_owner_mismatch" {
			t.Errorf("sequence 3: %v, want session_owner_mismatch", err)
		}
		cchWrite(t, rdb, map[string]string{
			base(40) + "owner":                          owner,
			base(40) + "snapshot:request:after:body":    `{}`,
			base(40) + "snapshot:request:after:headers": `{}`,
		})
		_, err = get(export.SessionRequestParams{Sequence: seq(40)})
		if e, ok := errors.AsType[*export.Error](err); !ok || e.Code != "session_owner_mismatch" {
			t.Errorf("sequence not in message_request: %v, want session_owner_mismatch", err)
		}
	})
}

func assertRequests(t *testing.T, got []export.SessionRequest, want export.SessionRequest) {
	t.Helper()
	if len(got) != 1 {
		t.Fatalf("got %d requests, want 1", len(got))
	}
	g := got[0]
	for _, f := range []struct {
		name      string
		got, want json.RawMessage
	}{
		{"body", g.Body, want.Body}, {"messages", g.Messages, want.Messages}, {"headers", g.Headers, want.Headers},
		{"meta", g.Meta, want.Meta}, {"specialSettings", g.SpecialSettings, want.SpecialSettings},
	} {
		if string(f.got) != string(f.want) {
			t.Errorf("%s: %s, want %s", f.name, f.got, f.want)
		}
	}
	if g.Sequence != want.Sequence {
		t.Errorf("sequence %d, want %d", g.Sequence, want.Sequence)
	}
}
