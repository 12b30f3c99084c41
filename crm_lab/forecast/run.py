"""``crm-lab forecast``: read, fit, simulate the baseline and every scenario on common random
numbers, summarise, and store (one short write).

:func:`forecast` is the front door (the CLI is a thin shell over it). :func:`prepare` and
:func:`run_scenarios` are its two halves, for notebooks that fit once and then try many knobs.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from crm_lab.as_of import check_as_of_in_data, day_or_instant
from crm_lab.db import DEFAULT_DB, check_writable, reading
from crm_lab.errors import InvalidArgument
from crm_lab.forecast.data import check_replayed, forecast_sql, read_histories, read_open_deals, read_other_ids
from crm_lab.forecast.estimate import ModelOptions, NoWonDeal
from crm_lab.forecast.inputs import ForecastInputs, check_dimensions, check_scenario, gather_inputs, portfolio
from crm_lab.forecast.periods import Window, forecast_window
from crm_lab.forecast.scenarios import Scenario, load_scenarios
from crm_lab.forecast.simulation import simulate
from crm_lab.forecast.store import FORECAST_TABLES, run_frames
from crm_lab.forecast.summary import deals_frame, horizon_samples, summary_frame
from crm_lab.results import store_frames
from crm_lab.runs import RunRecord, input_fingerprint


def earliest_usable_as_of(con, companies, outcome_window_days: float | None = None) -> dict:
    """Per company, the earliest as-of day (a date: its midnight, UTC) at which the company has
    a won deal with a known outcome, that is, a pipeline snapshot whose next close is a win
    within ``outcome_window_days`` of it, closed by then (None: no such win in the data). Set
    work in SQL over ``deal_closes.sql`` and ``pipeline_snapshots``."""
    window = float(outcome_window_days if outcome_window_days is not None else ModelOptions().outcome_window_days)
    rows = con.sql(
        f"""
        WITH closes AS ({forecast_sql('deal_closes')}),
        labelled AS (
            SELECT s.company_id, s.snapshot_at, c.closed_at, c.outcome
            FROM pipeline_snapshots s
            ASOF JOIN closes c ON c.company_id = s.company_id AND c.deal_id = s.deal_id AND c.closed_at > s.snapshot_at
            WHERE ($company IS NULL OR s.company_id = $company)
        ), first_win AS (
            SELECT company_id, min(closed_at) AT TIME ZONE 'UTC' AS first_at FROM labelled
            WHERE outcome = 'won' AND epoch(closed_at) - epoch(snapshot_at) <= $window * 86400
            GROUP BY company_id
        )
        SELECT company_id, CAST(first_at AS DATE) + CAST(first_at > CAST(CAST(first_at AS DATE) AS TIMESTAMP) AS INTEGER)
        FROM first_win
        """,
        params={"company": companies[0] if len(companies) == 1 else None, "window": window},
    ).fetchall()
    found = dict(rows)
    return {c: found.get(c) for c in companies}


def cannot_learn_text(error: NoWonDeal, earliest: dt.date | None, flag: str, python_name: str) -> str:
    """What a user reads for a company whose win rates cannot be learned at an as-of: the
    company, the as-of, and the earliest value of the option (``--as-of`` / ``--from``) that
    would work, or that the data holds no win of it at all."""
    when = day_or_instant(error.as_of)
    head = f"company {error.company_id} {error.what} at or before {when}: cannot learn its win rates"
    if earliest is None:
        return head + "; its data holds no won deal at all (load more history, or pick another --company)"
    return head + f"; its earliest usable {flag} is {earliest.isoformat()} ({python_name}= in Python)"


def check_count(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidArgument(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


# Money is simulated in float64 and stored as DECIMAL(18,2). DECIMAL(18,2) holds up to
# 9,999,999,999,999,999.99, but float64 (and DuckDB's cast of a DOUBLE to DECIMAL, which scales
# in floating point) keeps cents exactly only well below that: 9,999,999,999,999,998.0 is
# stored as 9,999,999,999,999,997.44. Below 10**13 every amount keeps its cents (float64 spacing
# under 0.002, and amount * 100 under 2**53), so that is the largest amount accepted.
MONEY_MAX = 9_999_999_999_999.99
MONEY_LIMIT_TEXT = ("at most 9,999,999,999,999.99 (the largest amount kept to the cent: amounts are simulated in "
                    "float64 and stored as DECIMAL(18,2))")


def check_target(target) -> float | None:
    if target is None:
        return None
    if isinstance(target, bool) or not isinstance(target, (int, float, np.integer, np.floating)) \
            or not np.isfinite(target) or target < 0 or target > MONEY_MAX:
        raise InvalidArgument(f"target must be a non-negative amount {MONEY_LIMIT_TEXT}, got {target!r}")
    return float(target)


MONEY_COLUMNS = ("booked", "open_mean", "new_mean", "mean", "sd", "p05", "p10", "p25", "p50", "p75", "p90", "p95",
                 "quota", "amount", "expected_value")


def check_money_fits(frame: pl.DataFrame, what: str) -> None:
    """Refuse results whose amounts DECIMAL(18,2) cannot hold, naming the company, scenario and
    the knob that usually causes it (a deal_size or new_pipeline multiplier far too large)."""
    for column in (c for c in MONEY_COLUMNS if c in frame.columns):
        values = frame[column]
        too_big = frame.filter(values.abs() > MONEY_MAX)
        if too_big.height:
            row = too_big.row(0, named=True)
            raise InvalidArgument(
                f"company {row['company_id']} scenario {row['scenario']!r}: the forecast's {what} {column} reaches "
                f"{row[column]:,.2f}; amounts must be {MONEY_LIMIT_TEXT}: lower the scenario's deal_size, win_rate or new_pipeline"
            )


@dataclass
class ScenarioRun:
    """Pure results of simulating scenarios on prepared inputs."""

    scenarios: list[Scenario]
    summary: pl.DataFrame
    deals: pl.DataFrame
    samples: dict  # (company_id, scenario name) -> (trials, P) totals including bookings
    target: float | None
    trials: int

    def comparison(self) -> pl.DataFrame:
        """Side by side per company: each scenario's whole-window distribution and its change
        from the baseline. ``delta_mean_se`` is the Monte Carlo standard error of the change,
        from the paired trials (common random numbers make it small)."""
        rows = []
        for (company, name), samples in self.samples.items():
            total = samples.sum(axis=1)
            base = self.samples[(company, "baseline")].sum(axis=1)
            diff = total - base
            p10, p50, p90 = np.quantile(total, (0.1, 0.5, 0.9))
            row = {
                "company_id": company, "scenario": name, "mean": total.mean(), "p10": p10, "p50": p50, "p90": p90,
                "delta_mean": diff.mean(), "delta_mean_se": diff.std() / np.sqrt(len(diff)),
                "delta_p50": p50 - np.quantile(base, 0.5),
            }
            if self.target is not None:
                row["p_target"] = float((total >= self.target).mean())
                row["delta_p_target"] = row["p_target"] - float((base >= self.target).mean())
            rows.append(row)
        frame = pl.DataFrame(rows)
        money = [c for c in ("mean", "p10", "p50", "p90", "delta_mean", "delta_mean_se", "delta_p50") if c in frame.columns]
        return frame.with_columns([pl.col(c).round(2) for c in money])


def prepare(db_path: str | os.PathLike | None = None, *, as_of, horizon="quarter", company: str | None = None,
            model_options: dict | ModelOptions | None = None, con=None, skipped: dict | None = None) -> list[ForecastInputs]:
    """Read one as-of's history and open deals and fit each company's model.

    Pass ``db_path`` (opened read-only here) or an open connection ``con``.

    A company with no won deal with a known outcome at or before the as-of cannot be forecast.
    With ``skipped`` (a dict) and no ``company``, such companies are left out and ``skipped``
    maps each to the reason (naming its earliest usable as-of), as long as one company can be
    forecast; otherwise :class:`crm_lab.errors.InvalidArgument` names every such company and
    its earliest usable as-of.
    """
    window = forecast_window(as_of, horizon)
    options = model_options if isinstance(model_options, ModelOptions) else ModelOptions.from_dict(model_options)

    def read(connection):
        check_replayed(connection)
        check_as_of_in_data(connection, window.as_of, company=company, doing="forecast")  # every entry point refuses it
        histories = read_histories(connection, until=window.as_of, company=company)
        open_deals = read_open_deals(connection, window.as_of, company)
        elsewhere = read_other_ids(connection, window.as_of, company) if company is not None else {}
        inputs, failed = [], []
        for h in histories.values():
            try:
                inputs.append(gather_inputs(h, open_deals, window, options))
            except NoWonDeal as error:
                failed.append(error)
        if failed:
            earliest = earliest_usable_as_of(connection, [e.company_id for e in failed], options.outcome_window_days)
            reasons = {e.company_id: cannot_learn_text(e, earliest[e.company_id], "--as-of", "as_of") for e in failed}
            if skipped is None or company is not None or not inputs:
                raise InvalidArgument(_refusal(reasons, "--as-of", "as_of"))
            skipped.update(reasons)
        return inputs, elsewhere

    if con is not None:
        inputs, elsewhere = read(con)
    else:
        with reading(db_path or DEFAULT_DB) as connection:
            inputs, elsewhere = read(connection)
    for case in inputs:
        case.elsewhere = elsewhere
    return inputs


def _refusal(reasons: dict, flag: str, python_name: str) -> str:
    """One company: its reason. Several: each on its own line, after what to do."""
    if len(reasons) == 1:
        return next(iter(reasons.values()))
    lines = [f"no company can be forecast: pick a later {flag} ({python_name}= in Python)"]
    return "\n".join(lines + [f"  {text}" for text in reasons.values()])


def run_scenarios(inputs: list[ForecastInputs], scenarios=None, *, trials: int = 10_000, seed: int = 0, by=(),
                  target: float | None = None, per_deal: bool = True) -> ScenarioRun:
    """Simulate the baseline and each scenario for every company, on common random numbers."""
    trials = check_count("trials", trials, 1)
    seed = check_count("seed", seed, 0)
    dims = check_dimensions(by)
    target = check_target(target)
    extra = load_scenarios(scenarios)
    all_scenarios = [Scenario(), *extra]
    for scenario in extra:
        check_scenario(scenario, inputs)
    summaries, deal_frames, samples = [], [], {}
    for case in inputs:
        portfolios = [portfolio(case, s, dims, check=False) for s in all_scenarios]
        outputs = simulate(portfolios, trials=trials, seed=seed, stream=case.stream, per_deal=per_deal)
        for scenario, port, out in zip(all_scenarios, portfolios, outputs):
            summaries.append(summary_frame(case, scenario.name, out, dims, target))
            if per_deal:
                deal_frames.append(deals_frame(case, scenario.name, port, out))
            samples[(case.company_id, scenario.name)] = horizon_samples(case, out)
    summary = pl.concat(summaries, how="vertical")
    deals = pl.concat(deal_frames, how="vertical") if deal_frames else pl.DataFrame()
    check_money_fits(summary, "summary")
    if deals.height:
        check_money_fits(deals, "per-deal")
    return ScenarioRun(
        scenarios=all_scenarios,
        summary=summary,
        deals=deals,
        samples=samples,
        target=target,
        trials=trials,
    )


def scenario_samples(case: ForecastInputs, scenario: Scenario | None = None, *, trials: int, seed: int) -> np.ndarray:
    """One company's (trials, P) totals under one scenario, bookings included: the numbers
    :func:`run_scenarios` gives that scenario, since random numbers depend only on seed, company
    and trial block (for a dashboard that simulates one knob setting at a time)."""
    scenario = scenario or Scenario()
    port = portfolio(case, scenario)
    out = simulate([port], trials=check_count("trials", trials, 1), seed=check_count("seed", seed, 0),
                   stream=case.stream, per_deal=False)[0]
    return horizon_samples(case, out)


@dataclass
class ForecastResult:
    """A stored (or storable) forecast run.

    Attributes
    ----------
    record : crm_lab.runs.RunRecord
    window : Window
    inputs : list of ForecastInputs
        Per company: the fitted model, open deals and bookings.
    run : ScenarioRun
        summary, deals, samples, comparison().
    """

    record: RunRecord
    window: Window
    inputs: list[ForecastInputs]
    run: ScenarioRun
    stored: bool = False
    models: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)  # company_id -> why it was not forecast

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @property
    def summary(self) -> pl.DataFrame:
        return self.run.summary

    @property
    def deals(self) -> pl.DataFrame:
        return self.run.deals

    def comparison(self) -> pl.DataFrame:
        return self.run.comparison()

    def run_columns(self) -> dict:
        """The ``forecast_runs`` columns after the common run record."""
        w = self.window
        return {
            "kind": "forecast", "as_of": w.as_of, "as_of_last": None, "horizon": w.horizon,
            "window_start": w.start, "window_end": w.periods[-1].last_day, "trials": self.run.trials,
            "scenarios": [s.name for s in self.run.scenarios], "group_by": list(self.record.parameters["by"]),
            "target": self.run.target, "models": self.models,
        }

    def frames(self) -> dict[str, pl.DataFrame]:
        """The rows this run stores, per table: its ``forecast_runs`` row, ``forecast_summary`` and
        ``forecast_deals`` (see :func:`crm_lab.forecast.store.run_frames`)."""
        return run_frames(self.record, self.run_columns(),
                          {"forecast_summary": self.run.summary, "forecast_deals": self.run.deals})

    def describe(self) -> str:
        """The console summary: the window per company and scenario, amounts labelled with the
        company's currency."""
        w = self.window
        lines = [
            f"forecast {self.run_id}: as of {w.as_of.isoformat()}, window {w.label} "
            f"({w.start.isoformat()} to {w.periods[-1].last_day.isoformat()}), {self.run.trials} trials"
            + ("" if self.stored else " (not stored)")
        ]
        currency = {case.company_id: case.currency for case in self.inputs}

        def label(row) -> str:
            code = currency.get(row["company_id"])
            return f"{row['company_id']} {row['scenario']}" + (f" ({code})" if code else "")

        headline = self.summary.filter((pl.col("group_by") == "company") & (pl.col("period_kind") == "horizon"))
        for row in headline.iter_rows(named=True):
            text = (
                f"  {label(row)}: booked {row['booked']:,.2f}, mean {row['mean']:,.2f}, "
                f"P10 {row['p10']:,.2f}, P50 {row['p50']:,.2f}, P90 {row['p90']:,.2f}"
            )
            if row["p_target"] is not None:
                text += f", P(>= {row['target']:,.2f}) {row['p_target']:.1%}"
            lines.append(text)
        if len(self.run.scenarios) > 1:
            lines.append("scenarios against the baseline (same random numbers):")
            for row in self.comparison().filter(pl.col("scenario") != "baseline").iter_rows(named=True):
                lines.append(
                    f"  {label(row)}: mean {row['delta_mean']:+,.2f} "
                    f"(+/- {row['delta_mean_se']:,.2f}), P50 {row['delta_p50']:+,.2f}"
                )
        for company_id, reason in self.skipped.items():
            lines.append(f"  {company_id} skipped: {reason}")
        if self.stored:
            lines.append(f"results: SELECT * FROM forecast_summary WHERE run_id = '{self.run_id}'")
        return "\n".join(lines)


