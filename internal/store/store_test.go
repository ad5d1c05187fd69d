package store

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func setup(t *testing.T) (*Store, *pgxpool.Pool) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := Migrate(ctx, pool, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	return New(pool, time.Now), pool
}

var seq int

func newJob(user int64, idem string) *export.Job {
	seq++
	now := time.Now().UTC()
	return &export.Job{
		ID: "exp_" + time.Now().Format("20060102150405.000000000") + string(rune('a'+seq%26)), Type: export.TypeProbeLogs,
		Format: export.FormatText, Status: export.StatusQueued, Params: []byte(`{"max_lines":10}`),
		UserID: user, KeyID: 1, IdempotencyKey: idem, RequestHash: "h", CreatedAt: now, UpdatedAt: now,
	}
}

func TestMigrateIsIdempotentAndStaysInItsSchema(t *testing.T) {
	t.Parallel()
	_, pool := setup(t)
	ctx := context.Background()
	// Several instances starting at once.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- Migrate(ctx, pool, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d tables in public (%v)", n, err)
	}
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM hubexport.schema_migrations`).Scan(&n); err != nil || n != len(ms) {
		t.Fatalf("%d migrations recorded, want %d (%v)", n, len(ms), err)
	}
}

func TestCapAndIdempotencyUnderConcurrency(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := context.Background()
	// Ten concurrent creates against a cap of 3: exactly 3 succeed.
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		ok, many int
	)
	jobs := make([]*export.Job, 10)
	for i := range jobs {
		jobs[i] = newJob(7, "")
		jobs[i].ID = jobs[i].ID + string(rune('A'+i))
	}
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := s.CreateJob(ctx, j, 3)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case export.KindOf(err) == export.KindTooMany:
				many++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok != 3 || many != 7 {
		t.Fatalf("%d created, %d refused; want 3 and 7", ok, many)
	}
	// The same idempotency key returns the first job, even at the cap.
	first, replayed, err := s.CreateJob(ctx, newJob(8, "key"), 1)
	if err != nil || replayed {
		t.Fatal(err, replayed)
	}
	again, replayed, err := s.CreateJob(ctx, newJob(8, "key"), 1)
	if err != nil || !replayed || again.ID != first.ID {
		t.Fatalf("replay: %v %v %v", again, replayed, err)
	}
	// Another owner may use the same key.
	if _, replayed, err := s.CreateJob(ctx, newJob(9, "key"), 1); err != nil || replayed {
		t.Fatal(err, replayed)
	}
}

func TestAttemptOwnership(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := context.Background()
	j, _, err := s.CreateJob(ctx, newJob(1, ""), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.BeginAttempt(ctx, j.ID, "a"); err != nil {
		t.Fatal(err)
	}
	// A second attempt takes over; the first may no longer write.
	got, err := s.BeginAttempt(ctx, j.ID, "b")
	if err != nil || got.Attempts != 2 || got.Status != export.StatusRunning {
		t.Fatalf("second attempt: %+v %v", got, err)
	}
	if err := s.SetProgress(ctx, j.ID, "a", export.Progress{Done: 1}); !errors.Is(err, export.ErrSuperseded) {
		t.Fatalf("stale progress: %v", err)
	}
	if err := s.SetProgress(ctx, j.ID, "b", export.Progress{Done: 5, Total: 10, Unit: "lines"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Job(ctx, j.ID); got.Progress.Percent != 50 {
		t.Fatalf("progress %+v", got.Progress)
	}
	// Cancel wins over the running attempt.
	if c, err := s.CancelJob(ctx, j.ID, &export.JobError{Code: "canceled", Message: "x"}); err != nil || c.Status != export.StatusCanceled {
		t.Fatalf("cancel: %+v %v", c, err)
	}
	if err := s.Succeed(ctx, j.ID, "b", "k", export.Result{}); !errors.Is(err, export.ErrSuperseded) {
		t.Fatalf("succeed after cancel: %v", err)
	}
	if _, err := s.BeginAttempt(ctx, j.ID, "c"); !errors.Is(err, export.ErrJobEnded) {
		t.Fatalf("attempt on a canceled job: %v", err)
	}
	if _, err := s.Job(ctx, "exp_missing"); !errors.Is(err, export.ErrNotFound) {
		t.Fatalf("missing job: %v", err)
	}
}

func TestListingPagesNewestFirst(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := context.Background()
	var ids []string
	for i := range 5 {
		j := newJob(int64(1+i%2), "")
		j.ID = "exp_0" + string(rune('A'+i))
		if _, _, err := s.CreateJob(ctx, j, 0); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	var got []string
	cursor := ""
	for {
		p, err := s.Jobs(ctx, export.JobFilter{Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range p.Jobs {
			got = append(got, j.ID)
		}
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	want := []string{ids[4], ids[3], ids[2], ids[1], ids[0]}
	if len(got) != 5 || got[0] != want[0] || got[4] != want[4] {
		t.Fatalf("pages %v, want %v", got, want)
	}
	uid := int64(2)
	p, err := s.Jobs(ctx, export.JobFilter{Limit: 10, UserID: &uid})
	if err != nil || len(p.Jobs) != 2 {
		t.Fatalf("user 2's jobs: %d %v", len(p.Jobs), err)
	}
	if _, err := s.Jobs(ctx, export.JobFilter{Limit: 2, Cursor: "!!"}); export.KindOf(err) != export.KindInvalid {
		t.Fatalf("bad cursor: %v", err)
	}
}

func TestSettingIsSharedByEveryInstance(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	vals := make([]string, 5)
	for i := range vals {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := s.Setting(ctx, "k", string(rune('a'+i)))
			if err != nil {
				t.Error(err)
			}
			vals[i] = v
		}()
	}
	wg.Wait()
	for _, v := range vals {
		if v != vals[0] {
			t.Fatalf("instances disagree: %v", vals)
		}
	}
}

// A job's end is announced once: the flag set with the final status is
// cleared by the first transaction that records its deliveries.
func TestJobAnnouncedOnce(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := context.Background()
	j, _, err := s.CreateJob(ctx, newJob(3, ""), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.BeginAttempt(ctx, j.ID, "t"); err != nil {
		t.Fatal(err)
	}
	if pending, err := s.JobsToNotify(ctx, 0, 10); err != nil || len(pending) != 0 {
		t.Fatalf("a running job is pending announcement: %v %v", pending, err)
	}
	if err := s.Succeed(ctx, j.ID, "t", "k", export.Result{ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	pending, err := s.JobsToNotify(ctx, 0, 10)
	if err != nil || len(pending) != 1 || pending[0].ID != j.ID {
		t.Fatalf("ended job not pending announcement: %v %v", pending, err)
	}
	if pending, _ := s.JobsToNotify(ctx, time.Hour, 10); len(pending) != 0 {
		t.Fatal("a job that just ended is left to its worker, not re-driven")
	}
	if created, err := s.CreateJobDeliveries(ctx, j.ID, nil); err != nil || !created {
		t.Fatalf("first announcement: %v %v", created, err)
	}
	if created, err := s.CreateJobDeliveries(ctx, j.ID, nil); err != nil || created {
		t.Fatalf("second announcement recorded: %v %v", created, err)
	}
	if pending, _ := s.JobsToNotify(ctx, 0, 10); len(pending) != 0 {
		t.Fatalf("announced job still pending: %v", pending)
	}
}
