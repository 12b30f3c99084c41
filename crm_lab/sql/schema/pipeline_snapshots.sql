-- Open deals at each period end (weekly by default), for forecasting and trend charts.
-- snapshot_at is the last instant of the period: state includes every event up to it.
-- key: company_id, period, period_end, deal_id
CREATE TABLE IF NOT EXISTS pipeline_snapshots (
    company_id          VARCHAR NOT NULL,
    period              VARCHAR NOT NULL,      -- 'week' (ending Sunday), 'month' or 'quarter'
    period_end          DATE NOT NULL,
    snapshot_at         TIMESTAMPTZ NOT NULL,
    deal_id             VARCHAR NOT NULL,
    account_id          VARCHAR,
    owner_rep_id        VARCHAR,
    stage               VARCHAR,
    amount              DECIMAL(18, 2),
    currency            VARCHAR,
    expected_close_date DATE,
    created_at          TIMESTAMPTZ,
    age_days            DOUBLE,                -- snapshot_at - created_at, in days
    days_in_stage       DOUBLE,                -- snapshot_at - stage_entered_at, in days
    close_date_push_count INTEGER,
    amount_change       DECIMAL(18, 2)         -- amount - amount_at_creation
);
