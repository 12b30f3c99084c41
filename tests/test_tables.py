"""Report tables: each value formatted as a manager reads it, worked out by hand."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal

import polars as pl
import pytest

from crm_lab.tables import decimals, frame_html, number, percentage, table, whole_units


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (126191.573034, "126,192"),
        (1000.0, "1,000"),
        (999.994, "999.99"),
        (82.5, "82.50"),
        (-3.14159, "-3.14"),
        (0.454545, "0.455"),
        (0.004998, "0.005"),
        (0.00025, "0.00025"),
        (0.0, "0"),
        (0.8, "0.80"),
        (-0.25, "-0.25"),
        (math.nan, "nan"),
        (-math.inf, "-inf"),
        (1234567, "1,234,567"),
        (Decimal("402"), "402"),
        (Decimal("12345.60"), "12,346"),
        (True, "yes"),
        (False, "no"),
        ("2025-04", "2025-04"),
        (date(2025, 6, 30), "2025-06-30"),
    ],
)
def test_number_formats_by_kind_and_size(value, text):
    assert number(value) == text


def test_money_and_percent_formats():
    assert whole_units(548809.5) == "548,810"
    assert percentage(0.00025) == "0.0%"
    assert percentage(0.2456) == "24.6%"
    assert decimals(1)(1234.56) == "1,234.6"
    assert decimals(2)(Decimal("1234567.05")) == "1,234,567.05"
    assert whole_units(Decimal("1234.50")) == "1,234"  # to the even unit, as Python rounds


def test_table_html_formats_each_column_and_aligns_numbers():
    frame = pl.DataFrame({"period": ["2025-04", None], "booked": [179610.0, 85840.4], "p_quota": [1.0, 0.00025],
                          "deals": [29, 3]})
    shown = table(frame, money=["booked"], percent=["p_quota"])._repr_html_()
    left, right = ' style="text-align:left"', ' style="text-align:right"'
    assert shown == (
        f'<table class="crm-lab-table"><thead><tr><th{left}>period</th>'
        f"<th{right}>booked</th><th{right}>p_quota</th><th{right}>deals</th></tr></thead><tbody>"
        f"<tr><td{left}>2025-04</td><td{right}>179,610</td><td{right}>100.0%</td><td{right}>29</td></tr>"
        f"<tr><td{left}></td><td{right}>85,840</td><td{right}>0.0%</td><td{right}>3</td></tr>"
        "</tbody></table>"
    )


def test_text_is_escaped():
    assert '<td style="text-align:left">&lt;b&gt;</td>' in frame_html(pl.DataFrame({"name": ["<b>"]}))


def test_a_long_table_shows_its_head_and_tail_around_a_gap():
    frame = pl.DataFrame({"k": list(range(1, 26))})
    shown = table(frame, max_rows=4)
    html = shown._repr_html_()
    cells = [c.split("</td>")[0].split(">")[-1] for c in html.split("<td")[1:]]
    assert cells == ["1", "2", "…", "24", "25"]
    assert html.endswith("<p class=\"crm-lab-table-note\">4 of 25 rows shown</p>")
    assert repr(shown).split("\n") == [" k", " 1", " 2", " …", "24", "25"]


def test_a_format_for_a_missing_column_is_an_error():
    with pytest.raises(KeyError, match="no column 'amount'"):
        table(pl.DataFrame({"amt": [1.0]}), money=["amount"])
