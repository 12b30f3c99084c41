-- One row per company per crm-lab sweep-leads run: the common run columns (crm_lab.runs), the
-- time split, the money and capacity used, the model's quality on the swept leads, and the chosen
-- cut-off with its bootstrap interval. chosen_threshold is 'infinity' when routing nobody is best.
-- key: run_id
CREATE TABLE IF NOT EXISTS lead_sweep_runs (
    run_id          VARCHAR NOT NULL,
    company_id      VARCHAR,               -- NULL when the run spans every company
    started_at      TIMESTAMPTZ NOT NULL,
    seconds         DOUBLE,
    parameters      JSON NOT NULL,         -- every argument, as given
    seed            BIGINT,                -- NULL for runs with no randomness
    crm_lab_version VARCHAR NOT NULL,
    input_fingerprint VARCHAR NOT NULL,    -- see crm_lab.runs.input_fingerprint
    as_of                 TIMESTAMPTZ NOT NULL,  -- nothing after it was read
    train_cutoff          TIMESTAMPTZ NOT NULL,  -- as_of - maturity_days - test_days: the model knew only what was known then
    score_source          VARCHAR NOT NULL,      -- 'model' or 'column' (the leads' own score)
    objective             VARCHAR NOT NULL,      -- 'profit', 'f_beta' or 'conversions'
    beta                  DOUBLE,
    capacity_hours        DOUBLE,                -- NULL: no limit
    hours_per_lead        DOUBLE NOT NULL,
    cost_per_lead         DOUBLE NOT NULL,
    deal_value            DOUBLE NOT NULL,
    deal_value_source     VARCHAR NOT NULL,      -- 'history' (mean won amount of deals from leads) or 'given'
    win_rate              DOUBLE NOT NULL,
    win_rate_source       VARCHAR NOT NULL,      -- 'history' or 'given'
    history_closed_deals  BIGINT,                -- deals from converted leads closed by as_of
    history_won_deals     BIGINT,
    train_leads           BIGINT,
    train_conversions     BIGINT,
    swept_leads           BIGINT NOT NULL,
    swept_conversions     BIGINT NOT NULL,
    thresholds            BIGINT NOT NULL,       -- rows in lead_sweeps
    auc                   DOUBLE,                -- of the routing score on the swept leads
    brier                 DOUBLE,                -- model only
    log_loss              DOUBLE,                -- model only
    mean_predicted        DOUBLE,                -- model only: predicted conversion rate of the swept leads
    observed_rate         DOUBLE,
    model                 JSON,                  -- settings, coefficients and standard errors (NULL for the score column)
    chosen_threshold      DOUBLE NOT NULL,
    chosen_routed         BIGINT NOT NULL,
    chosen_value          DOUBLE NOT NULL,       -- the objective at the chosen cut-off
    chosen_profit         DOUBLE,
    chosen_threshold_lo   DOUBLE,                -- bootstrap interval of the best cut-off
    chosen_threshold_hi   DOUBLE,
    chosen_value_lo       DOUBLE,                -- bootstrap interval of the objective at the chosen cut-off
    chosen_value_hi       DOUBLE,
    replicates            INTEGER NOT NULL,
    level                 DOUBLE NOT NULL,
    open_leads            BIGINT,                -- leads open at as_of
    open_leads_routed     BIGINT                 -- of which at or above the chosen cut-off
);
