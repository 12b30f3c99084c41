-- One row per `crm-lab load`, written in the same transaction as the data it loaded
-- (a failed load leaves a 'failed' row only when it could record one without the data).
CREATE TABLE IF NOT EXISTS load_runs (
    load_id         BIGINT NOT NULL,
    started_at      TIMESTAMPTZ NOT NULL,
    finished_at     TIMESTAMPTZ,
    status          VARCHAR NOT NULL,      -- 'ok', 'ok_with_rejects', 'failed'
    files           VARCHAR[],
    tables          VARCHAR[],
    rows_read       BIGINT,
    rows_accepted   BIGINT,
    rows_rejected   BIGINT,
    events_new      BIGINT,
    events_duplicate BIGINT,
    events_quarantined BIGINT,
    fingerprint     VARCHAR,               -- sha256 over the input files' names and bytes
    error           VARCHAR,
    crm_lab_version VARCHAR
);
