"""Every worked query in docs/TERRITORY.md runs on the sample with stored plans and returns rows."""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import pytest

from crm_lab.db import connect
from crm_lab.territory import NewRep, SolverOptions, TerritorySettings, run_territory
from crm_lab.workbench import sample_database

DOC = Path(__file__).resolve().parents[1] / "docs" / "TERRITORY.md"
QUERIES = re.findall(r"```sql\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)


@pytest.fixture(scope="module")
def planned_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("territory_docs") / "crm.duckdb"
    shutil.copyfile(sample_database(), db)
    fast = SolverOptions(time_limit=2, gap_rel=0.02)
    loose = TerritorySettings(tolerance=0.2, potential_tolerance=math.inf)
    run_territory(db, "c2", loose, fast)
    run_territory(db, "c2", loose, fast, add_reps=[NewRep("new-1", 48.14, 11.58, 1600)])
    run_territory(db, "c1", TerritorySettings(tolerance=0.1), SolverOptions(time_limit=1))  # infeasible: soft plan
    return db


def test_the_territory_doc_has_worked_queries():
    assert len(QUERIES) >= 5


@pytest.mark.parametrize("sql", QUERIES, ids=[q.split("\n")[0][:60] for q in QUERIES])
def test_documented_query_runs_on_stored_plans(sql, planned_db):
    con = connect(planned_db)
    try:
        rows = con.sql(sql).fetchall()
    finally:
        con.close()
    assert rows, "a documented query should show something on the sample's plans"
