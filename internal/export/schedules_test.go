package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// minuteCron is a stand-in for the real parser (jobs.ParseCron, tested
// there): it fires every minute, or daily at hh:mm for "mm hh * * *", read
// in loc, and refuses fields with letters.
type minuteCron struct {
	daily      bool
	hour, min_ int
	loc        *time.Location
}

func (c minuteCron) Next(t time.Time) time.Time {
	t = t.In(c.loc)
	if !c.daily {
		return t.Truncate(time.Minute).Add(time.Minute)
	}
	d := time.Date(t.Year(), t.Month(), t.Day(), c.hour, c.min_, 0, 0, c.loc)
	if !d.After(t) {
		d = time.Date(t.Year(), t.Month(), t.Day()+1, c.hour, c.min_, 0, 0, c.loc)
	}
	return d
}

func fakeParse(spec string, loc *time.Location) (CronSchedule, error) {
	if spec == "@daily" {
		return minuteCron{daily: true, loc: loc}, nil
	}
	f := strings.Fields(spec)
	if strings.ContainsAny(spec, "abcdefghijklmnopqrstuvwxyz") {
		return nil, errors.New("failed to parse int")
	}
	var h, m int
	if _, err := fmt.Sscanf(f[0]+" "+f[1], "%d %d", &m, &h); err == nil {
		return minuteCron{daily: true, hour: h, min_: m, loc: loc}, nil
	}
	return minuteCron{loc: loc}, nil
}

// memSchedules is a ScheduleStore in memory.
type memSchedules struct {
	schedules map[string]*Schedule
	jobs      map[string]*Job
	audit     []AuditEntry

	verifyBackups map[string]int
	noted         map[string]string
	lastDrill     map[string]string
	count         int // what CountSchedules answers
}

func newMemSchedules() *memSchedules {
	return &memSchedules{schedules: map[string]*Schedule{}, jobs: map[string]*Job{}}
}

func (m *memSchedules) CreateSchedule(_ context.Context, s *Schedule) (*Schedule, error) {
	c := *s
	m.schedules[s.ID] = &c
	return &c, nil
}
func (m *memSchedules) Schedule(_ context.Context, id string) (*Schedule, error) {
	s, ok := m.schedules[id]
	if !ok {
		return nil, ErrScheduleNotFound
	}
	c := *s
	return &c, nil
}
func (m *memSchedules) CountSchedules(context.Context, int64) (int, error) { return m.count, nil }
func (m *memSchedules) DisableSchedule(context.Context, string, string) (bool, error) {
	return false, nil
}
func (m *memSchedules) Schedules(context.Context, *int64, string, int) (SchedulePage, error) {
	return SchedulePage{}, nil
}
func (m *memSchedules) AllSchedules(context.Context, bool) ([]*Schedule, error) { return nil, nil }
func (m *memSchedules) UpdateSchedule(_ context.Context, s *Schedule) (*Schedule, error) {
	c := *s
	m.schedules[s.ID] = &c
	return &c, nil
}
func (m *memSchedules) DeleteSchedule(_ context.Context, id string, _ time.Time) error {
	delete(m.schedules, id)
	return nil
}
func (m *memSchedules) ExpireOrphanedBackups(context.Context, time.Time) (int, error) { return 0, nil }
func (m *memSchedules) CreateScheduledJob(_ context.Context, j *Job, slot time.Time) (bool, error) {
	if s := m.schedules[j.ScheduleID]; s != nil && (s.LastSlotAt == nil || slot.After(*s.LastSlotAt)) {
		s.LastSlotAt = &slot
	}
	if _, ok := m.jobs[j.ID]; ok {
		return false, nil
	}
	m.jobs[j.ID] = j
	return true, nil
}
func (m *memSchedules) ScheduledBackups(context.Context, string) ([]*Job, error) { return nil, nil }
func (m *memSchedules) Expire(context.Context, string) error                     { return nil }
func (m *memSchedules) MarkOverdue(_ context.Context, id string, since time.Time) (bool, error) {
	if m.schedules[id].OverdueSince != nil {
		return false, nil
	}
	m.schedules[id].OverdueSince = &since
	return true, nil
}
func (m *memSchedules) ClearOverdue(_ context.Context, id string) error {
	m.schedules[id].OverdueSince = nil
	return nil
}
func (m *memSchedules) Audit(_ context.Context, e AuditEntry) error {
	m.audit = append(m.audit, e)
	return nil
}

