-- Lane state is written with a version check: a writer that read an older version than the
-- one stored now (a stale job) is refused instead of overwriting newer facts.
ALTER TABLE lane_state ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
