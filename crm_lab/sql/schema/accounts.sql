-- Customer and prospect accounts; potential is the estimated annual revenue opportunity.
-- key: company_id, account_id
CREATE TABLE IF NOT EXISTS accounts (
    company_id      VARCHAR NOT NULL,
    account_id      VARCHAR NOT NULL,
    name            VARCHAR,
    industry        VARCHAR,
    employees       INTEGER,
    potential       DECIMAL(18, 2),
    lat             DOUBLE,
    lon             DOUBLE,
    territory_id    VARCHAR,
    owner_rep_id    VARCHAR,
    workload_hours  DOUBLE,
    created_at      TIMESTAMPTZ
);
