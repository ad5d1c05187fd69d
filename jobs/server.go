package jobs

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// WorkerConfig tunes the worker server.
type WorkerConfig struct {
	Concurrency int
	// BackupConcurrency, when above 0, serves the backups queue (backups
	// and restores) with a server of its own with that many slots, so a
	// backup waiting for the backup lock never holds a slot that exports
	// and webhook deliveries need. 0: the backups queue shares Concurrency.
	BackupConcurrency int
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

// Workers are the Asynq servers of one worker process: one for every queue
// but backups, and one for backups when they have slots of their own.
type Workers struct {
	servers []*asynq.Server
}

// Start starts every server with mux.
func (w *Workers) Start(mux *asynq.ServeMux) error {
	for i, s := range w.servers {
		if err := s.Start(mux); err != nil {
			for _, started := range w.servers[:i] {
				started.Shutdown()
			}
			return err
		}
	}
	return nil
}

// Shutdown stops every server at once, each handing its unfinished tasks
// back after ShutdownTimeout.
func (w *Workers) Shutdown() {
	var wg sync.WaitGroup
	for _, s := range w.servers {
		wg.Go(s.Shutdown)
	}
	wg.Wait()
}

// NewServer builds the Asynq worker servers with hubexport's queues and
// retry policy, and the mux routing task types to handlers.
func NewServer(rdb redis.UniversalClient, cfg WorkerConfig, h Handlers, log *slog.Logger) (*Workers, *asynq.ServeMux) {
	queues := map[string]int{
		QueueCritical:    10,
		QueueExports:     5,
		QueueBackups:     3,
		QueueMaintenance: 1,
		QueueWebhooks:    5,
	}
	base := asynq.Config{
		ShutdownTimeout: cfg.ShutdownTimeout,
		// A lease held by a live attempt, a lease lost and a crashed
		// worker's expired lease are not the job's failures. The job's
		// retries are counted in PostgreSQL anyway (failureBudgets); this
		// keeps Asynq's own count from ever exhausting a job.
		IsFailure: func(err error) bool {
			return !errors.Is(err, errLeaseHeld) && !errors.Is(err, errLeaseLost) && !errors.Is(err, asynq.ErrLeaseExpired)
		},
		// RetryDelayFunc is server-wide: webhook deliveries keep their own
		// schedule.
		RetryDelayFunc: func(n int, err error, t *asynq.Task) time.Duration {
			if t != nil && t.Type() == TypeWebhookDelivery {
				return webhookRetryDelay(n, err)
			}
			if errors.Is(err, errLeaseHeld) || errors.Is(err, errLeaseLost) || errors.Is(err, asynq.ErrLeaseExpired) {
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
	}
	w := &Workers{}
	if cfg.BackupConcurrency > 0 {
		delete(queues, QueueBackups)
		bc := base
		bc.Concurrency = cfg.BackupConcurrency
		bc.Queues = map[string]int{QueueBackups: 1}
		w.servers = append(w.servers, asynq.NewServerFromRedisClient(rdb, bc))
	}
	mc := base
	mc.Concurrency = cfg.Concurrency
	mc.Queues = queues
	w.servers = append([]*asynq.Server{asynq.NewServerFromRedisClient(rdb, mc)}, w.servers...)
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
	return w, mux
}
