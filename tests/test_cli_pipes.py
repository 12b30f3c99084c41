"""A reader that goes away (`crm-lab ... | head`) stops crm-lab quietly with status 141, as
SIGPIPE stops a Unix tool, through real pipes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from crm_lab.cli import BROKEN_PIPE_STATUS
from crm_lab.load import load
from crm_lab.replay import replay
from tests.conftest import event, query, write_jsonl

CRM_LAB = [sys.executable, "-m", "crm_lab"]
NEW = {"stage": "prospecting", "amount": "100.00", "expected_close_date": "2024-03-31", "owner_rep_id": "r1"}
BIG = "SELECT range AS n, 'some text to make the line longer' AS t FROM range(300000)"  # ~12 MB of CSV


@pytest.fixture
def events(tmp_path):
    return write_jsonl(tmp_path / "events.jsonl", event("a1", "D1", "created", "2024-01-01T10:00:00Z", NEW, seq=1))


@pytest.fixture
def db(tmp_path, events):
    path = tmp_path / "crm.duckdb"
    load(path, [events])
    replay(path)
    return path


def test_head_in_a_shell_pipeline_gets_its_lines_and_crm_lab_stops_quietly(db):
    command = " ".join([*CRM_LAB, "sql", "--db", str(db), "--format", "csv", f'"{BIG}"'])
    done = subprocess.run(["bash", "-c", f'{command} | head -2; echo "status ${{PIPESTATUS[0]}}" >&2'],
                          capture_output=True, text=True)
    assert done.stdout == "n,t\n0,some text to make the line longer\n"
    assert done.stderr == f"status {BROKEN_PIPE_STATUS}\n"


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_a_reader_closing_mid_output_stops_the_query_quietly(db, fmt):
    process = subprocess.Popen([*CRM_LAB, "sql", "--db", str(db), "--format", fmt, BIG],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert len(process.stdout.read(1000)) == 1000  # the first bytes, of about 12 MB
    process.stdout.close()
    assert process.wait(timeout=120) == BROKEN_PIPE_STATUS
    assert process.stderr.read() == b""


def _closed_reader(*arguments) -> subprocess.Popen:
    """Start crm-lab with its stdout a pipe whose reader is already gone."""
    process = subprocess.Popen([*CRM_LAB, *arguments], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()
    return process


def test_load_and_replay_do_their_work_then_stop_quietly_when_nobody_reads(tmp_path, events):
    db = tmp_path / "piped.duckdb"
    loading = _closed_reader("load", "--db", str(db), str(events))
    assert (loading.wait(timeout=120), loading.stderr.read()) == (BROKEN_PIPE_STATUS, b"")
    assert query(db, "SELECT event_id FROM events") == [("a1",)]
    replaying = _closed_reader("replay", "--db", str(db))
    assert (replaying.wait(timeout=120), replaying.stderr.read()) == (BROKEN_PIPE_STATUS, b"")
    assert query(db, "SELECT deal_id, amount FROM deals_current") == [("D1", 100)]


def test_errors_still_go_to_stderr_with_status_2_when_stdout_is_closed(db):
    process = _closed_reader("sql", "--db", str(db), "DELETE FROM deals")
    assert process.wait(timeout=120) == 2
    assert process.stderr.read().decode() == ("crm-lab sql: read-only: a DELETE statement is refused (change the "
                                              "database with crm-lab load, replay and the engines' commands)\n")
