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

	a, err := r.begin(ctx, log, jobID, lease.Value())
	if a == nil {
		return err
	}
	defer a.end(ctx)
	if err := a.admit(ctx, t.Type(), retried); err != nil {
		return err
	}
	return a.run(ctx, lease, w)
}

// attempt is one run of a job by the holder of its lease: what the steps
// of RunWork share.
type attempt struct {
	r     *Runner
	job   *export.Job
	token string // the lease's value; the store checks it on every write
	log   *slog.Logger
	spec  export.TypeSpec
	// failedBefore earlier attempts failed on their own, out of budget
	// allowed retries.
	failedBefore, budget int
	started              time.Time
	// outcome is recorded when the attempt returns. One whose process
	// dies never records one, which is how the next attempt knows it
	// crashed; a panic is the attempt's own failure.
	outcome string
}

// begin makes the attempt holding token the job's owner. It returns a nil
// attempt (and the error for Asynq) when there is nothing to run.
func (r *Runner) begin(ctx context.Context, log *slog.Logger, jobID, token string) (*attempt, error) {
	job, err := r.Store.BeginAttempt(ctx, jobID, token)
	switch {
	case errors.Is(err, export.ErrJobEnded):
		log.InfoContext(ctx, "job_already_ended", "status", job.Status)
		return nil, nil
	case errors.Is(err, export.ErrNotFound):
		log.ErrorContext(ctx, "job_missing")
		return nil, fmt.Errorf("jobs: job %s has no record: %w", jobID, asynq.SkipRetry)
	case err != nil:
		return nil, err
	}
	return &attempt{r: r, job: job, token: token, log: log, outcome: outcomeFailed}, nil
}

// end records how the attempt ended.
func (a *attempt) end(ctx context.Context) {
	if err := a.r.Store.EndAttempt(context.WithoutCancel(ctx), a.job.ID, a.token, a.outcome); err != nil {
		a.log.WarnContext(ctx, "job_attempt_end_record_failed", "error", err)
	}
}

// admit fails the job at once when this worker cannot run its type or the
// job killed the worker too often, and otherwise works out the retry
// budget.
func (a *attempt) admit(ctx context.Context, taskType string, retried int) error {
	spec, ok := a.r.Registry.Spec(a.job.Type)
	if !ok {
		return a.failNow(ctx, &export.JobError{Code: "unsupported_type", Message: fmt.Sprintf("this worker cannot run %s exports; upgrade it", a.job.Type)}, false)
	}
	a.spec = spec
	failedBefore, crashed, err := a.r.Store.AttemptHistory(ctx, a.job.ID, a.token)
	if err != nil {
		a.log.WarnContext(ctx, "job_attempt_history_failed", "error", err)
		failedBefore, crashed = retried, 0
	}
	if crashed > 0 {
		a.log.WarnContext(ctx, "job_attempts_crashed", "crashed_in_a_row", crashed)
	}
	if crashed >= PoisonCrashes {
		return a.failNow(ctx, &export.JobError{Code: "poison_job", Message: fmt.Sprintf(
			"the worker process died (killed, out of memory or crashed) during each of the last %d attempts of this job, so it is not tried again; "+
				"check the worker's logs and memory limit, then create the export again", crashed)}, true)
	}
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	a.failedBefore, a.budget = failedBefore, failureBudget(taskType, maxRetry)
	return nil
}

// failNow fails the job before any work, without a retry.
func (a *attempt) failNow(ctx context.Context, e *export.JobError, leftovers bool) error {
	a.outcome = outcomeFailed
	err := a.r.Store.Fail(context.WithoutCancel(ctx), a.job.ID, a.token, e, leftovers)
	switch {
	case err == nil:
		a.r.notifyEnded(ctx, a.job.ID)
	case !errors.Is(err, export.ErrSuperseded):
		a.log.ErrorContext(ctx, "job_fail_record_failed", "code", e.Code, "error", err)
	}
	a.r.metrics().JobEnded(string(a.job.Type), string(export.StatusFailed), 0, 0, 0)
	a.log.WarnContext(ctx, "job_failed", "code", e.Code)
	return fmt.Errorf("jobs: %s: %w", e.Message, asynq.SkipRetry)
}

// run does w while the lease is kept, and records how it went.
func (a *attempt) run(ctx context.Context, lease *lock.Lease, w Work) error {
	a.log = a.log.With("job_type", a.job.Type, "attempt", a.job.Attempts)
	a.log.InfoContext(ctx, "job_started")
	a.started = a.r.Now()

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var keeper sync.WaitGroup
	keeper.Add(1)
	go func() {
		defer keeper.Done()
		a.keep(runCtx, cancel, lease)
	}()
	defer keeper.Wait()
	defer cancel(nil)

	pr := &Progress{store: a.r.Store, jobID: a.job.ID, token: a.token, every: a.r.ProgressEvery, cancel: cancel, log: a.log}
	key, res, err := a.work(runCtx, w, pr)
	if err == nil {
		if err = a.succeed(ctx, key, res); err == nil {
			return nil
		}
	}
	return a.fail(ctx, runCtx, err)
}

