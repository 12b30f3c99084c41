"""A lead threshold study on a workbench database, per company: train a conversion model on the
leads whose outcome was known at the training cut-off, score the leads created after it, sweep
every cut-off with bootstrap bands, and pick the best one under the SDR capacity.

A lead's outcome counts as known once the lead is ``maturity_days`` old: it converted by then or
it did not. Younger leads are left out even when already decided, because keeping only the
decided ones would over-represent quick conversions. Time is split so that nothing leaks.
Standing at ``as_of`` (nothing after it is read):

- training cut-off T = ``as_of - maturity_days - test_days``. The model learns from the leads
  that were mature at T (created by ``T - maturity_days``), with their features and outcome as
  they stood at T;
- swept leads = those created after T that are mature at ``as_of`` (``test_days`` of new leads),
  with their features and outcome as of ``as_of``: an out-of-time test on which the cut-off is
  chosen. ``capacity_hours`` is the SDR time for these leads;
- open leads = those created in the last ``maturity_days`` and still open at ``as_of``: what the
  chosen cut-off would route now.

Reading is one read-only connection (:func:`crm_lab.db.reading`); :func:`split_leads` and
:func:`analyse_frames` are the pure part, on frames.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import polars as pl

from crm_lab.as_of import check_as_of_in_data
from crm_lab.db import DEFAULT_DB, reading
from crm_lab.errors import InvalidArgument
from crm_lab.leads import _checks
from crm_lab.leads.bootstrap import BootstrapSweep, bootstrap_sweep
from crm_lab.leads.calibration import CalibrationReport, auc_score, calibration_report
from crm_lab.leads.features import (
    DealEconomics,
    check_replayed,
    companies_with_leads,
    instant,
    read_deal_economics,
    read_lead_features,
)
from crm_lab.leads.model import ConversionModel
from crm_lab.leads.thresholds import OBJECTIVES, CutoffChoice, format_objective
from crm_lab.runs import input_fingerprint

SCORE_SOURCES = ("model", "column")

@dataclass(frozen=True)
class LeadSweepSettings:
    """Every setting of a lead threshold study, checked on creation.

    Parameters
    ----------
    as_of : str, date or datetime
        The instant to stand at: nothing after it is read. A bare date means its first instant.
    capacity_hours : float or None
        SDR hours available for the swept leads (``test_days`` days of new leads); None for no
        limit.
    hours_per_lead : float
        SDR hours each routed lead takes.
    cost_per_lead : float
        Cost of working one routed lead.
    objective : {"profit", "f_beta", "conversions"}
        What the best cut-off maximises; ``beta`` weighs recall against precision for f_beta.
    test_days : float
        Days of lead creation swept (the out-of-time window); the model trains on what was known
        at the window's start.
    maturity_days : float
        Age at which a lead's outcome counts as known: converted by then or not. Choose it so
        that nearly all conversions happen sooner.
    score_source : {"model", "column"}
        ``model``: fit the conversion model and sweep its probabilities. ``column``: take the
        leads' existing ``score`` column as given (no model, no expected conversions).
    deal_value, win_rate : float or None
        Override the history's estimates (mean won amount and win rate of deals from converted
        leads as of ``as_of``), e.g. with the forecast's.
    C : float
        Inverse L2 penalty of the model.
    replicates, level, seed
        Bootstrap replicates, interval coverage and seed.
    bins : int
        Bins of the calibration report.
    """

    as_of: Any
    capacity_hours: float | None = None
    hours_per_lead: float = 1.0
    cost_per_lead: float = 0.0
    objective: str = "profit"
    beta: float = 1.0
    test_days: float = 90.0
    maturity_days: float = 30.0
    score_source: str = "model"
    deal_value: float | None = None
    win_rate: float | None = None
    C: float = 1.0
    replicates: int = 200
    level: float = 0.9
    seed: int = 0
    bins: int = 10

    def __post_init__(self) -> None:
        if self.as_of is None:
            raise InvalidArgument("as_of is required: the instant to stand at, e.g. '2025-06-30 23:59:59'")
        _checks.number("capacity_hours", self.capacity_hours, allow_none=True)
        _checks.number("hours_per_lead", self.hours_per_lead)
        _checks.number("cost_per_lead", self.cost_per_lead)
        _checks.choice("objective", self.objective, OBJECTIVES)
        _checks.number("beta", self.beta, strict=True)
        _checks.number("test_days", self.test_days, strict=True)
        _checks.number("maturity_days", self.maturity_days)
        _checks.choice("score_source", self.score_source, SCORE_SOURCES)
        _checks.number("deal_value", self.deal_value, allow_none=True)
        _checks.number("win_rate", self.win_rate, maximum=1.0, allow_none=True)
        _checks.number("C", self.C, strict=True)
        _checks.whole_number("replicates", self.replicates)
        level = _checks.number("level", self.level, strict=True)
        if level >= 1:
            raise InvalidArgument(f"level must be < 1, got {self.level!r}")
        _checks.whole_number("seed", self.seed, minimum=0)
        _checks.whole_number("bins", self.bins)

    def parameters(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LeadSweepResult:
    """One company's study. ``table`` is what ``lead_sweeps`` stores."""

    company_id: str
    settings: LeadSweepSettings
    as_of: datetime
    train_cutoff: datetime
    train: pl.DataFrame  # training leads: features and outcome at the training cut-off
    test: pl.DataFrame  # swept leads, with routing_score and probability (null for the column)
    open_leads: pl.DataFrame  # young leads open at as_of, with routing_score and probability
    model: ConversionModel | None
    calibration: CalibrationReport | None  # of the model's probabilities on the swept leads
    auc: float  # of the routing score on the swept leads
    economics: DealEconomics
    deal_value: float
    win_rate: float
    deal_value_source: str  # 'history' or 'given'
    win_rate_source: str
    bootstrap: BootstrapSweep
    open_leads_routed: int  # open leads at or above the chosen cut-off
    input_fingerprint: str = ""
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    seconds: float = 0.0

    @property
    def curve(self) -> pl.DataFrame:
        return self.bootstrap.curve

    @property
    def choice(self) -> CutoffChoice:
        return self.bootstrap.choice

    @property
    def table(self) -> pl.DataFrame:
        """The sweep with its bootstrap bands and ``is_chosen``."""
        return self.bootstrap.table

    def summary(self) -> str:
        s, test = self.settings, self.test
        lines = [
            f"{self.company_id}: trained on {self.train.height} lead(s) mature at "
            f"{self.train_cutoff:%Y-%m-%d %H:%M} ({int(self.train['converted'].sum())} converted); swept "
            f"{test.height} lead(s) created after it and mature at {self.as_of:%Y-%m-%d %H:%M} "
            f"({int(test['converted'].sum())} converted)"
        ]
        if self.calibration is not None:
            lines.append(f"  model on the swept leads: {self.calibration.summary()}")
        else:
            lines.append(f"  the leads' score column on the swept leads: AUC {self.auc:.3f}")
        lines.append(
            f"  a converted lead is worth {self.deal_value:,.2f} x win rate {self.win_rate:.3f} "
            f"(deal value: {self.deal_value_source}; win rate: {self.win_rate_source}, "
            f"{self.economics.won_deals} won of {self.economics.closed_deals} closed deals from leads)"
        )
        choice, boot = self.choice, self.bootstrap
        capacity = "no capacity limit" if s.capacity_hours is None else f"capacity {s.capacity_hours:g} h"
        percent = f"{boot.level:.0%}"
        if choice.routes_nobody:
            lines.append(f"  best cut-off for {s.objective} ({capacity}): {choice.describe()}")
        else:
            low, high = boot.threshold_interval
            vlow, vhigh = boot.value_interval
            lines.append(
                f"  best cut-off for {s.objective} ({capacity}): score >= {choice.threshold:.6g} "
                f"[{percent} bootstrap: {low:.6g} to {high:.6g}], routing {choice.routed} of {test.height} "
                f"({choice.row['workload_hours']:g} h), {s.objective} {format_objective(s.objective, choice.value)} "
                f"[{percent}: {format_objective(s.objective, vlow)} to {format_objective(s.objective, vhigh)}]"
            )
        lines.append(
            f"  open at {self.as_of:%Y-%m-%d %H:%M}: {self.open_leads.height} lead(s), "
            f"{self.open_leads_routed} at or above the cut-off"
        )
        return "\n".join(lines)