func (m *memSchedules) NoteScheduledBackup(_ context.Context, id, backupID string) (VerifyPolicy, int, error) {
	s, ok := m.schedules[id]
	if !ok {
		return VerifyPolicy{}, 0, ErrScheduleNotFound
	}
	if m.verifyBackups == nil {
		m.verifyBackups, m.noted = map[string]int{}, map[string]string{}
	}
	if m.noted[id] != backupID {
		m.verifyBackups[id]++
	}
	m.noted[id] = backupID
	return s.Verify, m.verifyBackups[id], nil
}
func (m *memSchedules) CreateScheduleDrill(_ context.Context, j *Job, scheduleID string) (bool, error) {
	if _, ok := m.jobs[j.ID]; ok {
		return false, nil
	}
	m.jobs[j.ID] = j
	if m.lastDrill == nil {
		m.lastDrill = map[string]string{}
	}
	m.lastDrill[scheduleID] = j.ID
	m.verifyBackups[scheduleID] = 0
	return true, nil
}
func (m *memSchedules) RecordDrill(_ context.Context, jobID string, passed bool, at time.Time) (*Schedule, error) {
	for id, d := range m.lastDrill {
		if d == jobID {
			s := m.schedules[id]
			s.LastVerify = &LastVerify{JobID: jobID, At: at, Passed: passed}
			if passed {
				s.LastVerifiedAt = &at
			}
			c := *s
			return &c, nil
		}
	}
	return nil, ErrScheduleNotFound
}

type nopQueue struct{ queued []string }

func (q *nopQueue) Enqueue(_ context.Context, j *Job) error {
	q.queued = append(q.queued, j.ID)
	return nil
}
func (q *nopQueue) Cancel(context.Context, *Job) error { return nil }

func newTestSchedules(now *time.Time) (*Schedules, *memSchedules, *nopQueue) {
	st, q := newMemSchedules(), &nopQueue{}
	n := 0
	return &Schedules{
		Store: st, Queue: q, ParseCron: fakeParse, AllowEvery: true, ArtifactRetention: time.Hour,
		NewID: func() string { n++; return fmt.Sprintf("sch_%026d", n) },
		Now:   func() time.Time { return *now },
		Log:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, st, q
}

func TestScheduleInputErrorsNameTheField(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 29, 10, 0, 0, 0, time.UTC)
	valid := func() ScheduleInput {
		return ScheduleInput{Name: ptr("nightly"), Cron: ptr("0 3 * * *")}
	}
	cases := []struct {
		name  string
		edit  func(*ScheduleInput)
		field string
	}{
		{"no name", func(in *ScheduleInput) { in.Name = nil }, "name"},
		{"blank name", func(in *ScheduleInput) { in.Name = ptr("  ") }, "name"},
		{"no cron", func(in *ScheduleInput) { in.Cron = nil }, "cron"},
		{"six fields", func(in *ScheduleInput) { in.Cron = ptr("0 0 3 * * *") }, "cron"},
		{"four fields", func(in *ScheduleInput) { in.Cron = ptr("0 3 * *") }, "cron"},
		{"bad field", func(in *ScheduleInput) { in.Cron = ptr("0 x * * *") }, "cron"},
		{"zone in cron", func(in *ScheduleInput) { in.Cron = ptr("CRON_TZ=UTC 0 3 * * *") }, "cron"},
		{"unknown zone", func(in *ScheduleInput) { in.Timezone = ptr("Mars/Olympus") }, "timezone"},
		{"Local zone", func(in *ScheduleInput) { in.Timezone = ptr("Local") }, "timezone"},
		{"unknown mode", func(in *ScheduleInput) { in.Mode = ptr("partial") }, "mode"},
		{"keep_last 0", func(in *ScheduleInput) { in.Retention = &RetentionInput{KeepLast: ptr(0)} }, "retention.keep_last"},
		{"max_age_days -1", func(in *ScheduleInput) { in.Retention = &RetentionInput{MaxAgeDays: ptr(-1)} }, "retention.max_age_days"},
		{"sub-second every", func(in *ScheduleInput) { in.Cron = ptr("@every 1500ms") }, "cron"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, st, _ := newTestSchedules(&now)
			in := valid()
			c.edit(&in)
			_, err := s.Create(context.Background(), AdminToken(), in)
			var e *Error
			if !errors.As(err, &e) || e.Kind != KindInvalid || e.Fields[c.field] == "" {
				t.Fatalf("err %v, want a 400 naming %s", err, c.field)
			}
			if len(st.audit) != 1 || st.audit[0].Outcome != "error:invalid_request" {
				t.Fatalf("audit %+v", st.audit)
			}
		})
	}
}

