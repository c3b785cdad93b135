-- When a milestone's follow-up is due (a hotfix's postmortem on `merged`, a backport going
-- stale on `backport_opened`), as a column: the live gauges and the reminder sweep count and
-- pick the open duties in SQL instead of reading every milestone of the last months.
ALTER TABLE lifecycle_events ADD COLUMN due_at BIGINT;
UPDATE lifecycle_events SET due_at = json_extract(detail, '$.due_at') WHERE json_extract(detail, '$.due_at') IS NOT NULL;
CREATE INDEX lifecycle_events_due ON lifecycle_events (milestone, due_at) WHERE due_at IS NOT NULL;
