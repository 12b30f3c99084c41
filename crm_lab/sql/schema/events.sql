-- The event log as loaded. The first ten columns are the export contract (docs/CONTRACT.md);
-- the rest are derived once at load so that replay never parses JSON or sorts on a struct.
-- key: company_id, event_id
CREATE TABLE IF NOT EXISTS events (
    event_id        VARCHAR NOT NULL,
    company_id      VARCHAR NOT NULL,
    aggregate_type  VARCHAR NOT NULL,
    aggregate_id    VARCHAR NOT NULL,
    seq             BIGINT,
    event_type      VARCHAR NOT NULL,
    occurred_at     TIMESTAMPTZ NOT NULL,
    recorded_at     TIMESTAMPTZ,
    actor_id        VARCHAR,
    payload         JSON,
    -- derived at load --------------------------------------------------------------------------
    load_id         BIGINT,        -- the load_runs row that brought the event
    order_key       BIGINT,        -- 1, 2, ... within (company_id, aggregate_type, aggregate_id)
                                   -- in (occurred_at, seq NULLS LAST, event_id) order
    content_hash    UBIGINT,       -- identity of the content, to tell exact from conflicting duplicates
    payload_keys    VARCHAR[],     -- keys present in the payload: a key with JSON null clears its field
    -- payload fields, typed (null when absent or explicitly cleared; payload_keys tells which)
    account_id      VARCHAR,
    owner_rep_id    VARCHAR,
    name            VARCHAR,
    stage           VARCHAR,
    amount          DECIMAL(18, 2),
    currency        VARCHAR,
    expected_close_date DATE,
    lost_reason     VARCHAR,
    status          VARCHAR,
    source          VARCHAR,
    industry        VARCHAR,
    employees       INTEGER,
    score           DOUBLE,
    potential       DECIMAL(18, 2),
    territory_id    VARCHAR,
    deal_id         VARCHAR,
    lead_id         VARCHAR,
    activity_type   VARCHAR
);
