-- Lead threshold sweeps (crm-lab sweep-leads): one row per run and distinct cut-off of the swept
-- leads' scores, highest first. A lead is routed when its score >= threshold. The money columns
-- value each observed conversion at deal value x win rate (lead_sweep_runs says which); the
-- _lo/_hi columns are the run's bootstrap interval (lead_sweep_runs.level) at that threshold.
-- key: run_id, threshold
CREATE TABLE IF NOT EXISTS lead_sweeps (
    run_id               VARCHAR NOT NULL,     -- lead_sweep_runs.run_id
    company_id           VARCHAR NOT NULL,
    threshold            DOUBLE NOT NULL,
    routed               BIGINT NOT NULL,      -- leads with score >= threshold
    tp                   BIGINT NOT NULL,      -- routed leads that converted
    fp                   BIGINT NOT NULL,      -- routed leads that did not
    precision            DOUBLE,
    recall               DOUBLE,
    fpr                  DOUBLE,               -- false positive rate
    f1                   DOUBLE,
    lift                 DOUBLE,               -- precision / base rate
    expected_conversions DOUBLE,               -- sum of the routed leads' model probabilities (NULL for the score column)
    workload_hours       DOUBLE,
    within_capacity      BOOLEAN,
    cost                 DOUBLE,
    pipeline             DOUBLE,               -- tp x deal value
    revenue              DOUBLE,               -- pipeline x win rate
    profit               DOUBLE,               -- revenue - cost
    precision_lo         DOUBLE,
    precision_hi         DOUBLE,
    recall_lo            DOUBLE,
    recall_hi            DOUBLE,
    f1_lo                DOUBLE,
    f1_hi                DOUBLE,
    profit_lo            DOUBLE,
    profit_hi            DOUBLE,
    is_chosen            BOOLEAN NOT NULL      -- the run's best cut-off
);
