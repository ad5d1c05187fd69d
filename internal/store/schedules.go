package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hubexport/hubexport/internal/export"
)

var _ export.ScheduleStore = (*Store)(nil)

// scheduleColumns are read from hubexport.schedules aliased s; the last
// success is read from the schedule's jobs.
const scheduleColumns = `s.id, s.name, s.cron, s.timezone, s.mode, s.keep_last, s.keep_hourly, s.keep_daily, s.keep_weekly,
	s.keep_monthly, s.keep_yearly, s.max_age_days, s.enabled,
	s.encrypt, s.age_recipients, s.active_since, s.last_slot_at, s.overdue_since, s.created_at, s.updated_at,
	s.verify, s.verify_every_nth, s.last_verify_job_id, s.last_verify_at, s.last_verify_passed, s.last_verified_at,
	(SELECT max(j.finished_at) FROM hubexport.jobs j
	  WHERE j.schedule_id = s.id AND j.status IN ('succeeded', 'expired')),
	s.job_type, s.job_format, s.job_params, s.time_window, s.owner_user_id, s.owner_key_id, s.disabled_reason,
	(SELECT f.mark_at FROM hubexport.feeds f WHERE f.owner_user_id = s.owner_user_id AND f.name = s.id),
	(SELECT f.mark_id FROM hubexport.feeds f WHERE f.owner_user_id = s.owner_user_id AND f.name = s.id)`

func scanSchedule(row pgx.Row) (*export.Schedule, error) {
	var (
		sc         export.Schedule
		verifyJob  *string
		verifyAt   *time.Time
		verifyPass *bool
		jobParams  []byte
		markAt     *time.Time
		markID     *int64
	)
	err := row.Scan(&sc.ID, &sc.Name, &sc.Cron, &sc.Timezone, &sc.Mode, &sc.Retention.KeepLast, &sc.Retention.KeepHourly,
		&sc.Retention.KeepDaily, &sc.Retention.KeepWeekly, &sc.Retention.KeepMonthly, &sc.Retention.KeepYearly, &sc.Retention.MaxAgeDays,
		&sc.Enabled, &sc.Encrypt, &sc.AgeRecipients, &sc.ActiveSince, &sc.LastSlotAt, &sc.OverdueSince, &sc.CreatedAt, &sc.UpdatedAt,
		&sc.Verify.Mode, &sc.Verify.EveryNth, &verifyJob, &verifyAt, &verifyPass, &sc.LastVerifiedAt, &sc.LastSuccessAt,
		&sc.Job.Type, &sc.Job.Format, &jobParams, &sc.Window, &sc.OwnerUserID, &sc.OwnerKeyID, &sc.DisabledReason, &markAt, &markID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, export.ErrScheduleNotFound
	}
	if err != nil {
		return nil, err
	}
	sc.ActiveSince, sc.CreatedAt, sc.UpdatedAt = sc.ActiveSince.UTC(), sc.CreatedAt.UTC(), sc.UpdatedAt.UTC()
	sc.LastSlotAt, sc.OverdueSince, sc.LastSuccessAt = utcPtr(sc.LastSlotAt), utcPtr(sc.OverdueSince), utcPtr(sc.LastSuccessAt)
	sc.LastVerifiedAt = utcPtr(sc.LastVerifiedAt)
	if jobParams != nil {
		sc.Job.Params = jobParams
	}
	if markAt != nil && markID != nil {
		sc.Feed = &export.FeedMark{CreatedAt: markAt.UTC(), ID: *markID}
	}
	if verifyJob != nil && verifyAt != nil && verifyPass != nil {
		sc.LastVerify = &export.LastVerify{JobID: *verifyJob, At: verifyAt.UTC(), Passed: *verifyPass}
	}
	return &sc, nil
}

