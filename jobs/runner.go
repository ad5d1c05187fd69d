package jobs

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/lock"
)

// Queue names. Session snapshots expire within minutes, so their queue is
// served first.
const (
	QueueCritical    = "critical"
	QueueExports     = "exports"
	QueueBackups     = "backups"
	QueueMaintenance = "maintenance"
)

// Producer writes one job's artifact to w, reporting progress through pr,
// and returns the number of rows (lines, objects) written. Returning an
// *export.Error of kind KindInvalid fails the job without a retry.
type Producer func(ctx context.Context, job *export.Job, w io.Writer, pr *Progress) (rows int64, err error)

// Runner is the lifecycle every export attempt shares: take the job's
// lease, mark it running, stream the producer's output through a SHA-256
// into storage, then record success, a retry or a failure in PostgreSQL.
type Runner struct {
	Store    JobStore
	Objects  export.ObjectStore
	Registry *export.Registry
	Redis    redis.UniversalClient
	Log      *slog.Logger
	Now      func() time.Time
	// Retention is how long artifacts are kept.
	Retention time.Duration
	// LeaseTTL is the job lease's TTL; it is renewed every third of it.
	LeaseTTL time.Duration
	// ProgressEvery is the least time between two progress writes.
	ProgressEvery time.Duration
	// Metrics, if set, is told when a job ends.
	Metrics Metrics
	// Notify, if set, hears of the jobs an attempt ends (webhooks).
	Notify export.Notifier

	inflight sync.WaitGroup
}

