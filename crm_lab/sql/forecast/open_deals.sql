-- The open pipeline at the instant $as_of (any instant, not only snapshot ends), with the owner's
-- team and territory. Bind $as_of, $company (NULL = every company).
SELECT d.company_id, d.deal_id, d.owner_rep_id, r.team, r.territory_id, d.stage,
    CAST(d.amount AS DOUBLE) AS amount, d.currency, d.expected_close_date,
    epoch(CAST($as_of AS TIMESTAMPTZ) - d.created_at) / 86400.0 AS age_days,
    epoch(CAST($as_of AS TIMESTAMPTZ) - d.stage_entered_at) / 86400.0 AS days_in_stage
FROM deals_as_of(CAST($as_of AS TIMESTAMPTZ)) d
LEFT JOIN reps r ON r.company_id = d.company_id AND r.rep_id = d.owner_rep_id
WHERE NOT d.is_closed AND ($company IS NULL OR d.company_id = $company)
ORDER BY d.company_id, d.deal_id