// jobType, jobFormat and jobParams are the template columns: a backup
// schedule's params are its own columns (NULL here).
func jobType(sc *export.Schedule) string {
	if sc.Job.Type == "" {
		return string(export.TypeDatabaseBackup)
	}
	return string(sc.Job.Type)
}

func jobFormat(sc *export.Schedule) string {
	if sc.Job.Format == "" {
		return string(export.FormatDump)
	}
	return string(sc.Job.Format)
}

func jobParams(sc *export.Schedule) []byte {
	if sc.IsBackup() || len(sc.Job.Params) == 0 {
		return nil
	}
	return sc.Job.Params
}

// recipientsArray is never NULL: the column is NOT NULL.
func recipientsArray(rs []string) []string {
	if rs == nil {
		return []string{}
	}
	return rs
}

func (s *Store) schedules(ctx context.Context, what, q string, args ...any) ([]*export.Schedule, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	defer rows.Close()
	out := []*export.Schedule{}
	for rows.Next() {
		sc, err := scanSchedule(rows)
		if err != nil {
			return nil, fmt.Errorf("store: %s: %w", what, err)
		}
		out = append(out, sc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	return out, nil
}

// CreateSchedule implements export.ScheduleStore.
func (s *Store) CreateSchedule(ctx context.Context, sc *export.Schedule) (*export.Schedule, error) {
	out, err := scanSchedule(s.pool.QueryRow(ctx, `WITH s AS (INSERT INTO hubexport.schedules
		(id, name, cron, timezone, mode, keep_last, max_age_days, enabled, active_since, created_at, updated_at,
		 keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly, encrypt, age_recipients, verify, verify_every_nth,
		 job_type, job_format, job_params, time_window, owner_user_id, owner_key_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
		 $20, $21, $22, $23, $24, $25) RETURNING *)
		SELECT `+scheduleColumns+` FROM s`,
		sc.ID, sc.Name, sc.Cron, sc.Timezone, sc.Mode, sc.Retention.KeepLast, sc.Retention.MaxAgeDays, sc.Enabled,
		sc.ActiveSince, sc.CreatedAt, sc.Retention.KeepHourly, sc.Retention.KeepDaily, sc.Retention.KeepWeekly,
		sc.Retention.KeepMonthly, sc.Retention.KeepYearly, sc.Encrypt, recipientsArray(sc.AgeRecipients), verifyMode(sc.Verify), sc.Verify.EveryNth,
		jobType(sc), jobFormat(sc), jobParams(sc), sc.Window, sc.OwnerUserID, sc.OwnerKeyID))
	if err != nil {
		return nil, fmt.Errorf("store: create schedule: %w", err)
	}
	return out, nil
}

// Schedule implements export.ScheduleStore.
func (s *Store) Schedule(ctx context.Context, id string) (*export.Schedule, error) {
	sc, err := scanSchedule(s.pool.QueryRow(ctx, `SELECT `+scheduleColumns+` FROM hubexport.schedules s WHERE s.id = $1`, id))
	if err != nil && !errors.Is(err, export.ErrScheduleNotFound) {
		return nil, fmt.Errorf("store: schedule %s: %w", id, err)
	}
	return sc, err
}

// Schedules implements export.ScheduleStore.
func (s *Store) Schedules(ctx context.Context, owner *int64, cursor string, limit int) (export.SchedulePage, error) {
	after := "\uffff"
	if cursor != "" {
		var err error
		if after, err = decodeCursor(cursor, export.ScheduleIDPrefix); err != nil {
			return export.SchedulePage{}, err
		}
	}
	list, err := s.schedules(ctx, "list schedules", `SELECT `+scheduleColumns+` FROM hubexport.schedules s
		WHERE s.id < $1 AND ($3::bigint IS NULL OR s.owner_user_id = $3) ORDER BY s.id DESC LIMIT $2`, after, limit+1, owner)
	if err != nil {
		return export.SchedulePage{}, err
	}
	page := export.SchedulePage{Schedules: list}
	if len(list) > limit {
		page.Schedules = list[:limit]
		page.NextCursor = encodeCursor(list[limit-1].ID)
	}
	return page, nil
}

// CountSchedules implements export.ScheduleStore.
func (s *Store) CountSchedules(ctx context.Context, owner int64) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM hubexport.schedules WHERE owner_user_id = $1`, owner).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count schedules of user %d: %w", owner, err)
	}
	return n, nil
}

// DisableSchedule implements export.ScheduleStore.
func (s *Store) DisableSchedule(ctx context.Context, id, reason string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE hubexport.schedules SET enabled = false, disabled_reason = $2, updated_at = now()
		WHERE id = $1 AND enabled`, id, reason)
	if err != nil {
		return false, fmt.Errorf("store: disable schedule %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// AllSchedules implements export.ScheduleStore.
func (s *Store) AllSchedules(ctx context.Context, enabledOnly bool) ([]*export.Schedule, error) {
	return s.schedules(ctx, "all schedules", `SELECT `+scheduleColumns+` FROM hubexport.schedules s
		WHERE s.enabled OR NOT $1 ORDER BY s.id`, enabledOnly)
}

// UpdateSchedule implements export.ScheduleStore. The slot and overdue
// bookkeeping belong to the scheduler and are left alone, except that a
// schedule starting afresh (a new ActiveSince) is no longer overdue.
func (s *Store) UpdateSchedule(ctx context.Context, sc *export.Schedule) (*export.Schedule, error) {
	out, err := scanSchedule(s.pool.QueryRow(ctx, `WITH s AS (UPDATE hubexport.schedules SET name = $2, cron = $3,
		timezone = $4, mode = $5, keep_last = $6, max_age_days = $7, enabled = $8, active_since = $9, updated_at = $10,
		keep_hourly = $11, keep_daily = $12, keep_weekly = $13, keep_monthly = $14, keep_yearly = $15,
		encrypt = $16, age_recipients = $17, verify = $18, verify_every_nth = $19,
		job_format = $20, job_params = $21, time_window = $22, disabled_reason = $23, owner_key_id = $24,
		overdue_since = CASE WHEN active_since IS DISTINCT FROM $9 THEN NULL ELSE overdue_since END
		WHERE id = $1 RETURNING *)
		SELECT `+scheduleColumns+` FROM s`,
		sc.ID, sc.Name, sc.Cron, sc.Timezone, sc.Mode, sc.Retention.KeepLast, sc.Retention.MaxAgeDays, sc.Enabled,
		sc.ActiveSince, sc.UpdatedAt, sc.Retention.KeepHourly, sc.Retention.KeepDaily, sc.Retention.KeepWeekly,
		sc.Retention.KeepMonthly, sc.Retention.KeepYearly, sc.Encrypt, recipientsArray(sc.AgeRecipients), verifyMode(sc.Verify), sc.Verify.EveryNth,
		jobFormat(sc), jobParams(sc), sc.Window, sc.DisabledReason, sc.OwnerKeyID))
	if err != nil && !errors.Is(err, export.ErrScheduleNotFound) {
		return nil, fmt.Errorf("store: update schedule %s: %w", sc.ID, err)
	}
	return out, err
}

// DeleteSchedule implements export.ScheduleStore.
func (s *Store) DeleteSchedule(ctx context.Context, id string, orphansExpireAt time.Time) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var owner int64
		err := tx.QueryRow(ctx, `DELETE FROM hubexport.schedules WHERE id = $1 RETURNING owner_user_id`, id).Scan(&owner)
		if errors.Is(err, pgx.ErrNoRows) {
			return export.ErrScheduleNotFound
		}
		if err != nil {
			return err
		}
		// A since_last schedule's feed goes with it: no id is ever reused.
		if _, err := tx.Exec(ctx, `DELETE FROM hubexport.feeds WHERE owner_user_id = $1 AND name = $2`, owner, id); err != nil {
			return err
		}
		// Retention no longer looks after these backups: they expire like
		// any other artifact. The result's expires_at is what users read.
		_, err = tx.Exec(ctx, `UPDATE hubexport.jobs SET expires_at = $2,
			result = jsonb_set(result, '{expires_at}', to_jsonb($3::text)), updated_at = now()
			WHERE schedule_id = $1 AND status = 'succeeded' AND expires_at IS NULL AND result IS NOT NULL`,
			id, orphansExpireAt, orphansExpireAt.UTC().Format(time.RFC3339))
		return err
	})
	if errors.Is(err, export.ErrScheduleNotFound) {
		return export.ErrScheduleNotFound
	}
	if err != nil {
		return fmt.Errorf("store: delete schedule %s: %w", id, err)
	}
	return nil
}

