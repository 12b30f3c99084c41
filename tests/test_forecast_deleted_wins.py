"""A won deal deleted afterwards stops counting as booked once the deletion is known: the
forecast's bookings, new-pipeline wins and backtest actuals (won_closes.sql) agree with
deals_as_of at the same instant."""

from __future__ import annotations

import duckdb
import pytest

from crm_lab.forecast.data import read_histories
from tests.conftest import event, replayed_log

NEW = {"stage": "proposal", "expected_close_date": "2024-02-28", "owner_rep_id": "r1", "currency": "USD"}
LOG = [
    event("k1", "KEPT", "created", "2024-01-02T09:00:00Z", {**NEW, "amount": "100.00"}, seq=1),
    event("k2", "KEPT", "won", "2024-01-10T09:00:00Z", {}, seq=2),
    event("g1", "GONE", "created", "2024-01-03T09:00:00Z", {**NEW, "amount": "250.00"}, seq=1),
    event("g2", "GONE", "won", "2024-01-12T09:00:00Z", {}, seq=2),
    event("g3", "GONE", "deleted", "2024-01-20T09:00:00Z", {}, seq=3),
]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return replayed_log(tmp_path_factory.mktemp("deleted_wins"), *LOG)


@pytest.mark.parametrize(("until", "booked"), [
    ("2024-01-15 00:00:00", {"KEPT": 100.0, "GONE": 250.0}),  # the deletion is not known yet
    ("2024-01-20 09:00:00", {"KEPT": 100.0}),  # known from its instant on
    ("2024-03-01 00:00:00", {"KEPT": 100.0}),
])
def test_wins_are_the_won_deals_still_standing_at_the_instant(db, until, booked):
    con = duckdb.connect(str(db), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        wins = read_histories(con, until=until)["c1"].wins
        standing = dict(con.sql(f"SELECT deal_id, CAST(amount AS DOUBLE) FROM deals_as_of(TIMESTAMPTZ '{until}+00') "
                                "WHERE is_won").fetchall())
    finally:
        con.close()
    assert dict(zip(wins["deal_id"], wins["amount"])) == booked == standing
