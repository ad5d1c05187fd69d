-- Incremental feeds: the high-water mark of each feed, the (created_at, id)
-- of the newest row its last succeeded export held. A feed belongs to a
-- principal (owner_user_id, -1 for the admin token) and is named by them;
-- a since_last schedule's feed is named by the schedule's id. The mark only
-- moves in the transaction that records the export's success.
CREATE TABLE IF NOT EXISTS hubexport.feeds (
    owner_user_id bigint NOT NULL,
    name          text NOT NULL,
    mark_at       timestamptz,
    mark_id       bigint,
    last_job_id   text,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner_user_id, name)
);
