package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/hubexport/hubexport/internal/export"
)

// TypeScheduleTick creates the backup job of a schedule's slot. It is a
// wire contract: never rename it while tasks may be queued.
const TypeScheduleTick = "schedule:tick"

// scheduleTickPayload names the schedule; Slot is set on catch-up ticks
// only (a periodic tick's slot is the one current when it is handled).
type scheduleTickPayload struct {
	ScheduleID string     `json:"schedule_id"`
	Slot       *time.Time `json:"slot,omitempty"`
}

// NewScheduleTickTask builds the tick of schedule id. A tick for a given
// slot gets a TaskID derived from it, kept for a while after it ran, so
// another scheduler process cannot queue it again meanwhile.
func NewScheduleTickTask(id string, slot *time.Time) *asynq.Task {
	p := scheduleTickPayload{ScheduleID: id}
	opts := []asynq.Option{asynq.Queue(QueueSchedules), asynq.MaxRetry(5), asynq.Timeout(time.Minute)}
	if slot != nil {
		s := slot.UTC()
		p.Slot = &s
		opts = append(opts, asynq.TaskID("tick:"+id+":"+strconv.FormatInt(s.Unix(), 10)), asynq.Retention(10*time.Minute))
	}
	b, _ := json.Marshal(p)
	return asynq.NewTask(TypeScheduleTick, b, opts...)
}

// ScheduleTickHandler runs schedule ticks.
type ScheduleTickHandler struct {
	Schedules *export.Schedules
	Log       *slog.Logger
}

// ProcessTask implements asynq.Handler.
func (h *ScheduleTickHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p scheduleTickPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.ScheduleID == "" {
		return fmt.Errorf("jobs: bad %s payload %q: %w", t.Type(), t.Payload(), asynq.SkipRetry)
	}
	j, created, err := h.Schedules.RunSlot(ctx, p.ScheduleID, p.Slot)
	if err != nil {
		if export.KindOf(err) == export.KindInvalid {
			return fmt.Errorf("jobs: schedule %s: %w: %w", p.ScheduleID, err, asynq.SkipRetry)
		}
		return fmt.Errorf("jobs: schedule %s: %w", p.ScheduleID, err)
	}
	if j != nil && !created {
		h.Log.DebugContext(ctx, "schedule_slot_exists", "schedule_id", p.ScheduleID, "job_id", j.ID)
	}
	return nil
}
