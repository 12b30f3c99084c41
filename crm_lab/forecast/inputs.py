"""One company's forecast inputs, and the :class:`~crm_lab.forecast.simulation.Portfolio` a
scenario makes of them (pure: frames and a fitted model in, arrays out).

The open deals at the as-of are the *universe*: every scenario of a run keeps all of them in the
same order (a dropped deal gets a zero win multiplier), so all scenarios share the random numbers
of each deal.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from crm_lab.errors import InvalidArgument
from crm_lab.forecast.estimate import ForecastModel, ModelOptions
from crm_lab.forecast.periods import Window, date_days
from crm_lab.forecast.scenarios import Scenario
from crm_lab.forecast.simulation import GroupCodes, Portfolio

GROUP_DIMENSIONS = ("team", "rep", "territory", "stage")
GROUP_COLUMNS = {"team": "team", "rep": "owner_rep_id", "territory": "territory_id", "stage": "stage"}
NONE_LABEL = "(none)"
NEW_PIPELINE_STAGE = "new pipeline"
BOOKED_STAGE = "booked"


def company_stream(company_id: str) -> int:
    """A stable random stream per company, so a company's numbers do not depend on the others."""
    return zlib.crc32(company_id.encode("utf-8"))


def check_dimensions(by) -> tuple[str, ...]:
    """``by`` as a tuple of known group dimensions ('team', 'rep', 'territory', 'stage')."""
    if by is None:
        return ()
    values = (by,) if isinstance(by, str) else tuple(by)
    for value in values:
        if value not in GROUP_DIMENSIONS:
            raise InvalidArgument(f"by must name group dimensions among {', '.join(GROUP_DIMENSIONS)}, got {value!r}")
    return tuple(dict.fromkeys(values))


@dataclass
class ForecastInputs:
    """What one company's forecast is made of.

    Attributes
    ----------
    deals : polars.DataFrame
        The open deals at the as-of (``open_deals.sql``), sorted by deal_id.
    booked : polars.DataFrame
        Wins from the window's start to the as-of (``won_closes.sql`` rows).
    reps : polars.DataFrame
        ``reps.sql`` rows (teams, territories, bookings quotas).
    currency : str or None
        The one currency of the company's amounts (None when the data names none).
    elsewhere : dict
        For a run of one company: ``{"deals": {id: companies}, "reps": {id: companies}}``, the
        open deals and reps of the companies not forecast, so a scenario naming one of them is
        told whose it is.
    """

    company_id: str
    window: Window
    model: ForecastModel
    deals: pl.DataFrame
    booked: pl.DataFrame
    reps: pl.DataFrame
    currency: str | None = None
    elsewhere: dict = field(default_factory=dict)

    @property
    def stream(self) -> int:
        return company_stream(self.company_id)

    def quota(self) -> float | None:
        """The company's bookings quota for the window: its active reps' annual quotas, prorated
        by days (None when no rep carries one)."""
        total = float(np.nansum(quota_by_period(self, None)))
        return total if total > 0 else None


def gather_inputs(history, open_deals: pl.DataFrame, window: Window, options: ModelOptions | None = None) -> ForecastInputs:
    """Fit the model on ``history`` as of the window's as-of and collect the deals and bookings."""
    company = history.company_id
    model = ForecastModel(options or ModelOptions()).fit(history, window.as_of)  # refuses a missing history first
    deals = open_deals.filter(pl.col("company_id") == company).sort("deal_id")
    if deals.is_empty():
        raise InvalidArgument(f"as_of {window.as_of.isoformat()}: company {company} has no open deals to forecast")
    booked = history.wins.filter(
        (pl.col("closed_at") >= window.start_instant) & (pl.col("closed_at") <= window.as_of)
    )
    currency = company_currency(company, deals, booked, model.new_pipeline_.sizes_)
    return ForecastInputs(company, window, model, deals, booked, history.reps, currency)


def _by_currency(frame: pl.DataFrame) -> pl.DataFrame:
    if "currency" not in frame.columns or frame.is_empty():
        return pl.DataFrame(schema={"currency": pl.String, "amount": pl.Float64, "deals": pl.UInt32})
    # Deals without a currency are a group of their own (listed last), named but not counted as a currency.
    return (
        frame.group_by("currency").agg(pl.col("amount").fill_nan(None).sum().alias("amount"), pl.len().alias("deals"))
        .sort("currency", nulls_last=True)
    )


def _currencies(frame: pl.DataFrame) -> set[str]:
    return set(frame["currency"].drop_nulls())


