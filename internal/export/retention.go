package export

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"
)

// Retention is which of a schedule's successful backups are kept: the
// union of what keep_last and the calendar rules select, less what is older
// than max_age_days. The newest successful backup is always kept.
//
// The calendar rules follow restic's forget: walking the backups newest
// first, a rule keeping N periods keeps the newest backup of each of the
// last N periods (hours, days, ISO weeks, months, years of the schedule's
// time zone) that hold a backup at all, so a gap of days without backups
// does not use up the rule. A backup is placed in its period by the time
// it finished.
type Retention struct {
	// KeepLast keeps the newest KeepLast successful backups (at least 1).
	KeepLast    int `json:"keep_last"`
	KeepHourly  int `json:"keep_hourly"`
	KeepDaily   int `json:"keep_daily"`
	KeepWeekly  int `json:"keep_weekly"`
	KeepMonthly int `json:"keep_monthly"`
	KeepYearly  int `json:"keep_yearly"`
	// MaxAgeDays drops successful backups older than that many days; 0
	// means no age limit. The newest successful backup is always kept.
	MaxAgeDays int `json:"max_age_days"`
}

// RetentionInput sets the retention fields it names.
type RetentionInput struct {
	KeepLast    *int `json:"keep_last"`
	KeepHourly  *int `json:"keep_hourly"`
	KeepDaily   *int `json:"keep_daily"`
	KeepWeekly  *int `json:"keep_weekly"`
	KeepMonthly *int `json:"keep_monthly"`
	KeepYearly  *int `json:"keep_yearly"`
	MaxAgeDays  *int `json:"max_age_days"`
}

// Reasons a backup is kept (KeptBy.Rule) or dropped (RetentionDrop.Reason).
const (
	RuleNewest  = "newest"
	RuleLast    = "last"
	RuleHourly  = "hourly"
	RuleDaily   = "daily"
	RuleWeekly  = "weekly"
	RuleMonthly = "monthly"
	RuleYearly  = "yearly"

	// DropNotKept: no rule selects the backup.
	DropNotKept = "not_kept"
	// DropMaxAge: a rule selects it, but it is older than max_age_days.
	DropMaxAge = "max_age"
)

// KeptBy is a rule that selects a backup, and the period it stands for
// (the position for "last": 1 is the newest).
type KeptBy struct {
	Rule   string `json:"rule"`
	Period string `json:"period"`
}

// RetentionVerdict is what a policy does with one backup.
type RetentionVerdict struct {
	Job  *Job
	At   time.Time
	Keep bool
	// KeptBy lists every rule that selects the backup (also when max_age
	// drops it anyway).
	KeptBy []KeptBy
	// DropReason is DropNotKept or DropMaxAge for a dropped backup.
	DropReason string
}

// RetentionDrop is a backup the retention deletes, and why (DropNotKept or
// DropMaxAge).
type RetentionDrop struct {
	Job    *Job
	Reason string
}

const (
	maxKeepLast   = 10000
	maxKeepPeriod = 10000
	maxMaxAgeDays = 36500
)

// calendarRule is one calendar rule: how many periods it keeps and the
// name of a time's period.
type calendarRule struct {
	name   string
	field  string
	keep   func(Retention) int
	set    func(*Retention, int)
	period func(time.Time) string
}

var calendarRules = []calendarRule{
	{RuleHourly, "keep_hourly", func(r Retention) int { return r.KeepHourly }, func(r *Retention, n int) { r.KeepHourly = n },
		// The offset tells apart the two hours a clock set back repeats.
		func(t time.Time) string { return t.Format("2006-01-02T15-07:00") }},
	{RuleDaily, "keep_daily", func(r Retention) int { return r.KeepDaily }, func(r *Retention, n int) { r.KeepDaily = n },
		func(t time.Time) string { return t.Format("2006-01-02") }},
	{RuleWeekly, "keep_weekly", func(r Retention) int { return r.KeepWeekly }, func(r *Retention, n int) { r.KeepWeekly = n },
		func(t time.Time) string { y, w := t.ISOWeek(); return fmt.Sprintf("%04d-W%02d", y, w) }},
	{RuleMonthly, "keep_monthly", func(r Retention) int { return r.KeepMonthly }, func(r *Retention, n int) { r.KeepMonthly = n },
		func(t time.Time) string { return t.Format("2006-01") }},
	{RuleYearly, "keep_yearly", func(r Retention) int { return r.KeepYearly }, func(r *Retention, n int) { r.KeepYearly = n },
		func(t time.Time) string { return t.Format("2006") }},
}

