"""Files at the edges of what a load reads: files of no rows, files of no bytes, JSON Lines
lines that are not objects, records too long for the CSV reader, a failed load of a new
database, and another CRM's export loaded as if it were native. Exact messages throughout."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crm_lab.errors import LoadError
from crm_lab.importers import import_export
from crm_lab.load import load
from crm_lab.sources import CSV_MAX_LINE_BYTES, JSONL_SAMPLE
from tests.conftest import refused_load, query, snapshot, write_csv, write_jsonl

REPO = Path(__file__).resolve().parents[1]
SALESFORCE_SAMPLE = REPO / "data" / "samples" / "salesforce" / "c1"
HUBSPOT_DEALS = REPO / "data" / "samples" / "hubspot" / "c1" / "deals.csv"
DEALS_HEADER = "company_id,deal_id,name,stage,amount"
ACTIVITIES_HEADER = "company_id,activity_id,activity_type,occurred_at"


# Files of no rows: zero rows read, said in the summary, not an error ---------------------------


def test_header_only_csv_among_other_files_loads_the_others(db, tmp_path):
    deals = write_csv(tmp_path / "deals.csv", DEALS_HEADER, "c1,d1,Big deal,proposal,100")
    activities = write_csv(tmp_path / "activities.csv", ACTIVITIES_HEADER)
    report = load(db, [tmp_path])
    assert report.status == "ok"
    assert [(f.file, f.rows_read, f.rows_loaded, f.empty) for f in report.files] == [
        (str(deals), 1, 1, ""),
        (str(activities), 0, 0, "a header but no rows"),
    ]
    assert report.summary().splitlines()[1:] == [
        f"  {deals} -> deals: 1 read, 1 upserted, 0 rejected",
        f"  {activities} -> activities: 0 read: the file is empty (a header but no rows)",
        f"database: {db.absolute()}",  # the default --db is relative to the working directory
    ]
    assert query(db, "SELECT files, rows_read, status FROM load_runs") == [([str(deals), str(activities)], 1, "ok")]
    assert query(db, "SELECT count(*) FROM activities") == [(0,)]


def test_header_only_events_csv_loads_no_events(db, tmp_path):
    path = write_csv(tmp_path / "events.csv", "event_id,company_id,aggregate_type,aggregate_id,event_type,occurred_at,payload")
    report = load(db, [path])
    assert (report.rows_read, report.files[0].empty, report.status) == (0, "a header but no rows", "ok")
    assert query(db, "SELECT count(*) FROM events") == [(0,)]


def test_header_only_csv_still_needs_its_required_columns(db, tmp_path):
    path = write_csv(tmp_path / "deals.csv", "company_id,name")
    assert refused_load(db, path) == f"{path} line 1: missing required column deal_id for table deals"


def test_parquet_of_no_rows_loads_nothing_and_says_so(db, tmp_path):
    path = tmp_path / "deals.parquet"
    pq.write_table(pa.table({"company_id": pa.array([], pa.string()), "deal_id": pa.array([], pa.string())}), path)
    report = load(db, [path])
    assert report.summary().splitlines()[1] == f"  {path} -> deals: 0 read: the file is empty (no rows)"


@pytest.mark.parametrize("content", [b"", b"\n\n"], ids=["no bytes", "blank lines"])
def test_json_lines_file_of_no_records_loads_nothing_and_says_so(db, tmp_path, content):
    path = tmp_path / "activities.jsonl"
    path.write_bytes(content)
    report = load(db, [path])
    assert report.status == "ok"
    assert report.summary().splitlines()[1] == f"  {path} -> activities: 0 read: the file is empty (no records)"


# Files of no bytes: no header, a broken export --------------------------------------------


def test_csv_of_no_bytes_is_refused_as_such(db, tmp_path):
    path = tmp_path / "deals.csv"
    path.write_bytes(b"")
    assert refused_load(db, path) == f"{path}: file is empty (0 bytes): a CSV file starts with its header row"


def test_csv_of_blank_lines_only_is_refused_as_such(db, tmp_path):
    path = tmp_path / "deals.csv"
    path.write_bytes(b"\xef\xbb\xbf\r\n\r\n")
    assert refused_load(db, path) == f"{path}: file is empty (blank lines only): a CSV file starts with its header row"


def test_parquet_of_no_bytes_is_refused_as_such(db, tmp_path):
    path = tmp_path / "deals.parquet"
    path.write_bytes(b"")
    assert refused_load(db, path) == f"{path}: file is empty (0 bytes): not a Parquet file"


# JSON Lines: a line that is not an object is a reject, like a ragged CSV record ----------------


def test_json_lines_line_that_is_not_an_object_is_a_reject(db, tmp_path):
    path = tmp_path / "deals.j.jsonl"
    path.write_text(
        '{"company_id":"c1","deal_id":"j1","amount":100.5}\n'
        '"just a string"\n'
        "\n"
        "[1,2]\n"
        '  {"company_id":"c1","deal_id":"j2","name":"Two"}\n'
        "42\n",
        encoding="utf-8",
    )
    report = load(db, [path])
    assert (report.rows_read, report.rows_rejected, report.files[0].rows_loaded) == (5, 3, 2)
    assert query(db, "SELECT line, column_name, value, reason FROM load_rejects ORDER BY line") == [
        (2, None, '"just a string"', "not a JSON object"),
        (4, None, "[1,2]", "not a JSON object"),
        (6, None, "42", "not a JSON object"),
    ]
    assert query(db, "SELECT deal_id, name, CAST(amount AS VARCHAR) FROM deals ORDER BY deal_id") == [
        ("j1", None, "100.50"),
        ("j2", "Two", None),
    ]


def test_json_lines_not_an_object_under_strict_names_the_line(db, tmp_path):
    path = tmp_path / "deals.j.jsonl"
    path.write_text('{"company_id":"c1","deal_id":"j1"}\n"just a string"\n', encoding="utf-8")
    assert refused_load(db, path, strict=True) == (
        "--strict: 1 row(s) rejected and 0 event(s) quarantined; nothing was loaded\n"
        f"  {path} line 2: not a JSON object: '\"just a string\"'"
    )


def test_json_lines_of_nothing_but_non_objects_rejects_every_line(db, tmp_path):
    path = tmp_path / "deals.jsonl"
    path.write_text("[1]\n[2]\n", encoding="utf-8")
    # No object: no columns, so the file lacks the table's required ones.
    assert refused_load(db, path) == f"{path}: missing required columns company_id, deal_id for table deals"


def test_json_lines_payload_keeps_null_and_values_stay_text(db, tmp_path):
    path = write_jsonl(
        tmp_path / "events.jsonl",
        {"event_id": "e1", "company_id": "c1", "aggregate_type": "deal", "aggregate_id": "d1", "seq": 1,
         "event_type": "created", "occurred_at": "2024-01-01T00:00:00Z", "payload": {"amount": 10.5, "name": None}},
    )
    load(db, [path])
    assert query(db, "SELECT seq, list_sort(payload_keys), payload FROM events") == [(1, ["amount", "name"], '{"amount":10.5,"name":null}')]


def test_json_lines_contract_column_first_seen_past_the_sample_is_loaded(db, tmp_path):
    # The columns come from the keys of the first JSONL_SAMPLE lines; a contract column whose key
    # shows only later must still load, not vanish without a word.
    plain = [{"company_id": "c1", "deal_id": f"d{i}", "amount": "10.00"} for i in range(JSONL_SAMPLE)]
    late = {"company_id": "c1", "deal_id": "late", "amount": "20.00", "lost_reason": "price", "stage": "lost"}
    path = write_jsonl(tmp_path / "deals.jsonl", *plain, late)
    report = load(db, [path])
    assert query(db, "SELECT count(*), count(lost_reason), max(lost_reason), max(stage) FROM deals") == [
        (JSONL_SAMPLE + 1, 1, "price", "lost")]
    assert report.files[0].ignored_columns == ()


def test_json_lines_key_written_two_ways_is_refused(db, tmp_path):
    path = tmp_path / "deals.jsonl"
    path.write_text('{"company_id":"c1","deal_id":"a"}\n{"company_id":"c1","Deal_ID":"b"}\n', encoding="utf-8")
    assert refused_load(db, path) == f"{path}: column 'deal_id' appears more than once (names are case-insensitive)"


# A CSV record too long for DuckDB's reader ---------------------------------------------------


@pytest.mark.parametrize("before", [1, 30_000], ids=["in the sniffed sample", "past the sample"])
def test_csv_record_over_the_line_limit_names_line_column_and_limit(db, tmp_path, before):
    rows = [f"c1,d{i},n,proposal,1" for i in range(before)]
    value = "x" * 3_000_000
    path = write_csv(tmp_path / "deals.csv", DEALS_HEADER, *rows, f"c1,big,{value},proposal,2", "c1,last,n,proposal,3")
    line = before + 2
    assert refused_load(db, path) == (
        f"{path} line {line}, column name (3,000,000 bytes): the record is 3,000,018 bytes, over the CSV "
        f"reader's limit of {CSV_MAX_LINE_BYTES:,} bytes per record; shorten that value, or save the table as "
        "Parquet, which has no such limit"
    )


def test_csv_record_just_under_the_limit_loads(db, tmp_path):
    value = "y" * 1_000_000
    path = write_csv(tmp_path / "deals.csv", DEALS_HEADER, "c1,d1,n,proposal,1", f"c1,d2,{value},proposal,2")
    assert load(db, [path]).files[0].rows_loaded == 2
    assert query(db, "SELECT length(name) FROM deals WHERE deal_id = 'd2'") == [(1_000_000,)]


# A failed load leaves the disk as it was ----------------------------------------------------


def broken_world(tmp_path: Path) -> Path:
    folder = tmp_path / "world"
    folder.mkdir()
    write_csv(folder / "deals.csv", DEALS_HEADER, "c1,d1,n,proposal,1")
    (folder / "events.csv").write_bytes(
        b"event_id,company_id,aggregate_type,aggregate_id,event_type,occurred_at\n"
        b"e1,c1,deal,d1,created,2024-01-01\n"
        b"c1,\xff\xfe,broken\n"
    )
    return folder


def test_failed_load_of_a_new_database_removes_it(tmp_path):
    db = tmp_path / "new.duckdb"
    folder = broken_world(tmp_path)
    with pytest.raises(LoadError) as caught:
        load(db, [folder])
    assert str(caught.value) == (
        f"{folder / 'events.csv'} line 3, column company_id: byte 0xff is not valid UTF-8; save the file as UTF-8 "
        "(in Excel: CSV UTF-8) and load it again"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["world"]


def test_failed_load_removes_the_folders_it_made_for_a_new_database(tmp_path):
    folder = broken_world(tmp_path)
    with pytest.raises(LoadError):
        load(tmp_path / "made" / "for" / "it.duckdb", [folder])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["world"]


def test_failed_strict_load_of_a_new_database_removes_it(tmp_path):
    db = tmp_path / "new.duckdb"
    path = write_csv(tmp_path / "deals.csv", DEALS_HEADER, "c1,d1,n,proposal,abc")
    with pytest.raises(LoadError):
        load(db, [path], strict=True)
    assert not db.exists() and not Path(f"{db}.wal").exists()


def test_failed_load_keeps_an_existing_database(tmp_path):
    db = tmp_path / "kept.duckdb"
    load(db, [write_csv(tmp_path / "deals.csv", DEALS_HEADER, "c1,d1,n,proposal,1")])
    before = snapshot(db)
    with pytest.raises(LoadError):
        load(db, [broken_world(tmp_path)])
    assert snapshot(db) == before


def test_failed_load_keeps_an_existing_empty_database(tmp_path):
    import duckdb

    db = tmp_path / "someone_elses.duckdb"
    duckdb.connect(str(db)).close()
    with pytest.raises(LoadError):
        load(db, [broken_world(tmp_path)])
    assert db.exists()


# Salesforce: an object the org does not use is a header-only file --------------------------


def salesforce_copy(tmp_path: Path, name: str = "c1") -> Path:
    folder = tmp_path / name
    shutil.copytree(SALESFORCE_SAMPLE, folder)
    return folder


def header_only(path: Path) -> None:
    path.write_text(path.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")


def stored(db: Path) -> dict[str, list[tuple]]:
    return {t: rows for t, rows in snapshot(db).items() if t not in ("load_runs", "load_rejects")}


def test_salesforce_header_only_objects_read_as_no_records(tmp_path):
    empty = salesforce_copy(tmp_path / "empty")
    absent = salesforce_copy(tmp_path / "absent")
    for name in ("Event", "Task", "OpportunityFieldHistory"):
        header_only(empty / f"{name}.csv")
        (absent / f"{name}.csv").unlink()
    report = import_export(tmp_path / "empty.duckdb", empty, fmt="salesforce")
    import_export(tmp_path / "absent.duckdb", absent, fmt="salesforce")
    assert stored(tmp_path / "empty.duckdb") == stored(tmp_path / "absent.duckdb")
    assert [line for line in report.summary().splitlines() if "file is empty" in line] == [
        f"  {empty / name}.csv: 0 read: the file is empty (a header but no rows)"
        for name in ("OpportunityFieldHistory", "Task", "Event")
    ]


def test_salesforce_header_only_opportunities_are_refused(tmp_path):
    folder = salesforce_copy(tmp_path)
    header_only(folder / "Opportunity.csv")
    with pytest.raises(LoadError) as caught:
        import_export(tmp_path / "x.duckdb", folder, fmt="salesforce")
    assert str(caught.value) == (
        f"{folder / 'Opportunity.csv'}: file is empty (a header but no rows); "
        "a Salesforce export needs at least its opportunities"
    )
    assert not (tmp_path / "x.duckdb").exists()


def test_salesforce_object_file_of_no_bytes_is_refused(tmp_path):
    folder = salesforce_copy(tmp_path)
    (folder / "Event.csv").write_bytes(b"")
    with pytest.raises(LoadError) as caught:
        import_export(tmp_path / "x.duckdb", folder, fmt="salesforce")
    assert str(caught.value) == f"{folder / 'Event.csv'}: file is empty (0 bytes): a CSV file starts with its header row"


# Another CRM's export loaded as if it were native: say how to import it -------------------------


def test_salesforce_folder_loaded_natively_says_to_use_the_salesforce_format(db):
    assert refused_load(db, SALESFORCE_SAMPLE) == (
        f"no loadable files found in {SALESFORCE_SAMPLE}; {SALESFORCE_SAMPLE} looks like a Salesforce export "
        "(it has Opportunity.csv): load it with --format salesforce"
    )


def test_salesforce_object_file_loaded_natively_says_to_import_its_folder(db):
    path = SALESFORCE_SAMPLE / "Opportunity.csv"
    assert refused_load(db, path) == (
        f"{path}: unknown table 'Opportunity': name the file after one of companies, territories, reps, accounts, "
        "contacts, leads, deals, activities, products, events, or pass --table; Opportunity.csv is a Salesforce "
        "object's file: import the export's folder with --format salesforce"
    )


def test_salesforce_file_loaded_natively_as_deals_says_so(db):
    path = SALESFORCE_SAMPLE / "Opportunity.csv"
    assert refused_load(db, path, table="deals") == (
        f"{path} line 1: missing required columns company_id, deal_id for table deals; this looks like a Salesforce "
        "export: import its folder with --format salesforce (see docs/IMPORT.md)"
    )


def test_hubspot_deals_loaded_natively_says_to_import_with_a_mapping(db):
    assert refused_load(db, HUBSPOT_DEALS) == (
        f"{HUBSPOT_DEALS} line 1: missing required columns company_id, deal_id for table deals; this looks like a "
        "HubSpot export: import it with --mapping FILE (see docs/IMPORT.md)"
    )


def test_other_crm_deals_loaded_natively_says_to_import_with_a_mapping(db, tmp_path):
    path = write_csv(tmp_path / "deals.csv", "Opportunity Number,Title,Phase,Value", "1,A,Won,10")
    assert refused_load(db, path) == (
        f"{path} line 1: missing required columns company_id, deal_id for table deals; if this is another CRM's "
        "deals export, import it with --mapping FILE saying which column is which (see docs/IMPORT.md)"
    )


def test_native_file_missing_a_key_column_gets_no_hint(db, tmp_path):
    path = write_csv(tmp_path / "deals.csv", "company_id,name,stage", "c1,A,proposal")
    assert refused_load(db, path) == f"{path} line 1: missing required column deal_id for table deals"


def test_long_value_does_not_shift_the_lines_of_rejects_after_a_blank_line(db, tmp_path):
    long_name = "z" * 500_000  # under DuckDB's limit, over Python csv's default field limit
    path = write_csv(
        tmp_path / "deals.csv", DEALS_HEADER, "c1,d1,n,proposal,1", "", f"c1,d2,{long_name},proposal,2", "c1,d3,n,proposal,abc"
    )
    report = load(db, [path])
    assert (report.rows_read, report.rows_rejected) == (3, 1)
    assert query(db, "SELECT line, column_name, value FROM load_rejects") == [(5, "amount", "abc")]
