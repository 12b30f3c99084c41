"""The forecast simulator's throughput beside two baselines, and a backtest's wall time.

1. ``crm_lab.forecast.simulation`` on 10 000 open deals x 100 000 trials x 4 monthly periods
   (``CRM_LAB_BENCH_FORECAST_TRIALS``), against, in the same run:
   - a straightforward numpy implementation of the same model: float64 uniforms for the whole
     (trials x deals) matrix at once (one for the win, one for the close date, one for the
     amount), the logistic of the shifted log-odds, a period from comparing with the cumulative
     close probabilities, then masked sums; run on ``NUMPY_TRIALS`` trials at once (its
     matrices for 100 000 trials would need tens of GB);
   - a pure-Python loop over trials and deals, on ``PYTHON_TRIALS`` trials.
   Each is timed on its own number of deal-trials and its seconds are scaled to the workload's
   (the info shows the measured seconds and deal-trials), so the ratio is a ratio of throughput.
   Target: at least 3x the straightforward numpy, peak memory under 2 GB.
2. ``crm_lab.forecast.backtesting`` over 24 monthly as-of dates (2024-01 to 2025-12, horizon
   month, 4000 trials, stored) on a generated world of ~1M events
   (``CRM_LAB_BENCH_FORECAST_EVENTS``) spanning 2023-2025, so that the first as-of has a year
   of history: wall time, and the backtest's quality (P10-P90 coverage, CRPS against the
   weighted pipeline).

The deals are real: the open deals of the largest company of a generated world as of
2025-05-01, with the win probabilities, close-date probabilities for May to August and amount
tables its fitted model gives them, resampled to 10 000 (cached in ``benchmarks/out/``).
"""

from __future__ import annotations

import math
import os
import random
import shutil
import time
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks.harness import OUT, Job, Row, Stopwatch, Timing, compare, copy_db, fmt_bytes, in_child, print_rows, run_once, tempdir

DEALS = 10_000
PERIODS = 4
TARGET_VS_NUMPY = 3.0
MEMORY_LIMIT = 2 * 2**30
NUMPY_TRIALS = 1_000
PYTHON_TRIALS = 10
PROBLEM = OUT / "forecast-problem-10000.npz"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").replace("_", "").strip()
    return int(float(raw)) if raw else default


def workload_trials() -> int:
    return _env_int("CRM_LAB_BENCH_FORECAST_TRIALS", 100_000)


def world_events() -> int:
    return _env_int("CRM_LAB_BENCH_FORECAST_EVENTS", 1_000_000)


# ------------------------------------------------------------------------------------- the problem


def _build_problem(path: str) -> dict:
    """Fit a generated world's largest company as of 2025-05-01 and resample its open deals."""
    from crm_lab.forecast.inputs import portfolio
    from crm_lab.forecast.run import prepare
    from crm_lab.generate import generate
    from crm_lab.load import load
    from crm_lab.replay import replay

    with tempdir("forecast-problem-") as tmp:
        generate(tmp / "world", companies=3, deals=6000, seed=1)
        load(tmp / "crm.duckdb", [tmp / "world"])
        replay(tmp / "crm.duckdb")
        cases = prepare(tmp / "crm.duckdb", as_of="2025-05-01", horizon="2025-08-31")
    case = max(cases, key=lambda c: c.deals.height)
    port = portfolio(case)
    pick = np.random.default_rng(0).integers(0, port.deals, DEALS)
    arrays = {
        "win_probability": port.win_probability[pick], "shock_group": port.shock_group[pick], "shock_sd": port.shock_sd,
        "close_cdf": port.close_cdf[pick], "amount": port.amount[pick], "amount_ratio": port.amount_ratio,
        "amount_row": port.amount_row[pick],
    }
    np.savez(path, **arrays)
    return {"open_deals": case.deals.height, "company": case.company_id}


def problem() -> Path:
    if not PROBLEM.exists():
        PROBLEM.parent.mkdir(parents=True, exist_ok=True)
        partial = PROBLEM.with_name("partial-" + PROBLEM.name)
        info, wall, _ = in_child(_build_problem, str(partial))
        os.replace(partial, PROBLEM)
        print(f"  built the benchmark problem in {wall:.0f} s from {info['open_deals']} open deals of {info['company']}", flush=True)
    return PROBLEM