// work runs w: Act, or Produce into the job's artifact key (returned; ""
// for a job without an artifact) and then Verify.
func (a *attempt) work(ctx context.Context, w Work, pr *Progress) (string, export.Result, error) {
	if w.Act != nil {
		res, err := a.act(ctx, w.Act, pr)
		return "", res, err
	}
	filename := a.spec.Filename(a.job, a.job.CreatedAt)
	key := a.spec.ArtifactKey(a.job, filename)
	if n, err := a.r.Objects.AbortPending(ctx, a.spec.ArtifactPrefix(a.job)); err != nil {
		a.log.WarnContext(ctx, "leftovers_abort_failed", "error", err)
	} else {
		if n > 0 {
			a.log.InfoContext(ctx, "leftovers_aborted", "count", n)
		}
		// What an earlier attempt could not abort is gone now.
		a.markLeftovers(ctx, false)
	}
	res, err := a.stream(ctx, key, a.spec.ArtifactContentType(a.job), w.Produce, pr)
	if err != nil {
		return key, res, err
	}
	res.Filename, res.Feed = filename, pr.feed // a feed's mark moves with the success
	// A scheduled backup is kept by its schedule's retention instead.
	if a.job.ScheduleID == "" {
		res.ExpiresAt = a.r.Now().Add(a.r.Retention).UTC().Truncate(time.Second)
	}
	if w.Verify != nil {
		err = a.verify(ctx, key, &res, w.Verify)
	}
	return key, res, err
}

// succeed records the job's success. When the job is no longer this
// attempt's, it returns why, deleting the artifact of a canceled job.
func (a *attempt) succeed(ctx context.Context, key string, res export.Result) error {
	err := a.r.Store.Succeed(ctx, a.job.ID, a.token, key, res)
	if err == nil {
		a.outcome = outcomeSucceeded
		took := a.r.Now().Sub(a.started)
		a.log.InfoContext(ctx, "job_succeeded", "rows", res.Rows, "size_bytes", res.SizeBytes,
			"duration_ms", took.Milliseconds())
		a.r.metrics().JobEnded(string(a.job.Type), string(export.StatusSucceeded), took, res.Rows, res.SizeBytes)
		a.r.notifyEnded(ctx, a.job.ID)
		return nil
	}
	if errors.Is(err, export.ErrFeedMoved) && key != "" {
		// It repeats rows another run of its feed sent: never leave it.
		if derr := export.DeleteArtifact(context.WithoutCancel(ctx), a.r.Objects, key); derr != nil {
			a.log.WarnContext(ctx, "feed_moved_artifact_delete_failed", "error", derr)
			a.markLeftovers(context.WithoutCancel(ctx), true)
		}
	}
	if !errors.Is(err, export.ErrSuperseded) {
		return err
	}
	// The file is complete but the job is no longer ours.
	if j, jerr := a.r.Store.Job(ctx, a.job.ID); jerr == nil && j.Status == export.StatusCanceled && key != "" {
		if derr := export.DeleteArtifact(context.WithoutCancel(ctx), a.r.Objects, key); derr != nil {
			a.log.WarnContext(ctx, "canceled_artifact_delete_failed", "error", derr)
			a.markLeftovers(context.WithoutCancel(ctx), true)
		}
	}
	return errSuperseded
}

// fail decides what the attempt's error means for the job and for Asynq.
func (a *attempt) fail(ctx, runCtx context.Context, err error) error {
	bg := context.WithoutCancel(ctx)
	a.outcome = outcomeInterrupted
	cause := context.Cause(runCtx)
	switch {
	case errors.Is(cause, errSuperseded) || errors.Is(err, errSuperseded):
		if a.canceled(bg) {
			return nil
		}
		a.log.WarnContext(ctx, "job_attempt_superseded")
		return errSuperseded
	case errors.Is(cause, errLeaseLost):
		a.log.WarnContext(ctx, "job_lease_lost", "error", cause)
		a.requeue(ctx, &export.JobError{Code: "lease_lost", Message: "the worker lost the job's lease (Redis unreachable?); the job will run again"})
		return errLeaseLost
	case ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded):
		// The worker is shutting down, or Asynq was asked to cancel the
		// task. A canceled job says so in PostgreSQL; otherwise the task
		// goes back to the queue and runs again.
		if a.canceled(bg) {
			return nil
		}
		a.requeue(ctx, &export.JobError{Code: "interrupted", Message: "the worker stopped during the export; the job will run again"})
		a.log.InfoContext(ctx, "job_interrupted")
		return ctx.Err()
	}

	a.outcome = outcomeFailed
	je, permanent := classify(err, ctx)
	if permanent || a.failedBefore >= a.budget {
		ferr := a.r.Store.Fail(bg, a.job.ID, a.token, je, false)
		if ferr != nil && !errors.Is(ferr, export.ErrSuperseded) {
			a.log.ErrorContext(ctx, "job_fail_record_failed", "code", je.Code, "error", ferr)
			return ferr
		}
		if ferr == nil {
			a.r.notifyEnded(ctx, a.job.ID)
		}
		a.log.WarnContext(ctx, "job_failed", "code", je.Code, "error", err)
		a.ended(export.StatusFailed)
		return fmt.Errorf("jobs: %w: %w", err, asynq.SkipRetry)
	}
	a.requeue(ctx, &export.JobError{Code: je.Code, Detail: je.Detail,
		Message: fmt.Sprintf("attempt %d of %d failed: %s; retrying", a.failedBefore+1, a.budget+1, je.Message)})
	a.log.WarnContext(ctx, "job_attempt_failed", "code", je.Code, "error", err)
	return err
}

