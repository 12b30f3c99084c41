"""What every what-if panel shares: a status line with a busy state, controls that lock while the
kernel works, charts as PNG images, and a memo so a knob moved back costs nothing.

Charts go into ``ipywidgets.Image`` and tables into ``ipywidgets.HTML`` rather than an ``Output``
widget: capturing into an ``Output`` hung kernels under papermill now and then, and an image or a
string is also what a browser test can wait for."""

from __future__ import annotations

import datetime as dt
import html
import io
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt

from crm_lab.errors import CrmLabError

MEMO_SIZE = 32


# A chart is drawn at SHOWN_DPI's size but rendered with PIXEL_RATIO times the pixels, so that it
# stays sharp on a high-density screen (the browser scales the image down to its width).
SHOWN_DPI = 90
PIXEL_RATIO = 2


def figure_png(fig) -> bytes:
    """A matplotlib figure as PNG bytes at :data:`PIXEL_RATIO` times its shown size; the figure
    is closed so the notebook does not show it twice."""
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=SHOWN_DPI * PIXEL_RATIO, bbox_inches="tight")
    finally:
        plt.close(fig)
    return buffer.getvalue()


def show_figure(image: widgets.Image, fig) -> None:
    """Put ``fig`` into ``image``, sized to show its pixels at :data:`PIXEL_RATIO` per CSS pixel."""
    png = figure_png(fig)
    width = int.from_bytes(png[16:20], "big")  # the IHDR chunk's width, right after the signature
    image.value = png
    image.width = str(width // PIXEL_RATIO)


def what_if_as_of(wb, as_of=None) -> dt.datetime:
    """The instant the what-if notebook stands at: ``as_of`` read by the database, or the first of
    the month three quarters through the event log (``crm-lab dashboard`` checks the same one)."""
    if as_of is not None:
        return wb.instant(as_of)
    first, last = wb.event_span()
    middle = first + (last - first) * 3 / 4
    return dt.datetime(middle.year, middle.month, 1, tzinfo=dt.timezone.utc)


def error_html(error: CrmLabError) -> str:
    """A refused input as the page shows it: the message, in the panels' error style."""
    return f'<span class="crm-lab-error" style="color:#b00020">{html.escape(str(error))}</span>'


@contextmanager
def shows_errors() -> Iterator[None]:
    """Show a crm_lab error raised in the block as its message in the output, not a traceback:
    Voilà replaces a failed cell with a generic "error when executing cell" and hides the reason."""
    try:
        yield
    except CrmLabError as error:
        from IPython.display import HTML, display

        display(HTML(f'<p class="crm-lab-cell-error">{error_html(error)}</p>'))


class Memo:
    """The last few results by key: moving a knob back to a value already seen recomputes nothing."""

    def __init__(self, size: int = MEMO_SIZE):
        self.size = size
        self.computed = 0
        self._values: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        if key in self._values:
            self._values.move_to_end(key)
            return self._values[key]
        value = compute()
        self.computed += 1
        self._values[key] = value
        if len(self._values) > self.size:
            self._values.popitem(last=False)
        return value


class Panel:
    """A titled box of controls over results. Subclasses build ``self.controls`` and the result
    widgets, call :meth:`assemble`, and refresh inside :meth:`working`."""

    title = ""

    def __init__(self) -> None:
        self.status = widgets.HTML(layout=widgets.Layout(min_height="1.6em"))
        self.controls: dict[str, widgets.Widget] = {}
        self.widget: widgets.Box | None = None

    def assemble(self, *results: widgets.Widget) -> widgets.Box:
        header = widgets.HTML(f"<h3>{html.escape(self.title)}</h3>") if self.title else widgets.HTML()
        for control in self.controls.values():
            control.style.description_width = "initial"
        knobs = widgets.HBox(list(self.controls.values()), layout=widgets.Layout(flex_flow="row wrap"))
        self.widget = widgets.VBox([header, knobs, self.status, *results])
        self.widget.add_class("crm-lab-panel")
        return self.widget

    def observe(self, names: tuple[str, ...], handler: Callable[[], None]) -> None:
        """Call ``handler`` (no arguments) when any of the named controls changes value."""
        for name in names:
            self.controls[name].observe(lambda _change: handler(), names="value")

    @contextmanager
    def working(self, what: str) -> Iterator[None]:
        """Busy while the block runs: the status says so and the controls lock, so a second move
        cannot queue behind a long solve. A problem a user can fix is shown in the status line and
        the last good result stays on screen."""
        self.status.value = f'<span class="crm-lab-busy">⏳ {html.escape(what)}…</span>'
        for control in self.controls.values():
            control.disabled = True
        started = time.perf_counter()
        try:
            yield
        except CrmLabError as error:
            self.status.value = error_html(error)
        else:
            self.status.value = f'<span class="crm-lab-ready">ready ({time.perf_counter() - started:.1f} s)</span>'
        finally:
            for control in self.controls.values():
                control.disabled = False

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
