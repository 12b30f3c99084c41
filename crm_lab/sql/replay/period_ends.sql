-- Every period end per company from the period of its first deal event to the period of its
-- last. snapshot_at is the period's last microsecond, so the state includes the whole last day.
WITH span AS (
    SELECT company_id,
        min(valid_from) AS first_at,
        max(greatest(valid_from, coalesce(valid_to, valid_from))) AS last_at
    FROM deal_history
    GROUP BY ALL
), starts AS (
    SELECT company_id, unnest(generate_series(
        CAST(date_trunc(getvariable('replay_period'), first_at) AS TIMESTAMP),
        CAST(date_trunc(getvariable('replay_period'), last_at) AS TIMESTAMP),
        CAST(getvariable('replay_period_step') AS INTERVAL))) AS period_start
    FROM span
)
SELECT company_id, getvariable('replay_period') AS period,
    CAST(period_start + CAST(getvariable('replay_period_step') AS INTERVAL) - INTERVAL 1 DAY AS DATE) AS period_end,
    CAST(period_start + CAST(getvariable('replay_period_step') AS INTERVAL) AS TIMESTAMPTZ) - INTERVAL 1 MICROSECOND AS snapshot_at
FROM starts
