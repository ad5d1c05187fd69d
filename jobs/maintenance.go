package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/lock"
	"github.com/hubexport/hubexport/internal/pgdump"
)

// Maintenance task types (wire contracts: never rename).
const (
	// TypeCleanup deletes expired artifacts, the unfinished uploads of ended
	// jobs and restore uploads never restored within UploadRetention.
	TypeCleanup = "maintenance:cleanup"
	// TypeSweep removes unfinished writes older than SweepAge, whoever left
	// them (a crashed worker).
	TypeSweep = "maintenance:sweep"
)

// SweepAge is how old an unfinished write must be before the sweep removes
// it: long enough that no live upload is touched.
const SweepAge = 6 * time.Hour

// NewCleanupTask builds a cleanup task.
func NewCleanupTask() *asynq.Task {
	return asynq.NewTask(TypeCleanup, nil, asynq.Queue(QueueMaintenance), asynq.MaxRetry(0), asynq.Timeout(10*time.Minute))
}

// NewSweepTask builds a sweep task.
func NewSweepTask() *asynq.Task {
	return asynq.NewTask(TypeSweep, nil, asynq.Queue(QueueMaintenance), asynq.MaxRetry(0), asynq.Timeout(30*time.Minute))
}

// Maintenance runs the periodic housekeeping.
type Maintenance struct {
	Store   JobStore
	Objects export.ObjectStore
	Redis   redis.UniversalClient
	Log     *slog.Logger
	Now     func() time.Time
	// Registry lays out each type's artifacts (where leftovers lie); nil
	// assumes the default layout.
	Registry *export.Registry
	// UploadRetention is how long a restore upload (export.UploadsPrefix)
	// is kept after it was written; a successful restore deletes it sooner.
	// The app sets it to ARTIFACT_RETENTION. Zero keeps uploads forever.
	UploadRetention time.Duration
	// Uploads holds the records of restore uploads; a stale record goes
	// with its object.
	Uploads export.UploadStore
	// VerifyAdmin, if set, is VERIFY_DATABASE_URL: the cleanup drops the
	// scratch databases of restore drills that no longer run.
	VerifyAdmin *pgdump.Conn
}

// cleanupLockTTL bounds how long a killed cleanup keeps the others waiting.
const cleanupLockTTL = 5 * time.Second

// Cleanup handles TypeCleanup. When several schedulers enqueue the same
// tick, the first run holds a short lock and the others return at once.
func (m *Maintenance) Cleanup(ctx context.Context, _ *asynq.Task) error {
	// A short lease kept while the cleanup runs: a process killed mid-cleanup
	// holds up the others' cleanups for cleanupLockTTL, not for as long as a
	// cleanup may take.
	l, err := lock.Acquire(ctx, m.Redis, "hubexport:maintenance:cleanup", cleanupLockTTL)
	if errors.Is(err, lock.ErrHeld) {
		return nil
	}
	if err != nil {
		return err
	}
	defer l.Release(context.WithoutCancel(ctx))
	ctx, cancel := context.WithCancelCause(ctx)
	kept := make(chan struct{})
	go func() {
		defer close(kept)
		if err := l.Keep(ctx, lock.KeepOptions{Log: m.Log}); err != nil {
			cancel(err)
		}
	}()
	defer func() { cancel(nil); <-kept }()
	expired, leftovers, err := m.RunCleanup(ctx)
	if expired+leftovers > 0 {
		m.Log.InfoContext(ctx, "cleanup_done", "expired", expired, "leftovers", leftovers)
	}
	return err
}

// RunCleanup deletes expired artifacts (their jobs then read expired), the
// unfinished uploads of ended jobs whose abort failed at the time, the
// restore uploads older than UploadRetention and the scratch databases of
// drills that no longer run. expired counts both the
// expired artifacts and the expired uploads.
func (m *Maintenance) RunCleanup(ctx context.Context) (expired, leftovers int, err error) {
	for {
		jobs, err := m.Store.ExpiredArtifacts(ctx, 100)
		if err != nil {
			return expired, leftovers, err
		}
		for _, j := range jobs {
			if err := export.DeleteArtifact(ctx, m.Objects, j.StorageKey); err != nil {
				return expired, leftovers, fmt.Errorf("jobs: delete expired artifact of %s: %w", j.ID, err)
			}
			if err := m.Store.Expire(ctx, j.ID); err != nil {
				return expired, leftovers, err
			}
			m.Log.InfoContext(ctx, "artifact_expired", "job_id", j.ID, "storage_key", j.StorageKey)
			expired++
		}
		if len(jobs) < 100 {
			break
		}
	}
	jobs, err := m.Store.WithLeftovers(ctx, 100)
	if err != nil {
		return expired, leftovers, err
	}
	for _, j := range jobs {
		n, err := m.Objects.AbortPending(ctx, artifactPrefix(m.Registry, j))
		if err != nil {
			m.Log.WarnContext(ctx, "leftovers_abort_failed", "job_id", j.ID, "error", err)
			continue
		}
		if err := m.Store.MarkLeftovers(ctx, j.ID, false); err != nil {
			return expired, leftovers, err
		}
		leftovers += n
	}
	n, err := m.expireUploads(ctx)
	expired += n
	if err != nil {
		return expired, leftovers, err
	}
	_, err = m.dropOrphanDrills(ctx)
	return expired, leftovers, err
}

