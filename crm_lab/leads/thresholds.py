"""The exact threshold sweep: every distinct score as a cut-off, from one sort and cumulative sums.

A lead is routed to sales when its score is ``>= threshold``. Leads with equal scores are routed
together, so the cut-offs are the distinct scores, exactly as scikit-learn's
``precision_recall_curve`` and ``roc_curve`` (with ``drop_intermediate=False``) count them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from crm_lab.errors import InvalidArgument
from crm_lab.leads import _checks

OBJECTIVES = ("profit", "f_beta", "conversions")

# Columns of a sweep, in order. The money columns value each observed conversion at the expected
# revenue of a converted lead (deal value x win rate), so they are expectations given the
# conversions, not booked amounts.
SWEEP_COLUMNS = (
    "threshold",
    "routed",
    "tp",
    "fp",
    "precision",
    "recall",
    "fpr",
    "f1",
    "lift",
    "expected_conversions",
    "workload_hours",
    "within_capacity",
    "cost",
    "pipeline",
    "revenue",
    "profit",
)


@dataclass(frozen=True)
class RoutingEconomics:
    """Money and capacity of working leads.

    Parameters
    ----------
    hours_per_lead : float
        SDR hours spent on each routed lead.
    capacity_hours : float or None
        SDR hours available for the swept leads; None for no limit.
    cost_per_lead : float
        Cost of working one routed lead (hours x loaded rate, tools, ...).
    deal_value : float
        Value of a won deal from a converted lead (e.g. the mean won amount).
    win_rate : float
        Share of converted leads' deals that are won.
    """

    hours_per_lead: float = 1.0
    capacity_hours: float | None = None
    cost_per_lead: float = 0.0
    deal_value: float = 0.0
    win_rate: float = 1.0

    def __post_init__(self) -> None:
        _checks.number("hours_per_lead", self.hours_per_lead)
        _checks.number("capacity_hours", self.capacity_hours, allow_none=True)
        _checks.number("cost_per_lead", self.cost_per_lead)
        _checks.number("deal_value", self.deal_value)
        _checks.number("win_rate", self.win_rate, maximum=1.0)

    @property
    def revenue_per_conversion(self) -> float:
        return self.deal_value * self.win_rate

    @property
    def capacity_leads(self) -> float:
        """How many leads the capacity can work (infinite without a limit or with free leads)."""
        if self.capacity_hours is None or self.hours_per_lead == 0:
            return math.inf
        return self.capacity_hours / self.hours_per_lead


@dataclass(frozen=True)
class SortedLeads:
    """Leads in descending score order, cut into groups of equal scores."""

    thresholds: np.ndarray  # the distinct scores, descending
    ends: np.ndarray  # position of each group's last lead in the sorted order
    converted: np.ndarray  # outcomes in sorted order
    probabilities: np.ndarray | None  # in sorted order

    @property
    def leads(self) -> int:
        return len(self.converted)


def sort_leads(scores: np.ndarray, converted: np.ndarray, probabilities: np.ndarray | None = None) -> SortedLeads:
    """Sort once (descending) and find the tie groups; inputs must already be checked.

    Passing the scores themselves as ``probabilities`` (the model's probability is the score)
    reuses the sorted scores instead of sorting a second array. The order of leads within a tie
    group is unspecified: every sweep column is read at the groups' ends."""
    # The packed sort carries only scores and outcomes, and needs no negative score; separate
    # probabilities or a negative score take the argsort and its gathers.
    if _packable(scores, probabilities):
        ranked, ranked_converted = _sort_packed(scores, converted)
        descending = None
    else:
        descending = np.argsort(scores)[::-1]
        ranked, ranked_converted = scores[descending], converted[descending]
    ends = group_ends(ranked)
    if probabilities is None:
        ranked_probabilities = None
    elif probabilities is scores:
        ranked_probabilities = ranked
    else:
        ranked_probabilities = probabilities[descending]
    return SortedLeads(
        thresholds=at_group_ends(ranked, ends),
        ends=ends,
        converted=ranked_converted,
        probabilities=ranked_probabilities,
    )


def _packed_keys(scores: np.ndarray, converted: np.ndarray) -> np.ndarray:
    """One uint64 per lead (scores all >= 0) that orders like its score and carries its outcome
    in the bottom bit.

    Why it works: a positive float64 or +0.0 has its sign bit, the top bit, at 0, and its bit
    pattern read as a uint64 grows with the value (biased exponent above mantissa, subnormals
    included). Shifted left by one, the pattern still orders the scores and leaves the bottom
    bit free for the outcome, so a key gives back its lead's score and outcome exactly. The
    shift drops the sign bit of -0.0, its only set bit: it becomes +0.0, the same cut-off."""
    keys = scores.view(np.uint64) << 1
    keys |= converted
    return keys


def _sort_packed(scores: np.ndarray, converted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores (all >= 0) in descending order and the outcomes in the same order, from one value
    sort of :func:`_packed_keys`: several times faster than an argsort and two gathers (and
    polars sorts uint64 values faster than numpy does). Equal keys are identical, so the result
    depends neither on the sort algorithm nor on the input order."""
    ranked = pl.Series(_packed_keys(scores, converted)).sort(descending=True).to_numpy()
    return (ranked >> 1).view(np.float64), (ranked & 1).astype(bool)


def group_ends(ordered: np.ndarray) -> np.ndarray:
    """Positions of the last of each run of equal values in ``ordered``: a group ends where the
    next value differs, and the last value ends the last group."""
    last_of_group = np.empty(len(ordered), bool)
    np.not_equal(ordered[1:], ordered[:-1], out=last_of_group[:-1])
    last_of_group[-1] = True
    return np.flatnonzero(last_of_group)


def at_group_ends(values: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """``values[ends]``, without a copy when every score is distinct (then ends is every position)."""
    return values if len(ends) == len(values) else values[ends]


def with_curve_columns(
    counts: pl.DataFrame, positives: int | pl.Expr, total: int | pl.Expr, economics: RoutingEconomics
) -> pl.DataFrame:
    """Every ratio, capacity and money column from ``routed`` and ``tp`` at each cut-off.

    ``positives`` and ``total`` (converted leads, all leads) are numbers for one curve, or
    columns for stacked bootstrap curves, where a cut-off may route nobody (its ratios are then
    NaN). Polars evaluates the columns in parallel, each written once: with millions of
    cut-offs, memory traffic is the cost."""
    routed, tp = pl.col("routed"), pl.col("tp")
    if isinstance(positives, int):
        # Polars divides by a constant through its reciprocal, one unit in the last place away
        # from tp / positives, which is what scikit-learn reports: divide these in numpy.
        tp_values = counts["tp"].to_numpy()
        fp_values = counts["routed"].to_numpy() - tp_values
        fp = pl.Series(fp_values)
        recall, fpr = pl.Series(tp_values / positives), pl.Series(fp_values / (total - positives))
        positives, total = pl.lit(positives), pl.lit(total)
    else:
        fp, recall, fpr = routed - tp, tp / positives, (routed - tp) / (total - positives)
    capacity = economics.capacity_hours
    return counts.with_columns(
        fp=fp,
        precision=tp / routed,
        recall=recall,
        fpr=fpr,
        # F1 = 2PR / (P + R) = 2 tp / (routed + positives): exact, and 0 rather than 0/0 when
        # tp = 0. Doubling after the division is exact in binary floating point.
        f1=tp / (routed + positives) * 2.0,
        workload_hours=routed * economics.hours_per_lead,
        cost=routed * economics.cost_per_lead,
        pipeline=tp * economics.deal_value,
    ).with_columns(
        lift=pl.col("precision") / (positives / total),
        within_capacity=pl.lit(True) if capacity is None else pl.col("workload_hours") <= capacity,
        revenue=pl.col("pipeline") * economics.win_rate,
    ).with_columns(profit=pl.col("revenue") - pl.col("cost"))


def sweep(
    scores: Any,
    converted: Any,
    *,
    probabilities: Any = None,
    hours_per_lead: float = 1.0,
    capacity_hours: float | None = None,
    cost_per_lead: float = 0.0,
    deal_value: float = 0.0,
    win_rate: float = 1.0,
) -> pl.DataFrame:
    """Evaluate every distinct score as a routing cut-off, exactly.

    The leads are sorted once and every column is a cumulative sum over that order, so all
    cut-offs cost about as much as one sort, whatever their number.

    Parameters
    ----------
    scores : array-like of float, shape (n,)
        One score per lead, higher meaning more likely to convert; finite.
    converted : array-like of bool or 0/1, shape (n,)
        Whether each lead converted. Both outcomes must occur.
    probabilities : array-like of float, shape (n,), optional
        Each lead's predicted conversion probability (often the scores themselves), for
        ``expected_conversions``; that column is null without them.
    hours_per_lead, capacity_hours, cost_per_lead, deal_value, win_rate
        Money and capacity, see :class:`RoutingEconomics`.

    Returns
    -------
    polars.DataFrame
        One row per distinct score, highest first (so ``routed`` grows down the frame), with
        columns :data:`SWEEP_COLUMNS`: ``threshold``; ``routed`` leads (score >= threshold);
        observed conversions among them ``tp`` and non-conversions ``fp``; ``precision``,
        ``recall``, ``fpr`` (false positive rate), ``f1``, ``lift`` (precision over the base
        rate); ``expected_conversions`` (sum of the routed leads' probabilities);
        ``workload_hours`` and ``within_capacity``; ``cost``; ``pipeline`` (conversions x deal
        value), ``revenue`` (pipeline x win rate) and ``profit`` (revenue - cost).

    Examples
    --------
    >>> from crm_lab.leads import sweep
    >>> curve = sweep([0.9, 0.8, 0.8, 0.3], [True, False, True, False],
    ...               cost_per_lead=10, deal_value=1000, win_rate=0.25)
    >>> curve.select("threshold", "routed", "tp", "fp", "recall", "profit").rows()
    [(0.9, 1, 1, 0, 0.5, 240.0), (0.8, 3, 2, 1, 1.0, 470.0), (0.3, 4, 2, 2, 1.0, 460.0)]
    """
    scores = _checks.scores_array("scores", scores)
    converted = _checks.outcomes_array("converted", converted, len(scores))
    _checks.both_classes("converted", converted)
    if probabilities is not None:
        probabilities = _checks.probabilities_array("probabilities", probabilities, len(scores))
    economics = RoutingEconomics(hours_per_lead, capacity_hours, cost_per_lead, deal_value, win_rate)
    if _packable(scores, probabilities) and _heavily_tied(scores):
        return _curve(_tally_packed(scores, converted, with_probabilities=probabilities is not None), economics)
    return sweep_sorted(sort_leads(scores, converted, probabilities), economics)


def sweep_sorted(leads: SortedLeads, economics: RoutingEconomics) -> pl.DataFrame:
    """:func:`sweep` on leads already sorted by :func:`sort_leads`."""
    # A uint8 view: numpy's cumulative sum of booleans takes a slow casting path.
    tp = at_group_ends(np.cumsum(leads.converted.view(np.uint8), dtype=np.int64), leads.ends)
    expected = None
    if leads.probabilities is not None:
        expected = at_group_ends(np.cumsum(leads.probabilities), leads.ends)
    return _curve(Cutoffs(leads.thresholds, leads.ends + 1, tp, expected), economics)


@dataclass(frozen=True)
class Cutoffs:
    """Cumulative counts at each distinct score, highest first: the sweep before its ratios."""

    thresholds: np.ndarray
    routed: np.ndarray  # leads with score >= threshold
    tp: np.ndarray  # converted leads among them
    expected: np.ndarray | None  # sum of their probabilities


def _curve(cutoffs: Cutoffs, economics: RoutingEconomics) -> pl.DataFrame:
    counts = pl.DataFrame({"threshold": cutoffs.thresholds, "routed": cutoffs.routed, "tp": cutoffs.tp})
    if cutoffs.expected is None:
        expected = pl.lit(None, dtype=pl.Float64)
    else:
        expected = pl.Series(cutoffs.expected)
    curve = with_curve_columns(counts, int(cutoffs.tp[-1]), int(cutoffs.routed[-1]), economics)
    return curve.with_columns(expected_conversions=expected).select(SWEEP_COLUMNS)


# Scores are "heavily tied" (integer scores, rounded probabilities) when at most this share of an
# evenly spaced sample of them is distinct. Counting the leads per score in a hash table then
# beats sorting them all: at 10M leads with 1,000 distinct scores, about 0.1 s against 0.6 s;
# the two cross near 100,000 distinct scores, where a sample of 65,536 is about 60% distinct.
TIE_SAMPLE = 65_536
TIED_SHARE = 0.25


def _heavily_tied(scores: np.ndarray) -> bool:
    sample = scores[np.linspace(0, len(scores) - 1, min(len(scores), TIE_SAMPLE)).astype(np.int64)]
    return len(np.unique(sample)) <= TIED_SHARE * len(sample)


def _packable(scores: np.ndarray, probabilities: np.ndarray | None) -> bool:
    """Whether the leads fit :func:`_packed_keys`: no negative score, and no probabilities other
    than the scores themselves."""
    return (probabilities is None or probabilities is scores) and scores.min() >= 0


def _tally_packed(scores: np.ndarray, converted: np.ndarray, *, with_probabilities: bool) -> Cutoffs:
    """The sweep's cumulative counts from the number of leads per packed (score, outcome) key:
    one hash aggregation of the leads, then a sort of the few distinct keys only.

    ``expected`` sums each score times its number of leads, where the sorted path adds the score
    once per lead: the two agree to rounding, and this one is the closer to the exact sum."""
    tally = pl.Series("key", _packed_keys(scores, converted)).value_counts(name="leads").sort("key", descending=True)
    key, leads = tally["key"].to_numpy(), tally["leads"].to_numpy().astype(np.int64)
    # A score's converted key (bottom bit 1) and its other key are adjacent in the sorted tally.
    score_bits = key >> 1
    ends = group_ends(score_bits)
    routed = np.cumsum(leads)[ends]
    thresholds = score_bits[ends].view(np.float64)
    expected = None
    if with_probabilities:
        expected = np.cumsum(thresholds * np.diff(routed, prepend=0))
    return Cutoffs(thresholds, routed, np.cumsum(leads * (key & 1).astype(np.int64))[ends], expected)


# ------------------------------------------------------------------------------- best cut-off


@dataclass(frozen=True)
class CutoffChoice:
    """The best cut-off for an objective under the capacity limit.

    ``threshold`` is ``inf`` and ``row`` None when routing nobody is best (every cut-off within
    capacity is worth <= 0, or none fits the capacity). When none fits, ``fewest`` is the row of
    the highest cut-off (the fewest leads any cut-off routes) and ``capacity_hours`` the limit,
    so :meth:`describe` can say why."""

    objective: str
    beta: float
    threshold: float
    value: float
    routed: int
    row: dict | None
    fewest: dict | None = None
    capacity_hours: float | None = None

    @property
    def routes_nobody(self) -> bool:
        return self.row is None

    @property
    def nothing_fits_capacity(self) -> bool:
        """True when routing nobody is forced: no cut-off's workload fits the capacity."""
        return self.fewest is not None

    def describe(self) -> str:
        """One line: the cut-off, or why nobody is routed.

        >>> from crm_lab.leads import best_cutoff, sweep
        >>> curve = sweep([0.9, 0.5], [True, False], hours_per_lead=1.5, capacity_hours=0, deal_value=100)
        >>> best_cutoff(curve, "profit", capacity_hours=0).describe()
        'route nobody (capacity 0 h admits no lead at 1.5 h per lead)'
        """
        if self.routes_nobody:
            return f"route nobody ({self.nobody_reason})"
        return (f"threshold {self.threshold:.6g}: route {self.routed} lead(s), "
                f"{self.objective} {format_objective(self.objective, self.value)}")

    @property
    def nobody_reason(self) -> str | None:
        """Why routing nobody is best (None when a cut-off is chosen)."""
        if not self.routes_nobody:
            return None
        if self.fewest is None:
            return f"{self.objective} of every cut-off within capacity is <= 0"
        top, routed, hours = self.fewest["threshold"], self.fewest["routed"], self.fewest["workload_hours"]
        if self.capacity_hours is None:
            return f"no cut-off fits the capacity: the highest, score >= {top:.6g}, routes {routed} lead(s), {hours:g} h"
        per_lead = hours / routed
        admitted = _leads_within(self.capacity_hours, per_lead)
        if admitted == 0:
            return f"capacity {self.capacity_hours:g} h admits no lead at {per_lead:g} h per lead"
        return (f"capacity {self.capacity_hours:g} h admits {admitted} lead(s) at {per_lead:g} h per lead, but the "
                f"highest cut-off, score >= {top:.6g}, routes {routed} tied lead(s), {hours:g} h")


def _leads_within(capacity_hours: float, hours_per_lead: float) -> int:
    """The most leads whose workload (leads x hours_per_lead, as the sweep computes it) fits."""
    count = math.floor(capacity_hours / hours_per_lead)
    while count > 0 and count * hours_per_lead > capacity_hours:
        count -= 1
    while (count + 1) * hours_per_lead <= capacity_hours:
        count += 1
    return count


def format_objective(objective: str, value: float) -> str:
    """Money and counts in whole units with thousands separators; an F-score to 3 decimals."""
    return f"{value:.3f}" if objective == "f_beta" else f"{value:,.0f}"


def objective_values(objective: str, beta: float, routed: Any, tp: Any, positives: Any, profit: Any) -> Any:
    """The value to maximise at each cut-off (arrays broadcast)."""
    if objective == "profit":
        return profit
    if objective == "conversions":
        return tp
    with np.errstate(divide="ignore", invalid="ignore"):
        b2 = beta * beta
        return (1 + b2) * tp / (b2 * positives + routed)


def pick_best(values: np.ndarray, within: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``values`` (last axis = cut-offs, highest threshold first): the index of the
    best cut-off within capacity, or -1 when routing nobody (value 0) is at least as good.
    Ties go to the higher threshold: the same value for fewer leads."""
    candidates = np.where(within & ~np.isnan(values), values, -np.inf)
    best = np.argmax(candidates, axis=-1)
    best_value = np.take_along_axis(candidates, np.expand_dims(best, -1), axis=-1)[..., 0]
    nobody = best_value <= 0
    return np.where(nobody, -1, best), np.where(nobody, 0.0, best_value)


def best_cutoff(curve: pl.DataFrame, objective: str = "profit", *, beta: float = 1.0,
                capacity_hours: float | None = None) -> CutoffChoice:
    """The cut-off that maximises an objective among those within capacity.

    Parameters
    ----------
    curve : polars.DataFrame
        A :func:`sweep` result (its ``within_capacity`` column carries the capacity limit).
    objective : {"profit", "f_beta", "conversions"}
        What to maximise: ``profit``; ``f_beta``, the F-score weighting recall ``beta`` times as
        much as precision; or ``conversions`` (observed conversions routed).
    beta : float
        The F-score's beta (``f_beta`` only).
    capacity_hours : float, optional
        The limit the curve was swept with; only named by :meth:`CutoffChoice.describe` when no
        cut-off fits it (the curve's ``within_capacity`` already applies it).

    Examples
    --------
    >>> from crm_lab.leads import best_cutoff, sweep
    >>> curve = sweep([0.9, 0.8, 0.8, 0.3], [True, False, True, False],
    ...               cost_per_lead=10, deal_value=1000, win_rate=0.25, capacity_hours=2)
    >>> best_cutoff(curve, "profit").threshold
    0.9
    """
    _checks.choice("objective", objective, OBJECTIVES)
    beta = _checks.number("beta", beta, strict=True)
    if curve.is_empty():
        raise InvalidArgument("curve has no rows: pass the result of sweep()")
    routed = curve["routed"].to_numpy()
    tp = curve["tp"].to_numpy()
    values = objective_values(objective, beta, routed, tp, tp[-1], curve["profit"].to_numpy())
    index, value = pick_best(np.asarray(values, dtype=np.float64), curve["within_capacity"].to_numpy())
    if index < 0:
        within = curve["within_capacity"].to_numpy()
        fewest = None if within.any() else curve.row(0, named=True)
        return CutoffChoice(objective, beta, math.inf, 0.0, 0, None, fewest, capacity_hours)
    row = curve.row(int(index), named=True)
    return CutoffChoice(objective, beta, row["threshold"], float(value), row["routed"], row, None, capacity_hours)
