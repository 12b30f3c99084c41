"""Public names that are not there yet say which command makes them; in a --company session, a
table that spans companies says so, and no hint points outside the session."""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

import pytest

from crm_lab.cli import main
from crm_lab.contract import BOOKKEEPING_TABLES, LOADABLE_TABLES
from crm_lab.load import load
from crm_lab.replay import REPLAY_TABLES
from crm_lab.tenancy import PUBLIC_TABLES, public_names, public_view_names
from tests.conftest import event, replayed_log, write_jsonl

DOC = Path(__file__).resolve().parents[1] / "docs" / "SQL.md"
NEW = {"stage": "prospecting", "amount": "100.00", "expected_close_date": "2024-03-31", "owner_rep_id": "r1"}
LOG = [
    event("a1", "D1", "created", "2024-01-01T10:00:00Z", NEW, seq=1),
    event("b1", "D1", "created", "2024-01-01T10:00:00Z", NEW, seq=1, company_id="c2"),
]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("loaded")
    db = folder / "crm.duckdb"
    load(db, [write_jsonl(folder / "events.jsonl", *LOG)])
    return db


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    return replayed_log(tmp_path_factory.mktemp("replayed"), *LOG)


def sql(capsys, db, statement, *options) -> tuple[int, str]:
    status = main(["sql", "--db", str(db), *options, statement])
    return status, capsys.readouterr().err


def test_the_list_of_public_names_is_what_the_commands_make_and_the_reference_documents():
    from crm_lab.forecast.store import FORECAST_TABLES
    from crm_lab.leads.store import RUNS_TABLE, SWEEPS_TABLE
    from crm_lab.territory.store import TERRITORY_TABLES

    made = {
        **dict.fromkeys(LOADABLE_TABLES + BOOKKEEPING_TABLES, "load"),
        **dict.fromkeys(REPLAY_TABLES, "replay"),
        **dict.fromkeys(FORECAST_TABLES, "forecast"),
        RUNS_TABLE: "sweep-leads", SWEEPS_TABLE: "sweep-leads",
        **dict.fromkeys(TERRITORY_TABLES, "territory"),
        "report_runs": "batch",
    }
    assert PUBLIC_TABLES == made
    assert 'schema_sql("report_runs")' in (files("crm_lab") / "batch" / "ledger.py").read_text(encoding="utf-8")
    assert {"deals_current", "deals_as_of", "pipeline_movement", "pipeline_waterfall", "event_volume"} <= set(
        public_view_names())
    documented = set(re.findall(r"`([a-z_]+)(?:\(|`)", DOC.read_text(encoding="utf-8")))
    assert set(public_names()) <= documented


@pytest.mark.parametrize("statement, name", [
    ("SELECT * FROM deals_current", "deals_current"),
    ("SELECT * FROM deals_as_of('2024-01-01')", "deals_as_of"),
    ("SELECT * FROM pipeline_waterfall('2024-01-01', '2024-02-01')", "pipeline_waterfall"),
    ("SELECT count(*) FROM deal_history", "deal_history"),
])
def test_before_replay_a_replayed_name_says_to_replay(capsys, loaded, statement, name):
    assert sql(capsys, loaded, statement) == (2, (
        f"crm-lab sql: {name} is made by `crm-lab replay`, which has not run on {loaded} yet: "
        f"run `crm-lab replay --db {loaded}` first\n"))


@pytest.mark.parametrize("name, command", [
    ("lead_sweeps", "sweep-leads"), ("lead_sweep_runs", "sweep-leads"),
    ("territory_plans", "territory"), ("territory_assignments", "territory"), ("territory_plan_reps", "territory"),
    ("report_runs", "batch"),
])
@pytest.mark.parametrize("company", [None, "c1"])
def test_before_an_engine_runs_its_tables_name_the_command(capsys, replayed, name, command, company):
    options = ("--company", company) if company else ()
    assert sql(capsys, replayed, f"SELECT * FROM {name}", *options) == (2, (
        f"crm-lab sql: {name} is made by `crm-lab {command}`, which has not run on {replayed} yet: "
        f"run `crm-lab {command} --db {replayed} ...` first (see `crm-lab {command} --help`)\n"))


def test_before_a_forecast_its_tables_name_both_commands(capsys, replayed):
    assert sql(capsys, replayed, "SELECT * FROM forecast_summary") == (2, (
        f"crm-lab sql: forecast_summary is made by `crm-lab forecast` or `crm-lab backtest`, neither of which "
        f"has run on {replayed} yet: run `crm-lab forecast --db {replayed} ...` first (see `crm-lab forecast --help`)\n"))


@pytest.mark.parametrize("name", ["load_runs", "load_rejects", "replay_runs"])
def test_a_company_session_says_a_table_spans_companies_and_how_to_query_it(capsys, replayed, name):
    assert sql(capsys, replayed, f"SELECT count(*) FROM {name}", "--company", "c1") == (2, (
        f"crm-lab sql: {name} spans all companies, so it is not available in a session for company c1: "
        "query it without --company (in Python: open_workbench without company)\n"))
    status, err = sql(capsys, replayed, f"SELECT count(*) FROM {name}")
    assert (status, err) == (0, "")


@pytest.mark.parametrize("statement", [
    "SELECT * FROM load_run", "SELECT * FROM load_rejectz", "SELECT * FROM replay_run", "SELECT * FROM nope",
])
def test_no_hint_in_a_company_session_points_outside_it(capsys, replayed, statement):
    status, err = sql(capsys, replayed, statement, "--company", "c1")
    assert status == 2 and err.startswith("crm-lab sql: Catalog Error: Table with name ")
    assert "workbench." not in err


def test_a_useful_hint_is_kept_and_a_useless_one_replaced_by_the_reference(capsys, replayed):
    assert sql(capsys, replayed, "SELECT * FROM deal_histroy", "--company", "c1") == (2, (
        'crm-lab sql: Catalog Error: Table with name deal_histroy does not exist!\nDid you mean "deal_history"?\n'))
    assert sql(capsys, replayed, "SELECT * FROM deals_as_off('2024-01-01')") == (2, (
        'crm-lab sql: Catalog Error: Table Function with name deals_as_off does not exist!\n'
        'Did you mean "deals_as_of"?\n'))
    assert sql(capsys, replayed, "SELECT * FROM nope") == (2, (
        "crm-lab sql: Catalog Error: Table with name nope does not exist! "
        "(docs/SQL.md lists the workbench's tables, views and macros)\n"))
