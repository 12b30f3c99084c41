"""The workbench's money summaries never add amounts across currencies: the bundled sample's two
companies keep their books in USD and EUR, and each summary has one group per currency whose
totals equal the per-company figures of that currency, computed here from the SQL views."""

from __future__ import annotations

from decimal import Decimal

import pytest

from crm_lab.workbench import open_workbench

AS_OF, T0 = "2025-03-31 23:59:59", "2025-01-01"


@pytest.fixture(scope="module")
def wb():
    with open_workbench(None) as workbench:
        yield workbench


@pytest.fixture(scope="module")
def currency_of(wb) -> dict[str, str]:
    currencies = dict(wb.con.sql("SELECT company_id, home_currency FROM companies").fetchall())
    assert len(set(currencies.values())) == 2  # the point of these tests
    return currencies


def per_currency(rows, currency_of) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for company, amount in rows:
        totals[currency_of[company]] = totals.get(currency_of[company], Decimal(0)) + amount
    return totals


def test_open_pipeline_by_stage_is_summed_per_currency(wb, currency_of):
    by_stage = wb.pipeline_by_stage(AS_OF)
    expected = per_currency(wb.con.sql(
        f"SELECT company_id, sum(amount) FROM deals_as_of(TIMESTAMPTZ '{AS_OF}') WHERE NOT is_closed GROUP BY 1"
    ).fetchall(), currency_of)
    got = {c: sum(part["amount"].to_list(), Decimal(0)) for (c,), part in by_stage.group_by("currency")}
    assert got == expected
    assert by_stage.select("currency", "stage").is_unique().all()


def test_the_waterfall_has_a_row_per_currency_that_balances_to_the_cent(wb, currency_of):
    totals = wb.waterfall(T0, AS_OF)
    by_company = wb.con.sql(
        f"SELECT company_id, start, \"end\", reopened FROM pipeline_waterfall(TIMESTAMPTZ '{T0}', TIMESTAMPTZ '{AS_OF}') "
        "WHERE grouped_by = 'company'"
    ).fetchall()
    assert sorted(totals["currency"].to_list()) == sorted(set(currency_of.values()))
    for row in totals.iter_rows(named=True):
        moved = (row["start"] + row["created"] + row["pulled_in"] + row["amount_up"] - row["amount_down"]
                 - row["pushed_out"] - row["won"] - row["lost"])
        assert moved == row["end"]
        assert row["start"] == per_currency([(c, s) for c, s, _, _ in by_company], currency_of)[row["currency"]]
        assert row["end"] == per_currency([(c, e) for c, _, e, _ in by_company], currency_of)[row["currency"]]
        assert row["reopened"] == per_currency([(c, r) for c, _, _, r in by_company], currency_of)[row["currency"]]
        assert 0 <= row["reopened"] <= row["created"]


def test_snapshots_are_summed_per_currency_and_period_end(wb, currency_of):
    trend = wb.snapshots()
    assert trend.select("currency", "period_end").is_unique().all()
    expected = per_currency(wb.con.sql("SELECT company_id, sum(amount) FROM pipeline_snapshots GROUP BY 1").fetchall(),
                            currency_of)
    assert {c: sum(part["amount"].to_list(), Decimal(0)) for (c,), part in trend.group_by("currency")} == expected
