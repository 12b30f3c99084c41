"""The conversion model (scikit-learn's objective, the generator's truth recovered) and the
calibration report (scikit-learn's numbers)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from crm_lab import _world as W
from crm_lab.errors import InvalidArgument
from crm_lab.leads import ConversionModel, calibration_report
from crm_lab.leads.model import fit_logistic

TRUTH = W.PARAMS["leads"]["conversion"]


def generated_leads(n: int, seed: int) -> tuple[pl.DataFrame, np.ndarray]:
    """Leads drawn the way the generator draws them, converting by its logistic model."""
    rng = np.random.default_rng(seed)
    source = rng.integers(0, len(W.SOURCES), n)
    industry = rng.integers(0, len(W.INDUSTRIES), n)
    employees = np.maximum(1, np.round(rng.lognormal(np.log(120), 1.4, n))).astype(np.int64)
    score = np.round(100 * rng.beta(2.0, 2.5, n), 1)
    logit = W.conversion_logit(source, industry, employees, score)
    converted = rng.random(n) < 1 / (1 + np.exp(-logit))
    frame = pl.DataFrame(
        {
            "source": np.array(W.SOURCES)[source],
            "industry": np.array(W.INDUSTRIES)[industry],
            "employees": employees,
            "score": score,
            # engagement: no effect in truth
            "calls": rng.poisson(0.3, n),
            "emails": rng.poisson(0.3, n),
            "meetings": rng.poisson(0.1, n),
            "tasks": rng.poisson(0.1, n),
        }
    )
    return frame, converted


def truth_contrast(feature: str, reference: dict[str, str]) -> float:
    """The generator's coefficient of a fitted feature, relative to the fitted reference level."""
    if feature == "log(employees)":
        return TRUTH["log_employees"]
    if feature == "score":
        return TRUTH["score"]
    if feature in ("calls", "emails", "meetings", "tasks"):
        return 0.0
    column, level = feature.split("=")
    return TRUTH[column][level] - TRUTH[column][reference[column]]


def test_fit_logistic_matches_scikit_learn_on_the_same_design():
    rng = np.random.default_rng(0)
    design = rng.normal(size=(3000, 5))
    converted = rng.random(3000) < 1 / (1 + np.exp(-(design @ [1.0, -0.5, 0.0, 0.25, 2.0] - 0.3)))
    for C in (0.01, 1.0, 100.0):
        weights, intercept, _, iterations, converged = fit_logistic(design, converted, C=C)
        reference = LogisticRegression(C=C, solver="newton-cholesky", tol=1e-12, max_iter=1000).fit(design, converted)
        assert converged and iterations < 20
        np.testing.assert_allclose(weights, reference.coef_[0], rtol=1e-6, atol=1e-7)
        assert intercept == pytest.approx(reference.intercept_[0], rel=1e-6, abs=1e-7)


def test_coefficients_recover_the_generators_truth():
    leads, converted = generated_leads(60_000, seed=1)
    model = ConversionModel(C=1e4).fit(leads, converted)
    reference = {column: levels[0] for column, levels in model.levels_.items()}
    intercept_truth = (
        TRUTH["intercept"] + TRUTH["source"][reference["source"]] + TRUTH["industry"][reference["industry"]]
    )
    assert model.converged_
    assert abs(model.intercept_ - intercept_truth) <= 4 * model.intercept_std_error_
    for feature, coefficient, error in zip(model.feature_names_, model.coef_, model.std_errors_):
        expected = truth_contrast(feature, reference)
        assert abs(coefficient - expected) <= 4 * error, (feature, coefficient, expected, error)
        assert abs(coefficient - expected) <= 0.1, feature


def test_standard_errors_match_the_spread_of_refits():
    """The reported standard errors are honest: refits on fresh samples scatter by about as much.
    (Numeric features only: the reference level of a categorical one may differ between fits.)"""
    fits = [ConversionModel(C=1e4, numeric=["score"]).fit(*generated_leads(4000, seed)) for seed in range(30)]
    spread = np.std([fit.coef_[-2:] for fit in fits], axis=0)
    reported = np.mean([fit.std_errors_[-2:] for fit in fits], axis=0)
    assert fits[0].feature_names_[-2:] == ("log(employees)", "score")
    np.testing.assert_allclose(spread, reported, rtol=0.35)


