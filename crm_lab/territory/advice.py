"""Advice that names a setting, in the words of the surface that shows it.

A refusal or a diagnosis tells the user which setting turns a rule off or loosens it. The
command line calls it ``--tolerance inf``, notebook 05 (and a batch spec) ``tolerance = None``,
the dashboard panel its "balance workload" box. So advice is kept as parts: plain text and
:class:`Knob` items (a :class:`~crm_lab.territory.rules.TerritorySettings` field and the value to
give it), and each surface renders it with its :data:`VOCABULARIES` entry. As a string, advice
is the command line's text (what is stored and printed by ``crm-lab territory``).

Examples
--------
>>> advice = Advice(["leave potential unbalanced (", Knob("potential_tolerance", math.inf), ")"])
>>> print(advice)
leave potential unbalanced (--potential-tolerance inf)
>>> print(advice.render("notebook"))
leave potential unbalanced (potential_band = None)
>>> print(advice.render("panel"))
leave potential unbalanced ("balance potential" unticked)
>>> off = Advice(["or ", Off("compactness", (Knob("distance_weight", 0), Knob("max_distance_km", None)))])
>>> for surface in SURFACES:
...     print(off.render(surface))
or turn compactness off with --distance-weight 0 and drop --radius-km
or turn compactness off with distance_weight = 0 and set radius_km = None
or turn compactness off with "use distance" unticked
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

SURFACES = ("cli", "notebook", "panel")

# Where a missing territory input comes from, in words true for a tenant loaded natively and for
# one a CRM import fills, whose export has no workload or capacity: a file of the key and the
# columns sets them (a load keeps the columns its file lacks, and a later import those its export
# lacks: docs/IMPORT.md, "What Salesforce does not export").
SUPPLY_WORKLOAD = "load them with a file of company_id, account_id, workload_hours, which later imports keep"
SUPPLY_POTENTIAL = "set it in the accounts export or the accounts' events (a CRM import has none)"
SUPPLY_REP_HOMES = "load them with a file of company_id, rep_id, home_lat, home_lon (from Salesforce: the users' Latitude and Longitude)"
SUPPLY_ACCOUNT_PLACES = "load them with a file of company_id, account_id, lat, lon (from Salesforce: BillingLatitude and BillingLongitude)"

# The panel's controls (crm_lab.widgets.territory), named here so the advice and the panel agree.
PANEL_TOLERANCE = "tolerance ±"
PANEL_BALANCE_WORKLOAD = "balance workload"
PANEL_POTENTIAL = "potential ±"
PANEL_BALANCE_POTENTIAL = "balance potential"
PANEL_DISTANCE = "use distance"


@dataclass(frozen=True)
class Knob:
    """A setting and the value advised for it: ``math.inf`` (a band left unbalanced), 0, a number,
    or None (the limit dropped)."""

    setting: str
    value: float | None

    def render(self, surface: str = "cli") -> str:
        return _RENDER[surface](self)


@dataclass(frozen=True)
class Off:
    """Turning rules off: "turn ``subject`` off with" the knobs that take a value, and "drop"
    (in the surface's words) those whose value is None; a panel control is named once."""

    subject: str
    knobs: tuple[Knob, ...]

    def render(self, surface: str = "cli") -> str:
        sets = [k for k in self.knobs if k.value is not None]
        clauses = [f"turn {self.subject} off with " + " and ".join(k.render(surface) for k in sets)] if sets else []
        named = {_PANEL_CONTROL.get(k.setting) for k in sets}
        for knob in self.knobs:
            if knob.value is None and not (surface == "panel" and _PANEL_CONTROL.get(knob.setting) in named - {None}):
                clauses.append(_DROP[surface](knob))
        return " and ".join(clauses)


Part = Union[str, Knob, Off]


class Advice(str):
    """Text with :class:`Knob` items; ``str(advice)`` is the command line's wording."""

    parts: tuple

    def __new__(cls, parts) -> Advice:
        parts = tuple(parts)
        self = super().__new__(cls, _join(parts, "cli"))
        self.parts = parts
        return self

    def render(self, surface: str = "cli") -> str:
        if surface not in SURFACES:
            raise ValueError(f"surface must be one of {', '.join(SURFACES)}; got {surface!r}")
        return _join(self.parts, surface)

    @property
    def knobs(self) -> list[Knob]:
        return [k for p in self.parts for k in ((p,) if isinstance(p, Knob) else p.knobs if isinstance(p, Off) else ())]

    def __reduce__(self):
        return (Advice, (self.parts,))


def render(text: str, surface: str) -> str:
    """``text`` for ``surface``: advice rendered, any other string as it is."""
    return text.render(surface) if isinstance(text, Advice) else str(text)


def _join(parts: tuple, surface: str) -> str:
    out = []
    for part in parts:
        if isinstance(part, (Knob, Off)):
            out.append(part.render(surface))
        else:
            out.append(str(part))
    return "".join(out)


def _number(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:g}"


_CLI_FLAGS = {
    "tolerance": "--tolerance",
    "potential_tolerance": "--potential-tolerance",
    "distance_weight": "--distance-weight",
    "max_distance_km": "--radius-km",
    "max_moved_potential": "--max-moved-potential",
    "max_moves": "--max-moves",
}

# Notebook 05's parameters (a batch spec uses the same names); a band left unbalanced is None.
_NOTEBOOK_PARAMETERS = {
    "tolerance": "tolerance",
    "potential_tolerance": "potential_band",
    "distance_weight": "distance_weight",
    "max_distance_km": "radius_km",
    "max_moves": "max_moves",
}


def _cli(knob: Knob) -> str:
    flag = _CLI_FLAGS.get(knob.setting, knob.setting)
    return f"{flag} {_number(knob.value)}"


def _notebook(knob: Knob) -> str:
    name = _NOTEBOOK_PARAMETERS.get(knob.setting, knob.setting)
    if knob.value is None or (knob.setting in ("tolerance", "potential_tolerance") and math.isinf(knob.value)):
        return f"{name} = None"
    return f"{name} = {_number(knob.value)}"


def _panel(knob: Knob) -> str:
    unbalanced = knob.value is not None and math.isinf(knob.value)
    if knob.setting == "tolerance":
        return f'"{PANEL_BALANCE_WORKLOAD}" unticked' if unbalanced else f'"{PANEL_TOLERANCE}" at {knob.value:.1%}'
    if knob.setting == "potential_tolerance":
        return f'"{PANEL_BALANCE_POTENTIAL}" unticked' if unbalanced else \
            f'"{PANEL_POTENTIAL}" at {knob.value:.1%} or more'
    if knob.setting in ("distance_weight", "max_distance_km"):
        return f'"{PANEL_DISTANCE}" unticked'
    return _notebook(knob)


_PANEL_CONTROL = {"tolerance": PANEL_BALANCE_WORKLOAD, "potential_tolerance": PANEL_BALANCE_POTENTIAL,
                  "distance_weight": PANEL_DISTANCE, "max_distance_km": PANEL_DISTANCE}


def _drop_panel(knob: Knob) -> str:
    control = _PANEL_CONTROL.get(knob.setting)
    return f'untick "{control}"' if control else f"start the panel with {knob.setting}=None"


_RENDER = {"cli": _cli, "notebook": _notebook, "panel": _panel}
_DROP = {
    "cli": lambda knob: f"drop {_CLI_FLAGS.get(knob.setting, knob.setting)}",
    "notebook": lambda knob: f"set {_notebook(knob)}",
    "panel": _drop_panel,
}
