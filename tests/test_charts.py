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
