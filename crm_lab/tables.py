"""Result frames as tables a manager reads: money in whole units with thousands separators,
probabilities as percentages, other numbers to a sensible precision, no dtype row, long frames
cut to their head and tail, and an empty frame saying "no rows" under its header.

Notebooks call ``display(table(frame, money=[...], percent=[...]))``; the frame itself is
unchanged, so the numbers stay exact for anyone who reads them from the frame or from SQL.
The same formatters draw the widget panels' tables (:mod:`crm_lab.widgets`)."""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import polars as pl

Format = Callable[[Any], str]
MAX_ROWS = 20


def whole_units(value: float) -> str:
    """Money as analysts read it: whole units with thousands separators."""
    return f"{value:,.0f}"


def percentage(value: float) -> str:
    """A probability or share as a percentage with one decimal."""
    return f"{value:.1%}"


def number(value: Any) -> str:
    """Any other number: integers with thousands separators; floats to two decimals from 1 up
    (and below 1 when that is exact), whole units from 1,000 up, otherwise three significant
    digits below 1 (a coefficient of 0.004998 is not 0.00)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):  # DuckDB's sums and counts of DECIMAL columns
        value = int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, int):
        return f"{value:,}"
    if not isinstance(value, float):
        return str(value)
    magnitude = abs(value)
    if not math.isfinite(value) or magnitude == 0:
        return f"{value:g}"
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 1 or value == round(value, 2):  # 0.8 beside 1.20 reads as 0.80
        return f"{value:,.2f}"
    return f"{value:.3g}"


def money_text(value: float, currency: str | None) -> str:
    """An amount in whole units, followed by its currency when the data names one."""
    return f"{whole_units(value)} {currency}" if currency else whole_units(value)


def money_label(name: str, currency: str | None) -> str:
    """A column or control label for amounts: ``P50 (USD)``; the bare name without a currency."""
    return f"{name} ({currency})" if currency else name


def decimals(places: int) -> Format:
    """A fixed number of decimals with thousands separators."""
    return lambda value: f"{value:,.{places}f}"


def frame_html(frame: pl.DataFrame, formats: Mapping[str, Format] | None = None, *, gap_after: int | None = None) -> str:
    """A small frame as an HTML table, each column through its formatter (:func:`number` by
    default); numbers are right-aligned, text left. Empty cells for nulls. ``gap_after``: a row
    of ellipses after that many rows (where a long frame was cut)."""
    formats = formats or {}
    # Numbers right, text left, whatever the notebook's or report's stylesheet does by default.
    align = {name: f' style="text-align:{"right" if dtype.is_numeric() else "left"}"' for name, dtype in frame.schema.items()}
    head = "".join(f"<th{align[name]}>{html.escape(name)}</th>" for name in frame.columns)
    rows = []
    for row in frame.iter_rows():
        if len(rows) == gap_after:
            rows.append("<tr>" + "<td>…</td>" * frame.width + "</tr>")
        cells = (
            f"<td{align[name]}>{html.escape(formats.get(name, number)(value)) if value is not None else ''}</td>"
            for name, value in zip(frame.columns, row)
        )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="crm-lab-table"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


@dataclass(frozen=True)
class Table:
    """A frame with its formats, shown as HTML in a notebook or report and as text elsewhere."""

    frame: pl.DataFrame
    formats: Mapping[str, Format]
    max_rows: int = MAX_ROWS

    def shown(self) -> tuple[pl.DataFrame, pl.DataFrame | None]:
        """The rows shown: all, or the head and the tail of a frame longer than ``max_rows``."""
        if self.frame.height <= self.max_rows:
            return self.frame, None
        head = self.max_rows // 2
        return self.frame.head(head), self.frame.tail(self.max_rows - head)

    def _repr_html_(self) -> str:
        head, tail = self.shown()
        if self.frame.height == 0:  # the header alone would read as a table that failed to fill
            return f'{frame_html(head, self.formats)}<p class="crm-lab-table-note">no rows</p>'
        if tail is None:
            return frame_html(head, self.formats)
        table = frame_html(pl.concat([head, tail]), self.formats, gap_after=head.height)
        return f'{table}<p class="crm-lab-table-note">{self.max_rows} of {self.frame.height:,} rows shown</p>'

    def __repr__(self) -> str:
        head, tail = self.shown()
        cells = [list(self.frame.columns)]
        for row in (head if tail is None else pl.concat([head, tail])).iter_rows():
            if tail is not None and len(cells) - 1 == head.height:
                cells.append(["…"] * self.frame.width)
            cells.append([self.formats.get(n, number)(v) if v is not None else "" for n, v in zip(self.frame.columns, row)])
        widths = [max(len(r[i]) for r in cells) for i in range(self.frame.width)]
        text = "\n".join("  ".join(cell.rjust(w) for cell, w in zip(r, widths)) for r in cells)
        return text + "\n(no rows)" if self.frame.height == 0 else text


def table(
    frame: pl.DataFrame,
    *,
    money: Iterable[str] = (),
    percent: Iterable[str] = (),
    formats: Mapping[str, Format] | None = None,
    max_rows: int = MAX_ROWS,
) -> Table:
    """``frame`` to display as a report table.

    Parameters
    ----------
    money : column names shown in whole units with thousands separators.
    percent : column names (probabilities, shares in 0..1) shown as percentages.
    formats : any other column's formatter, e.g. ``{"hours": decimals(1)}``.
    max_rows : a longer frame shows its first and last rows around a gap.

    Every other column goes through :func:`number`. Names that are not columns are an error, so
    a renamed column cannot silently lose its format.
    """
    chosen: dict[str, Format] = {name: whole_units for name in money}
    chosen.update({name: percentage for name in percent})
    chosen.update(formats or {})
    unknown = sorted(set(chosen) - set(frame.columns))
    if unknown:
        raise KeyError(f"table(): no column {', '.join(map(repr, unknown))} in {frame.columns}")
    return Table(frame, chosen, max_rows)

