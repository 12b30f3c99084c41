"""Scenario grids: evaluate a function at every combination of knob values, on common random
numbers.

Every grid point gets a random generator started from the same seed, so a simulation that draws
its randomness in the same order whatever the knobs (as it should) sees the same random numbers
at every point. The difference between two neighbouring points is then the knobs' effect, not
two independent draws of noise.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import polars as pl

from crm_lab.errors import InvalidArgument
from crm_lab.leads import _checks


def grid_sweep(
    evaluate: Callable[..., Mapping[str, float] | float],
    *,
    seed: int = 0,
    common_random_numbers: bool = True,
    **knob_values: Iterable[Any],
) -> pl.DataFrame:
    """Evaluate ``evaluate(rng, **knobs)`` over the Cartesian grid of knob values.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(rng, **knobs)`` with ``rng`` a ``numpy.random.Generator``, returning a mapping
        of output names to numbers (or one number, named ``value``). Any simulator with this
        signature plugs in, e.g. :class:`crm_lab.leads.RoutedRevenueSimulation` or a forecast
        simulator wrapped to take its scenario knobs as keywords.
    seed : int
        Seed (through ``numpy.random.SeedSequence``).
    common_random_numbers : bool
        True: every grid point starts from the same seed. False: each point gets its own
        independent stream (spawned from the seed), to measure what common random numbers save.
    **knob_values : iterable
        Each knob's values, e.g. ``win_rate_multiplier=[0.8, 1.0, 1.2]``.

    Returns
    -------
    polars.DataFrame
        Tidy: one row per grid point (the first knob varying slowest), a column per knob, then a
        column per output.

    Examples
    --------
    >>> from crm_lab.leads import grid_sweep
    >>> def noisy_sum(rng, a, b):
    ...     return {"total": a + b + rng.normal()}
    >>> grid = grid_sweep(noisy_sum, a=[0, 1], b=[10, 20])
    >>> grid.columns, grid.height
    (['a', 'b', 'total'], 4)
    >>> round(grid["total"][1] - grid["total"][0], 12)  # the same noise at every point
    10.0
    """
    if not callable(evaluate):
        raise InvalidArgument(f"evaluate must be callable as evaluate(rng, **knobs), got {evaluate!r}")
    if not knob_values:
        raise InvalidArgument("grid_sweep needs at least one knob, e.g. win_rate_multiplier=[0.9, 1.0, 1.1]")
    seed = _checks.whole_number("seed", seed, minimum=0)
    names = list(knob_values)
    grids = []
    for name, values in knob_values.items():
        values = [values] if isinstance(values, (str, bytes)) or not isinstance(values, Iterable) else list(values)
        if not values:
            raise InvalidArgument(f"knob {name} has no values")
        grids.append(values)
    points = list(itertools.product(*grids))
    streams = None if common_random_numbers else np.random.SeedSequence(seed).spawn(len(points))
    rows = []
    for index, point in enumerate(points):
        rng = np.random.default_rng(np.random.SeedSequence(seed) if streams is None else streams[index])
        knobs = dict(zip(names, point))
        result = evaluate(rng, **knobs)
        outputs = dict(result) if isinstance(result, Mapping) else {"value": result}
        clash = set(outputs) & set(names)
        if clash:
            raise InvalidArgument(f"evaluate returned output(s) named like knobs: {', '.join(sorted(clash))}")
        rows.append({**knobs, **outputs})
    return pl.DataFrame(rows)
