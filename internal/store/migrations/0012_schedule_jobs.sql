-- Schedules of any export type, owned by whoever made them.
--
-- job_type, job_format and job_params are the job template of each slot
-- (a backup schedule keeps its mode and encryption in their own columns,
-- and job_params NULL). time_window is '' or one of previous_hour,
-- previous_day, previous_week, previous_month, since_last: what time range
-- each slot's job covers. owner_user_id/owner_key_id are the principal who
-- made the schedule (-1/-1: the admin token); each slot runs as them, and a
-- disabled or deleted key or user disables the schedule with
-- disabled_reason.
ALTER TABLE hubexport.schedules
    ADD COLUMN IF NOT EXISTS job_type        text NOT NULL DEFAULT 'database_backup',
    ADD COLUMN IF NOT EXISTS job_format      text NOT NULL DEFAULT 'dump',
    ADD COLUMN IF NOT EXISTS job_params      jsonb,
    ADD COLUMN IF NOT EXISTS time_window     text NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS owner_user_id   bigint NOT NULL DEFAULT -1,
    ADD COLUMN IF NOT EXISTS owner_key_id    bigint NOT NULL DEFAULT -1,
    ADD COLUMN IF NOT EXISTS disabled_reason text NOT NULL DEFAULT '';

CREATE INDEX IF NOT EXISTS schedules_owner ON hubexport.schedules (owner_user_id, id DESC);
