"""Replay against a pure-Python reference: the three histories and the replay quarantine are
exactly what folding the events by the design's rules gives, to the cent and to the microsecond;
and every rule is also spelled out by hand on a small log, with the expected rows written down."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from crm_lab.load import load
from tests.conftest import event, write_jsonl
from tests.reference_fold import (
    ACCOUNT_COLUMNS,
    DEAL_COLUMNS,
    HISTORY_COLUMNS,
    HISTORY_TABLES,
    REASON_AFTER_DELETED,
    REASON_ALREADY_CREATED,
    REASON_BEFORE_CREATED,
    REASON_NO_CREATED,
    fold_batches,
    generate,
    history_as_of,
    parse_ts,
    state_as_of,
)

replay_module = pytest.importorskip("crm_lab.replay", reason="crm_lab.replay is not written yet")
replay = replay_module.replay

SEEDS = (1, 2, 3, 5, 8, 13)


# --------------------------------------------------------------------------------------------------
# Helpers shared by the replay test files
# --------------------------------------------------------------------------------------------------

def utc(text: str) -> datetime:
    return parse_ts(text)


def load_batches(db: Path, folder: Path, batches: list[list[dict]], *, replay_each: bool = False,
                 first: int = 0) -> None:
    """Each batch as one JSON Lines load, in order (optionally replaying after each)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, batch in enumerate(batches, start=first):
        load(db, [write_jsonl(folder / f"batch{i}.jsonl", *batch)], table="events")
        if replay_each:
            replay(db)