// Wait waits up to timeout for running attempts to return. Asynq's
// Shutdown hands unfinished tasks back and returns without waiting for
// their handlers; this lets those handlers record the hand-back before the
// connections close.
func (r *Runner) Wait(timeout time.Duration) bool {
	done := make(chan struct{})
	go func() { r.inflight.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}

var (
	// errLeaseHeld: another attempt of the same job is alive. Not a
	// failure: the task comes back shortly without using up a retry.
	errLeaseHeld = errors.New("jobs: another attempt of this job holds its lease")
	// errLeaseLost: this attempt's lease expired; another may take over.
	errLeaseLost = errors.New("jobs: job lease lost")
	// errSuperseded: the job was canceled or taken over.
	errSuperseded = errors.New("jobs: attempt superseded")
)

// storageError marks a failure to write to the object store.
type storageError struct{ err error }

func (e *storageError) Error() string { return "storage: " + e.err.Error() }
func (e *storageError) Unwrap() error { return e.err }

func leaseKey(jobID string) string { return "hubexport:job:" + jobID + ":lease" }

// artifactPrefix is the folder of job j's artifact, as its type's spec in
// reg lays it out (the default layout for a type reg does not know).
func artifactPrefix(reg *export.Registry, j *export.Job) string {
	var spec export.TypeSpec
	if reg != nil {
		spec, _ = reg.Spec(j.Type)
	}
	return spec.ArtifactPrefix(j)
}

// Work is what one task type does inside the shared attempt lifecycle:
// either Produce (with an optional Verify) or Act.
type Work struct {
	// Produce writes the job's artifact.
	Produce Producer
	// Verify, if set, checks the committed artifact at key before the job
	// succeeds, and may add to res.Details. When it fails the artifact is
	// deleted and its error fails (or retries) the attempt.
	Verify func(ctx context.Context, job *export.Job, key string, res *export.Result) error
	// Act does the work of a type that makes no artifact and returns the
	// result's details.
	Act func(ctx context.Context, job *export.Job, pr *Progress) (map[string]any, error)
}

// Run runs one attempt of the task's job with produce.
func (r *Runner) Run(ctx context.Context, t *asynq.Task, produce Producer) error {
	return r.RunWork(ctx, t, Work{Produce: produce})
}

// RunWork runs one attempt of the task's job with w.
func (r *Runner) RunWork(ctx context.Context, t *asynq.Task, w Work) error {
	r.inflight.Add(1)
	defer r.inflight.Done()
	jobID, err := parseJobPayload(t)
	if err != nil {
		return err
	}
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	log := r.Log.With("job_id", jobID, "task_type", t.Type(), "retry", retried)

	lease, err := lock.Acquire(ctx, r.Redis, leaseKey(jobID), r.LeaseTTL)
	if errors.Is(err, lock.ErrHeld) {
		log.InfoContext(ctx, "job_lease_held")
		return errLeaseHeld
	}
	if err != nil {
		return fmt.Errorf("jobs: %w", err)
	}
	defer func() {
		if err := lease.Release(context.WithoutCancel(ctx)); err != nil {
			log.WarnContext(ctx, "job_lease_release_failed", "error", err)
		}
	}()
	token := lease.Value()

	job, err := r.Store.BeginAttempt(ctx, jobID, token)
	switch {
	case errors.Is(err, export.ErrJobEnded):
		log.InfoContext(ctx, "job_already_ended", "status", job.Status)
		return nil
	case errors.Is(err, export.ErrNotFound):
		log.ErrorContext(ctx, "job_missing")
		return fmt.Errorf("jobs: job %s has no record: %w", jobID, asynq.SkipRetry)
	case err != nil:
		return err
	}
	// An attempt that returns records how it ended; one whose process dies
	// here never does, which is how the next attempt knows it crashed. A
	// panic is the attempt's own failure.
	outcome := outcomeFailed
	defer func() {
		if err := r.Store.EndAttempt(context.WithoutCancel(ctx), jobID, token, outcome); err != nil {
			log.WarnContext(ctx, "job_attempt_end_record_failed", "error", err)
		}
	}()
	failFast := func(e *export.JobError, leftovers bool) error {
		outcome = outcomeFailed
		if r.Store.Fail(context.WithoutCancel(ctx), jobID, token, e, leftovers) == nil {
			r.notifyEnded(ctx, jobID)
		}
		r.metrics().JobEnded(string(job.Type), string(export.StatusFailed), 0, 0, 0)
		log.WarnContext(ctx, "job_failed", "code", e.Code)
		return fmt.Errorf("jobs: %s: %w", e.Message, asynq.SkipRetry)
	}
	spec, ok := r.Registry.Spec(job.Type)
	if !ok {
		return failFast(&export.JobError{Code: "unsupported_type", Message: fmt.Sprintf("this worker cannot run %s exports; upgrade it", job.Type)}, false)
	}
	failedBefore, crashed, err := r.Store.AttemptHistory(ctx, jobID, token)
	if err != nil {
		log.WarnContext(ctx, "job_attempt_history_failed", "error", err)
		failedBefore, crashed = retried, 0
	}
	if crashed > 0 {
		log.WarnContext(ctx, "job_attempts_crashed", "crashed_in_a_row", crashed)
	}
	if crashed >= PoisonCrashes {
		return failFast(&export.JobError{Code: "poison_job", Message: fmt.Sprintf(
			"the worker process died (killed, out of memory or crashed) during each of the last %d attempts of this job, so it is not tried again; "+
				"check the worker's logs and memory limit, then create the export again", crashed)}, true)
	}
	budget := failureBudget(t.Type(), maxRetry)
	log = log.With("job_type", job.Type, "attempt", job.Attempts)
	log.InfoContext(ctx, "job_started")
	started := r.Now()

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var keeper sync.WaitGroup
	keeper.Add(1)
	go func() {
		defer keeper.Done()
		r.keep(runCtx, cancel, lease, jobID, token)
	}()
	defer keeper.Wait()
	defer cancel(nil)

	pr := &Progress{store: r.Store, jobID: jobID, token: token, every: r.ProgressEvery, cancel: cancel, log: log}
	var (
		key       string // "" for a job without an artifact
		res       export.Result
		uploadErr error
	)
	if w.Act != nil {
		res, uploadErr = r.act(runCtx, job, w.Act, pr)
	} else {
		filename := spec.Filename(job, job.CreatedAt)
		key = spec.ArtifactKey(job, filename)
		if n, err := r.Objects.AbortPending(runCtx, spec.ArtifactPrefix(job)); err != nil {
			log.WarnContext(ctx, "leftovers_abort_failed", "error", err)
		} else {
			if n > 0 {
				log.InfoContext(ctx, "leftovers_aborted", "count", n)
			}
			// What an earlier attempt could not abort is gone now.
			if err := r.Store.MarkLeftovers(ctx, jobID, false); err != nil {
				log.WarnContext(ctx, "leftovers_mark_failed", "error", err)
			}
		}
		res, uploadErr = r.stream(runCtx, job, key, spec.ArtifactContentType(job), w.Produce, pr)
		if uploadErr == nil {
			res.Filename, res.Feed = filename, pr.feed // a feed's mark moves with the success
			// A scheduled backup is kept by its schedule's retention instead.
			if job.ScheduleID == "" {
				res.ExpiresAt = r.Now().Add(r.Retention).UTC().Truncate(time.Second)
			}
		}
		if uploadErr == nil && w.Verify != nil {
			uploadErr = r.verify(runCtx, log, job, key, &res, w.Verify)
		}
	}
	if uploadErr == nil {
		err := r.Store.Succeed(ctx, jobID, token, key, res)
		if err == nil {
			outcome = outcomeSucceeded
			took := r.Now().Sub(started)
			log.InfoContext(ctx, "job_succeeded", "rows", res.Rows, "size_bytes", res.SizeBytes,
				"duration_ms", took.Milliseconds())
			r.metrics().JobEnded(string(job.Type), string(export.StatusSucceeded), took, res.Rows, res.SizeBytes)
			r.notifyEnded(ctx, jobID)
			return nil
		}
		// The file is complete but the job is no longer ours.
		uploadErr = err
		if errors.Is(err, export.ErrFeedMoved) && key != "" {
			// It repeats rows another run of its feed sent: never leave it.
			if derr := export.DeleteArtifact(context.WithoutCancel(ctx), r.Objects, key); derr != nil {
				log.WarnContext(ctx, "feed_moved_artifact_delete_failed", "error", derr)
			}
		}
		if errors.Is(err, export.ErrSuperseded) {
			uploadErr = errSuperseded
			if j, jerr := r.Store.Job(ctx, jobID); jerr == nil && j.Status == export.StatusCanceled && key != "" {
				if derr := export.DeleteArtifact(context.WithoutCancel(ctx), r.Objects, key); derr != nil {
					log.WarnContext(ctx, "canceled_artifact_delete_failed", "error", derr)
					_ = r.Store.MarkLeftovers(context.WithoutCancel(ctx), jobID, true)
				}
			}
		}
	}
	return r.failed(ctx, runCtx, log, job, token, uploadErr, failedBefore, budget, started, &outcome)
}

// keep renews the job lease and checks that the attempt still owns the job,
// cancelling the attempt as soon as either is no longer true.
func (r *Runner) keep(ctx context.Context, cancel context.CancelCauseFunc, lease *lock.Lease, jobID, token string) {
	every := r.LeaseTTL / 3
	t := time.NewTicker(every)
	defer t.Stop()
	lastRenewed := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		switch err := lease.Renew(ctx); {
		case err == nil:
			lastRenewed = time.Now()
		case errors.Is(err, lock.ErrLost):
			cancel(errLeaseLost)
			return
		case ctx.Err() != nil:
			return
		case time.Since(lastRenewed) >= r.LeaseTTL:
			cancel(fmt.Errorf("%w: %w", errLeaseLost, err))
			return
		}
		if err := r.Store.CheckAttempt(ctx, jobID, token); errors.Is(err, export.ErrSuperseded) {
			cancel(errSuperseded)
			return
		}
	}
}

