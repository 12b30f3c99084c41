"""What a forecast learns from history: pure fit functions over polars frames (no I/O).

Every estimator follows scikit-learn: configure in the constructor, ``fit`` returns ``self``,
learned attributes end in ``_``.

The training rows are the open deals at each pipeline snapshot up to the as-of, labelled with
their *next close* (won, lost or deleted). :func:`label_snapshots` makes the labels and decides
what is known: a close after the as-of is not, so recent rows are *censored*. A censored row is
not dropped (that would keep only the quick closes and bias every rate); instead every row whose
outcome is known is weighted by the inverse of the share of rows that were watched long enough to
see it (inverse probability of censoring weights). The censoring here is administrative (the
as-of cuts every row at a known time), so the weights are exact counts, not a model.

- :class:`WinRateModel`: P(next close is a win, within ``outcome_window_days``) by stage and age
  bucket (optionally by team, rep or territory), beta-binomial shrinkage toward the stage rate,
  and the stage rate toward the company rate.
- :class:`CloseTimingModel`: the close date of a win relative to the expected close date known
  at the snapshot (its *slip*), by stage and (kernel-smoothed) lead time; for a deal already
  past its expected close date, relative to the snapshot day.
- :class:`AmountChangeModel`: won amount / amount at the snapshot, by stage.
- :class:`NewPipelineModel`: wins in a window from deals that were not open at its start (created
  or reopened later): rate by days since the as-of, sizes, seasonality, over-dispersion.
- :class:`ForecastModel`: the four, fitted on one company's history as of an instant.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from crm_lab.contract import DEAL_STAGES_OPEN
from crm_lab.errors import InvalidArgument
from crm_lab.forecast.periods import (
    MISSING_DAY,
    date_days,
    day_date,
    first_day_after,
    instant_days,
    to_instant,
)

OUTCOME_WINDOW_DAYS = 365.0
BY_COLUMNS = {"team": "team", "rep": "owner_rep_id", "territory": "territory_id"}


def _stage_order(stages) -> tuple[str, ...]:
    """Known funnel stages first, in funnel order, then any others alphabetically."""
    present = set(s for s in stages if s is not None)
    known = [s for s in DEAL_STAGES_OPEN if s in present]
    return tuple(known + sorted(present - set(known)))


# ---------------------------------------------------------------------------------------- labels


def label_snapshots(
    snapshots: pl.DataFrame, as_of, *, outcome_window_days: float = OUTCOME_WINDOW_DAYS
) -> pl.DataFrame:
    """Training rows as known at ``as_of``: labels, censoring weights, slips and amount ratios.

    Parameters
    ----------
    snapshots : polars.DataFrame
        Rows of ``snapshot_outcomes.sql`` (``snapshot_at``, ``closed_at``, ``outcome``,
        ``close_amount``, ``amount``, ``expected_close_date``, ``stage``, ...).
    as_of : datetime or str
        Only snapshots at or before it are used, and only closes at or before it are outcomes.
    outcome_window_days : float
        A row's label is "its next close is a win within this many days of the snapshot".

    Returns
    -------
    polars.DataFrame
        The input columns plus ``snapshot_day``, ``known`` (the label is known at as_of),
        ``won`` (0/1), ``weight`` (0 for unknown labels), ``lead_days`` (expected close day -
        snapshot day, -1 when missing), ``slip_days`` (close day - the later of the expected close
        and the snapshot day, for wins) and ``amount_ratio`` (won amount / amount, for wins).
    """
    as_of_at = to_instant(as_of)
    rows = snapshots.filter(pl.col("snapshot_at") <= as_of_at)
    n = rows.height
    as_of_days = float(instant_days(as_of_at))
    t = instant_days(rows["snapshot_at"].to_numpy())
    closed = instant_days(rows["closed_at"].to_numpy()) if n else np.zeros(0)
    known_for = as_of_days - t  # days each row has been watched
    closed_known = ~np.isnan(closed) & (closed <= as_of_days)
    tau = np.where(closed_known, closed - t, np.inf)
    window = float(outcome_window_days)
    resolved_by_close = closed_known & (tau <= window)
    known = resolved_by_close | (known_for >= window)
    outcome = rows["outcome"].to_numpy() if n else np.zeros(0, object)
    won = resolved_by_close & (outcome == "won")
    # A label resolved at time x could be seen only on rows watched for at least x days.
    watched = np.sort(known_for)
    resolved_at = np.where(resolved_by_close, tau, window)
    share_watched = (n - np.searchsorted(watched, resolved_at, side="left")) / max(n, 1)
    weight = np.where(known, 1.0 / np.maximum(share_watched, 1.0 / max(n, 1)), 0.0)

    snapshot_day = first_day_after(rows["snapshot_at"].to_numpy()) if n else np.zeros(0, np.int64)
    ecd = date_days(rows["expected_close_date"].to_numpy()) if n else np.zeros(0, np.int64)
    has_ecd = ecd != MISSING_DAY
    lead = np.where(has_ecd, ecd - snapshot_day, -1)
    reference = np.where(has_ecd, np.maximum(ecd, snapshot_day), snapshot_day)
    close_day = np.floor(np.where(won, closed, 0.0)).astype(np.int64)
    slip = np.where(won, close_day - reference, 0)
    amount = rows["amount"].to_numpy().astype(np.float64) if n else np.zeros(0)
    close_amount = rows["close_amount"].to_numpy().astype(np.float64) if n else np.zeros(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(won & (amount > 0), close_amount / amount, np.nan)
    return rows.with_columns(
        pl.Series("snapshot_day", snapshot_day, pl.Int64),
        pl.Series("known", known, pl.Boolean),
        pl.Series("won", won.astype(np.int8), pl.Int8),
        pl.Series("weight", weight, pl.Float64),
        pl.Series("lead_days", lead, pl.Int64),
        pl.Series("slip_days", slip, pl.Int64),
        pl.Series("amount_ratio", ratio, pl.Float64),
    ).with_columns(pl.when(pl.col("won") == 1).then(pl.col("slip_days")).alias("slip_days"))


# ------------------------------------------------------------------------------------- win rates


def age_bucket_labels(edges) -> list[str]:
    """'0-30', '30-90', ..., '180+' for edges (30, 90, 180)."""
    bounds = [0, *edges]
    return [f"{int(a)}-{int(b)}" for a, b in zip(bounds[:-1], bounds[1:])] + [f"{int(bounds[-1])}+"]


def _weighted_cells(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Per cell: rows, distinct deals, the censoring-weighted win share, and effective wins
    (that share times the deals: snapshot rows of one deal are one outcome, not many)."""
    return frame.group_by(keys).agg(
        pl.len().alias("rows"),
        pl.col("deal_id").n_unique().alias("deals"),
        ((pl.col("weight") * pl.col("won")).sum() / pl.col("weight").sum()).alias("observed_rate"),
    ).with_columns((pl.col("observed_rate") * pl.col("deals")).alias("wins"))


