"""Every query in docs/SQL.md runs against the sample database and returns rows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crm_lab.db import connect
from crm_lab.workbench import sample_database

DOC = Path(__file__).resolve().parents[1] / "docs" / "SQL.md"
QUERIES = re.findall(r"```sql\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_the_reference_has_worked_queries():
    assert len(QUERIES) >= 10


@pytest.mark.parametrize("sql", QUERIES, ids=[q.split("\n")[0][:60] for q in QUERIES])
def test_documented_query_runs_on_the_sample(sql):
    con = connect(sample_database())
    try:
        rows = con.sql(sql).fetchall()
    finally:
        con.close()
    if "replay_reconciliation" in sql:
        assert rows == [], "the generated export and its replayed state must agree"
    else:
        assert rows, "a documented query should show something on the sample"
