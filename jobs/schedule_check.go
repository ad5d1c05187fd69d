package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/lock"
)

// TypeScheduleCheck applies retention and checks freshness, for one
// schedule or (no schedule id) every schedule. It is a wire contract:
// never rename it while tasks may be queued.
const TypeScheduleCheck = "schedule:check"

type scheduleCheckPayload struct {
	ScheduleID string `json:"schedule_id,omitempty"`
}

// NewScheduleCheckTask builds a check of schedule id ("": of all).
func NewScheduleCheckTask(id string) *asynq.Task {
	b, _ := json.Marshal(scheduleCheckPayload{ScheduleID: id})
	return asynq.NewTask(TypeScheduleCheck, b, asynq.Queue(QueueSchedules), asynq.MaxRetry(3), asynq.Timeout(10*time.Minute))
}

// ScheduleStore is what the check reads (internal/store).
type ScheduleStore interface {
	Schedule(ctx context.Context, id string) (*export.Schedule, error)
	AllSchedules(ctx context.Context, enabledOnly bool) ([]*export.Schedule, error)
}

// ScheduleCheckHandler runs schedule checks. Each schedule is checked
// under its own short lock, so the checks several scheduler processes
// queue at once do not delete or announce anything twice.
type ScheduleCheckHandler struct {
	Schedules *export.Schedules
	Store     ScheduleStore
	Redis     redis.UniversalClient
	Log       *slog.Logger
	// Metrics, if set, hears each schedule's last successful backup.
	Metrics Metrics
}

// ProcessTask implements asynq.Handler.
func (h *ScheduleCheckHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p scheduleCheckPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return fmt.Errorf("jobs: bad %s payload %q: %w", t.Type(), t.Payload(), asynq.SkipRetry)
	}
	var list []*export.Schedule
	if p.ScheduleID != "" {
		sch, err := h.Store.Schedule(ctx, p.ScheduleID)
		if errors.Is(err, export.ErrScheduleNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		list = []*export.Schedule{sch}
	} else {
		var err error
		if list, err = h.Store.AllSchedules(ctx, false); err != nil {
			return err
		}
	}
	var errs []error
	if p.ScheduleID == "" {
		errs = append(errs, h.Schedules.ExpireOrphans(ctx))
	}
	for _, sch := range list {
		if err := h.check(ctx, sch.ID); err != nil {
			h.Log.WarnContext(ctx, "schedule_check_failed", "schedule_id", sch.ID, "error", err)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// check checks schedule id under its lock, re-reading it once the lock is
// held; a check already running elsewhere makes this one a no-op.
func (h *ScheduleCheckHandler) check(ctx context.Context, id string) error {
	l, err := lock.Acquire(ctx, h.Redis, "hubexport:schedule:"+id+":check", 10*time.Minute)
	if errors.Is(err, lock.ErrHeld) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("jobs: %w", err)
	}
	defer l.Release(context.WithoutCancel(ctx))
	sch, err := h.Store.Schedule(ctx, id)
	if errors.Is(err, export.ErrScheduleNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if sch.LastSuccessAt != nil && h.Metrics != nil && sch.IsBackup() {
		h.Metrics.BackupSucceeded(sch.ID, *sch.LastSuccessAt)
	}
	if sch.LastVerifiedAt != nil && h.Metrics != nil {
		h.Metrics.BackupVerified(sch.ID, *sch.LastVerifiedAt)
	}
	return h.Schedules.Check(ctx, sch)
}

// ScheduleHook hears of ended jobs (export.Notifier): a scheduled backup
// that succeeded is recorded in the metrics, gets a restore drill when its
// schedule's verify policy says so, and its schedule is checked at once
// (retention, and the end of an overdue stretch); a scheduled drill's
// outcome is recorded, announced and checked the same way.
type ScheduleHook struct {
	Queue   *Client
	Metrics Metrics
	Log     *slog.Logger
	// Schedules, if set, queues and records scheduled drills.
	Schedules *export.Schedules
}

// JobEnded implements export.Notifier.
func (h *ScheduleHook) JobEnded(ctx context.Context, j *export.Job) {
	if j.Type == export.TypeBackupVerify && h.Schedules != nil {
		h.drillEnded(ctx, j)
		return
	}
	if j.ScheduleID == "" || j.Status != export.StatusSucceeded {
		return
	}
	if h.Metrics != nil && j.FinishedAt != nil && j.Type == export.TypeDatabaseBackup {
		h.Metrics.BackupSucceeded(j.ScheduleID, *j.FinishedAt)
	}
	if h.Schedules != nil {
		if err := h.Schedules.AfterBackup(ctx, j); err != nil {
			h.Log.WarnContext(ctx, "scheduled_drill_create_failed", "schedule_id", j.ScheduleID, "job_id", j.ID, "error", err)
		}
	}
	if _, err := h.Queue.Client.EnqueueContext(ctx, NewScheduleCheckTask(j.ScheduleID)); err != nil {
		// The periodic check gets to it within SCHEDULE_CHECK_INTERVAL.
		h.Log.WarnContext(ctx, "schedule_check_enqueue_failed", "schedule_id", j.ScheduleID, "job_id", j.ID, "error", err)
	}
}

func (h *ScheduleHook) drillEnded(ctx context.Context, j *export.Job) {
	sch, err := h.Schedules.DrillEnded(ctx, j)
	if err != nil {
		h.Log.WarnContext(ctx, "scheduled_drill_record_failed", "job_id", j.ID, "error", err)
	}
	if sch == nil {
		return
	}
	if h.Metrics != nil && sch.LastVerifiedAt != nil {
		h.Metrics.BackupVerified(sch.ID, *sch.LastVerifiedAt)
	}
	if _, err := h.Queue.Client.EnqueueContext(ctx, NewScheduleCheckTask(sch.ID)); err != nil {
		h.Log.WarnContext(ctx, "schedule_check_enqueue_failed", "schedule_id", sch.ID, "job_id", j.ID, "error", err)
	}
}