def _listed(frame: pl.DataFrame) -> str:
    return ", ".join(
        f"{c or 'no currency'} {a:,.2f} in {d} deal{'s' if d != 1 else ''}"
        for c, a, d in zip(frame["currency"], frame["amount"], frame["deals"])
    )


def company_currency(company: str, deals: pl.DataFrame, booked: pl.DataFrame, sizes: pl.DataFrame) -> str | None:
    """The one currency of a company's open deals, its bookings in the window and the wins its
    new-pipeline sizes are drawn from (a deal without a currency is taken to be in it). A
    forecast adds amounts, so two currencies in one company are refused, each named with its
    amount and deal count."""
    fix = ("a forecast adds amounts, so they must be in one currency: load amounts converted to one currency "
           "(the importers' --rates FILE) or give these deals one currency")
    open_money = _by_currency(deals)
    if len(_currencies(open_money)) > 1:
        raise InvalidArgument(
            f"company {company} has open deals in {len(_currencies(open_money))} currencies: {_listed(open_money)}; {fix}"
        )
    wins = pl.concat([_by_currency(booked).with_columns(pl.lit("booked in the window").alias("what")),
                      _by_currency(sizes).with_columns(pl.lit("wins behind the new-pipeline sizes").alias("what"))])
    known = _currencies(open_money) | _currencies(wins)
    if len(known) > 1:
        parts = [f"open deals {_listed(open_money)}"] if open_money.height else []
        for what in ("booked in the window", "wins behind the new-pipeline sizes"):
            part = wins.filter(pl.col("what") == what)
            if part.height:
                parts.append(f"{what} {_listed(part)}")
        raise InvalidArgument(
            f"company {company} has amounts in {len(known)} currencies ({', '.join(sorted(known))}): "
            f"{'; '.join(parts)}; {fix}"
        )
    return next(iter(known), None)


def _labels(values) -> list[str]:
    return sorted({NONE_LABEL if v is None else str(v) for v in values})


def _codes(values, index: dict) -> np.ndarray:
    return np.array([index[NONE_LABEL if v is None else str(v)] for v in values], dtype=np.int64)


def group_labels(inputs: ForecastInputs, dim: str) -> tuple[str, ...]:
    """Every value a dimension can take in this run (the same for all scenarios)."""
    sizes = inputs.model.new_pipeline_.sizes_
    if dim == "stage":
        values = list(inputs.model.win_rates_.stages_) + inputs.deals["stage"].to_list() + [NEW_PIPELINE_STAGE, BOOKED_STAGE]
    else:
        column = GROUP_COLUMNS[dim]
        rep_column = "rep_id" if dim == "rep" else column
        values = (
            inputs.reps[rep_column].to_list() + inputs.deals[column].to_list()
            + sizes[column].to_list() + inputs.booked[column].to_list()
        )
    return tuple(_labels(values))


def _reassignments(inputs: ForecastInputs, scenario: Scenario) -> tuple[dict, set]:
    """rep -> (list of receiving reps) for reassigned reps; the set of reps whose business is lost."""
    reps = inputs.reps
    moves, lost = {}, set()
    removed = {r.rep for r in scenario.remove_reps}
    for removal in scenario.remove_reps:
        if removal.deals == "lose":
            lost.add(removal.rep)
            continue
        if removal.to is not None:
            moves[removal.rep] = [removal.to]
            continue
        me = reps.filter(pl.col("rep_id") == removal.rep)
        team = me["team"][0] if me.height else None
        eligible = reps.filter(
            pl.col("is_active").fill_null(True) & pl.col("bookings_quota").is_not_null() & ~pl.col("rep_id").is_in(list(removed))
        )
        mates = eligible.filter(pl.col("team") == team) if team is not None else eligible.clear()
        chosen = (mates if mates.height else eligible)["rep_id"].to_list()
        if not chosen:
            raise InvalidArgument(f"scenario {scenario.name!r}: no active rep with a quota can take over from {removal.rep!r}")
        moves[removal.rep] = chosen
    return moves, lost


