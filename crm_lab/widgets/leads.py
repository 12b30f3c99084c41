"""A cut-off slider over a finished lead sweep: routed volume, precision/recall, workload and
profit at any cut-off, and the best cut-off under any SDR capacity.

The sweep already holds every distinct cut-off, so moving the slider is a lookup; moving the
capacity re-marks which cut-offs fit and picks the best again, without refitting the model or
redrawing the bootstrap (its bands stay those of the study's capacity)."""

from __future__ import annotations

import math

import ipywidgets as widgets
import polars as pl

from crm_lab.leads.analysis import LeadSweepResult
from crm_lab.leads.charts import threshold_chart
from crm_lab.leads.thresholds import CutoffChoice, best_cutoff, format_objective
from crm_lab.errors import InvalidArgument
from crm_lab.tables import decimals, frame_html, money_label, money_text, percentage, whole_units
from crm_lab.widgets.panel import Memo, Panel, show_figure

ROW_COLUMNS = ("routed", "tp", "precision", "recall", "workload_hours", "within_capacity", "cost", "revenue", "profit")
MONEY_COLUMNS = ("cost", "revenue", "profit")
ROW_FORMATS = {"precision": percentage, "recall": percentage, "workload_hours": decimals(1)}


def home_currency(db_path, company: str) -> str | None:
    """The company's home currency (``companies.home_currency``), None when the data names none."""
    from crm_lab.workbench import open_workbench

    with open_workbench(db_path, company) as wb:
        rows = wb.con.sql("SELECT home_currency FROM companies WHERE company_id = ?", params=[company]).fetchall()
    return rows[0][0] if rows else None


def routed_at(table: pl.DataFrame, cutoff: float) -> pl.DataFrame:
    """The sweep row that applies at ``cutoff``: leads scoring ``>= cutoff`` are those of the
    lowest distinct score still ``>= cutoff`` (empty when the cut-off is above every score)."""
    return table.filter(pl.col("threshold") >= cutoff).tail(1)


def routed_text(routed: int, leads: int) -> str:
    """The headline the dashboard shows (and a browser test waits for)."""
    return f"Routed: {routed:,} of {leads:,} leads"


class ThresholdPanel(Panel):
    """Threshold slider -> linked precision/recall/profit/workload curves and routed volume.

    Parameters
    ----------
    result : LeadSweepResult
        One company's study (:func:`crm_lab.leads.analyse_leads`).
    cutoff : float, optional
        Starting cut-off; None for the study's best.
    currency : str, optional
        The company's currency (:func:`home_currency`), shown with cost, revenue and profit.

    SDR hours mean what ``crm-lab sweep-leads --capacity-hours`` means: 0 routes nobody. "no limit"
    (ticked when the study has no capacity) lifts the limit; negative hours are refused.
    """

    title = "Lead thresholds: who do the SDRs work?"

    def __init__(self, result: LeadSweepResult, *, cutoff: float | None = None, currency: str | None = None):
        super().__init__()
        self.result, self.currency = result, currency
        self.memo = Memo()
        table = result.table
        scores = table["threshold"]
        low, high = float(scores.min()), float(scores.max())
        chosen = result.choice.threshold
        start = cutoff if cutoff is not None else (chosen if math.isfinite(chosen) else high)
        capacity = result.settings.capacity_hours
        self.controls = {
            "cutoff": widgets.FloatSlider(value=start, min=math.floor(low * 1000) / 1000, max=math.ceil(high * 1000) / 1000,
                                          step=0.001, readout_format=".3f", description="cut-off",
                                          layout=widgets.Layout(width="32em")),
            "capacity_hours": widgets.FloatText(value=capacity if capacity is not None else 0.0,
                                                description="SDR hours", step=10.0),
            "no_limit": widgets.Checkbox(value=capacity is None, description="no limit", indent=False),
        }
        for control in self.controls.values():
            control.continuous_update = False
        self.headline = widgets.HTML()
        self.headline.add_class("crm-lab-headline")
        self.best = widgets.HTML()
        self.row = widgets.HTML()
        self.chart = widgets.Image(format="png")
        self.assemble(self.headline, self.row, self.best, self.chart)
        self.observe(("cutoff", "capacity_hours", "no_limit"), self.refresh)
        self.refresh()

    @property
    def capacity_hours(self) -> float | None:
        """None when "no limit" is ticked; else the SDR hours, 0 included (no lead fits)."""
        if self.controls["no_limit"].value:
            return None
        value = self.controls["capacity_hours"].value
        if value < 0:
            raise InvalidArgument(f"SDR hours must be 0 or more (0 routes nobody), got {value:g}; "
                                  "tick \"no limit\" for no capacity limit")
        return float(value)

    def table(self) -> tuple[pl.DataFrame, CutoffChoice]:
        """The sweep with ``within_capacity`` and ``is_chosen`` for the current capacity."""
        capacity = self.capacity_hours
        if capacity == self.result.settings.capacity_hours:
            return self.result.table, self.result.choice

        def rechoose() -> tuple[pl.DataFrame, CutoffChoice]:
            fits = pl.lit(True) if capacity is None else pl.col("workload_hours") <= capacity
            table = self.result.table.with_columns(within_capacity=fits)
            choice = best_cutoff(table, self.result.settings.objective, beta=self.result.settings.beta,
                                 capacity_hours=capacity)
            return table.with_columns(is_chosen=pl.col("threshold") == choice.threshold), choice

        return self.memo.get(capacity, rechoose)

    def refresh(self) -> None:
        with self.working("updating the cut-off"):
            table, choice = self.table()
            cutoff = self.controls["cutoff"].value
            row = routed_at(table, cutoff)
            routed = int(row["routed"][0]) if row.height else 0
            self.headline.value = f'<p class="crm-lab-routed"><b>{routed_text(routed, self.result.test.height)}</b></p>'
            shown = row.select(ROW_COLUMNS).rename({c: money_label(c, self.currency) for c in MONEY_COLUMNS})
            formats = {**ROW_FORMATS, **{money_label(c, self.currency): whole_units for c in MONEY_COLUMNS}}
            self.row.value = frame_html(shown, formats) if row.height else "<p>nobody is routed</p>"
            objective = self.result.settings.objective
            self.best.value = (
                f"<p>Best for {objective} within {self._capacity_label()}: "
                + (f"route nobody ({choice.nobody_reason})" if choice.routes_nobody else
                   f"cut-off {choice.threshold:.4g}, {choice.routed:,} leads, {objective} "
                   f"{self._objective_text(choice.value)}")
                + "</p>"
            )
            show_figure(self.chart, threshold_chart(table, capacity_hours=self.capacity_hours, marked=cutoff,
                                                    title=f"{self.result.company_id}: cut-off {cutoff:.3f}"))

    def _objective_text(self, value: float) -> str:
        objective = self.result.settings.objective
        return money_text(value, self.currency) if objective == "profit" else format_objective(objective, value)

    def _capacity_label(self) -> str:
        capacity = self.capacity_hours
        return "no capacity limit" if capacity is None else f"{capacity:,.0f} SDR hours"
