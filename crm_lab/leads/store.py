"""Store lead threshold studies: ``lead_sweep_runs`` (one run record per company) and
``lead_sweeps`` (one row per cut-off). :func:`result_frames` builds the rows (no I/O);
:func:`write_results` writes them in one short transaction, and a batch report writes the same
frames to files (:func:`write_report_results`)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from crm_lab.db import DEFAULT_DB, check_writable
from crm_lab.leads.analysis import LeadSweepResult, analyse_leads
from crm_lab.results import report_run_id, store_frames, stored_text, write_result_files
from crm_lab.runs import RunRecord
from crm_lab.schema import table_spec

RUNS_TABLE = "lead_sweep_runs"
SWEEPS_TABLE = "lead_sweeps"
RUN_KIND = "leads"


@dataclass(frozen=True)
class SweepLeadsReport:
    """What ``crm-lab sweep-leads`` did: the studies and the run ids they were stored under."""

    db_path: Path
    results: tuple[LeadSweepResult, ...]
    run_ids: tuple[str, ...]

    def summary(self) -> str:
        lines = []
        for run_id, result in zip(self.run_ids, self.results):
            lines.append(f"run {run_id}")
            lines.append(result.summary())
        ids = ", ".join(f"'{run_id}'" for run_id in self.run_ids)
        lines.append(f"curves: SELECT * FROM {SWEEPS_TABLE} WHERE run_id IN ({ids}) ORDER BY run_id, threshold DESC")
        return "\n".join(lines)


def sweep_leads(
    db_path: str | os.PathLike = DEFAULT_DB,
    *,
    company: str | None = None,
    lock_timeout: float | None = None,
    **settings: Any,
) -> SweepLeadsReport:
    """``crm-lab sweep-leads``: run the lead threshold study and store it.

    Reads with a read-only connection, computes, then writes ``lead_sweep_runs`` and
    ``lead_sweeps`` in one transaction, holding the file only for the write.

    Parameters
    ----------
    db_path : path
        A loaded and replayed workbench database.
    company : str, optional
        One company; None for each company with leads (one run each).
    lock_timeout : float, optional
        Seconds to wait for another process's lock.
    **settings
        The fields of :class:`crm_lab.leads.LeadSweepSettings`: ``as_of`` (required),
        ``capacity_hours``, ``hours_per_lead``, ``cost_per_lead``, ``objective``, ``beta``,
        ``test_days``, ``maturity_days``, ``score_source``, ``deal_value``, ``win_rate``,
        ``C``, ``replicates``, ``level``, ``seed``, ``bins``.

    Examples
    --------
    >>> from crm_lab.leads import sweep_leads
    >>> report = sweep_leads("data/crm.duckdb", as_of="2025-10-01", capacity_hours=400,
    ...                      hours_per_lead=1.5, cost_per_lead=60)  # doctest: +SKIP
    >>> print(report.summary())  # doctest: +SKIP
    """
    check_writable(db_path)  # before the study, not after it
    results = analyse_leads(db_path, company=company, lock_timeout=lock_timeout, **settings)
    run_ids = write_results(db_path, results, parameters={"company": company, **settings}, lock_timeout=lock_timeout)
    return SweepLeadsReport(Path(db_path), tuple(results), run_ids)


def write_results(
    db_path: str | os.PathLike,
    results: Sequence[LeadSweepResult],
    *,
    parameters: dict[str, Any] | None = None,
    lock_timeout: float | None = None,
) -> tuple[str, ...]:
    """Store studies (all or nothing); returns their run ids. ``parameters`` are the arguments as
    given (default: each study's settings)."""
    records = run_records(results, parameters)
    store_frames(db_path, result_frames(results, records), lock_timeout=lock_timeout)
    return tuple(record.run_id for record in records)


def write_report_results(results_dir, results: Sequence[LeadSweepResult],
                         parameters: dict[str, Any] | None = None) -> str | None:
    """What notebook 04 does with its ``results_dir`` parameter: write the studies it shows as
    ``lead_sweep_runs.parquet`` and ``lead_sweeps.parquet`` for the batch to store, the rows
    ``crm-lab sweep-leads`` stores. In a batch a single study's run_id is the report run's
    (``report_runs.run_id``); several studies (one per company) get ``<that>/<company_id>``.
    Returns what the report says about it; None (nothing written) when ``results_dir`` is None."""
    if results_dir is None:
        return None
    records = run_records(results, parameters)
    report = report_run_id(results_dir)
    if report is not None:
        for record in records:
            record.run_id = report if len(records) == 1 else f"{report}/{record.company_id}"
    counts = write_result_files(results_dir, result_frames(results, records))
    return stored_text(results_dir, counts, [record.run_id for record in records], table=SWEEPS_TABLE)


def run_records(results: Sequence[LeadSweepResult], parameters: dict[str, Any] | None = None) -> list[RunRecord]:
    """The run record of each study. ``parameters`` are the arguments as given (default: each
    study's settings)."""
    return [
        RunRecord(
            kind=RUN_KIND,
            parameters=parameters if parameters is not None else result.settings.parameters(),
            input_fingerprint=result.input_fingerprint,
            company_id=result.company_id,
            seed=result.settings.seed,
            started_at=result.started_at,
            seconds=result.seconds,
        )
        for result in results
    ]


def result_frames(results: Sequence[LeadSweepResult], records: Sequence[RunRecord]) -> dict[str, pl.DataFrame]:
    """The rows the studies write, per table (pure: no database): one ``lead_sweep_runs`` row
    per study (:func:`run_row`) and its ``lead_sweeps`` rows (:func:`sweep_rows`)."""
    columns = [column.name for column in table_spec(RUNS_TABLE).columns]
    runs = [run_row(result, record) for record, result in zip(records, results)]
    return {
        RUNS_TABLE: pl.DataFrame([{name: row.get(name) for name in columns} for row in runs],
                                 schema=_polars_schema(RUNS_TABLE), strict=False),
        SWEEPS_TABLE: pl.concat([sweep_rows(result, record.run_id) for record, result in zip(records, results)],
                                how="vertical_relaxed") if runs else pl.DataFrame(),
    }


def _polars_schema(table: str) -> dict[str, pl.DataType]:
    """The polars types of a table's columns, so a frame of run rows keeps a column of Nones
    typed (JSON and TIMESTAMPTZ columns: text and UTC instants)."""
    kinds = {"VARCHAR": pl.String, "JSON": pl.String, "DOUBLE": pl.Float64, "BIGINT": pl.Int64, "INTEGER": pl.Int64,
             "BOOLEAN": pl.Boolean, "TIMESTAMP WITH TIME ZONE": pl.Datetime("us", "UTC"), "DATE": pl.Date}
    return {column.name: kinds[column.sql_type] for column in table_spec(table).columns}


def sweep_rows(result: LeadSweepResult, run_id: str) -> pl.DataFrame:
    """The ``lead_sweeps`` rows of a study, in the table's column order."""
    columns = [column.name for column in table_spec(SWEEPS_TABLE).columns]
    return result.table.with_columns(run_id=pl.lit(run_id), company_id=pl.lit(result.company_id)).select(columns)


def run_row(result: LeadSweepResult, record: RunRecord) -> dict[str, Any]:
    """The ``lead_sweep_runs`` row of a study, by column name."""
    s, boot, choice, calibration = result.settings, result.bootstrap, result.choice, result.calibration
    head = dict(zip(
        ("run_id", "company_id", "started_at", "seconds", "parameters", "seed", "crm_lab_version", "input_fingerprint"),
        record.values(),
    ))
    model = result.model
    return {
        **head,
        "as_of": result.as_of,
        "train_cutoff": result.train_cutoff,
        "score_source": s.score_source,
        "objective": s.objective,
        "beta": s.beta,
        "capacity_hours": s.capacity_hours,
        "hours_per_lead": s.hours_per_lead,
        "cost_per_lead": s.cost_per_lead,
        "deal_value": result.deal_value,
        "deal_value_source": result.deal_value_source,
        "win_rate": result.win_rate,
        "win_rate_source": result.win_rate_source,
        "history_closed_deals": result.economics.closed_deals,
        "history_won_deals": result.economics.won_deals,
        "train_leads": result.train.height if model is not None else None,
        "train_conversions": int(result.train["converted"].sum()) if model is not None else None,
        "swept_leads": result.test.height,
        "swept_conversions": int(result.test["converted"].sum()),
        "thresholds": result.curve.height,
        "auc": result.auc,
        "brier": calibration.brier if calibration else None,
        "log_loss": calibration.log_loss if calibration else None,
        "mean_predicted": calibration.mean_predicted if calibration else None,
        "observed_rate": float(result.test["converted"].mean()),
        "model": None if model is None else json.dumps(_model_record(result)),
        "chosen_threshold": choice.threshold,
        "chosen_routed": choice.routed,
        "chosen_value": choice.value,
        "chosen_profit": None if choice.routes_nobody else choice.row["profit"],
        "chosen_threshold_lo": boot.threshold_interval[0],
        "chosen_threshold_hi": boot.threshold_interval[1],
        "chosen_value_lo": boot.value_interval[0],
        "chosen_value_hi": boot.value_interval[1],
        "replicates": boot.replicates,
        "level": boot.level,
        "open_leads": result.open_leads.height,
        "open_leads_routed": result.open_leads_routed,
    }


def _model_record(result: LeadSweepResult) -> dict[str, Any]:
    model = result.model
    return {
        "kind": "l2_logistic_regression",
        "settings": model.get_params(),
        "intercept": model.intercept_,
        "intercept_std_error": model.intercept_std_error_,
        "coefficients": dict(zip(model.feature_names_, model.coef_.tolist())),
        "std_errors": dict(zip(model.feature_names_, model.std_errors_.tolist())),
        "reference_levels": {column: levels[0] for column, levels in model.levels_.items()},
        "iterations": model.n_iter_,
        "converged": bool(model.converged_),
    }
