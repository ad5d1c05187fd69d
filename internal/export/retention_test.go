package export

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestRetentionDropsByCountAndAge(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	// backups[i] finished i days ago.
	backups := func(n int) []*Job {
		var out []*Job
		for i := n - 1; i >= 0; i-- { // oldest first: the order must not matter
			f := now.Add(-time.Duration(i) * 24 * time.Hour)
			out = append(out, &Job{ID: fmt.Sprintf("exp_%02d", n-i), FinishedAt: &f})
		}
		return out
	}
	cases := []struct {
		name string
		r    Retention
		n    int
		want string // days ago of the dropped backups, and why
	}{
		{"nothing to drop", Retention{KeepLast: 5}, 3, ""},
		{"keep last 2", Retention{KeepLast: 2}, 5, "2:not_kept 3:not_kept 4:not_kept"},
		{"keep last 1", Retention{KeepLast: 1}, 3, "1:not_kept 2:not_kept"},
		{"max age 2 days", Retention{KeepLast: 10, MaxAgeDays: 2}, 5, "3:max_age 4:max_age"},
		{"both", Retention{KeepLast: 3, MaxAgeDays: 1}, 5, "2:max_age 3:not_kept 4:not_kept"},
		{"the newest stays however old", Retention{KeepLast: 3, MaxAgeDays: 1}, 1, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bs := backups(c.n)
			if c.name == "the newest stays however old" {
				old := now.Add(-100 * 24 * time.Hour)
				bs[0].FinishedAt = &old
			}
			var got []string
			for _, d := range RetentionDrops(c.r, bs, now, time.UTC) {
				got = append(got, fmt.Sprintf("%d:%s", int(now.Sub(*d.Job.FinishedAt).Hours()/24), d.Reason))
			}
			if strings.Join(got, " ") != c.want {
				t.Fatalf("dropped %q, want %q", strings.Join(got, " "), c.want)
			}
		})
	}
}