def _shrink(cells: pl.DataFrame, prior_rate: pl.Expr, strength: float) -> pl.DataFrame:
    """Beta-binomial posterior mean with a prior of ``strength`` deals at ``prior_rate``."""
    return cells.with_columns(
        ((pl.col("wins") + strength * prior_rate) / (pl.col("deals") + strength)).alias("rate")
    )


class WinRateModel:
    """P(a deal's next close is a win) by stage and age, shrunk where data is thin.

    The rate of a cell (stage x age bucket [x group]) is the beta-binomial posterior mean with a
    prior of ``prior_strength`` deals at the rate one level up: cell -> stage -> company. Counts
    are distinct deals (a deal's weekly snapshot rows share one outcome), rates are censoring-
    weighted shares of snapshot rows.

    Parameters
    ----------
    age_buckets : sequence of float
        Edges of the age buckets in days since the deal was created.
    by : {None, "team", "rep", "territory"}
        An optional extra split (team is the sales segment in the generated worlds).
    prior_strength : float
        Pseudo-deals of the prior at each level.

    Attributes
    ----------
    stages_ : tuple of str
    company_rate_ : float
    stage_rates_ : polars.DataFrame
        stage, rows, deals, observed_rate, wins, rate, logit_sd.
    cell_rates_ : polars.DataFrame
        stage, age_bucket, rows, deals, observed_rate, wins, rate.
    group_rates_ : polars.DataFrame or None
        With ``by``: stage, age_bucket, group, ..., rate.

    Examples
    --------
    >>> import polars as pl
    >>> rows = pl.DataFrame({"deal_id": ["a", "b", "c", "d"], "stage": ["proposal"] * 4,
    ...                      "age_days": [5.0, 8.0, 40.0, 50.0], "won": [1, 0, 1, 1],
    ...                      "weight": [1.0] * 4})
    >>> model = WinRateModel(prior_strength=0.0).fit(rows)
    >>> round(model.company_rate_, 2), model.predict_proba(rows).round(2).tolist()
    (0.75, [0.5, 0.5, 1.0, 1.0])
    """

    def __init__(self, *, age_buckets=(30, 90, 180), by: str | None = None, prior_strength: float = 10.0):
        self.age_buckets = tuple(age_buckets)
        self.by = by
        self.prior_strength = prior_strength

    def _with_bucket(self, frame: pl.DataFrame) -> pl.DataFrame:
        edges = np.asarray(self.age_buckets, dtype=np.float64)
        ages = np.nan_to_num(frame["age_days"].to_numpy().astype(np.float64), nan=0.0)
        labels = np.asarray(age_bucket_labels(self.age_buckets))
        return frame.with_columns(pl.Series("age_bucket", labels[np.searchsorted(edges, ages, side="right")]))

    def fit(self, labels: pl.DataFrame) -> WinRateModel:
        if self.by is not None and self.by not in BY_COLUMNS:
            raise InvalidArgument(f"by must be None or one of {', '.join(BY_COLUMNS)}, got {self.by!r}")
        if self.prior_strength < 0:
            raise InvalidArgument(f"prior_strength must be >= 0, got {self.prior_strength!r}")
        rows = self._with_bucket(labels.filter(pl.col("weight") > 0))
        if rows.is_empty() or float((rows["weight"] * rows["won"]).sum()) <= 0:
            raise InvalidArgument("history has no won deal with a known outcome: cannot learn win rates (pick a later as_of)")
        m = float(self.prior_strength)
        self.company_rate_ = float((rows["weight"] * rows["won"]).sum() / rows["weight"].sum())
        stages = _weighted_cells(rows, ["stage"])
        stages = _shrink(stages, pl.lit(self.company_rate_), m)
        # Posterior spread of the stage rate, in log-odds: what a trial draws to share across deals.
        stages = stages.with_columns(
            (1.0 / (pl.col("rate") * (1 - pl.col("rate")) * (pl.col("deals") + m + 1)).sqrt()).alias("logit_sd")
        )
        self.stages_ = _stage_order(stages["stage"].to_list())
        order = {s: i for i, s in enumerate(self.stages_)}
        self.stage_rates_ = stages.sort(pl.col("stage").replace_strict(order, return_dtype=pl.Int64))
        cells = _weighted_cells(rows, ["stage", "age_bucket"]).join(
            self.stage_rates_.select("stage", pl.col("rate").alias("stage_rate")), on="stage"
        )
        self.cell_rates_ = _shrink(cells, pl.col("stage_rate"), m).drop("stage_rate").sort("stage", "age_bucket")
        self.group_rates_ = None
        if self.by is not None:
            column = BY_COLUMNS[self.by]
            groups = _weighted_cells(rows.with_columns(pl.col(column).alias("group")), ["stage", "age_bucket", "group"])
            groups = groups.join(
                self.cell_rates_.select("stage", "age_bucket", pl.col("rate").alias("cell_rate")),
                on=["stage", "age_bucket"],
            )
            self.group_rates_ = _shrink(groups, pl.col("cell_rate"), m).drop("cell_rate").sort("stage", "age_bucket", "group")
        return self

    def predict_proba(self, deals: pl.DataFrame) -> np.ndarray:
        """Win probability of each deal (``stage``, ``age_days`` and the ``by`` column): the
        most specific fitted cell, else its stage, else the company rate."""
        frame = self._with_bucket(deals.select("stage", "age_days", *([BY_COLUMNS[self.by]] if self.by else [])))
        frame = frame.with_row_index("_row")
        frame = frame.join(self.stage_rates_.select("stage", pl.col("rate").alias("_stage")), on="stage", how="left")
        frame = frame.join(
            self.cell_rates_.select("stage", "age_bucket", pl.col("rate").alias("_cell")),
            on=["stage", "age_bucket"], how="left",
        )
        rate = pl.coalesce("_cell", "_stage", pl.lit(self.company_rate_))
        if self.group_rates_ is not None:
            frame = frame.with_columns(pl.col(BY_COLUMNS[self.by]).alias("group")).join(
                self.group_rates_.select("stage", "age_bucket", "group", pl.col("rate").alias("_group")),
                on=["stage", "age_bucket", "group"], how="left",
            )
            rate = pl.coalesce("_group", "_cell", "_stage", pl.lit(self.company_rate_))
        return frame.sort("_row").select(rate.alias("p"))["p"].to_numpy().astype(np.float64)

    def new_deal_rate(self) -> float:
        """The win probability of a deal just created: the first funnel stage's youngest age
        cell (else that stage's rate): what a deal of pipeline not yet open starts with."""
        first = self.stages_[0]
        youngest = age_bucket_labels(self.age_buckets)[0]
        cell = self.cell_rates_.filter((pl.col("stage") == first) & (pl.col("age_bucket") == youngest))
        return float(cell["rate"][0]) if cell.height else float(self.stage_rate([first])[0])

    def capped_multiplier(self, multiplier: float) -> float:
        """What a win-rate multiplier does to the rate of new-pipeline wins: the win probability
        of a new deal (:meth:`new_deal_rate`, ``p``) becomes ``min(multiplier * p, 1)``, as an open
        deal's is capped at 1, so the wins scale by ``min(multiplier * p, 1) / p``."""
        p = self.new_deal_rate()
        return min(multiplier * p, 1.0) / p if p > 0 else multiplier

    def stage_rate(self, stages) -> np.ndarray:
        """The fitted stage rate of each stage (the company rate for a stage never seen)."""
        lookup = dict(zip(self.stage_rates_["stage"].to_list(), self.stage_rates_["rate"].to_list()))
        return np.array([lookup.get(s, self.company_rate_) for s in stages], dtype=np.float64)

    def stage_logit_sd(self) -> np.ndarray:
        """Posterior standard deviation of each stage rate in log-odds, aligned with ``stages_``."""
        return self.stage_rates_["logit_sd"].to_numpy().astype(np.float64)


