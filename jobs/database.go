package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/lock"
	"github.com/hubexport/hubexport/internal/pgdump"
)

// ownSchema is hubexport's schema in the hub database. Backups leave it out
// and restores never touch it: restoring an old backup must not roll back
// the job records, including the restore's own.
const ownSchema = "hubexport"

// DatabaseTools is what backups and restores share: the hub database as the
// tools reach it, how the tools are found, and the backup lock.
type DatabaseTools struct {
	// Conn is DATABASE_URL, parsed for pg_dump and pg_restore.
	Conn pgdump.Conn
	// Tools holds PG_DUMP_PATH and PG_RESTORE_PATH.
	Tools pgdump.ToolConfig
	// LockRedis is CCH's Redis (HUB_REDIS_URL), which holds the backup
	// lock; LockPool is hubexport's database, whose advisory lock keeps
	// hubexport instances apart when Redis is unreachable.
	LockRedis redis.UniversalClient
	LockPool  *pgxpool.Pool
	// LockWait is how long a job waits for another holder of the backup
	// lock (0: lock.DefaultBackupWait); LockRenewEvery how often the held
	// lock is renewed, which bounds how late a lost lock is noticed (0: a
	// fifth of its 5-minute TTL).
	LockWait, LockRenewEvery time.Duration
}

// findTools picks pg_dump and pg_restore for the server at c. A major of 0
// (a dry run, which connects nowhere) takes any client that is found.
func (d *DatabaseTools) findTools(ctx context.Context, major int, log *slog.Logger) (*pgdump.Tools, error) {
	cfg := d.Tools
	cfg.Log = log
	return pgdump.FindTools(ctx, major, cfg)
}

// lockBackup takes the backup lock for job, showing "waiting for the backup
// lock" in the job's progress while another holder has it, and reporting
// the wait to m. event prefixes the conflict log line (database_export,
// database_import).
func (d *DatabaseTools) lockBackup(ctx context.Context, job *export.Job, pr *Progress, log *slog.Logger, event string, m Metrics) (*lock.BackupLock, error) {
	waited, start := false, time.Now()
	defer func() {
		if waited {
			m.LockWaited("backup", time.Since(start))
		}
	}()
	lk, err := lock.AcquireBackup(ctx, d.LockRedis, d.LockPool, lock.BackupOptions{
		Holder:     job.ID,
		Wait:       d.LockWait,
		RenewEvery: d.LockRenewEvery,
		Log:        log,
		OnWait: func(h lock.BackupHolder) {
			waited = true
			_ = pr.Note(ctx, fmt.Sprintf("waiting for the backup lock (held by %s, waited %s)", h, h.Waited.Round(time.Second)))
		},
	})
	if err != nil {
		if ctx.Err() == nil {
			log.WarnContext(ctx, event+"_lock_conflict", "error", err)
		}
		var held *lock.HeldError
		if errors.As(err, &held) {
			return nil, lockConflict(held)
		}
		return nil, err
	}
	if waited {
		_ = pr.Note(ctx, "")
	}
	return lk, nil
}

// toolConn is c for a pg_dump or pg_restore session on a server of major
// version major. From PostgreSQL 14 the server is asked to check every few
// seconds that the tool is still there: a tool killed while its session
// waits on a table lock would otherwise leave that session (and the locks
// it already holds) until the wait ends.
func toolConn(c pgdump.Conn, major int) pgdump.Conn {
	if major < 14 {
		return c
	}
	params := make(map[string]string, len(c.Params)+1)
	maps.Copy(params, c.Params)
	opt := "-c client_connection_check_interval=5000"
	if o := params["options"]; o != "" {
		opt = o + " " + opt
	}
	params["options"] = opt
	c.Params = params
	return c
}

// lockConflict is what the owner of a job reads when another holder kept
// the backup lock past BACKUP_LOCK_WAIT.
func lockConflict(held *lock.HeldError) error {
	return &export.Error{Kind: export.KindConflict, Code: "backup_lock_conflict",
		Message: fmt.Sprintf("the backup lock is held by %s (waited %s); another backup or restore is running, try again when it has finished",
			held.Holder, held.Holder.Waited.Round(time.Second)),
		Err: held}
}

// lockLost is the error of work stopped because the backup lock was lost.
func lockLost(what string, cause error) error {
	return &export.Error{Kind: export.KindConflict, Code: "backup_lock_lost",
		Message: fmt.Sprintf("the backup lock (%s) was lost during the %s, so it was stopped: another process (CCH's web UI?) took the lock, or Redis lost it; run it again", lock.BackupKey, what),
		Err:     cause}
}
