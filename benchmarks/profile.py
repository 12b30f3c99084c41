"""Where the time of a load or a replay goes: every statement crm_lab sends to DuckDB, timed.

    CRM_LAB_BENCH_EVENTS=1000000 .venv/bin/python -m benchmarks.profile load [--csv]
    CRM_LAB_BENCH_EVENTS=1000000 .venv/bin/python -m benchmarks.profile replay [--incremental]

Uses the cached world (and, for replay, the databases prepared by ``bench_replay``; run the
benchmark first). It runs once in a fresh process, with ``duckdb.connect`` wrapped so that each
``execute``/``sql``-then-fetch, ``commit`` and ``close`` (the checkpoint) is timed, and prints the
statements by time, with the process's CPU seconds beside the wall seconds (on a shared machine
the wall time of a statement swings with the neighbours' load; its CPU time mostly does not). Not a
benchmark: no baseline, no target; a diagnostic.
"""

from __future__ import annotations

import re
import resource
import sys
import time
from pathlib import Path

from benchmarks import harness


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Relation:
    def __init__(self, rel, label, log):
        self._rel, self._label, self._log = rel, label, log

    def _timed(self, name, *args, **kwargs):
        started, cpu = time.perf_counter(), _cpu()
        out = getattr(self._rel, name)(*args, **kwargs)
        self._log.append((time.perf_counter() - started, _cpu() - cpu, self._label))
        return out

    def fetchall(self):
        return self._timed("fetchall")

    def fetchmany(self, *args):
        return self._timed("fetchmany", *args)

    def __getattr__(self, name):
        return getattr(self._rel, name)


class _Connection:
    def __init__(self, con, log):
        self._con, self._log = con, log

    def execute(self, query, *args, **kwargs):
        started, cpu = time.perf_counter(), _cpu()
        self._con.execute(query, *args, **kwargs)
        self._log.append((time.perf_counter() - started, _cpu() - cpu, query))
        return self

    def sql(self, query, *args, **kwargs):
        return _Relation(self._con.sql(query, *args, **kwargs), query, self._log)

    def _timed(self, name):
        started, cpu = time.perf_counter(), _cpu()
        out = getattr(self._con, name)()
        self._log.append((time.perf_counter() - started, _cpu() - cpu, f"<{name}>"))
        return out

    def commit(self):
        return self._timed("commit")

    def close(self):
        return self._timed("close")

    def __getattr__(self, name):
        return getattr(self._con, name)


def _short(sql: str, width: int = 150) -> str:
    text = re.sub(r"\s+", " ", re.sub(r"--[^\n]*", "", sql)).strip()
    return text if len(text) <= width else text[: width - 3] + "..."


def _run(what: str, flag: bool) -> list[tuple[float, float, str]]:
    import duckdb

    log: list[tuple[float, float, str]] = []
    original = duckdb.connect

    def connect(*args, **kwargs):
        return _Connection(original(*args, **kwargs), log)

    duckdb.connect = connect
    try:
        if what == "load":
            from crm_lab.load import load

            src = harness.world()
            src = harness.world_csv(src) if flag else src
            with harness.tempdir("profile-") as tmp:
                started, cpu = time.perf_counter(), _cpu()
                load(tmp / "crm.duckdb", [src])
                log.append((time.perf_counter() - started, _cpu() - cpu, "<TOTAL load()>"))
        else:
            from crm_lab.replay import replay

            out = harness.OUT / harness.world_key(harness.bench_events(), harness.bench_seed()) / "replay"
            db_src = out / ("inc.duckdb" if flag else "loaded.duckdb")
            if not db_src.exists():
                raise SystemExit(f"{db_src} is missing: run `python -m benchmarks replay` first at this scale")
            with harness.tempdir("profile-") as tmp:
                db = harness.copy_db(db_src, tmp / "crm.duckdb")
                started, cpu = time.perf_counter(), _cpu()
                replay(db, full=not flag)
                log.append((time.perf_counter() - started, _cpu() - cpu, "<TOTAL replay()>"))
    finally:
        duckdb.connect = original
    return log


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("load", "replay"):
        print(__doc__)
        return 2
    what = argv[0]
    flag = "--csv" in argv if what == "load" else "--incremental" in argv
    log, wall, (hwm, _) = harness.in_child(_run, what, flag)
    total, total_cpu = next((s, c) for s, c, q in log if q.startswith("<TOTAL"))
    print(f"{what}{' (csv)' if what == 'load' and flag else ''}{' (incremental)' if what == 'replay' and flag else ''}: "
          f"{total:.2f} s ({total_cpu:.2f} s CPU), peak RSS {harness.fmt_bytes(hwm)}, {len(log) - 1} statements")
    merged: dict[str, list[tuple[float, float]]] = {}
    for seconds, cpu, query in log:
        if not query.startswith("<TOTAL"):
            merged.setdefault(_short(query), []).append((seconds, cpu))
    ranked = sorted(merged.items(), key=lambda kv: -sum(s for s, _ in kv[1]))
    accounted = sum(s for v in merged.values() for s, _ in v)
    print(f"  statements account for {accounted:.2f} s ({accounted / total:.0%}); top 25 (wall s, CPU s):")
    for query, times in ranked[:25]:
        wall, cpu = sum(s for s, _ in times), sum(c for _, c in times)
        count = f" x{len(times)}" if len(times) > 1 else ""
        print(f"  {wall:8.2f} s {cpu:6.2f} cpu {wall / total:5.1%}{count:>5}  {query}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