// ExpireOrphanedBackups implements export.ScheduleStore.
func (s *Store) ExpireOrphanedBackups(ctx context.Context, at time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE hubexport.jobs j SET expires_at = $1,
		result = jsonb_set(j.result, '{expires_at}', to_jsonb($2::text)), updated_at = now()
		WHERE j.schedule_id IS NOT NULL AND j.status = 'succeeded' AND j.expires_at IS NULL AND j.result IS NOT NULL
		AND NOT EXISTS (SELECT 1 FROM hubexport.schedules s WHERE s.id = j.schedule_id)`,
		at, at.UTC().Format(time.RFC3339))
	if err != nil {
		return 0, fmt.Errorf("store: expire orphaned backups: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// CreateScheduledJob implements export.ScheduleStore.
func (s *Store) CreateScheduledJob(ctx context.Context, j *export.Job, slot time.Time) (bool, error) {
	var created bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// A slot's job that cannot run is stored failed (and to be
		// announced) at once.
		status, code, message, finished := "queued", (*string)(nil), (*string)(nil), (*time.Time)(nil)
		if j.Status == export.StatusFailed && j.Error != nil {
			status, code, message, finished = "failed", &j.Error.Code, &j.Error.Message, &j.CreatedAt
		}
		tag, err := tx.Exec(ctx, `INSERT INTO hubexport.jobs
			(id, type, format, status, params, user_id, key_id, request_hash, schedule_id, created_at, updated_at,
			 error_code, error_message, finished_at, notify_pending)
			VALUES ($1, $2, $3, $10, $4, $5, $6, $7, $8, $9, $9, $11, $12, $13::timestamptz, $13::timestamptz IS NOT NULL)
			ON CONFLICT (id) DO NOTHING`,
			j.ID, j.Type, j.Format, []byte(j.Params), j.UserID, j.KeyID, j.RequestHash, j.ScheduleID, j.CreatedAt,
			status, code, message, finished)
		if err != nil {
			return err
		}
		created = tag.RowsAffected() == 1
		_, err = tx.Exec(ctx, `UPDATE hubexport.schedules SET last_slot_at = GREATEST(last_slot_at, $2)
			WHERE id = $1 AND (last_slot_at IS NULL OR last_slot_at < $2)`, j.ScheduleID, slot)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: create scheduled job %s: %w", j.ID, err)
	}
	return created, nil
}

// ScheduledBackups implements export.ScheduleStore.
func (s *Store) ScheduledBackups(ctx context.Context, scheduleID string) ([]*export.Job, error) {
	return s.list(ctx, "scheduled backups", `SELECT `+jobColumns+` FROM hubexport.jobs
		WHERE schedule_id = $1 AND status = 'succeeded' ORDER BY finished_at DESC, id DESC`, scheduleID)
}

// MarkOverdue implements export.ScheduleStore.
func (s *Store) MarkOverdue(ctx context.Context, id string, since time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE hubexport.schedules SET overdue_since = $2
		WHERE id = $1 AND overdue_since IS NULL`, id, since)
	if err != nil {
		return false, fmt.Errorf("store: mark schedule %s overdue: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// ClearOverdue implements export.ScheduleStore.
func (s *Store) ClearOverdue(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE hubexport.schedules SET overdue_since = NULL WHERE id = $1`, id); err != nil {
		return fmt.Errorf("store: clear schedule %s overdue: %w", id, err)
	}
	return nil
}

func verifyMode(v export.VerifyPolicy) string {
	if v.Mode == "" {
		return export.VerifyNone
	}
	return v.Mode
}

// NoteScheduledBackup implements export.ScheduleStore.
func (s *Store) NoteScheduledBackup(ctx context.Context, id, backupID string) (export.VerifyPolicy, int, error) {
	var (
		v export.VerifyPolicy
		n int
	)
	err := s.pool.QueryRow(ctx, `UPDATE hubexport.schedules
		SET verify_backups = CASE WHEN verify = 'none' THEN 0
		                          WHEN verify_noted_job IS NOT DISTINCT FROM $2 THEN verify_backups
		                          ELSE verify_backups + 1 END,
		    verify_noted_job = $2
		WHERE id = $1 RETURNING verify, verify_every_nth, verify_backups`, id, backupID).Scan(&v.Mode, &v.EveryNth, &n)
	if errors.Is(err, pgx.ErrNoRows) {
		return v, 0, export.ErrScheduleNotFound
	}
	if err != nil {
		return v, 0, fmt.Errorf("store: note backup of schedule %s: %w", id, err)
	}
	return v, n, nil
}

// CreateScheduleDrill implements export.ScheduleStore.
func (s *Store) CreateScheduleDrill(ctx context.Context, j *export.Job, scheduleID string) (bool, error) {
	var created bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO hubexport.jobs
			(id, type, format, status, params, user_id, key_id, request_hash, created_at, updated_at)
			VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8, $8)
			ON CONFLICT (id) DO NOTHING`,
			j.ID, j.Type, j.Format, []byte(j.Params), j.UserID, j.KeyID, j.RequestHash, j.CreatedAt)
		if err != nil {
			return err
		}
		created = tag.RowsAffected() == 1
		if !created {
			return nil
		}
		if _, err := tx.Exec(ctx, `INSERT INTO hubexport.schedule_drills (job_id, schedule_id) VALUES ($1, $2)
			ON CONFLICT (job_id) DO NOTHING`, j.ID, scheduleID); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE hubexport.schedules SET last_verify_job_id = $2, verify_backups = 0 WHERE id = $1`, scheduleID, j.ID)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: create drill %s: %w", j.ID, err)
	}
	return created, nil
}

// RecordDrill implements export.ScheduleStore.
func (s *Store) RecordDrill(ctx context.Context, jobID string, passed bool, at time.Time) (*export.Schedule, error) {
	// An outcome older than the one recorded (drills overtaking each other)
	// leaves the schedule as it is, but is still its drill.
	sc, err := scanSchedule(s.pool.QueryRow(ctx, `WITH s AS (UPDATE hubexport.schedules SET last_verify_at = $3,
		last_verify_passed = $2, last_verify_job_id = $1,
		last_verified_at = CASE WHEN $2 THEN $3 ELSE last_verified_at END
		WHERE id = (SELECT schedule_id FROM hubexport.schedule_drills WHERE job_id = $1)
		  AND (last_verify_at IS NULL OR last_verify_at <= $3) RETURNING *)
		SELECT `+scheduleColumns+` FROM s
		UNION ALL
		SELECT `+scheduleColumns+` FROM hubexport.schedules s
		WHERE s.id = (SELECT schedule_id FROM hubexport.schedule_drills WHERE job_id = $1) AND NOT EXISTS (SELECT 1 FROM s)`,
		jobID, passed, at))
	if err != nil && !errors.Is(err, export.ErrScheduleNotFound) {
		return nil, fmt.Errorf("store: record drill %s: %w", jobID, err)
	}
	return sc, err
}