func TestScheduleDefaultsAndEverySwitch(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 29, 10, 0, 0, 0, time.UTC)
	s, st, _ := newTestSchedules(&now)
	ctx := context.Background()
	sch, err := s.Create(ctx, AdminToken(), ScheduleInput{Name: ptr(" nightly "), Cron: ptr(" 0  3 * * * "), Timezone: ptr("Asia/Shanghai")})
	if err != nil {
		t.Fatal(err)
	}
	want := Schedule{Name: "nightly", Cron: "0 3 * * *", Timezone: "Asia/Shanghai", Mode: "full", Retention: Retention{KeepLast: 7}, Enabled: true}
	if sch.Name != want.Name || sch.Cron != want.Cron || sch.Timezone != want.Timezone || sch.Mode != want.Mode ||
		sch.Retention != want.Retention || !sch.Enabled || !sch.ActiveSince.Equal(now) {
		t.Fatalf("got %+v", sch)
	}
	// 03:00 in Shanghai is 19:00 UTC.
	if sch.NextRunAt == nil || !sch.NextRunAt.Equal(time.Date(2026, 1, 29, 19, 0, 0, 0, time.UTC)) {
		t.Fatalf("next_run_at %v", sch.NextRunAt)
	}
	if a := st.audit[0]; a.Action != "schedule.create" || a.Target != "schedule:"+sch.ID || a.Outcome != "ok" || a.Actor != "admin_token" {
		t.Fatalf("audit %+v", a)
	}

	// A user does not see an administrator's schedule, and may not make
	// backup schedules.
	user := Principal{UserID: 5, KeyID: 9}
	if _, err := s.Get(ctx, user, sch.ID); KindOf(err) != KindNotFound {
		t.Fatalf("user get: %v", err)
	}
	if _, err := s.Create(ctx, user, ScheduleInput{Name: ptr("mine"), Cron: ptr("0 3 * * *")}); KindOf(err) != KindForbidden {
		t.Fatalf("user backup schedule: %v", err)
	}

	s.AllowEvery = false
	_, err = s.Create(ctx, AdminToken(), ScheduleInput{Name: ptr("t"), Cron: ptr("@every 2s")})
	if e, ok := errors.AsType[*Error](err); !ok || e.Fields["cron"] == "" {
		t.Fatalf("@every without the switch: %v", err)
	}
}

func TestScheduleUpdateRestartsOnlyWhenTimingChanges(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 29, 10, 0, 0, 0, time.UTC)
	s, _, _ := newTestSchedules(&now)
	ctx := context.Background()
	sch, err := s.Create(ctx, AdminToken(), ScheduleInput{Name: ptr("n"), Cron: ptr("0 3 * * *"),
		Retention: &RetentionInput{KeepLast: ptr(3), MaxAgeDays: ptr(30)}})
	if err != nil {
		t.Fatal(err)
	}
	created := now
	now = now.Add(time.Hour)
	sch, err = s.Update(ctx, AdminToken(), sch.ID, ScheduleInput{Mode: ptr("ledger_only"), Retention: &RetentionInput{KeepLast: ptr(5)}}, "")
	if err != nil {
		t.Fatal(err)
	}
	if !sch.ActiveSince.Equal(created) || sch.Retention != (Retention{KeepLast: 5, MaxAgeDays: 30}) || sch.Mode != "ledger_only" {
		t.Fatalf("after a mode/retention edit: %+v", sch)
	}
	for _, in := range []ScheduleInput{{Cron: ptr("30 3 * * *")}, {Timezone: ptr("Europe/Berlin")}, {Enabled: ptr(false)}, {Enabled: ptr(true)}} {
		now = now.Add(time.Hour)
		prev := sch.ActiveSince
		if sch, err = s.Update(ctx, AdminToken(), sch.ID, in, ""); err != nil {
			t.Fatal(err)
		}
		disabling := in.Enabled != nil && !*in.Enabled
		if restarted := sch.ActiveSince.Equal(now); restarted == disabling || (disabling && !sch.ActiveSince.Equal(prev)) {
			t.Fatalf("edit %+v: active since %v (now %v)", in, sch.ActiveSince, now)
		}
	}
}