// apply checks the fields in names and sets them on r; errors name the
// field with prefix before it ("retention." in a request body, nothing in
// a query).
func (r *Retention) apply(in RetentionInput, prefix string) error {
	if in.KeepLast != nil {
		if *in.KeepLast < 1 || *in.KeepLast > maxKeepLast {
			return Invalid(prefix+"keep_last", "must be from 1 to %d, not %d: the newest backup is always kept", maxKeepLast, *in.KeepLast)
		}
		r.KeepLast = *in.KeepLast
	}
	byField := map[string]*int{"keep_hourly": in.KeepHourly, "keep_daily": in.KeepDaily, "keep_weekly": in.KeepWeekly,
		"keep_monthly": in.KeepMonthly, "keep_yearly": in.KeepYearly}
	for _, rule := range calendarRules {
		n := byField[rule.field]
		if n == nil {
			continue
		}
		if *n < 0 || *n > maxKeepPeriod {
			return Invalid(prefix+rule.field, "must be from 0 (rule off) to %d, not %d", maxKeepPeriod, *n)
		}
		rule.set(r, *n)
	}
	if in.MaxAgeDays != nil {
		if *in.MaxAgeDays < 0 || *in.MaxAgeDays > maxMaxAgeDays {
			return Invalid(prefix+"max_age_days", "must be from 0 (no age limit) to %d, not %d", maxMaxAgeDays, *in.MaxAgeDays)
		}
		r.MaxAgeDays = *in.MaxAgeDays
	}
	return nil
}

// ParseRetentionQuery reads a what-if policy from query values (keep_last,
// keep_hourly, ..., max_age_days) over base; get returns "" for a value
// not given.
func ParseRetentionQuery(base Retention, get func(string) string) (Retention, error) {
	var in RetentionInput
	fields := map[string]**int{"keep_last": &in.KeepLast, "keep_hourly": &in.KeepHourly, "keep_daily": &in.KeepDaily,
		"keep_weekly": &in.KeepWeekly, "keep_monthly": &in.KeepMonthly, "keep_yearly": &in.KeepYearly, "max_age_days": &in.MaxAgeDays}
	for _, name := range []string{"keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly", "max_age_days"} {
		raw := get(name)
		if raw == "" {
			continue
		}
		n, err := strconv.Atoi(raw)
		if err != nil {
			return base, Invalid(name, "must be a whole number, not %q", raw)
		}
		*fields[name] = &n
	}
	err := base.apply(in, "")
	return base, err
}

// backupTime is when a backup was made, for ordering, periods and age.
func backupTime(j *Job) time.Time {
	if j.FinishedAt != nil {
		return *j.FinishedAt
	}
	return j.CreatedAt
}

