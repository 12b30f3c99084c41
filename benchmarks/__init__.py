"""Scale benchmarks: the real workload beside its baseline in the same run, printed as a ratio.

Run them with ``make bench`` (or ``.venv/bin/python -m benchmarks [load] [replay]``). The scale
comes from ``CRM_LAB_BENCH_EVENTS`` (default 10 000 000 events); see ``benchmarks/README.md``.
Speed and memory goals live here, never in timed tests.
"""
