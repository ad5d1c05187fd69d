package export

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Restore drills of scheduled backups: a schedule's verify policy queues a
// backup_verify job after its backups succeed; the drill's outcome is
// recorded on the schedule, announced (backup.verified,
// backup.verify_failed) and, when it failed, makes the schedule unhealthy
// until a later drill passes.

// Verify policies.
const (
	VerifyNone     = "none"
	VerifyEvery    = "every"
	VerifyEveryNth = "every_nth"
)

// VerifyPolicy is a schedule's verify setting. In JSON it is "none",
// "every" or {"every_nth": N}.
type VerifyPolicy struct {
	Mode     string
	EveryNth int
}

// MarshalJSON implements json.Marshaler.
func (v VerifyPolicy) MarshalJSON() ([]byte, error) {
	if v.Mode == VerifyEveryNth {
		return json.Marshal(map[string]int{"every_nth": v.EveryNth})
	}
	if v.Mode == "" {
		return json.Marshal(VerifyNone)
	}
	return json.Marshal(v.Mode)
}

// UnmarshalJSON implements json.Unmarshaler; errors name the field.
func (v *VerifyPolicy) UnmarshalJSON(b []byte) error {
	const how = `must be "none", "every" or {"every_nth": N} with N from 1 to 1000`
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return Invalid("verify", how)
		}
		switch s {
		case VerifyNone, VerifyEvery:
			*v = VerifyPolicy{Mode: s}
			return nil
		}
		return Invalid("verify", "%s, not %q", how, s)
	}
	var o struct {
		EveryNth *int `json:"every_nth"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil || o.EveryNth == nil || *o.EveryNth < 1 || *o.EveryNth > 1000 {
		return Invalid("verify", how)
	}
	*v = VerifyPolicy{Mode: VerifyEveryNth, EveryNth: *o.EveryNth}
	if o.EveryNth != nil && *o.EveryNth == 1 {
		v.Mode, v.EveryNth = VerifyEvery, 0
	}
	return nil
}

// Due reports whether the n-th successful backup since the last drill
// gets a drill.
func (v VerifyPolicy) Due(n int) bool {
	switch v.Mode {
	case VerifyEvery:
		return n >= 1
	case VerifyEveryNth:
		return v.EveryNth > 0 && n >= v.EveryNth
	}
	return false
}

// LastVerify is the outcome of a schedule's latest drill.
type LastVerify struct {
	JobID  string    `json:"job_id"`
	At     time.Time `json:"at"`
	Passed bool      `json:"passed"`
}

// VerifyFailed reports whether the schedule's latest drill failed.
func (s *Schedule) VerifyFailed() bool { return s.LastVerify != nil && !s.LastVerify.Passed }

// VerifyNotifier announces a scheduled drill's outcome (the webhook
// dispatcher). An error means the event was not recorded.
type VerifyNotifier interface {
	BackupVerified(ctx context.Context, s *Schedule, drill *Job, passed bool) error
}

// DrillJobID is the id of the drill a schedule queues after backup job b:
// a ULID whose time is the backup's end and whose random part comes from
// its id, so a backup announced twice queues one drill.
func DrillJobID(b *Job) string {
	at := b.UpdatedAt
	if b.FinishedAt != nil {
		at = *b.FinishedAt
	}
	var id [16]byte
	ms := uint64(at.UnixMilli())
	for i := range 6 {
		id[i] = byte(ms >> (8 * (5 - i)))
	}
	sum := sha256.Sum256([]byte("verify|" + b.ID))
	copy(id[6:], sum[:10])
	return "exp_" + encodeULID(id)
}

// AfterBackup queues the drill of scheduled backup j when its schedule's
// verify policy says one is due. It does nothing for other jobs.
func (s *Schedules) AfterBackup(ctx context.Context, j *Job) error {
	if j.ScheduleID == "" || j.Type != TypeDatabaseBackup || j.Status != StatusSucceeded {
		return nil
	}
	policy, n, err := s.Store.NoteScheduledBackup(ctx, j.ScheduleID, j.ID)
	if errors.Is(err, ErrScheduleNotFound) || err == nil && !policy.Due(n) {
		return nil
	}
	if err != nil {
		return err
	}
	params, err := json.Marshal(VerifyParams{BackupJobID: j.ID})
	if err != nil {
		return err
	}
	now := s.Now().UTC()
	d := &Job{
		ID: DrillJobID(j), Type: TypeBackupVerify, Format: FormatJSON, Status: StatusQueued, Params: params,
		UserID: AdminTokenUserID, KeyID: -1, RequestHash: requestHash(TypeBackupVerify, FormatJSON, params),
		CreatedAt: now, UpdatedAt: now,
	}
	created, err := s.Store.CreateScheduleDrill(ctx, d, j.ScheduleID)
	if err != nil || !created {
		return err
	}
	s.Log.InfoContext(ctx, "scheduled_drill_created", "job_id", d.ID, "schedule_id", j.ScheduleID, "backup_job_id", j.ID)
	s.trail().recordSystem(ctx, "export.create", "job:"+d.ID, nil, map[string]any{
		"type": d.Type, "format": d.Format, "params": json.RawMessage(params), "schedule_id": j.ScheduleID})
	if err := s.Queue.Enqueue(ctx, d); err != nil {
		s.Log.WarnContext(ctx, "job_enqueue_deferred", "job_id", d.ID, "error", err)
	}
	return nil
}

// DrillEnded records the outcome of drill j on the schedule that queued it
// and announces it; a canceled drill, or one no schedule queued, records
// nothing. It returns the schedule (nil when none).
func (s *Schedules) DrillEnded(ctx context.Context, j *Job) (*Schedule, error) {
	if j.Type != TypeBackupVerify || (j.Status != StatusSucceeded && j.Status != StatusFailed) {
		return nil, nil
	}
	at := s.Now().UTC()
	if j.FinishedAt != nil {
		at = j.FinishedAt.UTC()
	}
	passed := j.Status == StatusSucceeded
	sch, err := s.Store.RecordDrill(ctx, j.ID, passed, at)
	if errors.Is(err, ErrScheduleNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if passed {
		s.Log.InfoContext(ctx, "backup_verified", "schedule_id", sch.ID, "job_id", j.ID)
	} else {
		s.Log.WarnContext(ctx, "backup_verify_failed", "schedule_id", sch.ID, "job_id", j.ID)
	}
	if s.Verified != nil {
		if err := s.Verified.BackupVerified(ctx, sch, j, passed); err != nil {
			return sch, err
		}
	}
	return s.present(sch), nil
}

// ScheduleHealth is the scheduler's health, as /readyz reports a process's:
// healthy when no enabled schedule is overdue or has a failed latest drill.
type ScheduleHealth struct {
	Status string `json:"status"` // "healthy" or "unhealthy"
	// Schedules says, per schedule id: "ok", "disabled", or what is wrong.
	Schedules map[string]string `json:"schedules"`
}

// Health reports every schedule's health (administrators only).
func (s *Schedules) Health(ctx context.Context, p Principal) (ScheduleHealth, error) {
	if err := adminOnly(p); err != nil {
		return ScheduleHealth{}, err
	}
	list, err := s.Store.AllSchedules(ctx, false)
	if err != nil {
		return ScheduleHealth{}, err
	}
	h := ScheduleHealth{Status: "healthy", Schedules: make(map[string]string, len(list))}
	for _, sch := range list {
		var problems []string
		switch {
		case !sch.Enabled:
			h.Schedules[sch.ID] = "disabled"
			continue
		case sch.OverdueSince != nil:
			problems = append(problems, "overdue since "+sch.OverdueSince.UTC().Format(time.RFC3339))
		}
		if sch.VerifyFailed() {
			problems = append(problems, "the latest restore drill ("+sch.LastVerify.JobID+") failed at "+sch.LastVerify.At.UTC().Format(time.RFC3339))
		}
		if len(problems) == 0 {
			h.Schedules[sch.ID] = "ok"
			continue
		}
		h.Status = "unhealthy"
		h.Schedules[sch.ID] = strings.Join(problems, "; ")
	}
	return h, nil
}
