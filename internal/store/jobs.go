package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/pgretry"
)

// Store is hubexport's PostgreSQL store.
type Store struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

// New returns a store over pool. now is the clock (time.Now in production).
func New(pool *pgxpool.Pool, now func() time.Time) *Store {
	return &Store{pool: pool, now: now}
}

// Ping checks that PostgreSQL answers.
func (s *Store) Ping(ctx context.Context) error {
	return s.pool.Ping(ctx)
}

const jobColumns = `id, type, format, status, params, progress_done, progress_total, progress_unit, progress_note,
	result, error_code, error_message, error_detail, user_id, key_id, idempotency_key, request_hash, storage_key,
	attempts, created_at, started_at, finished_at, updated_at, schedule_id`

func scanJob(row pgx.Row) (*export.Job, error) {
	var (
		j                export.Job
		result           []byte
		errCode, errMsg  *string
		errDetail        string
		idemKey, storage *string
		scheduleID       *string
		jobType, format  string
		status           string
	)
	err := row.Scan(&j.ID, &jobType, &format, &status, &j.Params, &j.Progress.Done, &j.Progress.Total,
		&j.Progress.Unit, &j.Progress.Note, &result, &errCode, &errMsg, &errDetail, &j.UserID, &j.KeyID, &idemKey,
		&j.RequestHash, &storage, &j.Attempts, &j.CreatedAt, &j.StartedAt, &j.FinishedAt, &j.UpdatedAt, &scheduleID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, export.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	j.Type, j.Format, j.Status = export.Type(jobType), export.Format(format), export.Status(status)
	if result != nil {
		j.Result = &export.Result{}
		if err := json.Unmarshal(result, j.Result); err != nil {
			return nil, fmt.Errorf("store: decode result of %s: %w", j.ID, err)
		}
	}
	if errCode != nil {
		j.Error = &export.JobError{Code: *errCode, Message: deref(errMsg), Detail: errDetail}
	}
	j.IdempotencyKey, j.StorageKey, j.ScheduleID = deref(idemKey), deref(storage), deref(scheduleID)
	j.Progress = j.Progress.WithPercent()
	if j.Status == export.StatusSucceeded {
		j.Progress.Percent = 100
	}
	j.CreatedAt, j.UpdatedAt = j.CreatedAt.UTC(), j.UpdatedAt.UTC()
	j.StartedAt, j.FinishedAt = utcPtr(j.StartedAt), utcPtr(j.FinishedAt)
	return &j, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// CreateJob implements export.JobStore.
func (s *Store) CreateJob(ctx context.Context, j *export.Job, maxActive int) (*export.Job, bool, error) {
	var (
		out      *export.Job
		replayed bool
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// One owner's creates are serialised so the cap and the
		// idempotency check (per token: user and key) cannot be raced past.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('hubexport:owner:' || $1::bigint::text, 0))`, j.UserID); err != nil {
			return err
		}
		if j.IdempotencyKey != "" {
			prev, err := scanJob(tx.QueryRow(ctx, `SELECT `+jobColumns+` FROM hubexport.jobs WHERE user_id = $1 AND key_id = $2 AND idempotency_key = $3`,
				j.UserID, j.KeyID, j.IdempotencyKey))
			if err == nil {
				out, replayed = prev, true
				return nil
			}
			if !errors.Is(err, export.ErrNotFound) {
				return err
			}
		}
		if maxActive > 0 {
			var active int
			// Scheduled backups are the system's: they do not use up the
			// admin token's allowance.
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM hubexport.jobs WHERE user_id = $1 AND status IN ('queued', 'running')
				AND schedule_id IS NULL`, j.UserID).Scan(&active); err != nil {
				return err
			}
			if active >= maxActive {
				e := export.Errorf(export.KindTooMany, "too_many_active_jobs",
					"you already have %d queued or running exports (the limit is %d); wait for one to finish or cancel one", active, maxActive)
				e.RetryAfter = 30 * time.Second
				return e
			}
		}
		var err error
		out, err = scanJob(tx.QueryRow(ctx, `INSERT INTO hubexport.jobs
			(id, type, format, status, params, user_id, key_id, idempotency_key, request_hash, created_at, updated_at)
			VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8, $9, $9)
			RETURNING `+jobColumns,
			j.ID, j.Type, j.Format, []byte(j.Params), j.UserID, j.KeyID, nullIfEmpty(j.IdempotencyKey), j.RequestHash, j.CreatedAt))
		return err
	})
	if err != nil {
		var e *export.Error
		if errors.As(err, &e) {
			return nil, false, e
		}
		return nil, false, fmt.Errorf("store: create job: %w", err)
	}
	return out, replayed, nil
}

// Job implements export.JobStore.
func (s *Store) Job(ctx context.Context, id string) (*export.Job, error) {
	var j *export.Job
	err := pgretry.Read(ctx, s.pool, func() (err error) {
		j, err = scanJob(s.pool.QueryRow(ctx, `SELECT `+jobColumns+` FROM hubexport.jobs WHERE id = $1`, id))
		return err
	})
	if err != nil && !errors.Is(err, export.ErrNotFound) {
		return nil, fmt.Errorf("store: job %s: %w", id, err)
	}
	return j, err
}

// Jobs implements export.JobStore. The cursor is the last id of the
// previous page; ids sort by creation time.
func (s *Store) Jobs(ctx context.Context, f export.JobFilter) (export.JobPage, error) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.UserID != nil {
		add("user_id = $%d", *f.UserID)
	}
	if f.Type != "" {
		add("type = $%d", string(f.Type))
	}
	if f.Status != "" {
		add("status = $%d", string(f.Status))
	}
	if f.ScheduleID != "" {
		add("schedule_id = $%d", f.ScheduleID)
	}
	if f.Cursor != "" {
		after, err := decodeCursor(f.Cursor, "exp_")
		if err != nil {
			return export.JobPage{}, err
		}
		add("id < $%d", after)
	}
	q := `SELECT ` + jobColumns + ` FROM hubexport.jobs`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, f.Limit+1)
	q += fmt.Sprintf(" ORDER BY id DESC LIMIT $%d", len(args))
	jobs, err := s.list(ctx, "list jobs", q, args...)
	if err != nil {
		return export.JobPage{}, err
	}
	page := export.JobPage{Jobs: jobs}
	if page.Jobs == nil {
		page.Jobs = []*export.Job{}
	}
	if len(page.Jobs) > f.Limit {
		page.Jobs = page.Jobs[:f.Limit]
		page.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(page.Jobs[f.Limit-1].ID))
	}
	return page, nil
}

// CancelJob implements export.JobStore.
func (s *Store) CancelJob(ctx context.Context, id string, e *export.JobError) (*export.Job, error) {
	j, err := scanJob(s.pool.QueryRow(ctx, `UPDATE hubexport.jobs SET status = 'canceled', lease_token = NULL, notify_pending = true,
		error_code = $2, error_message = $3, error_detail = $4, finished_at = now(), updated_at = now(),
		needs_cleanup = needs_cleanup OR status = 'running'
		WHERE id = $1 AND status IN ('queued', 'running') RETURNING `+jobColumns, id, e.Code, e.Message, e.Detail))
	if errors.Is(err, export.ErrNotFound) {
		return s.Job(ctx, id)
	}
	if err != nil {
		return nil, fmt.Errorf("store: cancel job %s: %w", id, err)
	}
	return j, nil
}

// MarkArtifactDeleted implements export.JobStore.
func (s *Store) MarkArtifactDeleted(ctx context.Context, id string) (*export.Job, error) {
	return s.expire(ctx, id)
}

func (s *Store) expire(ctx context.Context, id string) (*export.Job, error) {
	j, err := scanJob(s.pool.QueryRow(ctx, `UPDATE hubexport.jobs SET status = 'expired', updated_at = now()
		WHERE id = $1 AND status IN ('succeeded', 'expired') RETURNING `+jobColumns, id))
	if errors.Is(err, export.ErrNotFound) {
		return s.Job(ctx, id)
	}
	if err != nil {
		return nil, fmt.Errorf("store: expire job %s: %w", id, err)
	}
	return j, nil
}

// Audit implements export.JobStore.
//
// Refused requests are audited too, and their input may be anything: every
// string is stored printable (export.Printable), since text and jsonb
// cannot hold NUL and invalid UTF-8 would be lost.
func (s *Store) Audit(ctx context.Context, e export.AuditEntry) error {
	var params []byte
	if e.Params != nil {
		raw, err := json.Marshal(printableJSON(e.Params))
		if err != nil {
			return fmt.Errorf("store: audit params: %w", err)
		}
		// Strings inside raw JSON values (request params) are escaped by
		// decoding them again.
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("store: audit params: %w", err)
		}
		if params, err = json.Marshal(printableJSON(v)); err != nil {
			return fmt.Errorf("store: audit params: %w", err)
		}
	}
	p := export.Printable
	_, err := s.pool.Exec(ctx, `INSERT INTO hubexport.audit_log (at, actor, user_id, action, target, params, address, outcome)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, e.At, p(e.Actor), e.UserID, p(e.Action), p(e.Target), params, p(e.Address), p(e.Outcome))
	if err != nil {
		return fmt.Errorf("store: audit: %w", err)
	}
	return nil
}

// BeginAttempt hands job id to the attempt holding token: the job becomes
// running and the attempt count goes up. It returns export.ErrJobEnded (with the
// job) when there is nothing left to do.
func (s *Store) BeginAttempt(ctx context.Context, id, token string) (*export.Job, error) {
	// The attempt's row is written in the same statement, so an attempt
	// that never records its end is known to have crashed.
	j, err := scanJob(s.pool.QueryRow(ctx, `WITH j AS (UPDATE hubexport.jobs SET status = 'running', attempts = attempts + 1,
		lease_token = $2, started_at = COALESCE(started_at, now()), updated_at = now(),
		progress_done = 0, progress_note = ''
		WHERE id = $1 AND status IN ('queued', 'running') RETURNING *),
	a AS (INSERT INTO hubexport.job_attempts (job_id, attempt, token) SELECT id, attempts, $2 FROM j
		ON CONFLICT (job_id, attempt) DO UPDATE SET token = EXCLUDED.token, started_at = now(), ended_at = NULL, outcome = NULL)
	SELECT `+jobColumns+` FROM j`, id, token))
	if errors.Is(err, export.ErrNotFound) {
		j, err := s.Job(ctx, id)
		if err != nil {
			return nil, err
		}
		return j, export.ErrJobEnded
	}
	if err != nil {
		return nil, fmt.Errorf("store: begin attempt of %s: %w", id, err)
	}
	return j, nil
}

// EndAttempt records how the attempt holding token ended: succeeded,
// failed (on its own: it counts against the job's retries) or
// interrupted. An attempt already ended keeps its first outcome.
func (s *Store) EndAttempt(ctx context.Context, id, token, outcome string) error {
	_, err := s.pool.Exec(ctx, `UPDATE hubexport.job_attempts SET ended_at = now(), outcome = $3
		WHERE job_id = $1 AND token = $2 AND ended_at IS NULL`, id, token, outcome)
	if err != nil {
		return fmt.Errorf("store: end attempt of %s: %w", id, err)
	}
	return nil
}

// AttemptHistory reads job id's attempts before the one holding token:
// how many failed on their own, and how many of the latest ones in a row
// started and never ended (their worker crashed).
func (s *Store) AttemptHistory(ctx context.Context, id, token string) (failed, crashedInARow int, err error) {
	err = s.pool.QueryRow(ctx, `WITH prev AS (SELECT attempt, ended_at, outcome FROM hubexport.job_attempts
		WHERE job_id = $1 AND token <> $2)
	SELECT (SELECT count(*) FROM prev WHERE outcome = 'failed'),
		(SELECT count(*) FROM prev WHERE ended_at IS NULL
			AND attempt > COALESCE((SELECT max(attempt) FROM prev WHERE ended_at IS NOT NULL), 0))`, id, token).Scan(&failed, &crashedInARow)
	if err != nil {
		return 0, 0, fmt.Errorf("store: attempt history of %s: %w", id, err)
	}
	return failed, crashedInARow, nil
}

func (s *Store) attemptUpdate(ctx context.Context, what, q string, args ...any) error {
	tag, err := s.pool.Exec(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	if tag.RowsAffected() == 0 {
		return export.ErrSuperseded
	}
	return nil
}

// SetProgress records progress of the attempt holding token.
func (s *Store) SetProgress(ctx context.Context, id, token string, p export.Progress) error {
	return s.attemptUpdate(ctx, "set progress", `UPDATE hubexport.jobs SET progress_done = $3, progress_total = $4,
		progress_unit = $5, progress_note = $6, updated_at = now()
		WHERE id = $1 AND lease_token = $2 AND status = 'running'`, id, token, p.Done, p.Total, p.Unit, p.Note)
}

// CheckAttempt reports export.ErrSuperseded when the attempt holding token no
// longer owns the job (canceled, or taken over).
func (s *Store) CheckAttempt(ctx context.Context, id, token string) error {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM hubexport.jobs WHERE id = $1 AND lease_token = $2 AND status = 'running'`, id, token).Scan(&n); err != nil {
		return fmt.Errorf("store: check attempt: %w", err)
	}
	if n == 0 {
		return export.ErrSuperseded
	}
	return nil
}

// Succeed records the attempt's artifact and ends the job. A job without an
// artifact has no storage key and no expiry.
func (s *Store) Succeed(ctx context.Context, id, token, storageKey string, r export.Result) error {
	res, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("store: encode result: %w", err)
	}
	var expires *time.Time
	if !r.ExpiresAt.IsZero() {
		expires = &r.ExpiresAt
	}
	const succeed = `UPDATE hubexport.jobs SET status = 'succeeded', notify_pending = true, result = $3,
		storage_key = $4, expires_at = $5, progress_done = GREATEST(progress_done, $6), progress_note = '',
		error_code = NULL, error_message = NULL, error_detail = '', lease_token = NULL, finished_at = now(), updated_at = now()
		WHERE id = $1 AND lease_token = $2 AND status = 'running'`
	if r.Feed == nil {
		return s.attemptUpdate(ctx, "mark succeeded", succeed, id, token, res, nullIfEmpty(storageKey), expires, r.Rows)
	}
	return s.succeedFeed(ctx, id, r.Feed, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, succeed, id, token, res, nullIfEmpty(storageKey), expires, r.Rows)
		if err != nil {
			return fmt.Errorf("store: mark succeeded: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return export.ErrSuperseded
		}
		return nil
	})
}

// Requeue puts the job back in the queue after an attempt that will be
// retried, keeping why it failed.
func (s *Store) Requeue(ctx context.Context, id, token string, e *export.JobError) error {
	return s.attemptUpdate(ctx, "requeue", `UPDATE hubexport.jobs SET status = 'queued', lease_token = NULL,
		error_code = $3, error_message = $4, error_detail = $5, progress_note = '', updated_at = now()
		WHERE id = $1 AND lease_token = $2 AND status = 'running'`, id, token, e.Code, e.Message, e.Detail)
}

// Fail ends the job as failed. An empty token fails it whichever attempt
// holds it (the reconciler's case). leftovers marks that an unfinished
// upload may remain for maintenance to remove.
func (s *Store) Fail(ctx context.Context, id, token string, e *export.JobError, leftovers bool) error {
	return s.attemptUpdate(ctx, "mark failed", `UPDATE hubexport.jobs SET status = 'failed', lease_token = NULL, notify_pending = true,
		error_code = $3, error_message = $4, error_detail = $6, progress_note = '', needs_cleanup = needs_cleanup OR $5,
		finished_at = now(), updated_at = now()
		WHERE id = $1 AND status IN ('queued', 'running') AND ($2 = '' OR lease_token = $2)`, id, token, e.Code, e.Message, leftovers, e.Detail)
}

// MarkLeftovers records that job id may have an unfinished upload left.
func (s *Store) MarkLeftovers(ctx context.Context, id string, leftovers bool) error {
	_, err := s.pool.Exec(ctx, `UPDATE hubexport.jobs SET needs_cleanup = $2 WHERE id = $1 AND needs_cleanup <> $2`, id, leftovers)
	if err != nil {
		return fmt.Errorf("store: mark leftovers: %w", err)
	}
	return nil
}

// Unfinished lists jobs queued or running whose record has not changed for
// at least quiet: the reconciler checks that each still has a task.
func (s *Store) Unfinished(ctx context.Context, quiet time.Duration, limit int) ([]*export.Job, error) {
	return s.list(ctx, "unfinished jobs", `SELECT `+jobColumns+` FROM hubexport.jobs
		WHERE status IN ('queued', 'running') AND updated_at < now() - make_interval(secs => $1)
		ORDER BY updated_at LIMIT $2`, quiet.Seconds(), limit)
}

// ExpiredArtifacts lists succeeded jobs whose artifact is past its expiry.
func (s *Store) ExpiredArtifacts(ctx context.Context, limit int) ([]*export.Job, error) {
	return s.list(ctx, "expired artifacts", `SELECT `+jobColumns+` FROM hubexport.jobs
		WHERE status = 'succeeded' AND expires_at <= $1 ORDER BY expires_at LIMIT $2`, s.now(), limit)
}

// Expire marks a job's artifact gone.
func (s *Store) Expire(ctx context.Context, id string) error {
	_, err := s.expire(ctx, id)
	return err
}

// WithLeftovers lists ended jobs that may have an unfinished upload left.
func (s *Store) WithLeftovers(ctx context.Context, limit int) ([]*export.Job, error) {
	return s.list(ctx, "jobs with leftovers", `SELECT `+jobColumns+` FROM hubexport.jobs
		WHERE needs_cleanup AND status NOT IN ('queued', 'running') ORDER BY id LIMIT $1`, limit)
}

// list runs the read q and scans its jobs, retried once on a lost
// connection.
func (s *Store) list(ctx context.Context, what, q string, args ...any) ([]*export.Job, error) {
	var out []*export.Job
	err := pgretry.Read(ctx, s.pool, func() error {
		out = nil
		rows, err := s.pool.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			j, err := scanJob(rows)
			if err != nil {
				return err
			}
			out = append(out, j)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	return out, nil
}

// Setting returns the value stored under name, storing value first if
// there is none yet; every instance gets the same value.
func (s *Store) Setting(ctx context.Context, name, value string) (string, error) {
	var out string
	// A concurrent first insert can hide from this statement's snapshot;
	// the second try sees it.
	for try := 0; ; try++ {
		err := s.pool.QueryRow(ctx, `WITH ins AS (
			INSERT INTO hubexport.settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING value)
		SELECT value FROM ins UNION ALL SELECT value FROM hubexport.settings WHERE name = $1 LIMIT 1`, name, value).Scan(&out)
		if errors.Is(err, pgx.ErrNoRows) && try == 0 {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("store: setting %s: %w", name, err)
		}
		return out, nil
	}
}

// JobsToNotify lists ended jobs whose announcement has not been recorded
// although they ended at least quiet ago: their process died between
// ending them and recording the webhook deliveries.
func (s *Store) JobsToNotify(ctx context.Context, quiet time.Duration, limit int) ([]*export.Job, error) {
	return s.list(ctx, "jobs to notify", `SELECT `+jobColumns+` FROM hubexport.jobs
		WHERE notify_pending AND finished_at < now() - make_interval(secs => $1)
		ORDER BY finished_at LIMIT $2`, quiet.Seconds(), limit)
}
