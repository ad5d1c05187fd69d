package export

import (
	"encoding/json"
	"testing"
)

func TestParseInstantRange(t *testing.T) {
	t.Parallel()
	cases := []struct {
		raw string
		ok  bool
	}{
		{`1769682600000`, true},
		{`"2026-01-29T10:30:00Z"`, true},
		{`-62135596800000`, true},  // 0001-01-01
		{`253402300799999`, true},  // 9999-12-31T23:59:59.999
		{`253402300800000`, false}, // 10000-01-01
		{`-62135596800001`, false},
		{`9223372036854775807`, false},
		{`-9223372036854775808`, false},
		{`9223372036854775808`, false},
		{`"0000-12-31T23:00:00Z"`, false},
		{`"0001-01-01T00:30:00+01:00"`, false}, // year 0 in UTC
		{`"2026-01-29T10:30:00\u0000Z"`, false},
	}
	for _, c := range cases {
		_, err := ParseInstant("params.start_time", json.RawMessage(c.raw))
		if (err == nil) != c.ok {
			t.Errorf("ParseInstant(%s) = %v, want ok=%v", c.raw, err, c.ok)
		}
		if e, isErr := err.(*Error); err != nil && (!isErr || e.Fields["params.start_time"] == "") {
			t.Errorf("ParseInstant(%s) = %v, does not name the field", c.raw, err)
		}
	}
}

func TestPrintable(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"usage_logs":        "usage_logs",
		"用户 é":              "用户 é",
		"a\x00b":            `a\x00b`,
		"\xc0\xaf":          `\xc0\xaf`,
		"line\nbreak \"q\"": `line\nbreak \"q\"`,
	} {
		if got := Printable(in); got != want {
			t.Errorf("Printable(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDecodeStrictRefusesNUL(t *testing.T) {
	t.Parallel()
	type params struct {
		Name  string            `json:"name"`
		Tags  []string          `json:"tags"`
		Extra map[string]string `json:"extra"`
		Ptr   *string           `json:"ptr"`
	}
	for raw, field := range map[string]string{
		`{"name":"a\u0000"}`:            "params.name",
		`{"tags":["ok","\u0000"]}`:      "params.tags[1]",
		`{"extra":{"k":"\u0000"}}`:      "params.extra.k",
		`{"ptr":"\u0000"}`:              "params.ptr",
		`{"name":"fine","tags":["ok"]}`: "",
	} {
		var v params
		err := DecodeStrict(json.RawMessage(raw), &v, "params.")
		if field == "" {
			if err != nil {
				t.Errorf("%s: %v", raw, err)
			}
			continue
		}
		if e, ok := err.(*Error); !ok || e.Fields[field] == "" {
			t.Errorf("%s: %v, want an error naming %s", raw, err, field)
		}
	}
}
