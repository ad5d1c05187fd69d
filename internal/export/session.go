package export

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// SessionRequestParams are the parameters of a session_request export, normalised.
type SessionRequestParams struct {
	// SessionID is the physical session id (message_request.session_id), trimmed.
	SessionID string `json:"session_id"`
	// Sequence is the request_sequence; nil: the latest one whose snapshot still exists.
	Sequence *int64 `json:"sequence,omitempty"`
	// View is SessionViewAfter (what went upstream) or SessionViewBefore (what the client sent).
	View string `json:"view"`
	// WholeSession exports every sequence still in Redis in one document; Sequence is unused.
	WholeSession bool `json:"whole_session,omitempty"`
}

// Session snapshot views (hub-facts §4.1).
const (
	SessionViewAfter  = "after"
	SessionViewBefore = "before"
)

// ContentTypeJSON is the content type of session request files.
const ContentTypeJSON = "application/json"

// ParseSessionRequestParams checks a session_request request's params.
func ParseSessionRequestParams(raw json.RawMessage) (SessionRequestParams, error) {
	var in struct {
		SessionID    *string `json:"session_id"`
		Sequence     *int64  `json:"sequence"`
		View         *string `json:"view"`
		WholeSession *bool   `json:"whole_session"`
	}
	if err := DecodeStrict(raw, &in, "params."); err != nil {
		return SessionRequestParams{}, err
	}
	out := SessionRequestParams{View: SessionViewAfter}
	if in.SessionID == nil || strings.TrimSpace(*in.SessionID) == "" {
		return out, Invalid("params.session_id", "is required: the session's id (message_request.session_id)")
	}
	out.SessionID = strings.TrimSpace(*in.SessionID)
	if n := utf8.RuneCountInString(out.SessionID); n > MaxSessionIDLen {
		return out, Invalid("params.session_id", "must be at most %d characters, not %d", MaxSessionIDLen, n)
	}
	if in.Sequence != nil {
		if *in.Sequence < 1 || *in.Sequence > 1<<31-1 {
			return out, Invalid("params.sequence", "must be a request sequence of 1 or more (omit it for the latest request)")
		}
		out.Sequence = in.Sequence
	}
	if in.View != nil && *in.View != "" {
		switch *in.View {
		case SessionViewAfter, SessionViewBefore:
			out.View = *in.View
		default:
			return out, Invalid("params.view", "must be \"after\" (sent upstream) or \"before\" (sent by the client), not %q", *in.View)
		}
	}
	if in.WholeSession != nil && *in.WholeSession {
		if out.Sequence != nil {
			return out, Invalid("params.sequence", "cannot be combined with whole_session, which exports every sequence")
		}
		out.WholeSession = true
	}
	return out, nil
}

// SessionRequestFilename is CCH's file name: session-<first 8 chars>[-seq-N]-request.json.
func SessionRequestFilename(p SessionRequestParams) string {
	short := p.SessionID
	if r := []rune(short); len(r) > 8 {
		short = string(r[:8])
	}
	name := "session-" + short
	if p.Sequence != nil && !p.WholeSession {
		name += "-seq-" + strconv.FormatInt(*p.Sequence, 10)
	}
	return name + "-request.json"
}

// SessionRequestSpec describes the session_request export type.
func SessionRequestSpec() TypeSpec {
	return TypeSpec{
		Type:      TypeSessionRequest,
		AdminOnly: true,
		Formats:   []Format{FormatJSON},
		Parse: func(raw json.RawMessage, _ Principal) (json.RawMessage, error) {
			p, err := ParseSessionRequestParams(raw)
			if err != nil {
				return nil, err
			}
			return json.Marshal(p)
		},
		ContentType: func(Format) string { return ContentTypeJSON },
		Filename: func(j *Job, _ time.Time) string {
			var p SessionRequestParams
			_ = json.Unmarshal(j.Params, &p)
			return SessionRequestFilename(p)
		},
	}
}

// SessionRequest is one request of a session as read from CCH's Redis. Every field holds
// the stored JSON as is (nil: absent), so keys keep CCH's order.
type SessionRequest struct {
	Sequence        int64
	Body            json.RawMessage
	Messages        json.RawMessage
	Headers         json.RawMessage
	Meta            json.RawMessage // {clientUrl, upstreamUrl, method}
	SpecialSettings json.RawMessage
}

// ErrSessionDataExpired is the failure of an export whose snapshot is gone.
func ErrSessionDataExpired(sessionID string, seq *int64) *Error {
	what := "the latest request of session " + strconv.Quote(sessionID)
	if seq != nil {
		what = fmt.Sprintf("request %d of session %q", *seq, sessionID)
	}
	return Errorf(KindGone, "session_data_expired",
		"no request snapshot with headers and body is left in Redis for %s: CCH keeps snapshots for SESSION_TTL seconds (300 by default) "+
			"and stores message content only with STORE_SESSION_MESSAGES=true; export sooner after the request, or raise SESSION_TTL", what)
}

