"""Incremental replay is a shortcut, never a different answer: however a log is split into loads,
replaying after every load leaves exactly the tables one load and a full replay would, and the
reference fold agrees with both. Replaying again changes nothing."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import event, snapshot
from tests.reference_fold import HISTORY_COLUMNS, REASON_NO_CREATED, fold_batches, generate
from tests.test_replay_reference import (
    T1,
    T2,
    T3,
    NEW_DEAL,
    assert_matches_reference,
    history,
    load_batches,
    replay,
    replay_quarantine,
)

REPLAY_TABLES = ("deal_history", "lead_history", "account_history", "events", "events_rejected",
                 "pipeline_snapshots", "pipeline_period_ends")


def replayed_state(db: Path) -> dict:
    """What replay is judged on: the histories and the replay quarantine (load ids aside, which
    differ between one load and several)."""
    return {
        **{kind: history(db, kind) for kind in HISTORY_COLUMNS},
        "quarantine": replay_quarantine(db),
    }


def split(records: list[dict], assignment: list[int], parts: int) -> list[list[dict]]:
    """Records into load batches, each keeping the records' relative order."""
    batches = [[] for _ in range(parts)]
    for record, part in zip(records, assignment):
        batches[part].append(record)
    return [b for b in batches if b]


@st.composite
def split_logs(draw):
    seed = draw(st.integers(0, 10_000))
    log = generate(seed, deals=6, leads=3, accounts=2)
    records = log.events
    parts = draw(st.integers(1, 4))
    assignment = draw(st.lists(st.integers(0, parts - 1), min_size=len(records), max_size=len(records)))
    return seed, split(records, assignment, parts)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(split_logs())
def test_any_split_replayed_after_every_load_equals_one_load_and_a_full_replay(case):
    seed, batches = case
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        incremental, whole = tmp / "incremental.duckdb", tmp / "whole.duckdb"
        load_batches(incremental, tmp / "parts", batches, replay_each=True)
        # One load of the same records, in the same arrival order (so the same one of two
        # conflicting duplicates is the first to arrive).
        load_batches(whole, tmp / "whole", [[r for b in batches for r in b]])
        replay(whole, full=True)
        got, expected = replayed_state(incremental), replayed_state(whole)
        differs = [k for k in expected if got[k] != expected[k]]
        assert not differs, f"seed {seed}, {len(batches)} loads: incremental differs from full in {differs}"
        assert_matches_reference(incremental, fold_batches(batches))


def test_replaying_again_changes_nothing(db, tmp_path):
    log = generate(21)
    load_batches(db, tmp_path / "in", log.batches, replay_each=True)
    before = {t: v for t, v in snapshot(db).items() if t in REPLAY_TABLES}
    replay(db)
    assert {t: v for t, v in snapshot(db).items() if t in REPLAY_TABLES} == before
    replay(db, full=True)
    assert {t: v for t, v in snapshot(db).items() if t in REPLAY_TABLES} == before
    assert_matches_reference(db, fold_batches(log.batches))


def test_a_late_created_rescues_orphans_in_incremental_replay(db, tmp_path):
    """The orphans are quarantined in one replay and valid in the next, once their created is
    loaded; the incremental result equals the full one."""
    orphans = [event("o1", "d1", "amount_changed", T2, {"amount": "150.00"}, seq=2),
               event("o2", "d1", "won", T3, {}, seq=3),
               event("k1", "d2", "created", T1, NEW_DEAL, seq=1)]
    rescue = [event("c", "d1", "created", T1, NEW_DEAL, seq=1),
              event("k2", "d2", "updated", T2, {"name": "Untouched by the rescue"}, seq=2)]
    load_batches(db, tmp_path / "in", [orphans], replay_each=True)
    assert replay_quarantine(db) == [("c1", "o1", REASON_NO_CREATED), ("c1", "o2", REASON_NO_CREATED)]
    load_batches(db, tmp_path / "in", [rescue], replay_each=True, first=1)
    assert replay_quarantine(db) == []
    incremental = replayed_state(db)
    replay(db, full=True)
    assert replayed_state(db) == incremental
    assert_matches_reference(db, fold_batches([orphans, rescue]))
    assert [(r[1], r[2], r[-1]) for r in incremental["deal"]] == [("d1", 1, "c"), ("d1", 2, "o1"), ("d1", 3, "o2"),
                                                                  ("d2", 1, "k1"), ("d2", 2, "k2")]


@pytest.mark.parametrize("seed", [4, 9])
def test_late_loads_replayed_one_by_one_equal_the_reference(db, tmp_path, seed):
    """The generated later loads are late: their events occurred among those already replayed."""
    log = generate(seed)
    load_batches(db, tmp_path / "in", log.batches, replay_each=True)
    assert_matches_reference(db, fold_batches(log.batches))
