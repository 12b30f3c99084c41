"""``crm-lab demo``: the demo database, built from a generated world with a fixed seed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from crm_lab.generate import generate
from crm_lab.load import load
from crm_lab.replay import replay

DEMO_COMPANIES = 3


DEFAULT_PIPELINE = Path("pipelines/weekly.yaml")


def build_demo(db_path: str | os.PathLike, *, deals: int = 3000, seed: int = 42, pipeline: str | os.PathLike | None = DEFAULT_PIPELINE) -> str:
    """Generate a world into ``data/generated/demo``, load and replay it into a fresh database at
    ``db_path``, then run the default batch ``pipeline`` on it (None skips it). The database is
    built beside the target and moved into place, so a reader never sees a half-built demo.
    Returns a summary for the console, ending with the path of the reports' index."""
    db_path = Path(db_path)
    world = db_path.parent / "generated" / "demo"
    if world.exists():
        shutil.rmtree(world)
    summary = generate(world, companies=DEMO_COMPANIES, deals=deals, seed=seed, fmt="parquet")
    building = db_path.with_name(db_path.name + ".building")
    for leftover in (building, building.with_name(building.name + ".wal")):
        leftover.unlink(missing_ok=True)
    report = load(building, [world])
    replayed = replay(building)
    # A write-ahead log left by the old file would be replayed into the new one.
    Path(str(db_path) + ".wal").unlink(missing_ok=True)
    os.replace(building, db_path)
    lines = [summary.describe(), report.summary(), replayed.summary(), f"demo database: {db_path}"]
    if pipeline is not None:
        from crm_lab.batch import run_batch

        batch = run_batch(pipeline, db_path)
        lines.append(batch.summary())
    return "\n".join(lines)
