"""An import's rows, events and load record agree with each other: a record twice is refused, a
rejected row brings no events, the same export loads with the same fingerprint and its summary
always counts its events, and a date format the error suggests reads the column."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import datetime, timezone
from pathlib import Path

import pytest

from crm_lab.errors import LoadError
from crm_lab.importers import import_export
from crm_lab.replay import replay
from import_exports import SALESFORCE, fetch, write_export

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"
HUBSPOT = SAMPLES / "hubspot"


def refused(call) -> str:
    with pytest.raises(LoadError) as error:
        call()
    return str(error.value)


def with_line(text: str, line: str) -> str:
    return text.strip() + "\n" + line + "\n"


@pytest.mark.parametrize("name, copied, message", [
    ("Opportunity", 1, "Opportunity.csv line 4, field Id: Opportunity Id '006A' is also at line 2; Opportunity.csv has one row per record"),
    ("Lead", 2, "Lead.csv line 4, field Id: Lead Id '00Q2' is also at line 3; Lead.csv has one row per record"),
    ("Account", 1, "Account.csv line 3, field Id: Account Id '001X' is also at line 2; Account.csv has one row per record"),
    ("Task", 1, "Task.csv line 7, field Id: Task Id '00T1' is also at line 2; Task.csv has one row per record"),
    ("OpportunityHistory", 3, "OpportunityHistory.csv line 11, field Id: OpportunityHistory Id '0083' is also at line 4; "
                              "OpportunityHistory.csv has one row per history row"),
], ids=["opportunity", "lead", "account", "task", "history"])  # fmt: skip
def test_a_salesforce_id_twice_is_refused_naming_both_lines(tmp_path, name, copied, message):
    files = dict(SALESFORCE)
    rows = files[f"{name}.csv"].strip().splitlines()
    files[f"{name}.csv"] = with_line(files[f"{name}.csv"], rows[copied])
    folder = write_export(tmp_path / "northwind", files)
    db = tmp_path / "crm.duckdb"
    # Lead.csv is in the export: the opportunity twice once made a raw DuckDB error there.
    assert refused(lambda: import_export(db, folder, fmt="salesforce")) == f"{folder}/{message}"
    assert not db.exists()


def contacts_with(tmp_path: Path, values: dict[tuple[int, str], str]) -> Path:
    """A copy of the HubSpot sample's c2 contacts with some values replaced: (line, column) -> value."""
    rows = list(csv.reader(io.StringIO((HUBSPOT / "c2" / "contacts.csv").read_text(encoding="utf-8"))))
    for (line, column), value in values.items():
        rows[line - 1][rows[0].index(column)] = value
    folder = tmp_path / "c2"
    folder.mkdir(parents=True)
    with (folder / "contacts.csv").open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return folder / "contacts.csv"


def test_a_rejected_lead_brings_no_events_and_replay_agrees_with_the_leads_table(tmp_path):
    mapping = HUBSPOT / "hubspot-contacts.yaml"
    clean = tmp_path / "clean.duckdb"
    import_export(clean, HUBSPOT / "c2" / "contacts.csv", fmt="mapped", mapping=mapping)
    export = contacts_with(tmp_path, {(3, "Number of Employees"): "1,200", (4, "HubSpot Score"): "high"})
    rejected_ids = [row[0] for row in list(csv.reader(export.open(encoding="utf-8")))[2:4]]
    db = tmp_path / "crm.duckdb"
    report = import_export(db, export, fmt="mapped", mapping=mapping)
    assert fetch(db, "SELECT file, table_name, line, column_name, value, reason FROM load_rejects ORDER BY line") == [
        (str(export), "leads", 3, "Number of Employees", "1,200", "not a whole number"),
        (str(export), "leads", 4, "HubSpot Score", "high", "not a number"),
    ]
    # Every event of the clean import but the two leads' (computed from the clean import).
    expected = fetch(clean, f"SELECT event_id FROM events WHERE aggregate_id NOT IN {tuple(rejected_ids)} ORDER BY 1")
    assert fetch(db, "SELECT event_id FROM events ORDER BY 1") == expected
    assert [(f.table, f.rows_read, f.rows_loaded, f.rows_rejected) for f in report.files] == [
        ("leads", 258, 256, 2), ("events", len(expected), len(expected), 0)
    ]
    replay(db)
    assert fetch(db, "SELECT lead_id FROM leads_current EXCEPT SELECT lead_id FROM leads") == []
    assert fetch(db, "SELECT count(*) FROM leads_current") == fetch(db, "SELECT count(*) FROM leads") == [(256,)]


