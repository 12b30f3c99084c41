"""``pipeline_movement(t0, t1)``: a waterfall that balances exactly, per deal and in total, from the
pipeline as of t0 to the pipeline as of t1, optionally within a close-date window.

    start + created + pulled_in + amount_up - amount_down - pushed_out - won - lost = end

The pipeline at an instant is the open deals (whose expected_close_date is in the window, when
there is one). Between t0 and t1 a deal moves: it enters (created, pulled_in) and leaves (won,
lost, pushed_out) at the amount it has when it crosses the edge, and changes of amount while it
is inside are amount_up / amount_down.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import event
from tests.reference_fold import Folded, fold_batches, generate, history_as_of
from tests.test_replay_reference import connect_ro, dicts, load_batches, replay, utc

BUCKETS = ("start", "created", "pulled_in", "amount_up", "amount_down", "pushed_out", "won", "lost", "end")
ZERO = Decimal("0.00")
SEEDS = (3, 7, 11, 201, 208)


def movement(db: Path, t0: datetime, t1: datetime, window: tuple[date, date] | None = None) -> list[dict]:
    args = f"TIMESTAMPTZ '{t0.isoformat()}', TIMESTAMPTZ '{t1.isoformat()}'"
    if window:
        args += f", close_from := DATE '{window[0]}', close_to := DATE '{window[1]}'"
    return dicts(db, f'SELECT * FROM pipeline_movement({args})')


def balance(row: dict) -> Decimal:
    return (row["start"] + row["created"] + row["pulled_in"] + row["amount_up"] - row["amount_down"]
            - row["pushed_out"] - row["won"] - row["lost"])


def in_pipeline(state: dict | None, window: tuple[date, date] | None) -> bool:
    if state is None or state["is_closed"]:
        return False
    if window is None:
        return True
    ecd = state["expected_close_date"]
    return ecd is not None and window[0] <= ecd <= window[1]


def pipeline_amounts(folded: Folded, ts: datetime, window) -> dict[tuple[str, str], Decimal]:
    return {k: r["amount"] for k, r in history_as_of(folded, "deal", ts).items() if in_pipeline(r, window)}


def expected_won(folded: Folded, t0: datetime, t1: datetime, window) -> dict[tuple[str, str], Decimal]:
    """Per deal: the amounts at which it was won in (t0, t1] out of the pipeline, i.e. at a version
    whose previous state (the one in force just before the win) was in the pipeline: open, and
    closing in the window. A deal pushed out of the window, or lost, and won after that, was not
    won from this pipeline (it left it before); a deal created already won at one instant never
    was in it. Won, reopened and won again inside the interval is two wins. An open deal outside
    the window that is won on a day inside it closed early: it is pulled in and won at once (as in
    a CRM that sets the close date to the day of the win)."""
    won: dict[tuple[str, str], Decimal] = {}
    deals: dict[tuple[str, str], list[dict]] = {}
    for r in folded.histories["deal"]:
        deals.setdefault((r["company_id"], r["deal_id"]), []).append(r)
    for key, versions in deals.items():
        versions.sort(key=lambda r: r["version"])
        for prev, v in zip(versions, versions[1:]):
            if not (t0 < v["valid_from"] <= t1 and v["is_won"]):
                continue
            closes_in_window = window is None or window[0] <= v["closed_at"].date() <= window[1]
            if not prev["is_closed"] and (in_pipeline(prev, window) or closes_in_window):
                won[key] = won.get(key, ZERO) + v["amount"]
    return won


def intervals(folded: Folded, seed: int, n: int) -> list[tuple[datetime, datetime]]:
    rng = random.Random(seed)
    instants = sorted({e.occurred_at for e in folded.valid})
    lo, hi = instants[0] - timedelta(days=1), instants[-1] + timedelta(days=1)
    span = int((hi - lo).total_seconds())
    out = [(lo, hi), (instants[0], instants[-1])]
    while len(out) < n:
        a = rng.choice(instants) if rng.random() < 0.5 else lo + timedelta(seconds=rng.randrange(span))
        b = rng.choice(instants) if rng.random() < 0.5 else lo + timedelta(seconds=rng.randrange(span))
        out.append((min(a, b), max(a, b)))
    return out


def windows(seed: int) -> list[tuple[date, date] | None]:
    rng = random.Random(seed)
    out: list[tuple[date, date] | None] = [None]
    for _ in range(2):
        a = date(2024, 1, 15) + timedelta(days=rng.randint(0, 200))
        out.append((a, a + timedelta(days=rng.randint(0, 90))))
    return out


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    """Generated logs, loaded and replayed once for the whole module."""
    out = {}
    for seed in SEEDS:
        folder = tmp_path_factory.mktemp(f"movement{seed}")
        db = folder / "crm.duckdb"
        log = generate(seed, deals=20, leads=1, accounts=1)
        load_batches(db, folder / "in", log.batches)
        replay(db)
        out[seed] = (db, fold_batches(log.batches))
    return out


@pytest.mark.parametrize("seed", SEEDS)
def test_every_deal_and_the_total_balance_exactly_on_random_intervals(replayed, seed):
    db, folded = replayed[seed]
    for window in windows(seed):
        for t0, t1 in intervals(folded, seed, 12):
            got = movement(db, t0, t1, window)
            where = f"pipeline_movement({t0}, {t1}, window={window})"
            for row in got:
                assert balance(row) == row["end"], f"{where}: deal {row['company_id']}/{row['deal_id']} " + str(
                    {b: row[b] for b in BUCKETS})
            totals = {b: sum((r[b] for r in got), ZERO) for b in BUCKETS}
            assert balance(totals) == totals["end"], f"{where}: totals {totals}"
            keys = [(r["company_id"], r["deal_id"]) for r in got]
            assert len(keys) == len(set(keys)), f"{where}: more than one row for a deal"


@pytest.mark.parametrize("seed", SEEDS)
def test_buckets_are_non_negative_amounts(replayed, seed):
    """A waterfall's bars are magnitudes: what goes down is in amount_down, pushed_out, won, lost."""
    db, folded = replayed[seed]
    for window in windows(seed):
        for t0, t1 in intervals(folded, seed, 8):
            for row in movement(db, t0, t1, window):
                negative = {b: row[b] for b in BUCKETS if row[b] is None or row[b] < 0}
                assert not negative, f"pipeline_movement({t0}, {t1}, {window}) deal {row['deal_id']}: {negative}"


