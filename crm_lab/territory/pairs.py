"""Binary variables for the eligible account-rep pairs only, and the per-account and per-rep sums
every assignment model is made of, built from numpy arrays in one pass each (no Python
arithmetic on PuLP expressions, which is what makes large PuLP models slow to build)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pulp


@dataclass
class PairVariables:
    """``x[k]`` is 1 when account ``account[k]`` goes to rep ``rep[k]``; pairs are sorted by
    account, then rep."""

    account: np.ndarray
    rep: np.ndarray
    x: list[pulp.LpVariable]
    n_accounts: int
    n_reps: int
    _by_rep: np.ndarray = field(init=False, repr=False)
    _rep_starts: np.ndarray = field(init=False, repr=False)
    _account_starts: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_rep = np.argsort(self.rep, kind="stable")
        self._rep_starts = np.searchsorted(self.rep[self._by_rep], np.arange(self.n_reps + 1))
        self._account_starts = np.searchsorted(self.account, np.arange(self.n_accounts + 1))

    def __len__(self) -> int:
        return len(self.x)

    def per_account(self, coefficients: np.ndarray) -> list[pulp.LpAffineExpression]:
        """``sum_r coefficients[k] x[k]`` over each account's pairs."""
        coefficients = np.broadcast_to(np.asarray(coefficients, dtype=float), (len(self),)).tolist()
        starts = self._account_starts.tolist()
        return [
            pulp.LpAffineExpression(zip(self.x[a:b], coefficients[a:b])) for a, b in zip(starts[:-1], starts[1:])
        ]

    def per_rep(self, coefficients: np.ndarray) -> list[pulp.LpAffineExpression]:
        """``sum_a coefficients[k] x[k]`` over each rep's pairs."""
        coefficients = np.broadcast_to(np.asarray(coefficients, dtype=float), (len(self),))[self._by_rep].tolist()
        ordered = [self.x[k] for k in self._by_rep.tolist()]
        starts = self._rep_starts.tolist()
        return [pulp.LpAffineExpression(zip(ordered[a:b], coefficients[a:b])) for a, b in zip(starts[:-1], starts[1:])]

    def total(self, coefficients: np.ndarray, mask: np.ndarray | None = None) -> pulp.LpAffineExpression:
        """``sum_k coefficients[k] x[k]``, over the pairs in ``mask`` when given; zero terms are left out."""
        coefficients = np.broadcast_to(np.asarray(coefficients, dtype=float), (len(self),))
        keep = coefficients != 0 if mask is None else (np.asarray(mask) & (coefficients != 0))
        chosen = np.flatnonzero(keep).tolist()
        return pulp.LpAffineExpression((self.x[k], float(coefficients[k])) for k in chosen)

    def values(self) -> np.ndarray:
        """Solved values (NaN where the solver gave none)."""
        return np.array([np.nan if v.varValue is None else v.varValue for v in self.x], dtype=float)

    def assignment(self) -> np.ndarray:
        """The rep index of each account (the pair with the largest value above 0.5), -1 where
        no pair is set."""
        values = np.nan_to_num(self.values(), nan=0.0)
        result = np.full(self.n_accounts, -1, dtype=np.int64)
        if len(values) == 0:
            return result
        order = np.lexsort((values, self.account))  # by account, largest value last
        last_of_account = order[np.r_[self.account[order][1:] != self.account[order][:-1], True]]
        chosen = last_of_account[values[last_of_account] > 0.5]
        result[self.account[chosen]] = self.rep[chosen]
        return result

    def start(self, rep_of_account: np.ndarray) -> dict[pulp.LpVariable, float]:
        """A warm start setting each account's pair with ``rep_of_account`` (and its other pairs
        to 0); accounts at -1 or whose rep is not an eligible pair are left to the solver."""
        rep_of_account = np.asarray(rep_of_account)
        wanted = rep_of_account[self.account]
        has_start = np.zeros(self.n_accounts, dtype=bool)
        hit = wanted == self.rep
        has_start[self.account[hit]] = True
        chosen = has_start[self.account]
        return {self.x[k]: float(hit[k]) for k in np.flatnonzero(chosen).tolist()}


def pair_variables(prob: pulp.LpProblem, eligible: np.ndarray, prefix: str = "x") -> PairVariables:
    """Binary variables of ``prob`` for the True cells of an accounts x reps mask."""
    eligible = np.asarray(eligible, dtype=bool)
    n_accounts, n_reps = eligible.shape
    account, rep = np.nonzero(eligible)
    # Zero-padded names keep PuLP's name-sorted variable order equal to the pair order.
    width_a, width_r = len(str(max(n_accounts, 1))), len(str(max(n_reps, 1)))
    names = [f"{prefix}_{a:0{width_a}d}_{r:0{width_r}d}" for a, r in zip(account.tolist(), rep.tolist())]
    x = [prob.add_variable(name, 0, 1, pulp.LpBinary) for name in names]
    return PairVariables(account.astype(np.int64), rep.astype(np.int64), x, n_accounts, n_reps)


def add_rows(prob: pulp.LpProblem, expressions, sense: int, rhs, prefix: str) -> list[pulp.LpConstraint]:
    """Add ``expressions[i] (sense) rhs[i]`` as named rows, skipping empty expressions whose row
    holds trivially (an empty row that cannot hold is kept, so the model stays honest)."""
    rhs = np.broadcast_to(np.asarray(rhs, dtype=float), (len(expressions),)).tolist()
    width = len(str(max(len(expressions), 1)))
    rows = []
    for index, (expression, value) in enumerate(zip(expressions, rhs)):
        if not np.isfinite(value):
            continue
        if len(expression) == 0:
            holds = (
                (sense == pulp.LpConstraintLE and 0 <= value)
                or (sense == pulp.LpConstraintGE and 0 >= value)
                or (sense == pulp.LpConstraintEQ and value == 0)
            )
            if holds:
                continue
        row = pulp.LpConstraint(expression, sense, f"{prefix}_{index:0{width}d}", value)
        prob.addConstraint(row)
        rows.append(row)
    return rows
