"""How good are predicted conversion probabilities: a reliability table, the Brier score, log
loss and the AUC."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from scipy.stats import rankdata

from crm_lab.leads import _checks

STRATEGIES = ("quantile", "uniform")


@dataclass(frozen=True)
class CalibrationReport:
    """Calibration and discrimination of conversion probabilities.

    Attributes
    ----------
    reliability : polars.DataFrame
        One row per non-empty bin of predicted probability: ``bin``, its edges ``lower`` and
        ``upper``, ``leads``, ``conversions``, ``mean_predicted`` and ``observed_rate``. A
        calibrated model has ``observed_rate`` close to ``mean_predicted`` in every bin.
    brier : float
        Mean squared difference between probability and outcome (0 is perfect).
    log_loss : float
        Mean negative log-likelihood of the outcomes.
    auc : float
        Area under the ROC curve: the chance that a random converted lead scores above a random
        non-converted one (ties count one half).
    leads, conversions : int
    mean_predicted, observed_rate : float
        Over all leads: a calibrated model predicts as many conversions as it sees.
    """

    reliability: pl.DataFrame
    brier: float
    log_loss: float
    auc: float
    leads: int
    conversions: int
    mean_predicted: float
    observed_rate: float

    def summary(self) -> str:
        return (
            f"{self.leads} leads, {self.conversions} converted ({self.observed_rate:.1%}; predicted "
            f"{self.mean_predicted:.1%}): AUC {self.auc:.3f}, Brier {self.brier:.4f}, log loss {self.log_loss:.4f}"
        )


def auc_score(converted: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC by ranks (Mann-Whitney U), ties counted one half; needs both classes."""
    ranks = rankdata(scores)  # average ranks for ties
    positives = int(np.count_nonzero(converted))
    negatives = len(converted) - positives
    return float((ranks[converted].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def calibration_report(converted: Any, probabilities: Any, *, bins: int = 10, strategy: str = "quantile") -> CalibrationReport:
    """Calibration report of predicted probabilities against outcomes.

    Parameters
    ----------
    converted : array-like of bool or 0/1
        Observed outcomes; both must occur.
    probabilities : array-like of float in [0, 1]
        Predicted conversion probabilities.
    bins : int
        Number of bins of the reliability table.
    strategy : {"quantile", "uniform"}
        ``quantile``: bins holding about equal numbers of leads; ``uniform``: equal-width bins on
        [0, 1]. Leads are binned exactly as scikit-learn's ``calibration_curve`` bins them.

    Examples
    --------
    >>> from crm_lab.leads import calibration_report
    >>> report = calibration_report([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], bins=2, strategy="uniform")
    >>> report.auc, round(report.brier, 4)
    (0.75, 0.1581)
    >>> report.reliability.select("leads", "observed_rate").rows()
    [(3, 0.3333333333333333), (1, 1.0)]
    """
    probabilities = _checks.scores_array("probabilities", probabilities)
    converted = _checks.outcomes_array("converted", converted, len(probabilities))
    probabilities = _checks.probabilities_array("probabilities", probabilities, len(converted))
    _checks.both_classes("converted", converted)
    bins = _checks.whole_number("bins", bins)
    _checks.choice("strategy", strategy, STRATEGIES)

    if strategy == "quantile":
        edges = np.percentile(probabilities, np.linspace(0, 1, bins + 1) * 100)
    else:
        edges = np.linspace(0.0, 1.0, bins + 1)
    bin_of = np.searchsorted(edges[1:-1], probabilities)
    leads = np.bincount(bin_of, minlength=bins)
    conversions = np.bincount(bin_of, weights=converted, minlength=bins)
    predicted = np.bincount(bin_of, weights=probabilities, minlength=bins)
    used = leads > 0
    reliability = pl.DataFrame(
        {
            "bin": np.arange(bins)[used],
            "lower": edges[:-1][used],
            "upper": edges[1:][used],
            "leads": leads[used],
            "conversions": conversions[used].astype(np.int64),
            "mean_predicted": predicted[used] / leads[used],
            "observed_rate": conversions[used] / leads[used],
        }
    )
    outcome = converted.astype(np.float64)
    clipped = np.clip(probabilities, 1e-15, 1 - 1e-15)  # log(0) for a confident miss
    return CalibrationReport(
        reliability=reliability,
        brier=float(np.mean((probabilities - outcome) ** 2)),
        log_loss=float(-np.mean(outcome * np.log(clipped) + (1 - outcome) * np.log1p(-clipped))),
        auc=auc_score(converted, probabilities),
        leads=len(converted),
        conversions=int(converted.sum()),
        mean_predicted=float(probabilities.mean()),
        observed_rate=float(outcome.mean()),
    )
