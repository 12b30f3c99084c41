"""Every way a file can be refused, with the exact message a user sees. A refused load writes
nothing."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crm_lab.errors import CrmLabError, LoadError
from crm_lab.load import load
from tests.conftest import refused_load, write_csv

DEALS_HEADER = "company_id,deal_id,stage,amount,expected_close_date,created_at"


def test_missing_required_column_names_file_line_and_column(db, tmp_path):
    path = write_csv(tmp_path / "deals.csv", "company_id,stage", "c1,proposal")
    assert refused_load(db, path) == f"{path} line 1: missing required column deal_id for table deals"


def test_missing_required_columns_in_parquet_name_the_schema(db, tmp_path):
    path = tmp_path / "deals.parquet"
    pq.write_table(pa.table({"stage": ["proposal"]}), path)
    assert refused_load(db, path) == f"{path} schema: missing required columns company_id, deal_id for table deals"


def test_file_named_after_no_table_is_refused_with_the_choices(db, tmp_path):
    path = write_csv(tmp_path / "opportunities.csv", "a", "1")
    assert refused_load(db, path) == (
        f"{path}: unknown table 'opportunities': name the file after one of companies, territories, reps, "
        "accounts, contacts, leads, deals, activities, products, events, or pass --table"
    )


def test_unknown_table_option_is_refused(db, tmp_path):
    path = write_csv(tmp_path / "x.csv", "a", "1")
    assert refused_load(db, path, table="opportunity") == (
        "unknown table 'opportunity' given with --table: expected one of companies, territories, reps, "
        "accounts, contacts, leads, deals, activities, products, events"
    )


def test_table_option_loads_any_file_name(db, tmp_path):
    path = write_csv(tmp_path / "export-2024.csv", "company_id,deal_id", "c1,d1")
    assert load(db, [path], table="deals").files[0].rows_loaded == 1


def test_missing_file(db, tmp_path):
    assert refused_load(db, tmp_path / "deals.csv") == f"{tmp_path / 'deals.csv'}: no such file"


def test_unknown_extension(db, tmp_path):
    path = tmp_path / "deals.xlsx"
    path.write_bytes(b"PK")
    assert refused_load(db, path) == (
        f"{path}: unknown file format '.xlsx': expected .csv, .parquet, .jsonl or .ndjson"
    )


def test_empty_file(db, tmp_path):
    path = tmp_path / "deals.csv"
    path.write_bytes(b"")
    assert refused_load(db, path) == f"{path}: file is empty (0 bytes): a CSV file starts with its header row"


def test_header_without_rows_loads_nothing_and_says_so(db, tmp_path):
    path = write_csv(tmp_path / "deals.csv", DEALS_HEADER)
    report = load(db, [path])
    assert (report.rows_read, report.files[0].rows_loaded, report.status) == (0, 0, "ok")
    assert report.summary().splitlines()[1] == f"  {path} -> deals: 0 read: the file is empty (a header but no rows)"


def test_unreadable_parquet_names_the_file(db, tmp_path):
    path = tmp_path / "deals.parquet"
    path.write_bytes(b"this is not parquet at all")
    message = refused_load(db, path)
    assert message.startswith(f"{path}: cannot be read as Parquet: ")


def test_non_utf8_bytes_name_line_and_column(db, tmp_path):
    path = tmp_path / "deals.csv"
    path.write_bytes(
        (DEALS_HEADER + "\nc1,d1,proposal,10,2024-03-01,2024-01-01\n").encode()
        + b"c1,d2,propos\xe9al,10,2024-03-01,2024-01-01\n"
    )
    assert refused_load(db, path) == (
        f"{path} line 3, column stage: byte 0xe9 is not valid UTF-8; save the file as UTF-8 "
        "(in Excel: CSV UTF-8) and load it again"
    )


def test_repeated_column_is_refused(db, tmp_path):
    path = write_csv(tmp_path / "deals.csv", "company_id,deal_id,Stage,stage", "c1,d1,a,b")
    assert "column 'stage' appears more than once" in refused_load(db, path)


def test_nothing_to_load(db, tmp_path):
    (tmp_path / "empty").mkdir()
    assert refused_load(db, tmp_path / "empty") == f"no loadable files found in {tmp_path / 'empty'}"


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
    message = refused_load(db, good, bad, strict=True)
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
    assert refused_load(db, path) == f"{path} line 1: missing required column aggregate_type for table events"


def test_a_message_names_the_file_for_every_refusal(db, tmp_path):
    path = write_csv(tmp_path / "deals.csv", "company_id", "c1")
    assert re.match(re.escape(str(path)), refused_load(db, path))


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


# A CSV record with more or fewer fields than the header is a reject, like a bad value: which of
# its values belongs to which column cannot be told, so none is loaded, and the rest of the file is.
RAGGED_HEADER = "company_id,deal_id,amount,stage"


def _rejects(db) -> list[tuple]:
    from tests.conftest import query

    return query(db, "SELECT file, line, column_name, value, reason FROM load_rejects ORDER BY line")


@pytest.mark.parametrize(
    ("row", "found"),
    [("c1,d2", 2), ("c1,d2,1.00,proposal,extra", 5)],
)
def test_a_record_with_too_few_or_too_many_fields_is_a_reject_naming_its_line(db, tmp_path, row, found):
    # The user's file: two records, the last ragged. DuckDB's sniffer gave up on it and read each
    # line as one column ("missing required columns"), or took a record for the header ("empty").
    path = write_csv(tmp_path / "deals.csv", RAGGED_HEADER, "c1,d1,100.00,prospecting", row)
    report = load(db, [path])
    assert (report.rows_read, report.rows_rejected, report.files[0].rows_loaded) == (2, 1, 1)
    assert _rejects(db) == [(str(path), 3, None, row, f"expected 4 fields (the header's), found {found}")]
    from tests.conftest import query

    assert query(db, "SELECT deal_id, amount::VARCHAR, stage FROM deals") == [("d1", "100.00", "prospecting")]


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_ragged_records_count_quoted_commas_and_line_breaks_and_keep_later_lines_right(db, tmp_path, ending):
    # 1 header / 2-3 d1 (a quoted name with a comma and a line break: 4 fields) / 4 d2 (3 fields)
    # / 5 blank / 6-7 d3 (5 fields, one quoted over two lines) / 8 d4 (bad amount) / 9 d5 / 10 d6 (3)
    lines = [
        "company_id,deal_id,name,amount",
        'c1,d1,"Acme, Inc.', 'renewal",1.00',
        "c1,d2,two",
        "",
        'c1,d3,"three,', 'lines",3.00,extra',
        "c1,d4,four,bad4",
        "c1,d5,five,5.00",
        'c1,d6,"six, quoted"',
    ]
    path = tmp_path / "deals.csv"
    path.write_bytes(ending.join(lines).encode())
    report = load(db, [path])
    assert (report.rows_read, report.rows_rejected) == (6, 4)
    three = 'c1,d3,"three,' + ending + 'lines",3.00,extra'
    assert _rejects(db) == [
        (str(path), 4, None, "c1,d2,two", "expected 4 fields (the header's), found 3"),
        (str(path), 6, None, three, "expected 4 fields (the header's), found 5"),
        (str(path), 8, "amount", "bad4", "not an amount with at most 2 decimals"),
        (str(path), 10, None, 'c1,d6,"six, quoted"', "expected 4 fields (the header's), found 3"),
    ]
    from tests.conftest import query

    assert query(db, "SELECT deal_id, name FROM deals ORDER BY deal_id") == [
        ("d1", "Acme, Inc." + ending + "renewal"), ("d5", "five")]


def test_a_ragged_record_past_the_sniffers_sample_is_a_reject_too(db, tmp_path):
    # DuckDB sniffs the first 20,480 rows; past them its strict read fails on the record, and a
    # failed statement would abort the load's transaction.
    n, bad = 30_000, 25_000
    rows = [f"c1,d{i},1.00,x" if i != bad else f"c1,d{i}" for i in range(n)]
    rows[bad + 1] = f"c1,d{bad + 1},oops,x"
    path = write_csv(tmp_path / "deals.csv", RAGGED_HEADER, *rows)
    report = load(db, [path])
    assert (report.rows_read, report.rows_rejected, report.files[0].rows_loaded) == (n, 2, n - 2)
    assert _rejects(db) == [
        (str(path), bad + 2, None, f"c1,d{bad}", "expected 4 fields (the header's), found 2"),
        (str(path), bad + 3, "amount", "oops", "not an amount with at most 2 decimals"),
    ]


def test_a_file_of_ragged_records_only_is_not_empty(db, tmp_path):
    path = write_csv(tmp_path / "deals.csv", RAGGED_HEADER, "c1,d1", "c1,d2,1,x,y")
    report = load(db, [path])
    assert (report.rows_read, report.rows_rejected, report.files[0].rows_loaded) == (2, 2, 0)
    assert [line for _, line, *_ in _rejects(db)] == [2, 3]


def test_strict_names_a_ragged_record_by_its_line(db, tmp_path):
    path = write_csv(tmp_path / "deals.csv", RAGGED_HEADER, "c1,d1,100.00,prospecting", "c1,d2")
    assert refused_load(db, path, strict=True) == (
        "--strict: 1 row(s) rejected and 0 event(s) quarantined; nothing was loaded\n"
        f"  {path} line 3: expected 4 fields (the header's), found 2: 'c1,d2'"
    )


def test_an_import_refuses_a_ragged_record_naming_its_line(tmp_path):
    # An importer stages an export without a place for rejects: the record fails the read.
    import duckdb

    from crm_lab.importers.exports import read_export

    path = tmp_path / "Opportunity.csv"
    path.write_text('Id,StageName,Description\n006A,Prospecting,"two\nlines"\n006B,Closed Won\n', encoding="utf-8")
    with pytest.raises(LoadError) as caught:
        read_export(duckdb.connect(), path, "_sf_opportunity", ("Id",))
    assert str(caught.value) == f"{path} line 4: expected 3 fields (the header's), found 2"


def test_invalid_utf8_after_a_ragged_record_still_names_its_byte(db, tmp_path):
    path = tmp_path / "deals.csv"
    path.write_bytes(f"{RAGGED_HEADER}\nc1,d1\nc1,d2,1.00,propos\xe9al\n".encode("latin-1"))
    assert refused_load(db, path) == (
        f"{path} line 3, column stage: byte 0xe9 is not valid UTF-8; save the file as UTF-8 "
        "(in Excel: CSV UTF-8) and load it again"
    )


# Money is exact to the cent: an amount with more decimals is a reject, never rounded.
MONEY_COLUMNS = {("accounts", "potential"), ("deals", "amount"), ("products", "list_price"), ("reps", "quota")}
AMOUNTS = [  # (value, loaded as, or None for a reject)
    ("100.125", None), ("0.001", None), ("1.005e0", None), ("100.1251", None),
    ("100.1", "100.10"), ("100", "100.00"), ("-5.00", "-5.00"), ("100.100", "100.10"), ("1e3", "1000.00"),
    ("1.5e-1", "0.15"), ("12345678901234.56", "12345678901234.56"),
]


def _money_columns() -> set[tuple[str, str]]:
    from crm_lab.contract import LOADABLE_TABLES
    from crm_lab.schema import table_spec

    return {(t, c.name) for t in LOADABLE_TABLES for c in table_spec(t).columns
            if c.sql_type.startswith("DECIMAL") and t != "events"}


def test_the_money_columns_are_the_contracts_decimals():
    assert _money_columns() == MONEY_COLUMNS


def _expect_amounts(db, path, table, column, values, line_of):
    from crm_lab.schema import table_spec
    from tests.conftest import query

    key = table_spec(table).key[-1]
    bad = [(str(path), line_of(i), column, shown, "not an amount with at most 2 decimals")
           for i, (shown, loaded) in enumerate(values) if loaded is None]
    assert _rejects(db) == bad
    good = sorted((f"k{i}", loaded) for i, (_, loaded) in enumerate(values) if loaded is not None)
    assert query(db, f'SELECT {key}, "{column}"::VARCHAR FROM {table} ORDER BY 1') == good


@pytest.mark.parametrize(("table", "column"), sorted(MONEY_COLUMNS))
def test_csv_amounts_with_more_than_two_decimals_are_rejects_in_every_money_column(db, tmp_path, table, column):
    from crm_lab.schema import table_spec

    key = table_spec(table).key[-1]
    path = write_csv(tmp_path / f"{table}.csv", f"company_id,{key},{column}",
                     *(f"c1,k{i},{value}" for i, (value, _) in enumerate(AMOUNTS)))
    report = load(db, [path])
    assert report.rows_rejected == sum(loaded is None for _, loaded in AMOUNTS)
    _expect_amounts(db, path, table, column, AMOUNTS, lambda i: i + 2)


@pytest.mark.parametrize(
    ("arrow_type", "values"),
    [
        (pa.float64(), [(100.125, None), (0.1 + 0.2, None), (100.1, "100.10"), (-5.0, "-5.00"), (1e3, "1000.00")]),
        (pa.float32(), [(100.125, None), (100.1, "100.10"), (5.5, "5.50")]),
        (pa.decimal128(18, 3), [("1.125", None), ("1.120", "1.12"), ("-5.000", "-5.00")]),
        (pa.decimal128(18, 2), [("1.12", "1.12"), ("-5.00", "-5.00")]),
        (pa.int64(), [(7, "7.00")]),
    ],
)
def test_parquet_amounts_with_more_than_two_decimals_are_rejects_whatever_their_type(db, tmp_path, arrow_type, values):
    from decimal import Decimal

    raw = [Decimal(v) if isinstance(v, str) else v for v, _ in values]
    path = tmp_path / "deals.parquet"
    pq.write_table(pa.table({"company_id": ["c1"] * len(values), "deal_id": [f"k{i}" for i in range(len(values))],
                             "amount": pa.array(raw, arrow_type)}), path)
    load(db, [path])
    # A reject shows the value as DuckDB prints it: the shortest text that reads back the same.
    _expect_amounts(db, path, "deals", "amount", [(str(v), loaded) for v, loaded in values], lambda i: i + 1)


def test_json_lines_amounts_with_more_than_two_decimals_are_rejects_as_numbers_and_as_text(db, tmp_path):
    from tests.conftest import write_jsonl

    values = [(100.125, "100.125", None), ("100.125", "100.125", None), (100.1, "100.1", "100.10"),
              ("-5.00", "-5.00", "-5.00"), (1e3, "1000.0", "1000.00"), (0.1 + 0.2, "0.30000000000000004", None)]
    path = write_jsonl(tmp_path / "accounts.jsonl",
                       *({"company_id": "c1", "account_id": f"k{i}", "potential": v} for i, (v, _, _) in enumerate(values)))
    load(db, [path])
    _expect_amounts(db, path, "accounts", "potential", [(shown, loaded) for _, shown, loaded in values], lambda i: i + 1)


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_an_event_amount_with_more_than_two_decimals_is_quarantined(db, tmp_path, fmt):
    from tests.conftest import event, query, write_jsonl

    events = [event("e1", "d1", "created", "2024-01-01T00:00:00Z", {"amount": 100.1, "stage": "a"}),
              event("e2", "d1", "amount_changed", "2024-01-02T00:00:00Z", {"amount": 100.125}),
              event("e3", "a1", "updated", "2024-01-02T00:00:00Z", {"potential": "7.005"}, aggregate_type="account"),
              event("e4", "d1", "amount_changed", "2024-01-03T00:00:00Z", {"amount": "1e3"})]
    if fmt == "jsonl":
        path = write_jsonl(tmp_path / "events.jsonl", *events)
    else:
        import csv
        import json

        path = tmp_path / "events.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["event_id", "company_id", "aggregate_type", "aggregate_id", "event_type", "occurred_at", "payload"])
            for e in events:
                writer.writerow([e["event_id"], e["company_id"], e["aggregate_type"], e["aggregate_id"], e["event_type"],
                                 e["occurred_at"], json.dumps(e["payload"])])
    report = load(db, [path])
    assert report.events_quarantined == 2
    assert query(db, "SELECT event_id, reason FROM events_rejected ORDER BY 1") == [
        ("e2", "wrongly typed payload: field amount is not an amount with at most 2 decimals, got 100.125"),
        ("e3", 'wrongly typed payload: field potential is not an amount with at most 2 decimals, got "7.005"'),
    ]
    assert query(db, "SELECT event_id, amount::VARCHAR FROM events ORDER BY 1") == [("e1", "100.10"), ("e4", "1000.00")]


def test_a_database_another_tool_made_with_a_table_of_ours_is_refused_unchanged(tmp_path):
    db = tmp_path / "theirs.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE deals (x INTEGER, y INTEGER)")
    con.execute("INSERT INTO deals VALUES (1, 2)")
    con.close()
    sample = Path(__file__).resolve().parents[1] / "data" / "sample"
    with pytest.raises(CrmLabError) as refused:
        load(db, [sample])
    assert str(refused.value) == (
        f"database {db} has a table deals without crm_lab's column(s) company_id, deal_id, account_id, owner_rep_id, "
        "name, stage, amount, currency, expected_close_date, lost_reason, is_closed, is_won, closed_at, created_at "
        "(it has x, y): it was made by another tool or an older crm_lab; load into a new database with --db")
    con = duckdb.connect(str(db), read_only=True)
    assert con.sql("SELECT table_name FROM duckdb_tables()").fetchall() == [("deals",)]
    assert con.sql("SELECT * FROM deals").fetchall() == [(1, 2)]
    con.close()