def _reassign(frame: pl.DataFrame, moves: dict, reps: pl.DataFrame) -> pl.DataFrame:
    """Owners moved round-robin to their receivers, with the receivers' team and territory."""
    if not moves or frame.is_empty():
        return frame
    owners = frame["owner_rep_id"].to_list()
    seen: dict[str, int] = {}
    new_owners = []
    for owner in owners:
        if owner in moves:
            k = seen.get(owner, 0)
            seen[owner] = k + 1
            new_owners.append(moves[owner][k % len(moves[owner])])
        else:
            new_owners.append(owner)
    lookup = reps.select("rep_id", pl.col("team").alias("_team"), pl.col("territory_id").alias("_territory"))
    moved = pl.Series([o in moves for o in owners])
    out = frame.with_columns(pl.Series("owner_rep_id", new_owners, pl.String)).with_row_index("_row")
    out = out.join(lookup, left_on="owner_rep_id", right_on="rep_id", how="left").sort("_row")
    return out.with_columns(
        pl.when(moved).then(pl.col("_team")).otherwise(pl.col("team")).alias("team"),
        pl.when(moved).then(pl.col("_territory")).otherwise(pl.col("territory_id")).alias("territory_id"),
    ).drop("_row", "_team", "_territory")


def stage_shocks(inputs: ForecastInputs) -> tuple[np.ndarray, np.ndarray]:
    """Each deal's parameter group (its stage; stages the model never saw share a last group)
    and each group's posterior log-odds spread."""
    stages = inputs.model.win_rates_.stages_
    sd = inputs.model.win_rates_.stage_logit_sd()
    index = {s: i for i, s in enumerate(stages)}
    groups = np.array([index.get(s, len(stages)) for s in inputs.deals["stage"].to_list()], dtype=np.int64)
    return groups, np.append(sd, sd.max() if len(sd) else 0.0)


def check_scenario(scenario: Scenario, cases: list[ForecastInputs]) -> None:
    """Refuse a stage, deal or rep that none of the run's companies knows (an id must belong to
    at least one company forecast; one that belongs only to a company not forecast is named with
    its company). An id applies in every forecast company that has it."""
    elsewhere: dict = {"deals": {}, "reps": {}}
    for case in cases:
        for kind in ("deals", "reps"):
            for key, owners in case.elsewhere.get(kind, {}).items():
                elsewhere[kind].setdefault(key, set()).update(owners)
    scenario.check(
        stages={s for c in cases for s in (*c.model.win_rates_.stages_, *c.deals["stage"].to_list())},
        deal_ids={d for c in cases for d in c.deals["deal_id"].to_list()},
        rep_ids={r for c in cases for r in c.reps["rep_id"].to_list()},
        companies=sorted(c.company_id for c in cases),
        elsewhere=elsewhere,
    )


def portfolio(inputs: ForecastInputs, scenario: Scenario | None = None, dims=(), *, check: bool = True) -> Portfolio:
    """The portfolio a scenario makes of a company's inputs (``check``: refuse names this company
    does not know; a run over several companies checks against all of them instead)."""
    scenario = scenario or Scenario()
    model, window = inputs.model, inputs.window
    universe = inputs.deals
    if check:
        check_scenario(scenario, [inputs])
    moves, lost = _reassignments(inputs, scenario)
    deals = _reassign(universe, moves, inputs.reps)
    stages = deals["stage"].to_list()
    n = deals.height

    multiplier = scenario.win_rate * np.array([scenario.stage_win_rate.get(s, 1.0) for s in stages])
    keep = np.ones(n, bool)
    ids = deals["deal_id"].to_numpy()
    if scenario.include_deals is not None:
        keep &= np.isin(ids, list(scenario.include_deals))
    if scenario.exclude_deals:
        keep &= ~np.isin(ids, list(scenario.exclude_deals))
    if lost:
        keep &= ~np.isin(universe["owner_rep_id"].to_numpy(), list(lost))
    multiplier = np.where(keep, multiplier, 0.0)

    shock_group, shock_sd = stage_shocks(inputs)
    as_of_day = window.as_of_day
    edges = window.edges()
    close_cdf = model.close_timing_.close_cdf(
        stages, date_days(deals["expected_close_date"].to_numpy()), as_of_day, edges, scenario.slip_days
    )
    amount = np.nan_to_num(deals["amount"].to_numpy().astype(np.float64), nan=0.0) * scenario.deal_size

    new = model.new_pipeline_
    # win_rate scales new-pipeline wins as it does a new deal's win probability: capped at 1.
    new_win = 1.0 if scenario.win_rate == 1 else model.win_rates_.capped_multiplier(scenario.win_rate)
    expected = new.expected_counts(as_of_day, edges, scenario.slip_days) * scenario.new_pipeline * new_win
    sizes = _reassign(new.sizes_, moves, inputs.reps)
    size_amount = sizes["amount"].to_numpy().astype(np.float64) * scenario.deal_size
    if lost:
        size_amount = np.where(np.isin(new.sizes_["owner_rep_id"].to_numpy(), list(lost)), 0.0, size_amount)

    groups = {}
    for dim in dims:
        labels = group_labels(inputs, dim)
        index = {label: i for i, label in enumerate(labels)}
        if dim == "stage":
            deal_codes = _codes(stages, index)
            new_codes = np.full(sizes.height, index[NEW_PIPELINE_STAGE], np.int64)
        else:
            column = GROUP_COLUMNS[dim]
            deal_codes = _codes(deals[column].to_list(), index)
            new_codes = _codes(sizes[column].to_list(), index)
        groups[dim] = GroupCodes(labels, deal_codes, new_codes)

    return Portfolio(
        win_probability=model.win_rates_.predict_proba(deals),
        shock_group=shock_group,
        shock_sd=shock_sd,
        close_cdf=close_cdf,
        amount=amount,
        amount_ratio=model.amount_change_.quantiles_,
        amount_row=model.amount_change_.rows_for(stages),
        win_multiplier=multiplier,
        new_expected=expected,
        new_gamma_shape=float(new.gamma_shape_),
        new_sizes=size_amount,
        new_size_weight=sizes["weight"].to_numpy().astype(np.float64),
        groups=groups,
    )


