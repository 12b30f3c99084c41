"""``crm-lab demo``: the demo database, built from a generated world with a fixed seed."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

from crm_lab.db import check_database_file, reading, writing
from crm_lab.errors import CrmLabError
from crm_lab.generate import generate
from crm_lab.load import load
from crm_lab.replay import replay

DEMO_COMPANIES = 3
# Where the demo's world is generated, beside the database: what its one load reads.
DEMO_WORLD = ("generated", "demo")


DEFAULT_PIPELINE = Path("pipelines/weekly.yaml")


class DemoOverwriteRefused(CrmLabError):
    """The demo's target holds a database the demo did not build."""


def build_demo(db_path: str | os.PathLike, *, deals: int = 3000, seed: int = 42,
               pipeline: str | os.PathLike | None = DEFAULT_PIPELINE, force: bool = False,
               echo: Callable[[str], None] | None = None) -> str:
    """Generate a world into ``data/generated/demo``, load and replay it into a fresh database at
    ``db_path``, then run the default batch ``pipeline`` on it (None skips it). The database is
    built beside the target and moved into place, so a reader never sees a half-built demo.
    Returns a summary for the console, ending with the path of the reports' index; ``echo``, if
    given, gets each part of it as soon as it is known (the batch takes most of the time).

    An existing database at ``db_path`` is replaced only when it is a previous demo build
    (:func:`demo_build_problem`) or ``force`` is true: ``db_path`` is usually the default of
    every command, where a user's own loaded export may live. Otherwise
    :class:`DemoOverwriteRefused` is raised before anything is written."""
    db_path = Path(db_path)
    check_database_file(db_path)  # even --force does not replace a directory or a foreign file
    if db_path.exists() and not force:
        _refuse_if_not_demo(db_path, demo_build_problem(db_path))
    world = db_path.parent.joinpath(*DEMO_WORLD)
    if world.exists():
        shutil.rmtree(world)
    summary = generate(world, companies=DEMO_COMPANIES, deals=deals, seed=seed, fmt="parquet")
    building = db_path.with_name(db_path.name + ".building")
    for leftover in (building, building.with_name(building.name + ".wal")):
        leftover.unlink(missing_ok=True)
    report = load(building, [world])
    replayed = replay(building)
    # Replaced under the old file's writer lock: a load into it that began meanwhile finishes
    # first (a bounded wait), and is then seen by the check again, instead of being lost with
    # the old file.
    with writing(db_path) if db_path.exists() else nullcontext() as held:
        if held is not None and not force:
            problem = _build_problem_in(held)
            if problem:
                building.unlink(missing_ok=True)
                _refuse_if_not_demo(db_path, f"{problem}, loaded while the demo was being built")
        # A write-ahead log left by the old file would be replayed into the new one.
        Path(str(db_path) + ".wal").unlink(missing_ok=True)
        os.replace(building, db_path)
    lines = [summary.describe(), report.summary(), replayed.summary(), f"demo database: {db_path}"]
    if echo:
        echo("\n".join(lines))
    if pipeline is not None:
        from crm_lab.batch import run_batch

        batch = run_batch(pipeline, db_path)
        lines.append(batch.summary())
        if echo:
            echo(lines[-1])
    return "\n".join(lines)


def _refuse_if_not_demo(db_path: Path, problem: str | None) -> None:
    if problem:
        raise DemoOverwriteRefused(
            f"database {db_path} is not a demo build ({problem}): the demo would replace it and lose its data; "
            "pass --force to replace it anyway, or --db another path for the demo"
        )


def demo_build_problem(db_path: str | os.PathLike) -> str | None:
    """Why the database at ``db_path`` is not a previous demo build, or None when it is: every
    load it records read only the demo's generated files (whatever the working directory was),
    or it holds no table at all. A marker the demo wrote would miss the builds made before it,
    which ``make demo`` must go on replacing silently."""
    with reading(db_path) as con:
        return _build_problem_in(con)


def _build_problem_in(con) -> str | None:
    tables = {name for (name,) in con.sql("SELECT table_name FROM duckdb_tables()").fetchall()}
    if not tables:
        return None
    if "load_runs" not in tables:
        return "it records no load"
    loads = con.sql("SELECT load_id, files FROM load_runs ORDER BY load_id").fetchall()
    if not loads:
        return "it records no load"
    for load_id, files in loads:
        foreign = [f for f in files or [] if Path(f).parent.parts[-2:] != DEMO_WORLD]
        if foreign or not files:
            return f"load {load_id} read {foreign[0] if foreign else 'no file'}"
    return None