// stream runs produce into a new upload at key and commits it.
func (r *Runner) stream(ctx context.Context, job *export.Job, key, contentType string, produce Producer, pr *Progress) (export.Result, error) {
	up, err := r.Objects.Create(ctx, key, contentType)
	if err != nil {
		return export.Result{}, &storageError{err}
	}
	hw := &hashWriter{w: up, h: sha256.New()}
	bw := bufio.NewWriterSize(hw, 256<<10)
	rows, err := produce(ctx, job, bw, pr)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = pr.Flush(ctx)
	}
	if err == nil && ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	if err == nil {
		if cerr := up.Commit(ctx); cerr != nil {
			err = &storageError{cerr}
		}
	}
	if err != nil {
		if aerr := up.Abort(context.WithoutCancel(ctx)); aerr != nil {
			r.Log.WarnContext(ctx, "upload_abort_failed", "job_id", job.ID, "error", aerr)
			_ = r.Store.MarkLeftovers(context.WithoutCancel(ctx), job.ID, true)
		}
		return export.Result{}, err
	}
	return export.Result{
		ContentType: contentType,
		SizeBytes:   hw.n,
		SHA256:      hex.EncodeToString(hw.h.Sum(nil)),
		Rows:        rows,
	}, nil
}

// act runs a job that makes no artifact.
func (r *Runner) act(ctx context.Context, job *export.Job, act func(context.Context, *export.Job, *Progress) (map[string]any, error), pr *Progress) (export.Result, error) {
	details, err := act(ctx, job, pr)
	if err == nil {
		err = pr.Flush(ctx)
	}
	if err == nil && ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	if err != nil {
		return export.Result{}, err
	}
	return export.Result{Details: details}, nil
}

