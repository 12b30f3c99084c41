"""pipeline_movement / pipeline_waterfall on a hand-worked event log: what `created` and
`reopened` count, t1 before t0 refused, t1 = t0 without movement; the file's views (written by
replay) and a workbench session's (re-created from the package) agree."""

from __future__ import annotations

from decimal import Decimal

import duckdb
import pytest

from crm_lab.tenancy import open_connection
from tests.conftest import event, query, replayed_log

T0, T1 = "2024-01-01 00:00:00", "2024-02-01 00:00:00"
NEW = {"stage": "prospecting", "expected_close_date": "2024-06-30", "owner_rep_id": "r1"}

LOG = [
    # D1: created in the window (100), lost, reopened at 120: open at T1.
    event("1a", "D1", "created", "2024-01-05T10:00:00Z", {**NEW, "amount": "100.00"}, seq=1),
    event("1b", "D1", "lost", "2024-01-10T10:00:00Z", {"lost_reason": "price"}, seq=2),
    event("1c", "D1", "reopened", "2024-01-15T10:00:00Z", {"stage": "qualification", "amount": "120.00"}, seq=3),
    # D2: open at T0 (50), won, reopened, won again.
    event("2a", "D2", "created", "2023-12-01T10:00:00Z", {**NEW, "amount": "50.00"}, seq=1),
    event("2b", "D2", "won", "2024-01-08T10:00:00Z", {}, seq=2),
    event("2c", "D2", "reopened", "2024-01-12T10:00:00Z", {"stage": "negotiation"}, seq=3),
    event("2d", "D2", "won", "2024-01-20T10:00:00Z", {}, seq=4),
    # D3: new in the window (70), open at T1.
    event("3a", "D3", "created", "2024-01-03T10:00:00Z", {**NEW, "amount": "70.00"}, seq=1),
    # D4: lost before T0, reopened in the window (30).
    event("4a", "D4", "created", "2023-11-01T10:00:00Z", {**NEW, "amount": "30.00"}, seq=1),
    event("4b", "D4", "lost", "2023-12-15T10:00:00Z", {}, seq=2),
    event("4c", "D4", "reopened", "2024-01-20T10:00:00Z", {"stage": "proposal"}, seq=3),
]
COLUMNS = ("start", "created", "reopened", "pulled_in", "amount_up", "amount_down", "pushed_out", "won", "lost", '"end"')
D = Decimal
# Worked by hand from LOG (columns as in COLUMNS).
PER_DEAL = {
    "D1": (D(0), D(220), D(120), D(0), D(0), D(0), D(0), D(0), D(100), D(120)),
    "D2": (D(50), D(50), D(50), D(0), D(0), D(0), D(0), D(100), D(0), D(0)),
    "D3": (D(0), D(70), D(0), D(0), D(0), D(0), D(0), D(0), D(0), D(70)),
    "D4": (D(0), D(30), D(30), D(0), D(0), D(0), D(0), D(0), D(0), D(30)),
}
COMPANY = (D(50), D(370), D(200), D(0), D(0), D(0), D(0), D(100), D(100), D(220))


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    return replayed_log(tmp_path_factory.mktemp("reopened"), *LOG)


def _session_rows(db, sql):
    con = open_connection(db)
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("where", ["file", "session"])
def test_created_counts_reopens_again_and_reopened_says_how_much(replayed, where):
    run = (lambda sql: query(replayed, sql)) if where == "file" else (lambda sql: _session_rows(replayed, sql))
    rows = run(f"SELECT deal_id, {', '.join(COLUMNS)} FROM pipeline_movement('{T0}', '{T1}') ORDER BY deal_id")
    assert {r[0]: r[1:] for r in rows} == PER_DEAL
    (company,) = run(f"SELECT {', '.join(COLUMNS)} FROM pipeline_waterfall('{T0}', '{T1}') WHERE grouped_by = 'company'")
    assert company == COMPANY
    start, created, reopened, pulled_in, up, down, pushed, won, lost, end = company
    assert start + created + pulled_in + up - down - pushed - won - lost == end
    assert created - reopened == D(170)  # new pipeline: D1's 100 and D3's 70


@pytest.mark.parametrize("where", ["file", "session"])
@pytest.mark.parametrize("macro", ["pipeline_movement", "pipeline_waterfall"])
def test_t1_before_t0_is_refused_naming_both_instants(replayed, where, macro):
    sql = f"SELECT * FROM {macro}('{T1}', '{T0}')"
    with pytest.raises(duckdb.InvalidInputException) as caught:
        query(replayed, sql) if where == "file" else _session_rows(replayed, sql)
    assert str(caught.value) == ("Invalid Input Error: pipeline_movement: t1 (2024-01-01 00:00:00+00) "
                                 "must not be before t0 (2024-02-01 00:00:00+00)")


def test_t1_before_t0_is_refused_even_with_no_deal_in_the_pipeline(replayed):
    with pytest.raises(duckdb.InvalidInputException, match="must not be before t0"):
        query(replayed, "SELECT count(*) FROM pipeline_movement('2000-02-01', '2000-01-01')")


def test_t1_equal_to_t0_is_the_pipeline_without_movement(replayed):
    rows = query(replayed, f"SELECT deal_id, {', '.join(COLUMNS)} FROM pipeline_movement('2024-01-16', '2024-01-16') "
                           "ORDER BY deal_id")
    # Open on 16 Jan: D1 (reopened at 120), D2 (reopened, 50), D3 (70); D4 is still lost.
    zero = (D(0),) * 8
    assert rows == [("D1", D(120), *zero, D(120)), ("D2", D(50), *zero, D(50)), ("D3", D(70), *zero, D(70))]
