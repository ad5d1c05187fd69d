-- Restore drills of scheduled backups: verify is 'none', 'every' (a drill
-- after every successful backup) or 'every_nth' (after every
-- verify_every_nth-th). verify_backups counts the successful backups since
-- the last drill was queued (verify_noted_job, the last one counted, so a
-- backup announced twice counts once); last_verify_* is the outcome of the schedule's
-- latest drill (last_verify_job_id is the drill queued last).

ALTER TABLE hubexport.schedules
    ADD COLUMN IF NOT EXISTS verify             text NOT NULL DEFAULT 'none' CHECK (verify IN ('none', 'every', 'every_nth')),
    ADD COLUMN IF NOT EXISTS verify_every_nth   integer NOT NULL DEFAULT 0 CHECK (verify_every_nth >= 0),
    ADD COLUMN IF NOT EXISTS verify_backups     integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS verify_noted_job   text,
    ADD COLUMN IF NOT EXISTS last_verify_job_id text,
    ADD COLUMN IF NOT EXISTS last_verify_at     timestamptz,
    ADD COLUMN IF NOT EXISTS last_verify_passed boolean,
    ADD COLUMN IF NOT EXISTS last_verified_at   timestamptz;

-- Which schedule queued each drill, so an outcome is recorded on its
-- schedule even when a newer drill has been queued since.
CREATE TABLE IF NOT EXISTS hubexport.schedule_drills (
    job_id      text PRIMARY KEY,
    schedule_id text NOT NULL
);
