"""A small Monte Carlo of the revenue from routed leads, for scenario grids.

Each routed lead converts with its probability; a converted lead's deal is won with the win rate
(times a scenario multiplier) and is worth a deal value drawn from the won amounts (times a
scenario multiplier). The randomness is drawn in the same order whatever the multipliers, so on
common random numbers the revenue is monotone in both knobs and neighbouring scenarios differ
only by the knobs' effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from crm_lab.errors import InvalidArgument
from crm_lab.leads import _checks

# Trials are simulated in chunks of at most this many (trial x lead) draws, to bound memory.
_CHUNK_CELLS = 2_000_000


@dataclass(frozen=True)
class RoutedRevenueSimulation:
    """Revenue from a set of routed leads, simulated; call it as ``simulation(rng, **knobs)``.

    Parameters
    ----------
    probabilities : array-like of float in [0, 1]
        Conversion probability of each routed lead (may be empty: nobody routed).
    deal_values : float or array-like of float
        The value of a won deal, or won amounts to draw from with replacement (the empirical
        distribution of deal sizes).
    win_rate : float
        Share of converted leads' deals that are won, before the scenario multiplier.
    target : float
        Revenue target: the output ``p_target`` is the probability of reaching it.
    trials : int
        Monte Carlo trials.

    Examples
    --------
    >>> import numpy as np
    >>> from crm_lab.leads import RoutedRevenueSimulation, grid_sweep
    >>> simulation = RoutedRevenueSimulation([0.5] * 40, deal_values=[1000.0, 3000.0], win_rate=0.5,
    ...                                      target=10_000, trials=500)
    >>> grid = grid_sweep(simulation, win_rate_multiplier=[0.8, 1.2], deal_size_multiplier=[1.0, 1.5])
    >>> grid.select("win_rate_multiplier", "deal_size_multiplier").rows()
    [(0.8, 1.0), (0.8, 1.5), (1.2, 1.0), (1.2, 1.5)]
    >>> bool((np.diff(grid["p_target"].to_numpy()[[0, 1]]) >= 0).all())
    True
    """

    probabilities: Any
    deal_values: Any
    win_rate: float
    target: float
    trials: int = 2000

    def __post_init__(self) -> None:
        probabilities = np.asarray(self.probabilities, dtype=np.float64).reshape(-1)
        if len(probabilities):
            probabilities = _checks.probabilities_array("probabilities", probabilities, len(probabilities))
        values = np.atleast_1d(np.asarray(self.deal_values, dtype=np.float64))
        if values.ndim != 1 or len(values) == 0:
            raise InvalidArgument(f"deal_values must be a number or a non-empty list of amounts, got {self.deal_values!r}")
        if not np.isfinite(values).all() or (values < 0).any():
            raise InvalidArgument(f"deal_values must be finite and >= 0, got {values[~np.isfinite(values) | (values < 0)][:5]!r}")
        _checks.number("win_rate", self.win_rate, maximum=1.0)
        _checks.number("target", self.target, minimum=None)
        _checks.whole_number("trials", self.trials)
        object.__setattr__(self, "probabilities", probabilities)
        object.__setattr__(self, "deal_values", values)

    def __call__(self, rng: np.random.Generator, *, win_rate_multiplier: float = 1.0,
                 deal_size_multiplier: float = 1.0) -> dict[str, float]:
        """Simulate; returns ``mean_revenue``, ``p10_revenue``, ``p50_revenue``, ``p90_revenue``,
        ``mean_won_deals`` and ``p_target`` (the probability of revenue >= target)."""
        _checks.number("win_rate_multiplier", win_rate_multiplier)
        _checks.number("deal_size_multiplier", deal_size_multiplier)
        win_probability = min(1.0, self.win_rate * win_rate_multiplier)
        leads = len(self.probabilities)
        revenue = np.zeros(self.trials)
        won_deals = np.zeros(self.trials)
        chunk = max(1, _CHUNK_CELLS // max(leads, 1))
        for start in range(0, self.trials, chunk):
            size = min(chunk, self.trials - start)
            # Always the same draws in the same order: the knobs only change how they are read.
            convert_draw = rng.random((size, leads))
            win_draw = rng.random((size, leads))
            amounts = (
                self.deal_values[rng.integers(0, len(self.deal_values), (size, leads))]
                if len(self.deal_values) > 1
                else np.full((size, leads), self.deal_values[0])
            )
            won = (convert_draw < self.probabilities) & (win_draw < win_probability)
            revenue[start : start + size] = (won * amounts).sum(axis=1) * deal_size_multiplier
            won_deals[start : start + size] = won.sum(axis=1)
        p10, p50, p90 = np.quantile(revenue, [0.1, 0.5, 0.9])
        return {
            "mean_revenue": float(revenue.mean()),
            "p10_revenue": float(p10),
            "p50_revenue": float(p50),
            "p90_revenue": float(p90),
            "mean_won_deals": float(won_deals.mean()),
            "p_target": float(np.mean(revenue >= self.target)),
        }
