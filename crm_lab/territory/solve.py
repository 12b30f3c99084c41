"""Solving a PuLP model with an honest status.

PuLP reports ``Optimal`` after a time-limit stop that found a merely feasible solution (for both
HiGHS and CBC), and a solver stopped early by a loose ``gap_rel`` also says ``Optimal``. So the
status here is judged from the solver's own best bound: a plan is ``optimal`` only when its
objective is within :data:`OPTIMALITY_GAP` of the bound (HiGHS's default tolerance); any larger
gap is ``feasible``, with the gap.

HiGHS runs in-process through highspy (PuLP's ``HiGHS`` class, extended with a bulk model
transfer, a random seed and a warm start); CBC (the binary bundled with PuLP) is the fallback when
highspy is missing or fails.
"""

from __future__ import annotations

import math
import os
import re
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pulp

from crm_lab.errors import InvalidArgument

# A plan within this relative distance of the solver's bound is called optimal: HiGHS's default
# mip_rel_gap, so "optimal" means what HiGHS itself would prove, and never less.
OPTIMALITY_GAP = 1e-4
SOLVERS = ("auto", "highs", "cbc")
STATUSES = ("optimal", "feasible", "infeasible", "time_limit", "error")


@dataclass(frozen=True)
class SolverOptions:
    """How to run the MILP solver.

    Parameters
    ----------
    solver : {"auto", "highs", "cbc"}
        ``auto`` uses HiGHS in-process and falls back to CBC when highspy is missing or fails.
    time_limit : float or None
        Wall-clock seconds per solve; None for no limit.
    gap_rel : float or None
        Stop once the relative gap is at most this (None: the solver's default, 1e-4 for HiGHS).
        A stop above :data:`OPTIMALITY_GAP` is reported as ``feasible``, never ``optimal``.
    threads : int or None
        Solver threads (None: the solver's default).
    seed : int
        The solver's random seed, for repeatable runs.
    msg : bool
        Show the solver's log.
    """

    solver: str = "auto"
    time_limit: float | None = 60.0
    gap_rel: float | None = None
    threads: int | None = None
    seed: int = 0
    msg: bool = False

    def __post_init__(self) -> None:
        if self.solver not in SOLVERS:
            raise InvalidArgument(f"solver must be one of {', '.join(SOLVERS)}; got {self.solver!r}")
        if self.time_limit is not None and not (self.time_limit > 0 and math.isfinite(self.time_limit)):
            raise InvalidArgument(f"time_limit must be a positive number of seconds or None; got {self.time_limit!r}")
        if self.gap_rel is not None and not 0 <= self.gap_rel < 1:
            raise InvalidArgument(f"gap_rel must be in [0, 1); got {self.gap_rel!r}")
        if self.threads is not None and (not isinstance(self.threads, (int, np.integer)) or self.threads < 1):
            raise InvalidArgument(f"threads must be an integer >= 1 or None; got {self.threads!r}")
        if not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise InvalidArgument(f"seed must be an integer >= 0; got {self.seed!r}")


@dataclass(frozen=True)
class SolveOutcome:
    """What a solver run established, in the model's own sense (min or max).

    ``objective`` and ``bound`` are the solver's figures; callers recompute the objective from
    their data. ``gap`` is ``|objective - bound| / |objective|`` (None without a bound)."""

    status: str
    solver: str
    solver_status: str
    has_solution: bool
    objective: float | None
    bound: float | None
    gap: float | None
    seconds: float
    message: str = ""


def relative_gap(objective: float | None, bound: float | None, sense: str) -> float | None:
    """How far the objective may be from the optimum, relative to the objective (HiGHS's
    definition). 0 when they meet; None when either is unknown.

    Examples
    --------
    >>> relative_gap(105.0, 100.0, "min")
    0.047619047619047616
    >>> relative_gap(100.0, 100.0, "max")
    0.0
    """
    if objective is None or bound is None or not math.isfinite(objective) or not math.isfinite(bound):
        return None
    distance = bound - objective if sense == "max" else objective - bound
    distance = max(distance, 0.0)
    if distance == 0.0:
        return 0.0
    return distance / max(abs(objective), 1e-9)


def judge_status(has_solution: bool, proven_optimal: bool, gap: float | None) -> str:
    """``optimal`` only when the bound proves it; a solution without that proof is ``feasible``.

    When no bound is known (a CBC log without one), the solver's own proof is taken, which
    :func:`solve` only allows when no loose ``gap_rel`` was asked for."""
    if not has_solution:
        return "error"
    if gap is not None:
        return "optimal" if gap <= OPTIMALITY_GAP else "feasible"
    return "optimal" if proven_optimal else "feasible"


