-- Reps with the bookings quota they carry (SDR quotas count sourced pipeline, not bookings).
-- Bind $company (NULL = every company).
SELECT company_id, rep_id, team, territory_id, is_active, hired_at,
    CASE WHEN coalesce(role, '') <> 'SDR' THEN CAST(quota AS DOUBLE) END AS bookings_quota
FROM reps
WHERE $company IS NULL OR company_id = $company
ORDER BY company_id, rep_id
