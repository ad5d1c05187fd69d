package jobs

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"github.com/hubexport/hubexport/internal/agefile"
	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/pgdump"
	"github.com/hubexport/hubexport/internal/scratch"
)

// TypeDatabaseRestore is the task type of database_restore jobs. It is a
// wire contract: never rename it while tasks may be queued.
const TypeDatabaseRestore = "export:database_restore"

const databaseRestoreQueue = QueueBackups

// NewDatabaseRestoreTask builds the task of database_restore job jobID. A
// restore is never retried by itself: a half-applied restore is for an
// operator to look at, not to repeat blindly.
func NewDatabaseRestoreTask(jobID string) *asynq.Task {
	return newJobTask(TypeDatabaseRestore, jobID, asynq.Queue(databaseRestoreQueue), asynq.MaxRetry(0), asynq.Timeout(6*time.Hour))
}

// RestoreTempPrefix starts the name of a restore's temporary directory,
// which holds the dump while it is restored.
const RestoreTempPrefix = "hubexport-restore-"

// SweepTemp removes from dir (TMPDIR when empty) the temporary directories
// of restores whose worker process died.
func SweepTemp(dir string) ([]string, error) {
	return scratch.Sweep(dir, RestoreTempPrefix)
}

// DatabaseRestoreHandler runs database_restore tasks: it fetches the dump
// (a backup job's artifact or an upload) into a temporary file, checks it,
// and runs pg_restore into the hub database or the job's target under the
// backup lock. It makes no artifact; the job's result says what happened.
type DatabaseRestoreHandler struct {
	Runner *Runner
	DB     *DatabaseTools
	// TempDir holds the dump while it is restored; "" is the system's
	// temporary directory. It needs room for the largest dump.
	TempDir string
	// Audit, if set, records the outcome of every restore in the audit trail.
	Audit func(ctx context.Context, e export.AuditEntry) error
	// Identities decrypt age-encrypted dumps (BACKUP_AGE_IDENTITY_FILE);
	// nil: an encrypted dump fails with decrypt_identity_missing.
	Identities *agefile.Identities
	// Uploads holds the size and SHA-256 declared for each upload.
	Uploads export.UploadStore
}

// ProcessTask implements asynq.Handler.
func (h *DatabaseRestoreHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	return h.Runner.RunWork(ctx, t, Work{Act: h.act})
}

