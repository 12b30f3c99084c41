-- SCD2 history of leads, rebuilt by replay from `events` (same rules as deal_history).
-- key: company_id, lead_id, version
CREATE TABLE IF NOT EXISTS lead_history (
    company_id      VARCHAR NOT NULL,
    lead_id         VARCHAR NOT NULL,
    version         BIGINT NOT NULL,
    valid_from      TIMESTAMPTZ NOT NULL,
    valid_to        TIMESTAMPTZ,
    account_id      VARCHAR,
    owner_rep_id    VARCHAR,
    name            VARCHAR,
    source          VARCHAR,
    industry        VARCHAR,
    employees       INTEGER,
    score           DOUBLE,
    status          VARCHAR,
    deal_id         VARCHAR,
    created_at      TIMESTAMPTZ,
    converted_at    TIMESTAMPTZ,
    last_event_id   VARCHAR
);