def _first_day_from(value: datetime) -> datetime:
    """The first midnight (UTC) at or after ``value``: a bare date that is not earlier than it."""
    value = value.astimezone(timezone.utc)
    day = datetime.combine(value.date(), datetime.min.time(), timezone.utc)
    return day if day == value else day + timedelta(days=1)


@contextmanager
def _context(prefix: str) -> Iterator[None]:
    """Say which company and which set of leads a bad input came from."""
    try:
        yield
    except InvalidArgument as error:
        raise InvalidArgument(f"{prefix}: {error}") from None


def analyse_frames(
    company_id: str,
    *,
    train: pl.DataFrame,
    test: pl.DataFrame,
    open_leads: pl.DataFrame,
    economics: DealEconomics,
    settings: LeadSweepSettings,
    as_of: datetime,
    train_cutoff: datetime,
    lead_span: tuple[datetime, datetime] | None = None,
) -> LeadSweepResult:
    """The study on frames split by :func:`split_leads` (pure). ``lead_span``, the first and
    last creation of the company's leads, lets an empty sweep say which way to move ``as_of``."""
    started = time.perf_counter()
    s = settings
    where = f"company {company_id}"
    if test.height == 0:
        matured_by = as_of - timedelta(days=settings.maturity_days)
        empty = (
            f"{where}: no lead was created between {train_cutoff:%Y-%m-%d %H:%M} and "
            f"{matured_by:%Y-%m-%d %H:%M} (as_of - maturity_days), so there is nothing to sweep: "
        )
        first, last = lead_span or (None, None)
        if last is not None and last <= train_cutoff:
            # The first bare date at which the last lead is mature: its midnight is not before
            # last + maturity_days (a date truncated down would leave that lead out).
            latest = _first_day_from(last + timedelta(days=settings.maturity_days))
            raise InvalidArgument(
                empty + f"as_of is past the lead data (created {first:%Y-%m-%d} to {last:%Y-%m-%d}); "
                f"move {_option('as_of')} earlier, to {latest:%Y-%m-%d} or before"
            )
        raise InvalidArgument(empty + f"move {_option('as_of')} later or widen {_option('test_days')}")
    if s.score_source == "model" and train.height == 0:
        raise InvalidArgument(
            f"{where}: no lead was mature at the training cut-off {train_cutoff:%Y-%m-%d %H:%M} "
            f"(as_of - maturity_days - test_days), so there is nothing to learn from: move {_option('as_of')} later or "
            f"shorten {_option('test_days')}"
        )
    deal_value, deal_value_source = _override(s.deal_value, economics.mean_won_amount, "deal_value", where, as_of,
                                              "no deal from a converted lead had been won")
    win_rate, win_rate_source = _override(s.win_rate, economics.win_rate, "win_rate", where, as_of,
                                          "no deal from a converted lead had closed")
    model = calibration = None
    if s.score_source == "model":
        with _context(f"{where}, training leads at {train_cutoff:%Y-%m-%d %H:%M}"):
            model = ConversionModel(C=s.C).fit(train, train["converted"])
        test_scores = model.predict_proba(test)[:, 1]
        open_scores = model.predict_proba(open_leads)[:, 1] if open_leads.height else np.zeros(0)
        probabilities = test_scores
        with _context(f"{where}, swept leads"):
            calibration = calibration_report(test["converted"], test_scores, bins=s.bins)
    else:
        unscored = test.filter(pl.col("score").cast(pl.Float64).fill_nan(None).is_null())["lead_id"]
        if unscored.len():
            shown = ", ".join(unscored.head(5).to_list()) + (", ..." if unscored.len() > 5 else "")
            raise InvalidArgument(
                f"{where}: {unscored.len()} of the {test.height} swept leads have no score ({shown}): give every lead "
                "a score in the export, or sweep the model's probabilities (--score model, score_source='model' in "
                "Python)"
            )
        with _context(f"{where}, the leads' score column"):
            test_scores = _checks.scores_array("scores", test["score"].cast(pl.Float64).fill_null(np.nan))
        open_scores = open_leads["score"].cast(pl.Float64).fill_null(np.nan).to_numpy()
        probabilities = None
    with _context(f"{where}, swept leads"):
        boot = bootstrap_sweep(
            test_scores,
            test["converted"].to_numpy(),
            probabilities=probabilities,
            objective=s.objective,
            beta=s.beta,
            replicates=s.replicates,
            level=s.level,
            seed=s.seed,
            hours_per_lead=s.hours_per_lead,
            capacity_hours=s.capacity_hours,
            cost_per_lead=s.cost_per_lead,
            deal_value=deal_value,
            win_rate=win_rate,
        )
    probability_column = pl.Series("probability", probabilities if probabilities is not None else [None] * test.height,
                                   dtype=pl.Float64)
    open_probability = pl.Series("probability", open_scores if model is not None else [None] * open_leads.height,
                                 dtype=pl.Float64)
    return LeadSweepResult(
        company_id=company_id,
        settings=s,
        as_of=as_of,
        train_cutoff=train_cutoff,
        train=train,
        test=test.with_columns(pl.Series("routing_score", test_scores, dtype=pl.Float64), probability_column),
        open_leads=open_leads.with_columns(pl.Series("routing_score", open_scores, dtype=pl.Float64), open_probability),
        model=model,
        calibration=calibration,
        auc=calibration.auc if calibration is not None else auc_score(test["converted"].to_numpy(), test_scores),
        economics=economics,
        deal_value=deal_value,
        win_rate=win_rate,
        deal_value_source=deal_value_source,
        win_rate_source=win_rate_source,
        bootstrap=boot,
        # NaN scores (open leads without a score) are never >= a cut-off.
        open_leads_routed=int(np.count_nonzero(open_scores >= boot.choice.threshold)),
        seconds=time.perf_counter() - started,
    )


