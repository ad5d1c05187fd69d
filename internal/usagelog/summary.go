package usagelog

import (
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/hubexport/hubexport/internal/export"
)

// decimalSum adds decimal texts exactly: an integer scaled by 10^scale,
// the scale growing to the longest fraction seen. The sum is v + small:
// small takes the terms while it does not overflow, because parsing every
// row's cost into a big.Int took a third of an XLSX export's time.
type decimalSum struct {
	v     big.Int
	small int64
	scale int
	tmp   big.Int
}

var bigTen = big.NewInt(10)

// add adds the decimal text s; text that is not a plain decimal (NaN) is
// skipped and reported.
func (d *decimalSum) add(s string) bool {
	neg := strings.HasPrefix(s, "-")
	body := strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+")
	ip, fp, _ := strings.Cut(body, ".")
	if ip == "" && fp == "" || !allDigits(ip) || !allDigits(fp) {
		return false
	}
	fp = strings.TrimRight(fp, "0")
	if len(fp) > d.scale {
		d.flush()
		d.v.Mul(&d.v, pow10(len(fp)-d.scale))
		d.scale = len(fp)
	}
	if m, ok := smallTerm(ip, fp, d.scale); ok {
		if neg {
			m = -m
		}
		if sum := d.small + m; (m >= 0) == (sum >= d.small) {
			d.small = sum
			return true
		}
		d.flush()
		d.small = m
		return true
	}
	if _, ok := d.tmp.SetString(ip+fp, 10); !ok {
		return false
	}
	if len(fp) < d.scale {
		d.tmp.Mul(&d.tmp, pow10(d.scale-len(fp)))
	}
	if neg {
		d.v.Sub(&d.v, &d.tmp)
	} else {
		d.v.Add(&d.v, &d.tmp)
	}
	return true
}

// smallTerm is the decimal ip.fp scaled by 10^scale (scale >= len(fp)), when
// it has at most 18 digits so that it surely fits an int64.
func smallTerm(ip, fp string, scale int) (int64, bool) {
	ip = strings.TrimLeft(ip, "0")
	if len(ip)+scale > 18 {
		return 0, false
	}
	var m int64
	for i := 0; i < len(ip); i++ {
		m = m*10 + int64(ip[i]-'0')
	}
	for i := 0; i < len(fp); i++ {
		m = m*10 + int64(fp[i]-'0')
	}
	for range scale - len(fp) {
		m *= 10
	}
	return m, true
}

// flush moves small into v.
func (d *decimalSum) flush() {
	if d.small != 0 {
		d.v.Add(&d.v, d.tmp.SetInt64(d.small))
		d.small = 0
	}
}

func (d *decimalSum) addSum(o *decimalSum) {
	d.flush()
	if o.scale > d.scale {
		d.v.Mul(&d.v, pow10(o.scale-d.scale))
		d.scale = o.scale
	}
	d.tmp.Set(&o.v)
	d.tmp.Add(&d.tmp, new(big.Int).SetInt64(o.small))
	if o.scale < d.scale {
		d.tmp.Mul(&d.tmp, pow10(d.scale-o.scale))
	}
	d.v.Add(&d.v, &d.tmp)
}

// String is the exact sum as decimal text.
func (d *decimalSum) String() string {
	v := new(big.Int).Add(&d.v, new(big.Int).SetInt64(d.small))
	s := new(big.Int).Abs(v).String()
	if d.scale > 0 {
		if len(s) <= d.scale {
			s = strings.Repeat("0", d.scale-len(s)+1) + s
		}
		s = s[:len(s)-d.scale] + "." + s[len(s)-d.scale:]
	}
	if v.Sign() < 0 {
		s = "-" + s
	}
	return exactDecimal(s)
}

var pow10s = func() []*big.Int {
	p := make([]*big.Int, 40)
	p[0] = big.NewInt(1)
	for i := 1; i < len(p); i++ {
		p[i] = new(big.Int).Mul(p[i-1], bigTen)
	}
	return p
}()

func pow10(n int) *big.Int {
	if n < len(pow10s) {
		return pow10s[n]
	}
	return new(big.Int).Exp(bigTen, big.NewInt(int64(n)), nil)
}

// tally is one summary line's sums.
type tally struct {
	Requests     int64
	InputTokens  int64
	OutputTokens int64
	CacheWrite5m int64
	CacheWrite1h int64
	CacheRead    int64
	TotalTokens  int64
	Cost         decimalSum
}

func (t *tally) addRow(r *export.UsageRow) {
	t.Requests++
	t.InputTokens += r.InputTokens
	t.OutputTokens += r.OutputTokens
	t.CacheWrite5m += r.CacheWrite5m
	t.CacheWrite1h += r.CacheWrite1h
	t.CacheRead += r.CacheRead
	t.TotalTokens += r.TotalTokens
	t.Cost.add(r.CostUSD)
}

func (t *tally) addTally(o *tally) {
	t.Requests += o.Requests
	t.InputTokens += o.InputTokens
	t.OutputTokens += o.OutputTokens
	t.CacheWrite5m += o.CacheWrite5m
	t.CacheWrite1h += o.CacheWrite1h
	t.CacheRead += o.CacheRead
	t.TotalTokens += o.TotalTokens
	t.Cost.addSum(&o.Cost)
}

// summary aggregates rows by wall-clock hour in the export's zone while they
// stream (a month is 720 hours, so memory stays small), because only the
// last row tells whether the data spans more than a day: then the hours are
// rolled up into days.
type summary struct {
	loc        *time.Location
	hours      map[time.Time]*tally // key: the local wall-clock hour, as a UTC time
	total      tally
	first      time.Time
	last       time.Time
	haveBounds bool
}

func newSummary(loc *time.Location) *summary {
	return &summary{loc: loc, hours: make(map[time.Time]*tally)}
}

func (s *summary) add(r *export.UsageRow) {
	s.total.addRow(r)
	if r.CreatedAt.IsZero() {
		return // counted in the total only: it belongs to no hour
	}
	if !s.haveBounds || r.CreatedAt.Before(s.first) {
		s.first = r.CreatedAt
	}
	if !s.haveBounds || r.CreatedAt.After(s.last) {
		s.last = r.CreatedAt
	}
	s.haveBounds = true
	l := r.CreatedAt.In(s.loc)
	k := time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), 0, 0, 0, time.UTC)
	t := s.hours[k]
	if t == nil {
		t = new(tally)
		s.hours[k] = t
	}
	t.addRow(r)
}

// summaryLine is one line of the summary sheet: a wall-clock period start
// (as a UTC time holding the local wall clock) and its sums.
type summaryLine struct {
	Start time.Time
	tally *tally
}

// lines returns the summary's lines, oldest first, and whether they are
// hours (the data spans at most one day) or days.
func (s *summary) lines() (out []summaryLine, hourly bool) {
	hourly = !s.haveBounds || s.last.Sub(s.first) <= 24*time.Hour
	if hourly {
		for k, t := range s.hours {
			out = append(out, summaryLine{k, t})
		}
	} else {
		days := make(map[time.Time]*tally)
		for k, t := range s.hours {
			d := time.Date(k.Year(), k.Month(), k.Day(), 0, 0, 0, 0, time.UTC)
			if days[d] == nil {
				days[d] = new(tally)
			}
			days[d].addTally(t)
		}
		for k, t := range days {
			out = append(out, summaryLine{k, t})
		}
	}
	slices.SortFunc(out, func(a, b summaryLine) int { return a.Start.Compare(b.Start) })
	return out, hourly
}
