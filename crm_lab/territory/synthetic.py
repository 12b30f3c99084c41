"""Random territory inputs of any size (for tests, benchmarks and demos), shaped like a real
book of business: accounts clustered around cities, reps living near them, workloads and
potential skewed, a current assignment that is mostly local but unbalanced."""

from __future__ import annotations

import numpy as np

from crm_lab.territory.data import TerritoryData


def random_territory(
    n_accounts: int,
    n_reps: int,
    *,
    seed: int = 0,
    utilisation: float = 0.75,
    spread_km: float = 150.0,
    cities: int | None = None,
) -> TerritoryData:
    """A synthetic company.

    Parameters
    ----------
    n_accounts, n_reps : int
    seed : int
    utilisation : float
        Total workload as a share of total capacity.
    spread_km : float
        How far accounts scatter around their city (standard deviation).
    cities : int, optional
        Number of account clusters (default: one per 5 reps, at least 1).

    Examples
    --------
    >>> data = random_territory(200, 10, seed=1)
    >>> data.n_accounts, data.n_reps, round(float(data.account_workload().sum() / data.capacity.sum()), 2)
    (200, 10, 0.75)
    """
    rng = np.random.default_rng(seed)
    cities = cities or max(1, n_reps // 5)
    # Cities in a box the size of the continental US.
    city_lat = rng.uniform(30, 47, cities)
    city_lon = rng.uniform(-120, -75, cities)
    weights = rng.dirichlet(np.full(cities, 2.0))
    account_city = rng.choice(cities, size=n_accounts, p=weights)
    degrees = spread_km / 111.0
    lat = city_lat[account_city] + rng.normal(0, degrees, n_accounts)
    lon = city_lon[account_city] + rng.normal(0, degrees, n_accounts) / np.cos(np.radians(city_lat[account_city]))
    # Headcount follows the business: reps per city in proportion to its accounts (largest
    # remainders), at least one per city while there are reps to spare.
    counts = np.bincount(account_city, minlength=cities).astype(float)
    quota = counts / counts.sum() * n_reps
    reps_per_city = np.floor(quota).astype(int)
    if n_reps >= cities:
        reps_per_city = np.maximum(reps_per_city, (counts > 0).astype(int))
    while reps_per_city.sum() > n_reps:
        reps_per_city[np.argmax(reps_per_city - quota)] -= 1
    while reps_per_city.sum() < n_reps:
        reps_per_city[np.argmax(quota - reps_per_city)] += 1
    rep_city = np.repeat(np.arange(cities), reps_per_city)
    home_lat = city_lat[rep_city] + rng.normal(0, degrees / 3, n_reps)
    home_lon = city_lon[rep_city] + rng.normal(0, degrees / 3, n_reps)
    fte = rng.choice([1.0, 1.0, 1.0, 1.0, 0.8, 0.5], size=n_reps)
    capacity = np.round(1600 * fte * rng.uniform(0.9, 1.1, n_reps), 1)
    workload = rng.lognormal(0, 0.5, n_accounts)
    workload = np.round(workload * utilisation * capacity.sum() / workload.sum(), 2)
    potential = np.round(rng.lognormal(10.5, 0.8, n_accounts), -2)
    # Today's owner: a rep of the account's city (any rep when the city has none), unevenly.
    owner = np.empty(n_accounts, dtype=np.int64)
    for city in range(cities):
        members = np.flatnonzero(account_city == city)
        reps_here = np.flatnonzero(rep_city == city)
        if len(reps_here) == 0:
            reps_here = np.arange(n_reps)
        preference = rng.dirichlet(np.full(len(reps_here), 1.0))
        owner[members] = rng.choice(reps_here, size=len(members), p=preference)
    rep_ids = np.array([f"rep-{j + 1:04d}" for j in range(n_reps)], dtype=object)
    return TerritoryData(
        account_ids=np.array([f"acct-{i + 1:06d}" for i in range(n_accounts)], dtype=object),
        account_lat=lat, account_lon=lon, workload=workload, potential=potential,
        current_rep=rep_ids[owner], rep_ids=rep_ids, rep_home_lat=home_lat, rep_home_lon=home_lon,
        capacity=capacity, fte=fte, company_id="synthetic",
    )