# ------------------------------------------------------------------------------------ close dates


def _weighted_pmf(values: np.ndarray, weights: np.ndarray, start: int, size: int) -> np.ndarray:
    pmf = np.bincount(values - start, weights=weights, minlength=size)[:size].astype(np.float64)
    total = pmf.sum()
    return pmf / total if total > 0 else pmf


class CloseTimingModel:
    """When a win closes: its slip, the close day minus the expected close day known at the
    snapshot (for a deal already past that day, minus the snapshot day), by stage and lead time
    (expected close day - snapshot day).

    The slip distribution at each lead (a whole number of days in ``lead_range``) pools the
    censoring-weighted wins of the stage with a Gaussian kernel over their leads
    (``lead_bandwidth_days``): a deal 29 days from its expected close learns from wins seen 22 to
    36 days out, not from a bucket whose edge it may sit on. A win seen further out is moved by
    how little closes follow the expected close date in this history (``follows_ecd_``), so the
    pooling does not shift closes. That distribution is mixed with
    ``prior_strength`` deals' worth of the stage's (over all leads), which is mixed likewise with
    the company's. At prediction the draw is conditioned on the deal being open at the as-of (the
    slip is at least as-of day - reference day), so a deal closes only after the as-of, in the
    window or after it.

    Parameters
    ----------
    lead_bandwidth_days : float
        Standard deviation of the kernel over leads.
    lead_range : (int, int)
        Leads outside it are taken at its ends.
    prior_strength : float
        Pseudo-deals of the prior distribution.

    Attributes
    ----------
    grid_start_ : int
        The slip (days) of the first column of the distributions.
    lead_start_ : int
    cdf_ : numpy.ndarray, shape (n_stages, n_leads, n_days)
        P(slip <= grid_start_ + j) for each stage and lead.
    fallback_cdf_ : numpy.ndarray, shape (n_stages + 1, n_days)
        Each stage over all leads, then the company (for a stage never seen).
    follows_ecd_ : dict
        stage -> how many days the time to close moves per day of lead (0: the expected close
        date says nothing, 1: closes follow it), estimated on deals not yet due.
    counts_ : polars.DataFrame
        stage, wins, deals.
    stages_ : tuple of str
    """

    def __init__(self, *, lead_bandwidth_days: float = 7.0, lead_range=(-180, 365), prior_strength: float = 10.0):
        self.lead_bandwidth_days = lead_bandwidth_days
        self.lead_range = tuple(lead_range)
        self.prior_strength = prior_strength

    def fit(self, labels: pl.DataFrame) -> CloseTimingModel:
        wins = labels.filter((pl.col("weight") > 0) & (pl.col("won") == 1))
        if wins.is_empty():
            raise InvalidArgument("history has no won deal with a known close: cannot learn close dates (pick a later as_of)")
        if self.lead_bandwidth_days <= 0:
            raise InvalidArgument(f"lead_bandwidth_days must be > 0, got {self.lead_bandwidth_days!r}")
        slip = wins["slip_days"].to_numpy().astype(np.int64)
        weight = wins["weight"].to_numpy()
        stage = wins["stage"].to_numpy()
        deal = wins["deal_id"].to_numpy()
        lo, hi = (int(v) for v in self.lead_range)
        self.lead_start_ = lo
        lead = np.clip(wins["lead_days"].to_numpy().astype(np.int64), lo, hi) - lo
        n_leads = hi - lo + 1
        self.grid_start_ = int(slip.min())
        size = int(slip.max()) - self.grid_start_ + 1
        m = float(self.prior_strength)
        company = _weighted_pmf(slip, weight, self.grid_start_, size)
        self.stages_ = _stage_order(stage.tolist())
        raw_lead = wins["lead_days"].to_numpy().astype(np.float64)
        follows = [self._follows(raw_lead[stage == s], slip[stage == s], weight[stage == s]) for s in self.stages_]
        self.follows_ecd_ = dict(zip(self.stages_, follows))
        tables, fallbacks, records = [], [], []
        for s in self.stages_:
            here = stage == s
            deals = len(set(deal[here]))
            raw = _weighted_pmf(slip[here], weight[here], self.grid_start_, size)
            stage_pmf = (deals * raw + m * company) / (deals + m)
            fallbacks.append(stage_pmf)
            # weight per lead and slip, smoothed over leads; deals per unit of weight turns the
            # smoothed weight at a lead into an effective number of deals
            mass = np.zeros((n_leads, size))
            np.add.at(mass, (lead[here], slip[here] - self.grid_start_), weight[here])
            smooth = self._smooth(mass, follows[len(tables)], -lo)
            total = smooth.sum(axis=1, keepdims=True)
            deals_at = total * deals / weight[here].sum()
            with np.errstate(invalid="ignore", divide="ignore"):
                local = np.where(total > 0, smooth / total, 0.0)
            tables.append((deals_at * local + m * stage_pmf[None, :]) / (deals_at + m) if m > 0
                          else np.where(total > 0, local, stage_pmf[None, :]))
            records.append((s, int(here.sum()), deals))
        fallbacks.append(company)
        self.cdf_ = self._normalised(np.cumsum(np.stack(tables), axis=2))
        self.fallback_cdf_ = self._normalised(np.cumsum(np.vstack(fallbacks), axis=1))
        self.counts_ = pl.DataFrame(records, schema={"stage": pl.String, "wins": pl.Int64, "deals": pl.Int64}, orient="row")
        return self

    @staticmethod
    def _follows(lead: np.ndarray, slip: np.ndarray, weight: np.ndarray) -> float:
        """How far the time to close moves with the expected close date: the weighted slope of
        days to close on lead over deals not yet due (lead 0 to 120), clipped to [0, 1]; 1 when
        there are too few to tell."""
        future = (lead >= 0) & (lead <= 120)
        if future.sum() < 30:
            return 1.0
        x, y, w = lead[future], lead[future] + slip[future], weight[future]
        x_mean = np.average(x, weights=w)
        spread = np.average((x - x_mean) ** 2, weights=w)
        if spread <= 0:
            return 1.0
        slope = np.average((x - x_mean) * (y - np.average(y, weights=w)), weights=w) / spread
        return float(np.clip(slope, 0.0, 1.0))

    def _smooth(self, mass: np.ndarray, follows: float, zero: int) -> np.ndarray:
        """Pool each lead's slips with those of nearby leads (Gaussian weights). For deals not yet
        due, a win seen d days further out closes ``(1 - follows) * d`` days later relative to its
        expected close (its time to close moves only ``follows`` days per day of lead); past-due
        deals are pooled as they are."""
        h = float(self.lead_bandwidth_days)
        radius = int(np.ceil(3 * h))
        n = len(mass)
        plain = np.zeros_like(mass)
        sheared = np.zeros_like(mass)
        for d in range(-radius, radius + 1):  # target lead - source lead
            k = np.exp(-0.5 * (d / h) ** 2)
            lo_t, hi_t = max(0, d), n + min(0, d)
            if lo_t >= hi_t:
                continue
            source = mass[lo_t - d: hi_t - d]
            plain[lo_t:hi_t] += k * source
            shift = int(round((1.0 - follows) * d))  # slips move left by the shift
            if shift == 0:
                sheared[lo_t:hi_t] += k * source
            elif shift > 0:
                sheared[lo_t:hi_t, :-shift] += k * source[:, shift:]
                sheared[lo_t:hi_t, 0] += k * source[:, :shift].sum(axis=1)
            else:
                sheared[lo_t:hi_t, -shift:] += k * source[:, :shift]
                sheared[lo_t:hi_t, -1] += k * source[:, shift:].sum(axis=1)
        out = sheared
        out[:zero] = plain[:zero]
        return out

    @staticmethod
    def _normalised(cdf: np.ndarray) -> np.ndarray:
        last = cdf[..., -1:]
        return np.minimum(np.divide(cdf, last, out=np.zeros_like(cdf), where=last > 0), 1.0)

    def _cdf_at(self, stage_index: np.ndarray, lead_index: np.ndarray, slip: np.ndarray) -> np.ndarray:
        """P(slip <= ``slip``) for deals of the given stage rows (-1: unknown stage) and leads."""
        column = np.asarray(slip, dtype=np.int64) - self.grid_start_
        width = self.cdf_.shape[2]
        clipped = np.clip(column, 0, width - 1)
        known = stage_index >= 0
        values = np.where(
            known,
            self.cdf_[np.maximum(stage_index, 0), lead_index, clipped],
            self.fallback_cdf_[-1][clipped],
        )
        return np.where(column < 0, 0.0, values)

    def close_cdf(self, stages, expected_close_day: np.ndarray, as_of_day: int, edges: np.ndarray,
                  shift_days: float | np.ndarray = 0) -> np.ndarray:
        """P(a win closes by the last day of each period), per deal: shape (n, n_periods).

        ``expected_close_day`` uses :data:`crm_lab.forecast.periods.MISSING_DAY` for a missing
        date. ``shift_days`` moves every close later (earlier when negative; a close cannot move
        before the as-of day).
        """
        ecd = np.asarray(expected_close_day, dtype=np.int64)
        has_ecd = ecd != MISSING_DAY
        lead = np.where(has_ecd, ecd - as_of_day, -1)
        reference = np.where(has_ecd, np.maximum(ecd, as_of_day), as_of_day)
        index = {s: i for i, s in enumerate(self.stages_)}
        stage_index = np.array([index.get(s, -1) for s in stages], dtype=np.int64)
        lo, hi = self.lead_range
        lead_index = np.clip(lead, lo, hi) - lo
        shift = np.rint(np.broadcast_to(np.asarray(shift_days, dtype=np.float64), ecd.shape)).astype(np.int64)
        below = self._cdf_at(stage_index, lead_index, as_of_day - reference - 1)
        rest = 1.0 - below
        # All of the mass before the as-of (a deal later than any seen): the company's
        # distribution, counted from the as-of, takes over.
        stuck = rest <= 1e-12
        if stuck.any():
            stage_index = np.where(stuck, -1, stage_index)
            reference = np.where(stuck, as_of_day, reference)
            below = np.where(stuck, self._cdf_at(stage_index, lead_index, np.full_like(reference, -1)), below)
            rest = np.maximum(1.0 - below, 1e-12)
        last_days = np.asarray(edges[1:], dtype=np.int64) - 1
        slip_at_end = last_days[None, :] - reference[:, None] - shift[:, None]
        periods = len(last_days)
        cdf = self._cdf_at(np.repeat(stage_index[:, None], periods, axis=1),
                           np.repeat(lead_index[:, None], periods, axis=1), slip_at_end)
        out = np.clip((cdf - below[:, None]) / rest[:, None], 0.0, 1.0)
        out[:, last_days < as_of_day] = 0.0
        return np.maximum.accumulate(out, axis=1)


