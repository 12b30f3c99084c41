"""Why a territory plan is impossible, in a user's terms.

Cheap arithmetic on the data finds the usual causes (totals, one account too big for any band,
conflicting locks, reps that cannot reach their band, a move budget below what balancing needs).
Each finding is a sufficient reason on its own. When none applies, the rules only clash in
combination, and the soft plan's violations (see :mod:`crm_lab.territory.model`) say where.
"""

from __future__ import annotations

import math

import numpy as np

from crm_lab.territory.advice import Advice, Knob
from crm_lab.territory.check import _number, rep_sums
from crm_lab.territory.data import TerritoryData
from crm_lab.territory.rules import LIMIT_TOLERANCE, Band, Rules, TerritorySettings

MAX_LISTED = 5  # per kind of reason: the first few, then a count


def diagnose(data: TerritoryData, settings: TerritorySettings, rules: Rules) -> list[str]:
    """Reasons the hard model has no solution, most basic first; empty when none is found.

    Examples
    --------
    >>> import numpy as np
    >>> from crm_lab.territory.rules import derive_rules
    >>> data = TerritoryData(account_ids=["a1", "a2"], account_lat=[0, 0], account_lon=[0, 0],
    ...                      workload=[900.0, 900.0], potential=[1.0, 1.0], current_rep=[None, None],
    ...                      rep_ids=["r1"], rep_home_lat=[0], rep_home_lon=[0], capacity=[1500.0], fte=[1.0])
    >>> settings = TerritorySettings()
    >>> diagnose(data, settings, derive_rules(data, settings))[0]
    'total workload 1,800 h exceeds total capacity 1,500 h by 300 h'
    """
    reasons: list[str] = []
    reasons += _totals(data, rules)
    reasons += _locks(data, rules)
    reasons += _accounts_without_rep(data, settings, rules)
    reasons += _reps_out_of_reach(data, rules)
    reasons += _move_budget(data, settings, rules)
    return reasons


def _listed(lines: list[str], what: str) -> list[str]:
    if len(lines) <= MAX_LISTED:
        return lines
    return lines[:MAX_LISTED] + [f"... and {len(lines) - MAX_LISTED} more {what}"]


def _totals(data: TerritoryData, rules: Rules) -> list[str]:
    reasons = []
    total = float(np.nan_to_num(data.account_workload()).sum())
    capacity = float(rules.capacity.sum())
    if total > capacity * (1 + LIMIT_TOLERANCE):
        reasons.append(
            f"total workload {_number(total, 'h')} exceeds total capacity {_number(capacity, 'h')} "
            f"by {_number(total - capacity, 'h')}"
        )
    band = rules.workload_band
    for j in np.flatnonzero(rules.capacity < band.lower * (1 - LIMIT_TOLERANCE)).tolist():
        reasons.append(
            f"{data.rep_ids[j]}: capacity {_number(rules.capacity[j], 'h')} is below the lower end "
            f"{_number(band.lower[j], 'h')} of its workload band"
        )
    room = float(np.minimum(rules.capacity, band.upper).sum())
    if not reasons and total > room * (1 + LIMIT_TOLERANCE):
        reasons.append(
            f"within their capacities and bands the reps can carry {_number(room, 'h')}, "
            f"{_number(total - room, 'h')} short of the total workload {_number(total, 'h')}"
        )
    return reasons


