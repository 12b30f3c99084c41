"""Write forecast and backtest results: one short write transaction per run.

Tables are created from ``crm_lab/sql/schema/<table>.sql`` inside the transaction, the run row
goes into ``forecast_runs`` and the result frames are appended through Arrow. Either all of a
run is there or none of it.
"""

from __future__ import annotations

import json
import os

import polars as pl

from crm_lab.db import transaction
from crm_lab.runs import RunRecord, insert_frame
from crm_lab.schema import schema_sql

FORECAST_TABLES = ("forecast_runs", "forecast_summary", "forecast_deals", "forecast_backtest")


def _run_row(record: RunRecord, extra: dict) -> pl.DataFrame:
    head = dict(zip(
        ("run_id", "company_id", "started_at", "seconds", "parameters", "seed", "crm_lab_version", "input_fingerprint"),
        record.values(),
    ))
    extra = {**extra, "models": json.dumps(extra.get("models"), sort_keys=True, default=str)}
    schema = {
        "run_id": pl.String, "company_id": pl.String, "started_at": pl.Datetime("us", "UTC"), "seconds": pl.Float64,
        "parameters": pl.String, "seed": pl.Int64, "crm_lab_version": pl.String, "input_fingerprint": pl.String,
        "kind": pl.String, "as_of": pl.Datetime("us", "UTC"), "as_of_last": pl.Datetime("us", "UTC"),
        "horizon": pl.String, "window_start": pl.Date, "window_end": pl.Date, "trials": pl.Int64,
        "scenarios": pl.List(pl.String), "group_by": pl.List(pl.String), "target": pl.Float64, "models": pl.String,
    }
    row = {**head, **extra}
    return pl.DataFrame([{name: row.get(name) for name in schema}], schema=schema)


def store_run(db_path: str | os.PathLike, record: RunRecord, run: dict, frames: dict[str, pl.DataFrame],
              lock_timeout: float | None = None) -> None:
    """Insert the run row (``run``: the forecast_runs columns after the common ones) and each
    frame (table -> rows without run_id) in one transaction."""
    run_row = _run_row(record, run)
    with transaction(db_path, lock_timeout=lock_timeout) as con:
        for table in FORECAST_TABLES:
            con.execute(schema_sql(table))
        insert_frame(con, "forecast_runs", run_row)
        for table, frame in frames.items():
            if frame is not None and frame.height:
                insert_frame(con, table, frame.with_columns(pl.lit(record.run_id).alias("run_id")))