@pytest.mark.parametrize("seed", SEEDS)
def test_start_and_end_are_the_pipeline_as_of_t0_and_t1(replayed, seed):
    db, folded = replayed[seed]
    con = connect_ro(db)
    try:
        for window in windows(seed):
            in_window = "" if window is None else f" AND expected_close_date BETWEEN DATE '{window[0]}' AND DATE '{window[1]}'"
            for t0, t1 in intervals(folded, seed, 10):
                got = movement(db, t0, t1, window)
                for bucket, ts in (("start", t0), ("end", t1)):
                    as_of = con.sql(f"SELECT coalesce(sum(amount), 0) FROM deals_as_of(TIMESTAMPTZ '{ts.isoformat()}') "
                                    f"WHERE NOT is_closed{in_window}").fetchall()[0][0]
                    total = sum((r[bucket] for r in got), ZERO)
                    assert total == as_of, f"{bucket} of ({t0}, {t1}, {window}): {total} vs deals_as_of {as_of}"
                    # And deal by deal, against the reference.
                    expected = pipeline_amounts(folded, ts, window)
                    per_deal = {(r["company_id"], r["deal_id"]): r[bucket] for r in got if r[bucket] != 0}
                    assert per_deal == {k: v for k, v in expected.items() if v != 0}, f"{bucket} per deal at {ts}, {window}"
    finally:
        con.close()


@pytest.mark.parametrize("seed", SEEDS)
def test_won_is_what_closed_won_out_of_the_pipeline(replayed, seed):
    db, folded = replayed[seed]
    for window in windows(seed):
        for t0, t1 in intervals(folded, seed, 10):
            expected = expected_won(folded, t0, t1, window)
            got = {(r["company_id"], r["deal_id"]): r["won"] for r in movement(db, t0, t1, window) if r["won"] != 0}
            if got != expected:
                wrong = {k: (str(expected.get(k, 0)), str(got.get(k, 0))) for k in sorted(set(got) | set(expected))
                         if got.get(k, 0) != expected.get(k, 0)}
                pytest.fail(f"won in ({t0}, {t1}], window {window}: deal -> (expected, got): {wrong}")


