"""The run ledger: ``report_runs`` in the database, written by the batch's single writer, and a
manifest (``batch.json``) beside the reports that keeps the results when the database is busy.

Notebooks only read the database. A notebook that declares a ``results_dir`` parameter may leave
``<table>.parquet`` files there; the writer appends them to those tables, with the ledger, in one
transaction. If another process holds the database past the lock timeout, everything stays on
disk (``ledger.pending.json``) and is ingested by the next batch or ``crm-lab batch --ingest``."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from crm_lab.db import transaction
from crm_lab.errors import DatabaseLockedError, InvalidArgument
from crm_lab.runs import insert_frame
from crm_lab.schema import schema_sql

PENDING = "ledger.pending.json"
TABLE_NAME = re.compile(r"[a-z_][a-z0-9_]*")


def write_manifest(out_dir: Path, manifest: dict[str, Any]) -> Path:
    path = out_dir / "batch.json"
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
    os.replace(temporary, path)
    return path


def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    path = out_dir / "batch.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def ledger_rows(manifest: dict[str, Any], batch_id: str) -> list[dict[str, Any]]:
    return [
        {
            "run_id": f"{batch_id}/{run['name']}",
            "batch_id": batch_id,
            "pipeline": manifest["pipeline"],
            "run_name": run["name"],
            "notebook": run["notebook"],
            "company_id": run["parameters"].get("company"),
            "parameters": json.dumps(run["parameters"], sort_keys=True, default=str),
            "status": run["status"],
            "started_at": run["started_at"],
            "seconds": run["seconds"],
            "error": run["error"],
            "output_notebook": run["output_notebook"],
            "output_html": run["output_html"],
            "results_dir": run.get("results_dir"),
            "input_fingerprint": manifest["input_fingerprint"],
            "crm_lab_version": manifest["crm_lab_version"],
        }
        for run in manifest["runs"]
        if run.get("batch_id", batch_id) == batch_id
    ]


def queue_pending(out_dir: Path, rows: list[dict[str, Any]]) -> Path:
    path = out_dir / PENDING
    queued = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
    path.write_text(json.dumps(queued + rows, indent=2, default=str), encoding="utf-8")
    return path


def ingest(db_path: str | os.PathLike, out_dir: Path, rows: list[dict[str, Any]], *, lock_timeout: float | None = None) -> str:
    """Write these ledger rows, any pending ones, and the runs' result files; or, when the
    database stays locked, queue them on disk. Returns a line for the console."""
    import polars as pl

    pending_path = out_dir / PENDING
    pending = json.loads(pending_path.read_text(encoding="utf-8")) if pending_path.exists() else []
    everything = pending + rows
    try:
        # A batch reads a database that exists: a missing one is a mistyped path, not a new ledger.
        with transaction(db_path, lock_timeout=lock_timeout, create=False) as con:
            con.execute(schema_sql("report_runs"))
            known = {r for (r,) in con.sql("SELECT run_id FROM report_runs").fetchall()}
            fresh = [row for row in everything if row["run_id"] not in known]
            for row in fresh:
                _ingest_results(con, row)
            if fresh:
                frame = pl.DataFrame(fresh, infer_schema_length=None).with_columns(
                    pl.col("started_at").str.to_datetime(time_zone="UTC")
                )
                insert_frame(con, "report_runs", frame)
    except DatabaseLockedError as error:
        queue_pending(out_dir, rows)
        return f"ledger not written ({error}); results kept in {out_dir}, ingested by the next batch or `crm-lab batch --ingest {out_dir}`"
    pending_path.unlink(missing_ok=True)
    already = len(everything) - len(fresh)
    note = f" ({already} already there)" if already else ""
    return f"ledger: {len(fresh)} run(s) recorded in report_runs{note}"


def _ingest_results(con, row: dict[str, Any]) -> None:
    folder = row.get("results_dir")
    if row["status"] != "ok" or not folder or not Path(folder).is_dir():
        return
    for parquet in sorted(Path(folder).glob("*.parquet")):
        table = parquet.stem
        if not TABLE_NAME.fullmatch(table):
            raise InvalidArgument(f"run {row['run_name']}: result file {parquet.name} names no workbench table")
        try:
            con.execute(schema_sql(table))
        except FileNotFoundError:
            raise InvalidArgument(f"run {row['run_name']}: result file {parquet.name} names no workbench table") from None
        con.execute(f'INSERT INTO "{table}" BY NAME SELECT * FROM read_parquet(?)', [str(parquet)])
