package usagelog

import (
	"encoding/json"
	"math"
	"slices"
	"testing"
	"time"
)

func TestAppendText(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{"", ""},
		{"alice", "alice"},
		{"张伟", "张伟"},
		{"   ", "   "},
		// The guard: the first character...
		{"=1+2", "'=1+2"},
		{"+86 138 0000 0000", "'+86 138 0000 0000"},
		{"-rm -rf", "'-rm -rf"},
		{"-", "'-"},
		{"@everyone", "'@everyone"},
		{"\tindented", "'\tindented"},
		{"\rcarriage", "\"'\rcarriage\""},
		// ...or the first after whitespace, with JavaScript's idea of whitespace.
		{"  =SUM(A1:A9)", "'  =SUM(A1:A9)"},
		{" \t+1", "' \t+1"},
		{"\u3000=x", "'\u3000=x"},
		{"\u00a0@x", "'\u00a0@x"},
		{"\uFEFF-x", "'\uFEFF-x"},
		{"\u2028=x", "'\u2028=x"},
		{"\u0085=x", "\u0085=x"}, // NEL is not whitespace to trimStart
		{"a=b", "a=b"},
		{"x -y", "x -y"},
		{"1-2", "1-2"},
		// RFC 4180 quoting, after the guard.
		{"laptop, work", `"laptop, work"`},
		{`key "quoted"`, `"key ""quoted"""`},
		{"two\nlines", "\"two\nlines\""},
		{"crlf\r\nend", "\"crlf\r\nend\""},
		{"Smith, \"Jo\"\nsecond line", "\"Smith, \"\"Jo\"\"\nsecond line\""},
		{`=HYPERLINK("https://evil.example","点我")`, `"'=HYPERLINK(""https://evil.example"",""点我"")"`},
		{`=cmd|' /C calc'!A0`, `'=cmd|' /C calc'!A0`},
		{`"`, `""""`},
		{`""`, `""""""`},
		{"tab\tinside", "tab\tinside"},
	}
	for _, c := range cases {
		if got := string(appendText(nil, c.in)); got != c.want {
			t.Errorf("appendText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestAppendDecimal(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in, want string
		ok       bool
	}{
		{"0", "0", true},
		{"0.000000000000000", "0", true},
		{"-0.000", "0", true},
		{"+1.50", "1.5", true},
		{"10", "10", true},
		{"10.50", "10.5", true},
		{".5", "0.5", true},
		{"5.", "5", true},
		{"00012.300", "12.3", true},
		{"0.001234000000000", "0.001234", true},
		{"0.000123000000000", "0.000123", true},
		{"0.015600000000000", "0.0156", true},
		// 15 significant digits survive; the 16th rounds half away from zero.
		{"1.234567890123450", "1.23456789012345", true},
		{"1.234567890123456", "1.23456789012346", true},
		{"1.234567890123454", "1.23456789012345", true},
		{"1.234567890123445", "1.23456789012345", true}, // a float would give ...344
		{"-1.234567890123455", "-1.23456789012346", true},
		{"-1.234567890123454", "-1.23456789012345", true},
		{"0.100000000000000049", "0.1", true},
		{"123456.789012345678901", "123456.789012346", true},
		{"999999.999999999999999", "1000000", true}, // carry out of every digit
		{"9.999999999999995", "10", true},
		{"9.999999999999994", "9.99999999999999", true},
		{"123456789012345.5", "123456789012346", true},
		{"123456789012345678", "123456789012346000", true},
		{"0.0000000000000001234567890123456789", "0.000000000000000123456789012346", true},
		{"999999.999999999999999999999999999999999999999999999", "1000000", true},
		{"NaN", "", false},
		{"Infinity", "", false},
		{"", "", false},
		{"-", "", false},
		{".", "", false},
		{"1e5", "", false},
		{"1.2.3", "", false},
		{"1,5", "", false},
	}
	for _, c := range cases {
		got, ok := appendDecimal([]byte("x"), c.in)
		if ok != c.ok || ok && string(got) != "x"+c.want || !ok && string(got) != "x" {
			t.Errorf("appendDecimal(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestAppendInt(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   int64
		want string
	}{
		{0, "0"},
		{-5, "-5"},
		{200, "200"},
		{123456789, "123456789"},
		{999_999_999_999_999, "999999999999999"},
		{-999_999_999_999_999, "-999999999999999"},
		{1_234_567_890_123_456, "1234567890123460"},
		{1_000_000_000_000_000, "1000000000000000"},
		{-1_234_567_890_123_456_789, "-1234567890123460000"},
		{math.MaxInt64, "9223372036854780000"},
		{math.MinInt64, "-9223372036854780000"},
	}
	for _, c := range cases {
		if got := string(appendInt(nil, c.in)); got != c.want {
			t.Errorf("appendInt(%d) = %q, want %q", c.in, got, c.want)
		}
	}
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestAppendTime(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 29, 10, 30, 0, 123_999_000, time.UTC)
	cases := []struct {
		t    time.Time
		loc  *time.Location
		want string
	}{
		{time.Date(2026, 1, 29, 10, 30, 0, 0, time.UTC), time.UTC, "2026-01-29T10:30:00.000Z"},
		{at, time.UTC, "2026-01-29T10:30:00.123Z"}, // microseconds truncated, not rounded
		{at, mustZone(t, "Asia/Shanghai"), "2026-01-29T18:30:00.123+08:00"},
		{at, mustZone(t, "Asia/Kolkata"), "2026-01-29T16:00:00.123+05:30"},
		{at, mustZone(t, "America/New_York"), "2026-01-29T05:30:00.123-05:00"},
		{time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC), mustZone(t, "America/New_York"), "2026-07-01T08:00:00.000-04:00"},
		{at.In(mustZone(t, "Asia/Tokyo")), time.UTC, "2026-01-29T10:30:00.123Z"},
		{time.Time{}, time.UTC, ""},
	}
	for _, c := range cases {
		if got := string(appendTime(nil, c.t, c.loc)); got != c.want {
			t.Errorf("appendTime(%s, %s) = %q, want %q", c.t, c.loc, got, c.want)
		}
	}
}

func TestExactDecimal(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"0": "0", "0.000000000000000": "0", "-0.0": "0",
		"0.001234000000000": "0.001234", "1.234567890123456": "1.234567890123456",
		"12.000": "12", "-3.50": "-3.5", "007": "7", "NaN": "NaN",
		"123456789.123456789012345": "123456789.123456789012345",
	}
	for in, want := range cases {
		if got := exactDecimal(in); got != want {
			t.Errorf("exactDecimal(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAppendJSONString(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"", "plain", "张伟 🦊", `quote " and \ backslash`, "ctl \x00\x01\x1f\x7f", "tab\tnl\ncr\r",
		"bad utf8 \xff\xfe end", "\u2028ls\u2029ps", "<script>&amp;", "Smith, \"Jo\"\nsecond line",
	} {
		b := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Errorf("appendJSONString(%q) = %s: not JSON: %v", s, b, err)
			continue
		}
		want, _ := json.Marshal(s) // encoding/json's reading of the same string
		var wantBack string
		_ = json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Errorf("appendJSONString(%q) reads back as %q, want %q", s, back, wantBack)
		}
	}
}

func TestDecimalSum(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   []string
		want string
	}{
		{nil, "0"},
		{[]string{"0.1", "0.2"}, "0.3"},
		{[]string{"0.001234000000000", "1.234567890123456", "0"}, "1.235801890123456"},
		{[]string{"1", "-1.5"}, "-0.5"},
		{[]string{"999999.999999999999999", "0.000000000000001"}, "1000000"},
		{[]string{"0.5", "NaN", "0.25"}, "0.75"},
		{[]string{"12", "0.0000000000000000001"}, "12.0000000000000000001"},
		// Terms added as int64 until the sum would overflow, then carried on exactly.
		{slices.Repeat([]string{"999999999999.999999"}, 20), "19999999999999.99998"},
		{[]string{"-999999999999999999", "-999999999999999999", "1"}, "-1999999999999999997"},
		{[]string{"1.5", "2.25", "0.125"}, "3.875"},
		{[]string{"12345678901234567890.5", "1", "0.25"}, "12345678901234567891.75"},
	}
	for _, c := range cases {
		var d decimalSum
		for _, s := range c.in {
			d.add(s)
		}
		if got := d.String(); got != c.want {
			t.Errorf("sum of %q = %s, want %s", c.in, got, c.want)
		}
	}
}