def test_an_empty_interval_moves_nothing(replayed):
    db, folded = replayed[SEEDS[0]]
    ts = sorted({e.occurred_at for e in folded.valid})[len(folded.valid) // 3]
    for row in movement(db, ts, ts):
        assert row["start"] == row["end"]
        assert all(row[b] == 0 for b in BUCKETS if b not in ("start", "end")), row


# --------------------------------------------------------------------------------------------------
# A worked example
# --------------------------------------------------------------------------------------------------

T0, T1 = "2024-01-10T00:00:00Z", "2024-01-31T00:00:00Z"
MARCH = (date(2024, 3, 1), date(2024, 3, 31))


def new(amount: str, close: str) -> dict:
    return {"stage": "prospecting", "amount": amount, "expected_close_date": close, "owner_rep_id": "r1", "currency": "EUR"}


WORKED_LOG = [
    # D1 is created in the interval at 100, raised to 150, then won: created 100, up 50, won 150.
    event("d1a", "D1", "created", "2024-01-12T09:00:00Z", new("100.00", "2024-03-31"), seq=1),
    event("d1b", "D1", "amount_changed", "2024-01-15T09:00:00Z", {"amount": "150.00"}, seq=2),
    event("d1c", "D1", "won", "2024-01-20T09:00:00Z", {}, seq=3),
    # D2 is in the pipeline at t0 at 200 and lowered to 120: down 80, ends at 120.
    event("d2a", "D2", "created", "2024-01-01T09:00:00Z", new("200.00", "2024-03-10"), seq=1),
    event("d2b", "D2", "amount_changed", "2024-01-14T09:00:00Z", {"amount": "120.00"}, seq=2),
    # D3 is in the pipeline at t0 at 300 and lost: lost 300.
    event("d3a", "D3", "created", "2024-01-02T09:00:00Z", new("300.00", "2024-03-05"), seq=1),
    event("d3b", "D3", "lost", "2024-01-16T09:00:00Z", {"lost_reason": "price"}, seq=2),
    # D4 was won before t0: not in the pipeline at all.
    event("d4a", "D4", "created", "2024-01-03T09:00:00Z", new("50.00", "2024-03-15"), seq=1),
    event("d4b", "D4", "won", "2024-01-05T09:00:00Z", {}, seq=2),
    # D5 is created after t1: not in the interval.
    event("d5a", "D5", "created", "2024-02-02T09:00:00Z", new("999.00", "2024-03-15"), seq=1),
    # D6 closes in March at t0 and is pushed to April: out of a March window (pushed_out 400),
    # unchanged without a window.
    event("d6a", "D6", "created", "2024-01-01T09:00:00Z", new("400.00", "2024-03-15"), seq=1),
    event("d6b", "D6", "close_date_changed", "2024-01-18T09:00:00Z", {"expected_close_date": "2024-04-15"}, seq=2),
    # D7 closes in May at t0 and is pulled into March: into a March window (pulled_in 70).
    event("d7a", "D7", "created", "2024-01-01T09:00:00Z", new("70.00", "2024-05-01"), seq=1),
    event("d7b", "D7", "close_date_changed", "2024-01-19T09:00:00Z", {"expected_close_date": "2024-03-20"}, seq=2),
]


def buckets(**nonzero) -> dict:
    return {b: Decimal(str(nonzero.get(b, 0))) for b in BUCKETS}


def shown(by_deal: dict) -> dict:
    """Only the non-zero buckets, as text: what a failure message should show."""
    return {deal: {b: str(v) for b, v in row.items() if v != 0} for deal, row in sorted(by_deal.items())}


@pytest.mark.parametrize(
    ("window", "expected", "total"),
    [
        pytest.param(None, {
            "D1": buckets(created=100, amount_up=50, won=150),
            "D2": buckets(start=200, amount_down=80, end=120),
            "D3": buckets(start=300, lost=300),
            "D6": buckets(start=400, end=400),
            "D7": buckets(start=70, end=70),
        }, buckets(start=970, created=100, amount_up=50, amount_down=80, won=150, lost=300, end=590), id="no window"),
        pytest.param(MARCH, {
            "D1": buckets(created=100, amount_up=50, won=150),
            "D2": buckets(start=200, amount_down=80, end=120),
            "D3": buckets(start=300, lost=300),
            "D6": buckets(start=400, pushed_out=400),
            "D7": buckets(pulled_in=70, end=70),
        }, buckets(start=900, created=100, pulled_in=70, amount_up=50, amount_down=80, pushed_out=400, won=150,
                   lost=300, end=190), id="March closes"),
    ],
)
def test_worked_example(db, tmp_path, window, expected, total):
    """Between 10 and 31 January. Deals that never touch the pipeline in the interval (D4 won
    before it, D5 created after it) have no row or a row of zeros."""
    load_batches(db, tmp_path / "in", [WORKED_LOG])
    replay(db)
    got = {r["deal_id"]: {b: r[b] for b in BUCKETS} for r in movement(db, utc(T0), utc(T1), window)}
    zeros = buckets()
    got = {k: v for k, v in got.items() if v != zeros}
    assert got == expected, f"\ngot      {shown(got)}\nexpected {shown(expected)}"
    assert {b: sum((r[b] for r in got.values()), ZERO) for b in BUCKETS} == total
    assert balance(total) == total["end"]


@pytest.mark.parametrize(
    ("log", "window", "expected"),
    [
        pytest.param([
            event("a", "D", "created", "2024-01-12T09:00:00Z", new("100.00", "2024-03-31"), seq=1),
            event("b", "D", "amount_changed", "2024-01-15T09:00:00Z", {"amount": "150.00"}, seq=2),
        ], None, buckets(created=100, amount_up=50, end=150), id="created at 100, raised to 150 inside, open at t1"),
        pytest.param([
            event("a", "D", "created", "2024-01-01T09:00:00Z", new("70.00", "2024-05-01"), seq=1),
            event("b", "D", "amount_changed", "2024-01-12T09:00:00Z", {"amount": "90.00"}, seq=2),
            event("c", "D", "close_date_changed", "2024-01-19T09:00:00Z", {"expected_close_date": "2024-03-20"}, seq=3),
        ], MARCH, buckets(pulled_in=90, end=90), id="raised to 90 outside the window, then pulled in"),
        pytest.param([
            event("a", "D", "created", "2024-01-01T09:00:00Z", new("400.00", "2024-03-15"), seq=1),
            event("b", "D", "close_date_changed", "2024-01-18T09:00:00Z", {"expected_close_date": "2024-04-15"}, seq=2),
            event("c", "D", "amount_changed", "2024-01-20T09:00:00Z", {"amount": "500.00"}, seq=3),
        ], MARCH, buckets(start=400, pushed_out=400), id="pushed out at 400, then raised outside the window"),
    ],
)
def test_entries_and_exits_carry_the_amount_at_the_moment_they_happen(db, tmp_path, log, window, expected):
    """What crosses the pipeline's edge is the amount at the crossing; a change while the deal is
    in the pipeline is amount_up/amount_down; a change while it is outside moves nothing of this
    pipeline. (Between 10 and 31 January, as in the worked example.)"""
    load_batches(db, tmp_path / "in", [log])
    replay(db)
    got = {r["deal_id"]: {b: r[b] for b in BUCKETS} for r in movement(db, utc(T0), utc(T1), window)}
    assert got == {"D": expected}, f"\ngot      {shown(got)}\nexpected {shown({'D': expected})}"


MARCH_INTERVAL = ("2024-03-01T00:00:00Z", "2024-03-31T00:00:00Z")


@pytest.mark.parametrize(
    ("log", "interval", "window", "expected"),
    [
        pytest.param([
            event("a", "D", "created", "2024-01-01T09:00:00Z", new("500.00", "2024-03-15"), seq=1),
            event("b", "D", "won", "2024-01-05T09:00:00Z", {}, seq=2),
            # A second won (a CRM re-posting the close) moves closed_at into the interval, but the
            # deal was won before t0: it was never in the pipeline between t0 and t1.
            event("c", "D", "won", "2024-01-15T09:00:00Z", {}, seq=3),
        ], (T0, T1), None, {}, id="won before t0, won again inside: no movement"),
        pytest.param([
            event("a", "D", "created", "2024-01-01T09:00:00Z", new("100.00", "2024-03-15"), seq=1),
            event("b", "D", "won", "2024-01-20T09:00:00Z", {}, seq=2),
            event("c", "D", "reopened", "2024-01-22T09:00:00Z", {"stage": "proposal"}, seq=3),
            event("d", "D", "won", "2024-01-25T09:00:00Z", {"amount": "120.00"}, seq=4),
        ], (T0, T1), None, {"D": buckets(start=100, created=100, amount_up=20, won=220)},
            id="won, reopened (re-enters as created) and won again: two wins"),
        pytest.param([
            # Expected in May, won on a March day: it closed early, into the March closes, so it is
            # pulled in and won at once.
            event("a", "D", "created", "2024-02-01T09:00:00Z", new("100.00", "2024-05-15"), seq=1),
            event("b", "D", "won", "2024-03-10T09:00:00Z", {}, seq=2),
        ], MARCH_INTERVAL, MARCH, {"D": buckets(pulled_in=100, won=100)},
            id="expected in May, won on a March day: pulled in and won"),
    ],
)
def test_won_counts_only_deals_won_out_of_the_pipeline(db, tmp_path, log, interval, window, expected):
    """The pipeline is the open deals whose expected_close_date is in the window; won is what
    leaves that pipeline by being won, or closes early into the window."""
    load_batches(db, tmp_path / "in", [log])
    replay(db)
    got = {r["deal_id"]: {b: r[b] for b in BUCKETS} for r in movement(db, utc(interval[0]), utc(interval[1]), window)}
    got = {k: v for k, v in got.items() if v != buckets()}
    assert got == expected, f"\ngot      {shown(got)}\nexpected {shown(expected)}"
