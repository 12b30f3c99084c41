-- SCD2 history of accounts, rebuilt by replay from `events` (same rules as deal_history).
-- key: company_id, account_id, version
CREATE TABLE IF NOT EXISTS account_history (
    company_id      VARCHAR NOT NULL,
    account_id      VARCHAR NOT NULL,
    version         BIGINT NOT NULL,
    valid_from      TIMESTAMPTZ NOT NULL,
    valid_to        TIMESTAMPTZ,
    name            VARCHAR,
    industry        VARCHAR,
    employees       INTEGER,
    potential       DECIMAL(18, 2),
    territory_id    VARCHAR,
    owner_rep_id    VARCHAR,
    created_at      TIMESTAMPTZ,
    last_event_id   VARCHAR
);
