"""Snapshots, reconciliation, analytics views and replay bookkeeping, against values worked out
by hand or recomputed independently from deals_as_of."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import duckdb
import pytest

from crm_lab import replay as replay_module
from crm_lab.errors import InvalidArgument
from crm_lab.load import load
from crm_lab.replay import replay
from tests.conftest import event, query, write_csv, write_jsonl

NEW = {"stage": "prospecting", "amount": "100.00", "expected_close_date": "2024-03-31", "owner_rep_id": "r1"}

# D1: created Mon 1 Jan, qualification on 10 Jan, pushed on 12 Jan, raised on 20 Jan, won 5 Feb.
# D2: created 3 Jan, lost 8 Jan.  D3: created 15 Jan, still open.
LOG = [
    event("1a", "D1", "created", "2024-01-01T10:00:00Z", NEW, seq=1),
    event("1b", "D1", "stage_changed", "2024-01-10T10:00:00Z", {"stage": "qualification"}, seq=2),
    event("1c", "D1", "close_date_changed", "2024-01-12T10:00:00Z", {"expected_close_date": "2024-04-30"}, seq=3),
    event("1d", "D1", "amount_changed", "2024-01-20T10:00:00Z", {"amount": "130.00"}, seq=4),
    event("1e", "D1", "won", "2024-02-05T10:00:00Z", {}, seq=5),
    event("2a", "D2", "created", "2024-01-03T10:00:00Z", {**NEW, "amount": "50.00"}, seq=1),
    event("2b", "D2", "lost", "2024-01-08T10:00:00Z", {"lost_reason": "price"}, seq=2),
    event("3a", "D3", "created", "2024-01-15T10:00:00Z", {**NEW, "amount": "70.00"}, seq=1),
]


@pytest.fixture
def replayed(db, tmp_path):
    load(db, [write_jsonl(tmp_path / "events.jsonl", *LOG)])
    replay(db)
    return db


def test_weekly_snapshots_hold_the_open_deals_at_each_sunday_night(replayed):
    rows = query(replayed, "SELECT period_end, deal_id, stage, amount, age_days, days_in_stage, close_date_push_count, "
                           "amount_change FROM pipeline_snapshots ORDER BY period_end, deal_id")
    day = 86400.0
    assert [(r[0], r[1]) for r in rows] == [
        (date(2024, 1, 7), "D1"), (date(2024, 1, 7), "D2"),
        (date(2024, 1, 14), "D1"),
        (date(2024, 1, 21), "D1"), (date(2024, 1, 21), "D3"),
        (date(2024, 1, 28), "D1"), (date(2024, 1, 28), "D3"),
        (date(2024, 2, 4), "D1"), (date(2024, 2, 4), "D3"),
        (date(2024, 2, 11), "D3"),
    ]
    d1_jan_21 = rows[3]
    # Sunday 21 Jan 23:59:59.999999 minus Monday 1 Jan 10:00 = 20 days 14 h; in qualification since 10 Jan 10:00.
    assert d1_jan_21[2:4] == ("qualification", Decimal("130.00"))
    assert d1_jan_21[4] == pytest.approx(20 + (14 * 3600 - 1e-6) / day)
    assert d1_jan_21[5] == pytest.approx(11 + (14 * 3600 - 1e-6) / day)
    assert d1_jan_21[6:] == (1, Decimal("30.00"))


@pytest.mark.parametrize("period", ["week", "month", "quarter"])
def test_snapshots_equal_the_open_deals_as_of_each_period_end(db, tmp_path, period):
    load(db, [write_jsonl(tmp_path / "events.jsonl", *LOG)])
    replay(db, period=period)
    ends = query(db, "SELECT period_end, snapshot_at FROM pipeline_period_ends ORDER BY 1")
    assert ends, "a period end per period from the first event to the last"
    for period_end, snapshot_at in ends:
        expected = query(db, "SELECT deal_id, amount FROM deals_as_of(?) WHERE NOT is_closed ORDER BY 1", [snapshot_at])
        got = query(db, "SELECT deal_id, amount FROM pipeline_snapshots WHERE period_end = ? ORDER BY 1", [period_end])
        assert got == expected, period_end
    assert query(db, "SELECT DISTINCT period FROM pipeline_snapshots") == [(period,)]


def test_monthly_ends_are_the_last_day_of_each_month(db, tmp_path):
    load(db, [write_jsonl(tmp_path / "events.jsonl", *LOG)])
    replay(db, period="month")
    assert query(db, "SELECT period_end, snapshot_at::VARCHAR FROM pipeline_period_ends ORDER BY 1") == [
        (date(2024, 1, 31), "2024-01-31 23:59:59.999999+00"),
        (date(2024, 2, 29), "2024-02-29 23:59:59.999999+00"),
    ]


def test_unknown_period_is_refused(db):
    with pytest.raises(InvalidArgument, match="period must be one of week, month, quarter; got 'day'"):
        replay(db, period="day")


def test_funnel_transitions_and_time_in_stage_on_a_hand_worked_log(replayed):
    funnel = query(replayed, "SELECT stage, deals_reached, deals_advanced, deals_won, advance_rate, win_rate_from_stage "
                             "FROM deal_stage_funnel ORDER BY stage_order")
    # Advancing past a stage means reaching a later open stage or winning.
    assert funnel == [("prospecting", 3, 1, 1, 1 / 3, 1 / 3), ("qualification", 1, 1, 1, 1.0, 1.0)]
    assert query(replayed, "SELECT from_stage, to_stage, moves FROM deal_stage_transitions ORDER BY ALL") == [
        ("prospecting", "closed_lost", 1), ("prospecting", "qualification", 1), ("qualification", "closed_won", 1)]
    # D1 spent 9 days in prospecting, then 26 in qualification; D2 5 days in prospecting.
    stays = query(replayed, "SELECT deal_id, stage, days FROM deal_stage_stays ORDER BY deal_id, entered_at")
    assert stays == [("D1", "prospecting", 9.0), ("D1", "qualification", 26.0), ("D2", "prospecting", 5.0)]
    assert query(replayed, "SELECT stage, stays, median_days FROM deal_time_in_stage ORDER BY stage") == [
        ("prospecting", 2, 7.0), ("qualification", 1, 26.0)]


def test_event_volume_counts_every_event(replayed):
    assert query(replayed, "SELECT event_type, sum(events)::INTEGER FROM event_volume GROUP BY ALL ORDER BY 1") == [
        ("amount_changed", 1), ("close_date_changed", 1), ("created", 3), ("lost", 1), ("stage_changed", 1), ("won", 1)]


def test_reconciliation_reports_each_field_where_the_export_and_the_replay_differ(replayed, tmp_path):
    write_csv(tmp_path / "deals.csv", "company_id,deal_id,stage,amount,is_won",
              "c1,D1,closed_won,130.00,true",      # agrees
              "c1,D2,closed_lost,55.00,false",     # amount differs
              "c1,D9,proposal,10.00,")             # only in the export; D3 only in the replay
    load(replayed, [tmp_path / "deals.csv"])
    assert query(replayed, "SELECT entity, entity_id, field, exported_value, replayed_value FROM replay_reconciliation "
                           "ORDER BY entity_id") == [
        ("deal", "D2", "amount", "55.00", "50.00"),
        ("deal", "D3", "(row)", None, "present"),
        ("deal", "D9", "(row)", "present", None),
    ]


def test_a_new_fold_version_triggers_a_full_rebuild(replayed, monkeypatch):
    assert replay(replayed).mode == "incremental"
    monkeypatch.setattr(replay_module, "REPLAY_VERSION", replay_module.REPLAY_VERSION + 1)
    rebuilt = replay(replayed)
    before = replay_module.REPLAY_VERSION - 1
    assert (rebuilt.mode, rebuilt.reason) == ("full", f"fold logic changed (version {before} -> {before + 1})")
    assert query(replayed, "SELECT replay_id, mode, replay_version FROM replay_runs ORDER BY 1") == [
        (1, "full", before), (2, "incremental", before), (3, "full", before + 1)]


def test_an_incremental_replay_touches_only_aggregates_with_new_events(replayed, tmp_path):
    report = replay(replayed)
    assert (report.mode, report.aggregates, report.events) == ("incremental", 0, 0)
    load(replayed, [write_jsonl(tmp_path / "late.jsonl",
                                event("3b", "D3", "amount_changed", "2024-01-16T10:00:00Z", {"amount": "75.00"}, seq=2))],
         table="events")
    report = replay(replayed)
    assert (report.mode, report.aggregates, report.events) == ("incremental", 1, 2)
    assert query(replayed, "SELECT amount FROM deals_current WHERE deal_id = 'D3'") == [(Decimal("75.00"),)]


def test_a_failed_replay_leaves_the_previous_state(replayed, monkeypatch):
    before = query(replayed, "SELECT * FROM deal_history ORDER BY ALL")
    monkeypatch.setattr(replay_module, "_refresh_snapshots", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        replay(replayed, full=True)
    assert query(replayed, "SELECT * FROM deal_history ORDER BY ALL") == before
    assert query(replayed, "SELECT count(*) FROM replay_runs") == [(1,)]


def test_as_of_macros_take_text_dates_and_timestamps(replayed):
    by_text = query(replayed, "SELECT deal_id FROM deals_as_of('2024-01-09') ORDER BY 1")
    con = duckdb.connect(str(replayed), read_only=True)
    try:
        by_value = con.sql("SELECT deal_id FROM deals_as_of(TIMESTAMPTZ '2024-01-09 00:00:00+00') ORDER BY 1").fetchall()
    finally:
        con.close()
    assert by_text == by_value == [("D1",), ("D2",)]
