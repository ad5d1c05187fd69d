package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"github.com/hubexport/hubexport/internal/agefile"
	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/pgdump"
)

// TypeBackupVerify is the task type of backup_verify jobs (restore drills).
// It is a wire contract: never rename it while tasks may be queued.
const TypeBackupVerify = "export:backup_verify"

const backupVerifyQueue = QueueBackups

// NewBackupVerifyTask builds the task of backup_verify job jobID. A drill
// may run again: each attempt starts from a fresh scratch database.
func NewBackupVerifyTask(jobID string) *asynq.Task {
	return newJobTask(TypeBackupVerify, jobID, asynq.Queue(backupVerifyQueue), asynq.MaxRetry(jobTaskMaxRetry), asynq.Timeout(6*time.Hour))
}

// checkTimeoutMS bounds each admin-given check.
const checkTimeoutMS = 5 * 60 * 1000

// BackupVerifyHandler runs restore drills: the backup is fetched as a
// restore fetches it, restored under the backup lock into a scratch
// database of the drill's own (export.VerifyDatabaseName), its tables are
// counted against the backup's manifest and the admin's checks run
// read-only; the scratch database is dropped whatever happens (and by the
// maintenance pass after a crash).
type BackupVerifyHandler struct {
	Runner *Runner
	DB     *DatabaseTools
	// Admin is VERIFY_DATABASE_URL: a connection with CREATEDB rights on
	// the server that holds the scratch databases.
	Admin pgdump.Conn
	// TempDir holds the dump while it is restored ("": the system's).
	TempDir string
	// Identities decrypt age-encrypted backups (BACKUP_AGE_IDENTITY_FILE).
	Identities *agefile.Identities
}

// ProcessTask implements asynq.Handler.
func (h *BackupVerifyHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	return h.Runner.RunWork(ctx, t, Work{Act: h.act})
}

// drillFailed is the error of a drill whose backup did not hold up: it is
// final (running it again reads the same file).
func drillFailed(step, msg string, cause error) error {
	return &export.Error{Kind: export.KindConflict, Code: "verify_failed",
		Message: "restore drill failed at " + step + ": " + msg, Err: cause}
}

