-- A failed job's error has two parts: error_message is the plain message
-- its owner reads; error_detail keeps the raw cause (a database or storage
-- error) for administrators. Jobs that failed before this kept the raw
-- cause in error_message: move it.
ALTER TABLE hubexport.jobs ADD COLUMN IF NOT EXISTS error_detail text NOT NULL DEFAULT '';
UPDATE hubexport.jobs SET error_detail = COALESCE(error_message, ''),
    error_message = CASE error_code
        WHEN 'storage_unavailable' THEN 'could not write the file to storage; try again later, or ask an administrator to check the storage'
        WHEN 'retries_exhausted' THEN 'the job failed on every attempt; try again later, or ask an administrator to look at this job'
        ELSE 'the export failed because of an internal error; try again later, or ask an administrator to look at this job'
    END
WHERE error_code IN ('export_failed', 'storage_unavailable', 'retries_exhausted');
