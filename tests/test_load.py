"""Loading: the same rows from any format, idempotent reloads, one transaction per load, events
parsed once with duplicates told apart, and tenants that share ids kept apart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crm_lab.db import connect
from crm_lab.errors import DatabaseLockedError, LoadError
from crm_lab.load import load
from tests.conftest import event, query, snapshot, write_csv, write_jsonl

DEAL_EVENTS = [
    event("e1", "d1", "created", "2024-01-01T09:00:00Z",
          {"name": "Acme", "stage": "prospecting", "amount": 1200.5, "expected_close_date": "2024-03-31"}, seq=1),
    event("e2", "d1", "stage_changed", "2024-01-05T09:00:00Z", {"stage": "proposal"}, seq=2),
    event("e3", "d1", "lost", "2024-02-01T09:00:00Z", {"lost_reason": "price"}, seq=3),
    event("e4", "d1", "reopened", "2024-02-10T09:00:00Z", {"stage": "negotiation", "lost_reason": None}, seq=4),
]


def test_csv_parquet_and_jsonl_load_identical_tables(tmp_path):
    rows = [
        {"company_id": "c1", "deal_id": "d1", "amount": "1200.50", "expected_close_date": "2024-03-31",
         "created_at": "2024-01-01T09:00:00Z", "is_closed": "false"},
        {"company_id": "c1", "deal_id": "d2", "amount": "99.99", "expected_close_date": "2024-04-30",
         "created_at": "2024-01-02 10:30:00", "is_closed": "true"},
    ]
    csv_dir, pq_dir, js_dir = (tmp_path / n for n in ("csv", "pq", "js"))
    for d in (csv_dir, pq_dir, js_dir):
        d.mkdir()
    header = ",".join(rows[0])
    write_csv(csv_dir / "deals.csv", header, *(",".join(r.values()) for r in rows))
    pq.write_table(pa.Table.from_pylist(rows), pq_dir / "deals.parquet")
    write_jsonl(js_dir / "deals.jsonl", *rows)
    tables = []
    for d in (csv_dir, pq_dir, js_dir):
        load(d / "crm.duckdb", [d])
        tables.append(query(d / "crm.duckdb", "SELECT * FROM deals ORDER BY deal_id"))
    assert tables[0] == tables[1] == tables[2]
    assert tables[0][0][6] == Decimal("1200.50")
    # A naive timestamp is taken as UTC.
    assert tables[0][1][13].isoformat() == "2024-01-02T10:30:00+00:00"


def test_column_names_match_case_insensitively(db, tmp_path):
    path = write_csv(tmp_path / "Deals.csv", "COMPANY_ID,Deal_Id,STAGE", "c1,d1,proposal")
    load(db, [path])
    assert query(db, "SELECT company_id, deal_id, stage FROM deals") == [("c1", "d1", "proposal")]


def test_unknown_columns_are_reported_not_silently_dropped(db, tmp_path):
    path = write_csv(tmp_path / "deals.csv", "company_id,deal_id,Probability", "c1,d1,0.4")
    report = load(db, [path])
    assert report.files[0].ignored_columns == ("Probability",)
    assert "columns not in the contract, ignored: Probability" in report.summary()


def test_loading_twice_changes_nothing(db, tmp_path):
    write_csv(tmp_path / "deals.csv", "company_id,deal_id,stage,amount", "c1,d1,proposal,10.00", "c1,d2,won,bad")
    write_jsonl(tmp_path / "events.jsonl", *DEAL_EVENTS, event("e9", "d1", "exploded", "2024-03-01T00:00:00Z"))
    first = load(db, [tmp_path])
    data_tables = ("deals", "events", "events_rejected")
    before = {t: v for t, v in snapshot(db).items() if t in data_tables}
    second = load(db, [tmp_path])
    assert {t: v for t, v in snapshot(db).items() if t in data_tables} == before
    assert second.fingerprint == first.fingerprint
    assert (second.rows_read, second.rows_rejected) == (first.rows_read, first.rows_rejected)
    assert second.files[1].rows_loaded == 0 and second.files[1].events_duplicate == 5
    # The deals file's valid row is written again, and counted as unchanged.
    assert (second.files[0].rows_loaded, second.files[0].rows_unchanged) == (1, 1)
    assert "deals.csv -> deals: 2 read, 0 upserted, 1 unchanged, 1 rejected" in second.summary()
    runs = query(db, "SELECT load_id, rows_read, rows_rejected, fingerprint, status FROM load_runs ORDER BY 1")
    assert runs == [(1, 7, 1, first.fingerprint, "ok_with_rejects"), (2, 7, 1, first.fingerprint, "ok_with_rejects")]


def test_entities_upsert_by_key(db, tmp_path):
    path = write_csv(tmp_path / "deals.csv", "company_id,deal_id,stage", "c1,d1,proposal", "c1,d2,proposal")
    load(db, [path])
    write_csv(path, "company_id,deal_id,stage", "c1,d1,negotiation", "c1,d2,proposal")
    report = load(db, [path])
    assert query(db, "SELECT deal_id, stage FROM deals ORDER BY 1") == [("d1", "negotiation"), ("d2", "proposal")]
    assert (report.files[0].rows_loaded, report.files[0].rows_unchanged) == (2, 1)
    assert "deals.csv -> deals: 2 read, 1 upserted, 1 unchanged, 0 rejected" in report.summary()


def test_a_load_failing_on_its_last_file_leaves_the_database_unchanged(db, tmp_path):
    write_csv(tmp_path / "accounts.csv", "company_id,account_id", "c1,a0")
    load(db, [tmp_path / "accounts.csv"])
    before = snapshot(db)
    good = write_csv(tmp_path / "deals.csv", "company_id,deal_id", "c1,d1")
    events = write_jsonl(tmp_path / "events.jsonl", *DEAL_EVENTS)
    broken = tmp_path / "products.parquet"
    broken.write_bytes(b"not parquet")
    with pytest.raises(LoadError):
        load(db, [good, events, broken])
    assert snapshot(db) == before


def test_a_load_killed_before_commit_leaves_the_database_unchanged(db, tmp_path):
    write_csv(tmp_path / "accounts.csv", "company_id,account_id", "c1,a0")
    load(db, [tmp_path / "accounts.csv"])
    before = snapshot(db)
    write_csv(tmp_path / "deals.csv", "company_id,deal_id", *(f"c1,d{i}" for i in range(2000)))
    write_jsonl(tmp_path / "events.jsonl", *DEAL_EVENTS)
    killed = subprocess.run(
        [sys.executable, "-m", "crm_lab", "load", "--db", str(db), str(tmp_path / "deals.csv"), str(tmp_path / "events.jsonl")],
        env={**os.environ, "CRM_LAB_FAULT": "before_commit"},
        capture_output=True,
        text=True,
    )
    assert killed.returncode == -9, killed.stderr
    assert snapshot(db) == before
    # And the database is still writable: the next load goes through.
    assert load(db, [tmp_path / "deals.csv"]).files[0].rows_loaded == 2000


def test_event_payload_is_parsed_once_into_typed_columns(db, tmp_path):
    load(db, [write_jsonl(tmp_path / "events.jsonl", *DEAL_EVENTS)])
    rows = query(db, "SELECT event_id, order_key, payload_keys, stage, amount, expected_close_date::VARCHAR, lost_reason "
                     "FROM events ORDER BY order_key")
    assert rows == [
        ("e1", 1, ["name", "stage", "amount", "expected_close_date"], "prospecting", Decimal("1200.50"), "2024-03-31", None),
        ("e2", 2, ["stage"], "proposal", None, None, None),
        ("e3", 3, ["lost_reason"], None, None, None, "price"),
        # An explicit JSON null is a key that is present with no value: replay clears the field.
        ("e4", 4, ["stage", "lost_reason"], "negotiation", None, None, None),
    ]
    assert json.loads(query(db, "SELECT payload FROM events WHERE event_id = 'e4'")[0][0]) == {
        "stage": "negotiation", "lost_reason": None}


def test_event_payload_in_csv_and_parquet_is_json_text(db, tmp_path):
    header = "event_id,company_id,aggregate_type,aggregate_id,seq,event_type,occurred_at,payload"
    write_csv(tmp_path / "events.csv", header, 'e1,c1,deal,d1,1,created,2024-01-01,"{""amount"": ""250.10""}"')
    pq.write_table(pa.Table.from_pylist([{"event_id": "e2", "company_id": "c1", "aggregate_type": "deal",
                                          "aggregate_id": "d1", "seq": 2, "event_type": "amount_changed",
                                          "occurred_at": "2024-01-02", "payload": '{"amount": 300}'}]),
                   tmp_path / "events.parquet")
    load(db, [tmp_path / "events.csv", tmp_path / "events.parquet"])
    assert query(db, "SELECT event_id, amount FROM events ORDER BY 1") == [("e1", Decimal("250.10")), ("e2", Decimal("300.00"))]


def test_order_key_follows_occurred_at_then_seq_then_event_id_and_absorbs_late_events(db, tmp_path):
    load(db, [write_jsonl(tmp_path / "events.jsonl",
                          event("b", "d1", "created", "2024-01-01T00:00:00Z", {"stage": "prospecting"}, seq=1),
                          event("a", "d1", "updated", "2024-01-03T00:00:00Z", {"name": "x"}),
                          event("c", "d1", "updated", "2024-01-03T00:00:00Z", {"name": "y"}, seq=5),
                          event("z", "d2", "created", "2024-01-01T00:00:00Z", {"stage": "prospecting"}))])
    assert query(db, "SELECT event_id FROM events WHERE aggregate_id = 'd1' ORDER BY order_key") == [("b",), ("c",), ("a",)]
    # A late event that occurred between two stored ones takes its place; other aggregates keep theirs.
    load(db, [write_jsonl(tmp_path / "late.jsonl", event("late", "d1", "updated", "2024-01-02T00:00:00Z", {"name": "w"}))],
         table="events")
    assert query(db, "SELECT event_id, order_key, load_id FROM events ORDER BY aggregate_id, order_key") == [
        ("b", 1, 1), ("late", 2, 2), ("c", 3, 1), ("a", 4, 1), ("z", 1, 1)]


def test_exact_duplicates_are_one_event_and_conflicting_ones_are_quarantined(db, tmp_path):
    first = event("e1", "d1", "created", "2024-01-01T00:00:00Z", {"stage": "prospecting"})
    conflicting = event("e1", "d1", "created", "2024-01-01T00:00:00Z", {"stage": "proposal"})
    load(db, [write_jsonl(tmp_path / "events.jsonl", first, first, conflicting)])
    assert query(db, "SELECT count(*) FROM events") == [(1,)]
    assert query(db, "SELECT event_id, reason, detected_by FROM events_rejected") == [
        ("e1", "conflicting duplicate event_id: differs from line 1 of the same file", "load")]
    # Arriving in a later load, the same conflict names the load that stored the original.
    report = load(db, [write_jsonl(tmp_path / "again.jsonl", {**conflicting, "payload": {"stage": "lost"}})], table="events")
    assert report.files[0].events_quarantined == 1
    assert query(db, "SELECT reason FROM events_rejected WHERE load_id = 2") == [
        ("conflicting duplicate event_id: differs from the event stored by load 1",)]


def test_same_event_ids_in_two_tenants_are_two_events(db, tmp_path):
    load(db, [write_jsonl(tmp_path / "events.jsonl",
                          event("e1", "d1", "created", "2024-01-01T00:00:00Z", {"stage": "a"}, company_id="c1"),
                          event("e1", "d1", "created", "2024-01-01T00:00:00Z", {"stage": "b"}, company_id="c2"))])
    assert query(db, "SELECT company_id, stage, order_key FROM events ORDER BY 1") == [("c1", "a", 1), ("c2", "b", 1)]
    write_csv(tmp_path / "deals.csv", "company_id,deal_id,stage", "c1,d1,a", "c2,d1,b")
    load(db, [tmp_path / "deals.csv"])
    assert query(db, "SELECT company_id, deal_id, stage FROM deals ORDER BY 1") == [("c1", "d1", "a"), ("c2", "d1", "b")]


@pytest.mark.parametrize(
    ("bad_event", "reason"),
    [
        (event("q1", "d1", "exploded", "2024-01-02T00:00:00Z"), "unknown event type 'exploded' for a deal"),
        (event("q2", "x1", "created", "2024-01-02T00:00:00Z", aggregate_type="invoice"),
         "unknown aggregate type 'invoice' (known: account, activity, deal, lead)"),
        ({**event("q3", "d1", "updated", "2024-01-02T00:00:00Z"), "payload": "{not json"}, "malformed payload: a JSON string, not an object"),
        ({**event("q4", "d1", "updated", "2024-01-02T00:00:00Z"), "payload": [1, 2]}, "malformed payload: a JSON array, not an object"),
        (event("q5", "d1", "amount_changed", "2024-01-02T00:00:00Z", {"amount": "lots"}),
         'wrongly typed payload: field amount is not an amount with at most 2 decimals, got "lots"'),
        (event("q6", "d1", "updated", "2024-01-02T00:00:00Z", {"expected_close_date": "soon"}),
         'wrongly typed payload: field expected_close_date is not a date (YYYY-MM-DD), got "soon"'),
        (event("q7", "d1", "updated", "2024-01-02T00:00:00Z", {"stage": {"nested": 1}}),
         'wrongly typed payload: field stage is not text, got {"nested":1}'),
    ],
)
def test_bad_events_are_quarantined_with_their_reason_and_do_not_hold_back_good_ones(db, tmp_path, bad_event, reason):
    good = event("g1", "d1", "created", "2024-01-01T00:00:00Z", {"stage": "prospecting"})
    report = load(db, [write_jsonl(tmp_path / "events.jsonl", good, bad_event)])
    assert (report.files[0].rows_loaded, report.files[0].events_quarantined) == (1, 1)
    assert query(db, "SELECT event_id, reason FROM events_rejected") == [(bad_event["event_id"], reason)]
    assert query(db, "SELECT event_id FROM events") == [("g1",)]


def test_payload_that_is_not_json_is_quarantined(db, tmp_path):
    header = "event_id,company_id,aggregate_type,aggregate_id,event_type,occurred_at,payload"
    write_csv(tmp_path / "events.csv", header, "e1,c1,deal,d1,created,2024-01-01,{}", 'e2,c1,deal,d1,updated,2024-01-02,"{stage: x"')
    load(db, [tmp_path / "events.csv"])
    assert query(db, "SELECT event_id, payload, reason FROM events_rejected") == [
        ("e2", "{stage: x", "malformed payload: not valid JSON")]


def test_a_writer_waits_for_the_lock_then_fails_naming_the_file(db, tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('locked', flush=True); time.sleep(30)", str(db)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        with pytest.raises(DatabaseLockedError) as caught:
            connect(db, read_only=False, lock_timeout=1.0)
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert 1.0 <= waited < 10
    assert str(caught.value).startswith(f"database {db} is locked by process {holder.pid} (waited 1 s). Close the other writer")
    # Once the holder is gone the same call succeeds.
    connect(db, read_only=False, lock_timeout=5.0).close()


def test_reading_a_missing_database_says_how_to_build_it(tmp_path):
    from crm_lab.errors import DatabaseMissingError

    with pytest.raises(DatabaseMissingError, match="does not exist: build it with `crm-lab demo`"):
        connect(tmp_path / "nope.duckdb")


def test_every_connection_is_in_utc(db, tmp_path):
    load(db, [write_csv(tmp_path / "deals.csv", "company_id,deal_id,created_at", "c1,d1,2024-06-01T12:00:00+02:00")])
    con = connect(db)
    try:
        assert con.sql("SELECT current_setting('TimeZone'), created_at::VARCHAR FROM deals").fetchall() == [
            ("UTC", "2024-06-01 10:00:00+00")]
    finally:
        con.close()


def test_cli_prints_the_summary_and_exits_2_on_a_refused_load(db, tmp_path):
    path = write_csv(tmp_path / "deals.csv", "company_id,deal_id", "c1,d1")
    ok = subprocess.run([sys.executable, "-m", "crm_lab", "load", "--db", str(db), str(path)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert f"{path} -> deals: 1 read, 1 upserted, 0 rejected" in ok.stdout
    missing = subprocess.run([sys.executable, "-m", "crm_lab", "load", "--db", str(db), str(tmp_path / "x.csv")],
                             capture_output=True, text=True)
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"crm-lab load: {tmp_path / 'x.csv'}: no such file"


def test_a_tenant_arriving_after_another_is_judged_on_its_own_events(db, tmp_path):
    # The second load holds only c2's events, none stored yet: nothing is a duplicate, even where
    # c1 already stored the same ids; a conflicting repeat inside the file is still quarantined.
    load(db, [write_jsonl(tmp_path / "c1.jsonl", *DEAL_EVENTS)], table="events")
    c2 = [{**e, "company_id": "c2"} for e in DEAL_EVENTS]
    report = load(db, [write_jsonl(tmp_path / "c2.jsonl", *c2, {**c2[0], "payload": {"stage": "lost"}})], table="events")
    assert (report.files[0].rows_loaded, report.files[0].events_duplicate, report.files[0].events_quarantined) == (4, 0, 1)
    assert query(db, "SELECT event_id, order_key FROM events WHERE company_id = 'c2' ORDER BY order_key") == [
        ("e1", 1), ("e2", 2), ("e3", 3), ("e4", 4)]
    assert query(db, "SELECT count(*) FROM events WHERE company_id = 'c1'") == [(4,)]
