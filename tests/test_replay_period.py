"""The snapshot period sticks until changed: a plain replay after ``--period month`` keeps month
snapshots (incrementally), in the CLI and in Python; the first replay is weekly."""

from __future__ import annotations

import pytest

from crm_lab.cli import main
from crm_lab.generate import generate
from crm_lab.load import load
from crm_lab.replay import replay
from tests.conftest import query


@pytest.fixture
def db(tmp_path):
    folder, path = tmp_path / "world", tmp_path / "crm.duckdb"
    generate(folder, companies=1, deals=60, seed=5, fmt="parquet")
    load(path, [folder])
    return path


def periods(db) -> set[str]:
    return {p for (p,) in query(db, "SELECT DISTINCT period FROM pipeline_snapshots")}


def test_a_plain_replay_keeps_the_last_period(db, capsys):
    assert main(["replay", "--db", str(db)]) == 0
    assert capsys.readouterr().out.startswith("replay 1 (full: first replay)")
    assert periods(db) == {"week"}
    assert main(["replay", "--db", str(db), "--period", "month"]) == 0
    assert capsys.readouterr().out.startswith("replay 2 (full: snapshot period changed (week -> month))")
    assert main(["replay", "--db", str(db)]) == 0
    assert capsys.readouterr().out.startswith("replay 3 (incremental: new loads only)")
    assert periods(db) == {"month"}
    report = replay(db)
    assert (report.mode, report.reason) == ("incremental", "new loads only") and periods(db) == {"month"}
    assert replay(db, period="quarter").reason == "snapshot period changed (month -> quarter)"
    assert replay(db).mode == "incremental" and periods(db) == {"quarter"}
    assert [p for (p,) in query(db, "SELECT period FROM replay_runs ORDER BY replay_id")] == \
        ["week", "month", "month", "month", "quarter", "quarter"]