def booked_by_period(inputs: ForecastInputs, dim: str | None = None) -> np.ndarray:
    """Amount already booked per period, (P,) for the company or (P, G) by a dimension."""
    edges = inputs.window.edges()
    booked = inputs.booked
    periods = len(edges) - 1
    if booked.is_empty():
        return np.zeros(periods) if dim is None else np.zeros((periods, len(group_labels(inputs, dim))))
    day = np.floor(np.asarray(booked["closed_at"].to_numpy().astype("datetime64[us]").astype(np.int64)) / 86_400e6).astype(np.int64)
    period = np.clip(np.searchsorted(edges, day, side="right") - 1, 0, periods - 1)
    amount = booked["amount"].to_numpy().astype(np.float64)
    if dim is None:
        return np.bincount(period, weights=amount, minlength=periods)
    labels = group_labels(inputs, dim)
    index = {label: i for i, label in enumerate(labels)}
    codes = np.full(booked.height, index[BOOKED_STAGE]) if dim == "stage" else _codes(booked[GROUP_COLUMNS[dim]].to_list(), index)
    out = np.zeros((periods, len(labels)))
    np.add.at(out, (period, codes), amount)
    return out


def year_shares(edges: np.ndarray, first_days: np.ndarray) -> np.ndarray:
    """(P, R): the share of a year's quota that falls in each period [edges[k], edges[k + 1])
    (day numbers) for each rep counting from its first day (first_days, day numbers): each
    day is 1/365 of its year, or 1/366 in a leap year, so a calendar year is exactly 1."""
    days = np.arange(edges[0], edges[-1])
    year = days.astype("datetime64[D]").astype("datetime64[Y]")
    length = ((year + 1).astype("datetime64[D]") - year.astype("datetime64[D]")).astype(np.float64)
    counted = np.where(days[None, :] >= first_days[:, None], 1.0 / length[None, :], 0.0)
    return np.add.reduceat(counted, edges[:-1] - edges[0], axis=1).T


def quota_by_period(inputs: ForecastInputs, dim: str | None) -> np.ndarray | None:
    """Bookings quota per period, prorated by days from the reps' annual quota (a rep hired
    inside the window counts from its hiring day): (P,) for the company, (P, G) by team, rep or
    territory; None by stage."""
    if dim == "stage":
        return None
    edges = inputs.window.edges()
    reps = inputs.reps.filter(pl.col("is_active").fill_null(True) & pl.col("bookings_quota").is_not_null())
    hired = reps["hired_at"].cast(pl.Date).cast(pl.Int64).fill_null(np.iinfo(np.int64).min).to_numpy()
    quota = year_shares(edges, hired) * reps["bookings_quota"].to_numpy().astype(np.float64)[None, :]
    if dim is None:
        return quota.sum(axis=1) if reps.height else np.full(len(edges) - 1, np.nan)
    labels = group_labels(inputs, dim)
    index = {label: i for i, label in enumerate(labels)}
    column = "rep_id" if dim == "rep" else GROUP_COLUMNS[dim]
    codes = _codes(reps[column].to_list(), index)
    per_group = np.zeros((len(edges) - 1, len(labels)))
    np.add.at(per_group, (slice(None), codes), quota)
    # A group with no rep carrying a bookings quota has no quota (not a quota of zero).
    per_group[:, np.bincount(codes, minlength=len(labels)) == 0] = np.nan
    return per_group
