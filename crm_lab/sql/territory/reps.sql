-- Territory planning input: the reps of one company ($company) who can own accounts: active
-- (a missing is_active counts as active) and, unless $roles is NULL, in one of $roles. The
-- territory centre comes from the rep's territory.
SELECT r.rep_id, r.home_lat, r.home_lon, t.center_lat, t.center_lon, r.capacity_hours, r.fte
FROM reps r
LEFT JOIN territories t ON t.company_id = r.company_id AND t.territory_id = r.territory_id
WHERE r.company_id = $company
  AND coalesce(r.is_active, true)
  AND ($roles IS NULL OR list_contains($roles, r.role))
ORDER BY r.rep_id
