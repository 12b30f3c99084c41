-- One row per rep per territory plan: loads against the balance bands (targets are each rep's FTE
-- share of the total), so plans can be read without recomputing the bands. Reps added by a
-- what-if have is_new = true and are not in `reps`.
-- key: plan_id, rep_id
CREATE TABLE IF NOT EXISTS territory_plan_reps (
    plan_id         VARCHAR NOT NULL,
    company_id      VARCHAR NOT NULL,
    rep_id          VARCHAR NOT NULL,
    is_new          BOOLEAN NOT NULL,
    fte             DOUBLE,
    capacity_hours  DOUBLE,
    home_lat        DOUBLE,
    home_lon        DOUBLE,
    accounts        BIGINT,
    workload_hours  DOUBLE,
    workload_target DOUBLE,
    workload_lower  DOUBLE,
    workload_upper  DOUBLE,
    potential       DOUBLE,
    potential_target DOUBLE,
    potential_lower DOUBLE,
    potential_upper DOUBLE,                -- NULL when potential is not balanced
    distance_km     DOUBLE
);
