package hub_test

import (
	"cmp"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/hub"
)

func at(d time.Duration) *time.Time {
	t := fixtureAt.Add(d)
	return &t
}

func id(n int64) *int64 { return &n }

// fixtureWindow selects the probe fixture alone.
func fixtureWindow() export.ProbeLogParams {
	return export.ProbeLogParams{StartTime: at(0), EndTime: at(time.Hour), Result: "all", MaxLines: 100}
}

func ids(t *testing.T, db *hub.DB, p export.ProbeLogParams) []int64 {
	t.Helper()
	got := []int64{}
	if err := db.ProbeLogs(t.Context(), p, func(l export.ProbeLog) error {
		got = append(got, l.ID)
		return nil
	}); err != nil {
		t.Fatalf("ProbeLogs(%+v): %v", p, err)
	}
	return got
}

func TestProbeLogFilters(t *testing.T) {
	t.Parallel()
	_, db := setup(t)
	with := func(f func(*export.ProbeLogParams)) export.ProbeLogParams {
		p := fixtureWindow()
		f(&p)
		return p
	}
	cases := []struct {
		name string
		p    export.ProbeLogParams
		want []int64
	}{
		{"EndpointAlone", export.ProbeLogParams{EndpointID: id(endpointB), MaxLines: 100},
			[]int64{10014, 10013, 10012, 10011, 10010, 10009}},
		{"TimeRangeAlone", fixtureWindow(),
			[]int64{10008, 10007, 10006, 10014, 10005, 10013, 10012, 10004, 10011, 10003, 10010, 10002, 10009, 10001}},
		{"StartInclusiveEndExclusive", with(func(p *export.ProbeLogParams) { p.StartTime, p.EndTime = at(20*time.Second), at(40*time.Second) }),
			[]int64{10011, 10003, 10010, 10002}},
		{"TieBrokenByIDDescending", with(func(p *export.ProbeLogParams) { p.StartTime, p.EndTime = at(40*time.Second), at(41*time.Second) }),
			[]int64{10012, 10004}},
		{"OK", with(func(p *export.ProbeLogParams) { p.Result = "ok" }),
			[]int64{10008, 10014, 10005, 10012, 10004, 10003, 10002, 10001}},
		{"Fail", with(func(p *export.ProbeLogParams) { p.Result = "fail" }),
			[]int64{10007, 10006, 10013, 10011, 10010, 10009}},
		{"SearchMessage", with(func(p *export.ProbeLogParams) { p.Search = "ECONNREFUSED" }), []int64{10009}},
		{"SearchIgnoresCase", with(func(p *export.ProbeLogParams) { p.Search = "TimeOut" }), []int64{10006}},
		{"SearchErrorType", with(func(p *export.ProbeLogParams) { p.Search = "network" }), []int64{10009}},
		{"SearchStatusCode", with(func(p *export.ProbeLogParams) { p.Search = "401" }), []int64{10014}},
		{"SearchStatusOrMessage", with(func(p *export.ProbeLogParams) { p.Search = "50" }), []int64{10007, 10013, 10011, 10010}},
		{"SearchPercentIsLiteral", with(func(p *export.ProbeLogParams) { p.Search = "%" }), []int64{10010}},
		{"SearchUnderscoreIsLiteral", with(func(p *export.ProbeLogParams) { p.Search = "a_b" }), []int64{10011}},
		{"SearchBackslashIsLiteral", with(func(p *export.ProbeLogParams) { p.Search = `\` }), []int64{10011}},
		{"SearchNoMatch", with(func(p *export.ProbeLogParams) { p.Search = "no such text" }), []int64{}},
		{"MaxLinesKeepsNewest", with(func(p *export.ProbeLogParams) { p.MaxLines = 3 }), []int64{10008, 10007, 10006}},
		{"Combined", with(func(p *export.ProbeLogParams) {
			p.EndpointID, p.Result, p.Search, p.MaxLines = id(endpointB), "fail", "HTTP_5", 2
		}), []int64{10013, 10011}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := ids(t, db, c.p); !slices.Equal(got, c.want) {
				t.Errorf("ids\n got %v\nwant %v", got, c.want)
			}
			n, err := db.CountProbeLogs(t.Context(), c.p)
			if err != nil {
				t.Fatal(err)
			}
			if n != int64(len(c.want)) {
				t.Errorf("CountProbeLogs = %d, want %d", n, len(c.want))
			}
		})
	}
}

// TestProbeLogsMatchOracle checks each filter against the whole seeded table (a few thousand
// probes over a day, with ties) by filtering a full read in Go.
func TestProbeLogsMatchOracle(t *testing.T) {
	t.Parallel()
	_, db := setup(t)
	var all []export.ProbeLog
	if err := db.ProbeLogs(t.Context(), export.ProbeLogParams{MaxLines: export.MaxProbeMaxLines}, func(l export.ProbeLog) error {
		all = append(all, l)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(all) < 2000 {
		t.Fatalf("only %d probe logs in the seeded hub", len(all))
	}
	start, end := seedNow.Add(-6*time.Hour), seedNow.Add(-2*time.Hour)
	cases := map[string]export.ProbeLogParams{
		"Default":     {},
		"Endpoint":    {EndpointID: id(3), MaxLines: 1000},
		"Start":       {StartTime: &start, MaxLines: 1000},
		"End":         {EndTime: &end, MaxLines: 1000},
		"OK":          {Result: "ok", MaxLines: 5000},
		"Fail":        {Result: "fail", MaxLines: 5000},
		"Search":      {Search: "econnrefused", MaxLines: 5000},
		"SearchType":  {Search: "Time", MaxLines: 5000},
		"SearchCode":  {Search: "50", MaxLines: 5000},
		"MaxLines":    {MaxLines: 7},
		"AllTogether": {EndpointID: id(3), StartTime: &start, EndTime: &end, Result: "fail", Search: "http", MaxLines: 10},
	}
	for name, p := range cases {
		t.Run(name, func(t *testing.T) {
			want := oracle(all, p)
			if len(want) == 0 {
				t.Fatalf("the seeded data has no rows for %+v; the case tests nothing", p)
			}
			if got := ids(t, db, p); !slices.Equal(got, want) {
				t.Errorf("ids\n got %v\nwant %v", got, want)
			}
		})
	}
}

func oracle(all []export.ProbeLog, p export.ProbeLogParams) []int64 {
	var sel []export.ProbeLog
	q := strings.ToLower(p.Search)
	for _, l := range all {
		switch {
		case p.EndpointID != nil && l.EndpointID != *p.EndpointID,
			p.StartTime != nil && l.CreatedAt.Before(*p.StartTime),
			p.EndTime != nil && !l.CreatedAt.Before(*p.EndTime),
			p.Result == "ok" && !l.OK,
			p.Result == "fail" && l.OK:
			continue
		}
		if q != "" {
			var fields []string
			if l.ErrorMessage != nil {
				fields = append(fields, *l.ErrorMessage)
			}
			if l.ErrorType != nil {
				fields = append(fields, *l.ErrorType)
			}
			if l.StatusCode != nil {
				fields = append(fields, strconv.FormatInt(*l.StatusCode, 10))
			}
			if !slices.ContainsFunc(fields, func(f string) bool { return strings.Contains(strings.ToLower(f), q) }) {
				continue
			}
		}
		sel = append(sel, l)
	}
	slices.SortFunc(sel, func(a, b export.ProbeLog) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	limit := p.MaxLines
	if limit <= 0 {
		limit = export.DefaultProbeMaxLines
	}
	out := []int64{}
	for i := 0; i < len(sel) && i < limit; i++ {
		out = append(out, sel[i].ID)
	}
	return out
}

// render produces the export's text for p, as the probe-logs exporter does: one line per
// probe, joined with "\n", no trailing newline.
func render(t *testing.T, db *hub.DB, p export.ProbeLogParams, zone string) string {
	t.Helper()
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	err = db.ProbeLogs(t.Context(), p, func(l export.ProbeLog) error {
		if len(b) > 0 {
			b = append(b, '\n')
		}
		b = export.AppendProbeLine(b, l, loc, p.EndpointID == nil)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestProbeLogLines(t *testing.T) {
	t.Parallel()
	_, db := setup(t)
	one := fixtureWindow()
	one.EndpointID = id(endpointA)

	cases := []struct {
		name string
		p    export.ProbeLogParams
		zone string
		want string
	}{
		{"OneEndpointUTC", one, "UTC", "" +
			"[16:00:20] OK - 120ms \n" +
			"[16:00:10] FAIL 502 1.50s HTTP 502 Bad Gateway\n" +
			"[16:00:00] FAIL - - The operation was aborted due to timeout\n" +
			"[15:59:50] OK 200 2.00s \n" +
			"[15:59:40] OK 200 1.13s \n" +
			"[15:59:30] OK 200 1.00s \n" +
			"[15:59:20] OK 200 999ms \n" +
			"[15:59:10] OK 200 45ms "},
		{"OneEndpointShanghai", one, "Asia/Shanghai", "" +
			"[00:00:20] OK - 120ms \n" +
			"[00:00:10] FAIL 502 1.50s HTTP 502 Bad Gateway\n" +
			"[00:00:00] FAIL - - The operation was aborted due to timeout\n" +
			"[23:59:50] OK 200 2.00s \n" +
			"[23:59:40] OK 200 1.13s \n" +
			"[23:59:30] OK 200 1.00s \n" +
			"[23:59:20] OK 200 999ms \n" +
			"[23:59:10] OK 200 45ms "},
		{"AllEndpointsUTC", fixtureWindow(), "UTC", "" +
			"[16:00:20] #101 OK - 120ms \n" +
			"[16:00:10] #101 FAIL 502 1.50s HTTP 502 Bad Gateway\n" +
			"[16:00:00] #101 FAIL - - The operation was aborted due to timeout\n" +
			"[15:59:55] #102 OK 401 0ms \n" +
			"[15:59:50] #101 OK 200 2.00s \n" +
			"[15:59:45] #102 FAIL 504 60ms proxy a-b mismatch\n" +
			"[15:59:40] #102 OK 200 300ms \n" +
			"[15:59:40] #101 OK 200 1.13s \n" +
			"[15:59:35] #102 FAIL 503 90ms path a_b\\c broken\n" +
			"[15:59:30] #101 OK 200 1.00s \n" +
			"[15:59:25] #102 FAIL 500 80ms upload 100% failed\n" +
			"[15:59:20] #101 OK 200 999ms \n" +
			"[15:59:15] #102 FAIL - 30ms fetch failed: connect ECONNREFUSED\n" +
			"[15:59:10] #101 OK 200 45ms "},
		{"AllEndpointsShanghaiFailures", func() export.ProbeLogParams {
			p := fixtureWindow()
			p.Result = "fail"
			return p
		}(), "Asia/Shanghai", "" +
			"[00:00:10] #101 FAIL 502 1.50s HTTP 502 Bad Gateway\n" +
			"[00:00:00] #101 FAIL - - The operation was aborted due to timeout\n" +
			"[23:59:45] #102 FAIL 504 60ms proxy a-b mismatch\n" +
			"[23:59:35] #102 FAIL 503 90ms path a_b\\c broken\n" +
			"[23:59:25] #102 FAIL 500 80ms upload 100% failed\n" +
			"[23:59:15] #102 FAIL - 30ms fetch failed: connect ECONNREFUSED"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := render(t, db, c.p, c.zone); got != c.want {
				t.Errorf("lines\n got %q\nwant %q", got, c.want)
			}
		})
	}
}

func TestProbeLogsStopsOnCallbackError(t *testing.T) {
	t.Parallel()
	_, db := setup(t)
	stop := errors.New("stop")
	calls := 0
	err := db.ProbeLogs(t.Context(), fixtureWindow(), func(export.ProbeLog) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("err %v after %d calls, want the callback's error after 1", err, calls)
	}

	bad := fixtureWindow()
	bad.Result = "maybe"
	if err := db.ProbeLogs(t.Context(), bad, func(export.ProbeLog) error { return nil }); export.KindOf(err) != export.KindInvalid {
		t.Errorf("result %q: %v, want an invalid-request error", bad.Result, err)
	}
}