// WriteSessionRequest writes the document CCH's session page exports, indented as
// JSON.stringify(obj, null, 2) does. Headers are masked again.
func WriteSessionRequest(w io.Writer, sessionID, view string, r SessionRequest) error {
	var b bytes.Buffer
	b.WriteString(`{"sessionId":`)
	appendJSString(&b, sessionID)
	b.WriteString(`,"sequence":`)
	b.WriteString(strconv.FormatInt(r.Sequence, 10))
	b.WriteString(`,"view":`)
	appendJSString(&b, view)
	b.WriteString(`,"request":`)
	if err := appendSessionRequest(&b, r); err != nil {
		return err
	}
	b.WriteString(`,"specialSettings":`)
	b.Write(rawOrNull(r.SpecialSettings))
	b.WriteByte('}')
	return writeIndented(w, b.Bytes())
}

// WriteSessionRequests writes a whole session: {"sessionId", "view", "requests": [...]}.
func WriteSessionRequests(w io.Writer, sessionID, view string, rs []SessionRequest) error {
	var b bytes.Buffer
	b.WriteString(`{"sessionId":`)
	appendJSString(&b, sessionID)
	b.WriteString(`,"view":`)
	appendJSString(&b, view)
	b.WriteString(`,"requests":[`)
	for i, r := range rs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"sequence":`)
		b.WriteString(strconv.FormatInt(r.Sequence, 10))
		b.WriteString(`,"request":`)
		if err := appendSessionRequest(&b, r); err != nil {
			return err
		}
		b.WriteString(`,"specialSettings":`)
		b.Write(rawOrNull(r.SpecialSettings))
		b.WriteByte('}')
	}
	b.WriteString(`]}`)
	return writeIndented(w, b.Bytes())
}

func appendSessionRequest(b *bytes.Buffer, r SessionRequest) error {
	headers, err := MaskHeaders(r.Headers)
	if err != nil {
		return err
	}
	b.WriteString(`{"body":`)
	b.Write(rawOrNull(r.Body))
	b.WriteString(`,"messages":`)
	b.Write(rawOrNull(r.Messages))
	b.WriteString(`,"headers":`)
	b.Write(rawOrNull(headers))
	b.WriteString(`,"meta":`)
	b.Write(rawOrNull(r.Meta))
	b.WriteByte('}')
	return nil
}

func writeIndented(w io.Writer, compact []byte) error {
	var out bytes.Buffer
	out.Grow(len(compact) * 2)
	if err := json.Indent(&out, compact, "", "  "); err != nil {
		return fmt.Errorf("export: indent session request: %w", err)
	}
	_, err := w.Write(out.Bytes())
	return err
}

// rawOrNull is v, or null when absent or not valid JSON (a value CCH could not have
// parsed either).
func rawOrNull(v json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(v)) == 0 || !json.Valid(v) {
		return json.RawMessage("null")
	}
	return v
}

// maskedHeaders are the header names CCH redacts before storing (hub-facts §4.1).
var maskedHeaders = map[string]bool{
	"authorization": true, "proxy-authorization": true, "x-api-key": true, "api-key": true,
	"anthropic-api-key": true, "x-goog-api-key": true, "x-auth-token": true, "cookie": true,
	"set-cookie": true,
}

// MaskHeaders masks credential-like header values in a stored headers object, keeping key
// order and every other value as stored. Values CCH already masked stay as they are.
func MaskHeaders(raw json.RawMessage) (json.RawMessage, error) {
	if len(bytes.TrimSpace(raw)) == 0 || !json.Valid(raw) {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("export: read headers: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return raw, nil // not an object: nothing to mask
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for i := 0; dec.More(); i++ {
		kt, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("export: read headers: %w", err)
		}
		name, _ := kt.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("export: read headers: %w", err)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		appendJSString(&b, name)
		b.WriteByte(':')
		var s string
		if maskedHeaders[strings.ToLower(name)] && json.Unmarshal(v, &s) == nil {
			appendJSString(&b, MaskHeaderValue(name, s))
			continue
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// MaskHeaderValue is CCH's redaction of one credential header value: Bearer tokens keep
// their scheme, Basic credentials are hidden entirely, other values keep their first and last
// four characters (eight or fewer: [REDACTED]).
func MaskHeaderValue(name, v string) string {
	if !maskedHeaders[strings.ToLower(name)] || isMasked(v) {
		return v
	}
	if strings.EqualFold(name, "authorization") || strings.EqualFold(name, "proxy-authorization") {
		lower := strings.ToLower(v)
		switch {
		case strings.HasPrefix(lower, "bearer "):
			return "Bearer " + maskSecret(strings.TrimSpace(v[len("bearer "):]))
		case strings.HasPrefix(lower, "basic "):
			return "Basic [REDACTED]"
		}
	}
	return maskSecret(v)
}

func isMasked(v string) bool {
	return strings.Contains(v, "******") || strings.Contains(v, "[REDACTED]")
}

func maskSecret(v string) string {
	if isMasked(v) {
		return v
	}
	r := []rune(v)
	if len(r) <= 8 {
		return "[REDACTED]"
	}
	return string(r[:4]) + "******" + string(r[len(r)-4:])
}

// appendJSString appends s as JavaScript's JSON.stringify writes it: only quotes,
// backslashes and control characters are escaped (no HTML escaping, U+2028 kept).
func appendJSString(b *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for _, c := range []byte(s) {
		switch {
		case c == '"':
			b.WriteString(`\"`)
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\b':
			b.WriteString(`\b`)
		case c == '\f':
			b.WriteString(`\f`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}
