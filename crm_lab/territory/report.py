"""What notebook 05 needs beyond the model: its parameters read as settings, and what stops it
before planning (no accounts, or missing inputs), worded in its parameters' names."""

from __future__ import annotations

import math

from crm_lab.territory.data import TerritoryData
from crm_lab.territory.inputs import MissingInputs
from crm_lab.territory.rules import TerritorySettings, derive_rules

SET_PARAMETERS = ("set the parameters named above (papermill -p NAME VALUE, or a batch spec's parameters) "
                  "to plan without those rules; {skipped}")
SKIPPED = "the plan and its charts are skipped"


def no_accounts_line(company: str | None) -> str:
    """The one line shown instead of a plan for a company without accounts."""
    return f"no accounts to plan for company {company}"


def band(value: float | None) -> float:
    """A notebook band parameter: None or inf leaves the quantity unbalanced."""
    return math.inf if value is None else float(value)


def notebook_settings(*, tolerance: float | None, potential_band: float | None, max_moves: int | None = None,
                      move_weight: float = 50.0, radius_km: float | None = None,
                      distance_weight: float = 1.0) -> TerritorySettings:
    """Notebook 05's parameters as settings: ``tolerance`` and ``potential_band`` None (or inf)
    leave workload and potential unbalanced, ``distance_weight`` 0 turns compactness off.

    Examples
    --------
    >>> print(notebook_settings(tolerance=None, potential_band=None, distance_weight=0).describe())
    workload unbalanced, potential unbalanced; any number of moves, each costing 50 km (distance weighted 0)
    """
    return TerritorySettings(tolerance=band(tolerance), potential_tolerance=band(potential_band),
                             max_moves=max_moves, move_weight=move_weight, max_distance_km=radius_km,
                             distance_weight=distance_weight)


def refusal(data: TerritoryData, settings: TerritorySettings, surface: str = "notebook",
            skipped: str = SKIPPED) -> str | None:
    """Why no plan can be made for ``data`` under ``settings``, worded for ``surface``: no accounts
    (one line), or the rules whose inputs are missing (a list; in a notebook, then how to set
    the parameters and what is ``skipped``); None when planning can go ahead."""
    if data.n_accounts == 0:
        return no_accounts_line(data.company_id)
    try:
        derive_rules(data, settings)
    except MissingInputs as error:
        text = error.render(surface)
        return f"{text}\n{SET_PARAMETERS.format(skipped=skipped)}" if surface == "notebook" else text
    return None