def test_predict_proba_is_scikit_learn_shaped_and_consistent():
    leads, converted = generated_leads(2000, seed=2)
    model = ConversionModel().fit(leads, converted)
    probabilities = model.predict_proba(leads)
    assert probabilities.shape == (2000, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    np.testing.assert_allclose(probabilities[:, 1], 1 / (1 + np.exp(-model.decision_function(leads))))
    assert list(model.classes_) == [False, True]
    table = model.coefficients()
    assert table["feature"][0] == "(intercept)" and table.height == len(model.feature_names_) + 1
    # Calibrated in the large on its own training data: predicted conversions = observed.
    assert probabilities[:, 1].sum() == pytest.approx(converted.sum(), rel=0.01)


def test_unseen_levels_count_as_the_reference_and_missing_numbers_as_the_mean():
    leads, converted = generated_leads(3000, seed=3)
    model = ConversionModel().fit(leads, converted)
    reference = model.levels_["source"][0]
    one = leads.head(1)
    as_reference = one.with_columns(source=pl.lit(reference))
    as_unknown = one.with_columns(source=pl.lit("carrier pigeon"))
    assert model.predict_proba(as_unknown)[0, 1] == pytest.approx(model.predict_proba(as_reference)[0, 1])
    missing = one.with_columns(score=pl.lit(None, dtype=pl.Float64))
    at_mean = one.with_columns(score=pl.lit(float(leads["score"].mean())))
    assert model.predict_proba(missing)[0, 1] == pytest.approx(model.predict_proba(at_mean)[0, 1])


def test_a_stronger_penalty_shrinks_the_coefficients():
    leads, converted = generated_leads(3000, seed=4)
    weak = ConversionModel(C=100.0).fit(leads, converted)
    strong = ConversionModel(C=0.001).fit(leads, converted)
    assert np.abs(strong.coef_ * np.r_[np.ones(11), strong.scale_]).sum() < np.abs(weak.coef_ * np.r_[np.ones(11), weak.scale_]).sum()


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda leads, y: ConversionModel().fit(leads, np.zeros(len(y), bool)), "converted has one class only"),
        (lambda leads, y: ConversionModel().fit(leads.drop("score"), y), "leads lacks the feature column(s) score"),
        (lambda leads, y: ConversionModel().fit(leads.with_columns(score=pl.lit("high")), y), "leads column score must be numeric"),
        (lambda leads, y: ConversionModel().fit(leads.head(0), y[:0]), "leads is empty"),
        (lambda leads, y: ConversionModel(C=0).fit(leads, y), "C must be > 0, got 0"),
        (lambda leads, y: ConversionModel().fit(leads, y[:-1]), "converted must have one value per lead"),
        (lambda leads, y: ConversionModel().predict_proba(leads), "not fitted yet"),
    ],
)
def test_bad_input_gets_a_clear_message(call, message):
    leads, converted = generated_leads(200, seed=5)
    with pytest.raises(InvalidArgument) as error:
        call(leads, converted)
    assert message in str(error.value)


# ---------------------------------------------------------------------------------- calibration


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_reliability_table_brier_log_loss_and_auc_equal_scikit_learn(strategy):
    rng = np.random.default_rng(6)
    probabilities = np.round(rng.beta(2, 4, 3000), 2)  # many ties
    converted = rng.random(3000) < probabilities
    report = calibration_report(converted, probabilities, bins=8, strategy=strategy)
    observed, predicted = calibration_curve(converted, probabilities, n_bins=8, strategy=strategy)
    np.testing.assert_allclose(report.reliability["observed_rate"].to_numpy(), observed, rtol=1e-12)
    np.testing.assert_allclose(report.reliability["mean_predicted"].to_numpy(), predicted, rtol=1e-12)
    assert report.reliability["leads"].sum() == 3000
    assert report.brier == pytest.approx(brier_score_loss(converted, probabilities), rel=1e-12)
    assert report.log_loss == pytest.approx(log_loss(converted, probabilities), rel=1e-9)
    assert report.auc == pytest.approx(roc_auc_score(converted, probabilities), rel=1e-12)
    assert report.observed_rate == pytest.approx(converted.mean())


def test_calibration_report_refuses_what_it_cannot_judge():
    with pytest.raises(InvalidArgument, match="converted has one class only"):
        calibration_report([1, 1], [0.2, 0.3])
    with pytest.raises(InvalidArgument, match=r"probabilities must lie in \[0, 1\], got 1.5"):
        calibration_report([1, 0], [1.5, 0.3])
    with pytest.raises(InvalidArgument, match="strategy must be one of quantile, uniform; got 'kmeans'"):
        calibration_report([1, 0], [0.5, 0.3], strategy="kmeans")
