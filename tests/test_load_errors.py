"""Every way a file can be refused, with the exact message a user sees. A refused load writes
nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crm_lab.errors import LoadError
from crm_lab.load import load
from tests.conftest import snapshot, write_csv

DEALS_HEADER = "company_id,deal_id,stage,amount,expected_close_date,created_at"


def refused(db: Path, *paths, **kwargs) -> str:
    before = snapshot(db)
    with pytest.raises(LoadError) as caught:
        load(db, list(paths), **kwargs)
    assert snapshot(db) == before, "a refused load must leave the database exactly as it was"
    return str(caught.value)


def test_missing_required_column_names_file_line_and_column(db, tmp_path):
    path = write_csv(tmp_path / "deals.csv", "company_id,stage", "c1,proposal")
    assert refused(db, path) == f"{path} line 1: missing required column deal_id for table deals"


def test_missing_required_columns_in_parquet_name_the_schema(db, tmp_path):
    path = tmp_path / "deals.parquet"
    pq.write_table(pa.table({"stage": ["proposal"]}), path)
    assert refused(db, path) == f"{path} schema: missing required columns company_id, deal_id for table deals"


def test_file_named_after_no_table_is_refused_with_the_choices(db, tmp_path):
    path = write_csv(tmp_path / "opportunities.csv", "a", "1")
    assert refused(db, path) == (
        f"{path}: unknown table 'opportunities': name the file after one of companies, territories, reps, "
        "accounts, contacts, leads, deals, activities, products, events, or pass --table"
    )


def test_unknown_table_option_is_refused(db, tmp_path):
    path = write_csv(tmp_path / "x.csv", "a", "1")
    assert refused(db, path, table="opportunity") == (
        "unknown table 'opportunity' given with --table: expected one of companies, territories, reps, "
        "accounts, contacts, leads, deals, activities, products, events"
    )


def test_table_option_loads_any_file_name(db, tmp_path):
    path = write_csv(tmp_path / "export-2024.csv", "company_id,deal_id", "c1,d1")
    assert load(db, [path], table="deals").files[0].rows_loaded == 1


def test_missing_file(db, tmp_path):
    assert refused(db, tmp_path / "deals.csv") == f"{tmp_path / 'deals.csv'}: no such file"


def test_unknown_extension(db, tmp_path):
    path = tmp_path / "deals.xlsx"
    path.write_bytes(b"PK")
    assert refused(db, path) == (
        f"{path}: unknown file format '.xlsx': expected .csv, .parquet, .jsonl or .ndjson"
    )


def test_empty_file(db, tmp_path):
    path = tmp_path / "deals.csv"
    path.write_bytes(b"")
    assert refused(db, path) == f"{path}: file is empty"


def test_header_without_rows_is_empty(db, tmp_path):
    path = write_csv(tmp_path / "deals.csv", DEALS_HEADER)
    assert refused(db, path) == f"{path}: file is empty (a header but no rows)"


def test_unreadable_parquet_names_the_file(db, tmp_path):
    path = tmp_path / "deals.parquet"
    path.write_bytes(b"this is not parquet at all")
    message = refused(db, path)
    assert message.startswith(f"{path}: cannot be read as Parquet: ")


def test_non_utf8_bytes_name_line_and_column(db, tmp_path):
    path = tmp_path / "deals.csv"
    path.write_bytes(
        (DEALS_HEADER + "\nc1,d1,proposal,10,2024-03-01,2024-01-01\n").encode()
        + b"c1,d2,propos\xe9al,10,2024-03-01,2024-01-01\n"
    )
    assert refused(db, path) == (
        f"{path} line 3, column stage: byte 0xe9 is not valid UTF-8; save the file as UTF-8 "
        "(in Excel: CSV UTF-8) and load it again"
    )


def test_repeated_column_is_refused(db, tmp_path):
    path = write_csv(tmp_path / "deals.csv", "company_id,deal_id,Stage,stage", "c1,d1,a,b")
    assert "column 'stage' appears more than once" in refused(db, path)


def test_nothing_to_load(db, tmp_path):
    (tmp_path / "empty").mkdir()
    assert refused(db, tmp_path / "empty") == f"no loadable files found in {tmp_path / 'empty'}"


def test_bad_values_are_rejected_row_by_row_with_file_line_column_value(db, tmp_path):
    path = write_csv(
        tmp_path / "deals.csv",
        DEALS_HEADER,
        "c1,d1,proposal,100.50,2024-03-01,2024-01-01T10:00:00Z",
        "c1,d2,proposal,abc,2024-03-01,2024-01-01",
        "c1,d3,proposal,10,2024-13-01,2024-01-01",
        "c1,d4,proposal,10,2024-03-01,yesterday",
        ",d5,proposal,10,2024-03-01,2024-01-01",
        "c1,d1,won,999,2024-03-01,2024-01-01",
    )
    report = load(db, [path])
    assert (report.rows_read, report.rows_rejected, report.files[0].rows_loaded) == (6, 5, 1)
    from tests.conftest import query

    rejects = query(db, "SELECT file, table_name, line, column_name, value, reason FROM load_rejects ORDER BY line")
    assert rejects == [
        (str(path), "deals", 3, "amount", "abc", "not an amount with at most 2 decimals"),
        (str(path), "deals", 4, "expected_close_date", "2024-13-01", "not a date (YYYY-MM-DD)"),
        (str(path), "deals", 5, "created_at", "yesterday", "not a timestamp (ISO 8601, e.g. 2024-03-31T17:00:00Z)"),
        (str(path), "deals", 6, "company_id", None, "required value is missing"),
        (str(path), "deals", 7, "company_id, deal_id", "c1, d1", "duplicate key: the same company_id, deal_id is at line 2"),
    ]
    assert query(db, "SELECT deal_id, stage, amount::VARCHAR FROM deals") == [("d1", "proposal", "100.50")]


def test_strict_refuses_the_whole_load_and_lists_the_rejects(db, tmp_path):
    good = write_csv(tmp_path / "accounts.csv", "company_id,account_id", "c1,a1")
    bad = write_csv(tmp_path / "deals.csv", DEALS_HEADER, "c1,d1,proposal,abc,2024-03-01,2024-01-01")
    message = refused(db, good, bad, strict=True)
    assert message == (
        "--strict: 1 row(s) rejected and 0 event(s) quarantined; nothing was loaded\n"
        f"  {bad} line 2, column amount = 'abc': not an amount with at most 2 decimals"
    )


def test_event_envelope_errors_are_rejects(db, tmp_path):
    path = write_csv(
        tmp_path / "events.csv",
        "event_id,company_id,aggregate_type,aggregate_id,seq,event_type,occurred_at,payload",
        'e1,c1,deal,d1,1,created,2024-01-01T00:00:00Z,"{""stage"": ""prospecting""}"',
        "e2,c1,deal,d1,two,updated,2024-01-02,{}",
        "e3,c1,deal,d1,3,updated,31/01/2024,{}",
        ",c1,deal,d1,4,updated,2024-01-03,{}",
    )
    report = load(db, [path])
    assert (report.files[0].rows_loaded, report.rows_rejected) == (1, 3)
    from tests.conftest import query

    assert query(db, "SELECT line, column_name, value, reason FROM load_rejects ORDER BY line") == [
        (3, "seq", "two", "not a whole number"),
        (4, "occurred_at", "31/01/2024", "not a timestamp (ISO 8601, e.g. 2024-03-31T17:00:00Z)"),
        (5, "event_id", None, "required value is missing"),
    ]


def test_missing_event_column_is_refused(db, tmp_path):
    path = write_csv(tmp_path / "events.csv", "event_id,company_id,aggregate_id,event_type,occurred_at", "e1,c1,d1,created,2024-01-01")
    assert refused(db, path) == f"{path} line 1: missing required column aggregate_type for table events"


def test_a_message_names_the_file_for_every_refusal(db, tmp_path):
    path = write_csv(tmp_path / "deals.csv", "company_id", "c1")
    assert re.match(re.escape(str(path)), refused(db, path))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_line_numbers_hold_deep_in_a_file_read_in_parallel(db, tmp_path, fmt):
    # Large enough for several row groups, read by more than one thread: the reject must still
    # name the line (CSV, header = line 1) or the 1-based row (Parquet) where the bad value is.
    n, bad = 300_000, 250_000
    rows = {"company_id": ["c1"] * n, "deal_id": [f"d{i}" for i in range(n)], "amount": ["1.00"] * n}
    rows["amount"][bad] = "abc"
    if fmt == "csv":
        path = write_csv(tmp_path / "deals.csv", "company_id,deal_id,amount",
                         *(f"c1,d{i},{a}" for i, a in enumerate(rows["amount"])))
        line = bad + 2
    else:
        path = tmp_path / "deals.parquet"
        pq.write_table(pa.table(rows), path, row_group_size=50_000)
        line = bad + 1
    report = load(db, [path])
    assert (report.rows_read, report.rows_rejected) == (n, 1)
    from tests.conftest import query

    assert query(db, "SELECT line, value FROM load_rejects") == [(line, "abc")]
    assert query(db, "SELECT count(*) FROM deals") == [(n - 1,)]


def _reject_lines(db) -> list[tuple[int, str]]:
    from tests.conftest import query

    return query(db, "SELECT line, value FROM load_rejects ORDER BY line")


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_a_reject_names_the_line_it_is_on_after_values_that_span_lines_and_blank_lines(db, tmp_path, ending):
    # Line numbers, as an editor shows them:
    # 1 header / 2-4 d1 (a three-line name) / 5 d2 (bad) / 6 blank / 7 d3 (bad) / 8-9 d4 / 10 d5 (bad)
    lines = [
        "company_id,deal_id,name,amount",
        'c1,d1,"first', "second", 'third",1.00',
        "c1,d2,two,bad2",
        "",
        "c1,d3,three,bad3",
        'c1,d4,"a ""quoted""', 'name",4.00',
        "c1,d5,five,bad5",
    ]
    path = tmp_path / "deals.csv"
    path.write_bytes(ending.join(lines).encode())  # and no line break after the last record
    load(db, [path])
    assert _reject_lines(db) == [(5, "bad2"), (7, "bad3"), (10, "bad5")]
    from tests.conftest import query

    assert query(db, "SELECT deal_id, name FROM deals ORDER BY deal_id") == [
        ("d1", "first\nsecond\nthird".replace("\n", ending)), ("d4", 'a "quoted"\nname'.replace("\n", ending))]


def test_a_reject_names_its_line_in_json_lines_with_blank_lines(db, tmp_path):
    path = tmp_path / "deals.jsonl"
    path.write_text('{"company_id": "c1", "deal_id": "d1", "amount": "1.00"}\n\n\n'
                    '{"company_id": "c1", "deal_id": "d2", "amount": "bad"}\n', encoding="utf-8")
    load(db, [path])
    assert _reject_lines(db) == [(4, "bad")]


def test_an_import_names_the_line_a_record_starts_on(db, tmp_path):
    # A Salesforce export with a multi-line Description before a record missing its StageName.
    import duckdb

    from crm_lab.importers.exports import read_export, require_values

    path = tmp_path / "Opportunity.csv"
    path.write_text('Id,StageName,Description\n006A,Prospecting,"two\nlines"\n006B,,x\n', encoding="utf-8")
    con = duckdb.connect()
    export = read_export(con, path, "_sf_opportunity", ("Id", "StageName"))
    with pytest.raises(LoadError) as caught:
        require_values(con, export, ("StageName",))
    assert str(caught.value) == f"{path} line 4, field StageName: required value is missing"


def test_start_lines_fall_back_to_record_numbers_when_the_dialects_disagree(tmp_path):
    # DuckDB sniffs ';' and reads one record with a two-line value; Python's csv (',') sees two
    # records, so it cannot say where DuckDB's records start: the record numbers stand.
    from crm_lab.file_lines import record_start_lines

    path = tmp_path / "deals.csv"
    path.write_text('a;b\n1;"x\ny"\n', encoding="utf-8")
    assert record_start_lines(path, 1, header=True, fmt="csv") is None
    path.write_text('a,b\n1,"x\ny"\n2,z\n', encoding="utf-8")
    assert record_start_lines(path, 2, header=True, fmt="csv").tolist() == [2, 4]
