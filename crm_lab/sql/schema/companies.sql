-- One row per tenant. Every other table carries company_id.
-- key: company_id
CREATE TABLE IF NOT EXISTS companies (
    company_id      VARCHAR NOT NULL,
    name            VARCHAR NOT NULL,
    home_currency   VARCHAR,
    fiscal_year_start_month INTEGER,
    created_at      TIMESTAMPTZ
);
