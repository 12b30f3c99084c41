"""Result rows, two ways out: into the workbench database (one short transaction, what the
commands do) or into ``<table>.parquet`` files (what a notebook run by ``crm-lab batch`` does,
since notebooks only read the database: the batch's single writer ingests the files with its
ledger, see :mod:`crm_lab.batch.ledger`).

Both take the same frames (table -> rows) from the engines' frame builders
(``crm_lab.forecast.store.run_frames``, ``crm_lab.leads.store.result_frames``,
``crm_lab.territory.store.plan_frames``), so a report's stored rows are the rows the command
line would store for the same run.

**Linking a report's results to its run.** The batch gives every run that declares
``results_dir`` a fresh folder holding ``report_run.json`` (its ``report_runs.run_id``,
``<batch_id>/<run name>``). :func:`report_run_id` reads it, and the notebook's results take that
id: the main result's ``run_id`` (a territory plan's ``plan_id``) *is* the report run's id, and
any further result of the same report is ``<report run id>/<name>`` (a forecast's backtest:
``<report run id>/backtest``). So ``JOIN report_runs USING (run_id)`` finds the main result, and
``starts_with(run_id, report_runs.run_id || '/')`` the rest."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import duckdb

from crm_lab.db import transaction
from crm_lab.runs import insert_frame
from crm_lab.schema import schema_sql

REPORT_RUN_FILE = "report_run.json"

Frames = Mapping[str, Any]  # table -> polars DataFrame (or Arrow table) of its rows


def insert_frames(con: duckdb.DuckDBPyConnection, frame_sets: Iterable[Frames], tables: Iterable[str] = ()) -> dict[str, int]:
    """Create ``tables`` and every table of ``frame_sets`` when missing (``crm_lab/sql/schema``)
    and append the rows, in order. Returns rows appended per table."""
    frame_sets = list(frame_sets)
    counts: dict[str, int] = {}
    for table in dict.fromkeys([*tables, *(t for frames in frame_sets for t in frames)]):
        con.execute(schema_sql(table))
        counts[table] = 0
    for frames in frame_sets:
        for table, frame in frames.items():
            if frame is not None and len(frame):
                counts[table] += insert_frame(con, table, frame)
    return counts


def store_frames(db_path: str | os.PathLike, *frame_sets: Frames, tables: Iterable[str] = (),
                 lock_timeout: float | None = None) -> dict[str, int]:
    """Write result frames to the workbench database in one transaction: all or nothing."""
    with transaction(db_path, lock_timeout=lock_timeout) as con:
        return insert_frames(con, frame_sets, tables)


def write_result_files(folder: str | os.PathLike, *frame_sets: Frames, tables: Iterable[str] = ()) -> dict[str, int]:
    """Write result frames as ``<folder>/<table>.parquet``, one file per table (``tables`` too,
    empty when no frame has rows for it, so the batch creates them as the command does).

    The rows go through an in-memory DuckDB holding the workbench tables, exactly as
    :func:`store_frames` writes them, so each file has its table's column types and the batch's
    writer appends it unchanged. A file already there is replaced. Returns rows per table."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        counts = insert_frames(con, frame_sets, tables)
        for table in counts:
            path = target / f"{table}.parquet"
            temporary = path.with_suffix(".parquet.tmp")
            con.execute(f"COPY \"{table}\" TO '{_sql_text(temporary)}' (FORMAT parquet)")
            os.replace(temporary, path)
    finally:
        con.close()
    return counts


def report_run_id(folder: str | os.PathLike) -> str | None:
    """The ``report_runs.run_id`` the batch gave the run writing results to ``folder`` (None
    when the folder was not made by a batch, e.g. a notebook run by hand with a results_dir)."""
    marker = Path(folder) / REPORT_RUN_FILE
    if not marker.is_file():
        return None
    return json.loads(marker.read_text(encoding="utf-8"))["run_id"]


def write_report_run(folder: str | os.PathLike, run_id: str, **about: Any) -> Path:
    """Mark ``folder`` as the results folder of report run ``run_id`` (done by the batch)."""
    path = Path(folder) / REPORT_RUN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"run_id": run_id, **about}, indent=2, default=str), encoding="utf-8")
    return path


def stored_text(folder: str | os.PathLike, counts: Mapping[str, int], ids: Iterable[str], *, key: str = "run_id",
                table: str | None = None) -> str:
    """What a report says about its results: which report run stores them, the rows per table
    and a query for ``ids`` in ``table`` (or, outside a batch, where the files are)."""
    ids = list(ids)
    rows = ", ".join(f"{name} {count}" for name, count in counts.items() if count)
    report = report_run_id(folder)
    if report is None:
        return f"results written to {folder} (rows: {rows}); no batch stores them: `crm-lab batch` does, for its runs"
    quoted = ", ".join("'" + i.replace("'", "''") + "'" for i in ids)
    table = table or next(name for name, count in counts.items() if count)
    where = f"{key} = {quoted}" if len(ids) == 1 else f"{key} IN ({quoted})"
    return (f"stored by the batch with report run '{report}' (rows: {rows}):\n"
            f"  SELECT * FROM {table} WHERE {where}")


def _sql_text(path: Path) -> str:
    return str(path).replace("'", "''")