def solve(
    prob: pulp.LpProblem,
    options: SolverOptions,
    start: Mapping[pulp.LpVariable, float] | None = None,
    *,
    relaxed: bool = False,
) -> SolveOutcome:
    """Solve ``prob`` in place (variable values are set) and judge the outcome honestly.

    Parameters
    ----------
    prob : pulp.LpProblem
        A minimisation or maximisation MILP.
    options : SolverOptions
    start : mapping of variable to value, optional
        A warm start (e.g. the current plan). Variables not in it are left to the solver.
        A start that breaks a constraint is ignored by the solver, not an error.
    relaxed : bool
        Solve the LP relaxation (integrality dropped; HiGHS only, no fallback).
    """
    if relaxed:
        return _solve_highs(prob, options, None, mip=False)
    if options.solver == "cbc":
        return _solve_cbc(prob, options, start)
    if options.solver == "highs" or highs_available():
        try:
            outcome = _solve_highs(prob, options, start)
        except Exception as error:  # a crash inside highspy must not lose the plan: try CBC
            if options.solver == "highs":
                return _failed("highs", f"HiGHS failed: {error}")
            outcome = _failed("highs", f"HiGHS failed: {error}")
        if options.solver == "highs" or outcome.status != "error":
            return outcome
        fallback = _solve_cbc(prob, options, start)
        return _with_message(fallback, f"{outcome.message}; solved with CBC instead")
    outcome = _solve_cbc(prob, options, start)
    return _with_message(outcome, "highspy is not installed; solved with CBC")


def _with_message(outcome: SolveOutcome, message: str) -> SolveOutcome:
    text = f"{message}. {outcome.message}" if outcome.message else message
    return SolveOutcome(**{**outcome.__dict__, "message": text})


def _failed(solver: str, message: str, seconds: float = 0.0) -> SolveOutcome:
    return SolveOutcome("error", solver, "error", False, None, None, None, seconds, message)


def _sense(prob: pulp.LpProblem) -> str:
    return "max" if prob.sense == pulp.LpMaximize else "min"


# ------------------------------------------------------------------------------------- HiGHS


def highs_available() -> bool:
    """Whether highspy (HiGHS in-process) can be imported."""
    try:
        import highspy  # noqa: F401
    except ImportError:
        return False
    return True


@contextmanager
def _quiet_stdout(quiet: bool) -> Iterator[None]:
    """HiGHS prints its banner from C++ when the first ``Highs()`` of a process is built, before
    any option can silence it; with ``msg=False`` send file descriptor 1 to /dev/null meanwhile."""
    if not quiet:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