def connect_ro(db: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(db), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    return con


def rows(db: Path, sql: str) -> list[tuple]:
    con = connect_ro(db)
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


def dicts(db: Path, sql: str) -> list[dict]:
    con = connect_ro(db)
    try:
        rel = con.sql(sql)
        names = rel.columns
        return [dict(zip(names, r)) for r in rel.fetchall()]
    finally:
        con.close()


def history(db: Path, aggregate_type: str) -> list[tuple]:
    columns = HISTORY_COLUMNS[aggregate_type]
    table = HISTORY_TABLES[aggregate_type]
    return rows(db, f"SELECT {', '.join(columns)} FROM {table} ORDER BY {columns[0]}, {columns[1]}, {columns[2]}")


def replay_quarantine(db: Path) -> list[tuple]:
    return rows(db, "SELECT company_id, event_id, reason FROM events_rejected WHERE detected_by = 'replay' ORDER BY ALL")


def describe_difference(columns: tuple[str, ...], got: list[tuple], expected: list[tuple], limit: int = 12) -> str:
    """Which rows are missing, extra, or differ (and in which columns): a readable failure."""
    key = lambda r: r[:3]  # noqa: E731  (company_id, id, version)
    got_by, exp_by = {key(r): r for r in got}, {key(r): r for r in expected}
    lines = []
    if len(got_by) != len(got):
        lines.append(f"replay wrote {len(got) - len(got_by)} duplicate (company, id, version) row(s)")
    for k in sorted(set(got_by) | set(exp_by)):
        g, e = got_by.get(k), exp_by.get(k)
        if g == e:
            continue
        if g is None:
            lines.append(f"missing {dict(zip(columns, e))}")
        elif e is None:
            lines.append(f"unexpected {dict(zip(columns, g))}")
        else:
            diffs = [f"{c}: expected {ev!r}, got {gv!r}" for c, gv, ev in zip(columns, g, e) if gv != ev]
            lines.append(f"{k}: " + "; ".join(diffs))
        if len(lines) >= limit:
            lines.append("...")
            break
    return "\n".join(lines)


def assert_matches_reference(db: Path, folded) -> None:
    problems = []
    for aggregate_type, columns in HISTORY_COLUMNS.items():
        got, expected = history(db, aggregate_type), folded.rows(aggregate_type)
        if got != expected:
            problems.append(f"{HISTORY_TABLES[aggregate_type]}:\n" + describe_difference(columns, got, expected))
    got_q, expected_q = replay_quarantine(db), folded.quarantine
    if got_q != expected_q:
        missing = sorted(set(expected_q) - set(got_q))
        extra = sorted(set(got_q) - set(expected_q))
        problems.append(f"replay quarantine: missing {missing[:8]}, unexpected {extra[:8]}"
                        + ("" if missing or extra else f" (same set, different multiplicity: {got_q})"))
    assert not problems, "\n\n".join(problems)


def assert_rows(db: Path, aggregate_type: str, expected: list[dict], *, columns: tuple[str, ...] | None = None) -> None:
    """The history of one small log, compared on the named columns (all by default)."""
    columns = columns or HISTORY_COLUMNS[aggregate_type]
    got = [tuple(r[c] for c in columns) for r in dicts(db, f"SELECT * FROM {HISTORY_TABLES[aggregate_type]} ORDER BY ALL")]
    want = sorted(tuple(e[c] for c in columns) for e in expected)
    got.sort(key=lambda r: r[:3])
    assert got == want, "\n" + describe_difference(columns, got, want)


def run(db: Path, tmp_path: Path, *batches: list[dict]):
    """Load each batch, replay once, and return the reference fold of the same loads."""
    load_batches(db, tmp_path / "in", list(batches))
    replay(db)
    return fold_batches(list(batches))


# --------------------------------------------------------------------------------------------------
# Generated logs against the reference
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_histories_and_quarantine_equal_the_reference_fold(db, tmp_path, seed):
    log = generate(seed)
    load_batches(db, tmp_path / "in", log.batches)
    replay(db)
    assert_matches_reference(db, fold_batches(log.batches))


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_deals_and_leads_as_of_any_instant_equal_the_reference_state(db, tmp_path, seed):
    log = generate(seed)
    load_batches(db, tmp_path / "in", log.batches)
    replay(db)
    folded = fold_batches(log.batches)
    rng = random.Random(seed)
    span = int((log.end - log.start).total_seconds())
    valid_instants = sorted({e.occurred_at for e in folded.valid})
    instants = [log.start - timedelta(hours=1), log.end + timedelta(days=1)]
    instants += rng.sample(valid_instants, 6)  # exactly on a change: the change is included
    instants += [log.start + timedelta(seconds=rng.randrange(span)) for _ in range(6)]
    deal_state = ("account_id", "owner_rep_id", "name", "stage", "amount", "currency", "expected_close_date",
                  "lost_reason", "is_closed", "is_won", "closed_at", "created_at")
    deal_derived = ("stage_entered_at", "close_date_push_count", "amount_at_creation")
    lead_state = ("account_id", "owner_rep_id", "name", "source", "industry", "employees", "score", "status",
                  "deal_id", "created_at", "converted_at")
    con = connect_ro(db)
    try:
        for ts in instants:
            for macro, kind, id_column, state_cols, derived in (
                ("deals_as_of", "deal", "deal_id", deal_state, deal_derived),
                ("leads_as_of", "lead", "lead_id", lead_state, ()),
            ):
                rel = con.sql(f"SELECT * FROM {macro}(TIMESTAMPTZ '{ts.isoformat()}')")
                got = {(r["company_id"], r[id_column]): r for r in (dict(zip(rel.columns, x)) for x in rel.fetchall())}
                expected_state = state_as_of(folded, kind, ts)
                expected_rows = history_as_of(folded, kind, ts)
                assert sorted(got) == sorted(expected_state), f"{macro}({ts}): which aggregates exist"
                for key, state in expected_state.items():
                    want = {c: state[c] for c in state_cols} | {c: expected_rows[key][c] for c in derived}
                    have = {c: got[key][c] for c in want}
                    assert have == want, f"{macro}({ts}) {key}"
    finally:
        con.close()


def test_the_reference_history_and_a_fresh_fold_agree_at_every_instant():
    """The reference checks itself: the history rows in force at an instant hold the same state
    as folding the valid events up to that instant afresh."""
    for seed in SEEDS:
        log = generate(seed)
        folded = fold_batches(log.batches)
        for e in folded.valid:
            for ts in (e.occurred_at, e.occurred_at - timedelta(seconds=1)):
                for kind in ("deal", "lead", "account"):
                    fresh, rows_ = state_as_of(folded, kind, ts), history_as_of(folded, kind, ts)
                    assert sorted(fresh) == sorted(rows_)
                    for key, state in fresh.items():
                        assert {c: rows_[key][c] for c in state} == state


# --------------------------------------------------------------------------------------------------
# Each rule by hand
# --------------------------------------------------------------------------------------------------

T1, T2, T3, T4, T5 = (f"2024-01-0{d}T09:00:00Z" for d in range(1, 6))
NEW_DEAL = {"name": "Acme", "stage": "prospecting", "amount": "100.00", "currency": "EUR",
            "expected_close_date": "2024-03-31", "account_id": "a1", "owner_rep_id": "r1"}


def deal_row(version, valid_from, valid_to, last_event_id, **fields) -> dict:
    row = {
        "company_id": "c1", "deal_id": "d1", "version": version, "valid_from": utc(valid_from),
        "valid_to": utc(valid_to) if valid_to else None, "account_id": "a1", "owner_rep_id": "r1", "name": "Acme",
        "stage": "prospecting", "amount": Decimal("100.00"), "currency": "EUR",
        "expected_close_date": date(2024, 3, 31), "lost_reason": None, "is_closed": False, "is_won": None,
        "closed_at": None, "created_at": utc(T1), "stage_entered_at": utc(T1), "close_date_push_count": 0,
        "amount_at_creation": Decimal("100.00"), "last_event_id": last_event_id,
    }
    row.update(fields)
    return row


def test_ties_on_occurred_at_are_broken_by_seq_then_nulls_last_then_event_id(db, tmp_path):
    folded = run(db, tmp_path, [
        event("e1", "d1", "created", T1, NEW_DEAL, seq=1),
        # All at T2: order is b (seq 2), a (seq 3), then the two without seq by event_id: n1, n2.
        event("n2", "d1", "updated", T2, {"name": "null seq, id n2"}),
        event("a", "d1", "updated", T2, {"name": "seq 3", "amount": "300.00"}, seq=3),
        event("b", "d1", "updated", T2, {"name": "seq 2", "amount": "200.00", "currency": "USD"}, seq=2),
        event("n1", "d1", "updated", T2, {"name": "null seq, id n1"}),
        # At T3, equal seqs: event_id decides (y after x).
        event("y", "d1", "updated", T3, {"owner_rep_id": "r-y"}, seq=7),
        event("x", "d1", "updated", T3, {"owner_rep_id": "r-x"}, seq=7),
    ])
    expected = [
        deal_row(1, T1, T2, "e1"),
        # One version per instant: the state after the last event at T2 (n2).
        deal_row(2, T2, T3, "n2", name="null seq, id n2", amount=Decimal("300.00"), currency="USD"),
        deal_row(3, T3, None, "y", name="null seq, id n2", amount=Decimal("300.00"), currency="USD", owner_rep_id="r-y"),
    ]
    assert_rows(db, "deal", expected)
    assert sorted(folded.rows("deal")) == sorted(tuple(r[c] for c in DEAL_COLUMNS) for r in expected)


def test_a_json_null_clears_a_field_and_an_absent_key_leaves_it(db, tmp_path):
    run(db, tmp_path, [
        event("e1", "d1", "created", T1, NEW_DEAL, seq=1),
        event("e2", "d1", "lost", T2, {"lost_reason": "price"}, seq=2),
        event("e3", "d1", "reopened", T3, {"stage": "negotiation", "lost_reason": None}, seq=3),
        event("e4", "d1", "updated", T4, {"name": None, "account_id": None}, seq=4),
    ])
    assert_rows(db, "deal", [
        deal_row(1, T1, T2, "e1"),
        deal_row(2, T2, T3, "e2", stage="closed_lost", lost_reason="price", is_closed=True, is_won=False,
                 closed_at=utc(T2), stage_entered_at=utc(T2)),
        deal_row(3, T3, T4, "e3", stage="negotiation", stage_entered_at=utc(T3)),
        deal_row(4, T4, None, "e4", stage="negotiation", stage_entered_at=utc(T3), name=None, account_id=None),
    ])


def test_won_lost_and_reopened_set_stage_and_closing_fields_after_their_patch(db, tmp_path):
    run(db, tmp_path, [
        event("e1", "d1", "created", T1, NEW_DEAL, seq=1),
        # The won payload's stage is overridden; its amount is a patch like any other.
        event("e2", "d1", "won", T2, {"stage": "negotiation", "amount": "120.00"}, seq=2),
        event("e3", "d1", "reopened", T3, {"stage": "proposal"}, seq=3),
        event("e4", "d1", "won", T4, {}, seq=4),
    ])
    won = dict(stage="closed_won", is_closed=True, is_won=True, amount=Decimal("120.00"))
    assert_rows(db, "deal", [
        deal_row(1, T1, T2, "e1"),
        deal_row(2, T2, T3, "e2", **won, closed_at=utc(T2), stage_entered_at=utc(T2)),
        deal_row(3, T3, T4, "e3", stage="proposal", amount=Decimal("120.00"), stage_entered_at=utc(T3)),
        deal_row(4, T4, None, "e4", **won, closed_at=utc(T4), stage_entered_at=utc(T4)),
    ])


def test_stage_entered_at_push_count_and_amount_at_creation(db, tmp_path):
    run(db, tmp_path, [
        event("e1", "d1", "created", T1, NEW_DEAL, seq=1),
        # Same instant as created: version 1 already has amount 110, so amount_at_creation is 110.
        event("e1b", "d1", "amount_changed", T1, {"amount": "110.00"}, seq=2),
        event("e2", "d1", "close_date_changed", T2, {"expected_close_date": "2024-04-30"}, seq=3),  # push 1
        event("e3", "d1", "updated", T3, {"amount": "90.00", "expected_close_date": "2024-04-15"}, seq=4),  # pull in
        event("e4", "d1", "close_date_changed", T4, {"expected_close_date": None}, seq=5),  # cleared: no push
        event("e5", "d1", "close_date_changed", T5, {"expected_close_date": "2024-06-30"}, seq=6),  # from null: no push
        event("e6", "d1", "stage_changed", "2024-01-06T09:00:00Z", {"stage": "proposal"}, seq=7),
        event("e7", "d1", "close_date_changed", "2024-01-07T09:00:00Z", {"expected_close_date": "2024-07-31"}, seq=8),
        event("e8", "d1", "stage_changed", "2024-01-08T09:00:00Z", {"stage": "prospecting"}, seq=9),
    ])
    rows_ = dicts(db, "SELECT version, stage, stage_entered_at, close_date_push_count, amount_at_creation, amount "
                      "FROM deal_history ORDER BY version")
    assert [(r["version"], r["stage"], r["stage_entered_at"], r["close_date_push_count"], r["amount_at_creation"],
             r["amount"]) for r in rows_] == [
        (1, "prospecting", utc(T1), 0, Decimal("110.00"), Decimal("110.00")),
        (2, "prospecting", utc(T1), 1, Decimal("110.00"), Decimal("110.00")),
        (3, "prospecting", utc(T1), 1, Decimal("110.00"), Decimal("90.00")),
        (4, "prospecting", utc(T1), 1, Decimal("110.00"), Decimal("90.00")),
        (5, "prospecting", utc(T1), 1, Decimal("110.00"), Decimal("90.00")),
        (6, "proposal", utc("2024-01-06T09:00:00Z"), 1, Decimal("110.00"), Decimal("90.00")),
        (7, "proposal", utc("2024-01-06T09:00:00Z"), 2, Decimal("110.00"), Decimal("90.00")),
        # Back to prospecting: a new run starts, not the first one's T1.
        (8, "prospecting", utc("2024-01-08T09:00:00Z"), 2, Decimal("110.00"), Decimal("90.00")),
    ]


def test_a_deleted_deal_ends_at_the_delete_and_later_events_are_quarantined(db, tmp_path):
    run(db, tmp_path, [
        event("e1", "d1", "created", T1, NEW_DEAL, seq=1),
        event("e2", "d1", "amount_changed", T2, {"amount": "150.00"}, seq=2),
        event("e3", "d1", "deleted", T3, {}, seq=3),
        event("e4", "d1", "updated", T3, {"name": "same instant, after the delete"}, seq=4),
        event("e5", "d1", "created", T4, NEW_DEAL, seq=5),
        event("e6", "d1", "deleted", T5, {}, seq=6),
    ])
    assert_rows(db, "deal", [
        deal_row(1, T1, T2, "e1"),
        deal_row(2, T2, T3, "e2", amount=Decimal("150.00")),
    ])
    assert replay_quarantine(db) == [("c1", e, REASON_AFTER_DELETED) for e in ("e4", "e5", "e6")]
    as_of = lambda ts: rows(db, f"SELECT deal_id, amount FROM deals_as_of(TIMESTAMPTZ '{ts}')")  # noqa: E731
    assert as_of("2024-01-03T08:59:59Z") == [("d1", Decimal("150.00"))]
    assert as_of(T3) == [] and as_of("2024-02-01T00:00:00Z") == []
    assert rows(db, "SELECT count(*) FROM deals_current") == [(0,)]


def test_a_deal_created_and_deleted_at_one_instant_never_has_a_row(db, tmp_path):
    """Interpretation: the state after the last valid event at that instant is 'absent', so the
    instant has no version (a zero-length row would be visible in no as-of state anyway)."""
    run(db, tmp_path, [
        event("e1", "d1", "created", T1, NEW_DEAL, seq=1),
        event("e2", "d1", "amount_changed", T2, {"amount": "150.00"}, seq=2),
        event("e3", "d1", "deleted", T2, {}, seq=3),
        event("f1", "d2", "created", T1, NEW_DEAL, seq=1),
        event("f2", "d2", "deleted", T1, {}, seq=2),
    ])
    assert_rows(db, "deal", [deal_row(1, T1, T2, "e1")])
    assert replay_quarantine(db) == []


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        pytest.param(
            [event("o1", "d9", "updated", T1, {"name": "x"}), event("o2", "d9", "won", T2)],
            [("o1", REASON_NO_CREATED), ("o2", REASON_NO_CREATED)], id="orphans"),
        pytest.param(
            [event("b1", "d1", "updated", T1, {"name": "x"}), event("b2", "d1", "updated", T2, {"name": "y"}, seq=0),
             event("c", "d1", "created", T2, NEW_DEAL, seq=1)],
            [("b1", REASON_BEFORE_CREATED), ("b2", REASON_BEFORE_CREATED)], id="before created, also at its instant"),
        pytest.param(
            [event("c", "d1", "created", T1, NEW_DEAL, seq=1), event("c2", "d1", "created", T2, NEW_DEAL)],
            [("c2", REASON_ALREADY_CREATED)], id="second created"),
        pytest.param(
            [event("b", "d1", "deleted", T1), event("c", "d1", "created", T2, NEW_DEAL),
             event("x", "d1", "deleted", T3), event("c2", "d1", "created", T4, NEW_DEAL), event("u", "d1", "updated", T5)],
            [("b", REASON_BEFORE_CREATED), ("c2", REASON_AFTER_DELETED), ("u", REASON_AFTER_DELETED)],
            id="priority: before created, then after deleted over already created"),
    ],
)
def test_replay_quarantine_reasons(db, tmp_path, events, expected):
    folded = run(db, tmp_path, events)
    assert replay_quarantine(db) == [("c1", e, r) for e, r in sorted(expected)]
    assert folded.quarantine == [("c1", e, r) for e, r in sorted(expected)]
    # Quarantined events leave no trace in the state.
    for e, _ in expected:
        assert rows(db, f"SELECT count(*) FROM deal_history WHERE last_event_id = '{e}'") == [(0,)]
    # Rejected rows carry the event itself, marked as found by replay.
    got = dicts(db, "SELECT * FROM events_rejected WHERE detected_by = 'replay' ORDER BY event_id")
    by_id = {e["event_id"]: e for e in events}
    for r in got:
        source = by_id[r["event_id"]]
        assert (r["aggregate_type"], r["aggregate_id"], r["event_type"], r["occurred_at"], r["seq"]) == (
            "deal", source["aggregate_id"], source["event_type"], utc(source["occurred_at"]), source["seq"])


