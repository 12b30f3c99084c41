"""Load a generated world (~CRM_LAB_BENCH_EVENTS events) with ``crm_lab.load.load`` and compare it
with DuckDB's bare ``CREATE TABLE t AS SELECT * FROM read_parquet(f)`` / ``read_csv(f)`` over the
same files, in the same run.

Targets: load from Parquet <= 1.5x the bare read_parquet; load from CSV <= 1.5x the bare read_csv.
Both sides write a fresh database file in a temporary folder and close it (checkpoint included);
peak RSS is the child process's high-water mark.

A third row, against the same baseline, is the floor of any load that keeps the native contract:
writing the tables exactly as a load leaves them (``events`` with its raw payload, typed payload
columns, ``payload_keys``, content hash and order key), copied from an already loaded database
into memory before the clock starts, so that reading, parsing, typing, validating and ordering
cost nothing. When even that write misses the target, no load of these tables can meet it.
"""

from __future__ import annotations

import resource
import statistics
from pathlib import Path

from benchmarks.harness import (
    Job,
    Row,
    Stopwatch,
    Timing,
    compare,
    print_rows,
    tempdir,
    world,
    world_csv,
    world_files,
)

TARGET_PARQUET = 1.5
TARGET_CSV = 1.5


def _cpu_seconds() -> float:
    """User + system CPU of this process, every DuckDB thread included. On a shared machine wall
    time swings with the neighbours' load while CPU time mostly does not: printed beside it."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def job_load(src_dir: str) -> Timing:
    """crm_lab's load of every file of the world into a fresh database (one load, one transaction)."""
    from crm_lab.load import load

    with tempdir("load-") as tmp:
        cpu = _cpu_seconds()
        with Stopwatch() as sw:
            report = load(tmp / "crm.duckdb", [src_dir])
        cpu = _cpu_seconds() - cpu
        size = (tmp / "crm.duckdb").stat().st_size
    events = next((f for f in report.files if f.table == "events"), None)
    return Timing(
        sw.seconds,
        {
            "files": len(report.files),
            "rows_read": report.rows_read,
            "rows_rejected": report.rows_rejected,
            "events_new": events.rows_loaded if events else 0,
            "events_quarantined": report.events_quarantined,
            "db_bytes": size,
            "cpu_s": cpu,
        },
    )


def job_bare(files: list[str], reader: str) -> Timing:
    """One fresh DuckDB file; ``CREATE TABLE <table> AS SELECT * FROM <reader>('<file>')`` for every
    file, default reader options; then close."""
    import duckdb

    with tempdir("bare-") as tmp:
        cpu = _cpu_seconds()
        with Stopwatch() as sw:
            con = duckdb.connect(str(tmp / "bare.duckdb"))
            for f in files:
                table = Path(f).name.split(".", 1)[0]
                con.execute(f"CREATE TABLE {table} AS SELECT * FROM {reader}('{f}')")
            rows = sum(con.sql(f"SELECT count(*) FROM {Path(f).name.split('.', 1)[0]}").fetchall()[0][0] for f in files)
            con.close()
        cpu = _cpu_seconds() - cpu
        size = (tmp / "bare.duckdb").stat().st_size
    return Timing(sw.seconds, {"rows": rows, "db_bytes": size, "cpu_s": cpu})


def job_write_floor(loaded_db: str) -> Timing:
    """Write the tables a load leaves (copied from ``loaded_db`` into memory untimed) into a fresh
    database file with ``CREATE TABLE t AS SELECT * FROM <in-memory copy>``; then close."""
    import duckdb

    with tempdir("floor-") as tmp:
        con = duckdb.connect(str(tmp / "floor.duckdb"))
        con.execute(f"ATTACH '{loaded_db}' AS loaded (READ_ONLY)")
        tables = [t for (t,) in con.sql(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'loaded' AND estimated_size > 0").fetchall()]
        for table in tables:
            con.execute(f"CREATE TEMP TABLE staged_{table} AS SELECT * FROM loaded.{table}")
        con.execute("DETACH loaded")
        cpu = _cpu_seconds()
        with Stopwatch() as sw:
            for table in tables:
                con.execute(f"CREATE TABLE {table} AS SELECT * FROM staged_{table}")
            con.close()
        cpu = _cpu_seconds() - cpu
    return Timing(sw.seconds, {"tables": len(tables), "cpu_s": cpu})


def _cpu_note(load, bare) -> str:
    a = statistics.median(s.info["cpu_s"] for s in load.samples)
    b = statistics.median(s.info["cpu_s"] for s in bare.samples)
    return f"CPU seconds (medians): load {a:.2f}, baseline {b:.2f}, ratio {a / b:.2f}x (steadier than wall time on a shared machine)"


def _check(name: str, info: dict, bare_rows: int) -> list[str]:
    notes = [
        f"{name}: {info['files']} files, {info['rows_read']:_} rows read ({bare_rows:_} in the baseline), "
        f"{info['events_new']:_} events loaded, {info['rows_rejected']:_} rows rejected, "
        f"{info['events_quarantined']:_} events quarantined"
    ]
    if info["rows_read"] != bare_rows or info["rows_rejected"] or info["events_quarantined"]:
        notes.append(f"WARNING {name}: the load did not take every row the baseline read")
    return notes


def main() -> list[Row]:
    parquet_dir = world()
    csv_dir = world_csv(parquet_dir)
    parquet_files = [str(p) for p in world_files(parquet_dir, "parquet")]
    csv_files = [str(p) for p in world_files(csv_dir, "csv")]
    rows: list[Row] = []

    print("Parquet: crm_lab load vs bare CREATE TABLE AS read_parquet", flush=True)
    got = compare(
        [
            Job("crm_lab load (parquet)", job_load, (str(parquet_dir),)),
            Job("bare CTAS read_parquet", job_bare, (parquet_files, "read_parquet")),
        ]
    )
    a, b = got["crm_lab load (parquet)"], got["bare CTAS read_parquet"]
    rows.append(Row("load parquet / bare read_parquet", a, b, TARGET_PARQUET, notes=_check("parquet", a.info, b.info["rows"]) + [_cpu_note(a, b)]))

    from benchmarks.bench_replay import prepare

    loaded_db = str(prepare()[0] / "loaded.duckdb")
    print("Floor: writing what a load leaves, with every step before the write free", flush=True)
    got = compare(
        [
            Job("write the loaded tables", job_write_floor, (loaded_db,)),
            Job("bare CTAS read_parquet", job_bare, (parquet_files, "read_parquet")),
        ]
    )
    a, b = got["write the loaded tables"], got["bare CTAS read_parquet"]
    rows.append(Row("floor: write the loaded tables / bare read_parquet", a, b, TARGET_PARQUET, notes=[
        f"{a.info['tables']} tables copied from an already loaded database into memory before the clock starts",
        "the least any load keeping the contract's events columns can cost: "
        "a NO here means the load target above cannot be met with these columns", _cpu_note(a, b)]))

    print("CSV: crm_lab load vs bare CREATE TABLE AS read_csv", flush=True)
    got = compare(
        [
            Job("crm_lab load (csv)", job_load, (str(csv_dir),)),
            Job("bare CTAS read_csv", job_bare, (csv_files, "read_csv")),
        ]
    )
    a, b = got["crm_lab load (csv)"], got["bare CTAS read_csv"]
    rows.append(Row("load csv / bare read_csv", a, b, TARGET_CSV, notes=_check("csv", a.info, b.info["rows"]) + [_cpu_note(a, b)]))

    print()
    print_rows(rows)
    return rows
