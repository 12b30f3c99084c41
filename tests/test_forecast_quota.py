"""The quota a forecast compares with: each active rep's annual bookings quota prorated by
calendar day (1/365 of it per day, 1/366 in a leap year), counted from the rep's hiring day."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import polars as pl
import pytest

from crm_lab.forecast import prepare
from crm_lab.forecast.inputs import group_labels, quota_by_period
from crm_lab.workbench import sample_database
from tests.conftest import query


@pytest.fixture(scope="module")
def case_2024():
    return prepare(sample_database(), as_of="2024-06-01", horizon="year", company="c2")[0]


def test_a_hand_worked_leap_year(case_2024):
    """2024 has 366 days: a 366,000 quota is 1,000 a day. A rep hired on 15 March counts from
    that day; an inactive rep, an SDR (no bookings quota) and a rep hired in 2025 count nothing."""
    reps = pl.DataFrame({
        "company_id": ["c2"] * 5,
        "rep_id": ["a", "b", "c", "d", "e"],
        "team": ["Enterprise", "Enterprise", "SMB", "SMB", "SMB"],
        "territory_id": ["t"] * 5,
        "is_active": [True, True, False, True, True],
        "hired_at": [dt.date(2019, 1, 1), dt.date(2024, 3, 15), None, dt.date(2020, 1, 1), dt.date(2025, 2, 1)],
        "bookings_quota": [366_000.0, 120_000.0, 73_000.0, None, 50_000.0],
    })
    case = replace(case_2024, reps=reps)
    days = np.array([31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    b_days = days.copy()
    b_days[:2] = 0
    b_days[2] = 17  # 15 to 31 March
    expected_enterprise = days * 1_000.0 + b_days * 120_000.0 / 366
    assert quota_by_period(case, None) == pytest.approx(expected_enterprise, abs=1e-9)
    teams = group_labels(case, "team")
    by_team = quota_by_period(case, "team")
    assert by_team[:, teams.index("Enterprise")] == pytest.approx(expected_enterprise, abs=1e-9)
    assert (by_team[:, teams.index("SMB")] == 0).all()  # e carries a quota, from 2025
    assert np.isnan(by_team[:, teams.index("Mid-Market")]).all()  # nobody there carries one
    assert quota_by_period(case, None).sum() == pytest.approx(366_000 + 120_000 * 292 / 366, abs=1e-9)


PER_DAY = """
    SELECT sum(r.quota / (CASE WHEN (year(d) % 4 = 0 AND year(d) % 100 <> 0) OR year(d) % 400 = 0
                               THEN 366 ELSE 365 END))
    FROM reps r, generate_series(CAST(? AS DATE), CAST(? AS DATE), INTERVAL 1 DAY) AS days(d)
    WHERE r.company_id = 'c2' AND r.role <> 'SDR' AND r.is_active AND (r.hired_at IS NULL OR d >= r.hired_at)
"""


@pytest.mark.parametrize(("as_of", "horizon"), [("2024-06-01", "year"), ("2025-01-01", "year"), ("2025-07-01", "quarter")])
def test_the_sample_companys_quota_day_by_day(as_of, horizon):
    db = sample_database()
    case = prepare(db, as_of=as_of, horizon=horizon, company="c2")[0]
    quota = quota_by_period(case, None)
    for k, period in enumerate(case.window.periods):
        (expected,), = query(db, PER_DAY, [period.start, period.last_day])
        assert quota[k] == pytest.approx(float(expected), abs=1e-6)
    if horizon == "year":  # nobody in the sample was hired after 2023: a calendar year is the annual quota
        (annual,), = query(db, "SELECT sum(quota) FROM reps WHERE company_id = 'c2' AND role <> 'SDR' AND is_active")
        assert quota.sum() == pytest.approx(float(annual), abs=1e-6)
