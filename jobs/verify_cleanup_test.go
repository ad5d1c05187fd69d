package jobs

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/pgdump"
	"github.com/hubexport/hubexport/internal/testenv"
)

// The cleanup drops the scratch databases of drills that ended or whose
// worker died (no lease), and leaves alone those of a live drill and
// those whose job this deployment does not know (another deployment's).
func TestCleanupDropsOrphanedScratchDatabases(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	admin, err := pgdump.ParseDSN(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	drill := func() *export.Job {
		now := time.Now().UTC()
		j, _, err := f.store.CreateJob(ctx, &export.Job{
			ID: "exp_" + ulid.Make().String(), Type: export.TypeBackupVerify, Format: export.FormatJSON, Status: export.StatusQueued,
			Params: json.RawMessage(`{}`), UserID: -1, KeyID: -1, RequestHash: "h", CreatedAt: now, UpdatedAt: now,
		}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := pgdump.CreateDatabase(ctx, admin, export.VerifyDatabaseName(j.ID)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pgdump.DropDatabase(context.Background(), admin, export.VerifyDatabaseName(j.ID)) })
		return j
	}
	ended, dead, live := drill(), drill(), drill()
	if _, err := f.store.BeginAttempt(ctx, ended.ID, "t1"); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Fail(ctx, ended.ID, "t1", &export.JobError{Code: "x", Message: "x"}, false); err != nil {
		t.Fatal(err)
	}
	for _, j := range []*export.Job{dead, live} {
		if _, err := f.store.BeginAttempt(ctx, j.ID, "t-"+j.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.rdb.Set(ctx, leaseKey(live.ID), "t-"+live.ID, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	foreign := export.VerifyDatabaseName("exp_" + ulid.Make().String())
	if err := pgdump.CreateDatabase(ctx, admin, foreign); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pgdump.DropDatabase(context.Background(), admin, foreign) })

	m := &Maintenance{Store: f.store, Objects: f.objects, Redis: f.rdb, Now: time.Now,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), VerifyAdmin: &admin}
	if _, _, err := m.RunCleanup(ctx); err != nil {
		t.Fatal(err)
	}
	names, err := pgdump.ListDatabases(ctx, admin, export.VerifyDatabasePrefix)
	if err != nil {
		t.Fatal(err)
	}
	has := map[string]bool{}
	for _, n := range names {
		has[n] = true
	}
	for _, c := range []struct {
		name string
		want bool
	}{
		{export.VerifyDatabaseName(ended.ID), false},
		{export.VerifyDatabaseName(dead.ID), false},
		{export.VerifyDatabaseName(live.ID), true},
		{foreign, true},
	} {
		if has[c.name] != c.want {
			t.Errorf("%s: present %v after the cleanup, want %v", c.name, has[c.name], c.want)
		}
	}
}
