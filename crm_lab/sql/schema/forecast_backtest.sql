-- Per backtest run, as-of, company, group and method: the forecast of the window made with what
-- was known at the as-of, against what was actually booked in it. method 'monte_carlo' is the
-- forecast; 'weighted_pipeline' the baseline (booked + stage win rate x amount of the open deals
-- whose expected close date falls in the window, with a normal interval).
-- key: run_id, company_id, as_of, group_by, group_value, method
CREATE TABLE IF NOT EXISTS forecast_backtest (
    run_id          VARCHAR NOT NULL,
    company_id      VARCHAR NOT NULL,
    as_of           TIMESTAMPTZ NOT NULL,
    horizon         VARCHAR NOT NULL,
    window_start    DATE NOT NULL,
    window_end      DATE NOT NULL,         -- last day, inclusive
    group_by        VARCHAR NOT NULL,      -- 'company', 'team', ...
    group_value     VARCHAR NOT NULL,
    method          VARCHAR NOT NULL,      -- 'monte_carlo' or 'weighted_pipeline'
    actual          DECIMAL(18, 2) NOT NULL, -- booked in the window
    booked          DECIMAL(18, 2),        -- of which booked before the as-of
    mean            DECIMAL(18, 2),
    p05             DECIMAL(18, 2),
    p10             DECIMAL(18, 2),
    p50             DECIMAL(18, 2),
    p90             DECIMAL(18, 2),
    p95             DECIMAL(18, 2),
    covered         BOOLEAN,               -- p10 <= actual <= p90
    pit             DOUBLE,                -- share of the forecast distribution <= actual
    pinball_10      DOUBLE,
    pinball_50      DOUBLE,
    pinball_90      DOUBLE,
    crps            DOUBLE,
    error           DOUBLE                 -- mean - actual
);
