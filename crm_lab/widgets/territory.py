"""Territory tolerance, move budget and rep count over the MILP plan: before/after map, workload
balance and the solver's honest status. Each distinct setting is solved once."""

from __future__ import annotations

import html
import math
from dataclasses import replace

import ipywidgets as widgets

from crm_lab.territory.charts import balance_bars, before_after_maps
from crm_lab.territory.data import TerritoryData
from crm_lab.territory.model import TerritoryPlan, plan_territories
from crm_lab.territory.rules import TerritorySettings
from crm_lab.territory.solve import SolverOptions
from crm_lab.territory.whatif import with_rep_count
from crm_lab.widgets.panel import Memo, Panel, figure_png

NO_BUDGET = -1
EXTRA_REPS = 5


class TerritoryPanel(Panel):
    """Tolerance and rep count -> map, balance and status of the plan.

    Parameters
    ----------
    data : TerritoryData
        One company's accounts and reps (:func:`crm_lab.territory.company_inputs`).
    settings : TerritorySettings
        The rules the sliders start from (tolerance, move budget); the others stay as given.
        None for the defaults with potential left unbalanced, as in notebook 05: one large
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
        budget = self.settings.max_moves
        self.controls = {
            "tolerance": widgets.FloatSlider(value=self.settings.tolerance, min=0.02, max=0.5, step=0.01,
                                             description="tolerance ±", readout_format=".0%"),
            "max_moves": widgets.IntSlider(value=NO_BUDGET if budget is None else budget, min=NO_BUDGET,
                                           max=data.n_accounts, description="max moves"),
            "reps": widgets.IntSlider(value=data.n_reps, min=1, max=data.n_reps + EXTRA_REPS, description="reps"),
        }
        for control in self.controls.values():
            control.continuous_update = False
        self.describe = widgets.HTML()
        self.describe.add_class("crm-lab-headline")
        self.maps = widgets.Image(format="png")
        self.balance = widgets.Image(format="png")
        self.assemble(self.describe, self.maps, self.balance)
        self.observe(tuple(self.controls), self.refresh)
        self.refresh()

    def plan(self) -> TerritoryPlan:
        """The plan at the sliders' values (solved once per distinct setting)."""
        tolerance = round(self.controls["tolerance"].value, 6)
        budget = self.controls["max_moves"].value
        reps = self.controls["reps"].value
        settings = replace(self.settings, tolerance=tolerance, max_moves=None if budget == NO_BUDGET else budget)

        def solve() -> TerritoryPlan:
            data = self.data if reps == self.data.n_reps else with_rep_count(self.data, reps)
            return plan_territories(data, settings, self.solver)

        return self.memo.get((tolerance, budget, reps), solve)

    def refresh(self) -> None:
        with self.working("solving the territory plan"):
            plan = self.plan()
            self.describe.value = f"<pre>{html.escape(plan.describe())}</pre>"
            self.maps.value = figure_png(before_after_maps(plan))
            self.balance.value = figure_png(balance_bars(plan, "workload"))
