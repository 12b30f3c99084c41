-- Territory planning input: the live accounts of one company ($company), with the owner and
-- potential as replayed from the event log (an explicit clear in the log wins over the export),
-- and location and workload from the accounts export. Deleted accounts (in account_history but
-- no longer current) are left out.
SELECT a.account_id, a.lat, a.lon, a.workload_hours,
       CAST(CASE WHEN c.account_id IS NOT NULL THEN c.potential ELSE a.potential END AS DOUBLE) AS potential,
       CASE WHEN c.account_id IS NOT NULL THEN c.owner_rep_id ELSE a.owner_rep_id END AS owner_rep_id
FROM accounts a
LEFT JOIN accounts_current c ON c.company_id = a.company_id AND c.account_id = a.account_id
WHERE a.company_id = $company
  AND (c.account_id IS NOT NULL
       OR NOT EXISTS (SELECT 1 FROM account_history h WHERE h.company_id = a.company_id AND h.account_id = a.account_id))
ORDER BY a.account_id