// TestCalendarRetention runs policies over synthetic timelines. Each
// backup is named by the time it finished, in the case's zone; want lists
// every backup newest first with what the policy does with it, written
// out by hand from restic's forget rules: keep the newest backup of each of
// the last N periods that hold a backup.
func TestCalendarRetention(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		zone    string
		r       Retention
		now     string
		backups []string // local times, any order
		want    []string // "time keep rule:period,..." or "time drop reason", newest first
	}{
		{
			name: "daily across a year boundary, a gap does not use up the rule",
			zone: "UTC",
			r:    Retention{KeepLast: 1, KeepDaily: 3},
			now:  "2026-01-05 00:00",
			backups: []string{"2025-12-30 03:00", "2025-12-30 15:00", "2025-12-31 03:00", "2026-01-01 03:00",
				"2026-01-01 20:00", "2026-01-04 03:00"},
			want: []string{
				"2026-01-04 03:00 keep newest:,last:1,daily:2026-01-04",
				"2026-01-01 20:00 keep daily:2026-01-01",
				"2026-01-01 03:00 drop not_kept",
				"2025-12-31 03:00 keep daily:2025-12-31",
				"2025-12-30 15:00 drop not_kept",
				"2025-12-30 03:00 drop not_kept",
			},
		},
		{
			name: "ISO weeks: 29 December 2025 is in 2026-W01, 28 December in 2025-W52",
			zone: "UTC",
			r:    Retention{KeepLast: 1, KeepWeekly: 2},
			now:  "2026-01-03 00:00",
			backups: []string{"2025-12-21 12:00", "2025-12-27 12:00", "2025-12-28 12:00", "2025-12-29 12:00",
				"2026-01-02 12:00"},
			want: []string{
				"2026-01-02 12:00 keep newest:,last:1,weekly:2026-W01",
				"2025-12-29 12:00 drop not_kept",
				"2025-12-28 12:00 keep weekly:2025-W52",
				"2025-12-27 12:00 drop not_kept",
				"2025-12-21 12:00 drop not_kept",
			},
		},
		{
			name:    "a 53-week year",
			zone:    "UTC",
			r:       Retention{KeepLast: 1, KeepWeekly: 3},
			now:     "2021-01-10 00:00",
			backups: []string{"2020-12-20 09:00", "2020-12-27 09:00", "2021-01-01 09:00", "2021-01-04 09:00"},
			want: []string{
				"2021-01-04 09:00 keep newest:,last:1,weekly:2021-W01",
				"2021-01-01 09:00 keep weekly:2020-W53",
				"2020-12-27 09:00 keep weekly:2020-W52",
				"2020-12-20 09:00 drop not_kept",
			},
		},
		{
			name: "monthly and yearly together",
			zone: "UTC",
			r:    Retention{KeepLast: 1, KeepMonthly: 3, KeepYearly: 3},
			now:  "2026-03-20 00:00",
			backups: []string{"2024-06-01 00:00", "2024-12-31 23:00", "2025-11-01 00:00", "2025-12-15 00:00",
				"2026-01-10 00:00", "2026-01-20 00:00", "2026-02-01 00:00", "2026-03-01 00:00", "2026-03-15 00:00"},
			want: []string{
				"2026-03-15 00:00 keep newest:,last:1,monthly:2026-03,yearly:2026",
				"2026-03-01 00:00 drop not_kept",
				"2026-02-01 00:00 keep monthly:2026-02",
				"2026-01-20 00:00 keep monthly:2026-01",
				"2026-01-10 00:00 drop not_kept",
				"2025-12-15 00:00 keep yearly:2025",
				"2025-11-01 00:00 drop not_kept",
				"2024-12-31 23:00 keep yearly:2024",
				"2024-06-01 00:00 drop not_kept",
			},
		},
		{
			name: "hourly when the clock goes back: 01:xx happens twice and counts as two hours",
			zone: "America/New_York",
			r:    Retention{KeepLast: 1, KeepHourly: 3},
			now:  "2026-11-01 03:00",
			// 2026-11-01 01:59:59 EDT is followed by 01:00:00 EST; the zone's
			// offset tells the two apart ("-04" and "-05" below).
			backups: []string{"2026-11-01 00:30-04", "2026-11-01 01:10-04", "2026-11-01 01:30-04", "2026-11-01 01:30-05",
				"2026-11-01 02:30-05"},
			want: []string{
				"2026-11-01 02:30-05 keep newest:,last:1,hourly:2026-11-01T02-05:00",
				"2026-11-01 01:30-05 keep hourly:2026-11-01T01-05:00",
				"2026-11-01 01:30-04 keep hourly:2026-11-01T01-04:00",
				"2026-11-01 01:10-04 drop not_kept",
				"2026-11-01 00:30-04 drop not_kept",
			},
		},
		{
			name: "hourly when the clock goes forward: no 02:xx, 01:xx and 03:xx are neighbours",
			zone: "Europe/Berlin",
			r:    Retention{KeepLast: 1, KeepHourly: 2},
			now:  "2026-03-29 05:00",
			backups: []string{"2026-03-29 00:45", "2026-03-29 01:15", "2026-03-29 01:45", "2026-03-29 03:15",
				"2026-03-29 03:45"},
			want: []string{
				"2026-03-29 03:45 keep newest:,last:1,hourly:2026-03-29T03+02:00",
				"2026-03-29 03:15 drop not_kept",
				"2026-03-29 01:45 keep hourly:2026-03-29T01+01:00",
				"2026-03-29 01:15 drop not_kept",
				"2026-03-29 00:45 drop not_kept",
			},
		},
		{
			name: "days are the schedule's days, not UTC's",
			zone: "Asia/Shanghai",
			r:    Retention{KeepLast: 1, KeepDaily: 2},
			now:  "2026-01-03 12:00",
			// 07:30 and 08:30 in Shanghai are the same UTC day (23:30 and
			// 00:30 UTC are not): Shanghai sees 2 January twice.
			backups: []string{"2026-01-01 23:00", "2026-01-02 07:30", "2026-01-02 08:30"},
			want: []string{
				"2026-01-02 08:30 keep newest:,last:1,daily:2026-01-02",
				"2026-01-02 07:30 drop not_kept",
				"2026-01-01 23:00 keep daily:2026-01-01",
			},
		},
		{
			name:    "keep_last and a calendar rule are a union; max_age cuts both; the newest stays",
			zone:    "UTC",
			r:       Retention{KeepLast: 2, KeepMonthly: 12, MaxAgeDays: 40},
			now:     "2026-06-20 00:00",
			backups: []string{"2026-02-28 00:00", "2026-03-31 00:00", "2026-05-10 00:00", "2026-05-11 00:00", "2026-05-31 00:00"},
			want: []string{
				"2026-05-31 00:00 keep newest:,last:1,monthly:2026-05",
				"2026-05-11 00:00 keep last:2",   // exactly 40 days old: not older
				"2026-05-10 00:00 drop not_kept", // May already has its newest

				"2026-03-31 00:00 max_age monthly:2026-03 dropped",
				"2026-02-28 00:00 max_age monthly:2026-02 dropped",
			},
		},
		{
			name:    "the newest is kept even when every rule is off and it is too old",
			zone:    "UTC",
			r:       Retention{KeepLast: 1, MaxAgeDays: 1},
			now:     "2026-06-20 00:00",
			backups: []string{"2026-01-01 00:00", "2026-01-02 00:00"},
			want: []string{
				"2026-01-02 00:00 keep newest:,last:1",
				"2026-01-01 00:00 drop not_kept",
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			loc, err := time.LoadLocation(c.zone)
			if err != nil {
				t.Fatal(err)
			}
			parse := func(s string) time.Time {
				for _, layout := range []string{"2006-01-02 15:04-07", "2006-01-02 15:04"} {
					if at, err := time.ParseInLocation(layout, s, loc); err == nil {
						return at
					}
				}
				t.Fatalf("bad time %q", s)
				return time.Time{}
			}
			names := map[string]string{}
			var jobs []*Job
			for i, b := range c.backups {
				at := parse(b).UTC() // stored times are UTC
				j := &Job{ID: fmt.Sprintf("exp_%02d", i), FinishedAt: &at}
				names[j.ID] = b
				jobs = append(jobs, j)
			}
			var got []string
			for _, v := range PlanRetention(c.r, jobs, parse(c.now), loc) {
				var rules []string
				for _, k := range v.KeptBy {
					rules = append(rules, k.Rule+":"+k.Period)
				}
				switch {
				case v.Keep:
					got = append(got, names[v.Job.ID]+" keep "+strings.Join(rules, ","))
				case v.DropReason == DropMaxAge:
					got = append(got, names[v.Job.ID]+" max_age "+strings.Join(rules, ",")+" dropped")
				default:
					got = append(got, names[v.Job.ID]+" drop "+v.DropReason)
				}
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

func TestRetentionInputErrorsNameTheField(t *testing.T) {
	t.Parallel()
	query := func(vals map[string]string) func(string) string {
		return func(k string) string { return vals[k] }
	}
	cases := []struct {
		vals  map[string]string
		field string
	}{
		{map[string]string{"keep_daily": "-1"}, "keep_daily"},
		{map[string]string{"keep_weekly": "many"}, "keep_weekly"},
		{map[string]string{"keep_yearly": "10001"}, "keep_yearly"},
		{map[string]string{"keep_last": "0"}, "keep_last"},
		{map[string]string{"max_age_days": "36501"}, "max_age_days"},
	}
	for _, c := range cases {
		_, err := ParseRetentionQuery(Retention{KeepLast: 7}, query(c.vals))
		e, ok := err.(*Error)
		if !ok || e.Kind != KindInvalid || e.Fields[c.field] == "" {
			t.Errorf("%v: err %v, want a 400 naming %s", c.vals, err, c.field)
		}
	}
	got, err := ParseRetentionQuery(Retention{KeepLast: 7, MaxAgeDays: 30}, query(map[string]string{"keep_daily": "7", "keep_monthly": "12"}))
	if err != nil || got != (Retention{KeepLast: 7, KeepDaily: 7, KeepMonthly: 12, MaxAgeDays: 30}) {
		t.Fatalf("got %+v, %v", got, err)
	}
}
