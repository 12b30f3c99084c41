"""Input checks shared by the lead engines. Each failure raises
:class:`crm_lab.errors.InvalidArgument` naming the parameter and the bad value."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from crm_lab.errors import InvalidArgument


def _show(values: np.ndarray, limit: int = 5) -> str:
    shown = ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in values[:limit])
    return shown + (", ..." if len(values) > limit else "")


def scores_array(name: str, values: Any) -> np.ndarray:
    """A 1-D float64 array of finite values."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise InvalidArgument(f"{name} must be numbers, got {type(values).__name__}: {error}") from None
    if array.ndim != 1:
        raise InvalidArgument(f"{name} must be one-dimensional, got shape {array.shape}")
    if len(array) == 0:
        raise InvalidArgument(f"{name} is empty: there are no leads to sweep")
    bad = ~np.isfinite(array)
    if bad.any():
        where = np.flatnonzero(bad)
        raise InvalidArgument(
            f"{name} must be finite, got {bad.sum()} NaN or infinite value(s) at position(s) {_show(where)}; "
            "score those leads or leave them out"
        )
    return array


def outcomes_array(name: str, values: Any, length: int) -> np.ndarray:
    """A 1-D boolean array of the given length, from booleans or 0/1."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise InvalidArgument(f"{name} must be one-dimensional, got shape {array.shape}")
    if len(array) != length:
        raise InvalidArgument(f"{name} must have one value per lead ({length}), got {len(array)}")
    if array.dtype != np.bool_:
        if array.dtype.kind not in "iuf" or not np.isin(array, (0, 1)).all():
            odd = array[~np.isin(array, (0, 1))] if array.dtype.kind in "iuf" else array
            raise InvalidArgument(f"{name} must be booleans or 0/1, got {_show(np.asarray(odd))}")
        array = array.astype(bool)
    return array


def both_classes(name: str, outcomes: np.ndarray) -> None:
    positives = int(np.count_nonzero(outcomes))
    if positives == 0 or positives == len(outcomes):
        only = "converted" if positives else "not converted"
        raise InvalidArgument(
            f"{name} has one class only: all {len(outcomes)} lead(s) are {only}; precision, recall and a "
            "conversion model need both converted and not converted leads"
        )


def probabilities_array(name: str, values: Any, length: int) -> np.ndarray:
    array = scores_array(name, values)
    if len(array) != length:
        raise InvalidArgument(f"{name} must have one value per lead ({length}), got {len(array)}")
    outside = (array < 0) | (array > 1)
    if outside.any():
        raise InvalidArgument(f"{name} must lie in [0, 1], got {_show(array[outside])}")
    return array


def number(name: str, value: Any, *, minimum: float | None = 0.0, maximum: float | None = None,
           strict: bool = False, allow_none: bool = False) -> float | None:
    """A finite float within bounds (``strict``: above the minimum, not equal to it)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidArgument(f"{name} must be a number, got {value!r}")
    result = float(value)
    if not math.isfinite(result):
        raise InvalidArgument(f"{name} must be finite, got {value!r}")
    if minimum is not None and (result < minimum or (strict and result == minimum)):
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise InvalidArgument(f"{name} must be {bound}, got {value!r}")
    if maximum is not None and result > maximum:
        raise InvalidArgument(f"{name} must be <= {maximum:g}, got {value!r}")
    return result


def whole_number(name: str, value: Any, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidArgument(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InvalidArgument(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value