func TestSlotJobIDIsAULIDOfTheSlot(t *testing.T) {
	t.Parallel()
	// Golden values, checked against github.com/oklog/ulid/v2 with
	// ulid.New(ulid.Timestamp(slot), sha256(...)[:10]).
	for _, c := range []struct {
		slot time.Time
		want string
	}{
		{time.Date(2026, 1, 29, 3, 0, 0, 0, time.UTC), "exp_01KG3V30W0PCZZV7DBZYNA769Q"},
		{time.Unix(0, 0), "exp_00000000006119GZ1RAFYCWTPK"},
		{time.Date(2099, 12, 31, 23, 59, 58, 0, time.UTC), "exp_03QCPC7M1GPFN60VKJ9X723YV8"},
	} {
		if got := SlotJobID("sch_01KAXRR7Q9G7M1V4J3Z6TQ8W5N", c.slot); got != c.want {
			t.Errorf("slot %v: %s, want %s", c.slot, got, c.want)
		}
	}
	a := SlotJobID("sch_A", time.Unix(100, 0))
	if a != SlotJobID("sch_A", time.Unix(100, 0).In(time.FixedZone("x", 3600))) {
		t.Error("the same instant in another zone gives another id")
	}
	if a == SlotJobID("sch_B", time.Unix(100, 0)) || a == SlotJobID("sch_A", time.Unix(102, 0)) {
		t.Error("another schedule or slot gives the same id")
	}
}

func TestEveryTimingIsEpochAligned(t *testing.T) {
	t.Parallel()
	s := &Schedules{AllowEvery: true}
	tm, err := s.Timing(&Schedule{Cron: "@every 2s", Timezone: "Asia/Shanghai"})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Unix(1_800_000_000, 0) // even
	cases := []struct {
		at            time.Time
		latest, curr  time.Time
		currentIsNext bool
	}{
		{base, base, base, false},
		{base.Add(999 * time.Millisecond), base, base, false},
		{base.Add(1999 * time.Millisecond), base, base.Add(2 * time.Second), true}, // within 200 ms of the next
		{base.Add(1700 * time.Millisecond), base, base, false},
	}
	for _, c := range cases {
		l, ok := tm.Latest(c.at)
		if !ok || !l.Equal(c.latest) {
			t.Errorf("Latest(%v) = %v", c.at, l)
		}
		cur, ok := tm.Current(c.at)
		if !ok || !cur.Equal(c.curr) {
			t.Errorf("Current(%v) = %v, want %v", c.at, cur, c.curr)
		}
	}
	if d := tm.Interval(base); d != 2*time.Second {
		t.Errorf("interval %v", d)
	}
}

func TestLatestSlotOfADailySpecInItsZone(t *testing.T) {
	t.Parallel()
	s := &Schedules{ParseCron: fakeParse}
	tm, err := s.Timing(&Schedule{Cron: "0 3 * * *", Timezone: "Asia/Shanghai"})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 29, 18, 59, 59, 0, time.UTC) // 02:59:59 in Shanghai
	l, ok := tm.Latest(at)
	if !ok || !l.Equal(time.Date(2026, 1, 28, 19, 0, 0, 0, time.UTC)) {
		t.Fatalf("latest %v", l)
	}
	l, _ = tm.Latest(at.Add(time.Second))
	if !l.Equal(time.Date(2026, 1, 29, 19, 0, 0, 0, time.UTC)) {
		t.Fatalf("latest at the slot itself: %v", l)
	}
	if tm.Interval(l) != 24*time.Hour {
		t.Fatal(tm.Interval(l))
	}
}

