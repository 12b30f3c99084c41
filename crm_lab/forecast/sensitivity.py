"""Sensitivity of the forecast to each scenario knob: a tornado on common random numbers (pure).

Each knob is moved one step down and one step up from a base scenario, every variant is
simulated on the same random numbers as the base, and the P50 (and P(target)) of the whole
window is read off. Knobs are sorted by how far their two ends are apart.

Examples
--------
>>> table = tornado(inputs, trials=4000, seed=1, target=1e6)  # doctest: +SKIP
>>> table.select("knob", "p50_low", "p50_base", "p50_high")  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl

from crm_lab.errors import InvalidArgument
from crm_lab.forecast.inputs import ForecastInputs, portfolio
from crm_lab.forecast.run import check_count, check_target
from crm_lab.forecast.scenarios import Scenario
from crm_lab.forecast.simulation import simulate
from crm_lab.forecast.summary import horizon_samples

# knob -> step: multipliers move by +/- step, slip_days by +/- step days.
DEFAULT_STEPS = {"win_rate": 0.1, "deal_size": 0.1, "slip_days": 14.0, "new_pipeline": 0.2}
STAGE_STEP = 0.1


def knob_value(scenario: Scenario, knob: str) -> float:
    if knob.startswith("stage_win_rate:"):
        return float(scenario.stage_win_rate.get(knob.split(":", 1)[1], 1.0))
    return float(getattr(scenario, knob))


def tornado(
    inputs: ForecastInputs,
    *,
    base: Scenario | None = None,
    steps: dict | None = None,
    stages: bool = True,
    trials: int = 4000,
    seed: int = 0,
    target: float | None = None,
) -> pl.DataFrame:
    """The tornado of one company's forecast.

    Parameters
    ----------
    inputs : ForecastInputs
        A company's prepared inputs (:func:`crm_lab.forecast.run.prepare`).
    base : Scenario, optional
        The point the knobs move from (the baseline by default).
    steps : dict, optional
        knob -> step; default :data:`DEFAULT_STEPS`.
    stages : bool
        Also move each stage's win rate by :data:`STAGE_STEP` (knobs ``stage_win_rate:<stage>``).
    trials, seed : int
    target : float, optional
        Adds P(total >= target) at each end.

    Returns
    -------
    polars.DataFrame
        knob, low, high (knob values), p50_low, p50_base, p50_high, mean_low, mean_base,
        mean_high, swing (p50_high - p50_low), and p_target_low/base/high with a target; sorted by
        the absolute swing, largest first.
    """
    trials = check_count("trials", trials, 1)
    seed = check_count("seed", seed, 0)
    target = check_target(target)
    base = replace(base or Scenario(), name="base")
    steps = dict(DEFAULT_STEPS if steps is None else steps)
    if stages:
        for stage in inputs.model.win_rates_.stages_:
            steps.setdefault(f"stage_win_rate:{stage}", STAGE_STEP)
    variants = [base]
    knobs = []
    for knob, step in steps.items():
        if not (knob in DEFAULT_STEPS or knob.startswith("stage_win_rate:")):
            raise InvalidArgument(f"steps names knob {knob!r}; known: {', '.join(DEFAULT_STEPS)}, stage_win_rate:<stage>")
        centre = knob_value(base, knob)
        low = centre - step
        if knob != "slip_days":
            low = max(low, 0.0)
        high = centre + step
        variants.append(base.with_knob(knob, low, f"{knob} low"))
        variants.append(base.with_knob(knob, high, f"{knob} high"))
        knobs.append((knob, low, high))
    portfolios = [portfolio(inputs, v) for v in variants]
    outputs = simulate(portfolios, trials=trials, seed=seed, stream=inputs.stream, per_deal=False)
    totals = [horizon_samples(inputs, out).sum(axis=1) for out in outputs]

    def stats(x: np.ndarray) -> tuple[float, float, float | None]:
        return float(np.median(x)), float(x.mean()), (float((x >= target).mean()) if target is not None else None)

    p50_base, mean_base, pt_base = stats(totals[0])
    rows = []
    for k, (knob, low, high) in enumerate(knobs):
        p50_lo, mean_lo, pt_lo = stats(totals[1 + 2 * k])
        p50_hi, mean_hi, pt_hi = stats(totals[2 + 2 * k])
        row = {
            "company_id": inputs.company_id, "knob": knob, "low": low, "high": high,
            "p50_low": p50_lo, "p50_base": p50_base, "p50_high": p50_hi,
            "mean_low": mean_lo, "mean_base": mean_base, "mean_high": mean_hi, "swing": p50_hi - p50_lo,
        }
        if target is not None:
            row.update(p_target_low=pt_lo, p_target_base=pt_base, p_target_high=pt_hi)
        rows.append(row)
    frame = pl.DataFrame(rows)
    money = ["p50_low", "p50_base", "p50_high", "mean_low", "mean_base", "mean_high", "swing"]
    return frame.with_columns(pl.col(money).round(2)).sort(pl.col("swing").abs(), descending=True)
