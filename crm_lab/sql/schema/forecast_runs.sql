-- One row per forecast or backtest run (crm-lab forecast, crm-lab backtest). The first columns are
-- the common run record (crm_lab.runs.RUN_COLUMNS_SQL); every row of forecast_summary,
-- forecast_deals and forecast_backtest carries its run_id.
-- key: run_id
CREATE TABLE IF NOT EXISTS forecast_runs (
    run_id          VARCHAR NOT NULL,
    company_id      VARCHAR,               -- NULL when the run spans every company
    started_at      TIMESTAMPTZ NOT NULL,
    seconds         DOUBLE,
    parameters      JSON NOT NULL,         -- every argument, as given
    seed            BIGINT,                -- NULL for runs with no randomness
    crm_lab_version VARCHAR NOT NULL,
    input_fingerprint VARCHAR NOT NULL,    -- see crm_lab.runs.input_fingerprint
    kind            VARCHAR NOT NULL,      -- 'forecast' or 'backtest'
    as_of           TIMESTAMPTZ NOT NULL,  -- a backtest: its first as-of
    as_of_last      TIMESTAMPTZ,           -- a backtest: its last as-of
    horizon         VARCHAR NOT NULL,      -- 'month', 'quarter', 'year' or the window's last day
    window_start    DATE,                  -- a forecast: the window [window_start, window_end]
    window_end      DATE,
    trials          INTEGER NOT NULL,
    scenarios       VARCHAR[],             -- 'baseline' first
    group_by        VARCHAR[],             -- dimensions summarised besides the company
    target          DECIMAL(18, 2),
    models          JSON                   -- per company (and as-of): learned rates and counts
);