def forecast(
    db_path: str | os.PathLike = DEFAULT_DB,
    *,
    as_of,
    horizon="quarter",
    trials: int = 10_000,
    seed: int = 0,
    scenarios=None,
    target: float | None = None,
    by=(),
    company: str | None = None,
    model_options: dict | None = None,
    store: bool = True,
    lock_timeout: float | None = None,
    inputs: list[ForecastInputs] | None = None,
) -> ForecastResult:
    """Forecast bookings in the window around ``as_of``, with scenarios, and store the run.

    Parameters
    ----------
    db_path : path
        A replayed workbench database.
    as_of : date, datetime or str
        The instant of the forecast (a date means midnight at its start): only what was known
        then is used.
    horizon : {"month", "quarter", "year"} or date
        The calendar period holding the as-of, or the window's last day
        (see :func:`crm_lab.forecast.periods.forecast_window`).
    trials : int
    seed : int
    scenarios : path, YAML text, mapping, list or None
        What-ifs run on the same random numbers as the baseline
        (see :mod:`crm_lab.forecast.scenarios`).
    target : float, optional
        A bookings target for each company's whole window: the summary gives P(total >= target).
    by : str or sequence of {"team", "rep", "territory", "stage"}
        Summarise by these groups too (the company is always summarised).
    company : str, optional
        One company; all by default.
    model_options : dict, optional
        :class:`crm_lab.forecast.estimate.ModelOptions` fields.
    store : bool
        Write ``forecast_runs``, ``forecast_summary``, ``forecast_deals``.
    lock_timeout : float, optional
    inputs : list of ForecastInputs, optional
        What :func:`prepare` read and fitted for this ``as_of``, ``horizon``, ``company`` and
        ``model_options`` (a notebook that fitted once to look at the inputs first): simulated
        instead of reading and fitting again. Inputs of another window or company are refused.

    Returns
    -------
    ForecastResult

    Raises
    ------
    crm_lab.errors.InvalidArgument
        Naming the parameter and value: no history before the as-of, no open deals, a horizon
        before the as-of, an unknown stage, deal or rep in a scenario, ...
    """
    if store:
        check_writable(db_path)  # before the simulation, not after it
    started = time.perf_counter()
    started_at = dt.datetime.now(dt.timezone.utc)
    trials = check_count("trials", trials, 1)
    seed = check_count("seed", seed, 0)
    dims = check_dimensions(by)
    target = check_target(target)
    load_scenarios(scenarios)  # refuse a bad file before reading the database
    window = forecast_window(as_of, horizon)
    if inputs is not None:
        _check_prepared(inputs, window, company)
    with reading(db_path, lock_timeout=lock_timeout) as con:
        check_replayed(con)
        fingerprint = input_fingerprint(con)
        skipped: dict = {}
        if inputs is None:
            inputs = prepare(as_of=window.as_of, horizon=horizon, company=company, model_options=model_options,
                             con=con, skipped=skipped)
    run = run_scenarios(inputs, scenarios, trials=trials, seed=seed, by=dims, target=target)
    parameters = {
        "as_of": window.as_of, "horizon": horizon, "trials": trials, "seed": seed, "target": target, "by": list(dims),
        "company": company, "scenarios": [s.name for s in run.scenarios[1:]], "model_options": model_options or {},
        "scenario_knobs": [_knobs(s) for s in run.scenarios[1:]],
    }
    record = RunRecord(kind="forecast", parameters=parameters, input_fingerprint=fingerprint, company_id=company,
                       seed=seed, started_at=started_at)
    models = {case.company_id: case.model.describe() for case in inputs}
    # A company left out says so in the run record: its models entry is the reason.
    models.update({company_id: {"skipped": reason} for company_id, reason in skipped.items()})
    result = ForecastResult(record, window, inputs, run, models=models, skipped=skipped)
    record.seconds = time.perf_counter() - started
    if store:
        store_frames(db_path, result.frames(), tables=FORECAST_TABLES, lock_timeout=lock_timeout)
        result.stored = True
    return result


