package jobs

import (
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/hubexport/hubexport/internal/export"
)

// workFixture is setup with the backup and restore types registered.
func workFixture(t *testing.T) *fixture {
	t.Helper()
	f := setup(t)
	f.runner.Registry = export.NewRegistry(export.ProbeLogSpec(), export.BackupSpec(time.UTC, export.BackupEncryption{}), export.RestoreSpec(nil))
	return f
}

func (f *fixture) newTypedJob(t *testing.T, typ export.Type, params string) *export.Job {
	t.Helper()
	now := time.Now().UTC()
	j, _, err := f.store.CreateJob(context.Background(), &export.Job{
		ID: "exp_" + ulid.Make().String(), Type: typ, Format: export.FormatDump, Status: export.StatusQueued,
		Params: json.RawMessage(params), UserID: -1, KeyID: -1, RequestHash: "h", CreatedAt: now, UpdatedAt: now,
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// files lists every file below dir, temp files included.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out
}

// A backup goes to backups/<job id>/<CCH's name>; an earlier attempt's
// unfinished write there is removed first; Verify adds to the result.
func TestRunnerBackupKeyLeftoversAndVerify(t *testing.T) {
	t.Parallel()
	f := workFixture(t)
	ctx := context.Background()
	j := f.newTypedJob(t, export.TypeDatabaseBackup, `{"mode":"ledger_only"}`)
	want := "backups/" + j.ID + "/backup_" + j.CreatedAt.Format("2006-01-02T15-04-05") + "_ledger-only.dump"

	// A crashed attempt's temp file beside the key.
	old, err := f.objects.Create(ctx, want, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(old, "half a dump"); err != nil {
		t.Fatal(err)
	}
	if got := files(t, f.dir); len(got) != 1 || !strings.Contains(got[0], ".tmp-") {
		t.Fatalf("before: %v", got)
	}

	var seen string
	err = f.runner.RunWork(ctx, task(j.ID), Work{
		Produce: lines(2, 0),
		Verify: func(ctx context.Context, _ *export.Job, key string, res *export.Result) error {
			rc, err := f.objects.Open(ctx, key)
			if err != nil {
				return err
			}
			defer rc.Close()
			b, _ := io.ReadAll(rc)
			seen = string(b)
			res.Details = map[string]any{"toc_entries": 2}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := f.store.Job(ctx, j.ID)
	if got.Status != export.StatusSucceeded || got.StorageKey != want || got.Result.Filename != filepath.Base(want) {
		t.Fatalf("job %s key %q result %+v; want key %q", got.Status, got.StorageKey, got.Result, want)
	}
	if seen != "line\nline\n" || got.Result.Details["toc_entries"] != float64(2) {
		t.Errorf("verify saw %q; details %v", seen, got.Result.Details)
	}
	if fs := files(t, f.dir); len(fs) != 1 || fs[0] != want {
		t.Errorf("storage holds %v; want only %s", fs, want)
	}
}

// An artifact that fails verification is deleted and the job fails with
// the verifier's code.
func TestRunnerVerifyFailureUnpublishes(t *testing.T) {
	t.Parallel()
	f := workFixture(t)
	ctx := context.Background()
	j := f.newTypedJob(t, export.TypeDatabaseBackup, `{"mode":"full"}`)
	err := f.runner.RunWork(ctx, task(j.ID), Work{
		Produce: lines(2, 0),
		Verify: func(context.Context, *export.Job, string, *export.Result) error {
			return &export.Error{Kind: export.KindInternal, Code: "backup_unverifiable", Message: "pg_restore cannot read it"}
		},
	})
	if err == nil {
		t.Fatal("RunWork succeeded")
	}
	got, _ := f.store.Job(ctx, j.ID)
	if got.Status != export.StatusFailed || got.Error == nil || got.Error.Code != "backup_unverifiable" || got.StorageKey != "" {
		t.Fatalf("job %s error %+v key %q", got.Status, got.Error, got.StorageKey)
	}
	if fs := files(t, f.dir); len(fs) != 0 {
		t.Errorf("storage holds %v; want nothing", fs)
	}
}

// A type without an artifact succeeds with details only: no key, no
// expiry, nothing for the cleanup to delete.
func TestRunnerAct(t *testing.T) {
	t.Parallel()
	f := workFixture(t)
	ctx := context.Background()
	j := f.newTypedJob(t, export.TypeDatabaseRestore, `{"upload_id":"upl_0123456789abcdef0123456789abcdef"}`)
	err := f.runner.RunWork(ctx, task(j.ID), Work{
		Act: func(ctx context.Context, _ *export.Job, pr *Progress) (map[string]any, error) {
			pr.Set(3, 3, "objects")
			return map[string]any{"toc_entries": 3, "message": export.RestoreAdvice}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := f.store.Job(ctx, j.ID)
	if got.Status != export.StatusSucceeded || got.StorageKey != "" || got.Result == nil ||
		got.Result.Details["message"] != export.RestoreAdvice || !got.Result.ExpiresAt.IsZero() {
		t.Fatalf("job %s key %q result %+v", got.Status, got.StorageKey, got.Result)
	}
	b, _ := json.Marshal(got.Result)
	if strings.Contains(string(b), "filename") || strings.Contains(string(b), "expires_at") {
		t.Errorf("result of a job without a file: %s", b)
	}
	expired, err := f.store.ExpiredArtifacts(ctx, 10)
	if err != nil || len(expired) != 0 {
		t.Errorf("expired artifacts %v, %v", expired, err)
	}
	if fs := files(t, f.dir); len(fs) != 0 {
		t.Errorf("storage holds %v; want nothing", fs)
	}
}

// A job marked as having leftovers (an attempt could not abort its upload)
// loses the mark once a later attempt has aborted them.
func TestRunnerClearsLeftoverMark(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	j := f.newJob(t, `{}`)
	spec := export.ProbeLogSpec()
	old, err := f.objects.Create(ctx, spec.ArtifactKey(j, spec.Filename(j, j.CreatedAt)), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(old, "half a file"); err != nil {
		t.Fatal(err)
	}
	if err := f.store.MarkLeftovers(ctx, j.ID, true); err != nil {
		t.Fatal(err)
	}
	if err := f.runner.Run(ctx, task(j.ID), lines(1, 0)); err != nil {
		t.Fatal(err)
	}
	if got := files(t, f.dir); len(got) != 1 || strings.Contains(got[0], ".tmp-") {
		t.Fatalf("storage holds %v, want only the artifact", got)
	}
	left, err := f.store.WithLeftovers(ctx, 10)
	if err != nil || len(left) != 0 {
		t.Fatalf("jobs still marked with leftovers: %d (%v)", len(left), err)
	}
}
