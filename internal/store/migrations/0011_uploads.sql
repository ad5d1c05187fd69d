-- uploads records each restore upload URL: the size and SHA-256 its
-- creator declared. The URL takes only that body, once, and the restore of
-- the upload checks the digest again before touching the database.
CREATE TABLE IF NOT EXISTS hubexport.uploads (
    id          text PRIMARY KEY,
    size_bytes  bigint NOT NULL CHECK (size_bytes > 0),
    sha256      text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    user_id     bigint NOT NULL,
    key_id      bigint NOT NULL,
    actor       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS uploads_created_at ON hubexport.uploads (created_at);
