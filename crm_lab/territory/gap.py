"""The Generalized Assignment Problem: the core of territory planning once rep bases are fixed.

Each account goes to exactly one rep; each rep's workload (which may differ by rep) stays within
its capacity; the total cost is minimised (or the total value maximised). The answer is
re-checked independently of the solver before it is returned.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pulp

from crm_lab.errors import InvalidArgument
from crm_lab.territory.pairs import add_rows, pair_variables
from crm_lab.territory.solve import OPTIMALITY_GAP, SolveOutcome, SolverOptions, relative_gap, solve

# Slack allowed when re-checking a capacity: the solver's feasibility tolerance, relative.
CHECK_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Assignment:
    """A solved assignment.

    Attributes
    ----------
    rep_of_account : ndarray of int
        The rep (column) index of each account (row); -1 when there is no plan.
    status : {"optimal", "feasible", "infeasible", "time_limit", "error"}
        ``optimal`` only when the solver's bound proves it (see :mod:`crm_lab.territory.solve`);
        ``error`` also covers a plan that failed the independent re-check.
    objective : float or None
        Recomputed from the data for ``rep_of_account``, not taken from the solver.
    bound : float or None
        The solver's best bound (a lower bound when minimising, upper when maximising).
    gap : float or None
        ``|objective - bound| / |objective|``.
    problems : list of str
        What the independent re-check found wrong (empty for a good plan).
    """

    rep_of_account: np.ndarray
    status: str
    objective: float | None
    bound: float | None
    gap: float | None
    solver: str
    solver_status: str
    seconds: float
    message: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def has_plan(self) -> bool:
        return self.status in ("optimal", "feasible")


def assign(
    cost,
    workload,
    capacity,
    *,
    sense: str = "min",
    eligible=None,
    warm_start=None,
    solver: str = "auto",
    time_limit: float | None = 60.0,
    gap_rel: float | None = None,
    threads: int | None = None,
    seed: int = 0,
    msg: bool = False,
) -> Assignment:
    """Assign every account to exactly one rep within the reps' capacities, at least cost (or
    most value).

    Parameters
    ----------
    cost : array (accounts, reps)
        Cost (``sense="min"``) or value (``sense="max"``) of giving each account to each rep.
    workload : array (accounts, reps) or (accounts,)
        Capacity an account uses at each rep; a vector when it is the same for every rep.
    capacity : array (reps,)
        Each rep's capacity, in the workload's unit.
    sense : {"min", "max"}
    eligible : bool array (accounts, reps), optional
        Pairs that may be used (default all). Variables exist only for eligible pairs whose
        workload fits the rep's capacity.
    warm_start : int array (accounts,), optional
        A starting plan (rep index per account, -1 for none), e.g. the current one.
    solver, time_limit, gap_rel, threads, seed, msg
        See :class:`crm_lab.territory.solve.SolverOptions`.

    Returns
    -------
    Assignment

    Examples
    --------
    >>> cost = [[1, 5], [4, 2], [3, 3]]
    >>> result = assign(cost, workload=[2, 2, 1], capacity=[3, 3])
    >>> result.status, result.rep_of_account.tolist(), result.objective
    ('optimal', [0, 1, 0], 6.0)
    >>> assign(cost, workload=[2, 2, 2], capacity=[3, 3]).status
    'infeasible'
    """
    if sense not in ("min", "max"):
        raise InvalidArgument(f"sense must be 'min' or 'max'; got {sense!r}")
    options = SolverOptions(solver=solver, time_limit=time_limit, gap_rel=gap_rel, threads=threads, seed=seed, msg=msg)
    cost, workload, capacity, eligible = _validated(cost, workload, capacity, eligible)
    n_accounts, n_reps = cost.shape
    usable = eligible & (workload <= capacity[None, :] * (1 + CHECK_TOLERANCE))

    prob = pulp.LpProblem("gap", pulp.LpMaximize if sense == "max" else pulp.LpMinimize)
    pairs = pair_variables(prob, usable)
    prob.setObjective(pairs.total(cost[pairs.account, pairs.rep]))
    add_rows(prob, pairs.per_account(1.0), pulp.LpConstraintEQ, 1.0, "assign")
    add_rows(prob, pairs.per_rep(workload[pairs.account, pairs.rep]), pulp.LpConstraintLE, capacity, "capacity")

    empty = np.flatnonzero(~usable.any(axis=1))
    if len(empty):
        # No variable can assign these accounts: infeasible before any solver runs.
        names = ", ".join(str(a) for a in empty[:5].tolist())
        return Assignment(
            np.full(n_accounts, -1, dtype=np.int64), "infeasible", None, None, None, "none", "presolve", 0.0,
            f"account(s) {names} fit no eligible rep's capacity",
        )
    start = pairs.start(np.asarray(warm_start)) if warm_start is not None else None
    outcome = solve(prob, options, start)
    return _checked(outcome, pairs.assignment(), cost, workload, capacity, eligible, sense)


def _validated(cost, workload, capacity, eligible):
    cost = np.asarray(cost, dtype=float)
    if cost.ndim != 2:
        raise InvalidArgument(f"cost must be a 2-d accounts x reps array; got shape {cost.shape}")
    n_accounts, n_reps = cost.shape
    workload = np.asarray(workload, dtype=float)
    if workload.ndim == 1:
        if workload.shape != (n_accounts,):
            raise InvalidArgument(f"workload must have one value per account ({n_accounts}); got shape {workload.shape}")
        workload = np.repeat(workload[:, None], n_reps, axis=1)
    if workload.shape != cost.shape:
        raise InvalidArgument(f"workload must have the shape of cost {cost.shape}; got {workload.shape}")
    capacity = np.asarray(capacity, dtype=float)
    if capacity.shape != (n_reps,):
        raise InvalidArgument(f"capacity must have one value per rep ({n_reps}); got shape {capacity.shape}")
    eligible = np.ones(cost.shape, dtype=bool) if eligible is None else np.asarray(eligible, dtype=bool)
    if eligible.shape != cost.shape:
        raise InvalidArgument(f"eligible must have the shape of cost {cost.shape}; got {eligible.shape}")
    for name, values in (("cost", cost[eligible]), ("workload", workload[eligible])):
        bad = values[~np.isfinite(values)]
        if len(bad):
            raise InvalidArgument(f"{name} must be finite on eligible pairs; got {float(bad[0])!r}")
    if (workload[eligible] < 0).any():
        raise InvalidArgument(f"workload must be >= 0; got {float(workload[eligible].min())!r}")
    if np.isnan(capacity).any():
        raise InvalidArgument("capacity must not be NaN")
    return cost, workload, capacity, eligible


def check_assignment(rep_of_account, cost, workload, capacity, eligible) -> tuple[float, list[str]]:
    """Re-check a plan from the data alone: every account assigned exactly once to an eligible
    rep, every capacity held. Returns (objective recomputed from ``cost``, problems found)."""
    rep_of_account = np.asarray(rep_of_account)
    n_accounts, n_reps = cost.shape
    problems = []
    unassigned = np.flatnonzero((rep_of_account < 0) | (rep_of_account >= n_reps))
    if len(unassigned):
        problems.append(f"{len(unassigned)} account(s) not assigned exactly once, e.g. account {unassigned[0]}")
    rows = np.flatnonzero((rep_of_account >= 0) & (rep_of_account < n_reps))
    cols = rep_of_account[rows]
    ineligible = rows[~eligible[rows, cols]]
    if len(ineligible):
        problems.append(f"{len(ineligible)} account(s) given to a rep they may not have, e.g. account {ineligible[0]}")
    load = np.bincount(cols, weights=workload[rows, cols], minlength=n_reps)
    over = np.flatnonzero(load > capacity + CHECK_TOLERANCE * np.maximum(np.abs(capacity), 1.0))
    for rep in over[:5].tolist():
        problems.append(f"rep {rep} carries {load[rep]:g}, above its capacity {capacity[rep]:g}")
    objective = float(cost[rows, cols].sum())
    return objective, problems


def _checked(outcome: SolveOutcome, rep_of_account, cost, workload, capacity, eligible, sense) -> Assignment:
    if not outcome.has_solution:
        empty = np.full(cost.shape[0], -1, dtype=np.int64)
        return Assignment(empty, outcome.status, None, outcome.bound, None, outcome.solver, outcome.solver_status,
                          outcome.seconds, outcome.message)
    objective, problems = check_assignment(rep_of_account, cost, workload, capacity, eligible)
    gap = relative_gap(objective, outcome.bound, sense)
    status, message = outcome.status, outcome.message
    if problems:
        status, message = "error", "the solver's plan failed the independent check: " + "; ".join(problems)
    elif status == "optimal" and gap is not None and gap > OPTIMALITY_GAP:
        # The recomputed objective is the one reported, so its gap decides.
        status, message = "feasible", f"relative gap {gap:.4%} after recomputing the objective"
    return Assignment(rep_of_account, status, objective, outcome.bound, gap, outcome.solver, outcome.solver_status,
                      outcome.seconds, message, problems)
