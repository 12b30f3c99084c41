"""Replay a loaded world (~CRM_LAB_BENCH_EVENTS events) with ``crm_lab.replay.replay`` beside its
baselines, in the same run:

1. full replay vs a pure-Python fold of the same events (``benchmarks/pyfold.py``): target, the
   replay at least 15x faster;
2. full replay vs DuckDB's bare latest-state query, one ``arg_max(field, order_key)`` per field
   grouped by aggregate, on the ``events`` table as loaded (``CREATE TABLE ... AS``): target, the
   full history build within 3x of it;
3. incremental replay after a load of the last 1% of events by arrival vs a full replay of the
   same database: target, incremental at least 20x faster.

Prepared once and cached under ``benchmarks/out/<world>/replay/``: the world loaded into a
database; the Python fold's input (the loaded events' typed columns in export-file order, cut into
hash buckets of aggregates); the event log split by arrival into ``events.p99.parquet`` and
``events.p01.parquet``, and a database with the 99% loaded and replayed and then the 1% loaded.
Every measured run works on a fresh copy of a prepared database (the copy is not timed).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

from benchmarks import pyfold
from benchmarks.harness import (
    OUT,
    Job,
    Row,
    Stopwatch,
    Timing,
    bench_events,
    bench_seed,
    compare,
    copy_db,
    in_child,
    print_rows,
    tempdir,
    world,
    world_files,
    world_key,
)

TARGET_VS_PYTHON = 15.0  # replay at least 15x faster than the Python fold
# The cached inputs' layout: a change to _prepare bumps it, so older caches are prepared again.
PREPARED_BY = 2
TARGET_VS_ARGMAX = 3.0  # replay within 3x of the bare arg_max latest-state query
TARGET_INCREMENTAL = 20.0  # incremental at least 20x faster than full
HOLD_BACK = 0.01  # the last 1% of events by arrival
BUCKET_EVENTS = 500_000  # Python-fold input per bucket (bounds the fold's memory)
# The Python fold is timed on at most this many events (the first hash buckets) and scaled
# linearly to the whole log. It folds ~170k events/s here (6 s for 1M), so 15M is ~90 s: the
# whole log at the default 10M scale; override with CRM_LAB_BENCH_PY_EVENTS.
DEFAULT_PY_MAX_EVENTS = 15_000_000
LATEST_FIELDS = pyfold.FIELDS  # every typed payload field that a history folds


def py_max_events() -> int:
    raw = os.environ.get("CRM_LAB_BENCH_PY_EVENTS", "").replace("_", "").strip()
    return int(float(raw)) if raw else DEFAULT_PY_MAX_EVENTS


# ------------------------------------------------------------------------------------ preparation


def _prepare(world_dir: str, out_dir: str) -> dict:
    """Build the cached inputs (runs in a child process; see the module docstring)."""
    import duckdb

    from crm_lab.load import load
    from crm_lab.replay import replay

    world_path, out = Path(world_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    events_file = world_path / "events.parquet"
    meta: dict = {}

    # 1. The whole world, loaded.
    loaded = out / "loaded.duckdb"
    started = time.perf_counter()
    load(loaded, [world_path])
    meta["load_seconds"] = time.perf_counter() - started
    with duckdb.connect(str(loaded), read_only=True) as con:
        meta["events"] = con.sql("SELECT count(*) FROM events").fetchall()[0][0]

    # 2. The Python fold's input: typed columns of the loaded events, in export-file order, with a
    #    deterministic bucket per aggregate.
    buckets = max(1, math.ceil(meta["events"] / BUCKET_EVENTS))
    meta["buckets"] = buckets
    py_db = out / "py_input.duckdb"
    py_db.unlink(missing_ok=True)
    con = duckdb.connect(str(py_db))
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"ATTACH '{loaded}' AS l (READ_ONLY)")
    columns = ", ".join(f"e.{c}" for c in pyfold.SELECT_COLUMNS)
    con.execute(
        f"""CREATE TABLE py_events AS
            SELECT {columns},
                   CAST(hash(e.company_id, e.aggregate_type, e.aggregate_id) % {buckets} AS INTEGER) AS bucket,
                   f.file_row_number AS file_row
            FROM l.events e
            JOIN (SELECT company_id, event_id, file_row_number
                  FROM read_parquet('{events_file}', file_row_number = true)) f USING (company_id, event_id)
            ORDER BY bucket, file_row"""
    )
    meta["py_events"] = con.sql("SELECT count(*) FROM py_events").fetchall()[0][0]
    con.close()

    # 3. The log split by arrival: the last 1% by (recorded_at, occurred_at, event_id) held back;
    #    both parts keep the export's row order and Parquet types.
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    total = con.sql(f"SELECT count(*) FROM read_parquet('{events_file}')").fetchall()[0][0]
    held = max(1, round(total * HOLD_BACK))
    p99, p01 = out / "events.p99.parquet", out / "events.p01.parquet"
    ranked = (
        f"SELECT *, row_number() OVER (ORDER BY recorded_at NULLS FIRST, occurred_at, event_id) AS _arrival "
        f"FROM read_parquet('{events_file}', file_row_number = true)"
    )
    con.execute(f"CREATE TEMP TABLE ranked AS {ranked}")
    for path, cond in ((p99, f"_arrival <= {total - held}"), (p01, f"_arrival > {total - held}")):
        con.execute(
            f"COPY (SELECT * EXCLUDE (_arrival, file_row_number) FROM ranked WHERE {cond} ORDER BY file_row_number) "
            f"TO '{path}' (FORMAT parquet, COMPRESSION zstd)"
        )
    con.close()
    meta["split"] = {"events": total, "first_99": total - held, "last_1": held}

    # 4. Entities + 99% loaded and replayed, then the 1% loaded: ready for an incremental replay.
    inc = out / "inc.duckdb"
    inc.unlink(missing_ok=True)
    entities = [p for p in world_files(world_path, "parquet") if p.name != "events.parquet"]
    load(inc, [*entities, p99])
    first = replay(inc, full=True)
    late = load(inc, [p01])
    meta["inc"] = {
        "replay_99_seconds": first.seconds,
        "late_events_new": next(f.rows_loaded for f in late.files),
        "late_events_duplicate": next(f.events_duplicate for f in late.files),
    }
    return meta


def prepare() -> tuple[Path, dict]:
    from crm_lab.replay import REPLAY_VERSION

    out = OUT / world_key(bench_events(), bench_seed()) / "replay"
    marker = out / "meta.json"
    # The incremental database was replayed by the fold of its day: under another fold version
    # the "incremental" replay would rebuild everything, so prepare it again (and after a change
    # to what is prepared).
    cached = json.loads(marker.read_text()) if marker.exists() else {}
    if (cached.get("replay_version"), cached.get("prepared_by")) != (REPLAY_VERSION, PREPARED_BY):
        src = world()
        print(f"  preparing the replay inputs (fold version {REPLAY_VERSION}) -> {out}", flush=True)
        meta, wall, _ = in_child(_prepare, str(src), str(out))
        meta["replay_version"], meta["prepared_by"] = REPLAY_VERSION, PREPARED_BY
        marker.write_text(json.dumps(meta, indent=2) + "\n")
        print(f"  prepared in {wall:.0f} s", flush=True)
    return out, json.loads(marker.read_text())


# ------------------------------------------------------------------------------------------ jobs


def job_replay(db_src: str, full: bool) -> Timing:
    """crm_lab.replay.replay on a fresh copy of a prepared database."""
    from crm_lab.replay import replay

    with tempdir("replay-") as tmp:
        db = copy_db(Path(db_src), tmp / "crm.duckdb")
        with Stopwatch() as sw:
            report = replay(db, full=full)
    return Timing(
        sw.seconds,
        {
            "mode": report.mode,
            "aggregates": report.aggregates,
            "events": report.events,
            "quarantined": report.quarantined,
            "history_rows": dict(report.history_rows),
            "snapshot_rows": report.snapshot_rows,
        },
    )


def job_latest_argmax(db_src: str) -> Timing:
    """The bare latest-state query on a fresh copy of the loaded database: one arg_max per field,
    keyed by the BIGINT order_key, grouped by aggregate, written with CREATE TABLE AS; then close."""
    import duckdb

    fields = ",\n".join(f"arg_max({f}, order_key) AS {f}" for f in LATEST_FIELDS)
    sql = (
        f"CREATE TABLE latest_state AS SELECT company_id, aggregate_type, aggregate_id,\n{fields}\n"
        "FROM events GROUP BY company_id, aggregate_type, aggregate_id"
    )
    with tempdir("argmax-") as tmp:
        db = copy_db(Path(db_src), tmp / "crm.duckdb")
        with Stopwatch() as sw:
            con = duckdb.connect(str(db))
            con.execute(sql)
            rows = con.sql("SELECT count(*) FROM latest_state").fetchall()[0][0]
            con.close()
    return Timing(sw.seconds, {"aggregates": rows})


def job_python_fold(py_db: str, max_events: int) -> Timing:
    """The pure-Python fold over the loaded events: each bucket of aggregates is fetched as tuples
    (not timed), then sorted and folded (timed). Buckets are taken in order until ``max_events``
    events are folded, and the time is scaled linearly to the whole log."""
    import gc

    import duckdb

    con = duckdb.connect(py_db, read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    sizes = con.sql("SELECT bucket, count(*) FROM py_events GROUP BY bucket ORDER BY bucket").fetchall()
    total = sum(n for _, n in sizes)
    columns = ", ".join(pyfold.SELECT_COLUMNS)
    fetch_s = fold_s = 0.0
    done = buckets = quarantined = 0
    history_rows = {"deal": 0, "lead": 0, "account": 0}
    for bucket, _ in sizes:
        if done >= max_events:
            break
        with Stopwatch() as fetch:
            rows = con.execute(f"SELECT {columns} FROM py_events WHERE bucket = ? ORDER BY file_row", [bucket]).fetchall()
        fetch_s += fetch.seconds
        gc.collect()
        gc.freeze()  # the fetched input is set-up: keep the collector from rescanning it
        with Stopwatch() as sw:
            histories, bad = pyfold.fold(rows)
        fold_s += sw.seconds
        done += len(rows)
        buckets += 1
        quarantined += bad
        for kind, out in histories.items():
            history_rows[kind] += len(out)
        del rows, histories
        gc.unfreeze()
    con.close()
    folded = done
    scale = total / folded if folded else math.nan
    return Timing(
        fold_s * scale,
        {
            "events_total": total,
            "events_folded": folded,
            "buckets": f"{buckets}/{len(sizes)}",
            "scaled": scale != 1,
            "scale": scale,
            "fold_seconds_measured": fold_s,
            "fetch_seconds_untimed": fetch_s,
            "history_rows": history_rows,
            "quarantined": quarantined,
        },
    )


# ------------------------------------------------------------------------------------------ main


def main() -> list[Row]:
    out, meta = prepare()
    loaded, inc, py_db = out / "loaded.duckdb", out / "inc.duckdb", out / "py_input.duckdb"
    print(
        f"  world: {meta['events']:_} events loaded; split by arrival {meta['split']['first_99']:_} + "
        f"{meta['split']['last_1']:_} (the late load added {meta['inc']['late_events_new']:_} events)",
        flush=True,
    )
    rows: list[Row] = []
    max_py = py_max_events()

    print("Full replay vs the pure-Python fold and the bare arg_max latest-state query", flush=True)
    got = compare(
        [
            Job("replay full", job_replay, (str(loaded), True)),
            Job("bare arg_max latest state", job_latest_argmax, (str(loaded),)),
            Job("pure-Python fold", job_python_fold, (str(py_db), max_py)),
        ]
    )
    full, argmax, python = got["replay full"], got["bare arg_max latest state"], got["pure-Python fold"]
    fi, pi = full.info, python.info
    py_notes = [
        f"replay: {fi['events']:_} events folded, {fi['quarantined']:_} quarantined, histories {fi['history_rows']}, "
        f"{fi['snapshot_rows']:_} snapshot rows (the replay also builds pipeline_snapshots; the Python fold does not)",
    ]
    if pi["scaled"]:
        py_notes.append(
            f"Python fold timed on {pi['events_folded']:_} of {pi['events_total']:_} events ({pi['buckets']} hash buckets "
            f"of aggregates, CRM_LAB_BENCH_PY_EVENTS={max_py:_}) and scaled linearly x{pi['scale']:.2f}: "
            f"measured {pi['fold_seconds_measured']:.1f} s"
        )
        py_notes.append(f"Python fold on its subset: histories {pi['history_rows']}, {pi['quarantined']:_} quarantined")
    else:
        same = pi["history_rows"] == {k: fi["history_rows"][f"{k}_history"] for k in ("deal", "lead", "account")}
        py_notes.append(
            f"Python fold over all {pi['events_total']:_} events: histories {pi['history_rows']}, "
            f"{pi['quarantined']:_} quarantined ({'same row counts as the replay' if same else 'WARNING: row counts differ from the replay'})"
        )
    py_notes.append(f"Python fold: fetching its input as tuples took {pi['fetch_seconds_untimed']:.1f} s (not timed)")
    rows.append(Row("replay full vs pure-Python fold", full, python, TARGET_VS_PYTHON, faster=True, notes=py_notes))
    rows.append(
        Row(
            "replay full / bare arg_max latest state",
            full,
            argmax,
            TARGET_VS_ARGMAX,
            notes=[f"arg_max over {len(LATEST_FIELDS)} fields -> {argmax.info['aggregates']:_} aggregates"],
        )
    )

    print("Incremental replay after the late 1% vs a full replay of the same database", flush=True)
    got = compare(
        [
            Job("replay incremental", job_replay, (str(inc), False)),
            Job("replay full (same db)", job_replay, (str(inc), True)),
        ]
    )
    incr, full2 = got["replay incremental"], got["replay full (same db)"]
    ii, fi2 = incr.info, full2.info
    notes = [
        f"incremental ({ii['mode']}): refolded {ii['aggregates']:_} aggregates / {ii['events']:_} events; "
        f"full: {fi2['aggregates']:_} aggregates / {fi2['events']:_} events",
    ]
    if ii["mode"] != "incremental":
        notes.append("WARNING: the incremental run did not run in incremental mode")
    if ii["history_rows"] != fi2["history_rows"]:
        notes.append(f"WARNING: history row counts differ: incremental {ii['history_rows']} vs full {fi2['history_rows']}")
    rows.append(Row("replay incremental (1% late) vs full", incr, full2, TARGET_INCREMENTAL, faster=True, notes=notes))

    print()
    print_rows(rows)
    return rows
