-- Training rows: each open deal at each pipeline snapshot up to $as_of, with its next close after
-- the snapshot (from the temp table _forecast_closes, built from deal_closes.sql). The close may
-- lie after $as_of: the fit treats such a row as still open at $as_of (censored), so nothing that
-- happened after $as_of can reach a model. team and territory_id come from the owner's rep row.
-- Bind $as_of, $company (NULL = every company).
SELECT s.company_id, s.deal_id, s.snapshot_at, s.owner_rep_id, r.team, r.territory_id,
    s.stage, CAST(s.amount AS DOUBLE) AS amount, s.expected_close_date, s.age_days, s.days_in_stage,
    c.closed_at, c.outcome, CAST(c.amount AS DOUBLE) AS close_amount
FROM pipeline_snapshots s
ASOF LEFT JOIN _forecast_closes c
    ON c.company_id = s.company_id AND c.deal_id = s.deal_id AND c.closed_at > s.snapshot_at
LEFT JOIN reps r ON r.company_id = s.company_id AND r.rep_id = s.owner_rep_id
WHERE s.snapshot_at <= CAST($as_of AS TIMESTAMPTZ)
  AND ($company IS NULL OR s.company_id = $company)
ORDER BY s.company_id, s.snapshot_at, s.deal_id
