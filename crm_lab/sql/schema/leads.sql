-- Inbound and outbound leads, current state. status: open, converted, disqualified.
-- key: company_id, lead_id
CREATE TABLE IF NOT EXISTS leads (
    company_id      VARCHAR NOT NULL,
    lead_id         VARCHAR NOT NULL,
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
    converted_at    TIMESTAMPTZ
);
