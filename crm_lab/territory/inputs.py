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
from dataclasses import dataclass

import numpy as np

from crm_lab.errors import InvalidArgument
from crm_lab.territory.advice import SUPPLY_ACCOUNT_PLACES, SUPPLY_POTENTIAL, SUPPLY_REP_HOMES, SUPPLY_WORKLOAD, Advice, Knob, Off
from crm_lab.territory.data import TerritoryData, _some

HEADER = "the inputs of some rules are missing{company}; nothing was solved:"


@dataclass(frozen=True)
class MissingInput:
    """One refused rule (or rules sharing an input): what it needs, what is missing, and the
    settings that turn it off (``off``; capacity has none: its limit goes by leaving reps'
    ``capacity_hours`` empty). ``text`` is the line, renderable per surface."""

    rules: tuple[str, ...]
    needs: str
    missing: str
    off: tuple[Knob, ...]
    text: Advice

    def render(self, surface: str = "cli") -> str:
        return self.text.render(surface)


class MissingInputs(InvalidArgument):
    """Rules whose inputs are missing: ``items`` has one :class:`MissingInput` per line and
    ``problems`` the lines in the command line's words; :meth:`render` words them for a surface
    (``cli``, ``notebook``, ``panel``)."""

    def __init__(self, items: list, company: str | None = None):
        self.items = [i if isinstance(i, MissingInput) else MissingInput((), "", "", (), Advice([str(i)]))
                      for i in items]
        self.problems = [item.text for item in self.items]
        self.company = company
        super().__init__(self.render("cli"))

    @property
    def header(self) -> str:
        return HEADER.format(company=f" for {self.company}" if self.company else "")

    def lines(self, surface: str = "cli") -> list[str]:
        return [item.render(surface) for item in self.items]

    def render(self, surface: str = "cli") -> str:
        return "\n".join([self.header] + [f"  - {line}" for line in self.lines(surface)])


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
    ...     print(error.items[0].render("notebook"))
    the workload band and capacity need each account's workload_hours: missing for 1 of 2 accounts (a1); load them with a file of company_id, account_id, workload_hours, which later imports keep (the workload band can be turned off with --tolerance inf, the capacity limit only by leaving reps' capacity_hours empty)
    the workload band and capacity need each account's workload_hours: missing for 1 of 2 accounts (a1); load them with a file of company_id, account_id, workload_hours, which later imports keep (the workload band can be turned off with tolerance = None, the capacity limit only by leaving reps' capacity_hours empty)
    """
    problems: list[MissingInput] = []
    no_workload = missing_workload(data)
    capacity_used = bool(np.isfinite(data.capacity).any())
    if no_workload.any() and (workload_balanced(settings) or capacity_used):
        names = tuple(r for r, on in (("the workload band", workload_balanced(settings)),
                                      ("capacity", capacity_used)) if on)
        rules = " and ".join(names)
        missing = _some(data.account_ids, no_workload, "accounts")
        ways: list = []
        off: tuple[Knob, ...] = ()
        if workload_balanced(settings):
            off = (Knob("tolerance", math.inf),)
            ways += ["the workload band can be turned off with ", off[0]]
        if capacity_used:
            ways += [", " if ways else "", "the capacity limit only by leaving reps' capacity_hours empty"]
        problems.append(MissingInput(names, "each account's workload_hours", missing, off, Advice(
            [f"{rules} need{'s' if ' and ' not in rules else ''} each account's workload_hours: missing for "
             f"{missing}; {SUPPLY_WORKLOAD} (", *ways, ")"]
        )))
    no_potential = np.isnan(data.potential)
    if no_potential.any():
        rules = []
        if potential_balanced(settings):
            rules.append(("the potential band", Knob("potential_tolerance", math.inf)))
        if settings.max_moved_potential is not None:
            rules.append(("the moved-potential budget", Knob("max_moved_potential", None)))
        if rules:
            names = " and ".join(r for r, _ in rules)
            missing = _some(data.account_ids, no_potential, "accounts")
            off = tuple(k for _, k in rules)
            problems.append(MissingInput(tuple(r for r, _ in rules), "each account's potential", missing, off, Advice(
                [f"{names} need{'s' if len(rules) == 1 else ''} each account's potential: missing for {missing}; "
                 f"{SUPPLY_POTENTIAL}, or ", Off("it", off)]
            )))
    notes: list[str] = list(data.notes)
    if distance_used(settings):
        if settings.distance_to == "home":
            rep_lat, rep_lon, fields = data.rep_home_lat, data.rep_home_lon, "home_lat and home_lon"
        else:
            rep_lat, rep_lon, fields = data.rep_centre_lat, data.rep_centre_lon, \
                "territory centre (center_lat and center_lon, else home_lat and home_lon)"
        no_rep_place = np.isnan(rep_lat) | np.isnan(rep_lon)
        no_place = np.isnan(data.account_lat) | np.isnan(data.account_lon)
        used = [(r, k) for r, k, on in (("compactness", Knob("distance_weight", 0), settings.distance_weight > 0),
                                        ("the radius", Knob("max_distance_km", None), settings.max_distance_km is not None))
                if on]
        names = tuple(r for r, _ in used)
        rules = " and ".join(names)
        verb = "need" if len(used) > 1 else "needs"
        off = tuple(k for _, k in used)
        if no_rep_place.any():
            missing = _some(data.rep_ids, no_rep_place, "reps")
            problems.append(MissingInput(names, f"each rep's {fields}", missing, off, Advice(
                [f"{rules} {verb} each rep's {fields}: missing for {missing}; {SUPPLY_REP_HOMES}, or ",
                 Off("compactness", off)]
            )))
        if data.n_accounts and no_place.all():
            missing = _some(data.account_ids, no_place, "accounts")
            problems.append(MissingInput(names, "accounts' lat and lon", missing, off, Advice(
                [f"{rules} {verb} accounts' lat and lon: missing for {missing}; {SUPPLY_ACCOUNT_PLACES}, "
                 "or ", Off("compactness", off)]
            )))
        elif no_place.any():
            notes.append(
                f"{_some(data.account_ids, no_place, 'accounts')} have no lat/lon: they add no distance"
                + (" and the radius does not apply to them" if settings.max_distance_km is not None else "")
            )
    if problems:
        raise MissingInputs(problems, data.company_id)
    if not (workload_balanced(settings) or potential_balanced(settings) or distance_used(settings)):
        unowned = data.current_index() < 0
        if unowned.any():
            notes.append(
                f"no band and no distance: nothing decides which reps get the {int(unowned.sum())} account(s) without "
                "a current rep in the plan, so the solver puts them anywhere (often all on one rep); switch on a band "
                "or distance to share them out"
            )
    return notes
