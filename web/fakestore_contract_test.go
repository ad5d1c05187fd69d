package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/store"
	"github.com/hubexport/hubexport/internal/testenv"
)

// jobCreator is the part of the job store whose rules the handlers' tests
// depend on: the active-job cap and idempotent replays.
type jobCreator interface {
	CreateJob(ctx context.Context, j *export.Job, maxActive int) (*export.Job, bool, error)
	Job(ctx context.Context, id string) (*export.Job, error)
	CancelJob(ctx context.Context, id string, e *export.JobError) (*export.Job, error)
}

// TestFakeStoreAgreesWithStore runs one script of creates against the fake
// the handler tests use and against the real PostgreSQL store, and wants
// the same outcome from both at every step, so a handler test cannot pass
// on a rule the real store does not have.
func TestFakeStoreAgreesWithStore(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("needs PostgreSQL")
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
	real := store.New(pool, time.Now)
	fake := newFakeStore()

	scheduled := func(s jobCreator, j *export.Job) error {
		j.ScheduleID = "sch_contract"
		if s == jobCreator(fake) {
			fake.put(j)
			return nil
		}
		_, err := real.CreateScheduledJob(ctx, j, j.CreatedAt)
		return err
	}
	n := 0
	job := func(user, key int64, idem string) *export.Job {
		n++
		now := time.Now().UTC().Truncate(time.Millisecond)
		return &export.Job{
			ID: fmt.Sprintf("exp_contract%04d", n), Type: export.TypeProbeLogs, Format: export.FormatText,
			Status: export.StatusQueued, Params: []byte(`{}`), UserID: user, KeyID: key,
			IdempotencyKey: idem, RequestHash: "h", CreatedAt: now, UpdatedAt: now,
		}
	}
	// outcome renders what a handler would act on: created, replayed (and of
	// which job) or refused (and with which code).
	outcome := func(got *export.Job, replayed bool, err error) string {
		var e *export.Error
		switch {
		case errors.As(err, &e):
			return "refused " + e.Code
		case err != nil:
			return "error " + err.Error()
		case replayed:
			return "replayed " + got.ID
		default:
			return "created " + got.ID
		}
	}

	type step struct {
		name string
		run  func(s jobCreator) string
	}
	create := func(user, key int64, idem string, maxActive int) func(s jobCreator) string {
		// The same job id for both stores: built once per step.
		var j *export.Job
		return func(s jobCreator) string {
			if j == nil {
				j = job(user, key, idem)
			}
			c := *j
			return outcome(s.CreateJob(ctx, &c, maxActive))
		}
	}
	steps := []step{
		{"no cap (0): first", create(7, 1, "", 0)},
		{"no cap (0): second", create(7, 1, "", 0)},
		{"no cap (0): third", create(7, 1, "", 0)},
		{"cap 3 reached", create(7, 1, "", 3)},
		{"cap 4 leaves room", create(7, 1, "a", 4)},
		{"replay past the cap", create(7, 1, "a", 1)},
		{"same key, other token: not a replay, capped", create(7, 2, "a", 4)},
		{"other user has room", create(8, 3, "", 1)},
		{"scheduled job added", func(s jobCreator) string {
			j := job(7, 1, "")
			j.ID = "exp_contractsched"
			if err := scheduled(s, j); err != nil {
				return "error " + err.Error()
			}
			return "ok"
		}},
		{"scheduled job not counted", create(7, 1, "", 5)},
		{"cancel one", func(s jobCreator) string {
			_, err := s.CancelJob(ctx, "exp_contract0001", &export.JobError{Code: "canceled", Message: "test"})
			return fmt.Sprint(err)
		}},
		{"ended job not counted", create(7, 1, "", 5)},
		{"cap 5 reached again", create(7, 1, "", 5)},
	}
	for _, st := range steps {
		f, r := st.run(fake), st.run(real)
		if f != r {
			t.Errorf("%s: fake store %q, real store %q", st.name, f, r)
		}
	}
}

func TestMain(m *testing.M) { testenv.Main(m) }