def test_a_stored_lead_whose_later_row_is_rejected_keeps_its_row_and_history(tmp_path):
    folder = tmp_path / "acme"
    mapping = "kind: leads\ncolumns:\n  lead_id: id\n  created_at: created\n  score: score\n  employees: employees\n  updated_at: modified\n"
    write_export(folder, {"contacts.csv": "id,created,score,employees,modified\nL1,2024-01-02,10,50,2024-01-02\n", "m.yaml": mapping})
    db = tmp_path / "crm.duckdb"
    import_export(db, folder / "contacts.csv", fmt="mapped", mapping=folder / "m.yaml")
    before = fetch(db, "SELECT * FROM events"), fetch(db, "SELECT * FROM leads")
    # The score changed, and the employees are unreadable: the row is rejected, the score with it.
    write_export(folder, {"contacts.csv": "id,created,score,employees,modified\nL1,2024-01-02,90,many,2024-02-01\n"})
    report = import_export(db, folder / "contacts.csv", fmt="mapped", mapping=folder / "m.yaml")
    assert [(f.table, f.rows_loaded, f.events_duplicate, f.rows_rejected) for f in report.files] == [
        ("leads", 0, 0, 1), ("events", 0, 1, 0)
    ]
    assert (fetch(db, "SELECT * FROM events"), fetch(db, "SELECT * FROM leads")) == before