def _option(name: str) -> str:
    """A setting as both its readers know it: ``--test-days (test_days= in Python)`` (the CLI's
    option names are the settings' with dashes)."""
    return f"--{name.replace('_', '-')} ({name}= in Python)"


def _override(given: float | None, estimate: float | None, name: str, where: str, as_of: datetime,
              why_missing: str) -> tuple[float, str]:
    if given is not None:
        return float(given), "given"
    if estimate is None:
        raise InvalidArgument(
            f"{where}: {why_missing} by {as_of:%Y-%m-%d %H:%M}, so there is no {name} to estimate from history: "
            f"pass {_option(name)}, e.g. the forecast's estimate"
        )
    return float(estimate), "history"


def analyse_leads(
    db_path: str | os.PathLike = DEFAULT_DB,
    *,
    company: str | None = None,
    lock_timeout: float | None = None,
    **settings: Any,
) -> list[LeadSweepResult]:
    """Run the lead threshold study on a workbench database, reading only.

    Parameters
    ----------
    db_path : path
        A loaded and replayed workbench database.
    company : str, optional
        One company; None for each company with leads, one study each.
    lock_timeout : float, optional
        Seconds to wait for another process's write lock.
    **settings
        The fields of :class:`LeadSweepSettings` (``as_of`` is required).

    Returns
    -------
    list of LeadSweepResult
        One per company, in company order.
    """
    try:
        checked = LeadSweepSettings(**settings)
    except TypeError as error:
        raise InvalidArgument(f"unknown setting: {error}") from None
    started_at = datetime.now(timezone.utc)
    with reading(db_path, lock_timeout=lock_timeout) as con:
        check_replayed(con)
        fingerprint = input_fingerprint(con)
        known = companies_with_leads(con)
        if company is not None and company not in known:
            raise InvalidArgument(
                f"company {company!r} has no leads in {db_path}; companies with leads: {', '.join(known) or 'none'}"
            )
        if not known:
            raise InvalidArgument(f"{db_path} has no leads: load an export with leads and run `crm-lab replay`")
        as_of = instant(con, checked.as_of)
        train_cutoff = as_of - timedelta(days=checked.maturity_days + checked.test_days)
        names = [company] if company else known
        for name in names:
            check_as_of_in_data(con, as_of, company=name, doing="sweep")
        inputs = []
        for name in names:
            frames = split_leads(
                read_lead_features(con, as_of=train_cutoff, company=name),
                read_lead_features(con, as_of=as_of, company=name),
                train_cutoff=train_cutoff,
                maturity_days=checked.maturity_days,
            )
            span = con.sql("SELECT min(created_at), max(created_at) FROM lead_history WHERE company_id = ?",
                           params=[name]).fetchall()[0]
            inputs.append((name, {**frames, "economics": read_deal_economics(con, as_of=as_of, company=name),
                                  "lead_span": span}))
    return [
        replace(
            analyse_frames(name, settings=checked, as_of=as_of, train_cutoff=train_cutoff, **frames),
            input_fingerprint=fingerprint,
            started_at=started_at,
        )
        for name, frames in inputs
    ]


