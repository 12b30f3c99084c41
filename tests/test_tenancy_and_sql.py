"""A workbench opened for one company sees only that company's rows under every public name,
even when two tenants use the same ids; `crm-lab sql` is read-only and takes values only as
bound parameters."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from crm_lab.errors import InvalidArgument
from crm_lab.load import load
from crm_lab.query import WriteRefused, run_query
from crm_lab.replay import replay
from crm_lab.tenancy import RUNS_OVER_EVERY_COMPANY, open_connection
from crm_lab.workbench import sample_database

MACRO_CALLS = {
    "deals_as_of": "deals_as_of('2025-06-30')",
    "leads_as_of": "leads_as_of('2025-06-30')",
    "accounts_as_of": "accounts_as_of('2025-06-30')",
    "pipeline_movement": "pipeline_movement('2025-01-01', '2025-07-01')",
    "pipeline_waterfall": "pipeline_waterfall('2025-01-01', '2025-07-01')",
}


@pytest.fixture(scope="module")
def twin_tenants(tmp_path_factory) -> Path:
    """The sample's two companies, plus a third that is a copy of c1 under another company_id:
    every id of c1 exists twice."""
    from crm_lab.forecast import forecast
    from crm_lab.leads.store import sweep_leads
    from crm_lab.territory import SolverOptions, TerritorySettings, run_territory

    folder = tmp_path_factory.mktemp("twins")
    db = folder / "crm.duckdb"
    shutil.copy(sample_database(), db)
    # Result tables are public names too.
    forecast(db, as_of="2025-06-30", horizon="quarter", trials=200, by=("team",))
    sweep_leads(db, as_of="2025-06-30", capacity_hours=200, hours_per_lead=1.5, cost_per_lead=40)
    run_territory(db, "c1", TerritorySettings(tolerance=0.3), SolverOptions(time_limit=3))
    con = duckdb.connect(str(db))
    try:
        tables = [t for (t,) in con.sql(
            "SELECT DISTINCT table_name FROM duckdb_columns() WHERE column_name = 'company_id' AND table_name IN "
            "(SELECT table_name FROM duckdb_tables())").fetchall()]
        for table in tables:
            con.execute(f'INSERT INTO "{table}" SELECT * REPLACE (\'twin\' AS company_id) FROM "{table}" WHERE company_id = \'c1\'')
    finally:
        con.close()
    return db


def public_names(db: Path) -> list[str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        relations = [n for (n,) in con.sql(
            "SELECT table_name FROM duckdb_columns() WHERE column_name = 'company_id' GROUP BY ALL").fetchall()]
    finally:
        con.close()
    return sorted(relations) + [MACRO_CALLS[m] for m in sorted(MACRO_CALLS)]


def test_every_public_name_is_scoped_to_the_company(twin_tenants):
    names = public_names(twin_tenants)
    assert len(names) >= 30
    assert {"forecast_summary", "forecast_deals", "lead_sweeps", "lead_sweep_runs", "territory_plans",
            "territory_assignments", "territory_plan_reps"} <= set(names)
    unscoped = open_connection(twin_tenants)
    try:
        for company in ("c1", "twin", "c2"):
            scoped = open_connection(twin_tenants, company)
            try:
                for name in names:
                    got = scoped.sql(f"SELECT company_id, count(*) FROM {name} GROUP BY ALL").fetchall()
                    # A run over every company (company_id NULL) is kept with the company's run records.
                    spanning = name in RUNS_OVER_EVERY_COMPANY
                    assert {c for c, _ in got} <= {company, None} if spanning else {company}, name
                    expected = unscoped.sql(
                        f"SELECT count(*) FROM {name} WHERE company_id = ?{' OR company_id IS NULL' if spanning else ''}",
                        params=[company]).fetchall()
                    assert sum(n for _, n in got) == expected[0][0], name
            finally:
                scoped.close()
    finally:
        unscoped.close()


def test_a_company_session_keeps_the_record_of_a_run_over_every_company(twin_tenants):
    # The fixture's forecast ran over every company: its run record has no company_id, and the
    # company's result rows must still find it.
    for company in ("c1", "c2"):
        con = open_connection(twin_tenants, company)
        try:
            assert con.sql("SELECT count(*) FROM forecast_runs WHERE company_id IS NULL").fetchall() == [(1,)]
            for runs, results in (("forecast_runs", "forecast_summary"), ("forecast_runs", "forecast_deals"),
                                  ("lead_sweep_runs", "lead_sweeps")):
                orphans = con.sql(f"SELECT count(*) FROM {results} ANTI JOIN {runs} USING (run_id)").fetchall()
                assert orphans == [(0,)], (company, results)
        finally:
            con.close()


def test_twins_see_the_same_numbers_under_their_own_name(twin_tenants):
    answers = {}
    for company in ("c1", "twin"):
        con = open_connection(twin_tenants, company)
        try:
            answers[company] = con.sql(
                "SELECT sum(start), sum(won), sum(\"end\") FROM pipeline_movement('2025-01-01', '2025-07-01')").fetchall()
        finally:
            con.close()
    assert answers["c1"] == answers["twin"]
    assert answers["c1"][0][1] > 0


@pytest.mark.parametrize("payload", ["c1' OR '1'='1", "c1; DROP TABLE deals; --", "' UNION SELECT * FROM deals --"])
def test_a_company_is_a_bound_value_never_sql(twin_tenants, payload):
    with pytest.raises(InvalidArgument, match="is not in"):
        open_connection(twin_tenants, payload)
    done = subprocess.run([sys.executable, "-m", "crm_lab", "sql", "--db", str(twin_tenants), "--company", payload,
                           "SELECT count(*) FROM deals"], capture_output=True, text=True)
    assert done.returncode == 2 and "is not in" in done.stderr
    con = duckdb.connect(str(twin_tenants), read_only=True)
    try:
        assert con.sql("SELECT count(*) FROM deals").fetchall()[0][0] > 0
    finally:
        con.close()


@pytest.mark.parametrize("statement", [
    "DELETE FROM deals", "DROP TABLE deals", "INSERT INTO deals (company_id, deal_id) VALUES ('x', 'y')",
    "CREATE TABLE x AS SELECT 1", "COPY deals TO '/tmp/x.csv'", "ATTACH '/tmp/other.duckdb'", "SET threads = 1",
    "UPDATE deals SET amount = 0",
])
def test_sql_refuses_anything_but_a_read(twin_tenants, statement):
    with pytest.raises(WriteRefused, match="read-only: an? [A-Z_]+ statement is refused|read-only: a"):
        run_query(statement, twin_tenants)


def test_sql_refuses_several_statements(twin_tenants):
    with pytest.raises(WriteRefused, match="exactly one statement is allowed; got 2"):
        run_query("SELECT 1; DELETE FROM deals", twin_tenants)


def test_sql_renders_table_csv_json_and_parquet(twin_tenants, tmp_path):
    sql = "SELECT deal_id, amount FROM deals_current WHERE deal_id IN ('deal-000001', 'deal-000002') ORDER BY deal_id"
    table = run_query(sql, twin_tenants, company="c1")
    assert "deal-000001" in table and "decimal(18,2)" in table
    csv_text = run_query(sql, twin_tenants, company="c1", fmt="csv")
    assert csv_text.splitlines()[0] == "deal_id,amount" and len(csv_text.splitlines()) == 3
    records = json.loads(run_query(sql, twin_tenants, company="c1", fmt="json"))
    assert [r["deal_id"] for r in records] == ["deal-000001", "deal-000002"]
    out = tmp_path / "x.parquet"
    assert run_query(sql, twin_tenants, company="c1", fmt="parquet", out=out) == f"wrote 2 row(s) to {out}"
    with pytest.raises(InvalidArgument, match="format parquet needs --out FILE"):
        run_query(sql, twin_tenants, fmt="parquet")


def test_sql_command_line(twin_tenants):
    done = subprocess.run([sys.executable, "-m", "crm_lab", "sql", "--db", str(twin_tenants), "--company", "twin",
                           "--format", "csv", "SELECT DISTINCT company_id FROM deals"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["company_id", "twin"]
    refused = subprocess.run([sys.executable, "-m", "crm_lab", "sql", "--db", str(twin_tenants), "DROP TABLE deals"],
                             capture_output=True, text=True)
    assert refused.returncode == 2
    assert refused.stderr.strip() == ("crm-lab sql: read-only: a DROP statement is refused (change the database with "
                                      "crm-lab load, replay and the engines' commands)")


def test_readers_coexist_and_a_writer_waits_with_a_clear_message(twin_tenants, tmp_path):
    """Several analysts read at once; a load waits for readers (bounded) and fails naming the file."""
    (tmp_path / "deals.csv").write_text("company_id,deal_id\nc9,d1\n", encoding="utf-8")
    readers = [open_connection(twin_tenants), open_connection(twin_tenants, "c1")]
    try:
        assert [r.sql("SELECT count(*) > 0 FROM deals").fetchall() for r in readers] == [[(True,)], [(True,)]]
        done = subprocess.run([sys.executable, "-m", "crm_lab", "load", "--db", str(twin_tenants), str(tmp_path / "deals.csv")],
                              capture_output=True, text=True, env={**os.environ, "CRM_LAB_LOCK_TIMEOUT": "1"})
        assert done.returncode == 2
        assert done.stderr.startswith(f"crm-lab load: database {twin_tenants} is locked by process ")
    finally:
        for con in readers:
            con.close()
    # With the readers gone the same load goes through.
    assert load(twin_tenants, [tmp_path / "deals.csv"]).files[0].rows_loaded == 1


def test_notebook_parameters_are_bound_and_visible_to_cursors(twin_tenants):
    from crm_lab.tenancy import set_parameters

    con = open_connection(twin_tenants, "c2")
    try:
        hostile = "2025-06-30'); DROP TABLE deals; --"
        set_parameters(con, as_of="2025-06-30 23:59:59", note=hostile)
        cursor = con.cursor()  # how jupysql runs %%sql cells
        assert cursor.sql("SELECT param('note')").fetchall() == [(hostile,)]
        assert cursor.sql("SELECT DISTINCT company_id FROM deals_as_of(param('as_of'))").fetchall() == [("c2",)]
        with pytest.raises(InvalidArgument, match="parameter names are letters, digits and underscores"):
            set_parameters(con, **{"x; DROP": 1})
    finally:
        con.close()
