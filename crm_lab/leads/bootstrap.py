"""Bootstrap confidence bands for a threshold sweep and for its best cut-off.

Each replicate resamples the leads with replacement. Resampling only changes how many times each
lead counts, so a replicate is the same sorted order with integer weights: its curves are
weighted cumulative sums read at the original cut-offs, and no replicate sorts again. Every
replicate's curve therefore lives on the same grid of thresholds, which is what a band needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from crm_lab.errors import InvalidArgument
from crm_lab.leads import _checks
from crm_lab.leads.thresholds import (
    OBJECTIVES,
    CutoffChoice,
    RoutingEconomics,
    best_cutoff,
    objective_values,
    pick_best,
    sort_leads,
    sweep_sorted,
    with_curve_columns,
)

BAND_METRICS = ("precision", "recall", "f1", "profit")
# Replicates are drawn in chunks of at most this many (replicate x lead) weights, to bound memory.
_CHUNK_CELLS = 4_000_000


@dataclass(frozen=True)
class BootstrapSweep:
    """A sweep with bootstrap uncertainty.

    Attributes
    ----------
    curve : polars.DataFrame
        The sweep of the data as given (see :func:`crm_lab.leads.sweep`).
    bands : polars.DataFrame
        ``threshold`` and, for each metric of :data:`BAND_METRICS`, ``<metric>_lo`` and
        ``<metric>_hi``: the central ``level`` interval of that metric at that threshold over the
        replicates.
    choice : CutoffChoice
        The best cut-off on the data as given.
    replicate_choices : polars.DataFrame
        ``replicate``, ``threshold`` (inf: route nobody), ``routed`` (leads of the resample
        routed there) and ``value``: the best cut-off of each replicate.
    threshold_interval : tuple of float
        The central ``level`` interval of the replicates' best thresholds.
    value_interval : tuple of float
        The central ``level`` interval of the objective at ``choice.threshold`` over the
        replicates: how sure the chosen cut-off's payoff is.
    """

    curve: pl.DataFrame
    bands: pl.DataFrame
    choice: CutoffChoice
    replicate_choices: pl.DataFrame
    threshold_interval: tuple[float, float]
    value_interval: tuple[float, float]
    level: float
    replicates: int
    seed: int

    @property
    def table(self) -> pl.DataFrame:
        """The curve with its bands, and ``is_chosen`` marking the best cut-off."""
        return self.curve.join(self.bands, on="threshold", how="left", maintain_order="left").with_columns(
            is_chosen=pl.col("threshold") == self.choice.threshold
        )


def bootstrap_sweep(
    scores: Any,
    converted: Any,
    *,
    probabilities: Any = None,
    objective: str = "profit",
    beta: float = 1.0,
    replicates: int = 200,
    level: float = 0.9,
    seed: int = 0,
    hours_per_lead: float = 1.0,
    capacity_hours: float | None = None,
    cost_per_lead: float = 0.0,
    deal_value: float = 0.0,
    win_rate: float = 1.0,
) -> BootstrapSweep:
    """Sweep every cut-off, pick the best one, and bootstrap both.

    Parameters
    ----------
    scores, converted, probabilities
        As for :func:`crm_lab.leads.sweep`.
    objective, beta
        As for :func:`crm_lab.leads.best_cutoff`.
    replicates : int
        Bootstrap replicates (resamples of the leads with replacement).
    level : float
        Coverage of the intervals, e.g. 0.9 for the 5th to 95th percentile.
    seed : int
        Seed of the resampling (through ``numpy.random.SeedSequence``): the same seed gives the
        same bands.
    hours_per_lead, capacity_hours, cost_per_lead, deal_value, win_rate
        Money and capacity, see :class:`crm_lab.leads.thresholds.RoutingEconomics`. The capacity
        limit applies within each replicate.

    Examples
    --------
    >>> from crm_lab.leads import bootstrap_sweep
    >>> result = bootstrap_sweep([0.9, 0.7, 0.6, 0.4, 0.2, 0.1], [1, 1, 0, 1, 0, 0],
    ...                          objective="f_beta", replicates=50, seed=1)
    >>> result.choice.threshold, result.bands.columns[:3]
    (0.4, ['threshold', 'precision_lo', 'precision_hi'])
    """
    scores = _checks.scores_array("scores", scores)
    converted = _checks.outcomes_array("converted", converted, len(scores))
    _checks.both_classes("converted", converted)
    if probabilities is not None:
        probabilities = _checks.probabilities_array("probabilities", probabilities, len(scores))
    _checks.choice("objective", objective, OBJECTIVES)
    beta = _checks.number("beta", beta, strict=True)
    replicates = _checks.whole_number("replicates", replicates)
    level = _checks.number("level", level, strict=True, maximum=1.0)
    if level >= 1.0:
        raise InvalidArgument(f"level must be < 1, got {level!r}")
    seed = _checks.whole_number("seed", seed, minimum=0)
    economics = RoutingEconomics(hours_per_lead, capacity_hours, cost_per_lead, deal_value, win_rate)

    leads = sort_leads(scores, converted, probabilities)
    curve = sweep_sorted(leads, economics)
    choice = best_cutoff(curve, objective, beta=beta, capacity_hours=economics.capacity_hours)
    chosen_index = -1 if choice.routes_nobody else int(np.flatnonzero(leads.thresholds == choice.threshold)[0])

    metrics, best_index, best_routed, best_value, value_at_choice = _replicate(
        leads, economics, objective, beta, replicates, seed, chosen_index
    )
    low, high = (1 - level) / 2, 1 - (1 - level) / 2
    bands: dict[str, Any] = {"threshold": leads.thresholds}
    for name in BAND_METRICS:
        # A replicate may route no lead at the top cut-offs (NaN precision there): skip it.
        lo, hi = np.nanquantile(metrics[name], [low, high], axis=0)
        bands[f"{name}_lo"], bands[f"{name}_hi"] = lo, hi
    chosen_thresholds = np.where(best_index < 0, np.inf, leads.thresholds[np.maximum(best_index, 0)])
    return BootstrapSweep(
        curve=curve,
        bands=pl.DataFrame(bands),
        choice=choice,
        replicate_choices=pl.DataFrame(
            {
                "replicate": np.arange(replicates),
                "threshold": chosen_thresholds,
                "routed": best_routed,
                "value": best_value,
            }
        ),
        # Thresholds are discrete: report actual cut-offs, not interpolations between them.
        threshold_interval=tuple(float(v) for v in np.quantile(chosen_thresholds, [low, high], method="inverted_cdf")),
        value_interval=tuple(float(v) for v in np.quantile(value_at_choice, [low, high])),
        level=level,
        replicates=replicates,
        seed=seed,
    )


def _replicate(leads, economics: RoutingEconomics, objective: str, beta: float, replicates: int, seed: int,
               chosen_index: int):
    """Curves and best cut-offs of every replicate (rows) at the original cut-offs (columns)."""
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    n, cutoffs = leads.leads, len(leads.ends)
    metrics = {name: np.empty((replicates, cutoffs)) for name in BAND_METRICS}
    best_index = np.empty(replicates, np.int64)
    best_routed = np.zeros(replicates, np.int64)
    best_value = np.empty(replicates)
    value_at_choice = np.zeros(replicates)
    converted = leads.converted.astype(np.int64)
    chunk = max(1, _CHUNK_CELLS // n)
    for start in range(0, replicates, chunk):
        rows = slice(start, min(start + chunk, replicates))
        size = rows.stop - rows.start
        # Draw positions in the sorted order directly: resampling the sorted leads is resampling
        # the leads. The weight of a lead is how often it was drawn.
        draws = rng.integers(0, n, size=(size, n))
        weights = np.bincount((draws + (np.arange(size) * n)[:, None]).ravel(), minlength=size * n).reshape(size, n)
        routed = np.cumsum(weights, axis=1)[:, leads.ends]
        tp = np.cumsum(weights * converted, axis=1)[:, leads.ends]
        positives = tp[:, -1:]
        # The replicates stacked into one long frame, so they share the sweep's formulas.
        stacked = with_curve_columns(
            pl.DataFrame({"routed": routed.ravel(), "tp": tp.ravel(), "positives": np.repeat(positives[:, 0], cutoffs)}),
            pl.col("positives"),
            n,
            economics,
        )
        columns = {name: stacked[name].to_numpy().reshape(size, cutoffs)
                   for name in (*BAND_METRICS, "within_capacity")}
        for name in BAND_METRICS:
            metrics[name][rows] = columns[name]
        values = objective_values(objective, beta, routed, tp, positives, columns["profit"]).astype(np.float64)
        best, best_value[rows] = pick_best(values, columns["within_capacity"])
        best_index[rows] = best
        best_routed[rows] = np.where(best < 0, 0, np.take_along_axis(routed, np.maximum(best, 0)[:, None], axis=1)[:, 0])
        if chosen_index >= 0:
            value_at_choice[rows] = np.nan_to_num(values[:, chosen_index])
    return metrics, best_index, best_routed, best_value, value_at_choice
