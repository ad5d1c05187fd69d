package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/hubexport/hubexport/internal/export"
)

// Sessions reads CCH's per-request session snapshots from its Redis (hub-facts §4.1) and
// checks them against message_request in the hub's database.
type Sessions struct {
	rdb redis.UniversalClient
	db  *DB
}

// NewSessions reads snapshots from rdb (CCH's Redis, HUB_REDIS_URL) and requests from db.
// The caller owns and closes both.
func NewSessions(rdb redis.UniversalClient, db *DB) *Sessions {
	return &Sessions{rdb: rdb, db: db}
}

// latestWindow is how many sequences below the session's counter are tried before scanning
// for the latest snapshot: the counter is only a hint (a request may not have stored one).
const latestWindow = 32

// SessionRequests returns the requests p selects, oldest first: one for a single sequence
// or the latest, every sequence still in Redis for a whole session. Redis is read before
// anything else, since the snapshots expire after CCH's SESSION_TTL. A request without a
// snapshot holding headers and body is gone (session_data_expired); one whose owner key is
// not the request's key id fails with session_owner_mismatch, as CCH refuses to show it.
func (s *Sessions) SessionRequests(ctx context.Context, p export.SessionRequestParams) ([]export.SessionRequest, error) {
	var (
		found []snapshot
		err   error
	)
	switch {
	case p.WholeSession:
		seqs, serr := s.scanSequences(ctx, p.SessionID)
		if serr != nil {
			return nil, serr
		}
		found, err = s.read(ctx, p.SessionID, p.View, seqs)
	case p.Sequence != nil:
		found, err = s.read(ctx, p.SessionID, p.View, []int64{*p.Sequence})
	default:
		found, err = s.latest(ctx, p.SessionID, p.View)
	}
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return nil, export.ErrSessionDataExpired(p.SessionID, p.Sequence)
	}
	return s.checkOwners(ctx, p.SessionID, found)
}

// snapshot is one request read from Redis, with the owner key it was stored under.
type snapshot struct {
	export.SessionRequest
	owner string
}

func (s *Sessions) latest(ctx context.Context, sid, view string) ([]snapshot, error) {
	hint, err := s.rdb.Get(ctx, "session:"+sid+":seq").Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("hub: read session sequence: %w", err)
	}
	if hint > 0 {
		var seqs []int64
		for q := hint + 1; q >= max(1, hint-latestWindow); q-- {
			seqs = append(seqs, q)
		}
		found, err := s.read(ctx, sid, view, seqs)
		if err != nil || len(found) > 0 {
			return lastOf(found), err
		}
	}
	seqs, err := s.scanSequences(ctx, sid)
	if err != nil {
		return nil, err
	}
	found, err := s.read(ctx, sid, view, seqs)
	return lastOf(found), err
}

func lastOf(found []snapshot) []snapshot {
	if len(found) == 0 {
		return nil
	}
	return found[len(found)-1:]
}

// scanSequences lists the sequences of session sid that still have keys in Redis.
func (s *Sessions) scanSequences(ctx context.Context, sid string) ([]int64, error) {
	prefix := "session:" + sid + ":req:"
	seen := map[int64]bool{}
	iter := s.rdb.Scan(ctx, 0, globEscape(prefix)+"*", 1000).Iterator()
	for iter.Next(ctx) {
		rest := strings.TrimPrefix(iter.Val(), prefix)
		num, _, _ := strings.Cut(rest, ":")
		if q, err := strconv.ParseInt(num, 10, 64); err == nil && q > 0 {
			seen[q] = true
		}
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("hub: scan session keys: %w", err)
	}
	out := make([]int64, 0, len(seen))
	for q := range seen {
		out = append(out, q)
	}
	return out, nil
}

func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Per-request key suffixes: the snapshot fields of a view, then the legacy flat fields
// that stand in for the after view.
var (
	snapshotFields = []string{"body", "messages", "headers", "meta"}
	legacyFields   = []string{"requestBody", "messages", "reqHeaders", "clientReqMeta", "upstreamReqMeta"}
)

