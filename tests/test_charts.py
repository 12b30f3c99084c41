"""Chart labels: amounts as a manager reads them, and value axes that say what they count."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import polars as pl  # noqa: E402
import pytest  # noqa: E402

from crm_lab.charts import bar_chart, line_chart, money  # noqa: E402


@pytest.mark.parametrize(("value", "text"), [(3_521_120.0, "3.52M"), (-1_669_540.0, "-1.67M"), (374_310.0, "374.3k"),
                                             (999.0, "999"), (0.0, "0")])
def test_money_labels(value, text):
    assert money(value) == text


@pytest.mark.parametrize(("chart", "axis", "tick"), [(bar_chart, "money", "1.20M"), (line_chart, "money", "1.20M"),
                                                     (bar_chart, "share", "40%")])
def test_the_value_axis_labels_amounts_or_shares(chart, axis, tick):
    import matplotlib.pyplot as plt

    value = 1_200_000.0 if axis == "money" else 0.4
    fig = chart(pl.DataFrame({"x": [1, 2], "y": [value / 2, value]}), "x", "y", "title", axis=axis)
    try:
        ax = fig.axes[0]
        assert ax.yaxis.get_major_formatter()(value, 0) == tick
    finally:
        plt.close(fig)


def test_forecast_charts_name_the_currency_of_their_amounts():
    import datetime as dt

    import matplotlib.pyplot as plt
    import numpy as np

    from crm_lab.forecast.charts import backtest_chart, fan_chart, histogram, tornado_chart
    from crm_lab.forecast.periods import forecast_window

    window = forecast_window(dt.datetime(2025, 7, 1, tzinfo=dt.timezone.utc), "quarter")
    samples = np.random.default_rng(0).gamma(2.0, 1e5, (200, len(window.periods)))
    knobs = pl.DataFrame({"knob": ["win_rate"], "low": [0.9], "high": [1.1], "swing": [2e4],
                          "p50_low": [9e5], "p50_base": [1e6], "p50_high": [1.1e6]})
    as_of = dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc)
    rows = pl.DataFrame({"company_id": ["c2"] * 2, "group_by": ["company"] * 2, "as_of": [as_of] * 2,
                         "method": ["monte_carlo", "weighted_pipeline"], "p10": [1.0, 2.0], "p50": [3.0, 4.0],
                         "p90": [5.0, 6.0], "actual": [3.5, 3.5]})
    figures = {
        "fan": (fan_chart(samples, window, currency="EUR"), lambda ax: ax.get_ylabel(), "cumulative bookings (EUR)"),
        "histogram": (histogram(samples.sum(axis=1), currency="EUR"), lambda ax: ax.get_xlabel(),
                      "total bookings (EUR) (lines: P10, P50, P90)"),
        "tornado": (tornado_chart(knobs, currency="EUR"), lambda ax: ax.get_xlabel(), "P50 (EUR)"),
        "backtest": (backtest_chart(rows, "c2", currency="EUR"), lambda ax: ax.get_ylabel(), "bookings (EUR)"),
        "no currency": (fan_chart(samples, window), lambda ax: ax.get_ylabel(), "cumulative bookings"),
    }
    try:
        assert {name: label(fig.axes[0]) for name, (fig, label, _) in figures.items()} == {
            name: expected for name, (_, _, expected) in figures.items()}
    finally:
        for fig, _, _ in figures.values():
            plt.close(fig)
