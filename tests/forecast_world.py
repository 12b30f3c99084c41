"""Generated worlds for the forecast tests, built once per test session (not a test module)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from crm_lab.generate import generate
from crm_lab.load import load
from crm_lab.replay import replay

# Three years, so that a backtest over 2025 has two years of history behind it.
WORLD = {"companies": 3, "deals": 4500, "seed": 11, "start": "2023-01-01", "end": "2025-12-31"}


def built_world(base: Path, name: str = "forecast-world", **overrides) -> tuple[Path, dict]:
    """(database, truth) of a generated, loaded and replayed world under ``base`` (reused when
    already built in this session). Copy the database before writing to it."""
    folder = base / name
    db = folder / "crm.duckdb"
    if not (folder / ".complete").exists():
        shutil.rmtree(folder, ignore_errors=True)
        generate(folder / "world", fmt="parquet", **{**WORLD, **overrides})
        load(db, [folder / "world"])
        replay(db)
        (folder / ".complete").write_text("ok\n")
    return db, json.loads((folder / "world" / "truth.json").read_text())


def copy_of(db: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(db, target)
    return target
