"""Forecast and backtest results as rows: :func:`run_frames` builds them (no I/O), and
:func:`store_run` writes them in one short transaction (a batch report writes the same frames to
files instead: :func:`write_report_results`).

Tables are created from ``crm_lab/sql/schema/<table>.sql`` inside the transaction, the run row
goes into ``forecast_runs`` and the result frames are appended through Arrow. Either all of a
run is there or none of it.
"""

from __future__ import annotations

import json
import os

import polars as pl

from crm_lab.results import report_run_id, store_frames, stored_text, write_result_files
from crm_lab.runs import RunRecord

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


def run_frames(record: RunRecord, run: dict, frames: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """The rows a run writes, per table (pure: no database): the ``forecast_runs`` row (``run``:
    its columns after the common ones) and each frame (table -> rows without run_id) with the
    run's id."""
    out = {"forecast_runs": _run_row(record, run)}
    for table, frame in frames.items():
        if frame is not None and frame.height:
            out[table] = frame.with_columns(pl.lit(record.run_id).alias("run_id"))
    return out


def store_run(db_path: str | os.PathLike, record: RunRecord, run: dict, frames: dict[str, pl.DataFrame],
              lock_timeout: float | None = None) -> None:
    """Insert the run row (``run``: the forecast_runs columns after the common ones) and each
    frame (table -> rows without run_id) in one transaction."""
    store_frames(db_path, run_frames(record, run, frames), tables=FORECAST_TABLES, lock_timeout=lock_timeout)


def write_report_results(results_dir, result, backtest=None) -> str | None:
    """What notebook 03 does with its ``results_dir`` parameter: write the rows of the forecast
    it shows (a :class:`~crm_lab.forecast.ForecastResult`) and of its backtest, if one ran (a
    :class:`~crm_lab.forecast.BacktestResult`), as ``<table>.parquet`` files for the batch to
    store, the same rows ``crm-lab forecast`` and ``crm-lab backtest`` store. In a batch the
    forecast's run_id is the report run's (``report_runs.run_id``) and the backtest's that id
    followed by ``/backtest``. Returns what the report says about it; None (nothing written)
    when ``results_dir`` is None."""
    if results_dir is None:
        return None
    report = report_run_id(results_dir)
    if report is not None:
        result.record.run_id = report
        if backtest is not None:
            backtest.record.run_id = f"{report}/backtest"
    frame_sets = [result.frames()] + ([backtest.frames()] if backtest is not None else [])
    counts = write_result_files(results_dir, *frame_sets, tables=FORECAST_TABLES)
    return stored_text(results_dir, counts, [result.run_id], table="forecast_summary")