def test_a_created_arriving_in_a_later_load_rescues_its_orphans(db, tmp_path):
    orphans = [event("o1", "d1", "amount_changed", T2, {"amount": "150.00"}, seq=2),
               event("o2", "d1", "won", T3, {}, seq=3)]
    load_batches(db, tmp_path / "in", [orphans])
    replay(db)
    assert replay_quarantine(db) == [("c1", "o1", REASON_NO_CREATED), ("c1", "o2", REASON_NO_CREATED)]
    assert rows(db, "SELECT count(*) FROM deal_history") == [(0,)]
    load_batches(db, tmp_path / "in", [[event("c", "d1", "created", T1, NEW_DEAL, seq=1)]], first=1)
    replay(db)
    assert replay_quarantine(db) == []
    assert_rows(db, "deal", [
        deal_row(1, T1, T2, "c"),
        deal_row(2, T2, T3, "o1", amount=Decimal("150.00")),
        deal_row(3, T3, None, "o2", amount=Decimal("150.00"), stage="closed_won", is_closed=True, is_won=True,
                 closed_at=utc(T3), stage_entered_at=utc(T3)),
    ])


def test_a_late_event_takes_its_place_in_the_history(db, tmp_path):
    load_batches(db, tmp_path / "in", [[event("e1", "d1", "created", T1, NEW_DEAL, seq=1),
                                        event("e3", "d1", "amount_changed", T3, {"amount": "300.00"}, seq=3)]])
    replay(db)
    load_batches(db, tmp_path / "in", [[event("e2", "d1", "updated", T2, {"amount": "200.00", "name": "Late"}, seq=2),
                                        # An exact duplicate of a stored event is the same event.
                                        event("e3", "d1", "amount_changed", T3, {"amount": "300.00"}, seq=3)]], first=1)
    replay(db)
    assert_rows(db, "deal", [
        deal_row(1, T1, T2, "e1"),
        deal_row(2, T2, T3, "e2", amount=Decimal("200.00"), name="Late"),
        deal_row(3, T3, None, "e3", amount=Decimal("300.00"), name="Late"),
    ])


