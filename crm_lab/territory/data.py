"""The inputs of a territory plan: accounts (location, workload, potential, current owner) and
reps (home, territory centre, capacity, FTE), as numpy arrays in a fixed order."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl

from crm_lab.errors import InvalidArgument

ACCOUNT_COLUMNS = ("account_id", "lat", "lon", "workload_hours", "potential", "owner_rep_id")
REP_COLUMNS = ("rep_id", "home_lat", "home_lon", "center_lat", "center_lon", "capacity_hours", "fte")


@dataclass(frozen=True)
class TerritoryData:
    """Accounts and reps of one company.

    ``workload`` is hours per account, or an accounts x reps matrix when it differs by rep.
    ``current_rep`` holds each account's current owner id (None when unowned); an owner who is
    not among ``rep_ids`` (removed, inactive) makes the account *reassigned*, not *moved*.
    A rep's territory centre defaults to its home. Missing values are NaN: a missing workload or
    potential, or a rep's missing home, stops the rules that need it (see
    :func:`crm_lab.territory.inputs.check_inputs`); an account without a location is at distance 0
    from every rep and outside the reach of a radius limit. ``notes`` records defaults applied
    when reading (a missing FTE counted as 1, a missing capacity as no limit).
    """

    account_ids: np.ndarray
    account_lat: np.ndarray
    account_lon: np.ndarray
    workload: np.ndarray
    potential: np.ndarray
    current_rep: np.ndarray
    rep_ids: np.ndarray
    rep_home_lat: np.ndarray
    rep_home_lon: np.ndarray
    capacity: np.ndarray
    fte: np.ndarray
    rep_centre_lat: np.ndarray | None = None
    rep_centre_lon: np.ndarray | None = None
    rep_is_new: np.ndarray | None = None
    company_id: str | None = None
    notes: tuple[str, ...] = ()
    _rep_index: dict = field(init=False, repr=False, compare=False)
    _account_index: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Frozen: normalise the arrays in place once, through object.__setattr__.
        def put(name: str, value) -> None:
            object.__setattr__(self, name, value)

        put("account_ids", np.asarray(self.account_ids, dtype=object))
        put("rep_ids", np.asarray(self.rep_ids, dtype=object))
        n, m = len(self.account_ids), len(self.rep_ids)
        for name in ("account_lat", "account_lon", "potential"):
            put(name, np.asarray(getattr(self, name), dtype=float))
            _shape(name, getattr(self, name), (n,))
        put("workload", np.asarray(self.workload, dtype=float))
        if self.workload.shape not in ((n,), (n, m)):
            raise InvalidArgument(f"workload must have shape ({n},) or ({n}, {m}); got {self.workload.shape}")
        put("current_rep", np.asarray(self.current_rep, dtype=object))
        _shape("current_rep", self.current_rep, (n,))
        for name in ("rep_home_lat", "rep_home_lon", "capacity", "fte"):
            put(name, np.asarray(getattr(self, name), dtype=float))
            _shape(name, getattr(self, name), (m,))
        for name, home in (("rep_centre_lat", self.rep_home_lat), ("rep_centre_lon", self.rep_home_lon)):
            value = home.copy() if getattr(self, name) is None else np.asarray(getattr(self, name), dtype=float)
            _shape(name, value, (m,))
            put(name, np.where(np.isnan(value), home, value))
        put("rep_is_new", np.zeros(m, dtype=bool) if self.rep_is_new is None else np.asarray(self.rep_is_new, dtype=bool))
        _shape("rep_is_new", self.rep_is_new, (m,))
        _unique("account_ids", self.account_ids)
        _unique("rep_ids", self.rep_ids)
        # NaN workload or potential is *missing*: allowed here, refused by the rules that need it.
        for name, values in (("workload", self.workload), ("potential", self.potential)):
            bad = values[values < 0]
            if len(bad):
                raise InvalidArgument(f"{name} must be >= 0 (NaN when missing); got {float(bad[0])!r}")
        bad = self.capacity[np.isnan(self.capacity) | (self.capacity < 0)]
        if len(bad):
            raise InvalidArgument(f"capacity must be >= 0 (inf for no limit); got {float(bad[0])!r}")
        put("notes", tuple(self.notes))
        bad_fte = self.fte[~(self.fte > 0)]
        if len(bad_fte):
            raise InvalidArgument(f"fte must be > 0; got {float(bad_fte[0])!r}")
        put("_rep_index", {rep: j for j, rep in enumerate(self.rep_ids.tolist())})
        put("_account_index", {account: i for i, account in enumerate(self.account_ids.tolist())})

    @property
    def n_accounts(self) -> int:
        return len(self.account_ids)

    @property
    def n_reps(self) -> int:
        return len(self.rep_ids)

    def rep_index(self, rep_id: str, parameter: str = "rep_id") -> int:
        try:
            return self._rep_index[rep_id]
        except KeyError:
            raise InvalidArgument(f"{parameter}: unknown rep {rep_id!r}") from None

    def account_index(self, account_id: str, parameter: str = "account_id") -> int:
        try:
            return self._account_index[account_id]
        except KeyError:
            raise InvalidArgument(f"{parameter}: unknown account {account_id!r}") from None

    def current_index(self) -> np.ndarray:
        """Each account's current rep as an index into ``rep_ids``; -1 when unowned or owned by
        someone outside the plan."""
        return np.array([self._rep_index.get(rep, -1) for rep in self.current_rep.tolist()], dtype=np.int64)

    def workload_matrix(self) -> np.ndarray:
        """Accounts x reps hours."""
        if self.workload.ndim == 2:
            return self.workload
        return np.repeat(self.workload[:, None], self.n_reps, axis=1)

    def account_workload(self) -> np.ndarray:
        """One figure of hours per account, for balance targets: the workload itself, or its
        mean over reps when it differs by rep."""
        return self.workload if self.workload.ndim == 1 else self.workload.mean(axis=1)

    def with_reps(self, keep: np.ndarray, **extra) -> TerritoryData:
        """A copy keeping the reps in the boolean mask ``keep`` (workload columns too)."""
        keep = np.asarray(keep, dtype=bool)
        workload = self.workload[:, keep] if self.workload.ndim == 2 else self.workload
        return replace(
            self,
            rep_ids=self.rep_ids[keep], rep_home_lat=self.rep_home_lat[keep], rep_home_lon=self.rep_home_lon[keep],
            rep_centre_lat=self.rep_centre_lat[keep], rep_centre_lon=self.rep_centre_lon[keep],
            capacity=self.capacity[keep], fte=self.fte[keep], rep_is_new=self.rep_is_new[keep], workload=workload,
            **extra,
        )

    @classmethod
    def from_frames(cls, accounts: pl.DataFrame, reps: pl.DataFrame, company_id: str | None = None) -> TerritoryData:
        """From polars frames with the columns of :data:`ACCOUNT_COLUMNS` and :data:`REP_COLUMNS`
        (``center_lat``/``center_lon`` may be missing). Missing workload, potential and locations
        stay missing (NaN); a missing FTE counts as 1 and a missing capacity as no limit, each
        recorded in ``notes``.

        Examples
        --------
        >>> accounts = pl.DataFrame({"account_id": ["a1", "a2"], "lat": [40.7, 38.9], "lon": [-74.0, -77.0],
        ...                          "workload_hours": [100.0, 120.0], "potential": [5e4, 8e4],
        ...                          "owner_rep_id": ["r1", None]})
        >>> reps = pl.DataFrame({"rep_id": ["r1", "r2"], "home_lat": [40.8, 39.0], "home_lon": [-74.1, -77.1],
        ...                      "capacity_hours": [1600.0, 1600.0], "fte": [1.0, 1.0]})
        >>> data = TerritoryData.from_frames(accounts, reps)
        >>> data.n_accounts, data.n_reps, data.current_index().tolist()
        (2, 2, [0, -1])
        """
        missing = [c for c in ACCOUNT_COLUMNS if c not in accounts.columns]
        if missing:
            raise InvalidArgument(f"accounts: missing column(s) {', '.join(missing)}")
        missing = [c for c in REP_COLUMNS[:3] + REP_COLUMNS[5:] if c not in reps.columns]
        if missing:
            raise InvalidArgument(f"reps: missing column(s) {', '.join(missing)}")

        def floats(frame: pl.DataFrame, column: str, fill: float = np.nan) -> np.ndarray:
            if column not in frame.columns:
                return np.full(frame.height, fill)
            return frame[column].cast(pl.Float64).fill_null(fill).fill_nan(fill).to_numpy().astype(float)

        rep_ids = [str(r) for r in reps["rep_id"].to_list()]
        notes = []
        for column, default in (("fte", "counted as 1 FTE"), ("capacity_hours", "no capacity limit")):
            missing = floats(reps, column)
            if np.isnan(missing).any():
                notes.append(f"{_some(rep_ids, np.isnan(missing), 'reps')} have no {column}: {default}")

        return cls(
            account_ids=np.array(accounts["account_id"].to_list(), dtype=object),
            account_lat=floats(accounts, "lat"),
            account_lon=floats(accounts, "lon"),
            workload=floats(accounts, "workload_hours"),
            potential=floats(accounts, "potential"),
            current_rep=np.array(accounts["owner_rep_id"].to_list(), dtype=object),
            rep_ids=np.array(reps["rep_id"].to_list(), dtype=object),
            rep_home_lat=floats(reps, "home_lat"),
            rep_home_lon=floats(reps, "home_lon"),
            rep_centre_lat=floats(reps, "center_lat"),
            rep_centre_lon=floats(reps, "center_lon"),
            capacity=floats(reps, "capacity_hours", np.inf),
            fte=floats(reps, "fte", 1.0),
            rep_is_new=np.array(reps["is_new"].to_list(), dtype=bool) if "is_new" in reps.columns else None,
            company_id=company_id,
            notes=tuple(notes),
        )


def _some(ids, mask: np.ndarray, what: str, listed: int = 3) -> str:
    """``"8 of 8 reps (rep-0001, rep-0002, rep-0003, ...)"``: how many, of how many, and the first few."""
    chosen = [str(v) for v, hit in zip(list(ids), np.asarray(mask).tolist()) if hit]
    names = ", ".join(chosen[:listed]) + (", ..." if len(chosen) > listed else "")
    return f"{len(chosen)} of {len(mask)} {what} ({names})"


def _shape(name: str, value: np.ndarray, shape: tuple) -> None:
    if value.shape != shape:
        raise InvalidArgument(f"{name} must have shape {shape}; got {value.shape}")


def _unique(name: str, values: np.ndarray) -> None:
    seen: set = set()
    for value in values.tolist():
        if value in seen:
            raise InvalidArgument(f"{name} must be unique; {value!r} appears twice")
        seen.add(value)
