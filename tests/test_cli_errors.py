"""A wrong --db, a database without data, an as-of outside the data and a demo over a user's
database are each refused with one message saying what is wrong and what to do; the library
raises the same messages for Python callers."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from crm_lab.cli import build_parser, main
from crm_lab.db import NotADatabaseError, connect, writing
from crm_lab.demo import DemoOverwriteRefused, build_demo
from crm_lab.errors import DatabaseMissingError, InvalidArgument
from crm_lab.forecast import forecast
from crm_lab.generate import generate
from crm_lab.load import load
from crm_lab.replay import NothingToReplay, replay
from crm_lab.workbench import open_workbench
from tests.conftest import query, write_csv


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> tuple[Path, Path]:
    """A small generated world (its folder) loaded and replayed into a database."""
    base = tmp_path_factory.mktemp("errors")
    folder, db = base / "world", base / "crm.duckdb"
    generate(folder, companies=2, deals=200, seed=3, fmt="parquet")
    load(db, [folder])
    replay(db)
    return folder, db


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err.strip()


def not_duckdb(path) -> str:
    return (f"database {path} is not a DuckDB database file: pass the workbench database (default data/crm.duckdb); "
            f"to read an export into one, run `crm-lab load --db DB {path}`")


def missing(path) -> str:
    return f"database {path} does not exist: build it with `crm-lab demo` or `crm-lab load --db {path} FILES`"


# --- a --db that is not a database -------------------------------------------------------------

def test_a_directory_as_the_database_is_named_with_the_file_to_pass(tmp_path, capsys):
    status, _, err = run(capsys, "sql", "--db", str(tmp_path), "SELECT 1")
    assert status == 2
    assert err == (f"crm-lab sql: database {tmp_path} is a directory, not a DuckDB database file: "
                   f"pass the database file, e.g. --db {tmp_path / 'crm.duckdb'}")


@pytest.mark.parametrize("command", [["sql", "SELECT 1"], ["replay"], ["forecast", "--as-of", "2025-01-01"],
                                     ["load", "{csv}"]])
def test_an_export_file_as_the_database_is_refused_and_left_alone(tmp_path, capsys, command):
    csv = write_csv(tmp_path / "deals.csv", "deal_id,amount", "d1,10")
    before = csv.read_bytes()
    status, out, err = run(capsys, *command[:1], "--db", str(csv), *[a.format(csv=csv) for a in command[1:]])
    assert (status, out) == (2, "")
    assert err == f"crm-lab {command[0]}: {not_duckdb(csv)}"
    assert csv.read_bytes() == before


def test_a_foreign_or_empty_file_as_the_database_is_refused(tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n")
    assert run(capsys, "sql", "--db", str(text), "SELECT 1")[2] == f"crm-lab sql: {not_duckdb(text)}"
    empty = tmp_path / "empty.duckdb"
    empty.touch()
    assert run(capsys, "replay", "--db", str(empty))[2] == (
        f"crm-lab replay: database {empty} is an empty file, not a DuckDB database file: pass the workbench "
        f"database (default data/crm.duckdb); to read an export into one, run `crm-lab load --db DB {empty}`"
    )


def test_python_callers_get_the_same_errors(tmp_path):
    csv = write_csv(tmp_path / "deals.csv", "deal_id,amount", "d1,10")
    # DuckDB 2.0 would open an existing CSV read-write as an in-memory database: refused first.
    with pytest.raises(NotADatabaseError) as refused, writing(csv):
        pass
    assert str(refused.value) == not_duckdb(csv)
    with pytest.raises(NotADatabaseError, match="is a directory"):
        connect(tmp_path)
    with pytest.raises(NotADatabaseError) as refused:
        open_workbench(csv, company="c1")
    assert str(refused.value) == not_duckdb(csv)


# --- commands that need loaded events create nothing ---------------------------------------------

def test_replay_of_a_missing_database_creates_nothing(tmp_path, capsys):
    db = tmp_path / "nonexistent" / "x.duckdb"
    status, out, err = run(capsys, "replay", "--db", str(db))
    assert (status, out, err) == (2, "", f"crm-lab replay: {missing(db)}")
    assert not db.parent.exists()
    with pytest.raises(DatabaseMissingError):
        replay(db)
    assert not db.parent.exists()


def test_replay_of_a_database_without_events_says_to_load_first(tmp_path, capsys):
    db = tmp_path / "empty.duckdb"
    duckdb.connect(str(db)).close()
    status, out, err = run(capsys, "replay", "--db", str(db))
    assert (status, out) == (2, "")
    assert err == f"crm-lab replay: no events loaded in {db}: run `crm-lab load --db {db} FILES` first"
    assert query(db, "SELECT count(*) FROM duckdb_tables()") == [(0,)]  # rolled back, nothing created
    with pytest.raises(NothingToReplay):
        replay(db)


@pytest.mark.parametrize("command", [
    ["forecast", "--as-of", "2025-07-01"],
    ["backtest", "--from", "2025-01-01", "--to", "2025-03-01"],
    ["territory", "--company", "c1"],
    ["sweep-leads", "--as-of", "2025-07-01", "--capacity-hours", "10", "--hours-per-lead", "1", "--cost-per-lead", "5"],
    ["batch", "pipelines/weekly.yaml"],
    ["batch", "--ingest", "reports/none"],
])
def test_commands_that_read_data_refuse_a_missing_database_and_create_nothing(tmp_path, capsys, command):
    db = tmp_path / "nonexistent" / "x.duckdb"
    status, out, err = run(capsys, command[0], "--db", str(db), *command[1:])
    assert (status, out, err) == (2, "", f"crm-lab {command[0]}: {missing(db)}")
    assert not db.parent.exists()


# --- as-of outside the data ------------------------------------------------------------------------

def test_forecast_refuses_an_as_of_after_the_data_ends_naming_its_span(world, capsys):
    _, db = world
    (first, last), = query(db, "SELECT min(occurred_at AT TIME ZONE 'UTC')::DATE, max(occurred_at AT TIME ZONE 'UTC')::DATE FROM events")
    expected = (f"as_of 2030-01-01: after the data ends (the event log spans {first} to {last}); "
                f"forecast as of at most 7 days after {last}, or load and replay newer events")
    status, out, err = run(capsys, "forecast", "--db", str(db), "--as-of", "2030-01-01", "--trials", "100")
    assert (status, out, err) == (2, "", f"crm-lab forecast: {expected}")
    with pytest.raises(InvalidArgument) as refused:
        forecast(db, as_of="2030-01-01", trials=100, store=False)
    assert str(refused.value) == expected
    assert query(db, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'forecast_runs'") == [(0,)]


def test_forecast_a_few_days_after_the_data_ends_still_runs(world):
    _, db = world
    (last,), = query(db, "SELECT max(occurred_at AT TIME ZONE 'UTC')::DATE + 3 FROM events")
    result = forecast(db, as_of=str(last), trials=100, store=False)
    assert result.window.as_of.date() == last


SWEEP = ["--capacity-hours", "100", "--hours-per-lead", "1", "--cost-per-lead", "10", "--company", "c1"]


def test_sweep_leads_after_the_data_ends_is_refused_like_a_forecast(world, capsys):
    _, db = world
    (first, last), = query(db, "SELECT min(occurred_at AT TIME ZONE 'UTC')::DATE, max(occurred_at AT TIME ZONE 'UTC')::DATE "
                               "FROM events WHERE company_id = 'c1'")
    status, out, err = run(capsys, "sweep-leads", "--db", str(db), "--as-of", "2030-07-01", *SWEEP)
    assert (status, out) == (2, "")
    assert err == (
        f"crm-lab sweep-leads: company c1: as_of 2030-07-01: after the data ends (the event log spans {first} to {last}); "
        f"sweep as of at most 7 days after {last}, or load and replay newer events"
    )


def test_sweep_leads_before_the_lead_data_keeps_saying_move_as_of_later(world, capsys):
    _, db = world
    status, out, err = run(capsys, "sweep-leads", "--db", str(db), "--as-of", "2000-07-01", *SWEEP)
    assert (status, out) == (2, "")
    assert err == (
        "crm-lab sweep-leads: company c1: no lead was created between 2000-03-03 00:00 and 2000-06-01 00:00 "
        "(as_of - maturity_days), so there is nothing to sweep: move --as-of (as_of= in Python) later or widen "
        "--test-days (test_days= in Python)"
    )


# --- demo over a user's database -----------------------------------------------------------------

def test_demo_refuses_to_replace_a_database_it_did_not_build(world, tmp_path, capsys):
    _, loaded = world
    db = tmp_path / "crm.duckdb"
    shutil.copy(loaded, db)
    (first_file,), = query(db, "SELECT files[1] FROM load_runs WHERE load_id = 1")
    expected = (f"database {db} is not a demo build (load 1 read {first_file}): the demo would replace it and lose "
                "its data; pass --force to replace it anyway, or --db another path for the demo")
    status, out, err = run(capsys, "demo", "--db", str(db), "--deals", "200", "--no-batch")
    assert (status, out, err) == (2, "", f"crm-lab demo: {expected}")
    assert not (tmp_path / "generated").exists()
    with pytest.raises(DemoOverwriteRefused):
        build_demo(db, deals=200, pipeline=None)
    assert query(db, "SELECT count(*) FROM load_runs") == [(1,)]

    status, out, err = run(capsys, "demo", "--db", str(db), "--deals", "200", "--no-batch", "--force")
    assert status == 0, err
    assert out.strip().endswith(f"demo database: {db}")
    assert query(db, "SELECT count(*) FROM load_runs WHERE files[1] LIKE '%generated/demo/%'") == [(1,)]


def test_demo_replaces_its_own_previous_build_silently(tmp_path, capsys):
    db = tmp_path / "crm.duckdb"
    for _ in range(2):
        status, out, err = run(capsys, "demo", "--db", str(db), "--deals", "200", "--no-batch")
        assert (status, err) == (0, "")
        assert out.strip().endswith(f"demo database: {db}")


def test_demo_never_replaces_a_file_that_is_not_a_database(tmp_path, capsys):
    csv = write_csv(tmp_path / "deals.csv", "deal_id,amount", "d1,10")
    status, _, err = run(capsys, "demo", "--db", str(csv), "--no-batch", "--force")
    assert (status, err) == (2, f"crm-lab demo: {not_duckdb(csv)}")
    assert csv.read_text() == "deal_id,amount\nd1,10\n"


# --- options named as the user typed them; help ---------------------------------------------------

def test_backtest_errors_name_the_from_and_to_options(world, capsys):
    _, db = world
    status, _, err = run(capsys, "backtest", "--db", str(db), "--from", "2025-03-01", "--to", "2025-01-01")
    assert (status, err) == (2, "crm-lab backtest: --to 2025-01-01T00:00:00+00:00 is before --from 2025-03-01T00:00:00+00:00")
    status, _, err = run(capsys, "backtest", "--db", str(db), "--from", "2025-01-31", "--to", "2025-03-01")
    assert err == "crm-lab backtest: --from must fall on day 1 to 28 of a month for steps of a month, got 2025-01-31"
    status, _, err = run(capsys, "backtest", "--db", str(db), "--from", "2025-01-01", "--to", "soon")
    assert err == "crm-lab backtest: --to must be a date or timestamp like '2025-03-31' or '2025-03-31 23:59:59', got 'soon'"


def _help(command: str) -> str:
    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    return subparsers.choices[command].format_help()


def test_help_lists_only_used_options_each_with_a_description():
    assert "--db" not in _help("generate")
    text = _help("sql")
    assert "one SELECT or EXPLAIN statement" in text
    flat = " ".join(text.split())
    assert ("table (the default on screen), csv, json, jsonl, or parquet (needs --out); with --out, the default "
            "is the file's extension (.csv, .json, .jsonl, .parquet)") in flat
    assert "--out FILE write the whole result to this file (required for parquet)" in flat
    assert "--force" in _help("demo")


def test_demo_tells_each_part_as_it_is_done(tmp_path, monkeypatch):
    """The database's summary comes out before the batch starts, not after it ends."""
    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # the spec's notebook path is relative
    spec = tmp_path / "tiny.yaml"
    spec.write_text(f"name: tiny\noutput: {tmp_path / 'reports'}\nruns:\n"
                    "  - name: tiny\n    notebook: tests/notebooks/tiny_report.ipynb\n", encoding="utf-8")
    told = []

    def echo(text):
        told.append((text, (tmp_path / "reports" / "index.html").exists()))

    summary = build_demo(tmp_path / "crm.duckdb", deals=200, pipeline=spec, echo=echo)
    [(database, batch_ran), (batch, batch_done)] = told
    assert database.endswith(f"demo database: {tmp_path / 'crm.duckdb'}") and not batch_ran
    assert batch.startswith("batch ") and batch_done
    assert summary == f"{database}\n{batch}"


