"""Lead conversion model: L2-regularised logistic regression on lead features, numpy and scipy only.

Categorical features become one indicator per level against a reference level (the most
frequent in training); numeric features are standardised with the training mean and standard
deviation before fitting, so that the penalty treats them alike whatever their units, and the
coefficients are reported back in the original units. The fit is Newton's method with step
halving, which converges to the optimum in a handful of iterations for the few dozen columns a
lead model has.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from scipy.linalg import cho_factor, cho_solve

from crm_lab.errors import InvalidArgument
from crm_lab.leads import _checks

DEFAULT_CATEGORICAL = ("source", "industry")
DEFAULT_LOG_NUMERIC = ("employees",)
DEFAULT_NUMERIC = ("score", "calls", "emails", "meetings", "tasks")
MISSING_LEVEL = "(missing)"


def fit_logistic(
    design: np.ndarray, converted: np.ndarray, *, C: float = 1.0, max_iter: int = 100, tol: float = 1e-10
) -> tuple[np.ndarray, float, np.ndarray, int, bool]:
    """Minimise ``sum(log(1 + exp(z)) - y z) + ||w||^2 / (2 C)`` with ``z = design @ w + b``:
    scikit-learn's ``LogisticRegression(C=C)`` objective (the intercept is not penalised).

    Returns the weights, the intercept, the covariance of (intercept, weights) from the inverse
    of the penalised Hessian at the optimum, the Newton iterations and whether it converged
    (largest gradient component below ``tol`` times the number of rows).
    """
    rows, columns = design.shape
    with_intercept = np.hstack([np.ones((rows, 1)), design])
    penalty = np.full(columns + 1, 1.0 / C)
    penalty[0] = 0.0
    y = converted.astype(np.float64)
    theta = np.zeros(columns + 1)
    # Start the intercept at the log-odds of the base rate: the optimum when no feature matters.
    rate = y.mean()
    theta[0] = np.log(rate / (1 - rate))

    def objective(params: np.ndarray) -> float:
        z = with_intercept @ params
        return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * np.sum(penalty * params * params))

    value = objective(theta)
    converged = False
    iterations = 0
    for iterations in range(1, max_iter + 1):
        z = with_intercept @ theta
        p = 0.5 * (1.0 + np.tanh(0.5 * z))  # the logistic function, without overflow
        gradient = with_intercept.T @ (p - y) + penalty * theta
        if np.max(np.abs(gradient)) <= tol * rows:
            converged = True
            break
        hessian = (with_intercept * (p * (1 - p))[:, None]).T @ with_intercept + np.diag(penalty)
        step = cho_solve(cho_factor(hessian), gradient)
        size = 1.0
        while True:
            candidate = theta - size * step
            candidate_value = objective(candidate)
            if candidate_value <= value or size < 1e-10:
                break
            size /= 2
        theta, value = candidate, candidate_value
    z = with_intercept @ theta
    p = 0.5 * (1.0 + np.tanh(0.5 * z))
    hessian = (with_intercept * (p * (1 - p))[:, None]).T @ with_intercept + np.diag(penalty)
    covariance = cho_solve(cho_factor(hessian), np.eye(columns + 1))
    return theta[1:], float(theta[0]), covariance, iterations, converged


class ConversionModel:
    """Regularised logistic regression of lead conversion, configured like a scikit-learn
    estimator: settings in the constructor, ``fit`` returns the model, learned attributes end in
    an underscore.

    Parameters
    ----------
    C : float
        Inverse strength of the L2 penalty on the (standardised) coefficients, as in
        scikit-learn: smaller is stronger.
    categorical : sequence of str
        Text columns, one indicator per level against the most frequent level. A missing value
        is its own level; a level unseen in training counts as the reference level.
    log_numeric : sequence of str
        Numeric columns entered as their natural log (values below 1 count as 1), such as
        company size.
    numeric : sequence of str
        Numeric columns entered as they are. A missing numeric value takes the training mean.
    max_iter, tol
        Newton iterations and gradient tolerance (per lead).

    Attributes
    ----------
    feature_names_ : tuple of str
        Names of the fitted columns: ``source=referral``, ``log(employees)``, ``score``, ...
    coef_ : ndarray
        Coefficients in the original units, one per feature name.
    intercept_ : float
    std_errors_ : ndarray
        Standard errors of ``coef_`` (from the inverse penalised Hessian; close to the usual
        maximum-likelihood ones when the penalty is weak).
    intercept_std_error_ : float
    levels_ : dict
        For each categorical column, its levels in training, reference level first.
    n_iter_ : int
    converged_ : bool

    Examples
    --------
    >>> import polars as pl
    >>> from crm_lab.leads import ConversionModel
    >>> leads = pl.DataFrame({"source": ["web", "referral", "web", "referral", "web", "web"],
    ...                       "score": [10.0, 80.0, 30.0, 60.0, 70.0, 20.0]})
    >>> model = ConversionModel(categorical=["source"], log_numeric=[], numeric=["score"]).fit(
    ...     leads, [False, True, False, True, True, False])
    >>> model.feature_names_
    ('source=referral', 'score')
    >>> model.predict_proba(leads).shape
    (6, 2)
    """

    def __init__(
        self,
        *,
        C: float = 1.0,
        categorical: Any = DEFAULT_CATEGORICAL,
        log_numeric: Any = DEFAULT_LOG_NUMERIC,
        numeric: Any = DEFAULT_NUMERIC,
        max_iter: int = 100,
        tol: float = 1e-10,
    ) -> None:
        self.C = C
        self.categorical = categorical
        self.log_numeric = log_numeric
        self.numeric = numeric
        self.max_iter = max_iter
        self.tol = tol

    def get_params(self) -> dict[str, Any]:
        return {
            "C": self.C,
            "categorical": list(self.categorical),
            "log_numeric": list(self.log_numeric),
            "numeric": list(self.numeric),
            "max_iter": self.max_iter,
            "tol": self.tol,
        }

    # ------------------------------------------------------------------------------ learning

    def fit(self, leads: pl.DataFrame, converted: Any) -> ConversionModel:
        """Learn the coefficients from leads with known outcomes.

        Parameters
        ----------
        leads : polars.DataFrame
            One row per lead with the feature columns.
        converted : array-like of bool or 0/1
            Each lead's outcome; both must occur.
        """
        _checks.number("C", self.C, strict=True)
        _checks.whole_number("max_iter", self.max_iter)
        leads = self._frame(leads)
        if leads.height == 0:
            raise InvalidArgument("leads is empty: there are no leads with a known outcome to learn from")
        outcome = _checks.outcomes_array("converted", converted, leads.height)
        _checks.both_classes("converted", outcome)
        self.levels_ = {}
        for column in self.categorical:
            counts = leads[column].cast(pl.String).fill_null(MISSING_LEVEL).value_counts()
            # Most frequent first; ties by name so the reference does not depend on row order.
            ordered = counts.sort(["count", column], descending=[True, False])[column].to_list()
            self.levels_[column] = tuple(ordered)
        numbers = self._numbers(leads)
        self.center_ = np.nanmean(numbers, axis=0) if numbers.shape[1] else np.zeros(0)
        spread = np.nanstd(numbers, axis=0) if numbers.shape[1] else np.zeros(0)
        self.scale_ = np.where(spread > 0, spread, 1.0)
        self.feature_names_ = tuple(
            [f"{column}={level}" for column in self.categorical for level in self.levels_[column][1:]]
            + [f"log({column})" for column in self.log_numeric]
            + list(self.numeric)
        )
        design = self._design(leads, numbers)
        weights, intercept, covariance, self.n_iter_, self.converged_ = fit_logistic(
            design, outcome, C=self.C, max_iter=self.max_iter, tol=self.tol
        )
        # Back to original units: a standardised numeric column's weight w becomes w / scale and
        # the intercept absorbs -w * center / scale. The same linear map carries the covariance.
        dummies = len(self.feature_names_) - len(self.center_)
        to_original = np.eye(len(weights) + 1)
        to_original[0, 1 + dummies :] = -self.center_ / self.scale_
        to_original[1 + dummies :, 1 + dummies :] = np.diag(1.0 / self.scale_)
        theta = to_original @ np.r_[intercept, weights]
        original_covariance = to_original @ covariance @ to_original.T
        self.intercept_ = float(theta[0])
        self.coef_ = theta[1:]
        errors = np.sqrt(np.clip(np.diag(original_covariance), 0.0, None))
        self.intercept_std_error_ = float(errors[0])
        self.std_errors_ = errors[1:]
        self.classes_ = np.array([False, True])
        return self

    # ---------------------------------------------------------------------------- predicting

    def decision_function(self, leads: pl.DataFrame) -> np.ndarray:
        """The log-odds of conversion of each lead."""
        self._check_fitted()
        leads = self._frame(leads)
        numbers = self._numbers(leads)
        # In original units: unstandardised numbers times the original-unit coefficients.
        filled = np.where(np.isnan(numbers), self.center_, numbers)
        dummies = self._dummies(leads)
        return self.intercept_ + np.hstack([dummies, filled]) @ self.coef_

    def predict_proba(self, leads: pl.DataFrame) -> np.ndarray:
        """Probabilities of (not converting, converting), one row per lead, as in scikit-learn."""
        z = self.decision_function(leads)
        p = 0.5 * (1.0 + np.tanh(0.5 * z))
        return np.column_stack([1.0 - p, p])

    def coefficients(self) -> pl.DataFrame:
        """``feature``, ``coefficient`` and ``std_error``, the intercept first."""
        self._check_fitted()
        return pl.DataFrame(
            {
                "feature": ["(intercept)", *self.feature_names_],
                "coefficient": [self.intercept_, *self.coef_.tolist()],
                "std_error": [self.intercept_std_error_, *self.std_errors_.tolist()],
            }
        )

    # ------------------------------------------------------------------------------- helpers

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise InvalidArgument("this ConversionModel is not fitted yet: call fit(leads, converted) first")

    def _frame(self, leads: Any) -> pl.DataFrame:
        if not isinstance(leads, pl.DataFrame):
            try:
                leads = pl.DataFrame(leads)
            except (TypeError, ValueError) as error:
                raise InvalidArgument(f"leads must be a polars DataFrame, got {type(leads).__name__}: {error}") from None
        wanted = [*self.categorical, *self.log_numeric, *self.numeric]
        missing = [column for column in wanted if column not in leads.columns]
        if missing:
            raise InvalidArgument(f"leads lacks the feature column(s) {', '.join(missing)}; it has {', '.join(leads.columns)}")
        for column in [*self.log_numeric, *self.numeric]:
            if not leads[column].dtype.is_numeric():
                raise InvalidArgument(f"leads column {column} must be numeric, got {leads[column].dtype}")
        return leads

    def _numbers(self, leads: pl.DataFrame) -> np.ndarray:
        """Numeric features after the log transform, NaN where missing."""
        parts = [
            np.log(np.maximum(leads[column].cast(pl.Float64).to_numpy(), 1.0)) for column in self.log_numeric
        ] + [leads[column].cast(pl.Float64).to_numpy() for column in self.numeric]
        numbers = np.column_stack(parts) if parts else np.zeros((leads.height, 0))
        if np.isinf(numbers).any():
            column = ([*self.log_numeric, *self.numeric])[int(np.flatnonzero(np.isinf(numbers).any(axis=0))[0])]
            raise InvalidArgument(f"leads column {column} has infinite values")
        return numbers

    def _dummies(self, leads: pl.DataFrame) -> np.ndarray:
        blocks = []
        for column in self.categorical:
            values = leads[column].cast(pl.String).fill_null(MISSING_LEVEL).to_numpy()
            blocks.append(np.column_stack([values == level for level in self.levels_[column][1:]])
                          if len(self.levels_[column]) > 1 else np.zeros((leads.height, 0)))
        return np.hstack(blocks).astype(np.float64) if blocks else np.zeros((leads.height, 0))

    def _design(self, leads: pl.DataFrame, numbers: np.ndarray) -> np.ndarray:
        """Indicators, then standardised numbers (missing ones at the mean, i.e. zero)."""
        standardised = np.nan_to_num((numbers - self.center_) / self.scale_, nan=0.0)
        return np.hstack([self._dummies(leads), standardised])
