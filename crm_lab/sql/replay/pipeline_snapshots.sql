-- Open deals at each period end in _replay_snapshot_ends, for the deals in _replay_snapshot_deals
-- (a range join on the SCD2 history: the version valid at snapshot_at).
SELECT e.company_id, e.period, e.period_end, e.snapshot_at, h.deal_id,
    h.account_id, h.owner_rep_id, h.stage, h.amount, h.currency, h.expected_close_date, h.created_at,
    -- Microsecond epochs, not TIMESTAMPTZ subtraction, which goes through the slow ICU path.
    (epoch_us(e.snapshot_at) - epoch_us(h.created_at)) / 86400e6 AS age_days,
    (epoch_us(e.snapshot_at) - epoch_us(h.stage_entered_at)) / 86400e6 AS days_in_stage,
    h.close_date_push_count,
    h.amount - h.amount_at_creation AS amount_change
FROM _replay_snapshot_ends e
JOIN _replay_snapshot_deals h
  ON h.company_id = e.company_id
 AND h.valid_from <= e.snapshot_at
 AND coalesce(h.valid_to, 'infinity'::TIMESTAMPTZ) > e.snapshot_at
WHERE NOT h.is_closed
