package export

import (
	"encoding/json"
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

func TestAppendProbeLine(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 29, 10, 30, 5, 0, time.UTC)
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	for _, c := range []struct {
		name  string
		log   ProbeLog
		loc   *time.Location
		multi bool
		want  string
	}{
		{"ok fast", ProbeLog{OK: true, StatusCode: ptr[int64](200), LatencyMs: ptr[int64](45), CreatedAt: at}, time.UTC, false, "[10:30:05] OK 200 45ms "},
		{"fail with message", ProbeLog{StatusCode: ptr[int64](503), LatencyMs: ptr[int64](1125), ErrorMessage: ptr("Bad Gateway"), CreatedAt: at}, time.UTC, false, "[10:30:05] FAIL 503 1.13s Bad Gateway"},
		{"missing status and latency", ProbeLog{ErrorMessage: ptr("timeout"), CreatedAt: at}, time.UTC, false, "[10:30:05] FAIL - - timeout"},
		{"status zero is missing", ProbeLog{StatusCode: ptr[int64](0), LatencyMs: ptr[int64](0), CreatedAt: at}, time.UTC, false, "[10:30:05] FAIL - 0ms "},
		{"999 ms", ProbeLog{OK: true, StatusCode: ptr[int64](200), LatencyMs: ptr[int64](999), CreatedAt: at}, time.UTC, false, "[10:30:05] OK 200 999ms "},
		{"1000 ms", ProbeLog{OK: true, StatusCode: ptr[int64](200), LatencyMs: ptr[int64](1000), CreatedAt: at}, time.UTC, false, "[10:30:05] OK 200 1.00s "},
		{"1005 ms rounds down like toFixed", ProbeLog{OK: true, StatusCode: ptr[int64](200), LatencyMs: ptr[int64](1005), CreatedAt: at}, time.UTC, false, "[10:30:05] OK 200 1.00s "},
		{"1015 ms", ProbeLog{OK: true, StatusCode: ptr[int64](200), LatencyMs: ptr[int64](1015), CreatedAt: at}, time.UTC, false, "[10:30:05] OK 200 1.01s "},
		{"12345 ms", ProbeLog{OK: true, StatusCode: ptr[int64](200), LatencyMs: ptr[int64](12345), CreatedAt: at}, time.UTC, false, "[10:30:05] OK 200 12.35s "},
		{"time zone and endpoint", ProbeLog{EndpointID: 7, OK: true, StatusCode: ptr[int64](200), LatencyMs: ptr[int64](3), CreatedAt: at}, shanghai, true, "[18:30:05] #7 OK 200 3ms "},
	} {
		if got := string(AppendProbeLine(nil, c.log, c.loc, c.multi)); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

func TestParseProbeLogParams(t *testing.T) {
	t.Parallel()
	p, err := ParseProbeLogParams(json.RawMessage(`{"endpoint_id":3,"start_time":1769682600000,"end_time":"2026-01-30T00:00:00+08:00","result":"fail","search":" x ","max_lines":5,"timezone":"Asia/Shanghai"}`))
	if err != nil {
		t.Fatal(err)
	}
	if *p.EndpointID != 3 || !p.StartTime.Equal(time.Date(2026, 1, 29, 10, 30, 0, 0, time.UTC)) ||
		!p.EndTime.Equal(time.Date(2026, 1, 29, 16, 0, 0, 0, time.UTC)) || p.Result != "fail" || p.Search != "x" || p.MaxLines != 5 {
		t.Fatalf("%+v", p)
	}
	d, _ := ParseProbeLogParams(nil)
	if d.Result != "all" || d.MaxLines != DefaultProbeMaxLines || d.Timezone != "UTC" || d.EndpointID != nil {
		t.Fatalf("defaults %+v", d)
	}
	for raw, field := range map[string]string{
		`{"endpoint_id":"abc"}`:         "params.endpoint_id",
		`{"endpoint_id":0}`:             "params.endpoint_id",
		`{"max_lines":-1}`:              "params.max_lines",
		`{"max_lines":100001}`:          "params.max_lines",
		`{"result":"maybe"}`:            "params.result",
		`{"timezone":"Nowhere/City"}`:   "params.timezone",
		`{"start_time":"yesterday"}`:    "params.start_time",
		`{"start_time":2,"end_time":1}`: "params.end_time",
		`{"colour":1}`:                  "params.colour",
		`[1]`:                           "params",
		`{"max_lines":1} trailing`:      "params",
	} {
		_, err := ParseProbeLogParams(json.RawMessage(raw))
		e, ok := err.(*Error)
		if !ok || e.Kind != KindInvalid {
			t.Errorf("%s: %v", raw, err)
			continue
		}
		if _, ok := e.Fields[field]; !ok {
			t.Errorf("%s: fields %v do not name %s", raw, e.Fields, field)
		}
	}
}

func TestProgressPercent(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		done, total int64
		want        float64
	}{{0, 0, 0}, {1, 4, 25}, {1, 3, 33.3}, {10, 10, 99.9}, {12, 10, 99.9}} {
		if got := (Progress{Done: c.done, Total: c.total}).WithPercent().Percent; got != c.want {
			t.Errorf("%d/%d: %v, want %v", c.done, c.total, got, c.want)
		}
	}
}