def _load(path: str) -> dict:
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def _scaled(seconds: float, deal_trials: int, full: int, **info) -> Timing:
    return Timing(
        seconds * full / deal_trials,
        {"measured_seconds": round(seconds, 3), "deal_trials": deal_trials,
         "deal_trials_per_second": round(deal_trials / seconds), **info},
    )


# ------------------------------------------------------------------------------------------ jobs


def job_crm_lab(path: str, trials: int) -> Timing:
    """crm_lab's simulator on the whole workload, company totals only."""
    from crm_lab.forecast.simulation import Portfolio, simulate

    a = _load(path)
    n = len(a["win_probability"])
    port = Portfolio(win_multiplier=np.ones(n), new_expected=np.zeros(a["close_cdf"].shape[1]), **a)
    with Stopwatch() as sw:
        out = simulate([port], trials=trials, seed=1, per_deal=False)[0]
    totals = out.totals()
    return _scaled(sw.seconds, n * trials, n * trials, mean_total=round(float(totals.sum(axis=1).mean())))


def straightforward_numpy(a: dict, trials: int, seed: int) -> np.ndarray:
    """The model written plainly in numpy, one matrix per random quantity: (trials, periods)."""
    rng = np.random.default_rng(seed)
    p, group, sd = a["win_probability"], a["shock_group"], a["shock_sd"]
    cdf, amount, ratio, row = a["close_cdf"], a["amount"], a["amount_ratio"], a["amount_row"]
    periods, k = cdf.shape[1], ratio.shape[1]
    logit = np.log(p) - np.log1p(-p)
    z = rng.standard_normal((trials, len(sd)))
    u_win = rng.random((trials, len(p)))
    u_close = rng.random((trials, len(p)))
    u_amount = rng.random((trials, len(p)))
    p_trial = 1.0 / (1.0 + np.exp(-(logit[None, :] + z[:, group] * sd[group][None, :])))
    won = u_win < p_trial
    period = (u_close[:, :, None] >= cdf[None, :, :]).sum(axis=2)  # == periods: after the window
    booked = np.where(won, amount[None, :] * ratio[row[None, :], (u_amount * k).astype(np.int64)], 0.0)
    return np.stack([np.where(period == j, booked, 0.0).sum(axis=1) for j in range(periods)], axis=1)


def job_numpy(path: str, trials: int, full_trials: int) -> Timing:
    a = _load(path)
    n = len(a["win_probability"])
    with Stopwatch() as sw:
        totals = straightforward_numpy(a, trials, 1)
    return _scaled(sw.seconds, n * trials, n * full_trials, mean_total=round(float(totals.sum(axis=1).mean())))


def pure_python(a: dict, trials: int, seed: int) -> list[list[float]]:
    """The same model as loops over trials and deals."""
    rnd = random.Random(seed)
    p = a["win_probability"].tolist()
    group = a["shock_group"].tolist()
    sd = a["shock_sd"].tolist()
    cdf = a["close_cdf"].tolist()
    amount = a["amount"].tolist()
    ratio = a["amount_ratio"].tolist()
    row = a["amount_row"].tolist()
    logit = [math.log(x) - math.log1p(-x) for x in p]
    periods, k = len(cdf[0]), len(ratio[0])
    out = []
    for _ in range(trials):
        shock = [rnd.gauss(0.0, s) for s in sd]
        totals = [0.0] * periods
        for i in range(len(p)):
            if rnd.random() < 1.0 / (1.0 + math.exp(-(logit[i] + shock[group[i]]))):
                u = rnd.random()
                j = 0
                while j < periods and u >= cdf[i][j]:
                    j += 1
                if j < periods:
                    totals[j] += amount[i] * ratio[row[i]][int(rnd.random() * k)]
        out.append(totals)
    return out


def job_python(path: str, trials: int, full_trials: int) -> Timing:
    a = _load(path)
    n = len(a["win_probability"])
    with Stopwatch() as sw:
        totals = pure_python(a, trials, 1)
    return _scaled(sw.seconds, n * trials, n * full_trials, mean_total=round(float(np.sum(totals) / trials)))


# ------------------------------------------------------------------------------------- backtest


def _backtest_world(out_dir: str, deals: int) -> dict:
    from crm_lab.generate import generate
    from crm_lab.load import load
    from crm_lab.replay import replay

    out = Path(out_dir)
    summary = generate(out / "world", companies=3, deals=deals, seed=1, start="2023-01-01", end="2025-12-31")
    load(out / "crm.duckdb", [out / "world"])
    replay(out / "crm.duckdb")
    return {"events": summary.events, "deals": summary.rows["deals"]}


