"""`crm-lab sql` output: nested values in CSV, the format an --out file asks for, the whole result
in the file, and one-line messages for files that cannot be written."""

from __future__ import annotations

import json

import polars as pl
import pytest

from crm_lab.cli import main
from crm_lab.errors import InvalidArgument
from crm_lab.query import OutputError, run_query
from tests.conftest import event, query, replayed_log

NEW = {"stage": "prospecting", "amount": "100.00", "expected_close_date": "2024-03-31", "owner_rep_id": "r1"}
LOG = [event(f"e{i:03d}", f"D{i:03d}", "created", "2024-01-01T10:00:00Z", NEW, seq=1) for i in range(60)] + [
    event("x1", "D000", "stage_changed", "2024-01-02T10:00:00Z", {"stage": "qualification", "amount": "120.00"}, seq=2),
]
KEYS_SQL = "SELECT event_id, payload_keys FROM events WHERE event_id IN ('e000', 'x1') ORDER BY event_id"


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return replayed_log(tmp_path_factory.mktemp("sql_output"), *LOG)


def _keys(db) -> dict[str, list[str]]:
    return dict(query(db, KEYS_SQL))


def test_csv_writes_lists_as_json_text(db):
    keys = _keys(db)
    expected = "event_id,payload_keys\n" + "".join(
        f'{event_id},"{json.dumps(value, separators=(",", ":")).replace(chr(34), chr(34) * 2)}"\n'
        for event_id, value in sorted(keys.items())
    )
    assert run_query(KEYS_SQL, db, fmt="csv") == expected
    assert set(keys["x1"]) == {"stage", "amount"}


def test_csv_writes_structs_maps_and_arrays_as_json_text(db):
    sql = ("SELECT 1 AS n, {'a': 1, 'b': [1, 2], 'd': DATE '2024-01-02'} AS s, MAP {'k': 'v'} AS m, "
           "[1.5, 2]::DOUBLE[2] AS arr, ['x,\"y', NULL] AS l, NULL::INTEGER[] AS none")
    assert run_query(sql, db, fmt="csv") == (
        'n,s,m,arr,l,none\n'
        '1,"{""a"":1,""b"":[1,2],""d"":""2024-01-02""}","{""k"":""v""}","[1.5,2.0]","[""x,\\""y"",null]",\n'
    )


def test_every_loaded_table_with_lists_writes_as_csv(db):
    for sql in ("SELECT * FROM events", "SELECT * FROM load_runs"):
        text = run_query(sql, db, fmt="csv")
        assert len(text.splitlines()) == 1 + query(db, f"SELECT count(*) FROM ({sql})")[0][0]


def test_json_jsonl_and_parquet_keep_lists_nested(db, tmp_path):
    keys = _keys(db)
    assert json.loads(run_query(KEYS_SQL, db, fmt="json")) == [
        {"event_id": k, "payload_keys": v} for k, v in sorted(keys.items())]
    assert [json.loads(line) for line in run_query(KEYS_SQL, db, fmt="jsonl").splitlines()] == [
        {"event_id": k, "payload_keys": v} for k, v in sorted(keys.items())]
    out = tmp_path / "keys.parquet"
    assert run_query(KEYS_SQL, db, out=out) == f"wrote 2 row(s) to {out}"
    frame = pl.read_parquet(out)
    assert frame.schema["payload_keys"] == pl.List(pl.String)
    assert dict(zip(frame["event_id"], frame["payload_keys"].to_list())) == keys


def test_the_table_format_shows_lists_readably(db):
    assert "[a, b]" in run_query("SELECT ['a', 'b'] AS l", db)


@pytest.mark.parametrize("suffix, parse", [
    (".csv", lambda text: pl.read_csv(text.encode())),
    (".json", lambda text: pl.DataFrame(json.loads(text))),
    (".jsonl", lambda text: pl.DataFrame([json.loads(line) for line in text.splitlines()])),
])
def test_out_takes_its_format_from_the_extension_and_holds_every_row_and_column(db, tmp_path, suffix, parse, capsys):
    out = tmp_path / f"history{suffix}"
    sql = "SELECT * FROM deal_history ORDER BY deal_id, version"
    assert main(["sql", "--db", str(db), "--out", str(out), sql]) == 0
    expected_rows, = query(db, "SELECT count(*) FROM deal_history")[0]
    assert capsys.readouterr().out == f"wrote {expected_rows} row(s) to {out}\n"
    assert expected_rows == 61
    frame = parse(out.read_text(encoding="utf-8"))
    columns = [c for (c,) in query(db, "SELECT column_name FROM duckdb_columns() WHERE table_name = 'deal_history' "
                                       "ORDER BY column_index")]
    assert frame.height == expected_rows and frame.columns == columns


def test_out_parquet_from_the_extension(db, tmp_path):
    out = tmp_path / "h.PARQUET"
    assert run_query("SELECT * FROM deal_history", db, out=out) == f"wrote 61 row(s) to {out}"
    assert pl.read_parquet(out).height == 61


@pytest.mark.parametrize("fmt, out, message", [
    ("table", "x.csv", "--out {out}: the table format is for the screen and shows only part of a large result; "
                       "write the file with --format csv (or json, jsonl, parquet)"),
    (None, "x.txt", "--out {out}: name a .csv, .json, .jsonl or .parquet file, or give --format csv, json, jsonl or parquet"),
    ("json", "x.csv", "--format json does not match --out {out}: drop --format, or name a .json file"),
])
def test_out_refuses_a_format_that_would_not_write_the_result(db, tmp_path, fmt, out, message):
    path = tmp_path / out
    with pytest.raises(InvalidArgument) as caught:
        run_query("SELECT 1", db, fmt=fmt, out=path)
    assert str(caught.value) == message.format(out=path)
    assert not path.exists()


def test_an_explicit_format_writes_a_file_of_any_other_name(db, tmp_path):
    out = tmp_path / "x.txt"
    assert run_query("SELECT 1 AS a", db, fmt="csv", out=out) == f"wrote 1 row(s) to {out}"
    assert out.read_text() == "a\n1\n"


def test_an_out_file_that_cannot_be_written_is_one_line(db, tmp_path, capsys):
    missing = tmp_path / "nonexist" / "dir" / "x.csv"
    assert main(["sql", "--db", str(db), "--out", str(missing), "SELECT 1"]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"crm-lab sql: cannot write {missing}: folder {missing.parent} does not exist\n"
    assert captured.out == ""
    with pytest.raises(OutputError) as caught:
        run_query("SELECT 1", db, out=tmp_path)
    assert str(caught.value) == f"cannot write {tmp_path}: it is a folder"


def test_an_out_file_the_system_refuses_is_one_line(db, tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if (folder / "probe").exists() or _can_write(folder):
            pytest.skip("running as a user who may write anywhere")
        with pytest.raises(OutputError) as caught:
            run_query("SELECT 1", db, out=folder / "x.csv")
        assert str(caught.value) == f"cannot write {folder / 'x.csv'}: Permission denied"
    finally:
        folder.chmod(0o700)


def _can_write(folder) -> bool:
    try:
        (folder / "probe").write_text("")
    except OSError:
        return False
    (folder / "probe").unlink()
    return True