def _locks(data: TerritoryData, rules: Rules) -> list[str]:
    reasons = []
    accounts, reps = data.account_ids, data.rep_ids
    for i in np.flatnonzero(rules.locked_to == -2).tolist():
        names = " and ".join(reps[j] for j in np.flatnonzero(rules.lock_mask[i]).tolist())
        reasons.append(f"locks conflict: account {accounts[i]} is locked to both {names}")
    for i, j in rules.lock_pairs:
        if rules.forbidden[i, j]:
            reasons.append(f"locks conflict: account {accounts[i]} is locked to {reps[j]}, a pair that is also forbidden")
    single = np.where(rules.locked_to >= 0, rules.locked_to, -1)
    for band, per_account in ((rules.workload_band, rules.workload), (rules.potential_band, rules.potential)):
        locked_load = rep_sums(single, per_account, data.n_reps)
        limit = np.minimum(band.upper, rules.capacity) if band.name == "workload" else band.upper
        for j in np.flatnonzero(locked_load > limit * (1 + LIMIT_TOLERANCE)).tolist():
            what = "capacity and band allow" if band.name == "workload" else "band allows"
            reasons.append(
                f"locks conflict: accounts locked to {reps[j]} bring {band.name} {_number(locked_load[j], band.unit)}, "
                f"more than its {what} ({_number(limit[j], band.unit)})"
            )
    return reasons


def _accounts_without_rep(data: TerritoryData, settings: TerritorySettings, rules: Rules) -> list[str]:
    accounts, reps = data.account_ids, data.rep_ids
    no_rule_rep, too_big = [], []
    for i in np.flatnonzero(~rules.eligible.any(axis=1)).tolist():
        if rules.locked_to[i] == -2 or (rules.locked_to[i] >= 0 and rules.forbidden[i, rules.locked_to[i]]):
            continue  # already explained as a lock conflict
        allowed = np.flatnonzero(rules.allowed[i])
        if len(allowed) == 0:
            why = "every rep is forbidden" if rules.forbidden[i].all() else (
                f"no rep is within the {_number(settings.max_distance_km or 0, 'km')} radius and it has no current rep"
                if settings.max_distance_km is not None else "every rep is forbidden for it"
            )
            no_rule_rep.append(f"account {accounts[i]} has no rep it may go to: {why}")
            continue
        room = np.minimum(rules.capacity[allowed], rules.workload_band.upper[allowed])
        if (rules.workload[i, allowed] > room * (1 + LIMIT_TOLERANCE)).all():
            best = allowed[np.argmax(room)]
            limit = "capacity" if rules.capacity[best] <= rules.workload_band.upper[best] else "workload band's upper end"
            where = "" if rules.locked_to[i] < 0 else " (it is locked there)"
            too_big.append(
                f"account {accounts[i]} alone needs {_number(rules.workload[i, best], 'h')}, more than any rep it may go "
                f"to can take{where} (largest: {reps[best]}'s {limit} {_number(room.max(), 'h')})"
            )
        potential_room = rules.potential_band.upper[allowed]
        if (rules.potential[i] > potential_room * (1 + LIMIT_TOLERANCE)).all():
            best = allowed[np.argmax(potential_room)]
            where = "" if rules.locked_to[i] < 0 else " (it is locked there)"
            target = rules.potential_band.target[best]
            needed = math.ceil(1000 * (rules.potential[i] / target - 1)) / 1000 if target > 0 else math.inf
            tolerance = settings.effective_potential_tolerance
            too_big.append(Advice([
                f"account {accounts[i]} alone has potential {_number(rules.potential[i])}, above the upper end of the "
                f"potential band of every rep it may go to{where} (largest: {reps[best]}'s "
                f"{_number(potential_room.max())}, its target {_number(target)} + {tolerance:.1%}); raise the potential "
                f"tolerance to at least {needed:g} (", Knob("potential_tolerance", needed), "), leave potential unbalanced (",
                Knob("potential_tolerance", math.inf), "), or split the account",
            ]))
    return _listed(no_rule_rep, "accounts with no rep") + _listed(too_big, "accounts too big for any band")