// PlanRetention decides, for each of a schedule's successful backups, what
// r does with it at now, with periods read in loc. The verdicts are newest
// first.
func PlanRetention(r Retention, backups []*Job, now time.Time, loc *time.Location) []RetentionVerdict {
	sorted := append([]*Job(nil), backups...)
	sort.SliceStable(sorted, func(i, k int) bool {
		ti, tk := backupTime(sorted[i]), backupTime(sorted[k])
		if !ti.Equal(tk) {
			return ti.After(tk)
		}
		return sorted[i].ID > sorted[k].ID
	})
	left := make([]int, len(calendarRules))
	last := make([]string, len(calendarRules))
	for i, rule := range calendarRules {
		left[i] = rule.keep(r)
	}
	maxAge := time.Duration(r.MaxAgeDays) * 24 * time.Hour
	out := make([]RetentionVerdict, 0, len(sorted))
	for i, j := range sorted {
		v := RetentionVerdict{Job: j, At: backupTime(j)}
		if i == 0 {
			v.KeptBy = append(v.KeptBy, KeptBy{Rule: RuleNewest})
		}
		if i < max(r.KeepLast, 1) {
			v.KeptBy = append(v.KeptBy, KeptBy{Rule: RuleLast, Period: strconv.Itoa(i + 1)})
		}
		local := v.At.In(loc)
		for k, rule := range calendarRules {
			if left[k] == 0 {
				continue
			}
			if p := rule.period(local); p != last[k] {
				last[k] = p
				left[k]--
				v.KeptBy = append(v.KeptBy, KeptBy{Rule: rule.name, Period: p})
			}
		}
		switch {
		case i == 0:
			v.Keep = true
		case len(v.KeptBy) == 0:
			v.DropReason = DropNotKept
		case r.MaxAgeDays > 0 && now.Sub(v.At) > maxAge:
			v.DropReason = DropMaxAge
		default:
			v.Keep = true
		}
		out = append(out, v)
	}
	return out
}

// RetentionDrops picks, from a schedule's successful backups, those r
// deletes at now, periods read in loc; never the newest.
func RetentionDrops(r Retention, backups []*Job, now time.Time, loc *time.Location) []RetentionDrop {
	var out []RetentionDrop
	for _, v := range PlanRetention(r, backups, now, loc) {
		if !v.Keep {
			out = append(out, RetentionDrop{Job: v.Job, Reason: v.DropReason})
		}
	}
	return out
}

// RetentionPlan is the dry run of a retention policy on a schedule's
// current backups (GET /schedules/{id}/retention).
type RetentionPlan struct {
	ScheduleID string           `json:"schedule_id"`
	Timezone   string           `json:"timezone"`
	At         time.Time        `json:"at"`
	Policy     Retention        `json:"policy"`
	Kept       int              `json:"kept"`
	Dropped    int              `json:"dropped"`
	Backups    []RetentionEntry `json:"backups"`
}

// RetentionEntry is one backup of a RetentionPlan.
type RetentionEntry struct {
	JobID      string    `json:"job_id"`
	BackupAt   time.Time `json:"backup_at"`
	Filename   string    `json:"filename,omitempty"`
	SizeBytes  int64     `json:"size_bytes,omitempty"`
	Keep       bool      `json:"keep"`
	KeptBy     []KeptBy  `json:"kept_by"`
	DropReason string    `json:"drop_reason,omitempty"`
}

// PlanRetention shows which of schedule id's backups policy would keep and
// why, without deleting anything. A nil policy means the schedule's own;
// query overrides fields of it (ParseRetentionQuery).
func (s *Schedules) PlanRetention(ctx context.Context, p Principal, id string, query func(string) string) (*RetentionPlan, error) {
	sch, err := s.visible(ctx, p, id)
	if err != nil {
		return nil, err
	}
	policy, err := ParseRetentionQuery(sch.Retention, query)
	if err != nil {
		return nil, err
	}
	loc, err := LoadZone("timezone", sch.Timezone)
	if err != nil {
		return nil, err
	}
	backups, err := s.Store.ScheduledBackups(ctx, sch.ID)
	if err != nil {
		return nil, err
	}
	now := s.Now().UTC()
	plan := &RetentionPlan{ScheduleID: sch.ID, Timezone: sch.Timezone, At: now, Policy: policy, Backups: []RetentionEntry{}}
	for _, v := range PlanRetention(policy, backups, now, loc) {
		e := RetentionEntry{JobID: v.Job.ID, BackupAt: v.At.UTC(), Keep: v.Keep, KeptBy: v.KeptBy, DropReason: v.DropReason}
		if v.Job.Result != nil {
			e.Filename, e.SizeBytes = v.Job.Result.Filename, v.Job.Result.SizeBytes
		}
		if e.KeptBy == nil {
			e.KeptBy = []KeptBy{}
		}
		if v.Keep {
			plan.Kept++
		} else {
			plan.Dropped++
		}
		plan.Backups = append(plan.Backups, e)
	}
	return plan, nil
}
