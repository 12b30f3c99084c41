"""The rules of a territory plan, and what they mean for given data: balance bands, capacity,
eligible pairs, locks, costs. The model, the independent check and the diagnosis all read the
same :class:`Rules`, so they can never disagree about what a rule says."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from crm_lab.errors import InvalidArgument
from crm_lab.territory.data import TerritoryData
from crm_lab.territory.geo import distance_matrix_km
from crm_lab.territory.inputs import check_inputs, missing_workload

DISTANCE_TO = ("home", "territory")
# Relative slack when comparing a load with its limit: the solver's feasibility tolerance.
LIMIT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class TerritorySettings:
    """What a good plan is.

    Parameters
    ----------
    tolerance : float
        Each rep's workload stays within ``(1 ± tolerance) x`` its FTE share of the total workload;
        ``math.inf`` leaves workload unbalanced (capacities still hold).
    potential_tolerance : float or None
        The same band for potential; None uses ``tolerance``, ``math.inf`` leaves potential free.
    distance_to : {"home", "territory"}
        Compactness is the distance from each account to its rep's home, or to the centre of the
        rep's territory (its home when it has none).
    distance_weight : float
        Objective cost per km between an account and its rep.
    move_weight : float
        Objective cost per account moved away from its current rep (in km when
        ``distance_weight`` is 1: a move must save this much distance to be worth it).
    max_moves : int or None
        At most this many accounts move away from their current rep. Accounts with no current
        rep in the plan (unowned, or their rep was removed) are reassigned, not moved.
    max_moved_potential : float or None
        At most this much potential moves away from current reps.
    max_distance_km : float or None
        No account goes to a rep farther than this (the current rep and locks excepted, so the
        radius never forces a move); also removes those pairs from the model.
    locks : sequence of (account_id, rep_id)
        Accounts that must go to these reps.
    forbidden : sequence of (account_id, rep_id)
        Pairs that must not be used.
    soft_fallback : bool
        When the rules cannot all hold, also solve the soft model (bands, capacities and budgets
        may be broken, least first) and report each violation.
    """

    tolerance: float = 0.10
    potential_tolerance: float | None = None
    distance_to: str = "home"
    distance_weight: float = 1.0
    move_weight: float = 50.0
    max_moves: int | None = None
    max_moved_potential: float | None = None
    max_distance_km: float | None = None
    locks: tuple[tuple[str, str], ...] = ()
    forbidden: tuple[tuple[str, str], ...] = ()
    soft_fallback: bool = True

    def __post_init__(self) -> None:
        if self.tolerance != math.inf:
            try:
                _non_negative("tolerance", self.tolerance)
            except InvalidArgument:
                raise InvalidArgument(
                    f"tolerance must be a number >= 0 or inf (workload unbalanced); got {self.tolerance!r}"
                ) from None
        if self.potential_tolerance is not None and self.potential_tolerance != math.inf:
            try:
                _non_negative("potential_tolerance", self.potential_tolerance)
            except InvalidArgument:
                raise InvalidArgument(
                    f"potential_tolerance must be a number >= 0, inf (potential unbalanced) or None (same as "
                    f"tolerance); got {self.potential_tolerance!r}"
                ) from None
        if self.distance_to not in DISTANCE_TO:
            raise InvalidArgument(f"distance_to must be 'home' or 'territory'; got {self.distance_to!r}")
        _non_negative("distance_weight", self.distance_weight)
        _non_negative("move_weight", self.move_weight)
        if self.max_moves is not None and (not isinstance(self.max_moves, (int, np.integer)) or self.max_moves < 0):
            raise InvalidArgument(f"max_moves must be an integer >= 0 or None; got {self.max_moves!r}")
        if self.max_moved_potential is not None:
            _non_negative("max_moved_potential", self.max_moved_potential)
        if self.max_distance_km is not None and not (self.max_distance_km > 0):
            raise InvalidArgument(f"max_distance_km must be > 0 or None; got {self.max_distance_km!r}")
        object.__setattr__(self, "locks", _pairs("locks", self.locks))
        object.__setattr__(self, "forbidden", _pairs("forbidden", self.forbidden))

    @property
    def effective_potential_tolerance(self) -> float:
        return self.tolerance if self.potential_tolerance is None else self.potential_tolerance

    def describe(self) -> str:
        """The rules in a sentence, for a report or a console.

        Examples
        --------
        >>> print(TerritorySettings(tolerance=0.15, potential_tolerance=math.inf, max_moves=8).describe())
        workload within ±15% of each rep's FTE share, potential unbalanced; at most 8 move(s), each costing 50 km
        """
        potential = self.effective_potential_tolerance
        workload = "workload unbalanced" if math.isinf(self.tolerance) else \
            f"workload within ±{self.tolerance:.0%} of each rep's FTE share"
        rules = [f"{workload}, " + ("potential unbalanced" if math.isinf(potential) else f"potential within ±{potential:.0%}")]
        moves = "any number of moves" if self.max_moves is None else f"at most {self.max_moves} move(s)"
        if self.max_moved_potential is not None:
            moves += f" and {self.max_moved_potential:,.0f} potential moved"
        per_km = "" if self.distance_weight == 1 else f" (distance weighted {self.distance_weight:g})"
        rules.append(f"{moves}, each costing {self.move_weight:g} km{per_km}")
        if self.max_distance_km is not None:
            rules.append(f"no account farther than {self.max_distance_km:g} km from a new rep")
        if self.distance_to != "home":
            rules.append("distance to the rep's territory centre")
        if self.locks or self.forbidden:
            rules.append(f"{len(self.locks)} lock(s), {len(self.forbidden)} forbidden pair(s)")
        return "; ".join(rules)


def _non_negative(name: str, value) -> None:
    if not isinstance(value, (int, float, np.integer, np.floating)) or not (value >= 0) or not math.isfinite(value):
        raise InvalidArgument(f"{name} must be a finite number >= 0; got {value!r}")


def _pairs(name: str, value) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in value or ():
        if isinstance(item, str) or len(item) != 2:
            raise InvalidArgument(f"{name} must be (account_id, rep_id) pairs; got {item!r}")
        pairs.append((str(item[0]), str(item[1])))
    return tuple(pairs)


@dataclass(frozen=True)
class Band:
    """Per-rep target and allowed range of a summed quantity (workload or potential)."""

    name: str
    unit: str
    target: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    @property
    def active(self) -> bool:
        return bool(np.isfinite(self.upper).any() or (self.lower > 0).any())


@dataclass(frozen=True)
class Rules:
    """Everything the rules say about one data set (accounts x reps arrays).

    ``allowed`` is what locks, forbidden pairs and the radius permit; ``fits`` drops pairs whose
    account alone would break the rep's capacity or upper band; the hard model uses
    ``eligible = allowed & fits``."""

    distance_km: np.ndarray
    workload: np.ndarray
    potential: np.ndarray
    capacity: np.ndarray
    workload_band: Band
    potential_band: Band
    current: np.ndarray
    moved: np.ndarray
    pair_cost: np.ndarray
    forbidden: np.ndarray
    locked_to: np.ndarray  # rep index per account, -1 unlocked, -2 locked to several reps
    lock_mask: np.ndarray
    within_radius: np.ndarray
    allowed: np.ndarray
    fits: np.ndarray
    lock_pairs: list[tuple[int, int]] = field(default_factory=list)
    # What the data lets a plan be measured by (False: that input is missing, shown as unknown).
    has_workload: bool = True
    has_potential: bool = True
    has_distance: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def eligible(self) -> np.ndarray:
        return self.allowed & self.fits

    def soft_eligible(self) -> np.ndarray:
        """Pairs of the soft model: ``allowed`` (bands and capacity may break there), and for an
        account that ``allowed`` leaves with no rep, its locked reps, else its non-forbidden
        reps, else every rep, so the soft model always has a plan."""
        eligible = self.allowed.copy()
        for account in np.flatnonzero(~eligible.any(axis=1)).tolist():
            for candidate in (self.lock_mask[account], ~self.forbidden[account], np.ones_like(eligible[account])):
                if candidate.any():
                    eligible[account] = candidate
                    break
        return eligible


def derive_rules(data: TerritoryData, settings: TerritorySettings) -> Rules:
    """Bands, eligibility and costs for ``data`` under ``settings`` (ids in locks and forbidden
    pairs are checked here, and the inputs each rule needs: see :func:`.inputs.check_inputs`)."""
    n, m = data.n_accounts, data.n_reps
    if m == 0:
        raise InvalidArgument("reps: a plan needs at least one rep")
    notes = check_inputs(data, settings)  # raises MissingInputs
    # Past the check, a missing value only feeds rules that are off: it counts as 0 there.
    has_workload = not missing_workload(data).any()
    has_potential = not np.isnan(data.potential).any()
    rep_lat, rep_lon = (
        (data.rep_home_lat, data.rep_home_lon)
        if settings.distance_to == "home"
        else (data.rep_centre_lat, data.rep_centre_lon)
    )
    distance = distance_matrix_km(data.account_lat, data.account_lon, rep_lat, rep_lon)
    located = ~np.isnan(distance)
    has_distance = bool(located.any()) and not np.isnan(rep_lat).any() and not np.isnan(rep_lon).any()
    distance = np.nan_to_num(distance, nan=0.0)
    workload = np.nan_to_num(data.workload_matrix(), nan=0.0)
    account_workload = np.nan_to_num(data.account_workload(), nan=0.0)
    potential = np.nan_to_num(data.potential, nan=0.0)
    share = data.fte / data.fte.sum()

    def band(name: str, unit: str, total: float, tolerance: float) -> Band:
        target = share * total
        if math.isinf(tolerance):
            return Band(name, unit, target, np.zeros(m), np.full(m, np.inf))
        return Band(name, unit, target, np.maximum(target * (1 - tolerance), 0.0), target * (1 + tolerance))

    workload_band = band("workload", "h", float(account_workload.sum()), settings.tolerance)
    potential_band = band("potential", "", float(potential.sum()), settings.effective_potential_tolerance)

    current = data.current_index()
    has_current = current >= 0
    moved = has_current[:, None] & (np.arange(m)[None, :] != current[:, None])
    pair_cost = settings.distance_weight * distance + settings.move_weight * moved

    forbidden = np.zeros((n, m), dtype=bool)
    for account_id, rep_id in settings.forbidden:
        forbidden[data.account_index(account_id, "forbidden"), data.rep_index(rep_id, "forbidden")] = True
    lock_mask = np.zeros((n, m), dtype=bool)
    lock_pairs = []
    for account_id, rep_id in settings.locks:
        pair = (data.account_index(account_id, "locks"), data.rep_index(rep_id, "locks"))
        lock_mask[pair] = True
        lock_pairs.append(pair)
    lock_count = lock_mask.sum(axis=1)
    locked_to = np.where(lock_count == 1, lock_mask.argmax(axis=1), np.where(lock_count > 1, -2, -1))

    if settings.max_distance_km is None:
        within_radius = np.ones((n, m), dtype=bool)
    else:
        within_radius = ~located | (distance <= settings.max_distance_km)
    is_current = np.zeros((n, m), dtype=bool)
    is_current[np.flatnonzero(has_current), current[has_current]] = True
    allowed = ~forbidden & (within_radius | is_current)
    locked = lock_count > 0
    # A lock replaces the account's row: only its rep, and nothing when locks conflict.
    allowed[locked] = lock_mask[locked] & ~forbidden[locked] & (lock_count[locked] == 1)[:, None]

    slack = 1 + LIMIT_TOLERANCE
    fits = (
        (workload <= data.capacity[None, :] * slack)
        & (workload <= workload_band.upper[None, :] * slack)
        & (potential[:, None] <= potential_band.upper[None, :] * slack)
    )
    return Rules(
        distance_km=distance, workload=workload, potential=potential, capacity=data.capacity,
        workload_band=workload_band, potential_band=potential_band, current=current, moved=moved,
        pair_cost=pair_cost, forbidden=forbidden, locked_to=locked_to, lock_mask=lock_mask,
        within_radius=within_radius, allowed=allowed, fits=fits, lock_pairs=lock_pairs,
        has_workload=has_workload, has_potential=has_potential, has_distance=has_distance, notes=notes,
    )
