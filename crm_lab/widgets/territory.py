"""Territory bands, distance, move budget and rep count over the MILP plan: before/after map,
workload balance and the solver's honest status. Each distinct setting is solved once.

When a rule's inputs are missing (an imported CRM export often has no workload, potential or rep
homes), the panel lists the rules as a list, naming the control that turns each one off; a
company without accounts gets one line, and its other panels on the page still work."""

from __future__ import annotations

import html
import math
from dataclasses import replace

import ipywidgets as widgets

from crm_lab.territory.advice import (PANEL_BALANCE_POTENTIAL, PANEL_BALANCE_WORKLOAD, PANEL_DISTANCE,
                                      PANEL_POTENTIAL, PANEL_TOLERANCE)
from crm_lab.territory.charts import balance_bars, before_after_maps
from crm_lab.territory.data import TerritoryData
from crm_lab.territory.inputs import MissingInputs, distance_used
from crm_lab.territory.model import TerritoryPlan, plan_territories
from crm_lab.territory.report import no_accounts_line
from crm_lab.territory.rules import TerritorySettings
from crm_lab.territory.solve import SolverOptions
from crm_lab.territory.whatif import with_rep_count
from crm_lab.widgets.panel import Memo, Panel, show_figure

NO_BUDGET = -1
EXTRA_REPS = 5
MAX_BAND = 2.0  # the band sliders reach ±200%; beyond, untick the balance box
DEFAULT_BAND = 0.15  # where a band slider starts when the settings leave that quantity unbalanced


def missing_inputs_html(error: MissingInputs) -> str:
    """The refusal as the panel shows it: its header, then one list item per rule, naming the
    panel's controls."""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in error.lines("panel"))
    return f'<div class="crm-lab-refusal"><p>{html.escape(error.header)}</p><ul>{items}</ul></div>'


class TerritoryPanel(Panel):
    """Bands, distance, move budget and rep count -> map, balance and status of the plan.

    Parameters
    ----------
    data : TerritoryData
        One company's accounts and reps (:func:`crm_lab.territory.company_inputs`); with no
        accounts the panel is one line saying so.
    settings : TerritorySettings
        The rules the controls start from (bands, distance, move budget); the others stay as
        given. None for the defaults with potential left unbalanced, as in notebook 05: one large
        account alone can exceed a potential band and make every plan infeasible.
    solver : SolverOptions
        Time limit and gap per solve: keep them short, a user is waiting.
    """

    title = "Territories: balanced, compact, few moves"

    def __init__(self, data: TerritoryData, settings: TerritorySettings | None = None,
                 solver: SolverOptions | None = None):
        super().__init__()
        self.data = data
        self.settings = settings or TerritorySettings(potential_tolerance=math.inf)
        self.solver = solver or SolverOptions(time_limit=5.0, gap_rel=0.02)
        self.memo = Memo()
        self.describe = widgets.HTML()
        self.describe.add_class("crm-lab-headline")
        self.maps = widgets.Image(format="png")
        self.balance = widgets.Image(format="png")
        self._show_charts(False)
        if data.n_accounts == 0:
            # Nothing to plan: no controls, one line (the page's other panels do not depend on it).
            self.describe.value = f"<p>{html.escape(no_accounts_line(data.company_id))}</p>"
            self.assemble(self.describe)
            return
        tolerance = self.settings.tolerance
        potential = self.settings.effective_potential_tolerance
        budget = self.settings.max_moves

        def band_slider(value: float, description: str) -> widgets.FloatSlider:
            start = value if math.isfinite(value) else DEFAULT_BAND
            return widgets.FloatSlider(value=min(start, MAX_BAND), min=0.02, max=MAX_BAND, step=0.01,
                                       description=description, readout_format=".0%")

        self.controls = {
            "tolerance": band_slider(tolerance, PANEL_TOLERANCE),
            "balance_workload": widgets.Checkbox(value=math.isfinite(tolerance), description=PANEL_BALANCE_WORKLOAD,
                                                 indent=False),
            "potential": band_slider(potential if math.isfinite(potential) else tolerance, PANEL_POTENTIAL),
            "balance_potential": widgets.Checkbox(value=math.isfinite(potential), description=PANEL_BALANCE_POTENTIAL,
                                                  indent=False),
            "distance": widgets.Checkbox(value=distance_used(self.settings), description=PANEL_DISTANCE, indent=False),
            "max_moves": widgets.IntSlider(value=NO_BUDGET if budget is None else budget, min=NO_BUDGET,
                                           max=data.n_accounts, description="max moves"),
            "reps": widgets.IntSlider(value=data.n_reps, min=1, max=data.n_reps + EXTRA_REPS, description="reps"),
        }
        for control in self.controls.values():
            control.continuous_update = False
        self.assemble(self.describe, self.maps, self.balance)
        self.observe(tuple(self.controls), self.refresh)
        self.refresh()

    def _show_charts(self, show: bool) -> None:
        """Charts only with a plan: an empty image would show as a broken-image icon."""
        for image in (self.maps, self.balance):
            image.layout.display = None if show else "none"
            if not show:
                image.value = b""

    def current_settings(self) -> TerritorySettings:
        """The settings at the controls' values."""
        c = {name: control.value for name, control in self.controls.items()}
        budget = c["max_moves"]
        distance = {"distance_weight": self.settings.distance_weight or 1.0,
                    "max_distance_km": self.settings.max_distance_km} if c["distance"] else \
            {"distance_weight": 0.0, "max_distance_km": None}
        return replace(
            self.settings,
            tolerance=round(c["tolerance"], 6) if c["balance_workload"] else math.inf,
            potential_tolerance=round(c["potential"], 6) if c["balance_potential"] else math.inf,
            max_moves=None if budget == NO_BUDGET else budget,
            **distance,
        )

    def plan(self) -> TerritoryPlan:
        """The plan at the controls' values (solved once per distinct setting); raises
        :class:`MissingInputs` when a rule in use lacks its inputs."""
        settings = self.current_settings()
        reps = self.controls["reps"].value

        def solve() -> TerritoryPlan:
            data = self.data if reps == self.data.n_reps else with_rep_count(self.data, reps)
            return plan_territories(data, settings, self.solver)

        return self.memo.get((settings, reps), solve)

    def refresh(self) -> None:
        with self.working("solving the territory plan"):
            try:
                plan = self.plan()
            except MissingInputs as error:
                self.describe.value = missing_inputs_html(error)
                self._show_charts(False)
                return
            self.describe.value = f"<pre>{html.escape(plan.describe('panel'))}</pre>"
            if plan.has_plan:
                show_figure(self.maps, before_after_maps(plan))
                show_figure(self.balance, balance_bars(plan, "workload"))
            self._show_charts(plan.has_plan)