func (h *DatabaseRestoreHandler) act(ctx context.Context, job *export.Job, pr *Progress) (details map[string]any, err error) {
	var p export.RestoreParams
	if err := json.Unmarshal(job.Params, &p); err != nil {
		return nil, export.Errorf(export.KindInvalid, "invalid_params", "stored params do not decode: %v", err)
	}
	target, targetName := h.DB.Conn, "DATABASE_URL"
	if p.TargetDatabaseURL != "" {
		if target, err = pgdump.ParseDSN(p.TargetDatabaseURL); err != nil {
			return nil, export.Invalid("params.target_database_url", "%v", err)
		}
		targetName = target.String()
	}
	source := "upload " + p.UploadID
	if p.BackupJobID != "" {
		source = "backup job " + p.BackupJobID
	}
	log := h.Runner.Log.With("job_id", job.ID)
	log.InfoContext(ctx, "database_import_initiated", "source", source, "target", target,
		"clean_first", p.CleanFirst, "skip_logs", p.SkipLogs, "dry_run", p.DryRun)
	defer func() {
		if err != nil && ctx.Err() == nil {
			log.ErrorContext(ctx, "database_import_error", "error", err)
		}
		if ctx.Err() == nil {
			h.audit(context.WithoutCancel(ctx), job, details, err)
		}
	}()

	// want pins the restore to the bytes that were checked: the digest
	// declared for the upload, or the one recorded when the backup was made.
	key, want := export.UploadKey(p.UploadID), ""
	if p.BackupJobID != "" {
		if key, want, err = export.RestoreSource(ctx, h.Runner.Store, p.BackupJobID, h.Runner.Now()); err != nil {
			return nil, err
		}
	} else if want, err = h.uploadDigest(ctx, p.UploadID, source); err != nil {
		return nil, err
	}
	path, encrypted, remove, err := h.fetchTemp(ctx, key, source, want, pr)
	if err != nil {
		return nil, err
	}
	defer remove()

	major := 0 // a dry run connects nowhere: any pg_restore lists a dump
	if !p.DryRun {
		if major, err = pgdump.ServerMajor(ctx, target); err != nil {
			return nil, &export.Error{Kind: export.KindUnavailable, Code: "restore_target_unreachable",
				Message: fmt.Sprintf("cannot connect to the restore target %s: %v; nothing was restored", targetName, err), Err: err}
		}
	}
	tools, err := h.DB.findTools(ctx, major, log)
	if err != nil {
		return nil, err
	}
	// Listed before the lock and the target: a dump pg_restore cannot read
	// fails here, having touched nothing.
	toc, err := tools.ListFile(ctx, path)
	if err != nil {
		return nil, err
	}
	details = map[string]any{
		"source":      source,
		"toc_entries": len(toc.Entries),
		"dumped_from": toc.DumpedFrom,
		"dumped_by":   toc.DumpedBy,
		"dry_run":     p.DryRun,
		"encrypted":   encrypted,
	}
	if p.DryRun {
		details["message"] = "dry run: the dump was listed, nothing was restored"
		return details, nil
	}

	lk, err := h.DB.lockBackup(ctx, job, pr, log, "database_import", h.Runner.metrics())
	if err != nil {
		return nil, err
	}
	defer lk.Release(context.WithoutCancel(ctx))
	lockCtx, stop := lk.Context(ctx)
	defer stop()

	_ = pr.Note(ctx, "restoring into "+targetName)
	total := int64(len(toc.Entries))
	var done atomic.Int64
	pr.Set(0, total, "objects")
	res, err := tools.Restore(lockCtx, pgdump.RestoreOptions{
		Target:         toolConn(target, major),
		CleanFirst:     p.CleanFirst,
		SkipLogs:       p.SkipLogs,
		ExcludeSchemas: []string{ownSchema},
		OnLine: func(line string) {
			// pg_restore --verbose says what it does, about one line per entry.
			if strings.HasPrefix(line, "pg_restore: creating ") || strings.HasPrefix(line, "pg_restore: processing ") ||
				strings.HasPrefix(line, "pg_restore: dropping ") {
				pr.Set(min(done.Add(1), max(total-1, 0)), total, "objects")
			}
		},
	}, path)
	if err != nil {
		if lerr := lk.Err(); lerr != nil && ctx.Err() == nil {
			return nil, lockLost("restore", errors.Join(lerr, err))
		}
		return nil, err
	}
	details["target"] = targetName
	details["errors"] = res.Errors
	details["warnings"] = res.Warnings
	details["ignored"] = res.Ignored
	details["first_fatal"] = res.FirstFatal
	details["exit_code"] = res.ExitCode
	details["clean_first"] = p.CleanFirst
	details["skip_logs"] = p.SkipLogs
	details["message"] = "restored; " + export.RestoreAdvice
	pr.Set(total, total, "objects")

	// The upload has served its purpose; a backup job's file stays. The
	// record goes with it, so the upload id cannot be restored again.
	if p.UploadID != "" {
		if derr := h.Runner.Objects.Delete(context.WithoutCancel(ctx), key); derr != nil {
			log.WarnContext(ctx, "upload_delete_failed", "storage_key", key, "error", derr)
		} else if derr := h.Uploads.DeleteUpload(context.WithoutCancel(ctx), p.UploadID); derr != nil {
			log.WarnContext(ctx, "upload_delete_failed", "upload_id", p.UploadID, "error", derr)
		}
	}
	return details, nil
}

// uploadDigest returns the SHA-256 declared when upload id was created.
func (h *DatabaseRestoreHandler) uploadDigest(ctx context.Context, id, source string) (string, error) {
	u, err := h.Uploads.Upload(ctx, id)
	if errors.Is(err, export.ErrNotFound) {
		return "", export.Errorf(export.KindInvalid, "dump_not_found", "%s is unknown or was removed; request a new upload URL and upload the dump again", source)
	}
	if err != nil {
		return "", fmt.Errorf("jobs: restore: read upload %s: %w", id, err)
	}
	return u.SHA256, nil
}

// fetchTemp fetches the dump at key (fetch) into a temporary directory of
// this process's own, which the worker's start-up sweep removes should the
// process die; remove deletes it.
func (h *DatabaseRestoreHandler) fetchTemp(ctx context.Context, key, source, want string, pr *Progress) (path string, encrypted bool, remove func(), err error) {
	dir, err := scratch.MkdirTemp(h.TempDir, RestoreTempPrefix)
	if err != nil {
		return "", false, nil, fmt.Errorf("jobs: restore: %w", err)
	}
	path = filepath.Join(dir.Path, "restore.dump")
	if encrypted, err = h.fetch(ctx, key, source, want, path, pr); err != nil {
		_ = dir.Remove()
		return "", encrypted, nil, err
	}
	return path, encrypted, func() { _ = dir.Remove() }, nil
}