def test_naive_and_offset_timestamps_are_instants_in_utc(db, tmp_path):
    run(db, tmp_path, [
        event("e1", "d1", "created", "2024-01-01 09:00:00", NEW_DEAL, seq=1),
        # 11:00 at +02:00 is 09:00 UTC: the same instant as the naive 09:00, so one version.
        event("e2", "d1", "updated", "2024-01-01T11:00:00+02:00", {"name": "Same instant"}, seq=2),
        event("e3", "d1", "updated", "2024-01-02T10:00:00+01:00", {"name": "Next"}, seq=3),
    ])
    assert_rows(db, "deal", [
        deal_row(1, T1, "2024-01-02T09:00:00Z", "e2", name="Same instant"),
        deal_row(2, "2024-01-02T09:00:00Z", None, "e3", name="Next"),
    ])


def test_two_tenants_with_the_same_ids_never_mix(db, tmp_path):
    run(db, tmp_path, [
        event("e1", "d1", "created", T1, NEW_DEAL, seq=1, company_id="c1"),
        event("e1", "d1", "created", T2, {**NEW_DEAL, "amount": "999.00"}, seq=1, company_id="c2"),
        event("e2", "d1", "won", T3, {}, seq=2, company_id="c2"),
        event("e3", "d2", "updated", T3, {"name": "orphan in c2"}, company_id="c2"),
        event("e3", "d2", "created", T1, NEW_DEAL, company_id="c1"),
    ])
    assert rows(db, "SELECT company_id, deal_id, version, amount, is_won FROM deal_history ORDER BY ALL") == [
        ("c1", "d1", 1, Decimal("100.00"), None),
        ("c1", "d2", 1, Decimal("100.00"), None),
        ("c2", "d1", 1, Decimal("999.00"), None),
        ("c2", "d1", 2, Decimal("999.00"), True),
    ]
    assert replay_quarantine(db) == [("c2", "e3", REASON_NO_CREATED)]


