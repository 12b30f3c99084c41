-- Forecast distribution per run, company, scenario, group and period: amount already booked,
-- simulated means, quantiles of the total (booked + simulated) and the chance of reaching the
-- target (company, whole window) or the prorated bookings quota of the group's reps.
-- period_kind 'month' is one calendar month of the window, 'horizon' the whole window.
-- key: run_id, company_id, scenario, group_by, group_value, period
CREATE TABLE IF NOT EXISTS forecast_summary (
    run_id          VARCHAR NOT NULL,
    company_id      VARCHAR NOT NULL,
    scenario        VARCHAR NOT NULL,      -- 'baseline' or the scenario's name
    group_by        VARCHAR NOT NULL,      -- 'company', 'team', 'rep', 'territory' or 'stage'
    group_value     VARCHAR NOT NULL,      -- the company id, team, rep id, ...; '(none)' when unknown
    period          VARCHAR NOT NULL,      -- '2025-04', or the window ('2025-Q2', '2025', ...)
    period_kind     VARCHAR NOT NULL,      -- 'month' or 'horizon'
    period_start    DATE NOT NULL,
    period_end      DATE NOT NULL,         -- last day, inclusive
    trials          INTEGER NOT NULL,
    booked          DECIMAL(18, 2),        -- won between the period's start and the as-of
    open_mean       DECIMAL(18, 2),        -- mean simulated from open deals (company rows)
    new_mean        DECIMAL(18, 2),        -- mean simulated from pipeline not yet open (company rows)
    mean            DECIMAL(18, 2),        -- mean of the total
    sd              DECIMAL(18, 2),
    p05             DECIMAL(18, 2),
    p10             DECIMAL(18, 2),
    p50             DECIMAL(18, 2),
    p90             DECIMAL(18, 2),
    p95             DECIMAL(18, 2),
    target          DECIMAL(18, 2),        -- the run's target (company row of the window)
    p_target        DOUBLE,                -- P(total >= target)
    quota           DECIMAL(18, 2),        -- active reps' annual bookings quota, prorated by days
    p_quota         DOUBLE                 -- P(total >= quota)
);
