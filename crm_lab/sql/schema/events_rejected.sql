-- Quarantined events: never silently dropped. detected_by 'load' for problems visible in the event
-- itself (unknown type, malformed payload, conflicting duplicate id); 'replay' for problems of
-- order (before its aggregate's created, after its deleted), judged again at every replay.
CREATE TABLE IF NOT EXISTS events_rejected (
    event_id        VARCHAR,
    company_id      VARCHAR,
    aggregate_type  VARCHAR,
    aggregate_id    VARCHAR,
    seq             BIGINT,
    event_type      VARCHAR,
    occurred_at     TIMESTAMPTZ,
    recorded_at     TIMESTAMPTZ,
    actor_id        VARCHAR,
    payload         VARCHAR,       -- raw text, since it may not be valid JSON
    reason          VARCHAR NOT NULL,
    detected_by     VARCHAR NOT NULL,
    load_id         BIGINT,
    content_hash    UBIGINT
);