def test_leads_convert_and_disqualify(db, tmp_path):
    new_lead = {"name": "Lee", "source": "web", "industry": "saas", "employees": 40, "score": 72.5, "status": "open",
                "owner_rep_id": "r1"}
    run(db, tmp_path, [
        event("l1", "L1", "created", T1, new_lead, seq=1, aggregate_type="lead"),
        event("l2", "L1", "updated", T2, {"score": 80.25, "industry": None, "not_a_field": 3}, seq=2, aggregate_type="lead"),
        event("l3", "L1", "converted", T3, {"deal_id": "d1", "account_id": "a1"}, seq=3, aggregate_type="lead"),
        event("m1", "L2", "created", T1, new_lead, seq=1, aggregate_type="lead"),
        event("m2", "L2", "disqualified", T2, {"score": 0}, seq=2, aggregate_type="lead"),
    ])
    base = {"company_id": "c1", "account_id": None, "owner_rep_id": "r1", "name": "Lee", "source": "web",
            "industry": "saas", "employees": 40, "score": 72.5, "status": "open", "deal_id": None,
            "created_at": utc(T1), "converted_at": None}
    assert_rows(db, "lead", [
        {**base, "lead_id": "L1", "version": 1, "valid_from": utc(T1), "valid_to": utc(T2), "last_event_id": "l1"},
        {**base, "lead_id": "L1", "version": 2, "valid_from": utc(T2), "valid_to": utc(T3), "last_event_id": "l2",
         "score": 80.25, "industry": None},
        {**base, "lead_id": "L1", "version": 3, "valid_from": utc(T3), "valid_to": None, "last_event_id": "l3",
         "score": 80.25, "industry": None, "status": "converted", "converted_at": utc(T3), "deal_id": "d1",
         "account_id": "a1"},
        {**base, "lead_id": "L2", "version": 1, "valid_from": utc(T1), "valid_to": utc(T2), "last_event_id": "m1"},
        {**base, "lead_id": "L2", "version": 2, "valid_from": utc(T2), "valid_to": None, "last_event_id": "m2",
         "score": 0.0, "status": "disqualified"},
    ])
    assert rows(db, "SELECT lead_id, status FROM leads_current ORDER BY 1") == [("L1", "converted"), ("L2", "disqualified")]
    assert rows(db, f"SELECT lead_id, status FROM leads_as_of(TIMESTAMPTZ '{T2}') ORDER BY 1") == [
        ("L1", "open"), ("L2", "disqualified")]