# ---------------------------------------------------------------------------------------- amounts


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Quantiles of a weighted sample (the smallest value whose cumulative weight reaches p)."""
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    cumulative /= cumulative[-1]
    index = np.minimum(np.searchsorted(cumulative, probabilities, side="left"), len(values) - 1)
    return values[order][index]


class AmountChangeModel:
    """Won amount / amount at the snapshot, by stage: a table of quantiles per stage.

    A stage's sample is mixed with ``prior_strength`` deals' worth of the company's sample
    before its quantiles are taken.

    Parameters
    ----------
    quantiles : int
        Quantiles per stage (a power of two up to 65536).
    prior_strength : float

    Attributes
    ----------
    stages_ : tuple of str
    quantiles_ : numpy.ndarray, shape (n_stages + 1, quantiles)
        Ratio quantiles at probabilities (j + 0.5) / quantiles; the last row is the company's.
    counts_ : polars.DataFrame
        stage, wins, deals, mean_ratio.
    """

    def __init__(self, *, quantiles: int = 256, prior_strength: float = 10.0):
        self.quantiles = quantiles
        self.prior_strength = prior_strength

    def fit(self, labels: pl.DataFrame) -> AmountChangeModel:
        k = int(self.quantiles)
        if k < 1 or k > 65536 or k & (k - 1):
            raise InvalidArgument(f"quantiles must be a power of two up to 65536, got {self.quantiles!r}")
        wins = labels.filter(
            (pl.col("weight") > 0) & (pl.col("won") == 1) & pl.col("amount_ratio").is_finite() & (pl.col("amount_ratio") > 0)
        )
        probabilities = (np.arange(k) + 0.5) / k
        self.stages_ = _stage_order(wins["stage"].to_list())
        if wins.is_empty():
            self.quantiles_ = np.ones((1, k))
            self.counts_ = pl.DataFrame(schema={"stage": pl.String, "wins": pl.Int64, "deals": pl.Int64, "mean_ratio": pl.Float64})
            return self
        ratio = wins["amount_ratio"].to_numpy()
        weight = wins["weight"].to_numpy()
        stage = wins["stage"].to_numpy()
        deal = wins["deal_id"].to_numpy()
        m = float(self.prior_strength)
        company_w = weight / weight.sum()
        rows, records = [], []
        for s in self.stages_:
            here = stage == s
            deals = len(set(deal[here]))
            w = np.concatenate([deals * weight[here] / weight[here].sum(), m * company_w])
            v = np.concatenate([ratio[here], ratio])
            rows.append(weighted_quantiles(v, w, probabilities))
            records.append((s, int(here.sum()), deals, float(np.average(ratio[here], weights=weight[here]))))
        rows.append(weighted_quantiles(ratio, weight, probabilities))
        self.quantiles_ = np.vstack(rows)
        self.counts_ = pl.DataFrame(
            records, schema={"stage": pl.String, "wins": pl.Int64, "deals": pl.Int64, "mean_ratio": pl.Float64}, orient="row"
        )
        return self

    def rows_for(self, stages) -> np.ndarray:
        """The ``quantiles_`` row of each deal's stage (the company row when unknown)."""
        index = {s: i for i, s in enumerate(self.stages_)}
        return np.array([index.get(s, len(self.quantiles_) - 1) for s in stages], dtype=np.int64)