func (h *BackupVerifyHandler) act(ctx context.Context, job *export.Job, pr *Progress) (details map[string]any, err error) {
	var p export.VerifyParams
	if err := json.Unmarshal(job.Params, &p); err != nil {
		return nil, export.Errorf(export.KindInvalid, "invalid_params", "stored params do not decode: %v", err)
	}
	started := h.Runner.Now()
	log := h.Runner.Log.With("job_id", job.ID, "backup_job_id", p.BackupJobID)
	key, want, err := export.RestoreSource(ctx, h.Runner.Store, p.BackupJobID, h.Runner.Now())
	if err != nil {
		return nil, err
	}
	backup, err := h.Runner.Store.Job(ctx, p.BackupJobID)
	if err != nil {
		return nil, err
	}
	manifest, ok, err := export.ManifestOf(backup)
	if err != nil {
		return nil, drillFailed("manifest", err.Error(), err)
	}
	if !ok {
		if manifest, err = export.ReadManifest(ctx, h.Runner.Objects, key); errors.Is(err, os.ErrNotExist) {
			return nil, export.Errorf(export.KindInvalid, "manifest_missing",
				"backup job %s has no manifest (it was made before backups recorded one); verify a newer backup", p.BackupJobID)
		} else if err != nil {
			return nil, drillFailed("manifest", err.Error(), err)
		}
	}

	name := export.VerifyDatabaseName(job.ID)
	scratchDB := h.Admin.WithDatabase(name)
	log = log.With("scratch_database", name)
	log.InfoContext(ctx, "backup_verify_started", "tables", len(manifest.Tables))
	_ = pr.Note(ctx, "creating the scratch database "+name)
	if err := pgdump.CreateDatabase(ctx, h.Admin, name); err != nil {
		return nil, &export.Error{Kind: export.KindUnavailable, Code: "verify_database_unavailable",
			Message: fmt.Sprintf("cannot create the scratch database %s through VERIFY_DATABASE_URL (%s): %v; it needs CREATEDB rights", name, h.Admin, err), Err: err}
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if derr := pgdump.DropDatabase(dctx, h.Admin, name); derr != nil {
			// The maintenance pass drops it once this job has ended.
			log.ErrorContext(ctx, "scratch_database_drop_failed", "error", derr)
			return
		}
		log.InfoContext(ctx, "scratch_database_dropped")
	}()

	rh := &DatabaseRestoreHandler{Runner: h.Runner, DB: h.DB, TempDir: h.TempDir, Identities: h.Identities}
	path, _, remove, err := rh.fetchTemp(ctx, key, "backup job "+p.BackupJobID, want, pr)
	if err != nil {
		if e, ok := errors.AsType[*export.Error](err); ok && e.Kind == export.KindInvalid {
			return nil, drillFailed("fetch", e.Message, err)
		}
		return nil, err
	}
	defer remove()

	major, err := pgdump.ServerMajor(ctx, scratchDB)
	if err != nil {
		return nil, &export.Error{Kind: export.KindUnavailable, Code: "verify_database_unavailable",
			Message: fmt.Sprintf("cannot connect to the scratch database %s: %v", name, err), Err: err}
	}
	tools, err := h.DB.findTools(ctx, major, log)
	if err != nil {
		return nil, err
	}
	toc, err := tools.ListFile(ctx, path)
	if err != nil {
		return nil, drillFailed("list", errMessage(err), err)
	}

	lk, err := h.DB.lockBackup(ctx, job, pr, log, "backup_verify", h.Runner.metrics())
	if err != nil {
		return nil, err
	}
	lockCtx, stop := lk.Context(ctx)
	_ = pr.Note(ctx, "restoring into "+name)
	total := int64(len(toc.Entries))
	var done atomic.Int64
	var current atomic.Value // the table whose rows pg_restore is loading
	pr.Set(0, total, "objects")
	restoreStart := time.Now()
	res, rerr := tools.Restore(lockCtx, pgdump.RestoreOptions{
		Target:         toolConn(scratchDB, major),
		NoOwner:        true,
		ExcludeSchemas: []string{ownSchema},
		OnLine: func(line string) {
			if t, ok := strings.CutPrefix(line, "pg_restore: processing data for table "); ok {
				current.Store(strings.Trim(t, `"`))
			}
			if strings.HasPrefix(line, "pg_restore: creating ") || strings.HasPrefix(line, "pg_restore: processing ") {
				pr.Set(min(done.Add(1), max(total-1, 0)), total, "objects")
			}
		},
	}, path)
	restoreTook := time.Since(restoreStart)
	lerr := lk.Err()
	stop()
	lk.Release(context.WithoutCancel(ctx))
	if rerr != nil {
		switch e, ok := errors.AsType[*export.Error](rerr); {
		case lerr != nil && ctx.Err() == nil:
			return nil, lockLost("restore drill", errors.Join(lerr, rerr))
		case ok && e.Code == "pg_restore_failed":
			step := "restore"
			if t, _ := current.Load().(string); t != "" {
				step += " of table " + t
			}
			return nil, drillFailed(step, e.Message, rerr)
		}
		return nil, rerr
	}
	pr.Set(total, total, "objects")

	_ = pr.Note(ctx, "counting the restored tables")
	counts, err := pgdump.CountTables(ctx, scratchDB, manifest.Tables)
	if err != nil {
		return nil, err
	}
	tables := make([]export.DrillTable, len(manifest.Tables))
	var bad []string
	for i, t := range manifest.Tables {
		tables[i] = export.DrillTable{Table: t.QualifiedName(), Expected: t.Rows, Actual: counts[i], OK: counts[i] == t.Rows}
		switch {
		case counts[i] < 0:
			bad = append(bad, fmt.Sprintf("table %s is missing (%d rows expected)", t.QualifiedName(), t.Rows))
		case counts[i] != t.Rows:
			bad = append(bad, fmt.Sprintf("table %s has %d rows, %d expected", t.QualifiedName(), counts[i], t.Rows))
		}
	}
	var checks []export.DrillCheck
	if len(p.Checks) > 0 {
		_ = pr.Note(ctx, "running the checks")
		results, err := pgdump.RunChecks(ctx, scratchDB, p.Checks, checkTimeoutMS)
		if err != nil {
			return nil, err
		}
		for i, sql := range p.Checks {
			c := export.DrillCheck{SQL: sql, OK: results[i] == nil}
			if results[i] != nil {
				c.Error = strings.TrimPrefix(results[i].Error(), "pgdump: ")
				bad = append(bad, fmt.Sprintf("check %d (%s) failed: %s", i+1, sql, c.Error))
			}
			checks = append(checks, c)
		}
	}
	took := h.Runner.Now().Sub(started)
	details = map[string]any{
		"backup_job_id":       p.BackupJobID,
		"scratch_database":    name,
		"passed":              len(bad) == 0,
		"tables":              tables,
		"checks":              checks,
		"expected_rows":       manifest.TotalRows,
		"mode":                manifest.Mode,
		"dumped_from":         manifest.ServerVersion,
		"restore_errors":      res.Errors,
		"restore_ignored":     res.Ignored,
		"restore_duration_ms": restoreTook.Milliseconds(),
		"duration_ms":         took.Milliseconds(),
	}
	log.InfoContext(ctx, "backup_verify_finished", "passed", len(bad) == 0, "duration_ms", took.Milliseconds(), "problems", bad)
	if len(bad) > 0 {
		msg := strings.Join(bad[:min(len(bad), 5)], "; ")
		if len(bad) > 5 {
			msg += fmt.Sprintf("; and %d more", len(bad)-5)
		}
		step := "count"
		if !strings.HasPrefix(bad[0], "table ") {
			step = "checks"
		}
		return nil, drillFailed(step, msg, nil)
	}
	return details, nil
}

// errMessage is what a user reads of err.
func errMessage(err error) string {
	if e, ok := errors.AsType[*export.Error](err); ok {
		return e.Message
	}
	return err.Error()
}
