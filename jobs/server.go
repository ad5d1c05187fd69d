package jobs

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// WorkerConfig tunes the worker server.
type WorkerConfig struct {
	Concurrency int
	// ShutdownTimeout is how long a stopping worker lets running exports
	// finish before handing them back to the queue.
	ShutdownTimeout time.Duration
	// RetryBase is the delay before the first retry; it doubles per retry
	// up to RetryMax.
	RetryBase time.Duration
	RetryMax  time.Duration
}

// Handlers are the task handlers a worker serves.
type Handlers struct {
	ProbeLogs   *ProbeLogsHandler
	UsageLogs   *UsageLogsHandler
	Maintenance *Maintenance
	// WebhookDelivery sends webhook deliveries; nil: this worker sends none.
	WebhookDelivery *WebhookDeliveryHandler
	// DatabaseBackup and DatabaseRestore run backups and restores; nil:
	// this worker runs none.
	DatabaseBackup  *DatabaseBackupHandler
	DatabaseRestore *DatabaseRestoreHandler
	// BackupVerify runs restore drills; nil: this worker runs none.
	BackupVerify *BackupVerifyHandler
	// SessionRequest exports session snapshots; nil: this worker runs none.
	SessionRequest *SessionRequestHandler
}

// NewServer builds the Asynq worker server with hubexport's queues and
// retry policy, and the mux routing task types to handlers.
func NewServer(rdb redis.UniversalClient, cfg WorkerConfig, h Handlers, log *slog.Logger) (*asynq.Server, *asynq.ServeMux) {
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency: cfg.Concurrency,
		Queues: map[string]int{
			QueueCritical:    10,
			QueueExports:     5,
			QueueBackups:     3,
			QueueMaintenance: 1,
			QueueWebhooks:    5,
		},
		ShutdownTimeout: cfg.ShutdownTimeout,
		// A lease held by a live attempt is not the job's failure: it must
		// not use up the job's retries.
		IsFailure: func(err error) bool {
			return !errors.Is(err, errLeaseHeld)
		},
		// RetryDelayFunc is server-wide: webhook deliveries keep their own
		// schedule.
		RetryDelayFunc: func(n int, err error, t *asynq.Task) time.Duration {
			if t != nil && t.Type() == TypeWebhookDelivery {
				return webhookRetryDelay(n, err)
			}
			if errors.Is(err, errLeaseHeld) || errors.Is(err, errLeaseLost) {
				return cfg.RetryBase
			}
			d := cfg.RetryBase << min(n, 20)
			if d > cfg.RetryMax || d <= 0 {
				d = cfg.RetryMax
			}
			return d + time.Duration(rand.Int64N(int64(d/10)+1))
		},
		ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
			if errors.Is(err, errLeaseHeld) {
				return
			}
			if _, ok := errors.AsType[*webhookRetry](err); ok {
				return // the deliverer logged the attempt
			}
			id, _ := asynq.GetTaskID(ctx)
			log.WarnContext(ctx, "task_failed", "task_type", t.Type(), "task_id", id, "error", err)
		}),
		Logger:   asynqLogger{log},
		LogLevel: asynq.WarnLevel,
	})
	mux := asynq.NewServeMux()
	if h.ProbeLogs != nil {
		mux.Handle(TypeProbeLogs, h.ProbeLogs)
	}
	if h.UsageLogs != nil {
		mux.Handle(TypeUsageLogs, h.UsageLogs)
	}
	if h.SessionRequest != nil {
		mux.Handle(TypeSessionRequest, h.SessionRequest)
	}
	if h.DatabaseBackup != nil {
		mux.Handle(TypeDatabaseBackup, h.DatabaseBackup)
	}
	if h.DatabaseRestore != nil {
		mux.Handle(TypeDatabaseRestore, h.DatabaseRestore)
	}
	if h.BackupVerify != nil {
		mux.Handle(TypeBackupVerify, h.BackupVerify)
	}
	if h.Maintenance != nil {
		mux.HandleFunc(TypeCleanup, h.Maintenance.Cleanup)
		mux.HandleFunc(TypeSweep, h.Maintenance.Sweep)
	}
	if h.WebhookDelivery != nil {
		mux.Handle(TypeWebhookDelivery, h.WebhookDelivery)
	}
	return srv, mux
}
