-- Wins up to $until (from _forecast_closes) with the owner's team and territory: the bookings
-- already made in a forecast window, the history of new-pipeline wins, and a backtest's actuals.
-- A won deal deleted by $until no longer counts (as deals_as_of($until) no longer has it).
-- Bind $until, $company (NULL = every company).
SELECT c.company_id, c.deal_id, c.closed_at, c.run_start, CAST(c.amount AS DOUBLE) AS amount, c.currency,
    c.owner_rep_id, r.team, r.territory_id
FROM _forecast_closes c
LEFT JOIN reps r ON r.company_id = c.company_id AND r.rep_id = c.owner_rep_id
WHERE c.outcome = 'won' AND c.closed_at <= CAST($until AS TIMESTAMPTZ)
  AND NOT coalesce(c.deleted_at <= CAST($until AS TIMESTAMPTZ), false)
  AND ($company IS NULL OR c.company_id = $company)
ORDER BY c.company_id, c.closed_at, c.deal_id
