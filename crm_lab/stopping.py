"""Stopping a long command cleanly on SIGINT (Ctrl-C), SIGTERM or SIGHUP.

A command that starts processes of its own (``crm-lab batch``'s workers and their kernels) must
not die at once on a stop signal: it records the signal (:func:`stop_signals`), polls for it,
stops what it started, writes what it knows, and then raises :class:`Stopped`, which ends the
process with status 128 + signal and no traceback (it is a ``SystemExit``).

Importing polars replaces Python's SIGINT handler with one flagged ``SA_RESTART``: blocking waits
(``Popen.wait()``, ``concurrent.futures``) are then never woken by Ctrl-C, which Python only acts
on ~seconds later, as a ``KeyboardInterrupt`` at an arbitrary point. :func:`stop_signals` imports
polars first and installs its handlers after it."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(SystemExit):
    """A command stopped on a signal after cleaning up. Uncaught, the process exits with status
    128 + ``signum`` and prints nothing (the command prints ``message``, one line, itself)."""

    def __init__(self, signum: int, message: str):
        super().__init__(128 + signum)
        self.signum = signum
        self.message = message

    def __str__(self) -> str:
        return self.message


class StopRequest:
    """The first stop signal received inside :func:`stop_signals` (``signum``, ``name``), or None."""

    def __init__(self) -> None:
        self.signum: int | None = None

    @property
    def name(self) -> str | None:
        return signal.Signals(self.signum).name if self.signum is not None else None

    def __bool__(self) -> bool:
        return self.signum is not None

    def _record(self, signum: int, _frame) -> None:
        if self.signum is None:  # a second signal while stopping changes nothing
            self.signum = signum


@contextmanager
def stop_signals() -> Iterator[StopRequest]:
    """Within the block, SIGINT, SIGTERM and SIGHUP are recorded in the yielded
    :class:`StopRequest` instead of interrupting or ending the process: the caller polls it (with
    waits of bounded length) and stops what it started. The previous handlers come back on exit.
    Outside the main thread (where Python cannot take signals) nothing is installed."""
    import polars  # noqa: F401  (installs its own SIGINT handler on import: ours must come after it)

    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {signum: signal.signal(signum, request._record) for signum in STOP_SIGNALS}
    try:
        yield request
    finally:
        for signum, handler in previous.items():
            if handler is not None:  # None: a handler not installed from Python, which cannot be put back
                signal.signal(signum, handler)
