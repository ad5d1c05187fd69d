-- notify_pending is set in the same statement that ends a job and cleared
-- in the same transaction that records the job's webhook deliveries, so an
-- ended job is announced exactly once even if the process dies in between:
-- the delivery pump announces jobs still pending after a quiet period.
ALTER TABLE hubexport.jobs ADD COLUMN IF NOT EXISTS notify_pending boolean NOT NULL DEFAULT false;
CREATE INDEX IF NOT EXISTS jobs_notify_pending ON hubexport.jobs (finished_at) WHERE notify_pending;
