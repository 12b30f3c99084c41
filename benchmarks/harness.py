"""Shared machinery of the benchmarks: scale, cached worlds, measurement in fresh processes, and
the ratio table.

Every measurement runs in a fresh interpreter (multiprocessing ``spawn``), so one run's caches,
allocator state and page-table high-water mark never leak into the next. The workload and its
baseline are interleaved (A B A B ...) so that a noisy neighbour on the shared machine hits both,
and medians are compared.

Peak memory is the child's own high-water resident set (``VmHWM`` from ``/proc/self/status``,
which is what ``ru_maxrss`` means for a process that did not inherit one). ``ru_maxrss`` itself is
recorded too, but on Linux it is carried across ``fork`` + ``exec``, so a spawned child reports at
least its parent's peak at the time of the fork: not a measure of the child.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(__file__).resolve().parent / "out"  # git-ignored

DEFAULT_EVENTS = 10_000_000
DEFAULT_SEED = 1
DEFAULT_REPEATS = 3
COMPANIES = 3
# crm_lab.generate writes ~9.76 events per deal (measured with 3 companies); used to aim at the
# requested number of events. The actual count is printed with every result.
EVENTS_PER_DEAL = 9.76


# ------------------------------------------------------------------------------------------ scale


def _env_int(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name, "").replace("_", "").strip()
    if not raw:
        return default
    try:
        value = int(float(raw))
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {os.environ[name]!r}") from None
    if value < minimum:
        raise SystemExit(f"{name} must be >= {minimum}, got {value}")
    return value


def bench_events() -> int:
    """Target number of events: ``CRM_LAB_BENCH_EVENTS`` (default 10 000 000)."""
    return _env_int("CRM_LAB_BENCH_EVENTS", DEFAULT_EVENTS)


def bench_seed() -> int:
    """Seed of the generated world: ``CRM_LAB_BENCH_SEED`` (default 1)."""
    return _env_int("CRM_LAB_BENCH_SEED", DEFAULT_SEED, minimum=0)


def bench_repeats() -> int:
    """Measurements per job: ``CRM_LAB_BENCH_REPEATS`` (default 3)."""
    return _env_int("CRM_LAB_BENCH_REPEATS", DEFAULT_REPEATS)


def describe_run() -> str:
    import duckdb

    mem = ""
    try:
        with open("/proc/meminfo") as handle:
            total_kb = int(handle.readline().split()[1])
        mem = f", {total_kb / 2**20:.0f} GiB RAM"
    except OSError:
        pass
    return (
        f"benchmarks: CRM_LAB_BENCH_EVENTS={bench_events():_} seed={bench_seed()} repeats={bench_repeats()} | "
        f"{os.cpu_count()} cores{mem} | Python {platform.python_version()}, DuckDB {duckdb.__version__}"
    )


# ------------------------------------------------------------------------------------ fresh child


def _peak_rss() -> tuple[int, int]:
    """(VmHWM, ru_maxrss) of this process, in bytes."""
    hwm = 0
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return hwm or maxrss, maxrss


def _quiet_duckdb() -> None:
    """Turn off DuckDB's terminal progress bar in the child (it writes carriage-return lines into
    captured output). It is a per-connection setting, so wrap ``duckdb.connect``; the workload and
    the baselines get the same treatment."""
    import duckdb

    if getattr(duckdb.connect, "_bench_quiet", False):
        return
    original = duckdb.connect

    def connect(*args, **kwargs):
        con = original(*args, **kwargs)
        con.execute("SET enable_progress_bar = false")
        return con

    connect._bench_quiet = True  # type: ignore[attr-defined]
    duckdb.connect = connect


def _child(conn, fn: Callable, args: tuple) -> None:
    try:
        _quiet_duckdb()
        started = time.perf_counter()
        result = fn(*args)
        wall = time.perf_counter() - started
        conn.send(("ok", result, wall, _peak_rss()))
    except BaseException:
        conn.send(("error", traceback.format_exc(), None, _peak_rss()))
    finally:
        conn.close()


class ChildError(RuntimeError):
    """A measured function raised, or its process died (killed, out of memory)."""


def in_child(fn: Callable, *args) -> tuple[Any, float, tuple[int, int]]:
    """Run ``fn(*args)`` in a fresh spawned interpreter; return (its result, wall seconds of the
    call, (VmHWM, ru_maxrss) bytes). ``fn`` must be importable (a module-level function)."""
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(send, fn, args))
    process.start()
    send.close()
    try:
        message = receive.recv()
    except EOFError:
        message = None
    process.join()
    receive.close()
    name = getattr(fn, "__qualname__", repr(fn))
    if message is None:
        reason = " (killed: out of memory?)" if process.exitcode in (-9, 137) else ""
        raise ChildError(f"{name}: process died with exit code {process.exitcode}{reason}")
    status, payload, wall, peaks = message
    if status != "ok":
        raise ChildError(f"{name} raised in its process:\n{payload}")
    return payload, wall, peaks


@dataclass
class Timing:
    """What a measured function may return instead of letting the whole call be timed: the
    seconds of its timed part (set-up and clean-up excluded) and facts to print."""

    seconds: float
    info: dict = field(default_factory=dict)


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.seconds``."""

    seconds: float = 0.0

    def __enter__(self) -> Stopwatch:
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self._started


