-- Webhook endpoints and their delivery logs.

CREATE TABLE IF NOT EXISTS hubexport.webhook_endpoints (
    id                          text PRIMARY KEY,
    -- user_id owns the endpoint (-1: the admin token); admin endpoints
    -- receive every event, the others only their owner's.
    user_id                     bigint NOT NULL,
    admin                       boolean NOT NULL,
    url                         text NOT NULL,
    events                      text[] NOT NULL,
    description                 text NOT NULL DEFAULT '',
    enabled                     boolean NOT NULL DEFAULT true,
    disabled_reason             text NOT NULL DEFAULT '',
    -- The secrets are HMAC keys: they must be readable to sign.
    secret                      text NOT NULL,
    previous_secret             text,
    previous_secret_expires_at  timestamptz,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS webhook_endpoints_user ON hubexport.webhook_endpoints (user_id, id DESC);
CREATE INDEX IF NOT EXISTS webhook_endpoints_admin ON hubexport.webhook_endpoints (id) WHERE admin AND enabled;

CREATE TABLE IF NOT EXISTS hubexport.webhook_deliveries (
    -- id is the message id receivers see in webhook-id.
    id               text PRIMARY KEY,
    endpoint_id      text NOT NULL REFERENCES hubexport.webhook_endpoints (id) ON DELETE CASCADE,
    event_type       text NOT NULL,
    -- payload is the exact body sent on every attempt.
    payload          bytea NOT NULL,
    status           text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    -- send counts manual resends; each runs as its own task.
    send             integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_endpoint ON hubexport.webhook_deliveries (endpoint_id, id DESC);
CREATE INDEX IF NOT EXISTS webhook_deliveries_pending ON hubexport.webhook_deliveries (COALESCE(next_attempt_at, created_at)) WHERE status = 'pending';

CREATE TABLE IF NOT EXISTS hubexport.webhook_attempts (
    delivery_id  text NOT NULL REFERENCES hubexport.webhook_deliveries (id) ON DELETE CASCADE,
    attempt      integer NOT NULL,
    status_code  integer,
    latency_ms   bigint NOT NULL,
    error        text NOT NULL DEFAULT '',
    at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (delivery_id, attempt)
);