func TestRunSlotOncePerSlotAndOnlyWhileEnabled(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 29, 10, 0, 0, 0, time.UTC)
	s, st, q := newTestSchedules(&now)
	ctx := context.Background()
	sch, err := s.Create(ctx, AdminToken(), ScheduleInput{Name: ptr("t"), Cron: ptr("@every 10s"), Mode: ptr("exclude_logs")})
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(12 * time.Second)
	j, created, err := s.RunSlot(ctx, sch.ID, nil)
	if err != nil || !created {
		t.Fatalf("first tick: %v %v", created, err)
	}
	slot := time.Date(2026, 1, 29, 10, 0, 10, 0, time.UTC)
	if j.ID != SlotJobID(sch.ID, slot) || j.ScheduleID != sch.ID || j.UserID != AdminTokenUserID ||
		j.Type != TypeDatabaseBackup || string(j.Params) != `{"mode":"exclude_logs"}` {
		t.Fatalf("job %+v", j)
	}
	// Two more schedulers tick for the same slot.
	for range 2 {
		if _, created, err := s.RunSlot(ctx, sch.ID, nil); err != nil || created {
			t.Fatalf("duplicate tick created %v (%v)", created, err)
		}
	}
	// A late catch-up tick for an older slot does nothing.
	old := slot.Add(-10 * time.Second)
	if j, _, _ := s.RunSlot(ctx, sch.ID, &old); j != nil {
		t.Fatalf("older slot ran: %+v", j)
	}
	if len(st.jobs) != 1 || len(q.queued) != 1 {
		t.Fatalf("%d jobs, %d queued", len(st.jobs), len(q.queued))
	}
	if _, err := s.Update(ctx, AdminToken(), sch.ID, ScheduleInput{Enabled: ptr(false)}, ""); err != nil {
		t.Fatal(err)
	}
	now = now.Add(10 * time.Second)
	if j, _, _ := s.RunSlot(ctx, sch.ID, nil); j != nil {
		t.Fatalf("disabled schedule ran: %+v", j)
	}
}

func TestMissedSlot(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 29, 10, 0, 0, 0, time.UTC)
	s, _, _ := newTestSchedules(&now)
	sch, err := s.Create(context.Background(), AdminToken(), ScheduleInput{Name: ptr("t"), Cron: ptr("@daily")})
	if err != nil {
		t.Fatal(err)
	}
	// Midnight today came before the schedule existed.
	if _, ok := s.MissedSlot(sch, now.Add(time.Hour)); ok {
		t.Fatal("a slot before creation is missed")
	}
	// Every scheduler was down over the next two midnights: only the latest runs.
	at := now.Add(40 * time.Hour)
	slot, ok := s.MissedSlot(sch, at)
	if !ok || !slot.Equal(time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("missed %v %v", slot, ok)
	}
	sch.LastSlotAt = &slot
	if _, ok := s.MissedSlot(sch, at); ok {
		t.Fatal("a slot already run is missed")
	}
}

type recordOverdue struct{ n int }

func (r *recordOverdue) BackupOverdue(context.Context, *Schedule, time.Time, time.Duration) error {
	r.n++
	return nil
}

func TestOverdueOncePerStretch(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 29, 10, 0, 0, 0, time.UTC)
	s, st, _ := newTestSchedules(&now)
	rec := &recordOverdue{}
	s.Overdue = rec
	ctx := context.Background()
	sch, err := s.Create(ctx, AdminToken(), ScheduleInput{Name: ptr("t"), Cron: ptr("@every 10s")})
	if err != nil {
		t.Fatal(err)
	}
	check := func() *Schedule {
		t.Helper()
		cur, _ := st.Schedule(ctx, sch.ID)
		if err := s.CheckFreshness(ctx, cur); err != nil {
			t.Fatal(err)
		}
		cur, _ = st.Schedule(ctx, sch.ID)
		return cur
	}
	now = now.Add(20 * time.Second) // exactly twice the interval: not yet
	if c := check(); c.OverdueSince != nil || rec.n != 0 {
		t.Fatal("overdue at 2 intervals")
	}
	now = now.Add(time.Second)
	if c := check(); c.OverdueSince == nil || rec.n != 1 {
		t.Fatalf("not overdue after 2 intervals: %d", rec.n)
	}
	for range 3 {
		now = now.Add(10 * time.Second)
		check()
	}
	if rec.n != 1 {
		t.Fatalf("raised %d times in one stretch", rec.n)
	}
	// A success ends the stretch; the next stretch raises again.
	success := now
	st.schedules[sch.ID].LastSuccessAt = &success
	if c := check(); c.OverdueSince != nil {
		t.Fatal("still overdue after a success")
	}
	now = now.Add(21 * time.Second)
	check()
	if rec.n != 2 {
		t.Fatalf("second stretch raised %d in all", rec.n)
	}
}

