from __future__ import annotations

import json
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