@dataclass
class Sample:
    seconds: float
    peak_rss: int  # VmHWM, bytes
    ru_maxrss: int  # bytes; inherits the parent's peak across fork+exec (see module docstring)
    info: dict


def run_once(fn: Callable, *args) -> Sample:
    """One measurement of ``fn(*args)`` in a fresh process. If ``fn`` returns a :class:`Timing`,
    its seconds are the measurement; otherwise the whole call is timed (inside the child, so
    interpreter start-up and imports are not)."""
    result, wall, (hwm, maxrss) = in_child(fn, *args)
    if isinstance(result, Timing):
        return Sample(result.seconds, hwm, maxrss, dict(result.info))
    return Sample(wall, hwm, maxrss, dict(result) if isinstance(result, dict) else {})


@dataclass
class Job:
    name: str
    fn: Callable
    args: tuple = ()


@dataclass
class Measured:
    name: str
    samples: list[Sample]

    @property
    def median_s(self) -> float:
        return statistics.median(s.seconds for s in self.samples)

    @property
    def peak_rss(self) -> int:
        """The highest peak over the repeats."""
        return max(s.peak_rss for s in self.samples)

    @property
    def info(self) -> dict:
        return self.samples[-1].info if self.samples else {}


def compare(jobs: Sequence[Job], repeats: int | None = None, *, log: bool = True) -> dict[str, Measured]:
    """Measure every job ``repeats`` times, interleaved (A B A B ...), each run in a fresh process."""
    repeats = bench_repeats() if repeats is None else repeats
    results = {job.name: Measured(job.name, []) for job in jobs}
    for r in range(repeats):
        for job in jobs:
            sample = run_once(job.fn, *job.args)
            results[job.name].samples.append(sample)
            if log:
                print(
                    f"  [{r + 1}/{repeats}] {job.name}: {sample.seconds:.2f} s, peak RSS {fmt_bytes(sample.peak_rss)}",
                    flush=True,
                )
    return results


def measure(fn: Callable, *args, repeats: int | None = None) -> Measured:
    """``repeats`` measurements of one function, each in a fresh process (see :func:`compare` to
    interleave a workload with its baseline)."""
    job = Job(getattr(fn, "__name__", "job"), fn, args)
    return compare([job], repeats)[job.name]


# ------------------------------------------------------------------------------------------ table


@dataclass
class Row:
    """One workload beside its baseline. ``faster`` False: ratio = workload / baseline and the
    target is an upper bound (``<= target``). ``faster`` True: ratio = baseline / workload (how many
    times faster the workload is) and the target is a lower bound (``>= target``)."""

    name: str
    workload: Measured
    baseline: Measured
    target: float
    faster: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        a, b = self.workload.median_s, self.baseline.median_s
        if self.faster:
            return b / a if a > 0 else math.inf
        return a / b if b > 0 else math.inf

    @property
    def met(self) -> bool:
        return self.ratio >= self.target if self.faster else self.ratio <= self.target

    @property
    def target_text(self) -> str:
        if self.faster:
            return f">= {self.target:g}x faster"
        return f"<= {self.target:g}x baseline"


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return str(n)