def expected_fingerprint(tables: list[str], export: Path, settings: list[Path]) -> str:
    """The fingerprint as docs/IMPORT.md defines it, computed here: each input's table, file name
    and bytes, then the mapping's and rates files'."""
    digest = hashlib.sha256()
    for table, path in [(t, export) for t in tables] + [("settings", p) for p in settings]:
        digest.update(f"{table}\0{path.name}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_the_same_hubspot_export_has_the_same_fingerprint_and_its_summary_counts_its_events(tmp_path):
    db = tmp_path / "crm.duckdb"
    export, mapping = HUBSPOT / "c1" / "deals.csv", HUBSPOT / "hubspot.yaml"
    first = import_export(db, export, fmt="mapped", mapping=mapping)
    stored = fetch(db, "SELECT count(*) FROM events")[0][0]
    again = import_export(db, export, fmt="mapped", mapping=mapping)
    fresh = import_export(tmp_path / "fresh.duckdb", export, fmt="mapped", mapping=mapping)
    fingerprint = expected_fingerprint(["companies", "deals", "events"], export, [mapping])
    assert first.fingerprint == again.fingerprint == fresh.fingerprint == fingerprint
    assert fetch(db, "SELECT load_id, fingerprint FROM load_runs ORDER BY 1") == [(1, fingerprint), (2, fingerprint)]
    # One export file feeds three tables; the run lists it once, and the tables it fed.
    assert fetch(db, "SELECT files, tables FROM load_runs WHERE load_id = 2") == [
        ([str(export)], ["companies", "deals", "events"])]
    lines = again.summary().splitlines()
    assert lines[0].startswith(f"load 2: 1 file(s) in ") and lines[0].endswith(f" s, fingerprint {fingerprint[:12]}")
    assert lines[1:] == [
        f"  {export} -> companies: 1 read, 0 upserted, 1 unchanged, 0 rejected",
        f"  {export} -> deals: 127 read, 0 upserted, 127 unchanged, 0 rejected",
        f"  {export} -> events: {stored} read, 0 new, {stored} already loaded, 0 quarantined, 0 rejected",
        f"database: {Path(db).absolute()}",
    ]
    assert fetch(db, "SELECT count(*) FROM events") == [(stored,)]


def test_a_later_export_has_the_fingerprint_of_its_own_files_whatever_the_database_holds(tmp_path):
    mapping = HUBSPOT / "hubspot.yaml"
    db = tmp_path / "crm.duckdb"
    import_export(db, HUBSPOT / "c1" / "deals.csv", fmt="mapped", mapping=mapping, company="c1")
    later = tmp_path / "w2" / "deals.csv"
    later.parent.mkdir()
    text = (HUBSPOT / "c1" / "deals.csv").read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    rows[1][rows[0].index("Amount")] = "99999"
    with later.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    changed = import_export(db, later, fmt="mapped", mapping=mapping, company="c1", now=datetime(2026, 1, 1, tzinfo=timezone.utc))
    fresh = import_export(tmp_path / "fresh.duckdb", later, fmt="mapped", mapping=mapping, company="c1")
    assert changed.fingerprint == fresh.fingerprint == expected_fingerprint(["companies", "deals", "events"], later, [mapping])
    new = [f.rows_loaded for f in changed.files if f.table == "events"]
    assert new == [1]


def test_a_salesforce_reimport_has_the_same_fingerprint(tmp_path):
    folder = write_export(tmp_path / "northwind", SALESFORCE)
    db = tmp_path / "crm.duckdb"
    first = import_export(db, folder, fmt="salesforce")
    again = import_export(db, folder, fmt="salesforce")
    assert first.fingerprint == again.fingerprint
    assert [(f.file, f.table) for f in first.files] == [(f.file, f.table) for f in again.files]


DEALS_MAPPING = "columns:\n  deal_id: id\n  stage: stage\n  created_at: created\n"


@pytest.mark.parametrize("created, suggested, expected", [
    (["13/01/2024 10:16", "01/02/2024 09:00"], "'%d/%m/%Y %H:%M'", ["2024-01-13 10:16:00", "2024-02-01 09:00:00"]),
    (["01/13/2024 10:16:05", "02/01/2024 09:00:00"], "'%m/%d/%Y %H:%M:%S'", ["2024-01-13 10:16:05", "2024-02-01 09:00:00"]),
    (["1/13/2024 10:16 PM", "2/1/2024 9:00 AM"], "'%m/%d/%Y %I:%M %p'", ["2024-01-13 22:16:00", "2024-02-01 09:00:00"]),
    (["13.01.24", "01.02.24"], "'%d.%m.%y'", ["2024-01-13 00:00:00", "2024-02-01 00:00:00"]),
], ids=["day-first-minutes", "month-first-seconds", "am-pm", "dotted-short-year"])  # fmt: skip
def test_the_suggested_date_format_reads_the_column(tmp_path, created, suggested, expected):
    deals = "id,stage,created\n" + "".join(f"D{i},prospecting,{value}\n" for i, value in enumerate(created, 1))
    folder = write_export(tmp_path / "acme", {"deals.csv": deals, "m.yaml": DEALS_MAPPING})
    db = tmp_path / "crm.duckdb"
    message = refused(lambda: import_export(db, folder / "deals.csv", fmt="mapped", mapping=folder / "m.yaml"))
    assert message.endswith(f"declare the format in the mapping file, e.g. dates: {{created: {suggested}}}")
    write_export(folder, {"m.yaml": DEALS_MAPPING + f"dates:\n  created: {suggested}\n"})
    import_export(db, folder / "deals.csv", fmt="mapped", mapping=folder / "m.yaml")
    assert fetch(db, "SELECT strftime(created_at, '%Y-%m-%d %H:%M:%S') FROM deals ORDER BY deal_id") == [(e,) for e in expected]


@pytest.mark.parametrize("created, message", [
    (["01/12/2024 10:16", "01/12/2024"],
     "deals.csv line 3, field created: the column mixes date formats: D/M/Y or M/D/Y with a time (HH:MM) "
     "(line 2: '01/12/2024 10:16'), D/M/Y or M/D/Y (line 3: '01/12/2024'); no one format reads them all: export the "
     "column again with every value in one format (ISO 8601 needs no declaration), or correct the odd values"),
    (["13/01/2024", "01/13/2024"],
     "deals.csv line 3, field created: the column mixes day-first and month-first dates: day first (line 2: "
     "'13/01/2024'), month first (line 3: '01/13/2024'); no one format reads them all: export the column again with "
     "every value in one format (ISO 8601 needs no declaration)"),
    (["2024-01-13", "N/A"],
     "deals.csv line 3, field created: the column mixes date formats: ISO 8601 (line 2: '2024-01-13'), text that is not "
     "a date (line 3: 'N/A'); no one format reads them all: export the column again with every value in one format "
     "(ISO 8601 needs no declaration), or correct the odd values"),
    (["01/12/2024 10h16"],
     "deals.csv line 2, field created: dates that are not ISO 8601: D/M/Y or M/D/Y with a time in no known format "
     "(line 2: '01/12/2024 10h16'); fix the values or declare the column's format in the mapping file (dates:)"),
], ids=["with-and-without-time", "day-and-month-first", "iso-and-text", "unknown-time"])  # fmt: skip
def test_a_column_no_one_format_reads_is_named_without_a_format_to_declare(tmp_path, created, message):
    deals = "id,stage,created\n" + "".join(f"D{i},prospecting,{value}\n" for i, value in enumerate(created, 1))
    folder = write_export(tmp_path / "acme", {"deals.csv": deals, "m.yaml": DEALS_MAPPING})
    assert refused(lambda: import_export(tmp_path / "crm.duckdb", folder / "deals.csv", fmt="mapped", mapping=folder / "m.yaml")) == (
        f"{folder}/{message}"
    )