// canceled reports whether the job was canceled, which ends the attempt
// quietly.
func (a *attempt) canceled(ctx context.Context) bool {
	j, err := a.r.Store.Job(ctx, a.job.ID)
	if err != nil {
		a.log.WarnContext(ctx, "job_read_failed", "error", err)
		return false
	}
	if j.Status != export.StatusCanceled {
		return false
	}
	a.log.InfoContext(ctx, "job_canceled")
	a.ended(export.StatusCanceled)
	return true
}

// requeue records that the job will run again, with e as what went wrong.
// A job taken over by another attempt is that attempt's to record.
func (a *attempt) requeue(ctx context.Context, e *export.JobError) {
	err := a.r.Store.Requeue(context.WithoutCancel(ctx), a.job.ID, a.token, e)
	if err != nil && !errors.Is(err, export.ErrSuperseded) {
		a.log.ErrorContext(ctx, "job_requeue_record_failed", "code", e.Code, "error", err)
	}
}

// markLeftovers records whether the job may have left files in storage
// for the reconciler.
func (a *attempt) markLeftovers(ctx context.Context, leftovers bool) {
	if err := a.r.Store.MarkLeftovers(ctx, a.job.ID, leftovers); err != nil {
		a.log.WarnContext(ctx, "leftovers_mark_failed", "leftovers", leftovers, "error", err)
	}
}

func (a *attempt) ended(s export.Status) {
	a.r.metrics().JobEnded(string(a.job.Type), string(s), a.r.Now().Sub(a.started), 0, 0)
}

// keep renews the job lease and checks that the attempt still owns the job,
// cancelling the attempt as soon as either is no longer true.
func (a *attempt) keep(ctx context.Context, cancel context.CancelCauseFunc, lease *lock.Lease) {
	err := lease.Keep(ctx, lock.KeepOptions{Log: a.log, Check: func(ctx context.Context) error {
		if err := a.r.Store.CheckAttempt(ctx, a.job.ID, a.token); errors.Is(err, export.ErrSuperseded) {
			return errSuperseded
		}
		return nil
	}})
	switch {
	case errors.Is(err, lock.ErrLost):
		cancel(fmt.Errorf("%w: %w", errLeaseLost, err))
	case err != nil:
		cancel(err)
	}
}

// stream runs produce into a new upload at key and commits it.
func (a *attempt) stream(ctx context.Context, key, contentType string, produce Producer, pr *Progress) (export.Result, error) {
	up, err := a.r.Objects.Create(ctx, key, contentType)
	if err != nil {
		return export.Result{}, &storageError{err}
	}
	hw := &hashWriter{w: up, h: sha256.New()}
	bw := bufio.NewWriterSize(hw, 256<<10)
	rows, err := produce(ctx, a.job, bw, pr)
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
			a.log.WarnContext(ctx, "upload_abort_failed", "error", aerr)
			a.markLeftovers(context.WithoutCancel(ctx), true)
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
func (a *attempt) act(ctx context.Context, act func(context.Context, *export.Job, *Progress) (map[string]any, error), pr *Progress) (export.Result, error) {
	details, err := act(ctx, a.job, pr)
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
func (a *attempt) verify(ctx context.Context, key string, res *export.Result,
	check func(context.Context, *export.Job, string, *export.Result) error) error {
	err := check(ctx, a.job, key, res)
	if err == nil && ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	if err == nil {
		return nil
	}
	if derr := export.DeleteArtifact(context.WithoutCancel(ctx), a.r.Objects, key); derr != nil {
		a.log.WarnContext(ctx, "unverified_artifact_delete_failed", "storage_key", key, "error", derr)
	}
	if ctx.Err() == nil {
		a.log.WarnContext(ctx, "artifact_verify_failed", "storage_key", key, "error", err)
	}
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
