-- Fold valid lead events into versions: patches, plus converted (status 'converted',
-- converted_at) and disqualified (status 'disqualified'). Same rules as deal_history.sql.
WITH lead_events AS (
    -- Which fields each event sets, as flags: the fold's sort then carries no list column.
    SELECT * EXCLUDE (payload_keys),
        list_contains(payload_keys, 'account_id') AS has_account_id,
        list_contains(payload_keys, 'deal_id') AS has_deal_id,
        list_contains(payload_keys, 'employees') AS has_employees,
        list_contains(payload_keys, 'industry') AS has_industry,
        list_contains(payload_keys, 'name') AS has_name,
        list_contains(payload_keys, 'owner_rep_id') AS has_owner_rep_id,
        list_contains(payload_keys, 'score') AS has_score,
        list_contains(payload_keys, 'source') AS has_source,
        list_contains(payload_keys, 'status') AS has_status
    FROM _replay_valid WHERE aggregate_type = 'lead'
), folded AS (
    SELECT company_id, aggregate_id AS lead_id, order_key, occurred_at, event_id, event_type,
        arg_max_null(account_id, CASE WHEN has_account_id THEN order_key END) OVER fold AS account_id,
        arg_max_null(owner_rep_id, CASE WHEN has_owner_rep_id THEN order_key END) OVER fold AS owner_rep_id,
        arg_max_null(name, CASE WHEN has_name THEN order_key END) OVER fold AS name,
        arg_max_null(source, CASE WHEN has_source THEN order_key END) OVER fold AS source,
        arg_max_null(industry, CASE WHEN has_industry THEN order_key END) OVER fold AS industry,
        arg_max_null(employees, CASE WHEN has_employees THEN order_key END) OVER fold AS employees,
        arg_max_null(score, CASE WHEN has_score THEN order_key END) OVER fold AS score,
        arg_max_null(
            CASE event_type WHEN 'converted' THEN 'converted' WHEN 'disqualified' THEN 'disqualified' ELSE status END,
            CASE WHEN event_type IN ('converted', 'disqualified') OR has_status THEN order_key END
        ) OVER fold AS status,
        arg_max_null(deal_id, CASE WHEN has_deal_id THEN order_key END) OVER fold AS deal_id,
        max(CASE WHEN event_type = 'converted' THEN occurred_at END) OVER fold AS converted_at,
        first_value(occurred_at) OVER fold AS created_at,
        lead(occurred_at) OVER fold AS next_event_at,
        -- The version is the instant's rank. Ordering the fold by (occurred_at, order_key), the same
        -- order as order_key alone, lets this window share the fold's sort instead of a sort of its own.
        dense_rank() OVER instants AS version
    FROM lead_events
    WINDOW fold AS (PARTITION BY company_id, aggregate_id ORDER BY occurred_at, order_key
                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),
           instants AS (PARTITION BY company_id, aggregate_id ORDER BY occurred_at)
)
-- The last event of each instant makes the version, valid until the next instant (its
-- next_event_at). A delete ends the previous version and starts none.
SELECT company_id, lead_id,
    version,
    occurred_at AS valid_from, next_event_at AS valid_to,
    account_id, owner_rep_id, name, source, industry, employees, score, status, deal_id,
    created_at, converted_at, event_id AS last_event_id
FROM folded
WHERE next_event_at IS DISTINCT FROM occurred_at AND event_type <> 'deleted'