def test_accounts_take_patches_and_deletes(db, tmp_path):
    run(db, tmp_path, [
        event("a1", "A1", "created", T1, {"name": "Acme", "industry": "retail", "employees": 10, "potential": "5000.5",
                                          "territory_id": "t1", "owner_rep_id": "r1"}, aggregate_type="account"),
        event("a2", "A1", "owner_changed", T2, {"owner_rep_id": "r2", "potential": 7000}, aggregate_type="account"),
        event("a3", "A1", "updated", T3, {"territory_id": None}, aggregate_type="account"),
        event("a4", "A1", "deleted", T4, {}, aggregate_type="account"),
    ])
    base = {"company_id": "c1", "account_id": "A1", "name": "Acme", "industry": "retail", "employees": 10,
            "potential": Decimal("5000.50"), "territory_id": "t1", "owner_rep_id": "r1", "created_at": utc(T1)}
    assert_rows(db, "account", [
        {**base, "version": 1, "valid_from": utc(T1), "valid_to": utc(T2), "last_event_id": "a1"},
        {**base, "version": 2, "valid_from": utc(T2), "valid_to": utc(T3), "last_event_id": "a2",
         "owner_rep_id": "r2", "potential": Decimal("7000.00")},
        {**base, "version": 3, "valid_from": utc(T3), "valid_to": utc(T4), "last_event_id": "a3",
         "owner_rep_id": "r2", "potential": Decimal("7000.00"), "territory_id": None},
    ], columns=ACCOUNT_COLUMNS)
    assert rows(db, "SELECT count(*) FROM accounts_current") == [(0,)]


def test_as_of_includes_events_at_the_instant_and_current_is_the_open_row(db, tmp_path):
    run(db, tmp_path, [
        event("e1", "d1", "created", T1, NEW_DEAL, seq=1),
        event("e2", "d1", "amount_changed", T2, {"amount": "250.00"}, seq=2),
    ])
    as_of = lambda ts: rows(db, f"SELECT amount FROM deals_as_of(TIMESTAMPTZ '{ts}')")  # noqa: E731
    assert as_of("2024-01-01T08:59:59Z") == []
    assert as_of(T1) == [(Decimal("100.00"),)]
    assert as_of("2024-01-02T08:59:59.999999Z") == [(Decimal("100.00"),)]
    assert as_of(T2) == [(Decimal("250.00"),)]
    assert rows(db, "SELECT deal_id, version, amount FROM deals_current") == [("d1", 2, Decimal("250.00"))]
