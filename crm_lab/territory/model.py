"""The territory model: the assignment core (each account to one rep, capacities) plus balance
bands for workload and potential, move budgets, locks, forbidden pairs and a radius, with
compactness and disruption as the objective.

    minimise  distance_weight * sum km(account, rep) + move_weight * accounts moved

When the rules cannot all hold, :func:`plan_territories` says why (:mod:`.diagnose`) and solves
the soft model: bands, capacities and budgets may break, the least total relative violation
first, then the same objective, and every violation is reported by the independent check.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Collection
from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl
import pulp

from crm_lab.errors import InvalidArgument
from crm_lab.territory.advice import render
from crm_lab.territory.check import Violation, check_plan, plan_objective
from crm_lab.territory.data import TerritoryData
from crm_lab.territory.diagnose import diagnose
from crm_lab.territory.metrics import account_rows, plan_summary, rep_loads
from crm_lab.territory.pairs import PairVariables, add_rows, pair_variables
from crm_lab.territory.rules import Rules, TerritorySettings, derive_rules
from crm_lab.territory.solve import OPTIMALITY_GAP, SolveOutcome, SolverOptions, highs_available, relative_gap, solve

# Models with more eligible pairs than this are solved in two rounds (see _solve).
LARGE_MODEL_PAIRS = 20_000
# Models with more pairs than this (and up to LARGE_MODEL_PAIRS) first get a plan from LP rounding
# improved by re-optimising a few neighbouring reps at a time (see _improve), within this share of
# the time limit; the full model then starts from it and only has to confirm the gap.
MEDIUM_MODEL_PAIRS = 600
# Above this the neighbourhoods grow slow and HiGHS alone did better on the demo's c3 (15,006 pairs).
IMPROVE_MAX_PAIRS = 10_000
IMPROVE_SHARE = 0.5
NEIGHBOUR_REPS = (8, 12, 16)
IMPROVE_PASSES = 2
NEIGHBOURHOOD_SECONDS = 0.5
CHECK_SECONDS = 3.0
NEIGHBOURHOOD_GAP = 1e-3
IMPROVE_STOP = 2e-3
# The command line's and plan_territories' default relative gap: the full model stops once its
# bound shows the plan within 1% of the best possible (status `feasible` with the gap).
PLAN_GAP = 0.01
NEARBY_REPS = 5
FIRST_ROUND_GAP = 0.005
UNFREEZE_PER_REP = 5
# The rule families a soft plan may break.
SOFT_RULES = ("bands", "capacity", "budgets")
# Soft model: one unit of total relative violation costs this many times the worst plan's cost.
SOFT_WEIGHT = 10.0
NO_SINGLE_CAUSE_TIME = (
    "no single rule is impossible on its own, but no plan keeping them all was found within the time limit{limit}: "
    "a longer time limit may find one; the soft plan's violations show which rules are tightest"
)
OVERSIZED_SOFT = (
    "the soft plan raises the upper end of the potential band to target + {needed:.1%}, the least that fits the "
    "accounts too big for it, and keeps every other rule"
)
NO_SINGLE_CAUSE = (
    "no single rule is impossible on its own; together they leave no plan (the soft plan shows the least "
    "they must give)"
)


@dataclass
class TerritoryPlan:
    """A territory plan and how it was found.

    Attributes
    ----------
    rep_of_account : ndarray of int
        Rep index (into ``data.rep_ids``) per account; -1 when there is no plan.
    status : {"optimal", "feasible", "infeasible", "time_limit", "error"}
        What the solver established for the rules as given (the hard model); ``time_limit``:
        the time limit passed before any plan was found.
    kind : {"hard", "soft", "none"}
        ``soft`` when the hard model was infeasible and this is the soft plan (see ``violations``).
    solve_status : str
        Status of the solve that produced ``rep_of_account`` (the soft one for a soft plan).
    objective, bound, gap
        Objective recomputed from the data, the solver's lower bound, and their relative gap.
    violations : list of Violation
        Rules the plan breaks, from the independent check: empty for a hard plan.
    diagnosis : list of str
        Why the hard model is infeasible, in a user's terms.
    """

    data: TerritoryData
    settings: TerritorySettings
    rules: Rules = field(repr=False)
    rep_of_account: np.ndarray
    status: str
    kind: str
    solve_status: str
    objective: float | None
    bound: float | None
    gap: float | None
    solver: str
    solver_status: str
    seconds: float
    message: str = ""
    violations: list[Violation] = field(default_factory=list)
    diagnosis: list[str] = field(default_factory=list)
    plan_id: str | None = None

    @property
    def has_plan(self) -> bool:
        return self.kind != "none"

    def assignments(self) -> pl.DataFrame:
        """One row per account (see :func:`crm_lab.territory.metrics.account_rows`)."""
        return account_rows(self.data, self.rules, self.rep_of_account)

    def moves(self) -> pl.DataFrame:
        """The accounts that change hands: moved or reassigned."""
        return self.assignments().filter(pl.col("moved") | pl.col("reassigned"))

    def rep_loads(self) -> pl.DataFrame:
        """One row per rep with loads against bands (see :func:`crm_lab.territory.metrics.rep_loads`)."""
        return rep_loads(self.data, self.rules, self.rep_of_account)

    def summary(self) -> dict:
        """Status, objective and the headline figures of the plan."""
        head = {
            "status": self.status, "kind": self.kind, "solve_status": self.solve_status, "objective": self.objective,
            "bound": self.bound, "gap": self.gap, "violations": len(self.violations),
        }
        if not self.has_plan:
            return head
        return head | plan_summary(self.data, self.rules, self.rep_of_account)

    def describe(self, surface: str = "cli") -> str:
        """A few lines for a console; advice in the diagnosis names settings in the words of
        ``surface`` (``cli`` flags, ``notebook`` parameters, ``panel`` controls: see
        :mod:`crm_lab.territory.advice`)."""
        who = f"plan {self.plan_id}" if self.plan_id else "plan"
        company = f" for {self.data.company_id}" if self.data.company_id else ""
        lines = [f"territory {who}{company}: {self.status}"
                 + (f" (gap {self.gap:.3%})" if self.gap is not None and self.status == "feasible" else "")
                 + f", {self.data.n_accounts} accounts, {self.data.n_reps} reps, {self.solver} {self.seconds:.1f} s"]
        if self.message:
            lines.append(f"  {self.message}")
        for reason in self.diagnosis:
            lines.append(f"  why: {render(reason, surface)}")
        if self.kind == "soft":
            lines.append(f"  soft plan ({self.solve_status}) breaks {len(self.violations)} rule(s):")
            lines += [f"    - {v.text}" for v in self.violations]
        for note in self.rules.notes:
            lines.append(f"  note: {note}")
        if self.has_plan:
            lines.append("  " + headline(plan_summary(self.data, self.rules, self.rep_of_account)))
        return "\n".join(lines)


def headline(s: dict) -> str:
    """The plan's figures in a line; a figure whose input is missing is named as not measured,
    never shown as 0."""
    potential = "" if s["moved_potential"] is None else f" (potential {s['moved_potential']:,.0f})"
    parts = [f"moved {s['moved']} account(s){potential}, reassigned {s['reassigned']}"]
    unknown = []
    if s["mean_distance_km"] is None:
        unknown.append("distance (no locations)")
    else:
        parts.append(f"mean distance {s['mean_distance_km']:,.1f} km")
    within = []
    for name, field_name in (("workload", "workload_hours"), ("potential", "potential")):
        value = s[f"max_{name}_deviation"]
        if value is None:
            unknown.append(f"{name} (no {field_name})")
        else:
            within.append(f"{name} within {value:.1%}")
    if within:
        parts.append(" and ".join(within) + " of target")
    if unknown:
        parts.append("not measured: " + ", ".join(unknown))
    return ", ".join(parts)


def plan_territories(
    data: TerritoryData,
    settings: TerritorySettings | None = None,
    solver: SolverOptions | None = None,
    *,
    warm_start: bool = True,
    soft_relaxes: Collection[str] = SOFT_RULES,
) -> TerritoryPlan:
    """Assign every account to a rep under the territory rules.

    Parameters
    ----------
    data : TerritoryData
    settings : TerritorySettings, optional
        Bands, weights, budgets, locks, forbidden pairs, radius (defaults: 10% bands).
    solver : SolverOptions, optional
        Solver, time limit (per solve: a soft plan takes one more), gap, threads, seed. The
        default stops at a proven relative gap of :data:`PLAN_GAP` (1%), reported as ``feasible``
        with the gap; ``SolverOptions(gap_rel=None)`` tries to prove optimality.
    warm_start : bool
        Start the solver from the current assignment (ignored by it when that breaks a rule).
    soft_relaxes : collection of {"bands", "capacity", "budgets"}
        Which rules the soft plan may break (locks, forbidden pairs and the radius only give
        way for accounts they leave with no rep at all).

    Returns
    -------
    TerritoryPlan
        Its status is honest: ``optimal`` only with the solver's proof; a returned plan has
        passed the independent check of every rule (or is soft, with each violation listed).

    Examples
    --------
    >>> data = TerritoryData(
    ...     account_ids=["a1", "a2", "a3", "a4"], account_lat=[0, 0, 1, 1], account_lon=[0, 0.1, 1, 1.1],
    ...     workload=[100.0] * 4, potential=[10.0] * 4, current_rep=["r1", "r1", "r1", "r1"],
    ...     rep_ids=["r1", "r2"], rep_home_lat=[0, 1], rep_home_lon=[0, 1], capacity=[400.0, 400.0],
    ...     fte=[1.0, 1.0])
    >>> plan = plan_territories(data, TerritorySettings(tolerance=0.0))
    >>> plan.status, plan.assignments()["rep_id"].to_list()
    ('optimal', ['r1', 'r1', 'r2', 'r2'])
    >>> plan_territories(data, TerritorySettings(tolerance=0.0, max_moves=1)).diagnosis
    ['balancing needs at least 2 moves, more than the budget of 1: r1 is 200 h over its workload band; r2 is 200 h under its workload band']
    """
    settings = settings or TerritorySettings()
    options = solver or SolverOptions(gap_rel=PLAN_GAP)
    relax = frozenset(soft_relaxes)
    if not relax <= set(SOFT_RULES) or not relax:
        raise InvalidArgument(f"soft_relaxes must be a non-empty subset of {', '.join(SOFT_RULES)}; got {sorted(relax)}")
    rules = derive_rules(data, settings)
    start = rules.current if warm_start else None
    outcome, hard_plan = _solve(rules, settings, options, relax=frozenset(), start=start)
    if outcome.has_solution:
        return _finish(data, settings, rules, outcome, hard_plan, kind="hard")
    if outcome.status not in ("infeasible", "time_limit"):
        return _no_plan(data, settings, rules, outcome)
    diagnosis = diagnose(data, settings, rules)
    if not diagnosis and outcome.status == "infeasible":
        diagnosis = [NO_SINGLE_CAUSE]
    elif not diagnosis:
        limit = "" if options.time_limit is None else f" of {options.time_limit:g} s"
        diagnosis = [NO_SINGLE_CAUSE_TIME.format(limit=limit)]
    if not settings.soft_fallback:
        return _no_plan(data, settings, rules, outcome, diagnosis)
    widened = _widened_for_oversized(data, settings, rules) if "bands" in relax else None
    if widened is not None:
        # Accounts larger than every band they may go to: the closest plan widens the upper end
        # of the potential band just enough for them and keeps every other rule, a hard model
        # (fast, and moving no more than the rules ask); only the widened ends can break.
        wide_rules, needed = widened
        wide_outcome, wide_plan = _solve(wide_rules, settings, options, relax=frozenset(), start=start)
        if wide_plan is not None:
            plan = _finish(data, settings, rules, wide_outcome, wide_plan, kind="soft")
            plan.status, plan.diagnosis = outcome.status, diagnosis
            plan.message = "; ".join(m for m in (outcome.message, OVERSIZED_SOFT.format(needed=needed)) if m)
            plan.seconds += outcome.seconds
            return plan
    soft_outcome, soft_plan = _solve(rules, settings, options, relax=relax, start=start)
    if not soft_outcome.has_solution:
        return _no_plan(data, settings, rules, outcome, diagnosis, extra=f"soft model: {soft_outcome.message}")
    plan = _finish(data, settings, rules, soft_outcome, soft_plan, kind="soft")
    plan.status, plan.diagnosis, plan.message = outcome.status, diagnosis, outcome.message
    plan.seconds += outcome.seconds
    return plan


def _widened_for_oversized(data: TerritoryData, settings: TerritorySettings, rules: Rules):
    """``(rules, tolerance)`` with the upper end of the potential band raised to the least
    tolerance that fits every account too big for all the reps it may go to, or None when no
    account is too big only for its potential."""
    band = rules.potential_band
    if not band.active:
        return None
    lonely = np.flatnonzero(~rules.eligible.any(axis=1) & rules.allowed.any(axis=1))
    needed = 0.0
    for i in lonely.tolist():
        allowed = np.flatnonzero(rules.allowed[i])
        room = np.minimum(rules.capacity[allowed], rules.workload_band.upper[allowed])
        target = band.target[allowed].max()
        if (rules.workload[i, allowed] > room * (1 + 1e-6)).all() or target <= 0:
            return None  # too big for workload too: widening potential would not place it
        needed = max(needed, math.ceil(1000 * (rules.potential[i] / target - 1)) / 1000)
    if needed <= settings.effective_potential_tolerance:
        return None
    wide = derive_rules(data, replace(settings, potential_tolerance=needed))
    return replace(rules, potential_band=replace(band, upper=wide.potential_band.upper), fits=wide.fits), needed


def _no_plan(data, settings, rules, outcome: SolveOutcome, diagnosis=(), extra: str = "") -> TerritoryPlan:
    message = "; ".join(m for m in (outcome.message, extra) if m)
    return TerritoryPlan(
        data, settings, rules, np.full(data.n_accounts, -1, dtype=np.int64), outcome.status, "none", outcome.status,
        None, None, None, outcome.solver, outcome.solver_status, outcome.seconds, message, [], list(diagnosis),
    )


def _finish(data, settings, rules, outcome: SolveOutcome, rep_of_account, kind: str) -> TerritoryPlan:
    """Check the plan independently and recompute its objective. A soft plan's bound and gap
    belong to the penalised soft objective, not to distance and moves, so none are reported."""
    violations = check_plan(data, settings, rules, rep_of_account)
    objective = plan_objective(rules, rep_of_account)
    status, message = outcome.status, outcome.message
    bound = outcome.bound if kind == "hard" else None
    gap = relative_gap(objective, bound, "min")
    if kind == "hard" and violations:
        status = "error"
        message = "the solver's plan failed the independent check: " + "; ".join(v.text for v in violations[:5])
    elif kind == "hard" and status == "optimal" and gap is not None and gap > OPTIMALITY_GAP:
        status, message = "feasible", f"relative gap {gap:.4%} after recomputing the objective"
    return TerritoryPlan(
        data, settings, rules, rep_of_account, status, kind, status, objective, bound, gap,
        outcome.solver, outcome.solver_status, outcome.seconds, message, violations,
    )


# ------------------------------------------------------------------------------- the MILP


@dataclass
class _Model:
    prob: pulp.LpProblem
    pairs: PairVariables
    penalties: list = field(default_factory=list)  # (slack variable, weight) of the soft model


def _build(rules: Rules, settings: TerritorySettings, eligible: np.ndarray, relax: frozenset) -> _Model:
    """The MILP. Every limit row is divided by the figure it is measured against (a rep's
    target, capacity, a budget), so coefficients are near 1 whatever the currency or unit
    (unscaled potential rows reach 1e6 and slow HiGHS down), and a soft row's slack is its
    relative violation."""
    prob = pulp.LpProblem("territory", pulp.LpMinimize)
    pairs = pair_variables(prob, eligible)
    add_rows(prob, pairs.per_account(1.0), pulp.LpConstraintEQ, 1.0, "assign")
    penalties: list = []

    def per_rep(per_pair, scale):
        return pairs.per_rep(per_pair / np.maximum(scale, 1e-9)[pairs.rep])

    def add_limit(expressions, scale, sense, rhs, name, family):
        """Rows ``expression[j] (<= or >=) rhs[j] / scale[j]``, with a slack when the rule's
        family may break."""
        rhs = np.asarray(rhs, dtype=float) / np.maximum(np.asarray(scale, dtype=float), 1e-9)
        if family not in relax:
            add_rows(prob, expressions, sense, rhs, name)
            return
        for j, (expression, value) in enumerate(zip(expressions, rhs.tolist())):
            if not np.isfinite(value) or (sense == pulp.LpConstraintGE and value <= 0):
                continue
            slack = prob.add_variable(f"{name}_slack_{j:05d}", 0)
            row = expression.copy()
            row.addterm(slack, -1.0 if sense == pulp.LpConstraintLE else 1.0)
            prob.addConstraint(pulp.LpConstraint(row, sense, f"{name}_{j:05d}", value))
            penalties.append((slack, 1.0))

    workload = rules.workload[pairs.account, pairs.rep]
    band = rules.workload_band
    # Upper and lower rows of a band share one expression (PuLP keeps the rhs on the row).
    load = per_rep(workload, band.target)
    if relax:
        add_limit(per_rep(workload, rules.capacity), rules.capacity, pulp.LpConstraintLE, rules.capacity, "capacity",
                  "capacity")
        add_limit(load, band.target, pulp.LpConstraintLE, band.upper, "workload_upper", "bands")
    else:  # one row for both upper limits of the same sum
        add_limit(load, band.target, pulp.LpConstraintLE, np.minimum(band.upper, rules.capacity), "workload_upper",
                  "bands")
    add_limit(load, band.target, pulp.LpConstraintGE, band.lower, "workload_lower", "bands")
    band = rules.potential_band
    if band.active:
        potential = per_rep(rules.potential[pairs.account], band.target)
        add_limit(potential, band.target, pulp.LpConstraintLE, band.upper, "potential_upper", "bands")
        add_limit(potential, band.target, pulp.LpConstraintGE, band.lower, "potential_lower", "bands")
    moved = rules.moved[pairs.account, pairs.rep]
    if settings.max_moves is not None:
        scale = max(settings.max_moves, 1)
        add_limit([pairs.total(np.full(len(pairs), 1.0 / scale), mask=moved)], [scale], pulp.LpConstraintLE,
                  [settings.max_moves], "max_moves", "budgets")
    if settings.max_moved_potential is not None:
        scale = max(settings.max_moved_potential, float(rules.potential.mean()) if len(rules.potential) else 1.0)
        add_limit([pairs.total(rules.potential[pairs.account] / scale, mask=moved)], [scale], pulp.LpConstraintLE,
                  [settings.max_moved_potential], "max_moved_potential", "budgets")
    return _Model(prob, pairs, penalties)


def _solve(rules: Rules, settings: TerritorySettings, options: SolverOptions, *, relax: frozenset, start):
    """Build and solve the hard or soft model; returns (outcome, rep index per account).

    A hard model with more than :data:`MEDIUM_MODEL_PAIRS` eligible pairs (up to
    :data:`IMPROVE_MAX_PAIRS`) starts from :func:`_improve`'s plan, found within
    :data:`IMPROVE_SHARE` of the time limit.

    A large model (more than :data:`LARGE_MODEL_PAIRS` eligible pairs) is solved in two rounds:
    first restricted to nearby pairs (:func:`_nearby_pairs`), with half the time limit, then
    the full model starting from that plan. HiGHS finds good plans slowly on large models (its
    root cut loop takes most of the time), while the restricted model is small and a good
    start lets the full model stop as soon as its bound confirms the gap. Only the full
    model's bound decides the status.
    """
    eligible = rules.soft_eligible() if relax else rules.eligible
    nobody = np.flatnonzero(~eligible.any(axis=1))
    if len(nobody):
        # No variable can assign these accounts: infeasible without calling a solver.
        return SolveOutcome("infeasible", "none", "presolve", False, None, None, None, 0.0,
                            f"{len(nobody)} account(s) cannot go to any rep under these rules"), None
    first_seconds = 0.0
    user_limit = options.time_limit
    if (not relax and MEDIUM_MODEL_PAIRS < eligible.sum() <= IMPROVE_MAX_PAIRS and options.solver != "cbc"
            and highs_available()):
        started = time.perf_counter()
        budget = None if options.time_limit is None else options.time_limit * IMPROVE_SHARE
        improved, done = _improve(rules, settings, options, eligible, relax, start, budget)
        first_seconds = time.perf_counter() - started
        if done is not None:
            return replace(done, seconds=first_seconds), improved
        if improved is not None:
            start = improved
        if options.time_limit is not None:
            options = replace(options, time_limit=max(options.time_limit - first_seconds, 1.0))
    elif eligible.sum() > LARGE_MODEL_PAIRS:
        half = None if options.time_limit is None else options.time_limit / 2
        first_options = replace(options, time_limit=half, gap_rel=min(options.gap_rel or FIRST_ROUND_GAP, FIRST_ROUND_GAP))
        started = time.perf_counter()
        first_plan = _first_round(rules, settings, first_options, eligible, relax, start)
        first_seconds = time.perf_counter() - started
        if first_plan is not None:
            start = first_plan
        if options.time_limit is not None:
            options = replace(options, time_limit=max(options.time_limit - first_seconds, 1.0))
    outcome, plan = _solve_once(rules, settings, options, eligible, relax, start)
    if first_seconds and outcome.status == "time_limit" and user_limit is not None:
        # The message names the limit the user set, not what was left of it for the last round.
        outcome = replace(outcome, message=f"no feasible solution found within the time limit of {user_limit:g} s "
                                           "(infeasibility not proven)")
    return replace(outcome, seconds=outcome.seconds + first_seconds), plan


def _model(rules: Rules, settings: TerritorySettings, eligible: np.ndarray, relax: frozenset) -> _Model:
    """The MILP with its objective: cost, plus the weighted violations of a soft model."""
    model = _build(rules, settings, eligible, relax)
    cost = rules.pair_cost
    if relax:
        # Soft plan: least violation first, then fewest moves, then distance. A move costs more
        # than the largest distance any single account can save by it, so no move is made for
        # distance alone, only where it lessens a violation.
        spread = settings.distance_weight * np.ptp(np.where(eligible, rules.distance_km, 0.0), axis=1)
        cost = cost + rules.moved * (spread[:, None] + 1.0)
    objective = model.pairs.total(cost[model.pairs.account, model.pairs.rep])
    if model.penalties:
        worst_cost = float(np.max(np.where(eligible, cost, 0.0), axis=1).sum())
        weight = SOFT_WEIGHT * max(worst_cost, 1.0)
        objective = objective + pulp.LpAffineExpression((slack, weight * w) for slack, w in model.penalties)
    model.prob.setObjective(objective)
    return model


def _solve_once(rules: Rules, settings: TerritorySettings, options: SolverOptions, eligible: np.ndarray,
                relax: frozenset, start):
    model = _model(rules, settings, eligible, relax)
    warm = model.pairs.start(_complete_start(start, eligible, rules)) if start is not None else None
    outcome = solve(model.prob, options, warm)
    plan = model.pairs.assignment() if outcome.has_solution else None
    return outcome, plan


def _first_round(rules: Rules, settings: TerritorySettings, options: SolverOptions, eligible: np.ndarray,
                 relax: frozenset, start) -> np.ndarray | None:
    """A good plan to start a large model from, or None.

    On the nearby pairs (all eligible pairs when those are not much fewer), solve the LP
    relaxation, keep every account the LP assigns whole, free the fractional ones plus each
    rep's smallest accounts, and solve that small MILP (retrying with more accounts freed when
    it is infeasible). It is a restriction of the full model, so its plan is feasible there."""
    nearby = _nearby_pairs(eligible, rules)
    pairs = nearby if nearby.sum() < 0.5 * eligible.sum() else eligible
    deadline = None if options.time_limit is None else time.perf_counter() + options.time_limit
    values = _relaxation(rules, settings, options, pairs, relax)
    if values is None:  # no LP (CBC only, or the LP failed): the restricted MILP itself
        outcome, plan = _solve_once(rules, settings, options, pairs, relax, start)
        return plan
    whole = values.max(axis=1) >= 1 - 1e-6
    chosen = values.argmax(axis=1)
    size = rules.workload[np.arange(len(chosen)), chosen]
    freed_per_rep = UNFREEZE_PER_REP
    for _ in range(3):
        free = ~whole.copy()
        for j in range(pairs.shape[1]):
            mine = np.flatnonzero(whole & (chosen == j))
            free[mine[np.argsort(size[mine], kind="stable")[:freed_per_rep]]] = True
            if rules.potential_band.active:
                free[mine[np.argsort(rules.potential[mine], kind="stable")[:freed_per_rep]]] = True
        restricted = pairs & free[:, None]
        restricted[np.flatnonzero(~free), chosen[~free]] = True
        remaining = None if deadline is None else deadline - time.perf_counter()
        if remaining is not None and remaining < 1.0:
            return None
        outcome, plan = _solve_once(rules, settings, replace(options, time_limit=remaining), restricted, relax, start)
        if outcome.has_solution:
            return plan
        if outcome.status != "infeasible":
            return None
        freed_per_rep *= 4
    return None


def _relaxation(rules: Rules, settings: TerritorySettings, options: SolverOptions, eligible: np.ndarray,
                relax: frozenset) -> np.ndarray | None:
    """The LP relaxation's value of every pair (accounts x reps, 0 off ``eligible``), or None
    when it cannot be had (CBC asked for, highspy missing, no optimal LP)."""
    if options.solver == "cbc" or not highs_available():
        return None
    model = _model(rules, settings, eligible, relax)
    outcome = solve(model.prob, replace(options, gap_rel=None), relaxed=True)
    if outcome.status != "optimal":
        return None
    values = np.zeros(eligible.shape)
    values[model.pairs.account, model.pairs.rep] = np.nan_to_num(model.pairs.values())
    return values


def _nearby_pairs(eligible: np.ndarray, rules: Rules) -> np.ndarray:
    """Each account's :data:`NEARBY_REPS` cheapest reps and its current rep, and each rep's
    cheapest accounts (1.5 x an even share, so every rep can still reach its band)."""
    n, m = eligible.shape
    cost = np.where(eligible, rules.pair_cost, np.inf)
    nearby = np.zeros_like(eligible)
    k = min(NEARBY_REPS, m)
    nearest_reps = np.argpartition(cost, k - 1, axis=1)[:, :k]
    nearby[np.arange(n)[:, None], nearest_reps] = True
    share = min(n, int(np.ceil(1.5 * n / m)))
    nearest_accounts = np.argpartition(cost, share - 1, axis=0)[:share, :]
    nearby[nearest_accounts, np.arange(m)[None, :]] = True
    owned = np.flatnonzero(rules.current >= 0)
    nearby[owned, rules.current[owned]] = True
    return nearby & eligible


def _complete_start(start: np.ndarray, eligible: np.ndarray, rules: Rules) -> np.ndarray:
    """The current plan, with each account whose current rep is not eligible sent to its
    nearest eligible rep, so the solver gets a whole plan to start from (the soft model can
    always use it; the hard model uses it only when it keeps every rule)."""
    start = np.asarray(start, dtype=np.int64).copy()
    rows = np.arange(len(start))
    valid = (start >= 0) & eligible[rows, np.maximum(start, 0)]
    nearest = np.argmin(np.where(eligible, rules.distance_km, np.inf), axis=1)
    start[~valid] = nearest[~valid]
    return start


def _rounded(rules, settings, options, eligible, relax, start, remaining):
    """The LP relaxation rounded: accounts the LP assigns whole keep their rep, a small MILP
    places the rest (freeing the reps they touch when that is infeasible). (plan, objective) or
    (None, None)."""
    values = _relaxation(rules, settings, options, eligible, relax)
    if values is None:
        return None, None
    m = eligible.shape[1]
    chosen = values.argmax(axis=1)
    free = values.max(axis=1) < 1 - 1e-6
    plan, objective = None, None
    for _ in range(3):
        left = remaining()
        if left is not None and left < 0.5:
            return None, None
        restricted = eligible & free[:, None]
        restricted[np.flatnonzero(~free), chosen[~free]] = True
        outcome, found = _solve_once(rules, settings, replace(options, time_limit=left, gap_rel=FIRST_ROUND_GAP),
                                     restricted, relax, start)
        if found is not None:
            plan, objective = found, outcome.objective
            break
        touched = np.flatnonzero((values[free] > 1e-6).any(axis=0)) if free.any() else np.arange(m)
        free = free | np.isin(chosen, touched)
    return plan, objective


def _improve(rules: Rules, settings: TerritorySettings, options: SolverOptions, eligible: np.ndarray,
             relax: frozenset, start, budget: float | None):
    """``(plan, outcome)``: a good plan to start the full model from (or None), and the full
    model's outcome when a short solve of it from that plan already confirmed ``gap_rel``.

    The LP relaxation is rounded (:func:`_rounded`), then improved by
    large-neighbourhood search: for each rep and its nearest reps, their accounts are re-assigned
    among them optimally with everything else fixed, a small MILP (every rule is in it, so each
    step keeps every rule and never worsens the objective). HiGHS alone spends most of its time
    looking for such plans at the root node; with one in hand the full model only has to raise
    its bound to the gap asked for."""
    deadline = None if budget is None else time.perf_counter() + budget

    def remaining() -> float | None:
        return None if deadline is None else deadline - time.perf_counter()

    n, m = eligible.shape
    plan, objective = _rounded(rules, settings, options, eligible, relax, start, remaining)
    if plan is None:
        return None, None

    # Reps are near each other when accounts cost about the same with either (columns of the
    # cost matrix, each account's row centred): the reps between which accounts can trade.
    cost = np.where(eligible, rules.pair_cost, np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        profile = np.nan_to_num(cost - np.nanmean(cost, axis=1, keepdims=True))
    norms = (profile ** 2).sum(axis=0)
    closeness = norms[:, None] + norms[None, :] - 2 * profile.T @ profile
    order = np.argsort(closeness, axis=1, kind="stable")
    for size in NEIGHBOUR_REPS:  # larger neighbourhoods once smaller ones stop paying
        k = min(size, m)
        groups = [order[j, :k] for j in range(m)]
        seconds = NEIGHBOURHOOD_SECONDS * k / NEIGHBOUR_REPS[0]
        level_end = None if deadline is None else time.perf_counter() + (budget / len(NEIGHBOUR_REPS)) - CHECK_SECONDS
        for _ in range(IMPROVE_PASSES):
            pass_start = objective
            for group in groups:
                left = remaining()
                if left is not None and left < 0.2:
                    return plan, None
                if level_end is not None and time.perf_counter() > level_end:
                    break
                free = np.isin(plan, group)
                restricted = np.zeros_like(eligible)
                restricted[np.ix_(free, group)] = eligible[np.ix_(free, group)]
                restricted[np.flatnonzero(~free), plan[~free]] = True
                step = seconds if left is None else min(left, seconds)
                outcome, found = _solve_once(rules, settings,
                                             replace(options, time_limit=step, gap_rel=NEIGHBOURHOOD_GAP),
                                             restricted, relax, plan)
                if (found is not None and outcome.objective is not None
                        and outcome.objective < objective - 1e-6 * max(abs(objective), 1)):
                    plan, objective = found, outcome.objective
            if objective > pass_start - IMPROVE_STOP * max(abs(pass_start), 1.0):
                break  # this pass gained less than IMPROVE_STOP: try larger neighbourhoods
        if k == m:
            break
        # Does the full model already confirm the gap from this plan? (Its root bound is much
        # better than the LP's; a short solve either proves it or hands back a better plan.)
        left = remaining()
        check = CHECK_SECONDS if left is None else min(left, CHECK_SECONDS)
        if check >= 0.5 and options.gap_rel:
            outcome, found = _solve_once(rules, settings, replace(options, time_limit=check), eligible, relax, plan)
            if found is not None and outcome.gap is not None and outcome.gap <= options.gap_rel:
                return found, outcome
            if found is not None and outcome.objective is not None and outcome.objective < objective:
                plan, objective = found, outcome.objective
    return plan, None
