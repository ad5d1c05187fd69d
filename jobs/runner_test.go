package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/oklog/ulid/v2"
	"github.com/redis/go-redis/v9"

	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/lock"
	"github.com/hubexport/hubexport/internal/store"
	"github.com/hubexport/hubexport/internal/testenv"
	"github.com/hubexport/hubexport/storage"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// fixture is a job store, a Redis and a local object store.
type fixture struct {
	store   *store.Store
	rdb     *redis.Client
	objects export.ObjectStore
	dir     string
	runner  *Runner
	queue   *Client
}

// backends gives a test a migrated PostgreSQL database, its own Redis and
// a local object store in a temporary folder.
func backends(t *testing.T) (*pgxpool.Pool, *redis.Client, export.ObjectStore, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs PostgreSQL and Redis")
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := store.Migrate(ctx, pool, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	opts, err := redis.ParseURL(testenv.NewRedis(t).URL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	dir := t.TempDir()
	objects, err := storage.Open(ctx, storage.Config{URL: "file://" + dir, SigningKey: bytes.Repeat([]byte("k"), 32), PublicURL: "http://localhost"})
	if err != nil {
		t.Fatal(err)
	}
	return pool, rdb, objects, dir
}

func setup(t *testing.T) *fixture {
	t.Helper()
	pool, rdb, objects, dir := backends(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f := &fixture{store: store.New(pool, time.Now), rdb: rdb, objects: objects, dir: dir}
	f.runner = &Runner{Store: f.store, Objects: objects, Registry: export.NewRegistry(export.ProbeLogSpec()), Redis: rdb,
		Log: log, Now: time.Now, Retention: time.Hour, LeaseTTL: 3 * time.Second, ProgressEvery: 10 * time.Millisecond}
	f.queue = &Client{Client: asynq.NewClientFromRedisClient(rdb), Inspector: asynq.NewInspectorFromRedisClient(rdb)}
	return f
}

func (f *fixture) newJob(t *testing.T, params string) *export.Job {
	t.Helper()
	now := time.Now().UTC()
	j, _, err := f.store.CreateJob(context.Background(), &export.Job{
		ID: "exp_" + ulid.Make().String(), Type: export.TypeProbeLogs, Format: export.FormatText, Status: export.StatusQueued,
		Params: json.RawMessage(params), UserID: -1, KeyID: -1, RequestHash: "h", CreatedAt: now, UpdatedAt: now,
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// lines produces n lines, checking for cancellation between them.
func lines(n int, each time.Duration) Producer {
	return func(ctx context.Context, _ *export.Job, w io.Writer, pr *Progress) (int64, error) {
		for i := range n {
			if err := ctx.Err(); err != nil {
				return int64(i), err
			}
			if _, err := io.WriteString(w, "line\n"); err != nil {
				return int64(i), err
			}
			pr.Set(int64(i+1), int64(n), "lines")
			time.Sleep(each)
		}
		return int64(n), nil
	}
}

func task(id string) *asynq.Task { return NewProbeLogsTask(id) }

func TestRunnerSucceedsAndIsIdempotent(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	j := f.newJob(t, `{}`)
	if err := f.runner.Run(ctx, task(j.ID), lines(3, 0)); err != nil {
		t.Fatal(err)
	}
	got, _ := f.store.Job(ctx, j.ID)
	if got.Status != export.StatusSucceeded || got.Result.Rows != 3 || got.Result.SizeBytes != 15 || got.Attempts != 1 {
		t.Fatalf("job %+v result %+v", got, got.Result)
	}
	b, err := os.ReadFile(filepath.Join(f.dir, got.StorageKey))
	if err != nil || string(b) != "line\nline\nline\n" {
		t.Fatalf("artifact %q %v", b, err)
	}
	// A re-delivered task finds the job ended and does nothing.
	if err := f.runner.Run(ctx, task(j.ID), lines(5, 0)); err != nil {
		t.Fatal(err)
	}
	if again, _ := f.store.Job(ctx, j.ID); again.Attempts != 1 || again.Result.Rows != 3 {
		t.Fatalf("second delivery changed the job: %+v", again)
	}
}

// A re-delivered task never runs beside a live attempt of the same job.
func TestRunnerRespectsALiveLease(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	j := f.newJob(t, `{}`)
	held, err := lock.Acquire(ctx, f.rdb, leaseKey(j.ID), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	err = f.runner.Run(ctx, task(j.ID), lines(1, 0))
	if !errors.Is(err, errLeaseHeld) {
		t.Fatalf("run beside a live lease: %v", err)
	}
	if got, _ := f.store.Job(ctx, j.ID); got.Status != export.StatusQueued || got.Attempts != 0 {
		t.Fatalf("job touched: %+v", got)
	}
	_ = held.Release(ctx)
	if err := f.runner.Run(ctx, task(j.ID), lines(1, 0)); err != nil {
		t.Fatal(err)
	}
}

// A job canceled while it runs stops, and leaves no file.
func TestRunnerStopsOnCancel(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	j := f.newJob(t, `{}`)
	done := make(chan error, 1)
	// The producer would write for an hour; it signals once it is writing,
	// so the cancel lands mid-run and not before the attempt started.
	writing := make(chan struct{})
	var once sync.Once
	endless := func(ctx context.Context, job *export.Job, w io.Writer, pr *Progress) (int64, error) {
		return lines(360000, 10*time.Millisecond)(ctx, job, writerFunc(func(p []byte) (int, error) {
			once.Do(func() { close(writing) })
			return w.Write(p)
		}), pr)
	}
	go func() { done <- f.runner.Run(ctx, task(j.ID), endless) }()
	select {
	case <-writing:
	case err := <-done:
		t.Fatalf("the attempt ended before writing: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the attempt never started writing")
	}
	if _, err := f.store.CancelJob(ctx, j.ID, &export.JobError{Code: "canceled", Message: "test"}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("canceled run returned %v (Asynq would retry it)", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the attempt did not stop within 5 s of the cancel")
	}
	if got, _ := f.store.Job(ctx, j.ID); got.Status != export.StatusCanceled {
		t.Fatalf("job %s", got.Status)
	}
	var files []string
	filepath.Walk(f.dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != 0 {
		t.Fatalf("files left: %v", files)
	}
}

// Bad stored input fails the job at once; a transient error is retried
// with the job back in the queue, then fails on the last attempt.
func TestRunnerFailures(t *testing.T) {
	t.Parallel()
	f := setup(t)
	bad := func(context.Context, *export.Job, io.Writer, *Progress) (int64, error) {
		return 0, export.Invalid("params.x", "is wrong")
	}
	flaky := func(context.Context, *export.Job, io.Writer, *Progress) (int64, error) {
		return 0, errors.New("connection reset")
	}
	j := f.newJob(t, `{}`)
	err := f.runner.Run(context.Background(), task(j.ID), bad)
	if !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("bad input: %v", err)
	}
	if got, _ := f.store.Job(context.Background(), j.ID); got.Status != export.StatusFailed || got.Error.Code != "invalid_request" {
		t.Fatalf("bad input job: %+v", got)
	}

	// Through a real worker: one retry allowed, the transient error every time.
	j = f.newJob(t, `{}`)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, _ := NewServer(f.rdb, WorkerConfig{Concurrency: 1, ShutdownTimeout: time.Second, RetryBase: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond}, Handlers{}, log)
	mux := asynq.NewServeMux()
	mux.HandleFunc(TypeProbeLogs, func(ctx context.Context, t *asynq.Task) error { return f.runner.Run(ctx, t, flaky) })
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	if _, err := f.queue.Client.Enqueue(newJobTask(TypeProbeLogs, j.ID, asynq.Queue(probeLogsQueue), asynq.MaxRetry(1))); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, _ := f.store.Job(context.Background(), j.ID)
		if got.Status == export.StatusFailed {
			if got.Attempts != 2 || got.Error.Code != "export_failed" || got.Error.Detail != "connection reset" || got.Error.Message != msgExportFailed {
				t.Fatalf("after the last attempt: %+v %+v", got, got.Error)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job still %s after 20 s", got.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The reconciler re-enqueues a job whose task Redis lost, and fails one
// whose task Asynq archived.
func TestReconciler(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	lost := f.newJob(t, `{}`)
	rec := &Reconciler{Store: f.store, Queue: f.queue, Inspector: f.queue.Inspector,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Interval: time.Second, Quiet: 0}
	n, err := rec.Once(ctx)
	if err != nil || n != 1 {
		t.Fatalf("first pass: %d %v", n, err)
	}
	if info, err := f.queue.Inspector.GetTaskInfo(QueueOf(export.TypeProbeLogs), lost.ID); err != nil || info.State != asynq.TaskStatePending {
		t.Fatalf("task after reconcile: %+v %v", info, err)
	}
	// A second pass finds the task and leaves it alone.
	if n, err := rec.Once(ctx); err != nil || n != 0 {
		t.Fatalf("second pass: %d %v", n, err)
	}
	if err := f.queue.Inspector.ArchiveTask(QueueOf(export.TypeProbeLogs), lost.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := rec.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.store.Job(ctx, lost.ID); got.Status != export.StatusFailed || got.Error.Code != "retries_exhausted" {
		t.Fatalf("archived task's job: %+v", got)
	}
}

// Attempts whose worker died never record their end. Crashes do not use up
// a job's retries; PoisonCrashes of them in a row fail it as a poison job.
func TestRunnerCrashedAttempts(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	crash := func(j *export.Job, n int) {
		t.Helper()
		for i := range n {
			if _, err := f.store.BeginAttempt(ctx, j.ID, fmt.Sprintf("crashed-%d-%s", i, ulid.Make())); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Many crashes, then an attempt that runs: the job succeeds.
	j := f.newJob(t, `{}`)
	crash(j, PoisonCrashes-1)
	if err := f.runner.Run(ctx, task(j.ID), lines(2, 0)); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.store.Job(ctx, j.ID); got.Status != export.StatusSucceeded || got.Attempts != PoisonCrashes {
		t.Fatalf("after %d crashes: %s, %d attempts", PoisonCrashes-1, got.Status, got.Attempts)
	}

	// Crashes between failures do not count: through a real worker, a job
	// with one retry fails on its second own failure, with three crashed
	// attempts before each.
	j = f.newJob(t, `{}`)
	srv, _ := NewServer(f.rdb, WorkerConfig{Concurrency: 1, ShutdownTimeout: time.Second, RetryBase: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond}, Handlers{},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	mux := asynq.NewServeMux()
	mux.HandleFunc(TypeProbeLogs, func(ctx context.Context, tk *asynq.Task) error {
		crash(j, 3)
		return f.runner.Run(ctx, tk, func(context.Context, *export.Job, io.Writer, *Progress) (int64, error) {
			return 0, errors.New("connection reset")
		})
	})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	if _, err := f.queue.Client.Enqueue(newJobTask(TypeProbeLogs, j.ID, asynq.Queue(probeLogsQueue), asynq.MaxRetry(1))); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, _ := f.store.Job(ctx, j.ID)
		if got.Status == export.StatusFailed {
			if got.Attempts != 8 || got.Error.Code != "export_failed" {
				t.Fatalf("after two failures: %d attempts, %+v", got.Attempts, got.Error)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job still %s after 20 s, %d attempts", got.Status, got.Attempts)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A panicking attempt failed on its own: it is no crash.
	j = f.newJob(t, `{}`)
	func() {
		defer func() { _ = recover() }()
		_ = f.runner.Run(ctx, task(j.ID), func(context.Context, *export.Job, io.Writer, *Progress) (int64, error) {
			panic("bug")
		})
	}()
	if failed, crashed, err := f.store.AttemptHistory(ctx, j.ID, "next"); err != nil || failed != 1 || crashed != 0 {
		t.Fatalf("after a panic: %d failed, %d crashed (%v)", failed, crashed, err)
	}

	// PoisonCrashes crashes in a row: the next attempt fails the job.
	j = f.newJob(t, `{}`)
	crash(j, PoisonCrashes)
	ran := false
	err := f.runner.Run(ctx, task(j.ID), func(context.Context, *export.Job, io.Writer, *Progress) (int64, error) {
		ran = true
		return 0, nil
	})
	if !errors.Is(err, asynq.SkipRetry) || ran {
		t.Fatalf("poison job: %v, ran %v", err, ran)
	}
	got, _ := f.store.Job(ctx, j.ID)
	if got.Status != export.StatusFailed || got.Error.Code != "poison_job" ||
		!strings.Contains(got.Error.Message, fmt.Sprintf("during each of the last %d attempts", PoisonCrashes)) {
		t.Fatalf("poison job: %s %+v", got.Status, got.Error)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// An attempt whose job lease is deleted under it stops at the next renewal
// and hands the job back to the queue, saying why.
func TestRunnerLeaseLost(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.runner.LeaseTTL = 600 * time.Millisecond
	ctx := context.Background()
	j := f.newJob(t, `{}`)
	err := f.runner.Run(ctx, task(j.ID), func(ctx context.Context, _ *export.Job, _ io.Writer, _ *Progress) (int64, error) {
		if err := f.rdb.Del(ctx, leaseKey(j.ID)).Err(); err != nil {
			return 0, err
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(5 * time.Second):
			return 0, errors.New("still running 5 s after the lease was deleted")
		}
	})
	if !errors.Is(err, errLeaseLost) {
		t.Fatalf("Run returned %v", err)
	}
	got, err := f.store.Job(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != export.StatusQueued || got.Error == nil || got.Error.Code != "lease_lost" {
		t.Fatalf("job %s, error %+v", got.Status, got.Error)
	}
}
