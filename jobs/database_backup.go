package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/hibiken/asynq"

	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/pgdump"
)

// TypeDatabaseBackup is the task type of database_backup jobs. It is a wire
// contract: never rename it while tasks may be queued.
const TypeDatabaseBackup = "export:database_backup"

const databaseBackupQueue = QueueBackups

// NewDatabaseBackupTask builds the task of database_backup job jobID. A
// backup is retried twice at most: each try dumps the whole database again.
func NewDatabaseBackupTask(jobID string) *asynq.Task {
	return newJobTask(TypeDatabaseBackup, jobID, asynq.Queue(databaseBackupQueue), asynq.MaxRetry(2), asynq.Timeout(6*time.Hour))
}

// DatabaseSizer estimates the hub database's size (internal/hub).
type DatabaseSizer interface {
	DatabaseSize(ctx context.Context) (int64, error)
}

// DatabaseBackupHandler runs database_backup tasks: pg_dump -Fc of the hub
// database, under the backup lock, streamed into storage and read back with
// pg_restore --list before the job succeeds.
type DatabaseBackupHandler struct {
	Runner *Runner
	DB     *DatabaseTools
	Size   DatabaseSizer
}

// ProcessTask implements asynq.Handler.
func (h *DatabaseBackupHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	a := &backupAttempt{h: h}
	return h.Runner.RunWork(ctx, t, Work{Produce: a.produce, Verify: a.verify})
}

// backupAttempt carries one attempt's tools from the dump to its check.
type backupAttempt struct {
	h        *DatabaseBackupHandler
	mode     string
	tools    *pgdump.Tools
	manifest export.BackupManifest
}

func (a *backupAttempt) produce(ctx context.Context, job *export.Job, w io.Writer, pr *Progress) (int64, error) {
	h := a.h
	var p export.BackupParams
	if err := json.Unmarshal(job.Params, &p); err != nil {
		return 0, export.Errorf(export.KindInvalid, "invalid_params", "stored params do not decode: %v", err)
	}
	a.mode = p.Mode
	log := h.Runner.Log.With("job_id", job.ID, "mode", p.Mode)
	log.InfoContext(ctx, "database_export_initiated", "database", h.DB.Conn)
	fail := func(err error) (int64, error) {
		if ctx.Err() == nil {
			log.ErrorContext(ctx, "database_export_error", "error", err)
		}
		return 0, err
	}

	major, err := pgdump.ServerMajor(ctx, h.DB.Conn)
	if err != nil {
		return fail(&export.Error{Kind: export.KindUnavailable, Code: "database_unavailable",
			Message: "cannot read the hub database's version: " + err.Error(), Err: err})
	}
	if a.tools, err = h.DB.findTools(ctx, major, log); err != nil {
		return fail(err)
	}

	lk, err := h.DB.lockBackup(ctx, job, pr, log, "database_export", h.Runner.metrics())
	if err != nil {
		return fail(err)
	}
	defer lk.Release(context.WithoutCancel(ctx))
	lockCtx, stop := lk.Context(ctx)
	defer stop()

	// The size only scales the progress bar: a compressed dump is smaller.
	total, err := h.Size.DatabaseSize(ctx)
	if err != nil {
		log.WarnContext(ctx, "database_size_failed", "error", err)
		total = 0
	}
	pr.Set(0, total, "bytes")
	mt, err := startManifest(lockCtx, h.DB.Conn, pgdump.Mode(p.Mode), job.ID)
	if err != nil {
		return fail(err)
	}
	defer mt.stop(ctx)
	_, err = a.tools.Dump(lockCtx, pgdump.DumpOptions{
		Conn:           toolConn(h.DB.Conn, major),
		Mode:           pgdump.Mode(p.Mode),
		ExcludeSchemas: []string{ownSchema},
		Snapshot:       mt.snap.ID,
		OnProgress: func(n int64) {
			if total > 0 && n >= total {
				total = n + 1 // the estimate was low: keep the bar short of full
			}
			pr.Set(n, total, "bytes")
		},
	}, w)
	if err != nil {
		if lerr := lk.Err(); lerr != nil && ctx.Err() == nil {
			err = lockLost("dump", errors.Join(lerr, err))
		}
		return fail(err)
	}
	if a.manifest, err = mt.finish(ctx); err != nil {
		return fail(fmt.Errorf("jobs: backup manifest: %w", err))
	}
	_ = pr.Note(ctx, "verifying the dump")
	return 0, nil
}

// verify reads the stored dump back: pg_restore --list must read its table
// of contents, and every byte must match the size and SHA-256 recorded
// while it was written.
func (a *backupAttempt) verify(ctx context.Context, job *export.Job, key string, res *export.Result) error {
	rc, err := a.h.Runner.Objects.Open(ctx, key)
	if err != nil {
		return &storageError{err}
	}
	defer rc.Close()
	hr := &hashReader{r: rc, h: sha256.New()}
	toc, err := a.tools.List(ctx, hr)
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		return unverifiable("pg_restore --list cannot read it back", err)
	}
	if _, err := io.Copy(io.Discard, hr); err != nil {
		return &storageError{fmt.Errorf("read back %s: %w", key, err)}
	}
	if sum := hex.EncodeToString(hr.h.Sum(nil)); hr.n != res.SizeBytes || sum != res.SHA256 {
		return unverifiable(fmt.Sprintf("storage holds %d bytes with SHA-256 %s, but %d bytes with SHA-256 %s were written", hr.n, sum, res.SizeBytes, res.SHA256), nil)
	}
	res.Details = map[string]any{
		"toc_entries":     len(toc.Entries),
		"mode":            a.mode,
		"server_version":  toc.DumpedFrom,
		"pg_dump_version": a.tools.PgDump.Version.Text,
		"manifest":        a.manifest,
	}
	return writeManifest(ctx, a.h.Runner.Objects, key, a.manifest)
}

func unverifiable(why string, cause error) error {
	msg := "the backup was written but " + why
	if e, ok := errors.AsType[*export.Error](cause); ok {
		msg += " (" + e.Message + ")"
	}
	return &export.Error{Kind: export.KindInternal, Code: "backup_unverifiable",
		Message: msg + "; it was deleted, not published", Err: cause}
}

// hashReader hashes and counts what is read through it.
type hashReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (hr *hashReader) Read(p []byte) (int, error) {
	n, err := hr.r.Read(p)
	hr.h.Write(p[:n])
	hr.n += int64(n)
	return n, err
}
