"""Great-circle distances between accounts and reps."""

from __future__ import annotations

import numpy as np

EARTH_RADIUS_KM = 6371.0088  # mean radius (IUGG)


def haversine_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance in km between points given in degrees; broadcasts like numpy.

    Examples
    --------
    >>> round(float(haversine_km(40.71, -74.01, 38.91, -77.04)))  # New York to Washington
    327
    """
    lat1, lon1, lat2, lon2 = (np.radians(np.asarray(v, dtype=float)) for v in (lat1, lon1, lat2, lon2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def distance_matrix_km(account_lat, account_lon, rep_lat, rep_lon) -> np.ndarray:
    """Accounts x reps distances in km; NaN where either side has no location."""
    return haversine_km(
        np.asarray(account_lat, dtype=float)[:, None], np.asarray(account_lon, dtype=float)[:, None],
        np.asarray(rep_lat, dtype=float)[None, :], np.asarray(rep_lon, dtype=float)[None, :],
    )
