"""The command line is a thin shell over the Python API: each command runs end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import query


def crm_lab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "crm_lab", *args], capture_output=True, text=True, timeout=300)


def test_generate_load_replay_from_the_command_line(tmp_path):
    world, db = tmp_path / "world", tmp_path / "crm.duckdb"
    generated = crm_lab("generate", str(world), "--companies", "2", "--deals", "60", "--seed", "3", "--format", "jsonl")
    assert generated.returncode == 0, generated.stderr
    assert generated.stdout.startswith(f"generated ") and "events: " in generated.stdout
    loaded = crm_lab("load", "--db", str(db), str(world))
    assert loaded.returncode == 0, loaded.stderr
    replayed = crm_lab("replay", "--db", str(db))
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.startswith("replay 1 (full: first replay): ")
    again = crm_lab("replay", "--db", str(db), "--period", "month")
    assert again.stdout.startswith("replay 2 (full: snapshot period changed (week -> month)): ")
    assert query(db, "SELECT DISTINCT period FROM pipeline_snapshots") == [("month",)]
    assert query(db, "SELECT count(*) FROM replay_reconciliation") == [(0,)]


def test_generate_refuses_bad_arguments_with_the_parameter_named(tmp_path):
    refused = crm_lab("generate", str(tmp_path / "w"), "--companies", "0")
    assert refused.returncode == 2
    assert refused.stderr.strip() == "crm-lab generate: companies must be >= 1, got 0"


def test_demo_builds_a_replayed_database(tmp_path):
    db = tmp_path / "demo" / "crm.duckdb"
    built = crm_lab("demo", "--db", str(db), "--deals", "200", "--no-batch")
    assert built.returncode == 0, built.stderr
    assert built.stdout.strip().endswith(f"demo database: {db}")
    assert query(db, "SELECT count(*) > 0 FROM deals_current") == [(True,)]
    assert not Path(str(db) + ".building").exists()
