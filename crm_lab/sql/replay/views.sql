-- Public views and table macros over the replayed history (docs/SQL.md documents each).

CREATE OR REPLACE VIEW deals_current AS
SELECT * EXCLUDE (valid_to) FROM deal_history WHERE valid_to IS NULL;

CREATE OR REPLACE VIEW leads_current AS
SELECT * EXCLUDE (valid_to) FROM lead_history WHERE valid_to IS NULL;

CREATE OR REPLACE VIEW accounts_current AS
SELECT * EXCLUDE (valid_to) FROM account_history WHERE valid_to IS NULL;

-- State as of an instant: every event with occurred_at <= ts is in. A DATE or a bare
-- 'YYYY-MM-DD' means midnight UTC at the start of that day.
CREATE OR REPLACE MACRO deals_as_of(ts) AS TABLE
SELECT * FROM deal_history
WHERE valid_from <= CAST(ts AS TIMESTAMPTZ) AND coalesce(valid_to, 'infinity'::TIMESTAMPTZ) > CAST(ts AS TIMESTAMPTZ);

CREATE OR REPLACE MACRO leads_as_of(ts) AS TABLE
SELECT * FROM lead_history
WHERE valid_from <= CAST(ts AS TIMESTAMPTZ) AND coalesce(valid_to, 'infinity'::TIMESTAMPTZ) > CAST(ts AS TIMESTAMPTZ);

CREATE OR REPLACE MACRO accounts_as_of(ts) AS TABLE
SELECT * FROM account_history
WHERE valid_from <= CAST(ts AS TIMESTAMPTZ) AND coalesce(valid_to, 'infinity'::TIMESTAMPTZ) > CAST(ts AS TIMESTAMPTZ);

