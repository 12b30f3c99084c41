-- One row per replay. replay_version is the fold logic's version: when the code's differs from
-- the last run's, the next replay rebuilds everything.
CREATE TABLE IF NOT EXISTS replay_runs (
    replay_id           BIGINT NOT NULL,
    started_at          TIMESTAMPTZ NOT NULL,
    mode                VARCHAR NOT NULL,      -- 'full' or 'incremental'
    reason              VARCHAR,               -- why a full replay was chosen
    replay_version      INTEGER NOT NULL,
    through_load_id     BIGINT,                -- every load up to this one is reflected
    period              VARCHAR NOT NULL,
    aggregates_replayed BIGINT,
    events_replayed     BIGINT,
    events_quarantined  BIGINT,
    seconds             DOUBLE,
    crm_lab_version     VARCHAR
);
