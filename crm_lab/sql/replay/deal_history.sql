-- Fold valid deal events into versions (DESIGN.md, "Deal event semantics").
-- A field takes the value of the last event that set it. arg_max_null keeps an explicit JSON
-- null (a clear); arg_max and last_value(... IGNORE NULLS) would skip it and bring the old value
-- back. The key is NULL for events that do not set the field, so they are passed over.
WITH deal_events AS (
    -- Which fields each event sets, as flags: the fold's sort then carries no list column.
    SELECT * EXCLUDE (payload_keys), event_type IN ('created', 'won', 'lost', 'reopened') AS sets_lifecycle,
        list_contains(payload_keys, 'account_id') AS has_account_id,
        list_contains(payload_keys, 'amount') AS has_amount,
        list_contains(payload_keys, 'currency') AS has_currency,
        list_contains(payload_keys, 'expected_close_date') AS has_expected_close_date,
        list_contains(payload_keys, 'lost_reason') AS has_lost_reason,
        list_contains(payload_keys, 'name') AS has_name,
        list_contains(payload_keys, 'owner_rep_id') AS has_owner_rep_id,
        list_contains(payload_keys, 'stage') AS has_stage
    FROM _replay_valid
    WHERE aggregate_type = 'deal'
), folded AS (
    SELECT company_id, aggregate_id AS deal_id, order_key, occurred_at, event_id, event_type,
        arg_max_null(account_id, CASE WHEN has_account_id THEN order_key END) OVER fold AS account_id,
        arg_max_null(owner_rep_id, CASE WHEN has_owner_rep_id THEN order_key END) OVER fold AS owner_rep_id,
        arg_max_null(name, CASE WHEN has_name THEN order_key END) OVER fold AS name,
        arg_max_null(
            CASE event_type WHEN 'won' THEN 'closed_won' WHEN 'lost' THEN 'closed_lost' ELSE stage END,
            CASE WHEN event_type IN ('won', 'lost') OR has_stage THEN order_key END
        ) OVER fold AS stage,
        arg_max_null(amount, CASE WHEN has_amount THEN order_key END) OVER fold AS amount,
        arg_max_null(currency, CASE WHEN has_currency THEN order_key END) OVER fold AS currency,
        arg_max_null(expected_close_date, CASE WHEN has_expected_close_date THEN order_key END) OVER fold AS expected_close_date,
        arg_max_null(lost_reason, CASE WHEN has_lost_reason THEN order_key END) OVER fold AS lost_reason,
        arg_max_null(event_type IN ('won', 'lost'), CASE WHEN sets_lifecycle THEN order_key END) OVER fold AS is_closed,
        arg_max_null(CASE event_type WHEN 'won' THEN true WHEN 'lost' THEN false END,
                     CASE WHEN sets_lifecycle THEN order_key END) OVER fold AS is_won,
        arg_max_null(CASE WHEN event_type IN ('won', 'lost') THEN occurred_at END,
                     CASE WHEN sets_lifecycle THEN order_key END) OVER fold AS closed_at,
        first_value(occurred_at) OVER fold AS created_at,
        -- Events sharing an instant make one version: keep the last of them.
        lead(occurred_at) OVER fold AS next_event_at
    FROM deal_events
    WINDOW fold AS (PARTITION BY company_id, aggregate_id ORDER BY order_key
                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
), versions AS (
    -- The last event of each instant makes the version; it is valid until the next instant,
    -- which is that event's next_event_at. A delete ends the previous version and starts none.
    SELECT *, next_event_at AS valid_to,
        stage IS DISTINCT FROM lag(stage) OVER by_time AS enters_stage,
        coalesce(expected_close_date > lag(expected_close_date) OVER by_time, false) AS pushes_close_date
    FROM folded
    WHERE next_event_at IS DISTINCT FROM occurred_at AND event_type <> 'deleted'
    WINDOW by_time AS (PARTITION BY company_id, deal_id ORDER BY occurred_at)
)
SELECT company_id, deal_id,
    row_number() OVER running AS version,
    occurred_at AS valid_from, valid_to,
    account_id, owner_rep_id, name, stage, amount, currency, expected_close_date, lost_reason,
    is_closed, is_won, closed_at, created_at,
    max(CASE WHEN enters_stage THEN occurred_at END) OVER running AS stage_entered_at,
    CAST(sum(CAST(pushes_close_date AS INTEGER)) OVER running AS INTEGER) AS close_date_push_count,
    first_value(amount) OVER running AS amount_at_creation,
    event_id AS last_event_id
FROM versions
WINDOW running AS (PARTITION BY company_id, deal_id ORDER BY occurred_at
                   ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