def _reps_out_of_reach(data: TerritoryData, rules: Rules) -> list[str]:
    reasons = []
    for band, per_account in ((rules.workload_band, rules.workload), (rules.potential_band, rules.potential)):
        values = per_account if per_account.ndim == 2 else np.repeat(per_account[:, None], data.n_reps, axis=1)
        reachable = np.where(rules.allowed, values, 0.0).sum(axis=0)
        for j in np.flatnonzero(reachable < band.lower * (1 - LIMIT_TOLERANCE)).tolist():
            reasons.append(
                f"{data.rep_ids[j]} can be given at most {_number(reachable[j], band.unit)} of {band.name} "
                f"(radius, forbidden pairs, locks), below the lower end {_number(band.lower[j], band.unit)} of its band"
            )
    return _listed(reasons, "reps out of reach")


def _move_budget(data: TerritoryData, settings: TerritorySettings, rules: Rules) -> list[str]:
    if settings.max_moves is None and settings.max_moved_potential is None:
        return []
    current = rules.current
    owned = np.flatnonzero(current >= 0)
    must_move = owned[~rules.eligible[owned, current[owned]]]
    reasons = []
    if settings.max_moves is not None and len(must_move) > settings.max_moves:
        reasons.append(
            f"{len(must_move)} accounts must leave their current rep (locks, forbidden pairs, or too big for the "
            f"rep's band or capacity), more than the budget of {settings.max_moves} moves"
        )
    forced_potential = float(rules.potential[must_move].sum())
    if settings.max_moved_potential is not None and forced_potential > settings.max_moved_potential * (1 + LIMIT_TOLERANCE):
        reasons.append(
            f"accounts that must leave their current rep carry potential {_number(forced_potential)}, more than the "
            f"budget of {_number(settings.max_moved_potential)}"
        )
    if reasons or settings.max_moves is None:
        return reasons
    needed, notes = 0, []
    for band, per_account in ((rules.workload_band, rules.workload), (rules.potential_band, rules.potential)):
        count, lines = _moves_to_balance(data, rules, band, per_account)
        if count > needed:
            needed, notes = count, lines
    if needed > settings.max_moves:
        reasons.append(
            f"balancing needs at least {needed} moves, more than the budget of {settings.max_moves}: "
            + "; ".join(_listed(notes, "reps off their band"))
        )
    return reasons


def _moves_to_balance(data: TerritoryData, rules: Rules, band: Band, per_account: np.ndarray) -> tuple[int, list[str]]:
    """A lower bound on the moves the band needs, from the current plan: a rep above its band
    must give away at least the fewest of its accounts whose sizes cover the excess; a rep below
    must receive at least the fewest accounts that fill the gap (only counted when no account is
    waiting to be reassigned, since those fill gaps without a move)."""
    current = rules.current
    values = per_account if per_account.ndim == 2 else np.repeat(per_account[:, None], data.n_reps, axis=1)
    load = rep_sums(current, values, data.n_reps)
    limit_up = np.minimum(band.upper, rules.capacity) if band.name == "workload" else band.upper
    out_moves, in_moves, notes = 0, 0, []
    has_reassigned = bool((current < 0).any())
    for j in range(data.n_reps):
        if load[j] > limit_up[j] * (1 + LIMIT_TOLERANCE):
            excess = load[j] - limit_up[j]
            mine = np.sort(values[current == j, j])[::-1]
            k = int(np.searchsorted(np.cumsum(mine), excess * (1 - LIMIT_TOLERANCE)) + 1)
            out_moves += min(k, len(mine))
            limit = "capacity" if band.name == "workload" and rules.capacity[j] < band.upper[j] else f"{band.name} band"
            notes.append(f"{data.rep_ids[j]} is {_number(excess, band.unit)} over its {limit}")
        elif load[j] < band.lower[j] * (1 - LIMIT_TOLERANCE) and not has_reassigned:
            gap = band.lower[j] - load[j]
            others = np.sort(values[(current != j) & rules.eligible[:, j], j])[::-1]
            k = int(np.searchsorted(np.cumsum(others), gap * (1 - LIMIT_TOLERANCE)) + 1)
            in_moves += min(k, len(others))
            notes.append(f"{data.rep_ids[j]} is {_number(gap, band.unit)} under its {band.name} band")
    return max(out_moves, in_moves), notes
