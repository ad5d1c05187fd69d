-- job_attempts records each attempt of a job: a row is written when the
-- attempt starts and ended with its outcome when it stops. An attempt that
-- started but never ended was interrupted by a crash (its process was
-- killed): crashes delay a job and do not use up its retries, while a job
-- whose worker crashed on many attempts in a row is failed as a poison job.
CREATE TABLE IF NOT EXISTS hubexport.job_attempts (
    job_id     text NOT NULL REFERENCES hubexport.jobs (id) ON DELETE CASCADE,
    attempt    integer NOT NULL,
    token      text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    ended_at   timestamptz,
    -- outcome: succeeded, failed (the attempt failed on its own: counts
    -- against the job's retries), or interrupted (shutdown, lease lost,
    -- canceled, superseded: counts against nothing).
    outcome    text CHECK (outcome IN ('succeeded', 'failed', 'interrupted')),
    PRIMARY KEY (job_id, attempt)
);
