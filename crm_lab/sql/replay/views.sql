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

-- Pipeline waterfall between two instants, one row per deal that moved in the pipeline. The
-- pipeline is the open deals, optionally only those whose expected_close_date lies in
-- [close_from, close_to]. The deal's path is walked version by version from its state at t0 to
-- its state at t1, and every step is booked, so for every row and every sum, to the cent:
--   start + created + pulled_in + amount_up - amount_down - pushed_out - won - lost = "end".
-- start: in the pipeline at t0, at its amount then. "end": in the pipeline at t1, at its amount then.
-- created: entered the pipeline from outside it: a deal created after t0, or a deal re-entering the
--   open pipeline after it was won or lost (reopened), each time, at the amount it enters with. So a
--   deal created, lost and reopened between t0 and t1 is in `created` twice.
-- reopened: the part of `created` that came from reopens (not a bucket of its own in the equation):
--   created - reopened is new pipeline.
-- pulled_in: an open deal whose close date moved into the window, at its amount then.
-- won, lost: left the pipeline by being won, lost (or deleted: lost), at the amount it has then.
-- pushed_out: an open deal whose close date moved out of the window, at its amount then.
-- amount_up, amount_down: changes of amount while in the pipeline (including on the leaving step).
-- A deal outside the window that closes with a close date inside it enters and leaves at once.
-- t1 before t0 is an error; t1 = t0 gives start = "end" and no movement.
CREATE OR REPLACE MACRO pipeline_movement(t0, t1, close_from := NULL, close_to := NULL) AS TABLE
WITH guard AS (
    SELECT CASE WHEN CAST(t1 AS TIMESTAMPTZ) < CAST(t0 AS TIMESTAMPTZ)
        THEN error('pipeline_movement: t1 (' || CAST(t1 AS TIMESTAMPTZ) || ') must not be before t0 ('
                   || CAST(t0 AS TIMESTAMPTZ) || ')')
        ELSE true END AS ok
), path AS (
    SELECT company_id, deal_id, 0 AS step, amount, is_closed, is_won, closed_at, expected_close_date,
        owner_rep_id, stage, valid_to
    FROM deals_as_of(t0)
    WHERE (SELECT ok FROM guard)
    UNION ALL
    SELECT company_id, deal_id, version AS step, amount, is_closed, is_won, closed_at, expected_close_date,
        owner_rep_id, stage, valid_to
    FROM deal_history
    WHERE valid_from > CAST(t0 AS TIMESTAMPTZ) AND valid_from <= CAST(t1 AS TIMESTAMPTZ) AND (SELECT ok FROM guard)
), states AS (
    SELECT *,
        NOT is_closed AND coalesce((close_from IS NULL OR expected_close_date >= CAST(close_from AS DATE))
                               AND (close_to IS NULL OR expected_close_date <= CAST(close_to AS DATE)), false) AS in_pipeline,
        coalesce((close_from IS NULL OR CAST(closed_at AS DATE) >= CAST(close_from AS DATE))
             AND (close_to IS NULL OR CAST(closed_at AS DATE) <= CAST(close_to AS DATE)), false) AS closes_in_window,
        coalesce(amount, 0) AS amt,
        row_number() OVER (PARTITION BY company_id, deal_id ORDER BY step DESC) = 1 AS is_last,
        valid_to IS NOT NULL AND valid_to <= CAST(t1 AS TIMESTAMPTZ) AS deleted_after
    FROM path
), steps AS (
    SELECT *,
        lag(step) OVER walk IS NOT NULL AS has_prev,
        coalesce(lag(in_pipeline) OVER walk, false) AS prev_in,
        lag(is_closed) OVER walk AS prev_closed,
        coalesce(lag(amt) OVER walk, 0) AS prev_amt
    FROM states
    WINDOW walk AS (PARTITION BY company_id, deal_id ORDER BY step)
), booked AS (
    SELECT *,
        has_prev AND NOT prev_closed AND is_closed AND (prev_in OR closes_in_window) AS closes_here,
        step = 0 AND in_pipeline AS starts_in
    FROM steps
), moves AS (
    SELECT company_id, deal_id, is_last, owner_rep_id, stage,
        CASE WHEN starts_in THEN amt ELSE 0 END AS start,
        CASE WHEN step > 0 AND NOT prev_in AND (in_pipeline OR closes_here) AND (NOT has_prev OR prev_closed) THEN amt ELSE 0 END AS created,
        CASE WHEN step > 0 AND NOT prev_in AND (in_pipeline OR closes_here) AND has_prev AND prev_closed THEN amt ELSE 0 END AS reopened,
        CASE WHEN step > 0 AND NOT prev_in AND (in_pipeline OR closes_here) AND has_prev AND NOT prev_closed THEN amt ELSE 0 END AS pulled_in,
        CASE WHEN step > 0 AND prev_in THEN greatest(amt - prev_amt, 0) ELSE 0 END AS amount_up,
        CASE WHEN step > 0 AND prev_in THEN greatest(prev_amt - amt, 0) ELSE 0 END AS amount_down,
        CASE WHEN (prev_in AND NOT in_pipeline OR closes_here) AND NOT is_closed THEN amt ELSE 0 END AS pushed_out,
        CASE WHEN (prev_in OR closes_here) AND is_closed AND is_won THEN amt ELSE 0 END AS won,
        CASE WHEN (prev_in OR closes_here) AND is_closed AND NOT is_won THEN amt ELSE 0 END
            + CASE WHEN is_last AND deleted_after AND in_pipeline THEN amt ELSE 0 END AS lost,
        CASE WHEN is_last AND NOT deleted_after AND in_pipeline THEN amt ELSE 0 END AS "end"
    FROM booked
)
SELECT company_id, deal_id,
    arg_max(owner_rep_id, is_last) AS owner_rep_id,
    arg_max(stage, is_last) AS stage,
    CAST(sum(start) AS DECIMAL(18, 2)) AS start,
    CAST(sum(created) AS DECIMAL(18, 2)) AS created,
    CAST(sum(reopened) AS DECIMAL(18, 2)) AS reopened,
    CAST(sum(pulled_in) AS DECIMAL(18, 2)) AS pulled_in,
    CAST(sum(amount_up) AS DECIMAL(18, 2)) AS amount_up,
    CAST(sum(amount_down) AS DECIMAL(18, 2)) AS amount_down,
    CAST(sum(pushed_out) AS DECIMAL(18, 2)) AS pushed_out,
    CAST(sum(won) AS DECIMAL(18, 2)) AS won,
    CAST(sum(lost) AS DECIMAL(18, 2)) AS lost,
    CAST(sum("end") AS DECIMAL(18, 2)) AS "end"
FROM moves
GROUP BY company_id, deal_id
HAVING sum(start) <> 0 OR sum(created) <> 0 OR sum(pulled_in) <> 0 OR sum(amount_up) <> 0 OR sum(amount_down) <> 0
    OR sum(pushed_out) <> 0 OR sum(won) <> 0 OR sum(lost) <> 0 OR sum("end") <> 0;

-- The same waterfall summed per company, per company and owner, and per company and stage
-- (stage as of t1); grouped_by says which. Buckets as in pipeline_movement, reopened included.
CREATE OR REPLACE MACRO pipeline_waterfall(t0, t1, close_from := NULL, close_to := NULL) AS TABLE
SELECT
    CASE WHEN grouping(owner_rep_id) = 0 THEN 'owner' WHEN grouping(stage) = 0 THEN 'stage' ELSE 'company' END AS grouped_by,
    company_id, owner_rep_id, stage,
    sum(start) AS start, sum(created) AS created, sum(reopened) AS reopened, sum(pulled_in) AS pulled_in,
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
