-- SCD2 history of deals, rebuilt by replay from `events`: one row per distinct instant at which a
-- deal changed, holding its state after the last event at that instant. The state as of ts is the
-- row with valid_from <= ts < valid_to (valid_to NULL = current). A deleted deal's last row ends
-- at the delete.
-- key: company_id, deal_id, version
CREATE TABLE IF NOT EXISTS deal_history (
    company_id          VARCHAR NOT NULL,
    deal_id             VARCHAR NOT NULL,
    version             BIGINT NOT NULL,
    valid_from          TIMESTAMPTZ NOT NULL,
    valid_to            TIMESTAMPTZ,
    account_id          VARCHAR,
    owner_rep_id        VARCHAR,
    name                VARCHAR,
    stage               VARCHAR,
    amount              DECIMAL(18, 2),
    currency            VARCHAR,
    expected_close_date DATE,
    lost_reason         VARCHAR,
    is_closed           BOOLEAN,
    is_won              BOOLEAN,
    closed_at           TIMESTAMPTZ,
    created_at          TIMESTAMPTZ,
    stage_entered_at    TIMESTAMPTZ,   -- when the deal entered its current stage (this run of it)
    close_date_push_count INTEGER,     -- times expected_close_date moved later so far
    amount_at_creation  DECIMAL(18, 2),
    last_event_id       VARCHAR
);
