-- What a converted lead is worth, per company, as known at $as_of: the deals that converted
-- leads became (lead_history.deal_id as of $as_of), in their state at $as_of. The win rate is
-- won / closed among them; the deal value is the mean won amount; won_amounts lists the won
-- amounts for simulations that draw deal sizes. Deleted deals are absent, as in deals_as_of.
-- Parameters: $as_of, $company (NULL: every company).
WITH params AS (
    SELECT CAST($as_of AS TIMESTAMPTZ) AS as_of, CAST($company AS VARCHAR) AS company
), lead_deals AS (
    SELECT DISTINCT h.company_id, h.deal_id
    FROM lead_history h, params p
    WHERE h.valid_from <= p.as_of AND coalesce(h.valid_to, 'infinity'::TIMESTAMPTZ) > p.as_of
      AND (p.company IS NULL OR h.company_id = p.company)
      AND h.status = 'converted' AND h.deal_id IS NOT NULL
), deals_then AS (
    SELECT d.company_id, d.deal_id, d.is_closed, d.is_won, CAST(d.amount AS DOUBLE) AS amount
    FROM deal_history d, params p
    WHERE d.valid_from <= p.as_of AND coalesce(d.valid_to, 'infinity'::TIMESTAMPTZ) > p.as_of
      AND (p.company IS NULL OR d.company_id = p.company)
)
SELECT company_id,
    count(*) AS lead_deals,
    count(*) FILTER (WHERE is_closed) AS closed_deals,
    count(*) FILTER (WHERE is_won) AS won_deals,
    avg(CASE WHEN is_won THEN 1.0 ELSE 0.0 END) FILTER (WHERE is_closed) AS win_rate,
    avg(amount) FILTER (WHERE is_won) AS mean_won_amount,
    coalesce(list(amount ORDER BY deal_id) FILTER (WHERE is_won AND amount IS NOT NULL), []) AS won_amounts
FROM deals_then SEMI JOIN lead_deals USING (company_id, deal_id)
GROUP BY company_id
ORDER BY company_id
