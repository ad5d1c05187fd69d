package export

import (
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"
)

// UsageLogParams are the parameters of a usage_logs export, normalised: the
// filters of hub-facts §2.4 (all ANDed) and how the file is rendered.
type UsageLogParams struct {
	// UserID is message_request.user_id. For a non-admin it is always the
	// caller's own id, whatever they asked for.
	UserID *int64 `json:"user_id,omitempty"`
	// KeyID selects requests made with the key string of keys row KeyID
	// (requests join keys by key string, not by id).
	KeyID *int64 `json:"key_id,omitempty"`
	// ProviderID is the recorded message_request.provider_id; 0 selects the
	// requests that never reached a provider (blocks, warmups).
	ProviderID *int64 `json:"provider_id,omitempty"`
	// SessionID is trimmed; empty means no filter.
	SessionID string     `json:"session_id,omitempty"`
	StartTime *time.Time `json:"start_time,omitempty"` // inclusive
	EndTime   *time.Time `json:"end_time,omitempty"`   // exclusive
	// StatusCode, when set, makes ExcludeStatus200 meaningless; the parser
	// clears ExcludeStatus200 then, so the stored params say what applies.
	StatusCode       *int64 `json:"status_code,omitempty"`
	ExcludeStatus200 bool   `json:"exclude_status_200,omitempty"`
	Model            string `json:"model,omitempty"`
	// Endpoint is trimmed; the query compares it case-insensitively without
	// trailing slashes. Empty hides count_tokens and responses/compact rows.
	Endpoint      string `json:"endpoint,omitempty"`
	MinRetryCount int64  `json:"min_retry_count,omitempty"`

	HeaderLang string `json:"header_lang"` // HeaderLangZH or HeaderLangEN
	Timezone   string `json:"timezone"`    // IANA name

	// Window "since_last" makes the export an incremental feed: the rows
	// created after the mark of feed Feed (of the job's owner), up to the
	// feed lag before the export runs (feeds.go).
	Window string `json:"window,omitempty"`
	Feed   string `json:"feed,omitempty"`
	// After, set by the worker for a feed, selects the rows after a mark
	// (created_at, then id); it is not a request parameter.
	After *FeedMark `json:"-"`
}

// Header languages of usage-log files.
const (
	HeaderLangZH = "zh"
	HeaderLangEN = "en"
)

// MaxSessionIDLen is the width of CCH's session_id column (varchar(64)).
const MaxSessionIDLen = 64

// ParseUsageLogParams checks a usage_logs request's params for principal p.
func ParseUsageLogParams(raw json.RawMessage, p Principal) (UsageLogParams, error) {
	var in struct {
		UserID           *int64          `json:"user_id"`
		KeyID            *int64          `json:"key_id"`
		ProviderID       *int64          `json:"provider_id"`
		SessionID        *string         `json:"session_id"`
		StartTime        json.RawMessage `json:"start_time"`
		EndTime          json.RawMessage `json:"end_time"`
		StatusCode       *int64          `json:"status_code"`
		ExcludeStatus200 *bool           `json:"exclude_status_200"`
		Model            *string         `json:"model"`
		Endpoint         *string         `json:"endpoint"`
		MinRetryCount    *int64          `json:"min_retry_count"`
		HeaderLang       *string         `json:"header_lang"`
		Timezone         *string         `json:"timezone"`
		Window           *string         `json:"window"`
		Feed             *string         `json:"feed"`
	}
	if err := DecodeStrict(raw, &in, "params."); err != nil {
		return UsageLogParams{}, err
	}
	out := UsageLogParams{HeaderLang: HeaderLangZH, Timezone: "UTC"}
	if in.UserID != nil && *in.UserID <= 0 && p.Admin {
		return out, Invalid("params.user_id", "must be a positive user id (omit it for every user)")
	}
	switch {
	case !p.Admin:
		// Not an error: CCH silently replaces a user's user_id with their own.
		own := p.UserID
		out.UserID = &own
	case in.UserID != nil:
		out.UserID = in.UserID
	}
	if in.KeyID != nil {
		if *in.KeyID <= 0 {
			return out, Invalid("params.key_id", "must be a positive key id (omit it for every key)")
		}
		out.KeyID = in.KeyID
	}
	if in.ProviderID != nil {
		if *in.ProviderID < 0 {
			return out, Invalid("params.provider_id", "must be a provider id, or 0 for requests that never reached a provider")
		}
		out.ProviderID = in.ProviderID
	}
	if in.SessionID != nil {
		out.SessionID = strings.TrimSpace(*in.SessionID)
		if n := utf8.RuneCountInString(out.SessionID); n > MaxSessionIDLen {
			return out, Invalid("params.session_id", "must be at most %d characters, not %d", MaxSessionIDLen, n)
		}
	}
	var err error
	if out.StartTime, err = ParseInstant("params.start_time", in.StartTime); err != nil {
		return out, err
	}
	if out.EndTime, err = ParseInstant("params.end_time", in.EndTime); err != nil {
		return out, err
	}
	if out.StartTime != nil && out.EndTime != nil && !out.EndTime.After(*out.StartTime) {
		return out, Invalid("params.end_time", "must be after start_time (start is inclusive, end exclusive)")
	}
	if in.StatusCode != nil {
		if *in.StatusCode < 100 || *in.StatusCode > 599 {
			return out, Invalid("params.status_code", "must be an HTTP status code between 100 and 599, not %d", *in.StatusCode)
		}
		out.StatusCode = in.StatusCode
	}
	if in.ExcludeStatus200 != nil && out.StatusCode == nil {
		out.ExcludeStatus200 = *in.ExcludeStatus200
	}
	if in.Model != nil {
		out.Model = *in.Model
		if n := utf8.RuneCountInString(out.Model); n > 128 {
			return out, Invalid("params.model", "must be at most 128 characters (CCH's model column), not %d", n)
		}
	}
	if in.Endpoint != nil {
		out.Endpoint = strings.TrimSpace(*in.Endpoint)
		if n := utf8.RuneCountInString(out.Endpoint); n > 256 {
			return out, Invalid("params.endpoint", "must be at most 256 characters (CCH's endpoint column), not %d", n)
		}
	}
	if in.MinRetryCount != nil {
		if *in.MinRetryCount < 0 {
			return out, Invalid("params.min_retry_count", "must be 0 or more, not %d", *in.MinRetryCount)
		}
		out.MinRetryCount = *in.MinRetryCount
	}
	if in.HeaderLang != nil && *in.HeaderLang != "" {
		switch *in.HeaderLang {
		case HeaderLangZH, HeaderLangEN:
			out.HeaderLang = *in.HeaderLang
		default:
			return out, Invalid("params.header_lang", "must be \"zh\" or \"en\", not %q", *in.HeaderLang)
		}
	}
	if in.Timezone != nil && *in.Timezone != "" {
		if _, err := LoadZone("params.timezone", *in.Timezone); err != nil {
			return out, err
		}
		out.Timezone = *in.Timezone
	}
	if err := parseFeed(&out, in.Window, in.Feed); err != nil {
		return out, err
	}
	return out, nil
}

