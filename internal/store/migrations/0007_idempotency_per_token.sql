-- Idempotency keys belong to the API key (token) that sent them, as the
-- README promises: two tokens of one user may use the same key for two
-- different jobs. The old per-user index is stricter, so existing rows fit.
DROP INDEX IF EXISTS hubexport.jobs_idempotency_key;
CREATE UNIQUE INDEX IF NOT EXISTS jobs_idempotency_key_per_token
    ON hubexport.jobs (user_id, key_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