// A schedule's encryption follows the backup params' rules: its own
// recipients turn it on, and the server's policy can be neither turned off
// nor escaped by a slot's job.
func TestScheduleEncryption(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 1, 29, 10, 0, 0, 0, time.UTC)
	slotParams := func(s *Schedules, st *memSchedules, id string) string {
		t.Helper()
		at := now.Add(time.Duration(len(st.jobs)+1) * time.Hour)
		j, created, err := s.RunSlot(ctx, id, &at)
		if err != nil || !created {
			t.Fatalf("run slot: %v %v", created, err)
		}
		return string(j.Params)
	}
	fieldErr := func(err error, field, phrase string) {
		t.Helper()
		var e *Error
		if !errors.As(err, &e) || e.Kind != KindInvalid || !strings.Contains(e.Fields[field], phrase) {
			t.Fatalf("err %v, want a 400 naming %s saying %q", err, field, phrase)
		}
	}

	s, st, _ := newTestSchedules(&now)
	s.Encryption = BackupEncryption{CheckRecipient: checkKey}
	keys := []string{"age1aaa", " age1aaa"}
	sch, err := s.Create(ctx, AdminToken(), ScheduleInput{Name: ptr("n"), Cron: ptr("@every 1h"), AgeRecipients: &keys})
	if err != nil {
		t.Fatal(err)
	}
	if !sch.Encrypt || len(sch.AgeRecipients) != 1 || sch.AgeRecipients[0] != "age1aaa" {
		t.Fatalf("schedule %+v", sch)
	}
	if got := slotParams(s, st, sch.ID); got != `{"mode":"full","encrypt":true,"age_recipients":["age1aaa"]}` {
		t.Fatalf("slot params %s", got)
	}
	_, err = s.Update(ctx, AdminToken(), sch.ID, ScheduleInput{Encrypt: ptr(false)}, "")
	fieldErr(err, "encrypt", "age_recipients is set")
	bad := []string{"AGE-SECRET-KEY-1X"}
	_, err = s.Update(ctx, AdminToken(), sch.ID, ScheduleInput{AgeRecipients: &bad}, "")
	fieldErr(err, "age_recipients[0]", "is not a recipient")
	none := []string{}
	if sch, err = s.Update(ctx, AdminToken(), sch.ID, ScheduleInput{AgeRecipients: &none}, ""); err != nil || sch.Encrypt {
		t.Fatalf("recipients removed: %+v %v", sch, err)
	}
	if got := slotParams(s, st, sch.ID); got != `{"mode":"full"}` {
		t.Fatalf("slot params %s", got)
	}
	_, err = s.Update(ctx, AdminToken(), sch.ID, ScheduleInput{Encrypt: ptr(true)}, "")
	fieldErr(err, "age_recipients", "BACKUP_AGE_RECIPIENTS is unset")

	// The server's policy.
	s.Encryption.Required = true
	_, err = s.Create(ctx, AdminToken(), ScheduleInput{Name: ptr("p"), Cron: ptr("@every 1h"), Encrypt: ptr(false)})
	fieldErr(err, "encrypt", "the server's policy requires every backup to be encrypted")
	_, err = s.Update(ctx, AdminToken(), sch.ID, ScheduleInput{Encrypt: ptr(false)}, "")
	fieldErr(err, "encrypt", "the server's policy requires")
	// A schedule made before the policy is encrypted from the next slot on.
	if got := slotParams(s, st, sch.ID); got != `{"mode":"full","encrypt":true}` {
		t.Fatalf("slot params under the policy %s", got)
	}
}
