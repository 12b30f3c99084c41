"""``python -m benchmarks [NAME ...]``: run every ``benchmarks/bench_*.py`` module's ``main()``.

NAME is a module name with or without the ``bench_`` prefix (``load``, ``bench_replay``). Exits
non-zero only when a benchmark crashes; a missed target is reported in the table, not a crash.
"""

from __future__ import annotations

import importlib
import sys
import time
import traceback
from pathlib import Path


def available() -> list[str]:
    here = Path(__file__).resolve().parent
    return sorted(p.stem for p in here.glob("bench_*.py"))


def main(argv: list[str]) -> int:
    from benchmarks import harness

    names = available()
    if argv:
        wanted = [a if a.startswith("bench_") else f"bench_{a}" for a in argv]
        unknown = [w for w in wanted if w not in names]
        if unknown:
            print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(names)}", file=sys.stderr)
            return 2
        names = wanted
    print(harness.describe_run(), flush=True)
    crashed: list[str] = []
    all_rows: list[harness.Row] = []
    for name in names:
        print(f"\n{'=' * 100}\n== {name}\n{'=' * 100}", flush=True)
        started = time.perf_counter()
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            rows = module.main() or []
            all_rows.extend(rows)
        except Exception:
            traceback.print_exc()
            crashed.append(name)
        print(f"-- {name} took {time.perf_counter() - started:.0f} s", flush=True)
    if all_rows:
        print(f"\n{'=' * 100}\n== summary\n{'=' * 100}")
        harness.print_rows(all_rows)
    if crashed:
        print(f"\ncrashed: {', '.join(crashed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
