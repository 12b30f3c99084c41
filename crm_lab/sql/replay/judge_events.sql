-- Replay-time quarantine: which in-scope events can be folded, judged afresh on every replay so
-- that a late `created` rescues the events that arrived before it.
-- Reads _replay_input (the events of the aggregates being replayed). Writes a narrow
-- _replay_lifecycle (one row per aggregate: where it starts and ends), the view _replay_valid (the
-- events that fold) and _replay_rejected (the others, with the reason). The wide event rows are
-- not copied: the histories read them through the view, which costs less than materialising every
-- column of every event. Most aggregates have nothing to reject (created first and once, nothing
-- after a delete): only the `suspect` ones are joined event by event.

-- created_key: the first `created`. deleted_key: the first `deleted` after it.
CREATE OR REPLACE TEMP TABLE _replay_lifecycle AS
WITH keys AS (
    SELECT company_id, aggregate_type, aggregate_id,
        min(order_key) FILTER (WHERE event_type = 'created') AS created_key,
        list(order_key) FILTER (WHERE event_type = 'deleted') AS deleted_keys,
        count(*) FILTER (WHERE event_type = 'created') AS created_events,
        min(order_key) AS first_key,
        max(order_key) AS last_key,
        count(*) AS events
    FROM _replay_input
    GROUP BY ALL
), bounds AS (
    SELECT *, list_min(list_filter(deleted_keys, lambda k: k > created_key)) AS deleted_key
    FROM keys
)
SELECT company_id, aggregate_type, aggregate_id, created_key, deleted_key, events,
    -- Whether any of its events can be rejected: only these are judged one by one below.
    created_key IS NULL OR first_key < created_key OR created_events > 1 OR coalesce(last_key > deleted_key, false) AS suspect
FROM bounds;

-- Every event of an aggregate that is not suspect is valid; a suspect one's are judged. Joining
-- only the (few) suspect aggregates keeps the hash tables small.
CREATE OR REPLACE TEMP VIEW _replay_valid AS
SELECT e.*
FROM _replay_input e
ANTI JOIN (SELECT * FROM _replay_lifecycle WHERE suspect) l USING (company_id, aggregate_type, aggregate_id)
UNION ALL
SELECT e.*
FROM _replay_input e
JOIN (SELECT * FROM _replay_lifecycle WHERE suspect) l USING (company_id, aggregate_type, aggregate_id)
WHERE e.order_key >= l.created_key
  AND (e.order_key <= l.deleted_key OR l.deleted_key IS NULL)
  AND (e.event_type <> 'created' OR e.order_key = l.created_key);

-- The complement of _replay_valid, each with the first reason that applies.
CREATE OR REPLACE TEMP TABLE _replay_rejected AS
WITH judged AS (
    SELECT e.*,
        CASE
            WHEN l.created_key IS NULL THEN 'no created event for this aggregate'
            WHEN e.order_key < l.created_key THEN 'event before its aggregate was created'
            WHEN e.order_key > l.deleted_key THEN 'event after its aggregate was deleted'
            WHEN e.event_type = 'created' AND e.order_key > l.created_key THEN 'aggregate already created'
        END AS replay_reason
    FROM _replay_input e
    JOIN (SELECT * FROM _replay_lifecycle WHERE suspect) l USING (company_id, aggregate_type, aggregate_id)
)
SELECT * FROM judged WHERE replay_reason IS NOT NULL;
