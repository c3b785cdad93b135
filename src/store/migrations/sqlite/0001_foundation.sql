-- Deliveries: one row per accepted webhook delivery; (forge, delivery_id) makes redelivery a no-op.
CREATE TABLE deliveries (
    id          INTEGER PRIMARY KEY,
    forge       TEXT    NOT NULL,
    delivery_id TEXT    NOT NULL,
    event       TEXT    NOT NULL,
    received_at BIGINT  NOT NULL,
    envelope    TEXT    NOT NULL,
    UNIQUE (forge, delivery_id)
);
CREATE INDEX deliveries_received_at ON deliveries (received_at);

-- Jobs: durable work items. state is queued | running | done | dead.
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY,
    kind         TEXT    NOT NULL,
    ordering_key TEXT    NOT NULL,
    payload      TEXT    NOT NULL,
    -- The delivery a `delivery` job processes; it is kept as long as the job is.
    delivery_id  BIGINT,
    state        TEXT    NOT NULL,
    -- 1 on the oldest queued or running job of its ordering key: the only one a claim considers.
    head         INTEGER NOT NULL DEFAULT 0,
    attempts     BIGINT  NOT NULL DEFAULT 0,
    max_attempts BIGINT  NOT NULL,
    run_at       BIGINT  NOT NULL,
    lease_owner  TEXT,
    lease_until  BIGINT,
    last_error   TEXT,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    finished_at  BIGINT
);
CREATE INDEX jobs_delivery ON jobs (delivery_id) WHERE delivery_id IS NOT NULL;
CREATE INDEX jobs_finished_at ON jobs (finished_at) WHERE state = 'done';
-- Claims walk the heads of the pending queues, oldest first, and stop at the first runnable
-- one, however many jobs have finished or wait behind a busy key.
CREATE INDEX jobs_heads ON jobs (id) WHERE head = 1 AND state IN ('queued', 'running');
CREATE INDEX jobs_pending_by_key ON jobs (ordering_key, id) WHERE state IN ('queued', 'running');

-- Lane state: one JSON document per pull request / merge request, owned by the lane.
CREATE TABLE lane_state (
    forge      TEXT   NOT NULL,
    repo_id    BIGINT NOT NULL,
    number     BIGINT NOT NULL,
    state      TEXT   NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (forge, repo_id, number)
);

-- Audit log: append-only record of every lane decision.
CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY,
    at     BIGINT NOT NULL,
    forge  TEXT   NOT NULL,
    repo   TEXT   NOT NULL,
    number BIGINT,
    actor  TEXT   NOT NULL,
    action TEXT   NOT NULL,
    sha    TEXT,
    detail TEXT   NOT NULL
);
CREATE INDEX audit_log_repo_at ON audit_log (repo, at);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
