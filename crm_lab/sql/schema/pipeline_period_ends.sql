-- The calendar of pipeline_snapshots: every period end per company between its first and last
-- event, for the period replay last used. Lets an incremental replay add snapshot rows for the
-- period ends that new events opened up without recomputing the rest.
-- key: company_id, period, period_end
CREATE TABLE IF NOT EXISTS pipeline_period_ends (
    company_id      VARCHAR NOT NULL,
    period          VARCHAR NOT NULL,
    period_end      DATE NOT NULL,
    snapshot_at     TIMESTAMPTZ NOT NULL
);
