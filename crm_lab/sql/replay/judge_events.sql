-- Replay-time quarantine: which in-scope events can be folded, judged afresh on every replay so
-- that a late `created` rescues the events that arrived before it.
-- Reads _replay_input (the events of the aggregates being replayed); writes _replay_judged, with
-- replay_reason NULL for a valid event.
CREATE OR REPLACE TEMP TABLE _replay_judged AS
WITH lifecycle AS (
    SELECT company_id, aggregate_type, aggregate_id,
        min(order_key) FILTER (WHERE event_type = 'created') AS created_key
    FROM _replay_input
    GROUP BY ALL
), deletion AS (
    SELECT e.company_id, e.aggregate_type, e.aggregate_id, min(e.order_key) AS deleted_key
    FROM _replay_input e
    JOIN lifecycle l USING (company_id, aggregate_type, aggregate_id)
    WHERE e.event_type = 'deleted' AND e.order_key > l.created_key
    GROUP BY ALL
)
SELECT e.*,
    CASE
        WHEN l.created_key IS NULL THEN 'no created event for this aggregate'
        WHEN e.order_key < l.created_key THEN 'event before its aggregate was created'
        WHEN e.order_key > d.deleted_key THEN 'event after its aggregate was deleted'
        WHEN e.event_type = 'created' AND e.order_key > l.created_key THEN 'aggregate already created'
    END AS replay_reason
FROM _replay_input e
JOIN lifecycle l USING (company_id, aggregate_type, aggregate_id)
LEFT JOIN deletion d USING (company_id, aggregate_type, aggregate_id);
