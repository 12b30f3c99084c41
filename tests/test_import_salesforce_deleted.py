"""Deleted records of a Salesforce export (IsDeleted true): an account ends like a deleted
opportunity, lead or task: a `deleted` event at its last modification, no row, and no place
in a territory plan."""

from __future__ import annotations

from crm_lab.db import reading
from crm_lab.importers import import_export
from crm_lab.replay import replay
from crm_lab.territory.store import territory_sql
from import_exports import SALESFORCE, fetch, stored_events, write_export

ACCOUNTS = """
Id,Name,Industry,NumberOfEmployees,BillingLatitude,BillingLongitude,OwnerId,CreatedDate,IsDeleted,LastModifiedDate
001X,Northwind,retail,120,47.6,-122.3,005A,2024-01-02T09:00:00.000Z,false,2024-01-02T09:00:00.000Z
001Y,Old Mill,energy,30,45.5,-122.7,005B,2024-01-03T09:00:00.000Z,{deleted},2024-05-06T07:00:00.000Z
"""


def test_a_deleted_account_ends_at_its_last_modification_and_reaches_no_territory_plan(tmp_path):
    folder = write_export(tmp_path / "northwind", {**SALESFORCE, "Account.csv": ACCOUNTS.format(deleted="false")})
    db = tmp_path / "crm.duckdb"
    import_export(db, folder, fmt="salesforce")
    # Deleted since the last import: the next import ends it, though its row was stored.
    write_export(folder, {**SALESFORCE, "Account.csv": ACCOUNTS.format(deleted="true")})
    import_export(db, folder, fmt="salesforce")
    assert [(e[0], e[1], e[2], e[3]) for e in stored_events(db, "account")] == [
        ("001X", "sf-Account-001X", "created", "2024-01-02T09:00:00Z"),
        ("001Y", "sf-Account-001Y", "created", "2024-01-03T09:00:00Z"),
        ("001Y", "sf-Account-001Y:deleted", "deleted", "2024-05-06T07:00:00Z"),
    ]
    replay(db)
    assert fetch(db, "SELECT account_id FROM accounts_current") == [("001X",)]
    with reading(db) as con:
        assert [r[0] for r in con.sql(territory_sql("accounts"), params={"company": "northwind"}).fetchall()] == ["001X"]


def test_a_deleted_account_of_a_first_import_has_no_row(tmp_path):
    folder = write_export(tmp_path / "northwind", {**SALESFORCE, "Account.csv": ACCOUNTS.format(deleted="true")})
    db = tmp_path / "crm.duckdb"
    import_export(db, folder, fmt="salesforce")
    assert fetch(db, "SELECT account_id FROM accounts") == [("001X",)]
    assert fetch(db, "SELECT event_type FROM events WHERE aggregate_id = '001Y' ORDER BY order_key") == [("created",), ("deleted",)]


def test_the_summary_adds_up_each_files_rows_with_the_deleted_ones(tmp_path):
    files = dict(SALESFORCE)
    files["Opportunity.csv"] = files["Opportunity.csv"].replace("Loss_Reason__c,CreatedDate", "Loss_Reason__c,CreatedDate,IsDeleted,LastModifiedDate")
    files["Opportunity.csv"] = files["Opportunity.csv"].replace("2024-03-01T10:15:00.000Z", "2024-03-01T10:15:00.000Z,false,2024-03-20T16:00:00Z")
    files["Opportunity.csv"] = files["Opportunity.csv"].replace("2024-03-05T08:00:00.000+0000", "2024-03-05T08:00:00.000+0000,true,2024-05-01T00:00:00Z")
    folder = write_export(tmp_path / "northwind", {**files, "Account.csv": ACCOUNTS.format(deleted="true")})
    report = import_export(tmp_path / "crm.duckdb", folder, fmt="salesforce")
    lines = report.summary().splitlines()
    # 2 opportunities, 2 accounts, 5 tasks (one deleted): the files' data lines, counted by hand.
    assert f"  {folder / 'Opportunity.csv'}: 2 rows = 1 read + 1 deleted (IsDeleted true: not in deals; each ends with a deleted event)" in lines
    assert f"  {folder / 'Account.csv'}: 2 rows = 1 read + 1 deleted (IsDeleted true: not in accounts; each ends with a deleted event)" in lines
    assert f"  {folder / 'Task.csv'}: 5 rows = 4 read + 1 deleted (IsDeleted true: not in activities; each ends with a deleted event)" in lines
    read = {(f.file, f.table): f.rows_read for f in report.files}
    assert (read[str(folder / "Opportunity.csv"), "deals"], read[str(folder / "Account.csv"), "accounts"],
            read[str(folder / "Task.csv"), "activities"]) == (1, 1, 4)  # the loader's own count: the same
    # Files without a deleted (or open) row have no such line.
    assert not any(line.startswith(f"  {folder / 'Lead.csv'}:") for line in lines)