-- Pipeline waterfall between two instants, one row per deal that was in the pipeline at t0 or
-- t1, or entered it and closed in between. The pipeline is the open deals, optionally only those
-- whose expected_close_date lies in [close_from, close_to]. For every row, to the cent:
--   start + created + pulled_in + amount_up - amount_down - pushed_out - won - lost = "end".
-- A deal enters as start (in the pipeline at t0), pulled_in (open at t0 outside the window) or
-- created (not open at t0: new, or reopened); it leaves as "end", won, lost (lost or deleted),
-- or pushed_out (still open, outside the window). amount_up/amount_down carry the amount change
-- between entering and leaving, so won and lost are the amounts actually closed.
CREATE OR REPLACE MACRO pipeline_movement(t0, t1, close_from := NULL, close_to := NULL) AS TABLE
WITH at_start AS (
    SELECT company_id, deal_id, amount, is_closed, expected_close_date, owner_rep_id, stage
    FROM deals_as_of(t0)
), latest AS (
    -- The last version begun by t1; for a deal deleted by t1 it ends at the delete.
    SELECT * FROM deal_history
    WHERE valid_from <= CAST(t1 AS TIMESTAMPTZ)
    QUALIFY row_number() OVER (PARTITION BY company_id, deal_id ORDER BY version DESC) = 1
), joined AS (
    SELECT
        coalesce(l.company_id, s.company_id) AS company_id,
        coalesce(l.deal_id, s.deal_id) AS deal_id,
        coalesce(l.owner_rep_id, s.owner_rep_id) AS owner_rep_id,
        coalesce(l.stage, s.stage) AS stage,
        s.deal_id IS NOT NULL AND NOT s.is_closed AS open_at_start,
        s.deal_id IS NOT NULL AND NOT s.is_closed
            AND coalesce((close_from IS NULL OR s.expected_close_date >= CAST(close_from AS DATE))
                     AND (close_to IS NULL OR s.expected_close_date <= CAST(close_to AS DATE)), false) AS in_start,
        coalesce(s.amount, 0) AS start_amount,
        l.valid_to IS NOT NULL AND l.valid_to <= CAST(t1 AS TIMESTAMPTZ) AS deleted,
        l.deal_id IS NOT NULL AND l.is_closed AND l.closed_at > CAST(t0 AS TIMESTAMPTZ) AS closed_between,
        l.is_won AS won_flag,
        l.deal_id IS NOT NULL AND NOT l.is_closed AS open_at_end,
        coalesce((close_from IS NULL OR l.expected_close_date >= CAST(close_from AS DATE))
             AND (close_to IS NULL OR l.expected_close_date <= CAST(close_to AS DATE)), false) AS end_in_window,
        coalesce(l.amount, 0) AS end_amount
    FROM latest l
    FULL JOIN at_start s ON s.company_id = l.company_id AND s.deal_id = l.deal_id
), classified AS (
    SELECT *,
        CASE
            WHEN deleted THEN 'lost'
            WHEN open_at_end AND end_in_window THEN 'end'
            WHEN closed_between AND won_flag THEN 'won'
            WHEN closed_between THEN 'lost'
            WHEN open_at_end THEN 'pushed_out'
        END AS exit_bucket
    FROM joined
), participating AS (
    SELECT *,
        CASE
            WHEN in_start THEN 'start'
            WHEN open_at_start THEN 'pulled_in'
            ELSE 'created'
        END AS entry_bucket,
        CASE WHEN in_start OR open_at_start THEN start_amount ELSE end_amount END AS entry_amount
    FROM classified
    WHERE in_start
       OR (NOT deleted AND open_at_end AND end_in_window)
       OR (NOT deleted AND closed_between AND end_in_window)
)
SELECT company_id, deal_id, owner_rep_id, stage,
    CAST(CASE WHEN entry_bucket = 'start' THEN entry_amount ELSE 0 END AS DECIMAL(18, 2)) AS start,
    CAST(CASE WHEN entry_bucket = 'created' THEN entry_amount ELSE 0 END AS DECIMAL(18, 2)) AS created,
    CAST(CASE WHEN entry_bucket = 'pulled_in' THEN entry_amount ELSE 0 END AS DECIMAL(18, 2)) AS pulled_in,
    CAST(greatest(end_amount - entry_amount, 0) AS DECIMAL(18, 2)) AS amount_up,
    CAST(greatest(entry_amount - end_amount, 0) AS DECIMAL(18, 2)) AS amount_down,
    CAST(CASE WHEN exit_bucket = 'pushed_out' THEN end_amount ELSE 0 END AS DECIMAL(18, 2)) AS pushed_out,
    CAST(CASE WHEN exit_bucket = 'won' THEN end_amount ELSE 0 END AS DECIMAL(18, 2)) AS won,
    CAST(CASE WHEN exit_bucket = 'lost' THEN end_amount ELSE 0 END AS DECIMAL(18, 2)) AS lost,
    CAST(CASE WHEN exit_bucket = 'end' THEN end_amount ELSE 0 END AS DECIMAL(18, 2)) AS "end"
FROM participating;

-- The same waterfall summed per company, per company and owner, and per company and stage
-- (stage as of t1); grouped_by says which.
CREATE OR REPLACE MACRO pipeline_waterfall(t0, t1, close_from := NULL, close_to := NULL) AS TABLE
SELECT
    CASE WHEN grouping(owner_rep_id) = 0 THEN 'owner' WHEN grouping(stage) = 0 THEN 'stage' ELSE 'company' END AS grouped_by,
    company_id, owner_rep_id, stage,
    sum(start) AS start, sum(created) AS created, sum(pulled_in) AS pulled_in,
    sum(amount_up) AS amount_up, sum(amount_down) AS amount_down, sum(pushed_out) AS pushed_out,
    sum(won) AS won, sum(lost) AS lost, sum("end") AS "end", count(*) AS deals
FROM pipeline_movement(t0, t1, close_from := close_from, close_to := close_to)
GROUP BY GROUPING SETS ((company_id), (company_id, owner_rep_id), (company_id, stage));

-- Event analytics -----------------------------------------------------------------------------

