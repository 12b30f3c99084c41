from __future__ import annotations

import fcntl
import json
import os
import pickle
import tempfile
from pathlib import Path

import duckdb
import pytest

from crm_lab.contract import BOOKKEEPING_TABLES, LOADABLE_TABLES


def write_csv(path: Path, header: str, *rows: str) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def write_jsonl(path: Path, *records: dict) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def event(event_id: str, aggregate_id: str, event_type: str, occurred_at: str, payload=None, *, seq=None,
          company_id: str = "c1", aggregate_type: str = "deal", **extra) -> dict:
    return {
        "event_id": event_id,
        "company_id": company_id,
        "aggregate_type": aggregate_type,
        "aggregate_id": aggregate_id,
        "seq": seq,
        "event_type": event_type,
        "occurred_at": occurred_at,
        "payload": {} if payload is None else payload,
        **extra,
    }


def snapshot(db: Path) -> dict[str, list[tuple]]:
    """Every table's rows, sorted, for 'unchanged' comparisons."""
    if not db.exists():
        return {}
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = [t for (t,) in con.sql("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
        return {t: sorted(con.sql(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}
    finally:
        con.close()


def query(db: Path, sql: str, params=None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.sql(sql, params=params).fetchall()
    finally:
        con.close()


def declared_parameters(notebook: Path) -> set[str]:
    """The names of a notebook's one ``parameters`` cell, after checking that exactly one cell
    is tagged and that the kernelspec is the portable ``python3``."""
    import papermill

    content = json.loads(notebook.read_text(encoding="utf-8"))
    assert content["metadata"]["kernelspec"]["name"] == "python3"
    tagged = [cell for cell in content["cells"] if "parameters" in cell["metadata"].get("tags", [])]
    assert len(tagged) == 1
    return set(papermill.inspect_notebook(str(notebook)))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "crm.duckdb"


ALL_TABLES = LOADABLE_TABLES + BOOKKEEPING_TABLES


def refused_load(db: Path, *paths, **kwargs) -> str:
    """The message of a load of ``paths`` that must fail, checking it left ``db`` exactly as it was."""
    from crm_lab.errors import LoadError
    from crm_lab.load import load

    before = snapshot(db)
    with pytest.raises(LoadError) as caught:
        load(db, list(paths), **kwargs)
    assert snapshot(db) == before, "a refused load must leave the database exactly as it was"
    return str(caught.value)


def replayed_log(folder: Path, *events: dict) -> Path:
    """``folder/crm.duckdb`` with ``events`` loaded (as ``events.jsonl``) and replayed."""
    from crm_lab.load import load
    from crm_lab.replay import replay

    db = folder / "crm.duckdb"
    load(db, [write_jsonl(folder / "events.jsonl", *events)])
    replay(db)
    return db


# One batch of the result notebooks (03, 04, 05), shared by the tests that need their executed
# reports or stored results (tests/test_batch.py, test_docs_sql.py and the notebooks' own tests):
# each papermill run costs seconds, so they run once per session. Parameters: small and fast.
REPORT_RUNS = [
    {"name": "forecast-c1", "notebook": "notebooks/03_forecast.ipynb",
     "parameters": {"company": "c1", "trials": 500, "backtest_months": 1, "backtest_trials": 100}},
    {"name": "leads", "notebook": "notebooks/04_lead_thresholds.ipynb",
     "parameters": {"company": "c2", "capacity_hours": 60.0, "objective": "f_beta", "replicates": 50, "seed": 3}},
    {"name": "territory-c2", "notebook": "notebooks/05_territory.ipynb",
     "parameters": {"company": "c2", "tolerance": 0.2, "potential_band": 0.9, "max_moves": 30,
                    "add_rep": "new-9:50.1:8.7:1600", "remove_rep": "rep-0002", "time_limit": 1.5,
                    "curve_budgets": [0, 10, 40]}},
]


def built_once(tmp_path_factory, name: str, build):
    """``build(folder)`` once per test run: under pytest-xdist (``make test``) the first worker
    to ask builds it while holding a lock, and the others wait and take its (pickled) result, so
    a session fixture built this way costs one build, not one per worker. What it builds is then
    read by several processes at once: read it only (copy it before writing)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return build(tmp_path_factory.mktemp(name))
    shared = tmp_path_factory.getbasetemp().parent  # the run's folder, above each worker's own
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if build() fails
        built = shared / f"{name}.pickle"
        if built.exists():
            return pickle.loads(built.read_bytes())
        value = build(Path(tempfile.mkdtemp(prefix=f"{name}-", dir=shared)))  # fresh if a build failed
        built.write_bytes(pickle.dumps(value))
        return value


def _run_report_batch(folder: Path):
    import shutil
    from types import SimpleNamespace

    import yaml

    from crm_lab.batch import run_batch
    from crm_lab.workbench import sample_database

    db = folder / "crm.duckdb"
    shutil.copy(sample_database(), db)
    spec = folder / "reports.yaml"
    spec.write_text(yaml.safe_dump({"name": "reports", "output": str(folder / "reports"), "timeout": 300,
                                    "runs": REPORT_RUNS}), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(Path(__file__).resolve().parents[1])  # the spec's notebook paths are relative to it
        result = run_batch(spec, db, jobs=2)
    assert not result.failed, [run["error"] for run in result.runs if run["status"] != "ok"]
    return SimpleNamespace(db=db, reports=folder / "reports", result=result)


@pytest.fixture(scope="session")
def report_batch(tmp_path_factory):
    """``crm-lab batch`` of REPORT_RUNS on a copy of the sample database: a namespace with
    ``db``, ``reports`` (the output folder) and ``result`` (the BatchResult). Run once for all
    xdist workers (built_once): read it only; a test that writes copies the database first."""
    return built_once(tmp_path_factory, "report_batch", _run_report_batch)


def executed_notebook(report_batch, run_name: str) -> dict:
    """The executed notebook of one run of the report batch."""
    return json.loads((report_batch.reports / run_name / f"{run_name}.ipynb").read_text(encoding="utf-8"))
