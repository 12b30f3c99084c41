"""Scenario knobs over one company's Monte Carlo forecast: fan chart, quantiles and P(target).

Moving a knob simulates that one scenario (the baseline is simulated once); moving the target
only recounts P(target) on the trials already drawn. Scenarios share the baseline's random numbers,
so the difference on screen is the knob's, not noise."""

from __future__ import annotations

import html
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
import polars as pl

from crm_lab.forecast.charts import fan_chart
from crm_lab.forecast.inputs import ForecastInputs
from crm_lab.forecast.run import check_target, scenario_samples
from crm_lab.forecast.scenarios import Scenario
from crm_lab.tables import frame_html, money_label, money_text, percentage, whole_units
from crm_lab.widgets.panel import Memo, Panel, show_figure

KNOBS = ("win_rate", "deal_size", "slip_days", "new_pipeline")


@dataclass(frozen=True)
class Outcome:
    """The whole-window distribution of one scenario."""

    mean: float
    p10: float
    p50: float
    p90: float
    p_target: float | None

    @classmethod
    def of(cls, samples: np.ndarray, target: float | None) -> Outcome:
        totals = samples.sum(axis=1)
        p10, p50, p90 = np.quantile(totals, (0.1, 0.5, 0.9))
        p_target = None if target is None else float((totals >= target).mean())
        return cls(float(totals.mean()), float(p10), float(p50), float(p90), p_target)


def p50_text(value: float, currency: str | None = None) -> str:
    """The headline the dashboard shows (and a browser test waits for)."""
    return f"Scenario P50: {money_text(value, currency)}"


class ForecastPanel(Panel):
    """Scenario knobs -> fan chart, P10/P50/P90 and P(target), beside the baseline.

    Parameters
    ----------
    case : ForecastInputs
        One company's prepared inputs (:func:`crm_lab.forecast.prepare`).
    trials, seed : int
        Monte Carlo trials per scenario and the seed they share.
    target : float, optional
        The window's bookings target; None for the reps' prorated quota (or none at all).
    **knobs
        Starting values of ``win_rate``, ``deal_size``, ``slip_days``, ``new_pipeline``.
    """

    title = "Forecast: what if..."

    def __init__(self, case: ForecastInputs, *, trials: int = 2000, seed: int = 0, target: float | None = None,
                 **knobs: float):
        super().__init__()
        unknown = set(knobs) - set(KNOBS)
        if unknown:
            raise TypeError(f"unknown knob(s): {', '.join(sorted(unknown))}; expected {', '.join(KNOBS)}")
        self.case, self.trials, self.seed = case, trials, seed
        start = Scenario(name="scenario", **knobs)
        target = check_target(case.quota() if target is None else target)
        self.memo = Memo()
        self.controls = {
            "win_rate": widgets.FloatSlider(value=start.win_rate, min=0.5, max=1.5, step=0.05, description="win rate ×"),
            "deal_size": widgets.FloatSlider(value=start.deal_size, min=0.5, max=1.5, step=0.05, description="deal size ×"),
            "slip_days": widgets.IntSlider(value=int(start.slip_days), min=-60, max=90, step=1, description="slip days"),
            "new_pipeline": widgets.FloatSlider(value=start.new_pipeline, min=0.0, max=2.0, step=0.1,
                                                description="new pipeline ×"),
            "target": widgets.FloatText(value=round(target or 0.0), description=money_label("target", case.currency)),
        }
        for control in self.controls.values():
            control.continuous_update = False
        self.headline = widgets.HTML()
        self.headline.add_class("crm-lab-headline")
        self.table = widgets.HTML()
        self.chart = widgets.Image(format="png")
        self.assemble(self.headline, self.table, self.chart)
        self.observe((*KNOBS, "target"), self.refresh)
        self.refresh()

    @property
    def scenario(self) -> Scenario:
        return Scenario(name="scenario", **{name: self.controls[name].value for name in KNOBS})

    @property
    def target(self) -> float | None:
        value = self.controls["target"].value
        return value if value > 0 else None

    def samples(self, scenario: Scenario) -> np.ndarray:
        key = tuple(getattr(scenario, name) for name in KNOBS)
        return self.memo.get(key, lambda: scenario_samples(self.case, scenario, trials=self.trials, seed=self.seed))

    def outcomes(self) -> tuple[Outcome, Outcome]:
        """(baseline, scenario) at the current knobs and target."""
        return (Outcome.of(self.samples(Scenario()), self.target),
                Outcome.of(self.samples(self.scenario), self.target))

    def refresh(self) -> None:
        with self.working(f"simulating {self.trials:,} trials"):
            baseline, scenario = self.outcomes()
            target, currency = self.target, self.case.currency
            self.headline.value = f'<p class="crm-lab-p50"><b>{html.escape(p50_text(scenario.p50, currency))}</b></p>'
            columns = {"": ["baseline", "scenario"]}
            formats = {}
            for name, field in (("mean", "mean"), ("P10", "p10"), ("P50", "p50"), ("P90", "p90")):
                label = money_label(name, currency)
                columns[label] = [getattr(baseline, field), getattr(scenario, field)]
                formats[label] = whole_units
            if target is not None:
                chance = f"P(≥ {money_text(target, currency)})"
                columns[chance] = [baseline.p_target, scenario.p_target]
                formats[chance] = percentage
            self.table.value = frame_html(pl.DataFrame(columns), formats)
            window = self.case.window
            title = f"{self.case.company_id}: cumulative bookings{f' ({currency})' if currency else ''} in {window.label}"
            show_figure(self.chart, fan_chart(self.samples(self.scenario), window, target=target, title=title,
                                              currency=currency))
