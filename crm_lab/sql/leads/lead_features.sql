-- One row per lead created by $as_of, as it stood at $as_of, with what a conversion model may
-- use: the lead's fields then, its engagement (activities logged against it up to then, by
-- type), its age, and whether it had converted by then. Nothing that happened after $as_of is
-- read:
--   * lead fields come from lead_history (the version valid at $as_of), not from `leads`, which
--     is the export's current state;
--   * activities come from the event log folded up to $as_of, not from `activities`, which has
--     already dropped the ones deleted later and may show a lead_id set later;
--   * events that replay quarantined are left out, as replay leaves them out of the histories.
-- Which leads have a settled outcome (old enough) is decided by the caller from age_days.
-- Parameters: $as_of, $company (NULL: every company).
WITH params AS (
    SELECT CAST($as_of AS TIMESTAMPTZ) AS as_of,
        CAST($company AS VARCHAR) AS company
), leads_then AS (
    SELECT h.company_id, h.lead_id, h.source, h.industry, h.employees, h.score, h.status, h.deal_id,
        h.created_at, h.converted_at,
        date_diff('microsecond', h.created_at, p.as_of) / 86400e6 AS age_days
    FROM lead_history h, params p
    WHERE h.valid_from <= p.as_of AND coalesce(h.valid_to, 'infinity'::TIMESTAMPTZ) > p.as_of
      AND (p.company IS NULL OR h.company_id = p.company)
      AND h.created_at <= p.as_of
), activity_events AS (
    SELECT e.company_id, e.aggregate_id AS activity_id, e.event_type, e.order_key, e.payload_keys,
        e.lead_id, e.activity_type
    FROM events e, params p
    WHERE e.aggregate_type = 'activity' AND e.occurred_at <= p.as_of
      AND (p.company IS NULL OR e.company_id = p.company)
      AND NOT EXISTS (
          SELECT 1 FROM events_rejected r
          WHERE r.detected_by = 'replay' AND r.company_id = e.company_id AND r.event_id = e.event_id
      )
), activities_then AS (
    -- Each activity's state at $as_of: the last value each field was set to (an explicit null
    -- clears it), and whether it existed then.
    SELECT company_id, activity_id,
        arg_max_null(lead_id, CASE WHEN list_contains(payload_keys, 'lead_id') THEN order_key END) AS lead_id,
        arg_max_null(activity_type, CASE WHEN list_contains(payload_keys, 'activity_type') THEN order_key END) AS activity_type,
        bool_or(event_type = 'created') AND NOT bool_or(event_type = 'deleted') AS live
    FROM activity_events
    GROUP BY company_id, activity_id
), engagement AS (
    SELECT company_id, lead_id,
        count(*) FILTER (WHERE activity_type = 'call') AS calls,
        count(*) FILTER (WHERE activity_type = 'email') AS emails,
        count(*) FILTER (WHERE activity_type = 'meeting') AS meetings,
        count(*) FILTER (WHERE activity_type = 'task') AS tasks
    FROM activities_then
    WHERE live AND lead_id IS NOT NULL
    GROUP BY company_id, lead_id
)
SELECT l.company_id, l.lead_id, l.source, l.industry, l.employees, l.score,
    coalesce(g.calls, 0) AS calls, coalesce(g.emails, 0) AS emails,
    coalesce(g.meetings, 0) AS meetings, coalesce(g.tasks, 0) AS tasks,
    l.age_days, l.status,
    coalesce(l.status = 'converted', false) OR l.converted_at IS NOT NULL AS converted,
    l.deal_id, l.created_at, l.converted_at
FROM leads_then l
LEFT JOIN engagement g USING (company_id, lead_id)
ORDER BY l.company_id, l.lead_id
