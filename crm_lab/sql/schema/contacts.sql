-- People at accounts.
-- key: company_id, contact_id
CREATE TABLE IF NOT EXISTS contacts (
    company_id      VARCHAR NOT NULL,
    contact_id      VARCHAR NOT NULL,
    account_id      VARCHAR,
    name            VARCHAR,
    email           VARCHAR,
    title           VARCHAR,
    created_at      TIMESTAMPTZ
);
