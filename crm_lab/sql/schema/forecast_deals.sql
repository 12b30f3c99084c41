-- Per run, scenario, open deal and period: the chance the deal books in the period (won and
-- closed then) and its expected booked amount. win_probability is the deal's chance to win at
-- all (within a year), after the scenario's multipliers.
-- key: run_id, company_id, scenario, deal_id, period
CREATE TABLE IF NOT EXISTS forecast_deals (
    run_id          VARCHAR NOT NULL,
    company_id      VARCHAR NOT NULL,
    scenario        VARCHAR NOT NULL,
    deal_id         VARCHAR NOT NULL,
    owner_rep_id    VARCHAR,
    team            VARCHAR,
    territory_id    VARCHAR,
    stage           VARCHAR,
    amount          DECIMAL(18, 2),        -- at the as-of
    expected_close_date DATE,              -- at the as-of
    age_days        DOUBLE,
    win_probability DOUBLE,
    period          VARCHAR NOT NULL,
    period_kind     VARCHAR NOT NULL,      -- 'month' or 'horizon'
    period_start    DATE NOT NULL,
    period_end      DATE NOT NULL,
    p_close         DOUBLE,                -- P(won and closed in the period)
    expected_value  DECIMAL(18, 2)         -- mean booked amount in the period
);
