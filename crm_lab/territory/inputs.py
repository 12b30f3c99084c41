"""Which inputs each territory rule needs, checked before anything is solved.

An imported CRM export often has no workload, potential or rep homes. Treated as zero they would
give a plan that is "optimal" and "within 0.0% of target" while meaning nothing, so a rule whose
inputs are missing is refused, with what is missing and how to turn the rule off:

========================  ==========================================  ====================================
rule                      needs                                       off with
========================  ==========================================  ====================================
workload band             every account's ``workload_hours``          ``--tolerance inf``
capacity                  every account's ``workload_hours``          (reps without ``capacity_hours``)
potential band            every account's ``potential``               ``--potential-tolerance inf``
potential move budget     every account's ``potential``               no ``--max-moved-potential``
compactness, radius       reps' ``home_lat``/``home_lon`` (or their   ``--distance-weight 0``, no
                          territory centre), accounts' ``lat``/``lon``  ``--radius-km``
========================  ==========================================  ====================================

Accounts without a location (when some have one) are a note, not a refusal: they add no distance
and the radius does not apply to them.
"""

from __future__ import annotations

import math

import numpy as np

from crm_lab.errors import InvalidArgument
from crm_lab.territory.data import TerritoryData, _some

HEADER = "the inputs of some rules are missing{company}; nothing was solved:"


class MissingInputs(InvalidArgument):
    """Rules whose inputs are missing; ``problems`` has one line per rule."""

    def __init__(self, problems: list[str], company: str | None = None):
        self.problems = list(problems)
        where = f" for {company}" if company else ""
        super().__init__("\n".join([HEADER.format(company=where)] + [f"  - {p}" for p in self.problems]))


def workload_balanced(settings) -> bool:
    return math.isfinite(settings.tolerance)


def potential_balanced(settings) -> bool:
    return math.isfinite(settings.effective_potential_tolerance)


def distance_used(settings) -> bool:
    return settings.distance_weight > 0 or settings.max_distance_km is not None


def missing_workload(data: TerritoryData) -> np.ndarray:
    workload = data.workload
    return np.isnan(workload) if workload.ndim == 1 else np.isnan(workload).any(axis=1)


def check_inputs(data: TerritoryData, settings) -> list[str]:
    """Raise :class:`MissingInputs` when a rule in use lacks its inputs; return notes on the
    inputs that are incomplete but usable (accounts without a location, defaults from reading).

    Examples
    --------
    >>> data = TerritoryData(account_ids=["a1", "a2"], account_lat=[0, 0], account_lon=[0, 1],
    ...                      workload=[float("nan"), 5.0], potential=[1.0, 1.0], current_rep=["r1", "r1"],
    ...                      rep_ids=["r1"], rep_home_lat=[0], rep_home_lon=[0], capacity=[10.0], fte=[1.0])
    >>> from crm_lab.territory.rules import TerritorySettings
    >>> try:
    ...     check_inputs(data, TerritorySettings())
    ... except MissingInputs as error:
    ...     print(error.problems[0])
    the workload band and capacity need each account's workload_hours: missing for 1 of 2 accounts (a1); fill them in the accounts export (the workload band can be turned off with --tolerance inf, the capacity limit only by leaving reps' capacity_hours empty)
    """
    problems: list[str] = []
    no_workload = missing_workload(data)
    capacity_used = bool(np.isfinite(data.capacity).any())
    if no_workload.any() and (workload_balanced(settings) or capacity_used):
        rules = " and ".join(r for r, on in (("the workload band", workload_balanced(settings)),
                                             ("capacity", capacity_used)) if on)
        ways = []
        if workload_balanced(settings):
            ways.append("the workload band can be turned off with --tolerance inf")
        if capacity_used:
            ways.append("the capacity limit only by leaving reps' capacity_hours empty")
        problems.append(
            f"{rules} need{'s' if ' and ' not in rules else ''} each account's workload_hours: missing for "
            f"{_some(data.account_ids, no_workload, 'accounts')}; fill them in the accounts export ({', '.join(ways)})"
        )
    no_potential = np.isnan(data.potential)
    if no_potential.any():
        rules = []
        if potential_balanced(settings):
            rules.append(("the potential band", "turn it off with --potential-tolerance inf"))
        if settings.max_moved_potential is not None:
            rules.append(("the moved-potential budget", "drop --max-moved-potential"))
        if rules:
            names = " and ".join(r for r, _ in rules)
            problems.append(
                f"{names} need{'s' if len(rules) == 1 else ''} each account's potential: missing for "
                f"{_some(data.account_ids, no_potential, 'accounts')}; fill it in the accounts export, or "
                + " and ".join(w for _, w in rules)
            )
    notes: list[str] = list(data.notes)
    if distance_used(settings):
        if settings.distance_to == "home":
            rep_lat, rep_lon, fields = data.rep_home_lat, data.rep_home_lon, "home_lat and home_lon"
        else:
            rep_lat, rep_lon, fields = data.rep_centre_lat, data.rep_centre_lon, \
                "territory centre (center_lat and center_lon, else home_lat and home_lon)"
        no_rep_place = np.isnan(rep_lat) | np.isnan(rep_lon)
        no_place = np.isnan(data.account_lat) | np.isnan(data.account_lon)
        rules = " and ".join(r for r, on in (("compactness", settings.distance_weight > 0),
                                             ("the radius", settings.max_distance_km is not None)) if on)
        verb = "need" if " and " in rules else "needs"
        ways = " and ".join(w for w, on in (("turn compactness off with --distance-weight 0",
                                             settings.distance_weight > 0),
                                            ("drop --radius-km", settings.max_distance_km is not None)) if on)
        if no_rep_place.any():
            problems.append(
                f"{rules} {verb} each rep's {fields}: missing for {_some(data.rep_ids, no_rep_place, 'reps')}; "
                f"fill them in the reps export, or {ways}"
            )
        if data.n_accounts and no_place.all():
            problems.append(
                f"{rules} {verb} accounts' lat and lon: missing for {_some(data.account_ids, no_place, 'accounts')}; "
                f"fill them in the accounts export, or {ways}"
            )
        elif no_place.any():
            notes.append(
                f"{_some(data.account_ids, no_place, 'accounts')} have no lat/lon: they add no distance"
                + (" and the radius does not apply to them" if settings.max_distance_km is not None else "")
            )
    if problems:
        raise MissingInputs(problems, data.company_id)
    return notes