// fetch copies the dump at key into the file at path, decrypting an age file
// on the way (encrypted reports that it was one). The first bytes are
// checked before anything is written: a file that is not a custom-format
// dump fails with not_a_dump, an encrypted one without an identity with
// decrypt_identity_missing, and one no identity opens with decrypt_failed.
// When want is set, the bytes read from storage (as stored, before any
// decryption) must have that SHA-256, or nothing is restored
// (dump_checksum_mismatch).
func (h *DatabaseRestoreHandler) fetch(ctx context.Context, key, source, want, path string, pr *Progress) (encrypted bool, err error) {
	_ = pr.Note(ctx, "fetching the dump")
	rc, err := h.Runner.Objects.Open(ctx, key)
	if errors.Is(err, os.ErrNotExist) {
		return false, export.Errorf(export.KindInvalid, "dump_not_found", "the dump of %s is no longer in storage; upload it again", source)
	}
	if err != nil {
		return false, &storageError{err}
	}
	defer rc.Close()
	hr := &hashReader{r: rc, h: sha256.New()}
	src := bufio.NewReaderSize(agefile.MarkSource(hr), 64<<10)
	head, err := src.Peek(agefile.HeaderLen)
	if err != nil && !errors.Is(err, io.EOF) {
		return false, &storageError{fmt.Errorf("read %s: %w", key, err)}
	}
	var plain io.Reader = src
	if agefile.IsEncrypted(head) {
		encrypted = true
		if plain, err = h.decrypt(src, key, source); err != nil {
			return true, err
		}
	}
	r, err := pgdump.CheckMagic(plain)
	if err != nil {
		return encrypted, h.readError(err, key, source)
	}
	f, err := os.Create(path)
	if err != nil {
		return encrypted, fmt.Errorf("jobs: restore: temporary file: %w", err)
	}
	var n int64
	buf := make([]byte, 256<<10)
	for {
		m, rerr := r.Read(buf)
		if m > 0 {
			if _, werr := f.Write(buf[:m]); werr != nil {
				err = fmt.Errorf("jobs: restore: write temporary file: %w", werr)
				break
			}
			n += int64(m)
			pr.Set(n, 0, "bytes")
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			err = h.readError(rerr, key, source)
			break
		}
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("jobs: restore: write temporary file: %w", cerr)
	}
	if err == nil {
		err = ctx.Err()
	}
	if err == nil && want != "" {
		// Hash every stored byte, also any a decryptor left unread after its last chunk.
		if _, derr := io.Copy(io.Discard, src); derr != nil {
			err = h.readError(derr, key, source)
		}
	}
	if got := hex.EncodeToString(hr.h.Sum(nil)); err == nil && want != "" && got != want {
		err = export.Errorf(export.KindInvalid, "dump_checksum_mismatch",
			"the dump of %s in storage has SHA-256 %s, not the %s recorded for it: it was changed after it was uploaded or made; nothing was restored", source, got, want)
	}
	if err != nil {
		os.Remove(f.Name())
		return encrypted, err
	}
	_ = pr.Note(ctx, "")
	return encrypted, nil
}

// decrypt opens the age file src with the worker's identities.
func (h *DatabaseRestoreHandler) decrypt(src io.Reader, key, source string) (io.Reader, error) {
	if h.Identities == nil {
		return nil, &export.Error{Kind: export.KindInvalid, Code: "decrypt_identity_missing",
			Message: fmt.Sprintf("the dump of %s is age-encrypted and this worker has no identity to decrypt it: "+
				"set BACKUP_AGE_IDENTITY_FILE on the workers to an age identity file or SSH private key of one of its recipients; nothing was restored", source)}
	}
	plain, err := h.Identities.Decrypt(src)
	if err != nil {
		return nil, h.readError(err, key, source)
	}
	return plain, nil
}

// readError says what a failed read of the dump means: storage failed, or
// the encrypted file does not decrypt.
func (h *DatabaseRestoreHandler) readError(err error, key, source string) error {
	var se *agefile.SourceError
	switch {
	case errors.Is(err, agefile.ErrNoIdentityMatch):
		return &export.Error{Kind: export.KindInvalid, Code: "decrypt_failed", Err: err,
			Message: fmt.Sprintf("no identity in BACKUP_AGE_IDENTITY_FILE decrypts the dump of %s: it was encrypted to other recipients; nothing was restored", source)}
	case errors.Is(err, agefile.ErrDamaged):
		return &export.Error{Kind: export.KindInvalid, Code: "decrypt_failed", Err: err,
			Message: fmt.Sprintf("the encrypted dump of %s does not decrypt: %v; nothing was restored", source, err)}
	case errors.As(err, &se):
		return &storageError{fmt.Errorf("read %s: %w", key, se.Err)}
	}
	return err
}

func (h *DatabaseRestoreHandler) audit(ctx context.Context, job *export.Job, details map[string]any, err error) {
	if h.Audit == nil {
		return
	}
	outcome := "ok"
	if err != nil {
		code := "internal"
		if e, ok := errors.AsType[*export.Error](err); ok {
			code = e.Code
		}
		outcome = "error:" + code
	}
	params := map[string]any{"params": export.RedactParams(job.Params)}
	for k, v := range details {
		params[k] = v
	}
	actor := export.Principal{UserID: job.UserID, KeyID: job.KeyID}
	entry := export.AuditEntry{At: h.Runner.Now().UTC(), Actor: actor.String(), UserID: job.UserID,
		Action: "restore.finished", Target: "job:" + job.ID, Params: params, Outcome: outcome}
	if aerr := h.Audit(ctx, entry); aerr != nil {
		h.Runner.Log.ErrorContext(ctx, "audit_write_failed", "action", entry.Action, "target", entry.Target, "error", aerr)
	}
}
