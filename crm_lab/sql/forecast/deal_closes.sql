-- Every instant a deal left the open pipeline: won, lost, or deleted while open, with the amount it
-- had then (and its currency) and `run_start`, when its open run began (created, or reopened). One deal may close
-- several times (lost, reopened, won). Each close depends only on versions up to its own instant,
-- so `WHERE closed_at <= as_of` gives exactly what was known at as_of; `deleted_at`, when the deal
-- was deleted (whatever its state then), is known at as_of only when it is <= as_of.
-- Bind $company (NULL = every company).
WITH versions AS (
    SELECT company_id, deal_id, version, valid_from, valid_to, is_closed, is_won, amount, currency, owner_rep_id,
        lag(is_closed) OVER by_version AS was_closed,
        lead(version) OVER by_version AS next_version
    FROM deal_history
    WHERE $company IS NULL OR company_id = $company
    WINDOW by_version AS (PARTITION BY company_id, deal_id ORDER BY version)
), runs AS (
    SELECT *,
        coalesce(
            max(CASE WHEN NOT is_closed AND coalesce(was_closed, true) THEN valid_from END)
                OVER (PARTITION BY company_id, deal_id ORDER BY version ROWS UNBOUNDED PRECEDING),
            valid_from) AS run_start,
        max(CASE WHEN next_version IS NULL THEN valid_to END) OVER (PARTITION BY company_id, deal_id) AS deleted_at
    FROM versions
)
SELECT company_id, deal_id, valid_from AS closed_at,
    CASE WHEN is_won THEN 'won' ELSE 'lost' END AS outcome,
    amount, currency, run_start, owner_rep_id, deleted_at
FROM runs
WHERE is_closed AND NOT coalesce(was_closed, false)
UNION ALL
-- A delete ends the last version of an open deal: it leaves the pipeline unbooked.
SELECT company_id, deal_id, valid_to AS closed_at, 'deleted' AS outcome, amount, currency, run_start, owner_rep_id,
    deleted_at
FROM runs
WHERE next_version IS NULL AND valid_to IS NOT NULL AND NOT is_closed