# ---------------------------------------------------------------------------------- new pipeline


class NewPipelineModel:
    """Wins in a window from deals not open at its start: created (or reopened) after the as-of
    and won before the window ends.

    For as-of points every ``grid_step_days`` back over ``lookback_days``, every later win whose
    open run began after the point is a new-pipeline win at an offset (days since the point). The
    rate per day at each offset is the count over the points that had watched that long, pooled
    by week; past the longest watched offset it stays at the last weeks' level. A monthly
    seasonal index (shrunk toward 1 by ``season_prior`` wins) scales it. Counts per trial are
    Poisson with a gamma-distributed rate: its shape combines the over-dispersion seen between
    91-day windows and the uncertainty of a rate learned from a finite number of wins.

    Parameters
    ----------
    lookback_days : float
    grid_step_days : int
    max_offset_days : int
        The longest window the model can cover.
    seasonality : bool
    season_prior : float

    Attributes
    ----------
    daily_rate_ : numpy.ndarray, shape (max_offset_days,)
        Expected new-pipeline wins per day, by days since the as-of.
    season_index_ : numpy.ndarray, shape (12,)
        Multiplier by calendar month (January first), relative to the lookback's average.
    gamma_shape_ : float
        Shape of the per-trial rate multiplier (mean 1); ``inf`` for none.
    sizes_ : polars.DataFrame
        amount, weight, owner_rep_id, team, territory_id (and currency, when the wins carry it):
        the wins whose sizes are resampled.
    wins_seen_ : int
        Distinct new-pipeline wins behind the rate.
    """

    def __init__(self, *, lookback_days: float = 365.0, grid_step_days: int = 7, max_offset_days: int = 400,
                 seasonality: bool = True, season_prior: float = 20.0):
        self.lookback_days = lookback_days
        self.grid_step_days = grid_step_days
        self.max_offset_days = max_offset_days
        self.seasonality = seasonality
        self.season_prior = season_prior

    def fit(self, wins: pl.DataFrame, as_of, *, history_start) -> NewPipelineModel:
        as_of_at = to_instant(as_of)
        as_of_days = float(instant_days(as_of_at))
        wins = wins.filter(pl.col("closed_at") <= as_of_at)
        start_days = float(instant_days(to_instant(history_start, "history_start")))
        first_point = max(start_days, as_of_days - float(self.lookback_days))
        step = float(self.grid_step_days)
        points = as_of_days - step * np.arange(int(max(0.0, as_of_days - first_point) // step) + 1)
        points = np.sort(points)
        span = int(self.max_offset_days)
        closed = instant_days(wins["closed_at"].to_numpy()) if wins.height else np.zeros(0)
        began = instant_days(wins["run_start"].to_numpy()) if wins.height else np.zeros(0)
        # Each win is new pipeline for the points before its run began, at most `span` days back.
        lo = np.searchsorted(points, closed - span, side="left")
        hi = np.searchsorted(points, began, side="left")
        count = np.maximum(hi - lo, 0)
        win_index = np.repeat(np.arange(len(closed)), count)
        point_index = np.repeat(lo, count) + (np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count))
        offset = np.floor(closed[win_index] - points[point_index]).astype(np.int64)
        keep = (offset >= 0) & (offset < span)
        win_index, point_index, offset = win_index[keep], point_index[keep], offset[keep]
        counts = np.bincount(offset, minlength=span)[:span].astype(np.float64)
        watched = as_of_days - points  # days each point has been watched
        exposure = np.array([(watched >= d + 1).sum() for d in range(span)], dtype=np.float64)
        self.daily_rate_ = self._pooled_rate(counts, exposure)

        quarter = 91
        short = offset < quarter
        self.wins_seen_ = int(len(np.unique(win_index[short])))
        # Over-dispersion: counts in the 91 days after each fully watched point.
        full = np.flatnonzero(watched >= quarter)
        per_point = np.bincount(point_index[short], minlength=len(points))[full].astype(np.float64)
        dispersion_inv = 0.0
        if len(per_point) >= 8 and per_point.mean() > 0:
            mean, var = per_point.mean(), per_point.var(ddof=1)
            dispersion_inv = max(var - mean, 0.0) / mean**2
        uncertainty_inv = 1.0 / max(self.wins_seen_, 1)
        self.gamma_shape_ = 1.0 / (dispersion_inv + uncertainty_inv)

        weights = np.bincount(win_index[short], minlength=len(closed)).astype(np.float64)
        used = weights > 0
        kept = ["amount", "owner_rep_id", "team", "territory_id", *(["currency"] if "currency" in wins.columns else [])]
        self.sizes_ = wins.select(kept).with_columns(
            pl.Series("weight", weights)
        ).filter(pl.Series(used))
        self.season_index_ = self._season_index(closed, start_days, as_of_days) if self.seasonality else np.ones(12)
        self._lookback_mean = self._mean_season(first_point, as_of_days)
        return self

    def _pooled_rate(self, counts: np.ndarray, exposure: np.ndarray) -> np.ndarray:
        week = 7
        rate = np.zeros(len(counts))
        last = 0.0
        tail = []
        for start in range(0, len(counts), week):
            part = slice(start, start + week)
            if exposure[part].sum() >= 1 and exposure[part].min() > 0:
                last_rate = counts[part].sum() / exposure[part].sum()
                rate[part] = last_rate
                tail = (tail + [last_rate])[-4:]
                last = float(np.mean(tail))
            else:
                rate[part] = last
        return rate

    def _season_index(self, closed: np.ndarray, start_days: float, as_of_days: float) -> np.ndarray:
        """Wins per calendar month against a flat rate, over whole months from 90 days after the
        history starts (a young pipeline books less), shrunk toward 1."""
        first = day_date(int(math.ceil(start_days + 90)))
        month = dt.date(first.year, first.month, 1)
        if month < first:
            month = dt.date(month.year + (month.month == 12), month.month % 12 + 1, 1)
        observed, days = np.zeros(12), np.zeros(12)
        day_of = (closed - 0.0).astype(np.float64)
        while True:
            following = dt.date(month.year + (month.month == 12), month.month % 12 + 1, 1)
            lo, hi = (month - dt.date(1970, 1, 1)).days, (following - dt.date(1970, 1, 1)).days
            if hi > as_of_days:
                break
            observed[month.month - 1] += ((day_of >= lo) & (day_of < hi)).sum()
            days[month.month - 1] += hi - lo
            month = following
        if days.sum() < 180:
            return np.ones(12)
        per_day = observed.sum() / days.sum()
        expected = per_day * days
        return (observed + self.season_prior) / (expected + self.season_prior)

    def _mean_season(self, lo_days: float, hi_days: float) -> float:
        days = np.arange(int(math.floor(lo_days)), int(math.ceil(hi_days)))
        if len(days) == 0:
            return 1.0
        months = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12
        return float(self.season_index_[months].mean())

    def expected_counts(self, as_of_day: int, edges: np.ndarray, shift_days: float = 0.0) -> np.ndarray:
        """Expected new-pipeline wins in each period ``[edges[k], edges[k+1])`` after the as-of
        day; ``shift_days`` delays them (a positive shift), or brings them forward (negative):
        a day then gets the rate of a later offset, never of one past the model's last, which
        is where the rate already stays flat (its long-run level), so any negative shift is
        accepted and closes never move before the as-of."""
        days = np.arange(int(edges[0]), int(edges[-1]))
        span = len(self.daily_rate_)
        if len(days) and days[-1] - as_of_day >= span:
            raise InvalidArgument(
                f"the window runs {int(days[-1] - as_of_day)} days past the as-of; the new-pipeline model covers {span}: "
                "pick a shorter horizon"
            )
        offset = days - as_of_day - int(round(shift_days))
        inside = (offset >= 0) & (days >= as_of_day)
        rate = np.where(inside, self.daily_rate_[np.clip(offset, 0, span - 1)], 0.0)
        months = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12
        rate = rate * self.season_index_[months] / self._lookback_mean
        period = np.searchsorted(edges, days, side="right") - 1
        return np.bincount(period, weights=rate, minlength=len(edges) - 1)[: len(edges) - 1]


# ------------------------------------------------------------------------------------ the bundle


@dataclass(frozen=True)
class ModelOptions:
    """Settings of the four estimators (see each class)."""

    outcome_window_days: float = OUTCOME_WINDOW_DAYS
    age_buckets: tuple = (30, 90, 180)
    by: str | None = None
    prior_strength: float = 10.0
    lead_bandwidth_days: float = 7.0
    amount_quantiles: int = 256
    lookback_days: float = 365.0
    seasonality: bool = True

    @classmethod
    def from_dict(cls, values: dict | None) -> ModelOptions:
        values = dict(values or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise InvalidArgument(f"model option {unknown[0]!r} is unknown; known: {', '.join(sorted(known))}")
        for key in ("age_buckets",):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


class NoWonDeal(InvalidArgument):
    """A company has no won deal with a known outcome at or before the as-of, so its win rates
    cannot be learned. ``company_id`` and ``as_of`` say which; the forecast and backtest entry
    points add the earliest as-of that would work (:func:`crm_lab.forecast.run.earliest_usable_as_of`)."""

    what = "has no won deal with a known outcome"

    def __init__(self, company_id: str, as_of: dt.datetime, detail: str = ""):
        self.company_id = company_id
        self.as_of = as_of
        super().__init__(
            f"as_of {as_of.isoformat()}: company {company_id} {self.what} at or before it{detail}: "
            "cannot learn win rates (pick a later as_of)"
        )


class NoPipelineHistory(NoWonDeal):
    """A company has no pipeline snapshot at or before the as-of (so no win to learn from either)."""

    what = "has no pipeline history"


@dataclass
class ForecastModel:
    """The four estimators, fitted on one company's history as known at ``as_of``.

    Examples
    --------
    >>> model = ForecastModel().fit(history, "2025-04-01")  # doctest: +SKIP
    >>> model.win_rates_.stage_rates_  # doctest: +SKIP
    """

    options: ModelOptions = field(default_factory=ModelOptions)

    def fit(self, history, as_of) -> ForecastModel:
        """Fit on a :class:`crm_lab.forecast.data.CompanyHistory` (only what was known at
        ``as_of`` is used)."""
        o = self.options
        as_of_at = to_instant(as_of)
        if as_of_at > history.known_until:
            raise InvalidArgument(
                f"as_of {as_of_at.isoformat()} is after the history read ({history.known_until.isoformat()})"
            )
        first = history.first_snapshot_at
        if first is None or first > as_of_at:
            since = f" (its first snapshot is {first.isoformat()})" if first is not None else ""
            raise NoPipelineHistory(history.company_id, as_of_at, since)
        self.company_id_ = history.company_id
        self.as_of_ = as_of_at
        self.labels_ = label_snapshots(history.snapshots, as_of_at, outcome_window_days=o.outcome_window_days)
        if float((self.labels_["weight"] * self.labels_["won"]).sum()) <= 0:
            raise NoWonDeal(history.company_id, as_of_at)
        self.win_rates_ = WinRateModel(age_buckets=o.age_buckets, by=o.by, prior_strength=o.prior_strength).fit(self.labels_)
        self.close_timing_ = CloseTimingModel(lead_bandwidth_days=o.lead_bandwidth_days, prior_strength=o.prior_strength).fit(self.labels_)
        self.amount_change_ = AmountChangeModel(quantiles=o.amount_quantiles, prior_strength=o.prior_strength).fit(self.labels_)
        self.new_pipeline_ = NewPipelineModel(lookback_days=o.lookback_days, seasonality=o.seasonality).fit(
            history.wins, as_of_at, history_start=first
        )
        return self

    def describe(self) -> dict:
        """The learned numbers worth keeping with a run (JSON-ready)."""
        stages = self.win_rates_.stage_rates_
        return {
            "company_rate": round(self.win_rates_.company_rate_, 6),
            "stage_rates": {
                s: {"rate": round(r, 6), "deals": int(d), "rows": int(n)}
                for s, r, d, n in zip(stages["stage"], stages["rate"], stages["deals"], stages["rows"])
            },
            "close_follows_expected_date": {k: round(v, 4) for k, v in self.close_timing_.follows_ecd_.items()},
            "new_pipeline_wins_per_30_days": round(float(self.new_pipeline_.daily_rate_[-30:].sum()), 4),
            "new_pipeline_gamma_shape": round(float(self.new_pipeline_.gamma_shape_), 4),
            "training_rows": int(self.labels_.height),
            "known_rows": int(self.labels_["known"].sum()),
        }