def backtest_db() -> Path:
    events = world_events()
    folder = OUT / f"forecast-world-e{events}-s1-c3-3y"
    marker = folder / ".complete"
    if not marker.exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        # 3 years of history generate about 9.5 events per deal
        deals = max(100, round(events / 9.5))
        print(f"  generating, loading and replaying a 3-year world of {deals:_} deals -> {folder}", flush=True)
        info, wall, _ = in_child(_backtest_world, str(folder), deals)
        marker.write_text(f"{info}\n")
        print(f"  built in {wall:.0f} s: {info['events']:_} events", flush=True)
    return folder / "crm.duckdb"


def job_backtest(db: str) -> Timing:
    from crm_lab.forecast.backtesting import backtest

    with tempdir("forecast-backtest-") as tmp:
        work = copy_db(Path(db), tmp / "crm.duckdb")
        with Stopwatch() as sw:
            result = backtest(work, start="2024-01-01", stop="2025-12-01", every="month", horizon="month", trials=4000, seed=1)
    # Coverage is a share, pooled over companies; CRPS is money, in each company's currency.
    company_rows = result.rows.filter(pl.col("group_by") == "company")
    coverage = dict(company_rows.group_by("method").agg(pl.col("covered").mean()).iter_rows())
    forecasts = company_rows.filter(pl.col("method") == "monte_carlo").height
    crps = {(row["company_id"], row["currency"], row["method"]): round(row["crps"])
            for row in result.summary().iter_rows(named=True)}
    return Timing(sw.seconds, {
        "as_of_dates": len(result.as_ofs), "forecasts": forecasts,
        "coverage_mc": round(coverage["monte_carlo"], 3), "coverage_wp": round(coverage["weighted_pipeline"], 3),
        "crps": [f"{company} ({currency}) {crps[company, currency, 'monte_carlo']:_} vs weighted pipeline "
                 f"{crps[company, currency, 'weighted_pipeline']:_}"
                 for company, currency, method in crps if method == "monte_carlo"],
    })


def main() -> list[Row]:
    path = str(problem())
    trials = workload_trials()
    full = DEALS * trials
    print(f"simulator: {DEALS:_} deals x {trials:_} trials x {PERIODS} periods = {full:_} deal-trials "
          f"(numpy baseline on {NUMPY_TRIALS:_} trials, Python on {PYTHON_TRIALS})", flush=True)
    got = compare([
        Job("crm_lab simulate", job_crm_lab, (path, trials)),
        Job("straightforward numpy", job_numpy, (path, NUMPY_TRIALS, trials)),
        Job("pure Python loop", job_python, (path, PYTHON_TRIALS, trials)),
    ])
    ours, plain, loop = got["crm_lab simulate"], got["straightforward numpy"], got["pure Python loop"]
    notes = [
        f"{name}: {m.info['deal_trials_per_second'] / 1e6:,.2f} M deal-trials/s measured on {m.info['deal_trials']:_} "
        f"deal-trials in {m.info['measured_seconds']} s; mean total {m.info['mean_total']:_}; peak RSS {fmt_bytes(m.peak_rss)}"
        for name, m in (("crm_lab", ours), ("numpy", plain), ("python", loop))
    ]
    memory_ok = ours.peak_rss < MEMORY_LIMIT
    notes.append(f"peak memory of the workload {fmt_bytes(ours.peak_rss)}: {'under' if memory_ok else 'NOT under'} 2 GiB")
    rows = [
        Row("simulate vs straightforward numpy", ours, plain, TARGET_VS_NUMPY, faster=True, notes=notes),
        Row("simulate vs pure-Python loop", ours, loop, 1.0, faster=True),
    ]
    print("backtest: 24 monthly as-of dates, horizon month, 4000 trials", flush=True)
    db = backtest_db()
    sample = run_once(job_backtest, str(db))
    info = sample.info
    print(
        f"  backtest wall time {sample.seconds:.1f} s for {info['as_of_dates']} as-of dates ({info['forecasts']} company "
        f"forecasts), peak RSS {fmt_bytes(sample.peak_rss)}; coverage P10-P90 {info['coverage_mc']:.0%} "
        f"(weighted pipeline {info['coverage_wp']:.0%}); CRPS per company: {'; '.join(info['crps'])}",
        flush=True,
    )
    print()
    print_rows(rows)
    return rows


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"took {time.perf_counter() - started:.0f} s")
