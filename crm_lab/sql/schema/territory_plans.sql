-- One row per territory plan (crm-lab territory, crm_lab.territory.run_territory): the common run
-- columns (run_id is the plan_id), then how the plan was solved and its headline figures.
-- status is what the solver established for the rules as given: 'optimal' only with proof from
-- the solver's bound, 'feasible' (with its gap) otherwise, 'infeasible', 'time_limit' (no plan
-- found in time) or 'error'. When the rules are infeasible (or no plan was found in time),
-- plan_kind is 'soft': the assignments break the rules listed in violations.
-- key: plan_id
CREATE TABLE IF NOT EXISTS territory_plans (
    plan_id         VARCHAR NOT NULL,
    company_id      VARCHAR,
    started_at      TIMESTAMPTZ NOT NULL,
    seconds         DOUBLE,
    parameters      JSON NOT NULL,         -- every argument, as given
    seed            BIGINT,
    crm_lab_version VARCHAR NOT NULL,
    input_fingerprint VARCHAR NOT NULL,    -- see crm_lab.runs.input_fingerprint
    status          VARCHAR NOT NULL,      -- optimal, feasible, infeasible, error
    plan_kind       VARCHAR NOT NULL,      -- hard, soft (rules broken: see violations) or none (no assignments)
    solve_status    VARCHAR NOT NULL,      -- status of the solve that produced the assignments
    solver          VARCHAR,               -- highs, cbc, none
    solver_status   VARCHAR,               -- the solver's own words, e.g. 'time limit'
    objective       DOUBLE,                -- distance_weight * km + move_weight * moves, recomputed from the data
    bound           DOUBLE,                -- the solver's lower bound on the objective
    gap             DOUBLE,                -- (objective - bound) / objective
    message         VARCHAR,
    accounts        BIGINT,
    reps            BIGINT,
    moved           BIGINT,                -- accounts that leave a current rep who is in the plan
    moved_potential DOUBLE,
    reassigned      BIGINT,                -- accounts with no current rep in the plan (unowned, or rep removed)
    total_distance_km DOUBLE,
    max_workload_deviation DOUBLE,         -- largest |workload / target - 1| over reps
    max_potential_deviation DOUBLE,
    diagnosis       JSON,                  -- list of reasons the rules are infeasible
    violations      JSON                   -- list of {kind, subject, limit, value, excess, text}
);
