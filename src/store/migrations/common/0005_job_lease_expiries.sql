-- How often a job's lease ran out while it ran: its worker died (a replica killed, a node lost)
-- or stalled. Counted apart from `attempts`, which count the runs that failed or finished, so a
-- job whose workers keep getting killed under it is not buried as if it had failed.
ALTER TABLE jobs ADD COLUMN expiries BIGINT NOT NULL DEFAULT 0;
