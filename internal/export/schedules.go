package export

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"
)

// Schedules: a schedule makes a job at each of its slots (the activations
// of its cron spec) and keeps the newest of them by its retention. Backup
// schedules also raise backup.overdue when their backups stop succeeding;
// schedules of other types carry a job template (schedule_jobs.go).

// CronSchedule is a parsed cron spec. Next returns the first activation
// strictly after t, or the zero time when there is none within five years.
type CronSchedule interface {
	Next(t time.Time) time.Time
}

// CronParser parses a standard cron spec (5 fields, or a descriptor such as
// @daily) whose fields read as wall-clock times in loc. Its errors are shown
// to users.
type CronParser func(spec string, loc *time.Location) (CronSchedule, error)

// Schedule makes a job on a cron schedule: a database backup, or the job
// its template describes.
type Schedule struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Cron     string `json:"cron"`
	Timezone string `json:"timezone"`
	// Job is the template of each slot's job.
	Job ScheduleJob `json:"job"`
	// Window is the time range each slot's job covers ("": the template's
	// own params): previous_hour/day/week/month, or since_last (a feed).
	Window string `json:"window,omitempty"`
	// Mode is a backup schedule's backup mode ("" for other types).
	Mode      string    `json:"mode,omitempty"`
	Retention Retention `json:"retention"`
	// Verify says which of its backups get a restore drill.
	Verify  VerifyPolicy `json:"verify"`
	Enabled bool         `json:"enabled"`
	// Encrypt: the schedule's backups are age-encrypted, to the server's
	// recipients and AgeRecipients. With the server's policy
	// (BACKUP_AGE_RECIPIENTS) they are encrypted whatever it says.
	Encrypt       bool     `json:"encrypt"`
	AgeRecipients []string `json:"age_recipients"`
	// NextRunAt is the next slot of an enabled schedule (computed on read).
	NextRunAt *time.Time `json:"next_run_at,omitempty"`
	// LastSlotAt is the newest slot a job was created for.
	LastSlotAt *time.Time `json:"last_slot_at,omitempty"`
	// LastSuccessAt is when the newest successful backup of the schedule
	// finished.
	LastSuccessAt *time.Time `json:"last_success_at,omitempty"`
	// OverdueSince is when backup.overdue was raised; cleared once a backup
	// succeeds again.
	OverdueSince *time.Time `json:"overdue_since,omitempty"`
	// LastVerify is the outcome of the latest drill of its backups;
	// LastVerifiedAt when a drill last passed.
	LastVerify     *LastVerify `json:"last_verify,omitempty"`
	LastVerifiedAt *time.Time  `json:"last_verified_at,omitempty"`
	// Healthy is false while the schedule is overdue or its latest drill
	// failed (computed on read).
	Healthy bool `json:"healthy"`
	// OwnerUserID and OwnerKeyID are who made the schedule (-1 and -1: the
	// admin token); its slots run as them.
	OwnerUserID int64 `json:"owner_user_id"`
	OwnerKeyID  int64 `json:"owner_key_id"`
	// DisabledReason says why the scheduler disabled the schedule (its
	// owner could no longer act); cleared when it is enabled again.
	DisabledReason string `json:"disabled_reason,omitempty"`
	// Feed is a since_last schedule's high-water mark (nil before its
	// first succeeded run).
	Feed      *FeedMark `json:"feed,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`

	// ActiveSince: slots before it are never run and freshness is measured
	// from it until the first success. It is the creation time, reset when
	// the schedule is enabled again or its cron spec or time zone changes.
	ActiveSince time.Time `json:"-"`
}