def split_leads(
    at_cutoff: pl.DataFrame, at_as_of: pl.DataFrame, *, train_cutoff: datetime, maturity_days: float
) -> dict[str, pl.DataFrame]:
    """Training, swept and open leads from the leads as they stood at the training cut-off and
    at ``as_of`` (frames of :func:`crm_lab.leads.features.read_lead_features`).

    Returns ``train`` (mature at the cut-off), ``test`` (created after the cut-off, mature at
    ``as_of``) and ``open_leads`` (younger than ``maturity_days`` and neither converted nor
    disqualified at ``as_of``). A mature lead's ``converted`` is whether it converted by the end
    of its first ``maturity_days``, whatever its age: a 120-day-old lead does not get four times
    the time to convert of a 30-day-old one. (A lead marked converted with no ``converted_at``
    keeps its mark: when is unknown.)"""
    mature = pl.col("age_days") >= maturity_days
    undecided = ~pl.col("converted") & (pl.col("status").fill_null("open") != "disqualified")
    window = pl.duration(microseconds=round(maturity_days * 86_400e6))
    in_time = pl.col("converted") & (pl.col("converted_at").is_null()
                                     | (pl.col("converted_at") <= pl.col("created_at") + window))
    return {
        "train": at_cutoff.filter(mature).with_columns(in_time.alias("converted")),
        "test": at_as_of.filter(mature & (pl.col("created_at") > train_cutoff)).with_columns(in_time.alias("converted")),
        "open_leads": at_as_of.filter(~mature & undecided),
    }