class _HighsInProcess(pulp.HiGHS):
    """PuLP's in-process HiGHS with a seed, a warm start and a bulk model transfer (PuLP's own
    adds one column and one row per call, which dominates on large models)."""

    def __init__(self, *, seed: int, start: Mapping[pulp.LpVariable, float] | None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.start = start

    def createAndConfigureSolver(self, lp):
        import highspy

        with _quiet_stdout(not self.msg):
            lp.solverModel = highspy.Highs()
        model = lp.solverModel
        model.setOptionValue("output_flag", bool(self.msg))
        model.setOptionValue("random_seed", int(self.seed))
        if self.gapRel is not None:
            model.setOptionValue("mip_rel_gap", float(self.gapRel))
        if self.threads is not None:
            model.setOptionValue("threads", int(self.threads))
        if self.timeLimit is not None:
            model.setOptionValue("time_limit", float(self.timeLimit))

    def buildSolverModel(self, lp):
        import highspy

        model = lp.solverModel
        inf = highspy.kHighsInf
        # PuLP's variables() re-registers and name-sorts every variable on each call (seconds
        # on large models); any fixed order works as long as values are read back by index.
        lp._add_variables(lp.objective.keys())
        variables = list(lp._variables)
        self._variables = variables
        for index, var in enumerate(variables):
            var.index = index
        count = len(variables)
        multiplier = -1.0 if lp.sense == pulp.LpMaximize else 1.0
        objective = lp.objective
        costs = np.fromiter((objective.get(v, 0.0) for v in variables), dtype=float, count=count) * multiplier
        lower = np.fromiter((-inf if v.lowBound is None else v.lowBound for v in variables), dtype=float, count=count)
        upper = np.fromiter((inf if v.upBound is None else v.upBound for v in variables), dtype=float, count=count)
        empty_int, empty_float = np.zeros(0, dtype=np.int32), np.zeros(0, dtype=float)
        model.addCols(count, costs, lower, upper, 0, empty_int, empty_int, empty_float)
        integer = np.fromiter((i for i, v in enumerate(variables) if v.cat == pulp.LpInteger), dtype=np.int32)
        if len(integer) and self.mip:
            model.changeColsIntegrality(
                len(integer), integer, np.full(len(integer), highspy.HighsVarType.kInteger)
            )
        if objective.constant:
            model.changeObjectiveOffset(multiplier * objective.constant)
        constraints = list(lp._constraints.values())
        starts = np.zeros(len(constraints), dtype=np.int32)
        indices: list[int] = []
        values: list[float] = []
        row_lower = np.empty(len(constraints))
        row_upper = np.empty(len(constraints))
        for row, constraint in enumerate(constraints):
            constraint.index = row
            starts[row] = len(indices)
            indices.extend(var.index for var in constraint.keys())
            values.extend(constraint.values())
            lb, ub = constraint.getLb(), constraint.getUb()
            row_lower[row] = -inf if lb is None else lb
            row_upper[row] = inf if ub is None else ub
        if constraints:
            model.addRows(
                len(constraints), row_lower, row_upper, len(indices), starts,
                np.asarray(indices, dtype=np.int32), np.asarray(values, dtype=float),
            )

    def actualSolve(self, lp):
        """PuLP's run, reading values back by index (PuLP's own reads every variable through
        ``variables()`` twice more; duals and slacks are not needed here)."""
        import highspy

        self.createAndConfigureSolver(lp)
        self.buildSolverModel(lp)
        self.callSolver(lp)
        model = lp.solverModel
        values = np.asarray(model.getSolution().col_value, dtype=float)
        has_solution = int(model.getInfo().primal_solution_status) == 2
        for var in self._variables:
            var.varValue = float(values[var.index]) if has_solution and len(values) else None
        status = model.getModelStatus()
        if status == highspy.HighsModelStatus.kOptimal:
            pulp_status = (pulp.LpStatusOptimal, pulp.LpSolutionOptimal)
        elif has_solution:
            pulp_status = (pulp.LpStatusOptimal, pulp.LpSolutionIntegerFeasible)
        elif status in (highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kUnboundedOrInfeasible):
            pulp_status = (pulp.LpStatusInfeasible, pulp.LpSolutionInfeasible)
        else:
            pulp_status = (pulp.LpStatusNotSolved, pulp.LpSolutionNoSolutionFound)
        lp.assignStatus(*pulp_status)
        return pulp_status[0]

    def callSolver(self, lp):
        if self.start:
            pairs = [(var.index, float(value)) for var, value in self.start.items() if hasattr(var, "index")]
            if pairs:
                index, value = zip(*pairs)
                # Partial starts are completed by HiGHS; an infeasible one is simply not used.
                lp.solverModel.setSolution(len(index), np.asarray(index, dtype=np.int32), np.asarray(value, dtype=float))
        lp.solverModel.run()


_HIGHS_STATUS_TEXT = {
    "kOptimal": "optimal",
    "kInfeasible": "infeasible",
    "kUnboundedOrInfeasible": "infeasible or unbounded",
    "kUnbounded": "unbounded",
    "kTimeLimit": "time limit",
    "kIterationLimit": "iteration limit",
    "kInterrupt": "interrupted",
    "kSolutionLimit": "solution limit",
    "kObjectiveBound": "objective bound",
    "kObjectiveTarget": "objective target",
}


def _solve_highs(prob: pulp.LpProblem, options: SolverOptions, start, mip: bool = True) -> SolveOutcome:
    solver = _HighsInProcess(
        mip=mip,
        msg=options.msg,
        timeLimit=options.time_limit,
        gapRel=options.gap_rel,
        threads=options.threads,
        seed=options.seed,
        start=start,
    )
    started = time.perf_counter()
    prob.solve(solver)
    seconds = time.perf_counter() - started
    model = prob.solverModel
    status_name = model.getModelStatus().name
    raw = _HIGHS_STATUS_TEXT.get(status_name, status_name)
    info = model.getInfo()
    has_solution = int(getattr(info, "primal_solution_status", 0)) == 2  # kSolutionStatusFeasible
    sense = _sense(prob)
    if status_name == "kInfeasible" or (status_name == "kUnboundedOrInfeasible" and not has_solution):
        return SolveOutcome("infeasible", "highs", raw, False, None, None, None, seconds, "the model has no feasible solution")
    if not has_solution:
        limit = f" of {options.time_limit:g} s" if status_name == "kTimeLimit" and options.time_limit else ""
        message = (
            f"no feasible solution found within the time limit{limit} (infeasibility not proven)"
            if status_name == "kTimeLimit"
            else f"HiGHS stopped without a solution: {raw}"
        )
        status = "time_limit" if status_name == "kTimeLimit" else "error"
        return SolveOutcome(status, "highs", raw, False, None, None, None, seconds, message)
    multiplier = -1.0 if sense == "max" else 1.0  # PuLP hands HiGHS the negated objective for max
    objective = multiplier * model.getObjectiveValue()
    bound = multiplier * float(info.mip_dual_bound) if prob.isMIP() and mip else objective
    if not math.isfinite(bound):
        bound = None
    gap = relative_gap(objective, bound, sense)
    status = judge_status(True, status_name == "kOptimal", gap)
    return SolveOutcome(status, "highs", raw, True, objective, bound, gap, seconds, _stop_message(status, raw, gap, options))


def _fmt_gap(gap: float | None) -> str:
    return "unknown" if gap is None else f"{gap:.4%}"


def _stop_message(status: str, raw: str, gap: float | None, options: SolverOptions) -> str:
    """Why a plan with a solution is not called optimal."""
    if status == "optimal":
        return ""
    if raw.lower().startswith("optimal") and options.gap_rel:
        return f"stopped at the requested gap_rel {options.gap_rel:g}, relative gap {_fmt_gap(gap)}: not proven optimal"
    return f"stopped on {raw} with a relative gap of {_fmt_gap(gap)}"


# --------------------------------------------------------------------------------------- CBC

_CBC_BOUND = re.compile(r"^(?:Lower|Upper) bound:\s+(\S+)", re.MULTILINE)
_CBC_RESULT = re.compile(r"^Result - (.+)$", re.MULTILINE)


def _cbc_solver(**kwargs):
    """COIN_CMD when a cbc binary is on the PATH, else the one bundled with PuLP (whose class
    warns that it will move out of PuLP 4; the warning is not the user's concern)."""
    coin = pulp.COIN_CMD(**kwargs)
    if coin.available():
        return coin
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=FutureWarning)
        return pulp.PULP_CBC_CMD(**kwargs)


