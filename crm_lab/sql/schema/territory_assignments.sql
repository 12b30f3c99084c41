-- One row per account per territory plan: its rep in the plan beside its current rep.
-- key: plan_id, account_id
CREATE TABLE IF NOT EXISTS territory_assignments (
    plan_id         VARCHAR NOT NULL,
    company_id      VARCHAR NOT NULL,
    account_id      VARCHAR NOT NULL,
    rep_id          VARCHAR,               -- NULL only when the plan has no assignments
    previous_rep_id VARCHAR,               -- the current owner when the plan was made
    moved           BOOLEAN NOT NULL,      -- left a current rep who is in the plan
    reassigned      BOOLEAN NOT NULL,      -- had no current rep in the plan
    locked          BOOLEAN NOT NULL,
    distance_km     DOUBLE,                -- to the rep's home or territory centre (parameters.distance_to)
    workload_hours  DOUBLE,
    potential       DOUBLE
);
