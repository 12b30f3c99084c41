-- Calls, emails, meetings and tasks, linked to an account, lead or deal.
-- key: company_id, activity_id
CREATE TABLE IF NOT EXISTS activities (
    company_id      VARCHAR NOT NULL,
    activity_id     VARCHAR NOT NULL,
    activity_type   VARCHAR,
    owner_rep_id    VARCHAR,
    account_id      VARCHAR,
    lead_id         VARCHAR,
    deal_id         VARCHAR,
    occurred_at     TIMESTAMPTZ,
    duration_minutes INTEGER
);