// verify runs check on the committed artifact at key; an artifact that
// fails it is deleted, so it is never published.
func (r *Runner) verify(ctx context.Context, log *slog.Logger, job *export.Job, key string, res *export.Result,
	check func(context.Context, *export.Job, string, *export.Result) error) error {
	err := check(ctx, job, key, res)
	if err == nil && ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	if err == nil {
		return nil
	}
	bg := context.WithoutCancel(ctx)
	if derr := export.DeleteArtifact(bg, r.Objects, key); derr != nil {
		log.WarnContext(ctx, "unverified_artifact_delete_failed", "storage_key", key, "error", derr)
	}
	if ctx.Err() == nil {
		log.WarnContext(ctx, "artifact_verify_failed", "storage_key", key, "error", err)
	}
	return err
}

// failed decides what an attempt's error means for the job and for Asynq.
// failedBefore earlier attempts failed on their own, out of budget allowed
// retries; outcome is set to outcomeFailed when this one did too.
func (r *Runner) failed(ctx, runCtx context.Context, log *slog.Logger, job *export.Job, token string, err error, failedBefore, budget int, started time.Time, outcome *string) error {
	bg := context.WithoutCancel(ctx)
	ended := func(s export.Status) { r.metrics().JobEnded(string(job.Type), string(s), r.Now().Sub(started), 0, 0) }
	*outcome = outcomeInterrupted
	cause := context.Cause(runCtx)
	switch {
	case errors.Is(cause, errSuperseded) || errors.Is(err, errSuperseded):
		j, jerr := r.Store.Job(bg, job.ID)
		if jerr == nil && j.Status == export.StatusCanceled {
			log.InfoContext(ctx, "job_canceled")
			ended(export.StatusCanceled)
			return nil
		}
		log.WarnContext(ctx, "job_attempt_superseded")
		return errSuperseded
	case errors.Is(cause, errLeaseLost):
		log.WarnContext(ctx, "job_lease_lost", "error", cause)
		_ = r.Store.Requeue(bg, job.ID, token, &export.JobError{Code: "lease_lost", Message: "the worker lost the job's lease (Redis unreachable?); the job will run again"})
		return errLeaseLost
	case ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded):
		// The worker is shutting down, or Asynq was asked to cancel the
		// task. A canceled job says so in PostgreSQL; otherwise the task
		// goes back to the queue and runs again.
		if j, jerr := r.Store.Job(bg, job.ID); jerr == nil && j.Status == export.StatusCanceled {
			log.InfoContext(ctx, "job_canceled")
			ended(export.StatusCanceled)
			return nil
		}
		_ = r.Store.Requeue(bg, job.ID, token, &export.JobError{Code: "interrupted", Message: "the worker stopped during the export; the job will run again"})
		log.InfoContext(ctx, "job_interrupted")
		return ctx.Err()
	}

	*outcome = outcomeFailed
	je, permanent := classify(err, ctx)
	last := permanent || failedBefore >= budget
	if last {
		ferr := r.Store.Fail(bg, job.ID, token, je, false)
		if ferr != nil && !errors.Is(ferr, export.ErrSuperseded) {
			log.ErrorContext(ctx, "job_fail_record_failed", "error", ferr)
			return ferr
		}
		if ferr == nil {
			r.notifyEnded(ctx, job.ID)
		}
		log.WarnContext(ctx, "job_failed", "code", je.Code, "error", err)
		ended(export.StatusFailed)
		return fmt.Errorf("jobs: %w: %w", err, asynq.SkipRetry)
	}
	retryErr := &export.JobError{Code: je.Code, Message: fmt.Sprintf("attempt %d of %d failed: %s; retrying", failedBefore+1, budget+1, je.Message),
		Detail: je.Detail}
	if rerr := r.Store.Requeue(bg, job.ID, token, retryErr); rerr != nil && !errors.Is(rerr, export.ErrSuperseded) {
		log.ErrorContext(ctx, "job_requeue_record_failed", "error", rerr)
	}
	log.WarnContext(ctx, "job_attempt_failed", "code", je.Code, "error", err)
	return err
}

