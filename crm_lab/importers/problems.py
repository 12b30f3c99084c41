"""Problems that refuse an import as a whole, reported together.

An export whose stage names, lead statuses, activity types, date formats or currencies need a
mapping (or a rates file) cannot be imported until the user adds it: one refusal that lists
every such problem lets them fix all of them at once, where a refusal at the first would take
as many runs as there are problems. Inside :func:`collecting`, :func:`refuse` notes a problem and
lets the reader go on (with the name or column it could not read left empty); outside it
raises at once, as the readers that judge one problem at a time (a ``--mapping`` export) do.

Examples
--------
>>> with collecting() as problems:
...     refuse("first")
...     refuse("second")
>>> print(combined(problems))
the export cannot be imported as it is: 2 problems, each below; nothing was written
<BLANKLINE>
first
<BLANKLINE>
second
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from crm_lab.errors import LoadError

_problems: ContextVar[list[str] | None] = ContextVar("import_problems", default=None)


@contextmanager
def collecting() -> Iterator[list[str]]:
    """Collect the problems :func:`refuse` meets inside the block (the list it yields)."""
    problems: list[str] = []
    token = _problems.set(problems)
    try:
        yield problems
    finally:
        _problems.reset(token)


def refuse(message: str) -> None:
    """Note a problem while collecting; else raise it."""
    problems = _problems.get()
    if problems is None:
        raise LoadError(message)
    if message not in problems:
        problems.append(message)


def pending() -> bool:
    """Whether a problem has been noted (the import will be refused)."""
    return bool(_problems.get())


def combined(problems: list[str]) -> str:
    if len(problems) == 1:
        return problems[0]
    head = f"the export cannot be imported as it is: {len(problems)} problems, each below; nothing was written"
    return "\n\n".join([head, *problems])


def raise_collected(problems: list[str]) -> None:
    if problems:
        raise LoadError(combined(problems))