def _check_prepared(inputs: list[ForecastInputs], window: Window, company: str | None) -> None:
    """Prepared inputs fit the forecast asked for: same window, and the company asked for."""
    if not inputs:
        raise InvalidArgument("inputs: no company's inputs given; pass what prepare() returned, or None")
    for case in inputs:
        if case.window != window:
            raise InvalidArgument(
                f"inputs: prepared for the window {case.window.label} as of {case.window.as_of.isoformat()}, "
                f"not {window.label} as of {window.as_of.isoformat()}; prepare() with the same as_of and horizon"
            )
    if company is not None and [case.company_id for case in inputs] != [company]:
        raise InvalidArgument(
            f"inputs: prepared for {', '.join(case.company_id for case in inputs)}, not company {company!r}"
        )


def _knobs(scenario: Scenario) -> dict:
    out = {}
    default = Scenario()
    for name in ("win_rate", "stage_win_rate", "deal_size", "slip_days", "new_pipeline", "include_deals", "exclude_deals"):
        value = getattr(scenario, name)
        if value != getattr(default, name):
            out[name] = dict(value) if name == "stage_win_rate" else (list(value) if isinstance(value, tuple) else value)
    if scenario.remove_reps:
        out["remove_reps"] = [{"rep": r.rep, "deals": r.deals, "to": r.to} for r in scenario.remove_reps]
    return out