def print_rows(rows: Sequence[Row]) -> None:
    header = ("name", "median_s", "baseline_median_s", "ratio", "target", "met?", "peak_rss", "baseline_peak_rss")
    table = [header]
    for row in rows:
        table.append(
            (
                row.name,
                f"{row.workload.median_s:.2f}",
                f"{row.baseline.median_s:.2f}",
                f"{row.ratio:.2f}x",
                row.target_text,
                "yes" if row.met else "NO",
                fmt_bytes(row.workload.peak_rss),
                fmt_bytes(row.baseline.peak_rss),
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for k, r in enumerate(table):
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]
        print("  ".join(cells))
        if k == 0:
            print("  ".join("-" * w for w in widths))
    for row in rows:
        a = ", ".join(f"{s.seconds:.2f}" for s in row.workload.samples)
        b = ", ".join(f"{s.seconds:.2f}" for s in row.baseline.samples)
        print(f"  {row.name}: workload '{row.workload.name}' [{a}] s; baseline '{row.baseline.name}' [{b}] s")
        for note in row.notes:
            print(f"    note: {note}")
    sys.stdout.flush()


# ------------------------------------------------------------------------------- cached worlds


def world_key(events: int, seed: int) -> str:
    return f"world-e{events}-s{seed}-c{COMPANIES}"


def _generate_world(out_dir: str, deals: int, seed: int) -> dict:
    from crm_lab.generate import generate

    summary = generate(out_dir, companies=COMPANIES, deals=deals, seed=seed, fmt="parquet")
    return dict(summary.rows)


def world(events: int | None = None, seed: int | None = None) -> Path:
    """The generated world in Parquet for this scale and seed, generated once and cached under
    ``benchmarks/out/`` (a ``.complete`` marker says it was written through)."""
    events = bench_events() if events is None else events
    seed = bench_seed() if seed is None else seed
    out = OUT / world_key(events, seed) / "parquet"
    marker = out / ".complete"
    if not marker.exists():
        deals = max(20, round(events / EVENTS_PER_DEAL))
        print(f"  generating the world: {deals:_} deals for ~{events:_} events, seed {seed} -> {out}", flush=True)
        shutil.rmtree(out, ignore_errors=True)
        rows, wall, _ = in_child(_generate_world, str(out), deals, seed)
        marker.write_text(f"{rows}\n")
        print(f"  generated in {wall:.0f} s: {rows['events']:_} events", flush=True)
    return out


def world_files(directory: Path, ext: str) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix == f".{ext}" and not p.name.startswith("."))


def _parquet_to_csv(parquet_dir: str, csv_dir: str) -> None:
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for src in world_files(Path(parquet_dir), "parquet"):
        dst = Path(csv_dir) / f"{src.stem}.csv"
        tmp = dst.with_name(dst.name + ".partial")
        con.execute(f"COPY (SELECT * FROM read_parquet('{src}')) TO '{tmp}' (FORMAT csv, HEADER)")
        os.replace(tmp, dst)
    con.close()


def world_csv(parquet_dir: Path) -> Path:
    """The same world as CSV, written once by DuckDB ``COPY (SELECT * FROM read_parquet(f)) TO
    'f.csv' (HEADER)`` per table (session time zone UTC), cached beside the Parquet copy."""
    out = parquet_dir.parent / "csv"
    marker = out / ".complete"
    if not marker.exists():
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        print(f"  writing the CSV copy -> {out}", flush=True)
        _, wall, _ = in_child(_parquet_to_csv, str(parquet_dir), str(out))
        marker.write_text("ok\n")
        print(f"  CSV copy written in {wall:.0f} s", flush=True)
    return out


# -------------------------------------------------------------------------------------- helpers


@contextmanager
def tempdir(prefix: str = "run-") -> Iterator[Path]:
    """A fresh directory under ``benchmarks/out/tmp`` (same disk as the cached worlds), removed after."""
    base = OUT / "tmp"
    base.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def copy_db(src: Path, dst: Path) -> Path:
    """Copy a closed DuckDB file (and its WAL, if one was left) to ``dst``."""
    shutil.copyfile(src, dst)
    wal = src.with_name(src.name + ".wal")
    if wal.exists():
        shutil.copyfile(wal, dst.with_name(dst.name + ".wal"))
    return dst


def file_count_rows(path: Path) -> int:
    import duckdb

    con = duckdb.connect()
    try:
        return con.sql(f"SELECT count(*) FROM read_parquet('{path}')").fetchall()[0][0]
    finally:
        con.close()
