package seed

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// SessionTTL is CCH's default SESSION_TTL: how long it keeps a request's session keys.
const SessionTTL = 300 * time.Second

// SessionOptions say which sessions get snapshots.
type SessionOptions struct {
	// Sessions is how many of the most recently active sessions get snapshots.
	Sessions int
	// PerSession is how many of a session's last requests get snapshots; 0 means 3.
	PerSession int
	// TTL is the snapshots' expiry, as CCH's SESSION_TTL; 0 means SessionTTL.
	TTL time.Duration
}

// Session is a session whose request snapshots WriteSessions stored.
type Session struct {
	ID        string  // message_request.session_id
	Sequences []int64 // the requests with snapshots, ascending
	KeyID     int64   // the key that made the newest of them (its :owner)
}

// hubURL is where the seeded CCH says its clients reach it.
const hubURL = "https://hub.example.com"

// WriteSessions writes CCH's per-request session keys (src/lib/session-manager.ts) for the
// last requests of the most recently active sessions of a seeded database into rdb, CCH's
// Redis: the request and response snapshots of both views, the legacy flat fields and the
// :owner key, each with SETEX ttl, and the session's :seq counter without expiry. Message
// content is "[REDACTED]", as CCH stores it by default (STORE_SESSION_MESSAGES=false), and
// credentials in headers are masked as CCH masks them. Writing again overwrites the same keys.
func WriteSessions(ctx context.Context, pool *pgxpool.Pool, rdb redis.UniversalClient, opts SessionOptions) ([]Session, error) {
	if opts.Sessions <= 0 {
		return nil, nil
	}
	per := opts.PerSession
	if per <= 0 {
		per = 3
	}
	ttl := opts.TTL
	if ttl <= 0 {
		ttl = SessionTTL
	}
	// The owner is the key id the session_request export checks against: the keys row the
	// request's key string joins, the request's user's first.
	rows, err := pool.Query(ctx, `
		WITH recent AS (
			SELECT session_id FROM message_request
			WHERE session_id IS NOT NULL AND deleted_at IS NULL AND blocked_by IS NULL
			GROUP BY session_id HAVING count(*) >= 2
			ORDER BY max(created_at) DESC, session_id LIMIT $1)
		SELECT DISTINCT ON (t.session_id, t.request_sequence) t.session_id, t.request_sequence,
			(SELECT k.id FROM keys k WHERE k.key = t.key
				ORDER BY (k.user_id IS NOT DISTINCT FROM t.user_id) DESC, k.id LIMIT 1),
			t.key, t.model, COALESCE(t.original_model, t.model), COALESCE(t.endpoint, '/v1/messages'),
			COALESCE(t.api_type, 'claude'), COALESCE(t.user_agent, ''), t.status_code,
			COALESCE(p.url, ''), COALESCE(p.key, ''),
			(SELECT max(m.request_sequence) FROM message_request m WHERE m.session_id = t.session_id AND m.deleted_at IS NULL)
		FROM message_request t JOIN recent USING (session_id) LEFT JOIN providers p ON p.id = t.provider_id
		WHERE t.deleted_at IS NULL AND t.blocked_by IS NULL
		ORDER BY t.session_id, t.request_sequence, t.id DESC`, opts.Sessions)
	if err != nil {
		return nil, fmt.Errorf("seed: pick sessions: %w", err)
	}
	var reqs []sessionReq
	for rows.Next() {
		var r sessionReq
		if err := rows.Scan(&r.sid, &r.seq, &r.keyID, &r.key, &r.model, &r.originalModel, &r.endpoint,
			&r.apiType, &r.userAgent, &r.status, &r.providerURL, &r.providerKey, &r.maxSeq); err != nil {
			rows.Close()
			return nil, fmt.Errorf("seed: pick sessions: %w", err)
		}
		if r.keyID != nil {
			reqs = append(reqs, r)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("seed: pick sessions: %w", err)
	}

	var out []Session
	pipe := rdb.Pipeline()
	for i := 0; i < len(reqs); {
		j := i
		for j < len(reqs) && reqs[j].sid == reqs[i].sid {
			j++
		}
		last := reqs[max(i, j-per):j] // ascending sequences
		s := Session{ID: reqs[i].sid, KeyID: *last[len(last)-1].keyID}
		for _, r := range last {
			for k, v := range r.keys() {
				pipe.SetEx(ctx, k, v, ttl)
			}
			s.Sequences = append(s.Sequences, r.seq)
		}
		// CCH's INCR counter is PERSISTed: it outlives the snapshots.
		pipe.Set(ctx, "session:"+s.ID+":seq", reqs[i].maxSeq, 0)
		out = append(out, s)
		i = j
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("seed: write session snapshots: %w", err)
	}
	return out, nil
}

// sessionReq is one request of a session, as message_request and providers hold it.
type sessionReq struct {
	sid                          string
	seq                          int64
	keyID                        *int64
	key, model, originalModel    string
	endpoint, apiType, userAgent string
	status                       *int32
	providerURL, providerKey     string
	maxSeq                       int64
}

// keys returns the request's Redis keys and values.
func (r sessionReq) keys() map[string]string {
	base := "session:" + r.sid + ":req:" + strconv.FormatInt(r.seq, 10) + ":"
	clientURL := hubURL + r.endpoint
	upstreamURL := r.providerURL + r.endpoint
	beforeBody, beforeMsgs := requestBody(r.apiType, r.originalModel)
	afterBody, afterMsgs := requestBody(r.apiType, r.model)
	beforeHeaders := headers(r.apiType, r.key, r.userAgent)
	afterHeaders := headers(r.apiType, r.providerKey, r.userAgent)
	meta := jsonText(map[string]any{"clientUrl": clientURL, "upstreamUrl": upstreamURL, "method": "POST"})

	kv := map[string]string{
		base + "owner":                            strconv.FormatInt(*r.keyID, 10),
		base + "snapshot:request:before:body":     beforeBody,
		base + "snapshot:request:before:messages": beforeMsgs,
		base + "snapshot:request:before:headers":  beforeHeaders,
		base + "snapshot:request:before:meta":     meta,
		base + "snapshot:request:after:body":      afterBody,
		base + "snapshot:request:after:messages":  afterMsgs,
		base + "snapshot:request:after:headers":   afterHeaders,
		base + "snapshot:request:after:meta":      meta,
		// The legacy flat fields CCH still writes beside the snapshots.
		base + "requestBody":     afterBody,
		base + "messages":        afterMsgs,
		base + "reqHeaders":      afterHeaders,
		base + "clientReqMeta":   jsonText(map[string]any{"url": clientURL, "method": "POST"}),
		base + "upstreamReqMeta": jsonText(map[string]any{"url": upstreamURL, "method": "POST"}),
	}
	if r.status != nil { // a request still in flight has no response yet
		resBody := responseBody(r.apiType, r.model, *r.status)
		resHeaders := jsonText(map[string]any{"content-type": "application/json", "x-request-id": "req_" + r.sid[max(0, len(r.sid)-8):] + strconv.FormatInt(r.seq, 10)})
		resMeta := jsonText(map[string]any{"upstreamUrl": upstreamURL, "statusCode": *r.status})
		for _, view := range []string{"before", "after"} {
			kv[base+"snapshot:response:"+view+":body"] = resBody
			kv[base+"snapshot:response:"+view+":headers"] = resHeaders
			kv[base+"snapshot:response:"+view+":meta"] = resMeta
		}
		kv[base+"response"] = resBody
		kv[base+"resHeaders"] = resHeaders
		kv[base+"upstreamResMeta"] = jsonText(map[string]any{"url": upstreamURL, "statusCode": *r.status})
	}
	return kv
}

const redacted = "[REDACTED]"

// requestBody is a request of the API type with its content redacted, and its messages.
func requestBody(apiType, model string) (body, messages string) {
	text := []map[string]any{{"type": "text", "text": redacted}}
	var msgs any
	var b map[string]any
	switch apiType {
	case "openai":
		msgs = []map[string]any{{"role": "system", "content": redacted}, {"role": "user", "content": redacted}}
		b = map[string]any{"model": model, "stream": true, "messages": msgs}
	case "codex":
		msgs = []map[string]any{{"type": "message", "role": "user", "content": []map[string]any{{"type": "input_text", "text": redacted}}}}
		b = map[string]any{"model": model, "stream": true, "instructions": redacted, "input": msgs}
	case "gemini":
		msgs = []map[string]any{{"role": "user", "parts": []map[string]any{{"text": redacted}}}}
		b = map[string]any{"contents": msgs, "systemInstruction": map[string]any{"parts": []map[string]any{{"text": redacted}}}}
	default:
		msgs = []map[string]any{{"role": "user", "content": text}}
		b = map[string]any{"model": model, "max_tokens": 8192, "stream": true, "system": text, "messages": msgs}
	}
	return jsonText(b), jsonText(msgs)
}

func responseBody(apiType, model string, status int32) string {
	if status >= 400 {
		return jsonText(map[string]any{"type": "error", "error": map[string]any{"type": "api_error", "message": "upstream answered " + strconv.Itoa(int(status))}})
	}
	switch apiType {
	case "openai":
		return jsonText(map[string]any{"object": "chat.completion", "model": model, "choices": []map[string]any{{"index": 0, "message": map[string]any{"role": "assistant", "content": redacted}, "finish_reason": "stop"}}})
	case "codex":
		return jsonText(map[string]any{"object": "response", "model": model, "status": "completed", "output": []map[string]any{{"type": "message", "role": "assistant", "content": []map[string]any{{"type": "output_text", "text": redacted}}}}})
	case "gemini":
		return jsonText(map[string]any{"candidates": []map[string]any{{"content": map[string]any{"role": "model", "parts": []map[string]any{{"text": redacted}}}, "finishReason": "STOP"}}})
	default:
		return jsonText(map[string]any{"type": "message", "role": "assistant", "model": model, "content": []map[string]any{{"type": "text", "text": redacted}}, "stop_reason": "end_turn"})
	}
}

// headers are a request's headers with its key masked in the API type's header.
func headers(apiType, key, userAgent string) string {
	h := map[string]any{"content-type": "application/json", "user-agent": userAgent}
	switch apiType {
	case "claude":
		h["x-api-key"] = maskKey(key)
		h["anthropic-version"] = "2023-06-01"
	case "gemini":
		h["x-goog-api-key"] = maskKey(key)
	default:
		h["authorization"] = "Bearer " + maskKey(key)
	}
	return jsonText(h)
}

// maskKey masks a credential as CCH does: the first and last four characters, or
// [REDACTED] for 8 or fewer.
func maskKey(k string) string {
	if len(k) <= 8 {
		return redacted
	}
	return k[:4] + "******" + k[len(k)-4:]
}

// jsonText marshals v; maps come out with sorted keys, so the values are stable.
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic("seed: " + err.Error()) // only maps of strings, numbers and slices reach here
	}
	return string(b)
}
