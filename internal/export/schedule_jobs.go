package export

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Schedules of any export type: a schedule carries a job template
// (type, format, params) and, for types that take a time range, a window
// that each slot resolves into concrete start and end times. Each slot runs
// as the principal who made the schedule, checked again at every slot.

// Time windows of a schedule's slots.
const (
	WindowPreviousHour  = "previous_hour"
	WindowPreviousDay   = "previous_day"
	WindowPreviousWeek  = "previous_week" // ISO: Monday to Monday
	WindowPreviousMonth = "previous_month"
	// WindowSinceLast is an incremental feed: the rows created after the
	// mark of the feed's last succeeded export (usage_logs only).
	WindowSinceLast = "since_last"
)

var windows = []string{WindowPreviousHour, WindowPreviousDay, WindowPreviousWeek, WindowPreviousMonth, WindowSinceLast}

// ScheduleJob is a schedule's job template. A backup schedule's is
// {"type":"database_backup","format":"dump"}, its mode and encryption
// being the schedule's own fields.
type ScheduleJob struct {
	Type   Type            `json:"type"`
	Format Format          `json:"format"`
	Params json.RawMessage `json:"params,omitempty"`
}

// IsBackup reports whether sch makes database backups (the schedules that
// existed before job templates, and those asking for database_backup).
func (sch *Schedule) IsBackup() bool {
	return sch.Job.Type == "" || sch.Job.Type == TypeDatabaseBackup
}

// schedulable types: sessions and restores are one-off by nature, drills
// come from a backup schedule's verify policy.
var schedulable = []Type{TypeUsageLogs, TypeProbeLogs, TypeDatabaseBackup}

// takesWindow lists the types whose params hold start_time and end_time.
func takesWindow(t Type) bool { return t == TypeUsageLogs || t == TypeProbeLogs }

// OwnerChecker looks up a schedule's owner as the hub has them now.
type OwnerChecker interface {
	// ScheduleOwner returns the principal of user userID presenting key
	// keyID, or an *Error of kind KindForbidden saying why they can no
	// longer act (key or user disabled, deleted or expired).
	ScheduleOwner(ctx context.Context, userID, keyID int64) (Principal, error)
}

// ErrOwnerInactive is the code of a slot whose owner can no longer act.
const ErrOwnerInactive = "schedule_owner_inactive"

// FeedMark is a feed's high-water mark: the newest row (by created_at,
// then id) a succeeded export of the feed held.
type FeedMark struct {
	CreatedAt time.Time `json:"created_at"`
	ID        int64     `json:"id"`
}

// FeedAdvance is what a feed export moves its feed's mark by: From is the
// mark it read (nil: the feed's first export), To the mark it leaves (From
// when it held no row). The job's success is recorded only if the mark is
// still From, in the same transaction that sets it to To.
type FeedAdvance struct {
	Owner  int64     `json:"-"`
	Name   string    `json:"name"`
	From   *FeedMark `json:"from,omitempty"`
	To     *FeedMark `json:"to,omitempty"`
	CutOff time.Time `json:"cut_off"`
}

// ErrFeedMoved: another export of the feed succeeded while this one ran;
// its file would repeat rows, so it runs again from the new mark.
var ErrFeedMoved = &Error{Kind: KindUnavailable, Code: "feed_moved",
	Message: "another export of this feed succeeded while this one ran; it runs again from the new mark"}

// DefaultFeedLag is how far behind now a feed export stops when FEED_LAG
// is not set: CCH writes a request's row when the request starts.
const DefaultFeedLag = 5 * time.Minute

// maxFeedName bounds feed names.
const maxFeedName = 100

// checkFeedName checks a feed name for field.
func checkFeedName(field, name string) error {
	switch {
	case name == "":
		return Invalid(field, "is required with window \"since_last\": name the feed whose mark this export advances, such as \"warehouse\"")
	case len(name) > maxFeedName:
		return Invalid(field, "must be at most %d characters", maxFeedName)
	case strings.IndexFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_.:-", r))
	}) >= 0:
		return Invalid(field, "may hold only letters, digits and _ . : -")
	}
	return nil
}

// ResolveWindow is the time range [start, end) window names for a slot at
// slot, with days, weeks and months read in loc: the period before the one
// holding the slot. A late or caught-up slot resolves to the period it was
// for, not to the one current when it runs.
func ResolveWindow(window string, slot time.Time, loc *time.Location) (start, end time.Time, ok bool) {
	t := slot.In(loc)
	y, m, d := t.Date()
	switch window {
	case WindowPreviousHour:
		end = time.Date(y, m, d, t.Hour(), 0, 0, 0, loc)
		if end.After(t) { // a zone change inside the hour
			end = end.Add(-time.Hour)
		}
		start = end.Add(-time.Hour)
	case WindowPreviousDay:
		end = time.Date(y, m, d, 0, 0, 0, 0, loc)
		start = time.Date(y, m, d-1, 0, 0, 0, 0, loc)
	case WindowPreviousWeek:
		back := (int(t.Weekday()) + 6) % 7 // days since Monday
		end = time.Date(y, m, d-back, 0, 0, 0, 0, loc)
		start = time.Date(y, m, d-back-7, 0, 0, 0, 0, loc)
	case WindowPreviousMonth:
		end = time.Date(y, m, 1, 0, 0, 0, 0, loc)
		start = time.Date(y, m-1, 1, 0, 0, 0, 0, loc)
	default:
		return time.Time{}, time.Time{}, false
	}
	return start.UTC(), end.UTC(), true
}

