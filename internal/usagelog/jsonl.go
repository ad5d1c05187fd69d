package usagelog

import (
	"io"
	"strconv"
	"time"

	"github.com/hubexport/hubexport/internal/export"
)

// JSONL writes one JSON object per row and line: the request's id first (the
// key to join and de-duplicate on), the user, key and provider ids beside
// their names (key_id is null when no keys row holds the key any more),
// snake_case keys, integers
// as numbers, the cost as a string holding the exact decimal (JSON numbers
// are floats to most readers), the time as RFC 3339 with milliseconds in the
// export's zone. One rule for absent values: a value the hub does not have
// (SQL NULL, or empty text: no time, provider, model, original model,
// endpoint, status, duration or session) is null, never "". Counts and the
// cost are always numbers: CCH adds a NULL count as 0 and defaults the cost
// to 0. User and key always have a name.
type JSONL struct {
	w   io.Writer
	loc *time.Location
	buf []byte
}

// NewJSONL returns the encoder.
func NewJSONL(w io.Writer, o Options) *JSONL {
	return &JSONL{w: w, loc: o.loc(), buf: make([]byte, 0, 1024)}
}

// JSONLRow is the object of one line; decoding a line into it gives the row
// back (tests and readers in Go use it).
type JSONLRow struct {
	ID            int64   `json:"id"`
	Time          *string `json:"time"`
	UserID        int64   `json:"user_id"`
	User          string  `json:"user"`
	KeyID         *int64  `json:"key_id"`
	Key           string  `json:"key"`
	ProviderID    int64   `json:"provider_id"`
	Provider      *string `json:"provider"`
	Model         *string `json:"model"`
	OriginalModel *string `json:"original_model"`
	Endpoint      *string `json:"endpoint"`
	StatusCode    *int64  `json:"status_code"`
	InputTokens   int64   `json:"input_tokens"`
	OutputTokens  int64   `json:"output_tokens"`
	CacheWrite5m  int64   `json:"cache_write_5m_tokens"`
	CacheWrite1h  int64   `json:"cache_write_1h_tokens"`
	CacheRead     int64   `json:"cache_read_tokens"`
	TotalTokens   int64   `json:"total_tokens"`
	CostUSD       string  `json:"cost_usd"`
	DurationMs    *int64  `json:"duration_ms"`
	SessionID     *string `json:"session_id"`
	RetryCount    int64   `json:"retry_count"`
}

// Write implements Encoder.
func (e *JSONL) Write(r *export.UsageRow) error {
	b := append(e.buf[:0], `{"id":`...)
	b = strconv.AppendInt(b, r.ID, 10)
	b = append(b, `,"time":`...)
	if r.CreatedAt.IsZero() {
		b = append(b, "null"...)
	} else {
		b = append(b, '"')
		b = appendTime(b, r.CreatedAt, e.loc)
		b = append(b, '"')
	}
	b = append(b, `,"user_id":`...)
	b = strconv.AppendInt(b, r.UserID, 10)
	b = append(b, `,"user":`...)
	b = appendJSONString(b, r.User)
	b = append(b, `,"key_id":`...)
	b = appendNullInt(b, r.KeyID)
	b = append(b, `,"key":`...)
	b = appendJSONString(b, r.Key)
	b = append(b, `,"provider_id":`...)
	b = strconv.AppendInt(b, r.ProviderID, 10)
	b = append(b, `,"provider":`...)
	if r.Provider == nil {
		b = append(b, "null"...)
	} else {
		b = appendNullString(b, *r.Provider)
	}
	b = append(b, `,"model":`...)
	b = appendNullString(b, r.Model)
	b = append(b, `,"original_model":`...)
	b = appendNullString(b, r.OriginalModel)
	b = append(b, `,"endpoint":`...)
	b = appendNullString(b, r.Endpoint)
	b = append(b, `,"status_code":`...)
	b = appendNullInt(b, r.StatusCode)
	b = append(b, `,"input_tokens":`...)
	b = strconv.AppendInt(b, r.InputTokens, 10)
	b = append(b, `,"output_tokens":`...)
	b = strconv.AppendInt(b, r.OutputTokens, 10)
	b = append(b, `,"cache_write_5m_tokens":`...)
	b = strconv.AppendInt(b, r.CacheWrite5m, 10)
	b = append(b, `,"cache_write_1h_tokens":`...)
	b = strconv.AppendInt(b, r.CacheWrite1h, 10)
	b = append(b, `,"cache_read_tokens":`...)
	b = strconv.AppendInt(b, r.CacheRead, 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, r.TotalTokens, 10)
	b = append(b, `,"cost_usd":`...)
	b = appendJSONString(b, exactDecimal(r.CostUSD))
	b = append(b, `,"duration_ms":`...)
	b = appendNullInt(b, r.DurationMs)
	b = append(b, `,"session_id":`...)
	b = appendNullString(b, r.SessionID)
	b = append(b, `,"retry_count":`...)
	b = strconv.AppendInt(b, r.RetryCount, 10)
	b = append(b, "}\n"...)
	e.buf = b
	if _, err := e.w.Write(b); err != nil {
		return writeErr("json line", err)
	}
	return nil
}

// appendNullString appends s as a JSON string, or null when it is empty.
func appendNullString(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendJSONString(b, s)
}

func appendNullInt(b []byte, v *int64) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	return strconv.AppendInt(b, *v, 10)
}

// Finish implements Encoder.
func (e *JSONL) Finish() error { return nil }

// Close implements Encoder.
func (e *JSONL) Close() error { return nil }