-- Stage order for funnels; stages a CRM adds outside this list sort last.
CREATE OR REPLACE VIEW deal_stage_order AS
SELECT * FROM (VALUES ('prospecting', 1), ('qualification', 2), ('proposal', 3), ('negotiation', 4),
                      ('closed_won', 5), ('closed_lost', 6)) AS s(stage, stage_order);

-- Every stage-to-stage move, counted: the raw material of a funnel.
CREATE OR REPLACE VIEW deal_stage_transitions AS
WITH moves AS (
    SELECT company_id, deal_id, stage AS to_stage,
        lag(stage) OVER (PARTITION BY company_id, deal_id ORDER BY version) AS from_stage
    FROM deal_history
)
SELECT company_id, from_stage, to_stage, count(*) AS moves, count(DISTINCT deal_id) AS deals
FROM moves
WHERE from_stage IS DISTINCT FROM to_stage AND from_stage IS NOT NULL
GROUP BY ALL;

-- Funnel: of the deals that ever reached a stage, how many reached a later one, and how many won.
CREATE OR REPLACE VIEW deal_stage_funnel AS
WITH reached AS (
    SELECT DISTINCT h.company_id, h.deal_id, h.stage, o.stage_order
    FROM deal_history h LEFT JOIN deal_stage_order o USING (stage)
), furthest AS (
    SELECT company_id, deal_id,
        max(stage_order) FILTER (WHERE stage <> 'closed_lost') AS furthest_order,
        bool_or(stage = 'closed_won') AS won
    FROM reached GROUP BY ALL
)
SELECT r.company_id, r.stage, r.stage_order,
    count(*) AS deals_reached,
    count(*) FILTER (WHERE f.furthest_order > r.stage_order) AS deals_advanced,
    count(*) FILTER (WHERE f.won) AS deals_won,
    count(*) FILTER (WHERE f.furthest_order > r.stage_order) / count(*) AS advance_rate,
    count(*) FILTER (WHERE f.won) / count(*) AS win_rate_from_stage
FROM reached r JOIN furthest f USING (company_id, deal_id)
WHERE r.stage NOT IN ('closed_won', 'closed_lost')
GROUP BY ALL
ORDER BY r.company_id, r.stage_order NULLS LAST;

-- One row per completed stay of a deal in an open stage, in days.
CREATE OR REPLACE VIEW deal_stage_stays AS
WITH runs AS (
    SELECT DISTINCT company_id, deal_id, stage, stage_entered_at FROM deal_history
)
SELECT company_id, deal_id, stage, stage_entered_at AS entered_at,
    lead(stage_entered_at) OVER (PARTITION BY company_id, deal_id ORDER BY stage_entered_at) AS left_at,
    epoch(left_at - stage_entered_at) / 86400.0 AS days
FROM runs
QUALIFY left_at IS NOT NULL AND stage NOT IN ('closed_won', 'closed_lost');

-- Time-in-stage distribution per company and stage.
CREATE OR REPLACE VIEW deal_time_in_stage AS
SELECT company_id, stage, count(*) AS stays,
    avg(days) AS mean_days,
    quantile_cont(days, 0.25) AS p25_days,
    quantile_cont(days, 0.5) AS median_days,
    quantile_cont(days, 0.75) AS p75_days,
    quantile_cont(days, 0.9) AS p90_days
FROM deal_stage_stays
GROUP BY ALL;

-- Event volume by day, aggregate type, event type and actor.
CREATE OR REPLACE VIEW event_volume AS
SELECT company_id, CAST(occurred_at AS DATE) AS day, aggregate_type, event_type, actor_id, count(*) AS events
FROM events
GROUP BY ALL;