// applyJob checks a job template and window for p, the schedule's owner,
// and sets them on sch. in.Job nil keeps sch's template (a PATCH of other
// fields); a backup template maps its params.mode to the mode field.
func (s *Schedules) applyJob(sch *Schedule, in *ScheduleInput, p Principal) error {
	if in.Job != nil {
		j := *in.Job
		if j.Type == "" {
			return Invalid("job.type", "is required; one of %s", typeNames(schedulable))
		}
		if !slices.Contains(schedulable, j.Type) {
			return Invalid("job.type", "%q cannot be scheduled; schedules make %s jobs", j.Type, typeNames(schedulable))
		}
		if sch.ID != "" && sch.IsBackup() != (j.Type == TypeDatabaseBackup) {
			return Invalid("job.type", "cannot change between a backup and another type; create a new schedule")
		}
		if j.Type == TypeDatabaseBackup {
			var bp struct {
				Mode *string `json:"mode"`
			}
			if err := DecodeStrict(j.Params, &bp, "job.params."); err != nil {
				return err
			}
			if bp.Mode != nil && in.Mode == nil {
				in.Mode = bp.Mode
			}
			if j.Format != "" && j.Format != FormatDump {
				return Invalid("job.format", "database_backup schedules make dump files, not %q", j.Format)
			}
			sch.Job = ScheduleJob{Type: TypeDatabaseBackup, Format: FormatDump}
		} else {
			sch.Job = ScheduleJob{Type: j.Type, Format: j.Format, Params: j.Params}
			if len(bytes.TrimSpace(sch.Job.Params)) == 0 || string(bytes.TrimSpace(sch.Job.Params)) == "null" {
				sch.Job.Params = json.RawMessage("{}")
			}
		}
	}
	if sch.Job.Type == "" {
		sch.Job = ScheduleJob{Type: TypeDatabaseBackup, Format: FormatDump}
	}
	if in.Window != nil {
		sch.Window = strings.TrimSpace(*in.Window)
	}
	if sch.IsBackup() {
		if sch.Window != "" {
			return Invalid("window", "backup schedules take no window: a backup is of the whole database")
		}
		return nil
	}
	// Only a backup schedule has these; say so rather than ignore them
	// (their empty values, as a schedule reads back, are fine).
	for field, given := range map[string]bool{"mode": in.Mode != nil && *in.Mode != "", "encrypt": in.Encrypt != nil && *in.Encrypt,
		"age_recipients": in.AgeRecipients != nil && len(*in.AgeRecipients) > 0,
		"verify":         in.Verify != nil && in.Verify.Mode != VerifyNone && in.Verify.Mode != ""} {
		if given {
			return Invalid(field, "applies to backup schedules only (job.type database_backup)")
		}
	}
	spec, ok := s.Registry.Spec(sch.Job.Type)
	if !ok {
		return Invalid("job.type", "this server cannot run %s exports", sch.Job.Type)
	}
	if spec.AdminOnly && !p.Admin {
		return Errorf(KindForbidden, "admin_only", "%s exports are for administrators only", sch.Job.Type)
	}
	if sch.Job.Format == "" {
		sch.Job.Format = spec.Formats[0]
	}
	if !slices.Contains(spec.Formats, sch.Job.Format) {
		names := make([]string, len(spec.Formats))
		for i, f := range spec.Formats {
			names[i] = string(f)
		}
		return Invalid("job.format", "%s exports come as %s, not %q", sch.Job.Type, strings.Join(names, ", "), sch.Job.Format)
	}
	switch {
	case sch.Window == "":
	case !slices.Contains(windows, sch.Window):
		return Invalid("window", "must be one of %s, not %q", strings.Join(windows, ", "), sch.Window)
	case !takesWindow(sch.Job.Type):
		return Invalid("window", "%s exports take no time range", sch.Job.Type)
	case sch.Window == WindowSinceLast && sch.Job.Type != TypeUsageLogs:
		return Invalid("window", "since_last feeds are of usage_logs only")
	}
	var given map[string]json.RawMessage
	if err := json.Unmarshal(sch.Job.Params, &given); err != nil {
		return Invalid("job.params", "must be a JSON object")
	}
	for _, k := range []string{"start_time", "end_time", "window", "feed"} {
		if _, ok := given[k]; ok && sch.Window != "" {
			return Invalid("job.params."+k, "is set by the schedule's window %q for each slot; leave it out", sch.Window)
		}
	}
	// The template must make a valid job now, with a window filled in as a
	// slot would; each slot checks it again, as its owner is then.
	if _, err := s.slotParams(sch, time.Now(), p); err != nil {
		return err
	}
	return nil
}