// parseFeed checks a feed's window and name: since_last needs a feed and
// sets its own end (the feed lag before the export runs).
func parseFeed(out *UsageLogParams, window, feed *string) error {
	if window != nil && *window != "" {
		if *window != WindowSinceLast {
			return Invalid("params.window", "must be \"since_last\" (an incremental feed), not %q; for a fixed period give start_time and end_time", *window)
		}
		out.Window = WindowSinceLast
	}
	if feed != nil && *feed != "" {
		if out.Window == "" {
			return Invalid("params.feed", "needs \"window\": \"since_last\"")
		}
		out.Feed = *feed
	}
	if out.Window == "" {
		return nil
	}
	if err := checkFeedName("params.feed", out.Feed); err != nil {
		return err
	}
	if out.EndTime != nil {
		return Invalid("params.end_time", "is set by the feed: a since_last export ends FEED_LAG before it runs")
	}
	return nil
}

// Content types of usage-log files.
const (
	ContentTypeCSV   = "text/csv; charset=utf-8"
	ContentTypeGzip  = "application/gzip"
	ContentTypeXLSX  = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	ContentTypeJSONL = "application/x-ndjson"
	// ContentTypeParquet is the type IANA registered for Apache Parquet.
	ContentTypeParquet = "application/vnd.apache.parquet"
)

// UsageLogSpec describes the usage_logs export type: any principal may ask,
// a user gets only their own rows.
func UsageLogSpec() TypeSpec {
	return TypeSpec{
		Type:    TypeUsageLogs,
		Formats: []Format{FormatCSV, FormatCSVGz, FormatXLSX, FormatJSONL, FormatParquet},
		Parse: func(raw json.RawMessage, p Principal) (json.RawMessage, error) {
			params, err := ParseUsageLogParams(raw, p)
			if err != nil {
				return nil, err
			}
			return json.Marshal(params)
		},
		ContentType: func(f Format) string {
			switch f {
			case FormatCSVGz:
				return ContentTypeGzip
			case FormatXLSX:
				return ContentTypeXLSX
			case FormatJSONL:
				return ContentTypeJSONL
			case FormatParquet:
				return ContentTypeParquet
			}
			return ContentTypeCSV
		},
		// Named after the job's creation, not its end, so a retried job keeps
		// its file name.
		Filename: func(j *Job, _ time.Time) string {
			f := j.Format
			if f == "" {
				f = FormatCSV
			}
			return "usage-logs-" + j.CreatedAt.UTC().Format("20060102-150405") + "." + string(f)
		},
	}
}

// UsageRow is one usage-log row: the source values of the 18 columns, with
// CCH's NULL rules already applied where the column has no empty form
// (tokens and cost NULL → 0; text NULL → ""), and the ids the machine formats
// (JSON Lines, Parquet) carry for joining and de-duplicating. Nil pointers
// are the cells that stay empty.
type UsageRow struct {
	// ID is the request's id (message_request.id, or the ledger's
	// request_id): it orders rows with equal times, and it is the first
	// field of the machine formats, not a CSV or XLSX column.
	ID int64
	// CreatedAt is zero when the row has none (the column is nullable).
	CreatedAt time.Time
	// UserID is the request's user_id, whether or not the users row exists.
	UserID int64
	User   string
	// KeyID is the id of the keys row that names the request's key; nil when
	// no keys row holds that key string any more (ledger rows outlive keys).
	KeyID *int64
	Key   string // the keys row's name, not the key string
	// ProviderID is the recorded provider id (message_request.provider_id,
	// the ledger's final_provider_id): 0 for blocks and warmups.
	ProviderID    int64
	Provider      *string // nil: no such provider (blocked and warmup rows)
	Model         string
	OriginalModel string
	Endpoint      string
	StatusCode    *int64
	InputTokens   int64
	OutputTokens  int64
	CacheWrite5m  int64
	CacheWrite1h  int64
	CacheRead     int64
	// TotalTokens is input + output + cache_creation_input_tokens (the
	// aggregate column, not 5m + 1h) + cache read.
	TotalTokens int64
	// CostUSD is the exact decimal text of the numeric cost ("0" for NULL),
	// never a float.
	CostUSD    string
	DurationMs *int64
	SessionID  string
	RetryCount int64
}
