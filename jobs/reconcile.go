package jobs

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/hubexport/hubexport/internal/export"
)

// Reconciler makes PostgreSQL's view win: a job it says is queued or
// running must have a task in Redis. When Redis restarted empty or was
// flushed, the reconciler enqueues the job again (same task id, so at most
// one task exists); when Asynq gave up on a task without the job recording
// it, the job is failed. Running it on several instances at once is safe.
type Reconciler struct {
	Store     JobStore
	Queue     *Client
	Inspector *asynq.Inspector
	Log       *slog.Logger
	// Interval between passes.
	Interval time.Duration
	// Quiet: jobs changed more recently than this are left alone, so a job
	// being created is not mistaken for a lost one.
	Quiet time.Duration
	// Notify, if set, hears of the jobs the reconciler fails (webhooks).
	Notify export.Notifier
}

// Run reconciles every Interval until ctx ends.
func (r *Reconciler) Run(ctx context.Context) {
	everyInterval(ctx, r.Interval, r.Log, "reconcile_failed", func(ctx context.Context) error {
		_, err := r.Once(ctx)
		return err
	})
}

// everyInterval runs pass at once and then every interval until ctx ends,
// logging a failed pass under event; the next pass tries again.
func everyInterval(ctx context.Context, interval time.Duration, log *slog.Logger, event string, pass func(context.Context) error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := pass(ctx); err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, event, "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Once makes one pass and returns how many jobs it re-enqueued.
func (r *Reconciler) Once(ctx context.Context) (int, error) {
	jobs, err := r.Store.Unfinished(ctx, r.Quiet, 500)
	if err != nil {
		return 0, err
	}
	requeued := 0
	for _, j := range jobs {
		info, err := r.Inspector.GetTaskInfo(QueueOf(j.Type), j.ID)
		switch {
		case errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound):
			if err := r.Queue.Enqueue(ctx, j); err != nil {
				return requeued, err
			}
			requeued++
			r.Log.InfoContext(ctx, "job_reenqueued", "job_id", j.ID, "status", j.Status, "reason", "task missing from redis")
		case err != nil:
			return requeued, err
		case info.State == asynq.TaskStateArchived:
			je := &export.JobError{Code: "retries_exhausted",
				Message: "the job failed on every attempt; try again later, or ask an administrator to look at this job"}
			if info.LastErr != "" {
				je.Detail = "last error: " + info.LastErr
			}
			err := r.Store.Fail(ctx, j.ID, "", je, true)
			if err != nil && !errors.Is(err, export.ErrSuperseded) {
				return requeued, err
			}
			if err == nil {
				notifyEnded(ctx, r.Store, r.Notify, r.Log, j.ID)
			}
			r.Log.WarnContext(ctx, "job_failed", "job_id", j.ID, "code", "retries_exhausted")
		}
	}
	return requeued, nil
}