func typeNames(ts []Type) string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = string(t)
	}
	return strings.Join(out, ", ")
}

// slotParams are the params of sch's job for the slot at slot, parsed for
// its owner p: the template with the window's times (or the feed) filled in.
func (s *Schedules) slotParams(sch *Schedule, slot time.Time, p Principal) (json.RawMessage, error) {
	params := map[string]any{}
	if err := json.Unmarshal(sch.Job.Params, &params); err != nil {
		return nil, Invalid("job.params", "must be a JSON object")
	}
	switch sch.Window {
	case "":
	case WindowSinceLast:
		params["window"], params["feed"] = WindowSinceLast, sch.ID
		if sch.ID == "" {
			params["feed"] = ScheduleIDPrefix + "new"
		}
	default:
		loc, err := LoadZone("timezone", sch.Timezone)
		if err != nil {
			return nil, err
		}
		start, end, _ := ResolveWindow(sch.Window, slot, loc)
		params["start_time"], params["end_time"] = start.Format(time.RFC3339), end.Format(time.RFC3339)
	}
	raw, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	spec, ok := s.Registry.Spec(sch.Job.Type)
	if !ok {
		return nil, Invalid("job.type", "this server cannot run %s exports", sch.Job.Type)
	}
	out, err := spec.Parse(raw, p)
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.Kind == KindInvalid {
			// Name the template's field, not the job's.
			fields := map[string]string{}
			for f, m := range e.Fields {
				fields["job."+f] = m
			}
			return nil, &Error{Kind: KindInvalid, Code: e.Code, Message: "job." + e.Message, Fields: fields}
		}
		return nil, err
	}
	return out, nil
}

// slotOwner is the principal sch's slot runs as, looked up now. A
// *JobError means the owner can no longer act: the slot's job fails with
// it and the schedule is disabled.
func (s *Schedules) slotOwner(ctx context.Context, sch *Schedule) (Principal, *JobError, error) {
	if sch.OwnerUserID == AdminTokenUserID {
		return AdminToken(), nil, nil
	}
	if s.Owners == nil {
		return Principal{}, nil, fmt.Errorf("export: schedule %s: no owner checker configured", sch.ID)
	}
	p, err := s.Owners.ScheduleOwner(ctx, sch.OwnerUserID, sch.OwnerKeyID)
	var e *Error
	if errors.As(err, &e) && e.Kind == KindForbidden {
		return Principal{}, &JobError{Code: ErrOwnerInactive, Message: e.Message + "; the schedule is disabled, enable it again once the owner can act"}, nil
	}
	if err != nil {
		return Principal{}, nil, err
	}
	return p, nil, nil
}

// templateJob builds the job of a template schedule's slot at at. A job
// that cannot run (its owner can no longer act, its template is no longer
// valid for them) comes back failed, with the reason to disable the
// schedule for.
func (s *Schedules) templateJob(ctx context.Context, sch *Schedule, at, now time.Time) (j *Job, disable string, err error) {
	j = &Job{
		ID:         SlotJobID(sch.ID, at),
		Type:       sch.Job.Type,
		Format:     sch.Job.Format,
		Status:     StatusQueued,
		UserID:     sch.OwnerUserID,
		KeyID:      sch.OwnerKeyID,
		ScheduleID: sch.ID,
		CreatedAt:  now,
		UpdatedAt:  now,
		Params:     json.RawMessage("{}"),
	}
	fail := func(je *JobError) (*Job, string, error) {
		j.Status, j.Error, j.FinishedAt = StatusFailed, je, &now
		j.RequestHash = requestHash(j.Type, j.Format, j.Params)
		return j, je.Message, nil
	}
	p, je, err := s.slotOwner(ctx, sch)
	if err != nil {
		return nil, "", err
	}
	if je != nil {
		return fail(je)
	}
	if spec, ok := s.Registry.Spec(sch.Job.Type); ok && spec.AdminOnly && !p.Admin {
		return fail(&JobError{Code: "admin_only", Message: fmt.Sprintf(
			"%s exports are for administrators only, and the schedule's owner is no longer one; the schedule is disabled", sch.Job.Type)})
	}
	params, err := s.slotParams(sch, at, p)
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.Kind == KindInvalid {
			return fail(&JobError{Code: "invalid_template", Message: e.Message + "; the schedule is disabled, fix its job and enable it again"})
		}
		return nil, "", err
	}
	j.Params = params
	j.RequestHash = requestHash(j.Type, j.Format, params)
	return j, "", nil
}
