"""The Monte Carlo core: pure, vectorised numpy over blocks of trials (no I/O).

A :class:`Portfolio` holds everything one scenario of one company draws from: per open deal a
win probability, the cumulative probability of closing by the end of each period given a win, an
amount and an amount-change table; and the new-pipeline rate, dispersion and size sample.
:func:`simulate` runs several portfolios of the *same* deals on common random numbers.

How a trial is drawn
--------------------
- Parameter uncertainty: each trial takes, for every shock group (stage), one of ``LEVELS``
  equally likely quantiles of the group's log-odds posterior, and shifts the win probability of
  all of the group's deals by it. Deals of a trial therefore win together or lose together, as
  when a stage rate is misjudged. The levels are stratified: in each block, trial ``t`` takes
  level ``perm_g[t % LEVELS]`` with ``perm_g`` a random permutation per block and group, so every
  level is used equally often and the groups' levels are independent.
- One uniform ``u`` per deal and trial decides everything about that deal. It books in the
  window when ``u < p * C`` (``p`` its drawn win probability, ``C`` the probability of closing in
  the window given a win). Given that, ``w = u / (p * C)`` is uniform again and picks the period
  (``w`` against the deal's cumulative shares ``C_k / C``); the bits of ``u`` just below its
  first 24 (bits 25 to 32 for 256 quantiles), which the booking and period decisions do not
  depend on (to one part in 2**24), pick the amount-change quantile. A scenario that changes
  ``p``, ``C`` or the amount of a deal keeps ``u``, so its difference from the baseline is the
  scenario's, not noise.
- New pipeline: a gamma-distributed rate multiplier per trial (inverse CDF of a uniform), Poisson
  counts per period (inverse CDF of a uniform), and sizes picked by a counter-based hash of
  (trial, period, draw): a scenario with more new wins sees the same first wins and then more.

Streams: block ``b`` of ``BLOCK_TRIALS`` trials uses ``SeedSequence(seed, spawn_key=(stream,
b))`` and its children, so results do not depend on how many trials run or how they are chunked
(the first 2000 trials of a 10 000-trial run are the 2000-trial run), and a company's numbers do
not depend on the other companies of the run (each has its own ``stream``).

Examples
--------
>>> import numpy as np
>>> portfolio = Portfolio.fixed(win_probability=[0.5, 0.2], amount=[100.0, 300.0])
>>> out = simulate([portfolio], trials=20_000, seed=1)[0]
>>> bool(abs(out.totals()[:, 0].mean() - (0.5 * 100 + 0.2 * 300)) < 3)
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.special import gammaincinv, ndtri
from scipy.stats import poisson

from crm_lab.errors import InvalidArgument

LEVELS = 64  # a power of two
BLOCK_TRIALS = 1024  # a multiple of LEVELS
SLICE_DEALS = 8192
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@dataclass(frozen=True)
class GroupCodes:
    """How a group dimension (team, rep, ...) splits the deals and the new-pipeline sizes."""

    labels: tuple[str, ...]
    deal_codes: np.ndarray  # (n,) index into labels
    new_codes: np.ndarray  # (m,) index into labels, for each new-pipeline size


@dataclass(frozen=True)
class Portfolio:
    """One scenario's inputs for one company.

    Attributes
    ----------
    win_probability : (n,) float
        Point win probability of each open deal (before the trial's parameter draw).
    shock_group : (n,) int
        The parameter group (stage) of each deal, in ``[0, len(shock_sd))``.
    shock_sd : (S,) float
        Posterior standard deviation of each group's rate in log-odds; 0 for a fixed rate.
    close_cdf : (n, P) float
        P(a win closes by the end of period k), non-decreasing in k.
    amount : (n,) float
        Amount at the as-of (0 for a deal a scenario drops).
    amount_ratio : (A, K) float
        Won amount / amount quantiles at (j + 0.5) / K, K a power of two.
    amount_row : (n,) int
        Each deal's row of ``amount_ratio``.
    win_multiplier : (n,) float
        Scenario factor on the drawn win probability (capped at 1).
    new_expected : (P,) float
        Expected new-pipeline wins per period.
    new_gamma_shape : float
        Shape of the per-trial new-pipeline rate multiplier (mean 1); ``inf`` for none.
    new_sizes : (m,) float
        Amounts resampled for new-pipeline wins (with ``new_size_weight``).
    groups : dict
        Group dimension -> :class:`GroupCodes`.
    """

    win_probability: np.ndarray
    shock_group: np.ndarray
    shock_sd: np.ndarray
    close_cdf: np.ndarray
    amount: np.ndarray
    amount_ratio: np.ndarray
    amount_row: np.ndarray
    win_multiplier: np.ndarray
    new_expected: np.ndarray
    new_gamma_shape: float = float("inf")
    new_sizes: np.ndarray = field(default_factory=lambda: np.zeros(0))
    new_size_weight: np.ndarray = field(default_factory=lambda: np.zeros(0))
    groups: dict = field(default_factory=dict)

    @property
    def deals(self) -> int:
        return len(self.win_probability)

    @property
    def periods(self) -> int:
        return self.close_cdf.shape[1]

    @classmethod
    def fixed(cls, win_probability, amount, close_cdf=None) -> Portfolio:
        """Fixed probabilities, no parameter uncertainty, no amount change, no new pipeline;
        every win closes in the first period unless ``close_cdf`` says otherwise."""
        p = np.asarray(win_probability, dtype=np.float64)
        n = len(p)
        cdf = np.ones((n, 1)) if close_cdf is None else np.asarray(close_cdf, dtype=np.float64)
        return cls(
            win_probability=p,
            shock_group=np.zeros(n, np.int64),
            shock_sd=np.zeros(1),
            close_cdf=cdf,
            amount=np.asarray(amount, dtype=np.float64),
            amount_ratio=np.ones((1, 1)),
            amount_row=np.zeros(n, np.int64),
            win_multiplier=np.ones(n),
            new_expected=np.zeros(cdf.shape[1]),
        )

    def with_changes(self, **changes) -> Portfolio:
        return replace(self, **changes)


@dataclass
class SimulationOutput:
    """What one portfolio's trials gave.

    Attributes
    ----------
    open_totals, new_totals : (trials, P) float
        Amount booked per trial and period from the open deals, and from new pipeline.
    group_totals : dict
        dimension -> (trials, P, G) float: both parts, by group.
    deal_wins : (n, P) int or None
        Trials in which each deal booked in each period.
    deal_value : (n, P) float or None
        Sum over trials of each deal's booked amount per period.
    """

    trials: int
    open_totals: np.ndarray
    new_totals: np.ndarray
    group_totals: dict
    deal_wins: np.ndarray | None
    deal_value: np.ndarray | None

    def totals(self) -> np.ndarray:
        """Both parts, (trials, P)."""
        return self.open_totals + self.new_totals


def _validate(portfolios: Sequence[Portfolio], trials: int, seed: int) -> None:
    if isinstance(trials, bool) or not isinstance(trials, (int, np.integer)) or trials < 1:
        raise InvalidArgument(f"trials must be a positive integer, got {trials!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidArgument(f"seed must be a non-negative integer, got {seed!r}")
    if not portfolios:
        raise InvalidArgument("portfolios must hold at least one portfolio")
    first = portfolios[0]
    for p in portfolios:
        n, periods = p.deals, p.periods
        for name in ("shock_group", "amount", "amount_row", "win_multiplier"):
            if len(getattr(p, name)) != n:
                raise InvalidArgument(f"{name} has {len(getattr(p, name))} entries for {n} deals")
        if p.close_cdf.shape != (n, periods) or len(p.new_expected) != periods:
            raise InvalidArgument(f"close_cdf must be (deals, periods) and new_expected (periods,); got {p.close_cdf.shape}, {p.new_expected.shape}")
        k = p.amount_ratio.shape[1]
        if k & (k - 1) or k > 65536:
            raise InvalidArgument(f"amount_ratio must have a power-of-two number of quantiles, got {k}")
        if n and (p.shock_group.min() < 0 or p.shock_group.max() >= len(p.shock_sd)):
            raise InvalidArgument("shock_group must index shock_sd")
        if n != first.deals or periods != first.periods or not np.array_equal(p.shock_group, first.shock_group) \
                or not np.array_equal(p.shock_sd, first.shock_sd):
            raise InvalidArgument("portfolios simulated together must share their deals, periods and shock groups")
        if set(p.groups) != set(first.groups):
            raise InvalidArgument("portfolios simulated together must have the same group dimensions")


@dataclass
class _Prepared:
    """A portfolio in the simulation's deal order, with its per-level booking thresholds."""

    thresholds: np.ndarray  # (LEVELS, n): P(win and close in the window) at each level
    shares: np.ndarray  # (P-1, n): cumulative share of the window's closes by period
    amount: np.ndarray
    ratio_flat: np.ndarray
    ratio_offset: np.ndarray
    ratio_k: int
    groups: dict  # dim -> (deal codes, new codes, G)
    new_expected: np.ndarray
    new_gamma_shape: float
    new_sizes: np.ndarray
    new_cdf: np.ndarray


def _prepare(p: Portfolio, order: np.ndarray) -> _Prepared:
    z = ndtri((np.arange(LEVELS) + 0.5) / LEVELS)
    prob = np.clip(p.win_probability[order], 0.0, 1.0)
    with np.errstate(divide="ignore"):
        logit = np.log(prob) - np.log1p(-prob)
    shift = z[:, None] * p.shock_sd[p.shock_group[order]][None, :]
    drawn = 0.5 * (1.0 + np.tanh(0.5 * (logit[None, :] + shift)))  # the logistic, without overflow
    drawn = np.where(np.isfinite(logit)[None, :], drawn, prob[None, :])
    cdf = p.close_cdf[order]
    in_window = cdf[:, -1]
    thresholds = np.minimum(drawn * p.win_multiplier[order][None, :], 1.0) * in_window[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = np.where(in_window[:, None] > 0, cdf[:, :-1] / in_window[:, None], 1.0).T
    k = p.amount_ratio.shape[1]
    groups = {
        dim: (codes.deal_codes[order].astype(np.int64), codes.new_codes.astype(np.int64), len(codes.labels))
        for dim, codes in p.groups.items()
    }
    weight = np.asarray(p.new_size_weight, dtype=np.float64)
    new_cdf = np.cumsum(weight) / weight.sum() if len(weight) and weight.sum() > 0 else np.zeros(0)
    return _Prepared(
        thresholds=np.ascontiguousarray(thresholds),
        shares=np.ascontiguousarray(shares),
        amount=p.amount[order].astype(np.float64),
        ratio_flat=p.amount_ratio.ravel().astype(np.float64),
        ratio_offset=p.amount_row[order].astype(np.int64) * k,
        ratio_k=k,
        groups=groups,
        new_expected=np.asarray(p.new_expected, dtype=np.float64),
        new_gamma_shape=float(p.new_gamma_shape),
        new_sizes=np.asarray(p.new_sizes, dtype=np.float64),
        new_cdf=new_cdf,
    )


def _slices(shock_group_sorted: np.ndarray) -> list[tuple[int, int, int]]:
    """(start, stop, group) runs of at most SLICE_DEALS deals, never across two groups."""
    out = []
    n = len(shock_group_sorted)
    start = 0
    while start < n:
        group = int(shock_group_sorted[start])
        end = int(np.searchsorted(shock_group_sorted, group, side="right"))
        for a in range(start, end, SLICE_DEALS):
            out.append((a, min(a + SLICE_DEALS, end), group))
        start = end
    return out


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a counter-based source of 64 random bits."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def simulate(
    portfolios: Sequence[Portfolio],
    *,
    trials: int,
    seed: int,
    stream: int = 0,
    per_deal: bool = True,
) -> list[SimulationOutput]:
    """Simulate portfolios of the same deals on common random numbers.

    Parameters
    ----------
    portfolios : sequence of Portfolio
        The baseline and any scenarios; they must share deals (in the same order), periods and
        shock groups.
    trials : int
    seed : int
    stream : int
        Separates independent problems under one seed (e.g. one stream per company).
    per_deal : bool
        Also count each deal's wins and value per period.

    Returns
    -------
    list of SimulationOutput
        One per portfolio, in order.
    """
    portfolios = list(portfolios)
    _validate(portfolios, trials, seed)
    first = portfolios[0]
    n, periods = first.deals, first.periods
    # Deals run sorted by shock group (each group one slice); order[i] is the caller's index of
    # sorted deal i, for the per-deal counts.
    order = np.argsort(first.shock_group, kind="stable")
    prepared = [_prepare(p, order) for p in portfolios]
    slices = _slices(first.shock_group[order])
    n_groups = len(first.shock_sd)

    outputs = []
    for prep in prepared:
        outputs.append(
            SimulationOutput(
                trials=trials,
                open_totals=np.zeros((trials, periods)),
                new_totals=np.zeros((trials, periods)),
                group_totals={dim: np.zeros((trials, periods, g)) for dim, (_, _, g) in prep.groups.items()},
                deal_wins=np.zeros(n * periods, np.int64) if per_deal else None,
                deal_value=np.zeros(n * periods) if per_deal else None,
            )
        )
    width = min(SLICE_DEALS, max(n, 1))
    u_buffer = np.empty(BLOCK_TRIALS * width)
    hit_buffer = np.empty(BLOCK_TRIALS * width, dtype=bool)

    for block, t0 in enumerate(range(0, trials, BLOCK_TRIALS)):
        m = min(BLOCK_TRIALS, trials - t0)
        cycles = m // LEVELS
        children = np.random.SeedSequence(seed, spawn_key=(stream, block)).spawn(3 + len(slices))
        params_rng = np.random.Generator(np.random.PCG64(children[0]))
        level_of = np.stack([params_rng.permutation(LEVELS) for _ in range(n_groups)])  # (groups, LEVELS)
        new_rng = np.random.Generator(np.random.PCG64(children[1]))
        u_gamma = new_rng.random(BLOCK_TRIALS)[:m]
        u_counts = new_rng.random((BLOCK_TRIALS, periods))[:m]
        salt = children[2].generate_state(1, np.uint64)[0]

        for (a, b, group), child in zip(slices, children[3:]):
            ns = b - a
            u = u_buffer[: m * ns].reshape(m, ns)
            np.random.Generator(np.random.PCG64(child)).random(out=u)
            hit = hit_buffer[: m * ns].reshape(m, ns)
            levels = level_of[group]
            u_flat = u.ravel()
            for prep, out in zip(prepared, outputs):
                table = prep.thresholds[levels, a:b]  # (LEVELS, ns): row r % LEVELS of the block
                if cycles:
                    np.less(u[: cycles * LEVELS].reshape(cycles, LEVELS, ns), table[None],
                            out=hit[: cycles * LEVELS].reshape(cycles, LEVELS, ns))
                for row in range(cycles * LEVELS, m):
                    np.less(u[row], table[row % LEVELS], out=hit[row])
                flat = np.flatnonzero(hit)
                if len(flat) == 0:
                    continue
                row, i_local = np.divmod(flat, ns)
                i_deal = i_local + a
                u_hit = u_flat[flat]
                if periods > 1:
                    w = u_hit / table.ravel()[(row & (LEVELS - 1)) * ns + i_local]
                    period = (w >= prep.shares[0][i_deal]).astype(np.int64)
                    for k in range(1, periods - 1):
                        period += w >= prep.shares[k][i_deal]
                else:
                    period = np.zeros(len(flat), np.int64)
                quantile = (u_hit * 4294967296.0).astype(np.int64) & (prep.ratio_k - 1)
                booked = prep.amount[i_deal] * prep.ratio_flat[prep.ratio_offset[i_deal] + quantile]
                cell = row * periods + period
                out.open_totals[t0:t0 + m] += np.bincount(cell, weights=booked, minlength=m * periods).reshape(m, periods)
                for dim, (deal_codes, _, g) in prep.groups.items():
                    out.group_totals[dim][t0:t0 + m] += np.bincount(
                        cell * g + deal_codes[i_deal], weights=booked, minlength=m * periods * g
                    ).reshape(m, periods, g)
                if per_deal:
                    where = order[i_deal] * periods + period
                    out.deal_wins += np.bincount(where, minlength=n * periods)
                    out.deal_value += np.bincount(where, weights=booked, minlength=n * periods)

        for prep, out in zip(prepared, outputs):
            _new_pipeline(prep, out, t0, m, periods, u_gamma, u_counts, salt)

    for out in outputs:
        if per_deal:
            out.deal_wins = out.deal_wins.reshape(n, periods)
            out.deal_value = out.deal_value.reshape(n, periods)
    return outputs


def _new_pipeline(prep: _Prepared, out: SimulationOutput, t0: int, m: int, periods: int,
                  u_gamma: np.ndarray, u_counts: np.ndarray, salt: np.uint64) -> None:
    if not prep.new_expected.any() or len(prep.new_cdf) == 0:
        return
    if np.isfinite(prep.new_gamma_shape):
        k = prep.new_gamma_shape
        multiplier = gammaincinv(k, np.clip(u_gamma, 1e-12, 1 - 1e-12)) / k
    else:
        multiplier = np.ones(m)
    mean = prep.new_expected[None, :] * multiplier[:, None]
    counts = np.where(mean > 0, np.maximum(poisson.ppf(u_counts, mean), 0), 0).astype(np.int64)
    total = int(counts.sum())
    if total == 0:
        return
    cell = np.repeat(np.arange(m * periods), counts.ravel())
    draw = np.arange(total) - np.repeat(np.cumsum(counts.ravel()) - counts.ravel(), counts.ravel())
    trial = t0 + cell // periods
    key = ((trial.astype(np.uint64) * np.uint64(periods) + (cell % periods).astype(np.uint64)) << np.uint64(24)) \
        + draw.astype(np.uint64)
    bits = _mix64(key * _GOLDEN + salt)
    uniform = (bits >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)
    pick = np.minimum(np.searchsorted(prep.new_cdf, uniform, side="right"), len(prep.new_cdf) - 1)
    booked = prep.new_sizes[pick]
    out.new_totals[t0:t0 + m] += np.bincount(cell, weights=booked, minlength=m * periods).reshape(m, periods)
    for dim, (_, new_codes, g) in prep.groups.items():
        out.group_totals[dim][t0:t0 + m] += np.bincount(
            cell * g + new_codes[pick], weights=booked, minlength=m * periods * g
        ).reshape(m, periods, g)