// expireUploads deletes the restore uploads created more than
// UploadRetention ago (object, then record), and the committed objects
// under export.UploadsPrefix last written before then whatever their record
// says, logging upload_expired for each.
func (m *Maintenance) expireUploads(ctx context.Context) (int, error) {
	if m.UploadRetention <= 0 {
		return 0, nil
	}
	before := m.Now().Add(-m.UploadRetention)
	n := 0
	for m.Uploads != nil {
		ups, err := m.Uploads.StaleUploads(ctx, before, 100)
		if err != nil {
			return n, fmt.Errorf("jobs: list expired uploads: %w", err)
		}
		for _, u := range ups {
			key := export.UploadKey(u.ID)
			if err := m.Objects.Delete(ctx, key); err != nil {
				return n, fmt.Errorf("jobs: delete expired upload %s: %w", key, err)
			}
			if err := m.Uploads.DeleteUpload(ctx, u.ID); err != nil {
				return n, fmt.Errorf("jobs: delete record of upload %s: %w", u.ID, err)
			}
			m.Log.InfoContext(ctx, "upload_expired", "upload_id", u.ID, "storage_key", key)
			n++
		}
		if len(ups) < 100 {
			break
		}
	}
	keys, err := m.Objects.ListOlder(ctx, export.UploadsPrefix, before)
	if err != nil {
		return n, fmt.Errorf("jobs: list expired uploads: %w", err)
	}
	for _, key := range keys {
		if err := m.Objects.Delete(ctx, key); err != nil {
			return n, fmt.Errorf("jobs: delete expired upload %s: %w", key, err)
		}
		m.Log.InfoContext(ctx, "upload_expired", "storage_key", key)
		n++
	}
	return n, nil
}

// Sweep handles TypeSweep.
func (m *Maintenance) Sweep(ctx context.Context, _ *asynq.Task) error {
	n, err := m.Objects.Sweep(ctx, m.Now().Add(-SweepAge))
	if n > 0 {
		m.Log.InfoContext(ctx, "leftovers_swept", "count", n)
	}
	return err
}

// Run runs Cleanup every cleanupEvery and Sweep every hour until ctx ends.
// Every role runs it, so leftovers go away whichever processes a deployment
// runs; Cleanup's lock keeps concurrent passes from doing the work twice.
func (m *Maintenance) Run(ctx context.Context, cleanupEvery time.Duration) {
	lastSweep := time.Time{}
	everyInterval(ctx, cleanupEvery, m.Log, "cleanup_failed", func(ctx context.Context) error {
		err := m.Cleanup(ctx, nil)
		if time.Since(lastSweep) >= time.Hour {
			lastSweep = time.Now()
			err = errors.Join(err, m.Sweep(ctx, nil))
		}
		return err
	})
}

// NewScheduler builds the Asynq scheduler of the periodic maintenance.
// Several schedulers may run; Cleanup's lock and Sweep's idempotence make
// duplicate ticks harmless.
func NewScheduler(rdb redis.UniversalClient, log *slog.Logger, cleanupEvery time.Duration) (*asynq.Scheduler, error) {
	conn, err := schedulerRedis(rdb)
	if err != nil {
		return nil, err
	}
	s := asynq.NewScheduler(conn, &asynq.SchedulerOpts{
		Location: time.UTC,
		Logger:   asynqLogger{log},
		LogLevel: asynq.WarnLevel,
		//lint:ignore SA1019 PostEnqueueFunc is given no task when enqueueing fails; this names its type in the log.
		EnqueueErrorHandler: func(t *asynq.Task, _ []asynq.Option, err error) {
			log.Warn("periodic_enqueue_failed", "task_type", t.Type(), "error", err)
		},
	})
	if _, err := s.Register(fmt.Sprintf("@every %s", cleanupEvery), NewCleanupTask()); err != nil {
		return nil, fmt.Errorf("jobs: register cleanup: %w", err)
	}
	if _, err := s.Register("@every 1h", NewSweepTask()); err != nil {
		return nil, fmt.Errorf("jobs: register sweep: %w", err)
	}
	return s, nil
}
