-- Backup schedules, and the link from a scheduled backup job to its schedule.

CREATE TABLE IF NOT EXISTS hubexport.schedules (
    id             text PRIMARY KEY,
    name           text NOT NULL,
    -- cron is a 5-field spec (or a descriptor) read in timezone.
    cron           text NOT NULL,
    timezone       text NOT NULL,
    mode           text NOT NULL,
    keep_last      integer NOT NULL CHECK (keep_last >= 1),
    max_age_days   integer NOT NULL CHECK (max_age_days >= 0),
    enabled        boolean NOT NULL DEFAULT true,
    -- active_since: slots before it are never run, and freshness counts
    -- from it until the first success (creation; reset on re-enable and on
    -- a cron or time zone change).
    active_since   timestamptz NOT NULL,
    -- last_slot_at is the newest slot a job was created for: a scheduler
    -- coming back runs the latest missed slot only if it is newer.
    last_slot_at   timestamptz,
    -- overdue_since is set when backup.overdue is raised (once per overdue
    -- stretch) and cleared when the schedule is fresh again.
    overdue_since  timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- schedule_id has no foreign key: a deleted schedule's backups stay.
ALTER TABLE hubexport.jobs ADD COLUMN IF NOT EXISTS schedule_id text;
CREATE INDEX IF NOT EXISTS jobs_schedule ON hubexport.jobs (schedule_id, id DESC) WHERE schedule_id IS NOT NULL;
