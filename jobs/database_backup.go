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

	"github.com/hubexport/hubexport/internal/agefile"
	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/pgdump"
)

// TypeDatabaseBackup is the task type of database_backup jobs. It is a wire
// contract: never rename it while tasks may be queued.
const TypeDatabaseBackup = "export:database_backup"

const databaseBackupQueue = QueueBackups

// NewDatabaseBackupTask builds the task of database_backup job jobID. A
// backup that fails is retried twice at most (failureBudgets): each try
// dumps the whole database again.
func NewDatabaseBackupTask(jobID string) *asynq.Task {
	return newJobTask(TypeDatabaseBackup, jobID, asynq.Queue(databaseBackupQueue), asynq.MaxRetry(jobTaskMaxRetry), asynq.Timeout(6*time.Hour))
}

// DatabaseSizer reads the hub database's size, which a backup logs (internal/hub).
type DatabaseSizer interface {
	DatabaseSize(ctx context.Context) (int64, error)
}

// DatabaseBackupHandler runs database_backup tasks: pg_dump -Fc of the hub
// database, under the backup lock, streamed into storage and read back with
// pg_restore --list before the job succeeds.
//
// An encrypted backup streams pg_dump → age → storage: the plaintext never
// touches the disk. It is teed to pg_restore --list as it streams, and the
// stored ciphertext's size and SHA-256 are checked after the upload.
type DatabaseBackupHandler struct {
	Runner *Runner
	DB     *DatabaseTools
	Size   DatabaseSizer
	// AgeRecipients, when not empty, is the server's policy: every backup is
	// encrypted to them (BACKUP_AGE_RECIPIENTS), and to a job's own.
	AgeRecipients []agefile.Recipient
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
	// Set for an encrypted backup: its recipients, and what the plaintext
	// tee saw.
	recipients []agefile.Recipient
	plain      *plainTee
}

// recipients are whom job params p's backup is encrypted to: none for a
// plain backup.
func (h *DatabaseBackupHandler) recipients(p export.BackupParams) ([]agefile.Recipient, error) {
	if !p.Encrypt && len(h.AgeRecipients) == 0 {
		return nil, nil
	}
	rs := append([]agefile.Recipient(nil), h.AgeRecipients...)
	for i, s := range p.AgeRecipients {
		r, err := agefile.ParseRecipient(s)
		if err != nil {
			return nil, export.Invalid(fmt.Sprintf("params.age_recipients[%d]", i), "%v", err)
		}
		rs = append(rs, r)
	}
	if len(rs) == 0 {
		return nil, &export.Error{Kind: export.KindInvalid, Code: "encryption_unconfigured",
			Message: "the backup must be encrypted but this worker has no recipients: set BACKUP_AGE_RECIPIENTS or BACKUP_AGE_RECIPIENTS_FILE on the workers as on the API"}
	}
	return agefile.Dedupe(rs), nil
}

