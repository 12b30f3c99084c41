"""Every query in docs/SQL.md runs against the sample database, after a forecast, a lead sweep
and a batch of reports have stored their results in a copy of it, and returns rows."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from crm_lab.db import connect

DOC = Path(__file__).resolve().parents[1] / "docs" / "SQL.md"
QUERIES = re.findall(r"```sql\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_the_reference_has_worked_queries():
    assert len(QUERIES) >= 10


@pytest.fixture(scope="module")
def with_results(tmp_path_factory, report_batch) -> Path:
    """A copy of the database of the session's report batch (tests/conftest.py: the sample, with
    the reports of notebooks 03, 04 and 05 and their stored results), plus a forecast, a lead
    sweep and a territory plan stored by the commands."""
    from crm_lab.forecast import forecast
    from crm_lab.leads.store import sweep_leads
    from crm_lab.territory import SolverOptions, TerritorySettings, run_territory

    folder = tmp_path_factory.mktemp("docs")
    db = folder / "crm.duckdb"
    shutil.copy(report_batch.db, db)
    forecast(db, as_of="2025-06-30", horizon="quarter", trials=500, by=("team",))
    sweep_leads(db, as_of="2025-06-30", capacity_hours=200, hours_per_lead=1.5, cost_per_lead=40)
    run_territory(db, "c2", TerritorySettings(tolerance=0.3), SolverOptions(time_limit=5))
    return db


@pytest.mark.parametrize("sql", QUERIES, ids=[q.split("\n")[0][:60] for q in QUERIES])
def test_documented_query_runs_on_the_sample(sql, with_results):
    con = connect(with_results)
    try:
        rows = con.sql(sql).fetchall()
    finally:
        con.close()
    if "replay_reconciliation" in sql:
        assert rows == [], "the generated export and its replayed state must agree"
    elif "FROM load_rejects" in sql:
        assert rows == [], "the sample loads without a rejected value"
    else:
        assert rows, "a documented query should show something on the sample"
