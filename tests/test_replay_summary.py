"""The replay summary says how far the replayed state is from the exported tables (counts per
table and the query to see them) and how many events a replay released from quarantine."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from crm_lab.generate import generate
from crm_lab.load import load
from crm_lab.replay import replay

QUERY = "SELECT entity, field, count(*) FROM replay_reconciliation GROUP BY ALL ORDER BY ALL"
LATE = "aggregate_type = 'deal' AND event_type = 'created' AND aggregate_id LIKE '%0'"


@pytest.fixture
def partial(tmp_path):
    """A world whose deal-...0 created events arrive in a second load (the rest in the first)."""
    world, first, second = tmp_path / "world", tmp_path / "first", tmp_path / "second"
    generate(world, companies=2, deals=300, seed=4, fmt="parquet")
    first.mkdir()
    second.mkdir()
    for path in world.glob("*.parquet"):
        if path.name != "events.parquet":
            shutil.copy(path, first)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    source = world / "events.parquet"
    con.execute(f"COPY (SELECT * FROM '{source}' WHERE NOT ({LATE})) TO '{first / 'events.parquet'}'")
    con.execute(f"COPY (SELECT * FROM '{source}' WHERE {LATE}) TO '{second / 'events.parquet'}'")
    late = con.sql(f"SELECT count(*) FROM '{source}' WHERE {LATE}").fetchall()[0][0]
    con.close()
    return tmp_path / "crm.duckdb", first, second, late


def test_a_partial_load_shows_its_differences_and_a_later_replay_the_released_events(partial):
    db, first, second, late = partial
    load(db, [first])
    report = replay(db)
    lines = report.summary().splitlines()
    assert report.reconciliation == {"deal": late, "lead": 0, "account": 0}
    assert lines[-2:] == [
        "quarantined: SELECT * FROM events_rejected WHERE detected_by = 'replay'",
        f"reconciliation differences from the exported tables: deals {late}: {QUERY}",
    ]
    quarantined = report.quarantined
    assert quarantined > late
    load(db, [second])
    report = replay(db)
    assert (report.mode, report.quarantined, report.released_created) == ("incremental", 0, quarantined)
    assert report.summary().splitlines()[-2:] == [
        f"{quarantined} event(s) released from quarantine (their aggregate's created arrived)",
        "reconciliation: the replayed state matches the exported deals, leads and accounts",
    ]
    assert "released" not in replay(db).summary()


def test_an_incremental_replay_of_a_big_log_prints_the_query_instead_of_counting(partial, monkeypatch):
    db, first, _, _ = partial
    load(db, [first])
    replay(db)
    monkeypatch.setattr("crm_lab.replay.RECONCILE_COUNT_MAX_EVENTS", 10)
    report = replay(db)
    assert report.reconciliation is None
    assert report.summary().splitlines()[-1] == (
        f"reconciliation differences not counted (over 10 events, an incremental replay skips it): {QUERY}")
    assert replay(db, full=True).reconciliation["deal"] > 0
