-- Opportunities, current state as the CRM exported it (replay rebuilds the same from events).
-- key: company_id, deal_id
CREATE TABLE IF NOT EXISTS deals (
    company_id      VARCHAR NOT NULL,
    deal_id         VARCHAR NOT NULL,
    account_id      VARCHAR,
    owner_rep_id    VARCHAR,
    name            VARCHAR,
    stage           VARCHAR,
    amount          DECIMAL(18, 2),
    currency        VARCHAR,
    expected_close_date DATE,
    lost_reason     VARCHAR,
    is_closed       BOOLEAN,
    is_won          BOOLEAN,
    closed_at       TIMESTAMPTZ,
    created_at      TIMESTAMPTZ
);
