"""The run ledger: ``report_runs`` in the database, written by the batch's single writer, and a
manifest (``batch.json``) beside the reports that keeps the results when the database is busy.

Notebooks only read the database. A notebook that declares a ``results_dir`` parameter gets a
fresh folder per run (``<run>/results/<batch_id>``, holding ``report_run.json`` with its
``report_runs.run_id``) and may leave ``<table>.parquet`` files there (``crm_lab.results``); the
writer appends them to those tables, with the ledger, in one transaction. Results of a failed run
are not stored, and a run id already in ``report_runs`` is skipped with its results, so ingesting
twice stores nothing twice. If another process holds the database past the lock timeout,
everything stays on disk (``ledger.pending.json``) and is ingested by the next batch or
``crm-lab batch --ingest``."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from crm_lab.db import transaction
from crm_lab.errors import DatabaseLockedError, InvalidArgument
from crm_lab.results import write_report_run
from crm_lab.runs import insert_frame
from crm_lab.schema import schema_sql

PENDING = "ledger.pending.json"
# Result tables whose rows name their report run (the summary's example query), and the column.
JOIN_EXAMPLES = {"forecast_summary": "run_id", "lead_sweep_runs": "run_id", "territory_plans": "plan_id"}
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


def run_id_of(batch_id: str, run_name: str) -> str:
    """A report run's id, ``report_runs.run_id``: ``<batch_id>/<run name>``."""
    return f"{batch_id}/{run_name}"


def ledger_rows(manifest: dict[str, Any], batch_id: str) -> list[dict[str, Any]]:
    return [
        {
            "run_id": run_id_of(batch_id, run["name"]),
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
            # The data this run read (None: it changed while the run ran), else the batch's at its start.
            "input_fingerprint": run.get("input_fingerprint", manifest["input_fingerprint"]),
            "crm_lab_version": manifest["crm_lab_version"],
        }
        for run in manifest["runs"]
        # A run a stop cut short has no outcome of its own to record: --retry-failed reruns it.
        if run.get("batch_id", batch_id) == batch_id and run["status"] in ("ok", "failed")
    ]


def prepare_results_dir(out_dir: Path, results_dir: str, run_id: str, **about: Any) -> None:
    """Make a run's fresh results folder, marked with its report run id, and remove the folders
    earlier batches left for the same run that hold nothing still to ingest (their rows are in
    the database, or their run failed): a rerun never re-offers them."""
    folder = Path(results_dir)
    pending = {row.get("results_dir") for row in _read_pending(out_dir)}
    if folder.parent.is_dir():
        for old in folder.parent.iterdir():
            if old.is_dir() and old != folder and str(old) not in pending:
                shutil.rmtree(old)
    folder.mkdir(parents=True, exist_ok=True)
    write_report_run(folder, run_id, **about)


def _read_pending(out_dir: Path) -> list[dict[str, Any]]:
    path = out_dir / PENDING
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else []


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
    pending = _read_pending(out_dir)
    everything = list({row["run_id"]: row for row in pending + rows}.values())  # each run once
    stored: dict[str, int] = {}
    try:
        # A batch reads a database that exists: a missing one is a mistyped path, not a new ledger.
        with transaction(db_path, lock_timeout=lock_timeout, create=False) as con:
            con.execute(schema_sql("report_runs"))
            known = {r for (r,) in con.sql("SELECT run_id FROM report_runs").fetchall()}
            fresh = [dict(row) for row in everything if row["run_id"] not in known]
            for row in fresh:
                for table, count in _ingest_results(con, row).items():
                    stored[table] = stored.get(table, 0) + count
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
    line = f"ledger: {len(fresh)} run(s) recorded in report_runs{note}"
    if any(stored.values()):
        tables = ", ".join(f"{table} {count}" for table, count in stored.items() if count)
        line += f"\nresults stored with their report runs (rows): {tables}"
        example = next((t for t in JOIN_EXAMPLES if stored.get(t)), None)
        if example:
            batches = sorted({row["batch_id"] for row in fresh})
            which = " OR ".join(f"r.batch_id = '{b}'" for b in batches)
            key = JOIN_EXAMPLES[example]
            join = "USING (run_id)" if key == "run_id" else f"ON t.{key} = r.run_id"
            line += f"\n  SELECT r.run_name, t.* FROM {example} t JOIN report_runs r {join} WHERE {which}"
    return line


def _ingest_results(con, row: dict[str, Any]) -> dict[str, int]:
    """Append the result files of a successful run; rows appended per table. A run whose
    parameters name no company takes the one company of its results (``report_runs.company_id``
    is the company a report is about, so a ``--company`` session shows it beside its rows)."""
    folder = row.get("results_dir")
    if row["status"] != "ok" or not folder or not Path(folder).is_dir():
        return {}
    counts: dict[str, int] = {}
    companies: set[str] = set()
    for parquet in sorted(Path(folder).glob("*.parquet")):
        table = parquet.stem
        if not TABLE_NAME.fullmatch(table):
            raise InvalidArgument(f"run {row['run_name']}: result file {parquet.name} names no workbench table")
        try:
            con.execute(schema_sql(table))
        except FileNotFoundError:
            raise InvalidArgument(f"run {row['run_name']}: result file {parquet.name} names no workbench table") from None
        inserted = con.execute(f'INSERT INTO "{table}" BY NAME SELECT * FROM read_parquet(?)', [str(parquet)]).fetchall()
        counts[table] = inserted[0][0]
        names = [name for (name,) in con.sql("SELECT name FROM parquet_schema(?)", params=[str(parquet)]).fetchall()]
        if "company_id" in names:
            companies |= {c for (c,) in con.sql("SELECT DISTINCT company_id FROM read_parquet(?) WHERE company_id IS NOT NULL",
                                                 params=[str(parquet)]).fetchall()}
    if row.get("company_id") is None and len(companies) == 1:
        row["company_id"] = companies.pop()
    return counts