// Plain messages for failures whose cause is internal: the owner reads
// these; the cause goes to JobError.Detail, for administrators and logs.
const (
	msgExportFailed       = "the export failed because of an internal error; try again later, or ask an administrator to look at this job"
	msgStorageUnavailable = "could not write the file to storage; try again later, or ask an administrator to check the storage (STORAGE_URL)"
)

// classify turns an attempt's error into what the user reads (a stable
// code and a plain message, the raw cause kept apart as Detail), and says
// whether trying again could help.
func classify(err error, ctx context.Context) (*export.JobError, bool) {
	var (
		ee *export.Error
		se *storageError
	)
	switch {
	case errors.As(err, &ee):
		je := &export.JobError{Code: ee.Code, Message: ee.Message}
		if ee.Err != nil {
			je.Detail = ee.Err.Error()
		}
		return je, ee.Kind != export.KindInternal && ee.Kind != export.KindUnavailable
	case errors.As(err, &se):
		return &export.JobError{Code: "storage_unavailable", Message: msgStorageUnavailable, Detail: se.err.Error()}, false
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		return &export.JobError{Code: "timeout", Message: "the export ran past its time limit"}, false
	}
	return &export.JobError{Code: "export_failed", Message: msgExportFailed, Detail: err.Error()}, false
}

// hashWriter counts and hashes what goes to storage; its errors are
// storage errors.
type hashWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (hw *hashWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	hw.n += int64(n)
	if err != nil {
		return n, &storageError{err}
	}
	return n, nil
}

// Progress records an attempt's progress in PostgreSQL, at most once per
// interval. A write that finds the job canceled cancels the attempt.
type Progress struct {
	store  JobStore
	jobID  string
	token  string
	every  time.Duration
	cancel context.CancelCauseFunc
	log    *slog.Logger

	feed *export.FeedAdvance // set by a feed export (SetFeed)

	mu      sync.Mutex
	cur     export.Progress
	last    time.Time
	pending bool
}

// Set records done out of total (0: unknown) in unit.
func (p *Progress) Set(done, total int64, unit string) {
	p.mu.Lock()
	p.cur.Done, p.cur.Total, p.cur.Unit = done, total, unit
	p.pending = true
	due := time.Since(p.last) >= p.every
	p.mu.Unlock()
	if due {
		_ = p.Flush(context.Background())
	}
}

// Note records a phase or wait ("waiting for the backup lock") and writes it
// at once.
func (p *Progress) Note(ctx context.Context, note string) error {
	p.mu.Lock()
	p.cur.Note = note
	p.pending = true
	p.mu.Unlock()
	return p.Flush(ctx)
}

// Flush writes pending progress now.
func (p *Progress) Flush(ctx context.Context) error {
	p.mu.Lock()
	if !p.pending {
		p.mu.Unlock()
		return nil
	}
	cur := p.cur
	p.pending = false
	p.last = time.Now()
	p.mu.Unlock()
	err := p.store.SetProgress(ctx, p.jobID, p.token, cur)
	if errors.Is(err, export.ErrSuperseded) {
		p.cancel(errSuperseded)
		return errSuperseded
	}
	if err != nil {
		// Progress is advisory: a failed write is retried with the next.
		p.log.WarnContext(ctx, "progress_write_failed", "error", err)
	}
	return nil
}
