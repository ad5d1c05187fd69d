package export

import (
	"encoding/json"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// ProbeLogParams are the parameters of a probe_logs export, normalised.
type ProbeLogParams struct {
	EndpointID *int64     `json:"endpoint_id,omitempty"`
	StartTime  *time.Time `json:"start_time,omitempty"`
	EndTime    *time.Time `json:"end_time,omitempty"`
	Result     string     `json:"result"`
	Search     string     `json:"search,omitempty"`
	MaxLines   int        `json:"max_lines"`
	Timezone   string     `json:"timezone"`
}

// Probe-log limits: the spec's terminal shows 100 lines; we allow more.
const (
	DefaultProbeMaxLines = 100
	MaxProbeMaxLines     = 100_000
)

// ParseProbeLogParams checks a probe_logs request's params.
func ParseProbeLogParams(raw json.RawMessage) (ProbeLogParams, error) {
	var in struct {
		EndpointID *int64          `json:"endpoint_id"`
		StartTime  json.RawMessage `json:"start_time"`
		EndTime    json.RawMessage `json:"end_time"`
		Result     *string         `json:"result"`
		Search     *string         `json:"search"`
		MaxLines   *int            `json:"max_lines"`
		Timezone   *string         `json:"timezone"`
	}
	if err := DecodeStrict(raw, &in, "params."); err != nil {
		return ProbeLogParams{}, err
	}
	p := ProbeLogParams{Result: "all", MaxLines: DefaultProbeMaxLines, Timezone: "UTC"}
	if in.EndpointID != nil {
		if *in.EndpointID <= 0 {
			return p, Invalid("params.endpoint_id", "must be a positive endpoint id (omit it for all endpoints)")
		}
		p.EndpointID = in.EndpointID
	}
	var err error
	if p.StartTime, err = ParseInstant("params.start_time", in.StartTime); err != nil {
		return p, err
	}
	if p.EndTime, err = ParseInstant("params.end_time", in.EndTime); err != nil {
		return p, err
	}
	if p.StartTime != nil && p.EndTime != nil && !p.EndTime.After(*p.StartTime) {
		return p, Invalid("params.end_time", "must be after start_time (start is inclusive, end exclusive)")
	}
	if in.Result != nil {
		switch *in.Result {
		case "all", "ok", "fail":
			p.Result = *in.Result
		default:
			return p, Invalid("params.result", "must be \"all\", \"ok\" or \"fail\", not %q", *in.Result)
		}
	}
	if in.Search != nil {
		p.Search = strings.TrimSpace(*in.Search)
		if len(p.Search) > 256 {
			return p, Invalid("params.search", "must be at most 256 bytes")
		}
	}
	if in.MaxLines != nil {
		if *in.MaxLines < 1 || *in.MaxLines > MaxProbeMaxLines {
			return p, Invalid("params.max_lines", "must be between 1 and %d", MaxProbeMaxLines)
		}
		p.MaxLines = *in.MaxLines
	}
	if in.Timezone != nil && *in.Timezone != "" {
		if _, err := LoadZone("params.timezone", *in.Timezone); err != nil {
			return p, err
		}
		p.Timezone = *in.Timezone
	}
	return p, nil
}

// ProbeLogSpec describes the probe_logs export type.
func ProbeLogSpec() TypeSpec {
	return TypeSpec{
		Type:      TypeProbeLogs,
		AdminOnly: true,
		Formats:   []Format{FormatText},
		Parse: func(raw json.RawMessage, _ Principal) (json.RawMessage, error) {
			p, err := ParseProbeLogParams(raw)
			if err != nil {
				return nil, err
			}
			return json.Marshal(p)
		},
		ContentType: func(Format) string { return "text/plain; charset=utf-8" },
		Filename: func(_ *Job, now time.Time) string {
			return "probe-logs-" + now.UTC().Format("2006-01-02") + ".txt"
		},
	}
}

// ProbeLog is one row of CCH's provider_endpoint_probe_logs.
type ProbeLog struct {
	ID           int64
	EndpointID   int64
	OK           bool
	StatusCode   *int64
	LatencyMs    *int64
	ErrorType    *string
	ErrorMessage *string
	CreatedAt    time.Time
}

// AppendProbeLine appends the spec's line for one probe:
// "[HH:mm:ss] OK 200 45ms <error message>", with "#<endpoint id> " after the
// time when the export spans several endpoints. The error message may be
// empty, which leaves the trailing space the spec's lines have.
func AppendProbeLine(b []byte, l ProbeLog, loc *time.Location, withEndpoint bool) []byte {
	b = append(b, '[')
	b = l.CreatedAt.In(loc).AppendFormat(b, "15:04:05")
	b = append(b, "] "...)
	if withEndpoint {
		b = append(b, '#')
		b = strconv.AppendInt(b, l.EndpointID, 10)
		b = append(b, ' ')
	}
	if l.OK {
		b = append(b, "OK "...)
	} else {
		b = append(b, "FAIL "...)
	}
	if l.StatusCode == nil || *l.StatusCode == 0 {
		b = append(b, '-')
	} else {
		b = strconv.AppendInt(b, *l.StatusCode, 10)
	}
	b = append(b, ' ')
	b = appendLatency(b, l.LatencyMs)
	b = append(b, ' ')
	if l.ErrorMessage != nil {
		b = append(b, *l.ErrorMessage...)
	}
	return b
}

// appendLatency renders milliseconds as the spec does: "-" when unknown,
// "45ms" below one second, else seconds with two decimals. The seconds
// follow JavaScript's (ms/1000).toFixed(2), which rounds the exact value of
// the binary double half up: 1125 ms is "1.13s" but 1005 ms is "1.00s".
func appendLatency(b []byte, ms *int64) []byte {
	switch {
	case ms == nil:
		return append(b, '-')
	case *ms < 1000:
		b = strconv.AppendInt(b, *ms, 10)
		return append(b, "ms"...)
	}
	x := new(big.Rat).SetFloat64(float64(*ms) / 1000)
	x.Mul(x, big.NewRat(100, 1))
	x.Add(x, big.NewRat(1, 2))
	hundredths := new(big.Int).Quo(x.Num(), x.Denom()) // floor, x > 0
	s := hundredths.String()
	for len(s) < 3 {
		s = "0" + s
	}
	b = append(b, s[:len(s)-2]...)
	b = append(b, '.')
	b = append(b, s[len(s)-2:]...)
	return append(b, 's')
}