func (a *backupAttempt) produce(ctx context.Context, job *export.Job, w io.Writer, pr *Progress) (int64, error) {
	h := a.h
	var p export.BackupParams
	if err := json.Unmarshal(job.Params, &p); err != nil {
		return 0, export.Errorf(export.KindInvalid, "invalid_params", "stored params do not decode: %v", err)
	}
	a.mode = p.Mode
	// The tools' log lines name the mode themselves (pg_dump_start).
	toolLog := h.Runner.Log.With("job_id", job.ID)
	log := toolLog.With("mode", p.Mode)
	fail := func(err error) (int64, error) {
		if ctx.Err() == nil {
			log.ErrorContext(ctx, "database_export_error", "error", err)
		}
		return 0, err
	}
	var err error
	if a.recipients, err = h.recipients(p); err != nil {
		return fail(err)
	}
	log.InfoContext(ctx, "database_export_initiated", "database", h.DB.Conn,
		"encrypted", len(a.recipients) > 0, "recipients", agefile.Fingerprints(a.recipients))

	major, err := pgdump.ServerMajor(ctx, h.DB.Conn)
	if err != nil {
		return fail(&export.Error{Kind: export.KindUnavailable, Code: "database_unavailable",
			Message: "cannot read the hub database's version; check that the database (DATABASE_URL) is up and reachable", Err: err})
	}
	if a.tools, err = h.DB.findTools(ctx, major, toolLog); err != nil {
		return fail(err)
	}

	lk, err := h.DB.lockBackup(ctx, job, pr, log, "database_export", h.Runner.metrics())
	if err != nil {
		return fail(err)
	}
	defer lk.Release(context.WithoutCancel(ctx))
	lockCtx, stop := lk.Context(ctx)
	defer stop()

	// Progress is the dump's bytes with no total: the database's size is no
	// measure of its compressed dump (a 247 MB database dumped to 4.7 MB),
	// so a bar against it would sit near 0 % and then jump. The size is
	// logged for the operator.
	if size, err := h.Size.DatabaseSize(ctx); err != nil {
		log.WarnContext(ctx, "database_size_failed", "error", err)
	} else {
		log.InfoContext(ctx, "database_size", "bytes", size)
	}
	pr.Set(0, 0, "bytes")
	mt, err := startManifest(lockCtx, h.DB.Conn, pgdump.Mode(p.Mode), job.ID)
	if err != nil {
		return fail(err)
	}
	defer mt.stop(ctx)
	if len(a.recipients) > 0 {
		enc, err := agefile.Encrypt(w, a.recipients)
		if err != nil {
			return fail(err)
		}
		a.plain = newPlainTee(ctx, enc, a.tools)
		w = a.plain
	}
	_, err = a.tools.Dump(lockCtx, pgdump.DumpOptions{
		Conn:           toolConn(h.DB.Conn, major),
		Mode:           pgdump.Mode(p.Mode),
		ExcludeSchemas: []string{ownSchema},
		Snapshot:       mt.snap.ID,
		OnProgress:     func(n int64) { pr.Set(n, 0, "bytes") },
	}, w)
	if a.plain != nil {
		if ferr := a.plain.finish(err); err == nil {
			err = ferr
		}
	}
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
	var toc *pgdump.TOC
	if a.plain != nil {
		// The stored file is ciphertext, which this worker may not be able to
		// decrypt: its plaintext was listed as it streamed, and the bytes
		// stored must be the bytes encrypted.
		toc = a.plain.toc
		head := make([]byte, agefile.HeaderLen)
		n, _ := io.ReadFull(hr, head)
		if !agefile.IsEncrypted(head[:n]) {
			return unverifiable("storage does not hold an age file", nil)
		}
	} else if toc, err = a.tools.List(ctx, hr); err != nil {
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
	if a.plain != nil {
		res.Details["encrypted"] = true
		res.Details["encryption"] = "age"
		res.Details["recipients"] = agefile.Fingerprints(a.recipients)
		res.Details["plaintext_bytes"] = a.plain.n
		res.Details["plaintext_sha256"] = hex.EncodeToString(a.plain.h.Sum(nil))
	}
	return writeManifest(ctx, a.h.Runner.Objects, key, a.manifest)
}

// plainTee takes the dump's plaintext: it hands it to the age encryptor and
// to pg_restore --list, which reads the archive's table of contents as the
// dump streams, so the plaintext is checked without ever being stored.
type plainTee struct {
	enc  io.WriteCloser
	pw   *io.PipeWriter
	h    hash.Hash
	n    int64
	done chan struct{}
	// Set once done is closed.
	toc     *pgdump.TOC
	listErr error
}

func newPlainTee(ctx context.Context, enc io.WriteCloser, tools *pgdump.Tools) *plainTee {
	pr, pw := io.Pipe()
	t := &plainTee{enc: enc, pw: pw, h: sha256.New(), done: make(chan struct{})}
	go func() {
		defer close(t.done)
		t.toc, t.listErr = tools.List(ctx, pr)
		// pg_restore stops after the table of contents: take the rest so the
		// dump is never held up, and a failed listing does not stop it.
		_, _ = io.Copy(io.Discard, pr)
	}()
	return t
}

func (t *plainTee) Write(p []byte) (int, error) {
	n, err := t.enc.Write(p)
	if err != nil {
		return n, err
	}
	t.h.Write(p)
	t.n += int64(len(p))
	if _, err := t.pw.Write(p); err != nil {
		return n, fmt.Errorf("jobs: plaintext listing: %w", err)
	}
	return n, nil
}

// finish ends the stream after the dump returned dumpErr: it writes age's
// last chunk and waits for the listing, whose failure it returns.
func (t *plainTee) finish(dumpErr error) error {
	if dumpErr != nil {
		t.pw.CloseWithError(dumpErr)
		<-t.done
		return dumpErr
	}
	err := t.enc.Close()
	t.pw.Close()
	<-t.done
	if err != nil {
		return err
	}
	if t.listErr != nil {
		if errors.Is(t.listErr, context.Canceled) || errors.Is(t.listErr, context.DeadlineExceeded) {
			return t.listErr
		}
		return unverifiable("pg_restore --list cannot read its plaintext", t.listErr)
	}
	return nil
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