def test_a_load_into_the_old_database_while_the_demo_builds_is_not_lost(tmp_path, monkeypatch):
    """The demo replaces its previous build under that file's writer lock and checks it again
    there: a foreign load that landed while the new demo was built keeps the old file in place."""
    import crm_lab.demo

    db = tmp_path / "crm.duckdb"
    build_demo(db, deals=200, pipeline=None)
    real_replay = crm_lab.demo.replay

    def replay_then_someone_loads(path, *args, **kwargs):
        replayed = real_replay(path, *args, **kwargs)
        con = duckdb.connect(str(db))
        con.execute("INSERT INTO load_runs BY NAME SELECT * REPLACE (99 AS load_id, ['/elsewhere/export/deals.csv'] AS files) "
                    "FROM load_runs LIMIT 1")
        con.close()
        return replayed

    monkeypatch.setattr(crm_lab.demo, "replay", replay_then_someone_loads)
    with pytest.raises(DemoOverwriteRefused) as refused:
        build_demo(db, deals=200, pipeline=None)
    assert str(refused.value) == (
        f"database {db} is not a demo build (load 99 read /elsewhere/export/deals.csv, loaded while the demo was being "
        "built): the demo would replace it and lose its data; pass --force to replace it anyway, or --db another path "
        "for the demo")
    assert query(db, "SELECT max(load_id) FROM load_runs") == [(99,)]
    assert not (tmp_path / "crm.duckdb.building").exists()