// SchedulePage is one page of a schedule listing, newest first.
type SchedulePage struct {
	Schedules  []*Schedule `json:"data"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

// ScheduleInput creates a schedule, or (PATCH) changes the fields it names.
type ScheduleInput struct {
	Name      *string         `json:"name"`
	Cron      *string         `json:"cron"`
	Timezone  *string         `json:"timezone"`
	Job       *ScheduleJob    `json:"job"`
	Window    *string         `json:"window"`
	Mode      *string         `json:"mode"`
	Retention *RetentionInput `json:"retention"`
	Verify    *VerifyPolicy   `json:"verify"`
	Enabled   *bool           `json:"enabled"`
	Encrypt   *bool           `json:"encrypt"`
	// AgeRecipients, when given (even empty), replaces the schedule's own.
	AgeRecipients *[]string `json:"age_recipients"`
	Address       string    `json:"-"`
}

// ScheduleStore keeps schedules and their jobs (PostgreSQL).
type ScheduleStore interface {
	CreateSchedule(ctx context.Context, s *Schedule) (*Schedule, error)
	// Schedule returns schedule id or ErrScheduleNotFound.
	Schedule(ctx context.Context, id string) (*Schedule, error)
	// Schedules lists schedules newest first: every schedule, or (owner
	// not nil) the schedules of that user.
	Schedules(ctx context.Context, owner *int64, cursor string, limit int) (SchedulePage, error)
	// CountSchedules counts user owner's schedules.
	CountSchedules(ctx context.Context, owner int64) (int, error)
	// DisableSchedule disables schedule id with reason, unless it was
	// already disabled.
	DisableSchedule(ctx context.Context, id, reason string) (bool, error)
	// AllSchedules lists every schedule (only the enabled ones if
	// enabledOnly): the scheduler's view.
	AllSchedules(ctx context.Context, enabledOnly bool) ([]*Schedule, error)
	// UpdateSchedule stores s's settings and ActiveSince; a changed
	// ActiveSince clears OverdueSince.
	UpdateSchedule(ctx context.Context, s *Schedule) (*Schedule, error)
	// DeleteSchedule removes schedule id. Its succeeded backups, which
	// followed its retention, expire at orphansExpireAt instead.
	DeleteSchedule(ctx context.Context, id string, orphansExpireAt time.Time) error
	// ExpireOrphanedBackups gives the succeeded backups of schedules that
	// no longer exist, and that have no expiry, the expiry at (a backup
	// that finished after its schedule was deleted).
	ExpireOrphanedBackups(ctx context.Context, at time.Time) (int, error)
	// CreateScheduledJob inserts j unless a job with its id exists (then
	// created is false) and moves the schedule's LastSlotAt up to slot. It
	// never applies the per-principal cap.
	CreateScheduledJob(ctx context.Context, j *Job, slot time.Time) (created bool, err error)
	// ScheduledBackups lists the succeeded jobs of schedule id.
	ScheduledBackups(ctx context.Context, scheduleID string) ([]*Job, error)
	// Expire marks a job's artifact gone (the job reads expired).
	Expire(ctx context.Context, id string) error
	// MarkOverdue sets OverdueSince to since if it is unset and reports
	// whether it did; ClearOverdue unsets it.
	MarkOverdue(ctx context.Context, id string, since time.Time) (bool, error)
	ClearOverdue(ctx context.Context, id string) error
	// NoteScheduledBackup counts successful backup backupID of schedule id
	// (once, however often it is announced) and returns the schedule's
	// verify policy and the backups counted since its last drill.
	NoteScheduledBackup(ctx context.Context, id, backupID string) (VerifyPolicy, int, error)
	// CreateScheduleDrill inserts drill j unless it exists (then created is
	// false), makes it schedule id's latest drill and resets the count.
	CreateScheduleDrill(ctx context.Context, j *Job, scheduleID string) (created bool, err error)
	// RecordDrill records the outcome of drill jobID on the schedule whose
	// latest drill it is; ErrScheduleNotFound when there is none.
	RecordDrill(ctx context.Context, jobID string, passed bool, at time.Time) (*Schedule, error)
	Audit(ctx context.Context, e AuditEntry) error
}

// OverdueNotifier announces a schedule whose backups stopped succeeding
// (the webhook dispatcher). An error means the event was not recorded.
type OverdueNotifier interface {
	BackupOverdue(ctx context.Context, s *Schedule, since time.Time, interval time.Duration) error
}

// Notifiers tells every one of its notifiers.
type Notifiers []Notifier

// JobEnded implements Notifier.
func (ns Notifiers) JobEnded(ctx context.Context, j *Job) {
	for _, n := range ns {
		if n != nil {
			n.JobEnded(ctx, j)
		}
	}
}

// ErrScheduleNotFound: no such schedule. Matched with errors.Is.
var ErrScheduleNotFound = &Error{Kind: KindNotFound, Code: "schedule_not_found", Message: "no such schedule"}

const (
	// ScheduleIDPrefix starts every schedule id.
	ScheduleIDPrefix = "sch_"
	// DefaultKeepLast is keep_last when a new schedule does not say.
	DefaultKeepLast = 7
	maxScheduleName = 100
	// SchedulerActor is the audit trail's actor for what schedules do.
	SchedulerActor = "scheduler"
)

// Schedules manages schedules: the API's CRUD (audited; users manage
// their own schedules, administrators every one) and what the scheduler
// does with them (slots, retention, freshness).
type Schedules struct {
	Store   ScheduleStore
	Queue   Queue
	Objects ObjectStore
	// Registry checks job templates.
	Registry *Registry
	// Owners looks up the owners of users' schedules at each slot.
	Owners OwnerChecker
	// Notify, if set, hears of slot jobs that fail before they run.
	Notify Notifier
	// MaxPerUser caps the schedules of each user (administrators have no
	// cap); 0 lets users make none.
	MaxPerUser int
	// Overdue, if set, announces overdue schedules; Verified, if set, the
	// outcome of scheduled drills.
	Overdue  OverdueNotifier
	Verified VerifyNotifier
	// ParseCron reads 5-field specs and descriptors (Asynq's dialect).
	ParseCron CronParser
	// AllowEvery accepts "@every <duration>" specs, whose slots are
	// multiples of the duration since the Unix epoch (tests, demos).
	AllowEvery bool
	// ArtifactRetention is how long a deleted schedule's backups are kept.
	ArtifactRetention time.Duration
	// Encryption is the server's backup encryption policy.
	Encryption BackupEncryption
	NewID      func() string // "sch_" + a sortable unique id
	Now        func() time.Time
	Log        *slog.Logger
}

func adminOnly(p Principal) error {
	if !p.Admin {
		return Errorf(KindForbidden, "admin_only", "backup schedules are for administrators only")
	}
	return nil
}

// visible returns schedule id if p may see it: administrators every
// schedule, users their own (anything else is not found).
func (s *Schedules) visible(ctx context.Context, p Principal, id string) (*Schedule, error) {
	sch, err := s.Store.Schedule(ctx, id)
	if err != nil {
		return nil, err
	}
	if !p.Admin && sch.OwnerUserID != p.UserID {
		return nil, ErrScheduleNotFound
	}
	return sch, nil
}

// Create validates in and stores a new schedule.
func (s *Schedules) Create(ctx context.Context, p Principal, in ScheduleInput) (out *Schedule, err error) {
	defer func() {
		s.trail().record(ctx, p, "schedule.create", scheduleTarget(out), in.Address, err, scheduleAuditParams(in))
	}()
	backup := in.Job == nil || in.Job.Type == TypeDatabaseBackup
	if backup {
		if err := adminOnly(p); err != nil {
			return nil, err
		}
	}
	now := s.Now().UTC()
	sch := &Schedule{Timezone: "UTC", Retention: Retention{KeepLast: DefaultKeepLast}, Enabled: true,
		Verify: VerifyPolicy{Mode: VerifyNone}, OwnerUserID: p.UserID, OwnerKeyID: p.KeyID}
	if backup {
		sch.Mode = BackupModeFull
	}
	if in.Name == nil {
		return nil, Invalid("name", "is required: a name for the schedule, such as \"nightly\"")
	}
	if in.Cron == nil {
		return nil, Invalid("cron", "is required: 5 fields (minute hour day-of-month month day-of-week), such as \"0 3 * * *\"")
	}
	if err := s.apply(sch, in, p); err != nil {
		return nil, err
	}
	if !p.Admin {
		n, err := s.Store.CountSchedules(ctx, p.UserID)
		if err != nil {
			return nil, err
		}
		if n >= s.MaxPerUser {
			return nil, Errorf(KindConflict, "too_many_schedules",
				"you have %d schedules, and users may have at most %d (SCHEDULES_PER_USER); delete one first", n, s.MaxPerUser)
		}
	}
	sch.ID, sch.CreatedAt, sch.UpdatedAt, sch.ActiveSince = s.NewID(), now, now, now
	stored, err := s.Store.CreateSchedule(ctx, sch)
	if err != nil {
		return nil, err
	}
	return s.present(stored), nil
}

// Get returns schedule id.
func (s *Schedules) Get(ctx context.Context, p Principal, id string) (*Schedule, error) {
	sch, err := s.visible(ctx, p, id)
	if err != nil {
		return nil, err
	}
	return s.present(sch), nil
}

// List returns the schedules p may see, newest first.
func (s *Schedules) List(ctx context.Context, p Principal, cursor string, limit int) (SchedulePage, error) {
	limit, err := pageLimit(limit)
	if err != nil {
		return SchedulePage{}, err
	}
	var owner *int64
	if !p.Admin {
		owner = &p.UserID
	}
	page, err := s.Store.Schedules(ctx, owner, cursor, limit)
	if err != nil {
		return SchedulePage{}, err
	}
	for i, sch := range page.Schedules {
		page.Schedules[i] = s.present(sch)
	}
	return page, nil
}

// Update changes the fields in names. Enabling a schedule again, or
// changing its cron spec or time zone, starts it afresh: slots before now
// are not caught up and freshness is measured from now.
func (s *Schedules) Update(ctx context.Context, p Principal, id string, in ScheduleInput, address string) (out *Schedule, err error) {
	defer func() {
		s.trail().record(ctx, p, "schedule.update", "schedule:"+id, address, err, scheduleAuditParams(in))
	}()
	sch, err := s.visible(ctx, p, id)
	if err != nil {
		return nil, err
	}
	if sch.IsBackup() {
		if err := adminOnly(p); err != nil {
			return nil, err
		}
	}
	before := *sch
	// Checked for the caller; each slot parses the template again as its
	// owner, so a user's schedule still exports only their rows.
	if err := s.apply(sch, in, p); err != nil {
		return nil, err
	}
	now := s.Now().UTC()
	if sch.Cron != before.Cron || sch.Timezone != before.Timezone || (sch.Enabled && !before.Enabled) {
		sch.ActiveSince = now
	}
	if sch.Enabled {
		sch.DisabledReason = ""
	}
	// Its owner enabling it again with another key (the old one disabled)
	// makes the schedule run as that key from now on.
	if sch.Enabled && !before.Enabled && !sch.IsBackup() && p.UserID == sch.OwnerUserID {
		sch.OwnerKeyID = p.KeyID
	}
	sch.UpdatedAt = now
	stored, err := s.Store.UpdateSchedule(ctx, sch)
	if err != nil {
		return nil, err
	}
	return s.present(stored), nil
}

// Delete removes schedule id. Its backups stay, as ordinary backups that
// expire after the artifact retention.
func (s *Schedules) Delete(ctx context.Context, p Principal, id, address string) (err error) {
	defer func() { s.trail().record(ctx, p, "schedule.delete", "schedule:"+id, address, err, nil) }()
	if _, err := s.visible(ctx, p, id); err != nil {
		return err
	}
	return s.Store.DeleteSchedule(ctx, id, s.orphanExpiry())
}

// apply checks the fields in names and sets them on sch, whose slots run
// as owner.
func (s *Schedules) apply(sch *Schedule, in ScheduleInput, owner Principal) error {
	if in.Name != nil {
		name := strings.TrimSpace(*in.Name)
		switch {
		case name == "":
			return Invalid("name", "must not be empty")
		case utf8.RuneCountInString(name) > maxScheduleName:
			return Invalid("name", "must be at most %d characters", maxScheduleName)
		case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
			return Invalid("name", "must not contain control characters")
		}
		sch.Name = name
	}
	if in.Timezone != nil {
		tz := strings.TrimSpace(*in.Timezone)
		if tz == "" {
			tz = "UTC"
		}
		if _, err := LoadZone("timezone", tz); err != nil {
			return err
		}
		sch.Timezone = tz
	}
	if in.Cron != nil {
		sch.Cron = strings.Join(strings.Fields(*in.Cron), " ")
	}
	if in.Cron != nil || in.Timezone != nil {
		if _, err := s.Timing(sch); err != nil {
			return err
		}
	}
	if err := s.applyJob(sch, &in, owner); err != nil {
		return err
	}
	if !sch.IsBackup() {
		if in.Retention != nil {
			if err := sch.Retention.apply(*in.Retention, "retention."); err != nil {
				return err
			}
		}
		if in.Enabled != nil {
			sch.Enabled = *in.Enabled
		}
		if sch.AgeRecipients == nil {
			sch.AgeRecipients = []string{}
		}
		return nil
	}
	if in.Mode != nil {
		switch *in.Mode {
		case BackupModeFull, BackupModeExcludeLogs, BackupModeLedgerOnly:
			sch.Mode = *in.Mode
		default:
			return Invalid("mode", "must be \"full\", \"exclude_logs\" or \"ledger_only\", not %q", *in.Mode)
		}
	}
	if in.Retention != nil {
		if err := sch.Retention.apply(*in.Retention, "retention."); err != nil {
			return err
		}
	}
	if in.Verify != nil {
		sch.Verify = *in.Verify
	}
	if in.Enabled != nil {
		sch.Enabled = *in.Enabled
	}
	if in.Encrypt != nil || in.AgeRecipients != nil {
		encrypt, recipients := in.Encrypt, sch.AgeRecipients
		if in.AgeRecipients != nil {
			recipients = *in.AgeRecipients
		}
		if encrypt == nil {
			// Giving recipients asks for encryption; taking them all away
			// leaves the schedule as the server's policy has it.
			e := len(recipients) > 0 || (in.AgeRecipients == nil && sch.Encrypt)
			encrypt = &e
			if !e {
				encrypt = nil
			}
		}
		on, rs, err := s.Encryption.resolve("", encrypt, recipients)
		if err != nil {
			return err
		}
		// What the schedule asks for, not the server's policy: that is
		// applied to each slot's job, as the server has it then.
		sch.Encrypt, sch.AgeRecipients = on && (len(rs) > 0 || (encrypt != nil && *encrypt)), rs
	}
	if sch.AgeRecipients == nil {
		sch.AgeRecipients = []string{}
	}
	return nil
}

// present fills the computed fields.
func (s *Schedules) present(sch *Schedule) *Schedule {
	sch.Healthy = sch.OverdueSince == nil && !sch.VerifyFailed()
	sch.NextRunAt = nil
	if sch.Enabled {
		if t, err := s.Timing(sch); err == nil {
			if n := t.Next(s.Now()); !n.IsZero() {
				n = n.UTC()
				sch.NextRunAt = &n
			}
		}
	}
	return sch
}

// Timing is a schedule's parsed cron spec.
type Timing struct {
	c CronSchedule
}

// Next is the first slot strictly after t (zero when there is none).
func (t Timing) Next(after time.Time) time.Time { return t.c.Next(after) }

// Latest is the latest slot at or before at.
func (t Timing) Latest(at time.Time) (time.Time, bool) {
	// Look back over a doubling window until it holds a slot, then walk
	// forward to the last one; the walk covers at most the slots of twice
	// the gap to the latest slot.
	for w := time.Second; w <= 16*366*24*time.Hour; w *= 2 {
		slot := t.c.Next(at.Add(-w))
		if slot.IsZero() {
			return time.Time{}, false
		}
		if slot.After(at) {
			continue
		}
		for range 1 << 20 {
			n := t.c.Next(slot)
			if n.IsZero() || n.After(at) {
				break
			}
			slot = n
		}
		return slot, true
	}
	return time.Time{}, false
}

// Interval is the time from slot to the slot after it.
func (t Timing) Interval(slot time.Time) time.Duration {
	n := t.c.Next(slot)
	if n.IsZero() {
		return 0
	}
	return n.Sub(slot)
}

// Current is the slot a tick processed at now stands for: the latest slot
// at or before now, or the next one when it is due within a tenth of the
// interval (at most 2 s), so a clock a little behind the scheduler's does
// not take a tick for the slot before.
func (t Timing) Current(now time.Time) (time.Time, bool) {
	slot, ok := t.Latest(now)
	if !ok {
		n := t.c.Next(now)
		return n, !n.IsZero() && n.Sub(now) <= 2*time.Second
	}
	n := t.c.Next(slot)
	if !n.IsZero() && n.Sub(now) <= min(n.Sub(slot)/10, 2*time.Second) {
		return n, true
	}
	return slot, true
}

// everySchedule is "@every d": slots are the multiples of d since the Unix
// epoch, so every scheduler process agrees on them.
type everySchedule struct{ d time.Duration }

func (e everySchedule) Next(t time.Time) time.Time {
	epoch := time.Unix(0, 0)
	n := t.Sub(epoch) / e.d
	return epoch.Add((n + 1) * e.d).In(t.Location())
}

// Timing parses sch's cron spec in its time zone; errors name the field.
func (s *Schedules) Timing(sch *Schedule) (Timing, error) {
	spec := strings.TrimSpace(sch.Cron)
	loc, err := LoadZone("timezone", sch.Timezone)
	if err != nil {
		return Timing{}, err
	}
	const fiveFields = "5 fields (minute hour day-of-month month day-of-week), such as \"0 3 * * *\""
	switch {
	case spec == "":
		return Timing{}, Invalid("cron", "must not be empty: give %s", fiveFields)
	case strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ="):
		return Timing{}, Invalid("cron", "must not name a time zone; set the timezone field instead")
	case strings.HasPrefix(spec, "@every"):
		if !s.AllowEvery {
			return Timing{}, Invalid("cron", "@every is not accepted; give %s", fiveFields)
		}
		d, err := time.ParseDuration(strings.TrimSpace(strings.TrimPrefix(spec, "@every")))
		if err != nil || d < time.Second || d%time.Second != 0 {
			return Timing{}, Invalid("cron", "@every needs a whole number of seconds, at least 1s, such as \"@every 10s\"")
		}
		return Timing{c: everySchedule{d}}, nil
	case !strings.HasPrefix(spec, "@") && len(strings.Fields(spec)) != 5:
		return Timing{}, Invalid("cron", "has %d fields; give %s", len(strings.Fields(spec)), fiveFields)
	}
	c, err := s.ParseCron(spec, loc)
	if err != nil {
		return Timing{}, Invalid("cron", "%q is not a valid cron spec: %v", spec, err)
	}
	if c.Next(time.Now()).IsZero() {
		return Timing{}, Invalid("cron", "%q never fires", spec)
	}
	return Timing{c: c}, nil
}

// SlotJobID is the id of the job of sch's slot: "exp_" and a ULID whose time
// is the slot and whose random part is the start of
// sha256(schedule id | slot). Every scheduler process derives the same id,
// so a slot gets one job however many of them tick.
func SlotJobID(scheduleID string, slot time.Time) string {
	var b [16]byte
	ms := uint64(slot.UnixMilli())
	for i := range 6 {
		b[i] = byte(ms >> (8 * (5 - i)))
	}
	sum := sha256.Sum256([]byte(scheduleID + "|" + slot.UTC().Format(time.RFC3339Nano)))
	copy(b[6:], sum[:10])
	return "exp_" + encodeULID(b)
}

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// encodeULID writes 128 bits as 26 Crockford base-32 digits, the ULID text
// form (the first digit carries 3 bits).
func encodeULID(b [16]byte) string {
	var out [26]byte
	for i := range out {
		v := 0
		for k := range 5 {
			v <<= 1
			if p := i*5 + k - 2; p >= 0 {
				v |= int(b[p/8]>>(7-p%8)) & 1
			}
		}
		out[i] = crockford[v]
	}
	return string(out[:])
}

// MissedSlot is the slot a scheduler coming back should run for sch: its
// latest slot, when that is at or after ActiveSince and newer than the
// last slot a job was created for.
func (s *Schedules) MissedSlot(sch *Schedule, now time.Time) (time.Time, bool) {
	if !sch.Enabled {
		return time.Time{}, false
	}
	t, err := s.Timing(sch)
	if err != nil {
		return time.Time{}, false
	}
	slot, ok := t.Latest(now)
	if !ok || slot.Before(sch.ActiveSince) || (sch.LastSlotAt != nil && !slot.After(*sch.LastSlotAt)) {
		return time.Time{}, false
	}
	return slot, true
}

// RunSlot creates the job of schedule id's slot and queues it. A template
// schedule whose owner can no longer act gets a failed job instead and is
// disabled. A nil slot means the slot of a tick processed now (Timing.Current).
// It does nothing (nil job) for a schedule deleted or disabled since the
// tick was queued, for a slot before the schedule became active, and for a
// slot older than one already run. created is false when the slot's job
// already existed.
func (s *Schedules) RunSlot(ctx context.Context, id string, slot *time.Time) (job *Job, created bool, err error) {
	sch, err := s.Store.Schedule(ctx, id)
	if errors.Is(err, ErrScheduleNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if !sch.Enabled {
		return nil, false, nil
	}
	t, err := s.Timing(sch)
	if err != nil {
		return nil, false, err
	}
	now := s.Now()
	var at time.Time
	if slot != nil {
		at = *slot
	} else {
		var ok bool
		if at, ok = t.Current(now); !ok {
			return nil, false, nil
		}
	}
	if at.Before(sch.ActiveSince) || (sch.LastSlotAt != nil && at.Before(*sch.LastSlotAt)) {
		return nil, false, nil
	}
	at = at.UTC()
	var (
		j       *Job
		disable string
	)
	if sch.IsBackup() {
		if j, err = s.backupJob(sch, at, now.UTC()); err != nil {
			return nil, false, err
		}
	} else if j, disable, err = s.templateJob(ctx, sch, at, now.UTC()); err != nil {
		return nil, false, err
	}
	created, err = s.Store.CreateScheduledJob(ctx, j, at)
	if err != nil || !created {
		return j, false, err
	}
	s.trail().recordSystem(ctx, "export.create", "job:"+j.ID, nil, map[string]any{
		"type": j.Type, "format": j.Format, "params": json.RawMessage(j.Params), "schedule_id": sch.ID, "slot": at})
	if j.Status == StatusFailed {
		s.Log.WarnContext(ctx, "scheduled_job_refused", "job_id", j.ID, "schedule_id", sch.ID, "slot", at, "code", j.Error.Code)
		if disabled, derr := s.Store.DisableSchedule(ctx, sch.ID, disable); derr != nil {
			s.Log.ErrorContext(ctx, "schedule_disable_failed", "schedule_id", sch.ID, "error", derr)
		} else if disabled {
			s.Log.WarnContext(ctx, "schedule_disabled", "schedule_id", sch.ID, "reason", disable)
			s.trail().recordSystem(ctx, "schedule.disable", "schedule:"+sch.ID, nil, map[string]any{"reason": disable, "job_id": j.ID})
		}
		if s.Notify != nil {
			s.Notify.JobEnded(ctx, j)
		}
		return j, true, nil
	}
	s.Log.InfoContext(ctx, "scheduled_job_created", "job_id", j.ID, "schedule_id", sch.ID, "slot", at, "type", j.Type)
	if err := s.Queue.Enqueue(ctx, j); err != nil {
		// The job is in PostgreSQL: the reconciler queues it later.
		s.Log.WarnContext(ctx, "job_enqueue_deferred", "job_id", j.ID, "error", err)
	}
	return j, true, nil
}

// backupJob builds the database_backup job of a backup schedule's slot.
func (s *Schedules) backupJob(sch *Schedule, at, now time.Time) (*Job, error) {
	params, err := json.Marshal(BackupParams{Mode: sch.Mode, Encrypt: s.Encryption.Encrypts(BackupParams{Encrypt: sch.Encrypt}),
		AgeRecipients: sch.AgeRecipients})
	if err != nil {
		return nil, err
	}
	return &Job{
		ID:          SlotJobID(sch.ID, at),
		Type:        TypeDatabaseBackup,
		Format:      FormatDump,
		Status:      StatusQueued,
		Params:      params,
		UserID:      AdminTokenUserID,
		KeyID:       -1,
		ScheduleID:  sch.ID,
		RequestHash: requestHash(TypeDatabaseBackup, FormatDump, params),
		CreatedAt:   now,
		UpdatedAt:   now,
	}, nil
}

// ApplyRetention deletes the files of sch's backups its retention drops
// and marks their jobs expired, logging and auditing each. A failed
// deletion stops the pass; the next one tries again.
func (s *Schedules) ApplyRetention(ctx context.Context, sch *Schedule) (int, error) {
	backups, err := s.Store.ScheduledBackups(ctx, sch.ID)
	if err != nil {
		return 0, err
	}
	loc, err := LoadZone("timezone", sch.Timezone)
	if err != nil {
		return 0, err
	}
	dropped := 0
	for _, d := range RetentionDrops(sch.Retention, backups, s.Now(), loc) {
		if d.Job.StorageKey != "" {
			if err := DeleteArtifact(ctx, s.Objects, d.Job.StorageKey); err != nil {
				return dropped, fmt.Errorf("export: delete backup %s of schedule %s: %w", d.Job.ID, sch.ID, err)
			}
		}
		if err := s.Store.Expire(ctx, d.Job.ID); err != nil {
			return dropped, err
		}
		dropped++
		s.Log.InfoContext(ctx, "backup_retention_deleted", "job_id", d.Job.ID, "schedule_id", sch.ID,
			"storage_key", d.Job.StorageKey, "reason", d.Reason, "backup_at", backupTime(d.Job))
		s.trail().recordSystem(ctx, "schedule.retention_delete", "job:"+d.Job.ID, nil, map[string]any{
			"schedule_id": sch.ID, "reason": d.Reason, "storage_key": d.Job.StorageKey, "backup_at": backupTime(d.Job)})
	}
	return dropped, nil
}

// Overdue reports whether a schedule of timing t whose backups last
// succeeded (or which became active) at since is overdue at now: no success
// for twice its interval, the interval being the gap from its latest slot
// to the next.
func Overdue(t Timing, since, now time.Time) (bool, time.Duration) {
	slot, ok := t.Latest(now)
	if !ok {
		return false, 0
	}
	interval := t.Interval(slot)
	return interval > 0 && now.Sub(since) > 2*interval, interval
}

// CheckFreshness raises backup.overdue for sch once per overdue stretch and
// clears the stretch once sch is fresh again (or disabled).
func (s *Schedules) CheckFreshness(ctx context.Context, sch *Schedule) error {
	// Only backups go overdue (backup.overdue); other schedules' failures
	// are announced by their jobs' export.failed.
	fresh := !sch.Enabled || !sch.IsBackup()
	var interval time.Duration
	if !fresh {
		t, err := s.Timing(sch)
		if err != nil {
			return err
		}
		since := sch.ActiveSince
		if sch.LastSuccessAt != nil && sch.LastSuccessAt.After(since) {
			since = *sch.LastSuccessAt
		}
		var overdue bool
		overdue, interval = Overdue(t, since, s.Now())
		fresh = !overdue
	}
	// A backup whose drill failed is no backup to rely on.
	if sch.Enabled && sch.IsBackup() && sch.VerifyFailed() {
		fresh = false
	}
	if fresh {
		if sch.OverdueSince == nil {
			return nil
		}
		s.Log.InfoContext(ctx, "backup_overdue_cleared", "schedule_id", sch.ID, "overdue_since", *sch.OverdueSince)
		return s.Store.ClearOverdue(ctx, sch.ID)
	}
	if sch.OverdueSince != nil {
		return nil
	}
	now := s.Now().UTC()
	claimed, err := s.Store.MarkOverdue(ctx, sch.ID, now)
	if err != nil || !claimed {
		return err
	}
	s.Log.WarnContext(ctx, "backup_overdue", "schedule_id", sch.ID, "schedule_name", sch.Name,
		"last_success_at", sch.LastSuccessAt, "interval", interval.String())
	if s.Overdue == nil {
		return nil
	}
	if err := s.Overdue.BackupOverdue(ctx, sch, now, interval); err != nil {
		// Unclaim, so the next check raises it again.
		if cerr := s.Store.ClearOverdue(context.WithoutCancel(ctx), sch.ID); cerr != nil {
			s.Log.ErrorContext(ctx, "backup_overdue_unclaim_failed", "schedule_id", sch.ID, "error", cerr)
		}
		return err
	}
	return nil
}

// ExpireOrphans gives the backups of deleted schedules the artifact
// retention, counted from now: without a schedule, no retention keeps them.
func (s *Schedules) ExpireOrphans(ctx context.Context) error {
	n, err := s.Store.ExpireOrphanedBackups(ctx, s.orphanExpiry())
	if n > 0 {
		s.Log.InfoContext(ctx, "orphaned_backups_expiring", "count", n)
	}
	return err
}

func (s *Schedules) orphanExpiry() time.Time {
	return s.Now().Add(s.ArtifactRetention).UTC().Truncate(time.Second)
}

// Check applies sch's retention and checks its freshness.
func (s *Schedules) Check(ctx context.Context, sch *Schedule) error {
	_, rerr := s.ApplyRetention(ctx, sch)
	ferr := s.CheckFreshness(ctx, sch)
	return errors.Join(rerr, ferr)
}

func scheduleTarget(s *Schedule) string {
	if s == nil {
		return ""
	}
	return "schedule:" + s.ID
}

// scheduleAuditParams records the fields a request set.
func scheduleAuditParams(in ScheduleInput) map[string]any {
	params := map[string]any{}
	if in.Name != nil {
		params["name"] = *in.Name
	}
	if in.Cron != nil {
		params["cron"] = *in.Cron
	}
	if in.Timezone != nil {
		params["timezone"] = *in.Timezone
	}
	if in.Mode != nil {
		params["mode"] = *in.Mode
	}
	if in.Job != nil {
		params["job"] = map[string]any{"type": in.Job.Type, "format": in.Job.Format, "params": RedactParams(in.Job.Params)}
	}
	if in.Window != nil {
		params["window"] = *in.Window
	}
	if r := in.Retention; r != nil {
		rp := map[string]any{}
		if r.KeepLast != nil {
			rp["keep_last"] = *r.KeepLast
		}
		for name, n := range map[string]*int{"keep_hourly": r.KeepHourly, "keep_daily": r.KeepDaily,
			"keep_weekly": r.KeepWeekly, "keep_monthly": r.KeepMonthly, "keep_yearly": r.KeepYearly, "max_age_days": r.MaxAgeDays} {
			if n != nil {
				rp[name] = *n
			}
		}
		params["retention"] = rp
	}
	if in.Verify != nil {
		params["verify"] = *in.Verify
	}
	if in.Enabled != nil {
		params["enabled"] = *in.Enabled
	}
	if in.Encrypt != nil {
		params["encrypt"] = *in.Encrypt
	}
	if in.AgeRecipients != nil {
		params["age_recipients"] = *in.AgeRecipients
	}
	if len(params) == 0 {
		return nil
	}
	return params
}

func (s *Schedules) trail() auditTrail { return auditTrail{store: s.Store, log: s.Log, now: s.Now} }
