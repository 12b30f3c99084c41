"""References between a Salesforce export's files: a history row of a record the export does
not hold is a reject naming its file, line and field, and starts no record of its own."""

from __future__ import annotations

import pytest

from crm_lab.errors import LoadError
from crm_lab.importers import import_export
from import_exports import SALESFORCE, fetch, stored_events, write_export

NOT_IN_OPPORTUNITIES = "opportunity not in Opportunity.csv (no row there has this Id): the history row is not imported"


def with_orphans() -> dict[str, str]:
    files = dict(SALESFORCE)
    files["OpportunityHistory.csv"] += "0090,006Z,Prospecting,700,2024-05-31,10,Pipeline,2024-03-02T10:00:00.000Z,005A\n"
    files["OpportunityFieldHistory.csv"] += "0173,006Z,Owner,005A,005B,2024-03-16T11:00:00.000Z,005A\n"
    files["LeadHistory.csv"] += "017L3,00Q7,Score__c,10,20,2024-02-26T10:00:00.000Z,005A\n"
    return files


def test_history_rows_of_records_not_in_the_export_are_rejected_and_start_no_record(tmp_path):
    folder = write_export(tmp_path / "northwind", with_orphans())
    db = tmp_path / "crm.duckdb"
    report = import_export(db, folder, fmt="salesforce")
    assert fetch(db, "SELECT load_id, file, table_name, line, column_name, value, reason FROM load_rejects ORDER BY file, line") == [
        (report.load_id, str(folder / "LeadHistory.csv"), "events", 4, "LeadId", "00Q7",
         "lead not in Lead.csv (no row there has this Id): the history row is not imported"),
        (report.load_id, str(folder / "OpportunityFieldHistory.csv"), "events", 4, "OpportunityId", "006Z", NOT_IN_OPPORTUNITIES),
        (report.load_id, str(folder / "OpportunityHistory.csv"), "events", 11, "OpportunityId", "006Z", NOT_IN_OPPORTUNITIES),
    ]  # fmt: skip
    assert fetch(db, "SELECT count(*) FROM events WHERE aggregate_id IN ('006Z', '00Q7')") == [(0,)]
    assert [e[0] for e in stored_events(db, "deal")] == ["006A"] * 6 + ["006B"] * 4  # as without the rows
    # Each history file: its events (the rows that are one save are one event) plus its rejected rows.
    history = {f.file: (f.rows_read, f.rows_loaded, f.rows_rejected) for f in report.files if f.table == "events"}
    assert history[str(folder / "OpportunityHistory.csv")] == (8, 7, 1)  # 0081 and 0086 are their deals' created
    assert history[str(folder / "OpportunityFieldHistory.csv")] == (2, 1, 1)
    assert (report.rows_rejected, report.status) == (3, "ok_with_rejects")
    assert f"  {folder / 'OpportunityHistory.csv'} -> events: 8 read, 7 new, 0 already loaded, 0 quarantined, 1 rejected" in report.summary()
    assert fetch(db, "SELECT rows_rejected, status FROM load_runs") == [(3, "ok_with_rejects")]


def test_a_history_file_whose_every_row_is_rejected_still_counts_them(tmp_path):
    files = dict(SALESFORCE)
    files["OpportunityFieldHistory.csv"] = "Id,OpportunityId,Field,OldValue,NewValue,CreatedDate\n0173,006Z,Name,a,b,2024-03-16T11:00:00.000Z\n"
    folder = write_export(tmp_path / "northwind", files)
    report = import_export(tmp_path / "crm.duckdb", folder, fmt="salesforce")
    field_history = [f for f in report.files if f.file == str(folder / "OpportunityFieldHistory.csv")]
    assert [(f.table, f.rows_read, f.rows_loaded, f.rows_rejected, f.empty) for f in field_history] == [("events", 1, 0, 1, "")]
    assert report.status == "ok_with_rejects"


def test_strict_refuses_an_export_with_such_rows_and_writes_nothing(tmp_path):
    folder = write_export(tmp_path / "northwind", with_orphans())
    db = tmp_path / "crm.duckdb"
    with pytest.raises(LoadError) as error:
        import_export(db, folder, fmt="salesforce", strict=True)
    assert str(error.value).splitlines()[:2] == [
        "--strict: 3 row(s) of the export rejected; nothing was loaded",
        f"  {folder / 'LeadHistory.csv'} line 4, column LeadId = '00Q7': lead not in Lead.csv (no row there has this Id): "
        "the history row is not imported",
    ]
    assert not db.exists()
