package usagelog

import (
	"bytes"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// timeLayout is ISO 8601 with milliseconds: "Z" in UTC, else the zone's offset.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// appendTime renders t in loc; a zero t (a row without created_at) is empty.
func appendTime(b []byte, t time.Time, loc *time.Location) []byte {
	if t.IsZero() {
		return b
	}
	return t.In(loc).AppendFormat(b, timeLayout)
}

// needsGuard reports whether a spreadsheet could read s as a formula: its
// first character is one of = + - @ TAB CR, or its first non-whitespace
// character is one of = + - @ (CCH closed a leading-whitespace bypass that
// way in PR #966; the spec lists the raw-first-character set).
func needsGuard(s string) bool {
	if s == "" {
		return false
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return true
	}
	for _, r := range s {
		if isJSSpace(r) {
			continue
		}
		return r == '=' || r == '+' || r == '-' || r == '@'
	}
	return false
}

// isJSSpace is JavaScript's String.prototype.trimStart set (WhiteSpace and
// LineTerminator), which CCH's guard uses: Unicode Zs, the ASCII controls
// TAB VT FF LF CR, BOM, LS and PS. It differs from unicode.IsSpace in
// counting U+FEFF and not counting U+0085.
func isJSSpace(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', '\uFEFF', '\u2028', '\u2029':
		return true
	}
	return unicode.Is(unicode.Zs, r)
}

// appendText renders a text cell: the formula guard, then RFC 4180 quoting
// when the value holds a comma, a quote, LF or CR.
func appendText(b []byte, s string) []byte {
	guard := needsGuard(s)
	if !strings.ContainsAny(s, ",\"\n\r") {
		if guard {
			b = append(b, '\'')
		}
		return append(b, s...)
	}
	b = append(b, '"')
	if guard {
		b = append(b, '\'')
	}
	for {
		i := strings.IndexByte(s, '"')
		if i < 0 {
			break
		}
		b = append(b, s[:i+1]...)
		b = append(b, '"')
		s = s[i+1:]
	}
	b = append(b, s...)
	return append(b, '"')
}

// maxDigits is how many significant digits a number cell keeps: what a
// spreadsheet keeps, so Excel reads the cell as the number written.
const maxDigits = 15

// appendInt renders an integer as a plain decimal of at most 15 significant
// digits (only integers of 16 or more digits are rounded).
func appendInt(b []byte, v int64) []byte {
	if v > -1e15 && v < 1e15 {
		return strconv.AppendInt(b, v, 10)
	}
	var tmp [24]byte
	out, _ := appendDecimal(b, string(strconv.AppendInt(tmp[:0], v, 10)))
	return out
}

// appendDecimal renders the decimal text s (as PostgreSQL prints numeric:
// an optional sign, digits, an optional fraction; no exponent) as a plain
// decimal with at most 15 significant digits, rounded half away from zero
// on the decimal digits themselves, never through a float; trailing zeros
// of the fraction are dropped and -0 is 0. ok is false, and b unchanged,
// when s is not such a decimal (NaN).
func appendDecimal(b []byte, s string) (_ []byte, ok bool) {
	neg := false
	switch {
	case strings.HasPrefix(s, "-"):
		neg, s = true, s[1:]
	case strings.HasPrefix(s, "+"):
		s = s[1:]
	}
	ip, fp, _ := strings.Cut(s, ".")
	if ip == "" && fp == "" || !allDigits(ip) || !allDigits(fp) {
		return b, false
	}
	// digits[0] is a spare '0' that takes a carry out of the leading digit.
	var stack [48]byte
	digits := append(stack[:0], '0')
	digits = append(digits, ip...)
	digits = append(digits, fp...)
	point := 1 + len(ip) // digits before the decimal point
	first := 1
	for first < len(digits) && digits[first] == '0' {
		first++
	}
	if first == len(digits) {
		return append(b, '0'), true
	}
	if cut := first + maxDigits; len(digits) > cut {
		up := digits[cut] >= '5'
		digits = digits[:cut]
		if up {
			i := cut - 1
			for digits[i] == '9' {
				digits[i] = '0'
				i--
			}
			digits[i]++
		}
		for len(digits) < point {
			digits = append(digits, '0')
		}
	}
	intDigits := bytes.TrimLeft(digits[:point], "0")
	var fracDigits []byte
	if len(digits) > point {
		fracDigits = bytes.TrimRight(digits[point:], "0")
	}
	if len(intDigits) == 0 && len(fracDigits) == 0 {
		return append(b, '0'), true
	}
	if neg {
		b = append(b, '-')
	}
	if len(intDigits) == 0 {
		b = append(b, '0')
	} else {
		b = append(b, intDigits...)
	}
	if len(fracDigits) > 0 {
		b = append(b, '.')
		b = append(b, fracDigits...)
	}
	return b, true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// exactDecimal normalises PostgreSQL's numeric text without losing anything:
// trailing fractional zeros and a dangling point dropped, -0 as 0. Text that
// is not a plain decimal (NaN) is returned as is.
func exactDecimal(s string) string {
	body := strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+")
	ip, fp, hasPoint := strings.Cut(body, ".")
	if ip == "" && fp == "" || !allDigits(ip) || !allDigits(fp) {
		return s
	}
	if hasPoint {
		fp = strings.TrimRight(fp, "0")
	}
	ip = strings.TrimLeft(ip, "0")
	if ip == "" {
		ip = "0"
	}
	if ip == "0" && fp == "" {
		return "0"
	}
	out := ip
	if fp != "" {
		out += "." + fp
	}
	if strings.HasPrefix(s, "-") {
		out = "-" + out
	}
	return out
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as encoding/json does; LS and PS are escaped so the line is also valid
// JavaScript.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