// read gets seqs' snapshots of view in one round trip and returns those holding headers and
// body, in ascending sequence order.
func (s *Sessions) read(ctx context.Context, sid, view string, seqs []int64) ([]snapshot, error) {
	if len(seqs) == 0 {
		return nil, nil
	}
	type cmds struct {
		owner, special *redis.StringCmd
		snap, legacy   []*redis.StringCmd
	}
	all := make([]cmds, len(seqs))
	pipe := s.rdb.Pipeline()
	for i, q := range seqs {
		base := "session:" + sid + ":req:" + strconv.FormatInt(q, 10) + ":"
		c := &all[i]
		c.owner = pipe.Get(ctx, base+"owner")
		c.special = pipe.Get(ctx, base+"specialSettings")
		for _, f := range snapshotFields {
			c.snap = append(c.snap, pipe.Get(ctx, base+"snapshot:request:"+view+":"+f))
		}
		if view == export.SessionViewAfter {
			for _, f := range legacyFields {
				c.legacy = append(c.legacy, pipe.Get(ctx, base+f))
			}
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("hub: read session snapshots: %w", err)
	}
	var out []snapshot
	for i, q := range seqs {
		c := all[i]
		r := snapshot{owner: val(c.owner)}
		r.Sequence = q
		r.SpecialSettings = raw(c.special)
		r.Body, r.Messages, r.Headers, r.Meta = raw(c.snap[0]), raw(c.snap[1]), raw(c.snap[2]), raw(c.snap[3])
		if c.legacy != nil {
			r.Body = orElse(r.Body, raw(c.legacy[0]))
			r.Messages = orElse(r.Messages, raw(c.legacy[1]))
			r.Headers = orElse(r.Headers, raw(c.legacy[2]))
			r.Meta = orElse(r.Meta, legacyMeta(raw(c.legacy[3]), raw(c.legacy[4])))
		}
		if isNull(r.Headers) || isNull(r.Body) || r.owner == "" {
			continue
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b snapshot) int { return int(a.Sequence - b.Sequence) })
	return out, nil
}

func val(c *redis.StringCmd) string {
	v, err := c.Result()
	if err != nil {
		return ""
	}
	return v
}

// raw is a stored JSON value; nil when absent or not JSON.
func raw(c *redis.StringCmd) json.RawMessage {
	v := val(c)
	if v == "" || !json.Valid([]byte(v)) {
		return nil
	}
	return json.RawMessage(v)
}

func isNull(v json.RawMessage) bool { return len(v) == 0 || string(v) == "null" }

func orElse(a, b json.RawMessage) json.RawMessage {
	if isNull(a) {
		return b
	}
	return a
}

// legacyMeta builds the snapshot meta {clientUrl, upstreamUrl, method} from the legacy
// client and upstream request metas ({url, method}).
func legacyMeta(client, upstream json.RawMessage) json.RawMessage {
	if isNull(client) && isNull(upstream) {
		return nil
	}
	var c, u struct {
		URL       json.RawMessage `json:"url"`
		ClientURL json.RawMessage `json:"clientUrl"`
		Upstream  json.RawMessage `json:"upstreamUrl"`
		Method    json.RawMessage `json:"method"`
	}
	_ = json.Unmarshal(client, &c)
	_ = json.Unmarshal(upstream, &u)
	field := func(vs ...json.RawMessage) string {
		for _, v := range vs {
			if !isNull(v) {
				return string(v)
			}
		}
		return "null"
	}
	return json.RawMessage(`{"clientUrl":` + field(c.URL, c.ClientURL) + `,"upstreamUrl":` + field(u.URL, u.Upstream) +
		`,"method":` + field(c.Method, u.Method) + `}`)
}

// checkOwners looks the requests up in message_request and keeps CCH's rule: Redis
// artifacts belong to a request only when its owner key equals the request's key id (the
// keys row its key string joins, picked as the usage-log export picks it). The request's
// special_settings stand in when Redis holds none.
func (s *Sessions) checkOwners(ctx context.Context, sid string, found []snapshot) ([]export.SessionRequest, error) {
	seqs := make([]int64, len(found))
	for i, f := range found {
		seqs[i] = f.Sequence
	}
	rows, err := s.db.pool.Query(ctx, `
		SELECT DISTINCT ON (t.request_sequence) t.request_sequence,
			(SELECT k.id FROM keys k WHERE k.key = t.key
				ORDER BY (k.user_id IS NOT DISTINCT FROM t.user_id) DESC, k.id LIMIT 1),
			t.special_settings::text
		FROM message_request t
		WHERE t.session_id = $1 AND t.request_sequence = ANY($2) AND t.deleted_at IS NULL
		ORDER BY t.request_sequence, t.id DESC`, sid, seqs)
	if err != nil {
		return nil, fmt.Errorf("hub: look up session requests: %w", err)
	}
	defer rows.Close()
	type dbRow struct {
		keyID   *int64
		special *string
	}
	byseq := map[int64]dbRow{}
	for rows.Next() {
		var q int64
		var r dbRow
		if err := rows.Scan(&q, &r.keyID, &r.special); err != nil {
			return nil, fmt.Errorf("hub: look up session requests: %w", err)
		}
		byseq[q] = r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("hub: look up session requests: %w", err)
	}
	out := make([]export.SessionRequest, 0, len(found))
	for _, f := range found {
		r, ok := byseq[f.Sequence]
		switch {
		case !ok:
			return nil, export.Errorf(export.KindForbidden, "session_owner_mismatch",
				"request %d of session %q is in Redis but not in message_request, so its owner cannot be checked; CCH does not show such snapshots", f.Sequence, sid)
		case r.keyID == nil || strconv.FormatInt(*r.keyID, 10) != f.owner:
			return nil, export.Errorf(export.KindForbidden, "session_owner_mismatch",
				"the snapshot of request %d of session %q was stored by another API key than the request's; CCH does not show it, so it is not exported", f.Sequence, sid)
		}
		if isNull(f.SpecialSettings) && r.special != nil {
			f.SpecialSettings = json.RawMessage(*r.special)
		}
		out = append(out, f.SessionRequest)
	}
	return out, nil
}