def _solve_cbc(prob: pulp.LpProblem, options: SolverOptions, start) -> SolveOutcome:
    if start:
        for var, value in start.items():
            var.setInitialValue(value, check=False)
    handle, log_path = tempfile.mkstemp(prefix="crm_lab_cbc_", suffix=".log")
    os.close(handle)
    cbc_options = [f"randomCbcSeed {options.seed}"] if options.seed else []
    try:
        solver = _cbc_solver(
            msg=False,
            timeLimit=options.time_limit,
            gapRel=options.gap_rel,
            threads=options.threads,
            warmStart=bool(start),
            logPath=log_path,
            options=cbc_options,
        )
        started = time.perf_counter()
        try:
            prob.solve(solver)
        except pulp.PulpSolverError as error:
            return _failed("cbc", f"CBC failed: {error}", time.perf_counter() - started)
        seconds = time.perf_counter() - started
        with open(log_path, encoding="utf-8", errors="replace") as handle_log:
            log = handle_log.read()
        if options.msg:
            print(log)
    finally:
        os.unlink(log_path)
    result = _CBC_RESULT.search(log)
    raw = result.group(1).strip() if result else pulp.LpStatus[prob.status]
    if raw.lower().startswith("stopped on "):
        raw = raw[len("stopped on "):]  # "Stopped on time limit" -> "time limit", as for HiGHS
    if prob.sol_status == pulp.LpSolutionInfeasible or prob.status == pulp.LpStatusInfeasible:
        return SolveOutcome("infeasible", "cbc", raw, False, None, None, None, seconds, "the model has no feasible solution")
    has_solution = prob.sol_status in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible)
    if not has_solution:
        timed_out = bool(options.time_limit) and "time" in raw.lower()
        message = (
            f"no feasible solution found within the time limit of {options.time_limit:g} s (infeasibility not proven)"
            if timed_out
            else f"CBC stopped without a solution: {raw}"
        )
        return SolveOutcome("time_limit" if timed_out else "error", "cbc", raw, False, None, None, None, seconds, message)
    sense = _sense(prob)
    objective = float(pulp.value(prob.objective))
    found = _CBC_BOUND.search(log)
    proven = prob.sol_status == pulp.LpSolutionOptimal and "gap tolerance" not in raw.lower()
    if found:
        bound = float(found.group(1))
    elif proven:
        bound = objective
    else:
        bound = None
    gap = relative_gap(objective, bound, sense)
    # With a loose gap_rel, CBC's "Optimal" is only "within tolerance": without a bound, not proof.
    status = judge_status(True, proven and (options.gap_rel or 0) <= OPTIMALITY_GAP, gap)
    return SolveOutcome(status, "cbc", raw, True, objective, bound, gap, seconds, _stop_message(status, raw, gap, options))
