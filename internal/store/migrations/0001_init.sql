-- hubexport's own tables. They live in schema hubexport; nothing here
-- touches the hub's public schema.
CREATE SCHEMA IF NOT EXISTS hubexport;

CREATE TABLE IF NOT EXISTS hubexport.jobs (
    id              text PRIMARY KEY,
    type            text NOT NULL,
    format          text NOT NULL,
    status          text NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'canceled', 'expired')),
    params          jsonb NOT NULL DEFAULT '{}'::jsonb,
    progress_done   bigint NOT NULL DEFAULT 0,
    progress_total  bigint NOT NULL DEFAULT 0,
    progress_unit   text NOT NULL DEFAULT '',
    progress_note   text NOT NULL DEFAULT '',
    result          jsonb,
    error_code      text,
    error_message   text,
    user_id         bigint NOT NULL,
    key_id          bigint NOT NULL,
    idempotency_key text,
    request_hash    text NOT NULL,
    storage_key     text,
    expires_at      timestamptz,
    attempts        integer NOT NULL DEFAULT 0,
    -- lease_token names the attempt allowed to write progress and results;
    -- a superseded or canceled attempt finds its token gone.
    lease_token     text,
    -- needs_cleanup marks a job whose unfinished upload could not be
    -- aborted when it ended (storage was down); maintenance retries it.
    needs_cleanup   boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX IF NOT EXISTS jobs_idempotency_key ON hubexport.jobs (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_id_desc ON hubexport.jobs (id DESC);
CREATE INDEX IF NOT EXISTS jobs_user_id_desc ON hubexport.jobs (user_id, id DESC);
CREATE INDEX IF NOT EXISTS jobs_active ON hubexport.jobs (user_id) WHERE status IN ('queued', 'running');
CREATE INDEX IF NOT EXISTS jobs_expiring ON hubexport.jobs (expires_at) WHERE status = 'succeeded';
CREATE INDEX IF NOT EXISTS jobs_needs_cleanup ON hubexport.jobs (id) WHERE needs_cleanup;

CREATE TABLE IF NOT EXISTS hubexport.audit_log (
    id       bigserial PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    actor    text NOT NULL,
    user_id  bigint NOT NULL,
    action   text NOT NULL,
    target   text NOT NULL DEFAULT '',
    params   jsonb,
    address  text NOT NULL DEFAULT '',
    outcome  text NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_at ON hubexport.audit_log (at DESC, id DESC);
CREATE INDEX IF NOT EXISTS audit_log_actor ON hubexport.audit_log (actor, at DESC);
CREATE INDEX IF NOT EXISTS audit_log_action ON hubexport.audit_log (action, at DESC);

-- settings holds values every instance must agree on, such as the key that
-- signs local download links when none is configured.
CREATE TABLE IF NOT EXISTS hubexport.settings (
    name       text PRIMARY KEY,
    value      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