-- Exported current state (deals, leads, accounts tables) against the replayed one, one row per
-- differing field, or field '(row)' when only one side has the entity. Only companies that have
-- events of that kind are compared, and a NULL in the export counts as 'not exported'.
CREATE OR REPLACE VIEW replay_reconciliation AS
WITH deal_pairs AS (
    SELECT coalesce(x.company_id, r.company_id) AS company_id, coalesce(x.deal_id, r.deal_id) AS entity_id,
        CASE
            WHEN r.deal_id IS NULL THEN [{'field': '(row)', 'exported_value': 'present', 'replayed_value': NULL}]
            WHEN x.deal_id IS NULL THEN [{'field': '(row)', 'exported_value': NULL, 'replayed_value': 'present'}]
            ELSE list_filter([
                CASE WHEN x.account_id IS NOT NULL AND x.account_id IS DISTINCT FROM r.account_id THEN {'field': 'account_id', 'exported_value': x.account_id, 'replayed_value': r.account_id} END,
                CASE WHEN x.owner_rep_id IS NOT NULL AND x.owner_rep_id IS DISTINCT FROM r.owner_rep_id THEN {'field': 'owner_rep_id', 'exported_value': x.owner_rep_id, 'replayed_value': r.owner_rep_id} END,
                CASE WHEN x.name IS NOT NULL AND x.name IS DISTINCT FROM r.name THEN {'field': 'name', 'exported_value': x.name, 'replayed_value': r.name} END,
                CASE WHEN x.stage IS NOT NULL AND x.stage IS DISTINCT FROM r.stage THEN {'field': 'stage', 'exported_value': x.stage, 'replayed_value': r.stage} END,
                CASE WHEN x.amount IS NOT NULL AND x.amount IS DISTINCT FROM r.amount THEN {'field': 'amount', 'exported_value': CAST(x.amount AS VARCHAR), 'replayed_value': CAST(r.amount AS VARCHAR)} END,
                CASE WHEN x.currency IS NOT NULL AND x.currency IS DISTINCT FROM r.currency THEN {'field': 'currency', 'exported_value': x.currency, 'replayed_value': r.currency} END,
                CASE WHEN x.expected_close_date IS NOT NULL AND x.expected_close_date IS DISTINCT FROM r.expected_close_date THEN {'field': 'expected_close_date', 'exported_value': CAST(x.expected_close_date AS VARCHAR), 'replayed_value': CAST(r.expected_close_date AS VARCHAR)} END,
                CASE WHEN x.lost_reason IS NOT NULL AND x.lost_reason IS DISTINCT FROM r.lost_reason THEN {'field': 'lost_reason', 'exported_value': x.lost_reason, 'replayed_value': r.lost_reason} END,
                CASE WHEN x.is_closed IS NOT NULL AND x.is_closed IS DISTINCT FROM r.is_closed THEN {'field': 'is_closed', 'exported_value': CAST(x.is_closed AS VARCHAR), 'replayed_value': CAST(r.is_closed AS VARCHAR)} END,
                CASE WHEN x.is_won IS NOT NULL AND x.is_won IS DISTINCT FROM r.is_won THEN {'field': 'is_won', 'exported_value': CAST(x.is_won AS VARCHAR), 'replayed_value': CAST(r.is_won AS VARCHAR)} END,
                CASE WHEN x.closed_at IS NOT NULL AND x.closed_at IS DISTINCT FROM r.closed_at THEN {'field': 'closed_at', 'exported_value': CAST(x.closed_at AS VARCHAR), 'replayed_value': CAST(r.closed_at AS VARCHAR)} END
            ], lambda d: d IS NOT NULL)
        END AS diffs
    FROM (SELECT * FROM deals WHERE company_id IN (SELECT company_id FROM events WHERE aggregate_type = 'deal')) x
    FULL JOIN deals_current r ON r.company_id = x.company_id AND r.deal_id = x.deal_id
), lead_pairs AS (
    SELECT coalesce(x.company_id, r.company_id) AS company_id, coalesce(x.lead_id, r.lead_id) AS entity_id,
        CASE
            WHEN r.lead_id IS NULL THEN [{'field': '(row)', 'exported_value': 'present', 'replayed_value': NULL}]
            WHEN x.lead_id IS NULL THEN [{'field': '(row)', 'exported_value': NULL, 'replayed_value': 'present'}]
            ELSE list_filter([
                CASE WHEN x.owner_rep_id IS NOT NULL AND x.owner_rep_id IS DISTINCT FROM r.owner_rep_id THEN {'field': 'owner_rep_id', 'exported_value': x.owner_rep_id, 'replayed_value': r.owner_rep_id} END,
                CASE WHEN x.status IS NOT NULL AND x.status IS DISTINCT FROM r.status THEN {'field': 'status', 'exported_value': x.status, 'replayed_value': r.status} END,
                CASE WHEN x.score IS NOT NULL AND x.score IS DISTINCT FROM r.score THEN {'field': 'score', 'exported_value': CAST(x.score AS VARCHAR), 'replayed_value': CAST(r.score AS VARCHAR)} END,
                CASE WHEN x.deal_id IS NOT NULL AND x.deal_id IS DISTINCT FROM r.deal_id THEN {'field': 'deal_id', 'exported_value': x.deal_id, 'replayed_value': r.deal_id} END,
                CASE WHEN x.converted_at IS NOT NULL AND x.converted_at IS DISTINCT FROM r.converted_at THEN {'field': 'converted_at', 'exported_value': CAST(x.converted_at AS VARCHAR), 'replayed_value': CAST(r.converted_at AS VARCHAR)} END
            ], lambda d: d IS NOT NULL)
        END AS diffs
    FROM (SELECT * FROM leads WHERE company_id IN (SELECT company_id FROM events WHERE aggregate_type = 'lead')) x
    FULL JOIN leads_current r ON r.company_id = x.company_id AND r.lead_id = x.lead_id
), account_pairs AS (
    SELECT coalesce(x.company_id, r.company_id) AS company_id, coalesce(x.account_id, r.account_id) AS entity_id,
        CASE
            WHEN r.account_id IS NULL THEN [{'field': '(row)', 'exported_value': 'present', 'replayed_value': NULL}]
            WHEN x.account_id IS NULL THEN [{'field': '(row)', 'exported_value': NULL, 'replayed_value': 'present'}]
            ELSE list_filter([
                CASE WHEN x.owner_rep_id IS NOT NULL AND x.owner_rep_id IS DISTINCT FROM r.owner_rep_id THEN {'field': 'owner_rep_id', 'exported_value': x.owner_rep_id, 'replayed_value': r.owner_rep_id} END,
                CASE WHEN x.territory_id IS NOT NULL AND x.territory_id IS DISTINCT FROM r.territory_id THEN {'field': 'territory_id', 'exported_value': x.territory_id, 'replayed_value': r.territory_id} END,
                CASE WHEN x.potential IS NOT NULL AND x.potential IS DISTINCT FROM r.potential THEN {'field': 'potential', 'exported_value': CAST(x.potential AS VARCHAR), 'replayed_value': CAST(r.potential AS VARCHAR)} END
            ], lambda d: d IS NOT NULL)
        END AS diffs
    FROM (SELECT * FROM accounts WHERE company_id IN (SELECT company_id FROM events WHERE aggregate_type = 'account')) x
    FULL JOIN accounts_current r ON r.company_id = x.company_id AND r.account_id = x.account_id
)
SELECT company_id, 'deal' AS entity, entity_id, d.field, d.exported_value, d.replayed_value
FROM (SELECT company_id, entity_id, unnest(diffs) AS d FROM deal_pairs)
UNION ALL
SELECT company_id, 'lead', entity_id, d.field, d.exported_value, d.replayed_value
FROM (SELECT company_id, entity_id, unnest(diffs) AS d FROM lead_pairs)
UNION ALL
SELECT company_id, 'account', entity_id, d.field, d.exported_value, d.replayed_value
FROM (SELECT company_id, entity_id, unnest(diffs) AS d FROM account_pairs);
