-- Each hotfix's milestones (entered, granted, smoke green, merged, deployed, backports,
-- postmortem, reverts), and every change's merge: the figures are recomputed from these.
-- One row per (change, milestone, key): a redelivery or a re-run job records nothing new.
CREATE TABLE lifecycle_events (
    forge     TEXT   NOT NULL,
    repo      TEXT   NOT NULL,
    number    BIGINT NOT NULL,
    milestone TEXT   NOT NULL,
    part      TEXT   NOT NULL,
    at        BIGINT NOT NULL,
    actor     TEXT   NOT NULL,
    detail    TEXT   NOT NULL,
    PRIMARY KEY (forge, repo, number, milestone, part)
);
CREATE INDEX lifecycle_events_at ON lifecycle_events (repo, at);
CREATE INDEX lifecycle_events_milestone ON lifecycle_events (milestone, at);
