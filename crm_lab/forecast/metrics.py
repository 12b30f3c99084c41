"""Scores of a forecast distribution against what happened, and the weighted-pipeline baseline
(pure functions).

Examples
--------
>>> import numpy as np
>>> samples = np.array([0.0, 10.0, 20.0, 30.0])
>>> crps_samples(samples, 10.0)
3.75
>>> round(pinball_loss(q=20.0, actual=10.0, level=0.9), 6)
1.0
>>> round(crps_normal(0.0, 1.0, 0.0), 4)
0.2337
>>> round(crps_gamma(1.0, 1.0, 0.0), 4)  # exponential: y + 2 e^-y - 3/2 at y = 0
0.5
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import betaln, gammainc, gammaincinv, ndtr, ndtri

QUANTILE_LEVELS = (0.05, 0.1, 0.5, 0.9, 0.95)
PINBALL_LEVELS = (0.1, 0.5, 0.9)


def crps_samples(samples: np.ndarray, actual: float) -> float:
    """Continuous ranked probability score of an ensemble: E|X - y| - E|X - X'| / 2, exact for
    the empirical distribution of ``samples`` (sorted once, O(n log n))."""
    x = np.sort(np.asarray(samples, dtype=np.float64))
    n = len(x)
    spread = 2.0 * np.sum((2 * np.arange(1, n + 1) - n - 1) * x) / (n * n)
    return float(np.mean(np.abs(x - actual)) - 0.5 * spread)


def crps_normal(mean: float, sd: float, actual: float) -> float:
    """CRPS of a normal distribution (closed form); a point forecast when ``sd`` is 0."""
    if sd <= 0:
        return abs(actual - mean)
    z = (actual - mean) / sd
    pdf = math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return float(sd * (z * (2 * ndtr(z) - 1) + 2 * pdf - 1 / math.sqrt(math.pi)))


def pinball_loss(q: float, actual: float, level: float) -> float:
    """Quantile (pinball) loss of the quantile ``q`` at ``level`` for the outcome ``actual``."""
    diff = actual - q
    return float(max(level * diff, (level - 1) * diff))


def normal_quantiles(mean: float, sd: float, levels=QUANTILE_LEVELS) -> np.ndarray:
    return mean + sd * ndtri(np.asarray(levels, dtype=np.float64))


@dataclass(frozen=True)
class Score:
    """How one forecast of one window did."""

    actual: float
    mean: float
    quantiles: dict  # level -> value
    crps: float
    pit: float  # share of the forecast distribution at or below the actual

    @property
    def covered(self) -> bool:
        """The actual lies within the P10-P90 interval."""
        return self.quantiles[0.1] <= self.actual <= self.quantiles[0.9]

    def pinball(self, level: float) -> float:
        return pinball_loss(self.quantiles[level], self.actual, level)


def score_samples(samples: np.ndarray, actual: float) -> Score:
    x = np.asarray(samples, dtype=np.float64)
    q = np.quantile(x, QUANTILE_LEVELS)
    return Score(float(actual), float(x.mean()), dict(zip(QUANTILE_LEVELS, q.tolist())),
                 crps_samples(x, actual), float(np.mean(x <= actual)))


def score_normal(mean: float, sd: float, actual: float) -> Score:
    q = normal_quantiles(mean, sd)
    pit = float(ndtr((actual - mean) / sd)) if sd > 0 else float(actual >= mean)
    return Score(float(actual), float(mean), dict(zip(QUANTILE_LEVELS, q.tolist())), crps_normal(mean, sd, actual), pit)


def _gamma_parameters(mean: float, sd: float) -> tuple[float, float]:
    """Shape and rate of the gamma distribution with this mean and standard deviation."""
    return (mean / sd) ** 2, mean / sd**2


def gamma_quantiles(mean: float, sd: float, levels=QUANTILE_LEVELS) -> np.ndarray:
    """Quantiles of the gamma distribution with this mean and standard deviation (a point at
    ``mean`` when ``sd`` or ``mean`` is 0)."""
    levels = np.asarray(levels, dtype=np.float64)
    if sd <= 0 or mean <= 0:
        return np.full(len(levels), max(float(mean), 0.0))
    shape, rate = _gamma_parameters(mean, sd)
    return gammaincinv(shape, levels) / rate


def crps_gamma(mean: float, sd: float, actual: float) -> float:
    """CRPS of the gamma distribution with this mean and standard deviation (closed form,
    Gneiting and Raftery 2007 / Scheuerer and Moeller 2015): for shape a and rate b,
    y (2 F_a(y) - 1) - (a / b) (2 F_{a+1}(y) - 1) - 1 / (b B(1/2, a)); a point forecast when
    ``sd`` or ``mean`` is 0."""
    if sd <= 0 or mean <= 0:
        return abs(actual - max(mean, 0.0))
    a, b = _gamma_parameters(mean, sd)
    y = float(actual)
    f_a = float(gammainc(a, b * y)) if y > 0 else 0.0
    f_a1 = float(gammainc(a + 1, b * y)) if y > 0 else 0.0
    return float(y * (2 * f_a - 1) - (a / b) * (2 * f_a1 - 1) - math.exp(-betaln(0.5, a)) / b)


def score_gamma(mean: float, sd: float, actual: float, shift: float = 0.0) -> Score:
    """Score ``shift`` plus a gamma distribution of this mean and standard deviation: never
    below ``shift`` (bookings so far), unlike a normal of the same two moments."""
    q = shift + gamma_quantiles(mean, sd)
    x = float(actual) - shift
    if sd <= 0 or mean <= 0:
        pit = float(x >= max(mean, 0.0))
    else:
        a, b = _gamma_parameters(mean, sd)
        pit = float(gammainc(a, b * x)) if x > 0 else 0.0
    return Score(float(actual), float(shift + mean), dict(zip(QUANTILE_LEVELS, q.tolist())), crps_gamma(mean, sd, x), pit)


def weighted_pipeline(win_probability: np.ndarray, amount: np.ndarray) -> tuple[float, float]:
    """The weighted pipeline: mean sum(p * a) and the standard deviation sqrt(sum(p (1 - p) a^2))
    of independent wins; its interval is the gamma distribution of these two moments
    (:func:`score_gamma`), which, unlike a normal, never goes below zero."""
    p = np.asarray(win_probability, dtype=np.float64)
    a = np.asarray(amount, dtype=np.float64)
    return float(np.sum(p * a)), float(np.sqrt(np.sum(p * (1 - p) * a * a)))
