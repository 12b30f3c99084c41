"""The synthetic CRM world behind :func:`crm_lab.generate.generate`.

Private module. It holds the generating parameters (written to ``truth.json``), the company-level
entities (territories, reps, accounts, contacts, products) and the vectorised simulation of one
chunk of deals with their leads, activities and events. Everything is numpy arrays until the
last step, which turns them into Arrow tables in the native contract's columns.

Conventions: times are integer epoch seconds (UTC), dates are integer days since 1970-01-01,
money is integer cents, entity references are 0-based indices into the company's arrays (the
text id of index ``i`` is its prefix plus ``i + 1``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from crm_lab import _arrow as A
from crm_lab.contract import ACTIVITY_TYPES, DEAL_STAGES_OPEN

DAY = 86_400
NEVER = np.iinfo(np.int64).max

# ------------------------------------------------------------------------------------ vocabularies

INDUSTRIES = (
    "software",
    "manufacturing",
    "retail",
    "healthcare",
    "financial_services",
    "logistics",
    "education",
    "energy",
)
INDUSTRY_WEIGHTS = (0.20, 0.16, 0.13, 0.12, 0.12, 0.10, 0.08, 0.09)
SOURCES = ("web", "referral", "event", "outbound", "partner")
SOURCE_WEIGHTS = (0.35, 0.15, 0.15, 0.25, 0.10)
LOST_REASONS = ("price", "competitor", "no_decision", "timing", "no_budget", "product_fit")
LOST_REASON_WEIGHTS = (0.24, 0.22, 0.2, 0.14, 0.12, 0.08)
ACTIVITY_TYPE_WEIGHTS = (0.35, 0.4, 0.15, 0.1)
TEAMS = ("SMB", "Mid-Market", "Enterprise")
SDR_TEAM = "Development"
SEGMENT_EMPLOYEES = (200, 2000)  # SMB below 200, Enterprise from 2000
LEAD_STATUSES = ("open", "converted", "disqualified")

EVENT_TYPES = (
    "created",
    "updated",
    "stage_changed",
    "amount_changed",
    "close_date_changed",
    "owner_changed",
    "won",
    "lost",
    "reopened",
    "deleted",
    "converted",
    "disqualified",
)
E = {name: i for i, name in enumerate(EVENT_TYPES)}
AGG_TYPES = ("deal", "lead", "account", "activity")

FIRST_NAMES = (
    "Ada", "Alan", "Amara", "Ana", "Arjun", "Beatriz", "Ben", "Carla", "Chen", "Chloe", "Daniel",
    "Diego", "Elena", "Emil", "Emma", "Farah", "Felix", "Grace", "Hana", "Hugo", "Ines", "Ivan",
    "Jack", "Jana", "Javier", "Julia", "Kai", "Kenji", "Lara", "Leo", "Lina", "Lucas", "Maya",
    "Mateo", "Mia", "Nadia", "Noah", "Nora", "Olga", "Omar", "Oscar", "Paula", "Priya", "Rafael",
    "Rosa", "Sam", "Sara", "Sofia", "Tariq", "Theo", "Uma", "Victor", "Wei", "Yara", "Yusuf", "Zoe",
)  # fmt: skip
LAST_NAMES = (
    "Adams", "Alvarez", "Baker", "Berg", "Brown", "Carter", "Chen", "Costa", "Dubois", "Evans",
    "Fischer", "Garcia", "Hansen", "Ito", "Jansen", "Johnson", "Kim", "Kowalski", "Lopez", "Martin",
    "Meyer", "Moreau", "Nakamura", "Nguyen", "Novak", "Okafor", "Olsen", "Patel", "Perez", "Rossi",
    "Santos", "Schmidt", "Silva", "Singh", "Smith", "Suzuki", "Taylor", "Walker", "Weber", "Wong",
)  # fmt: skip
TITLES = (
    "CEO", "CFO", "CTO", "COO", "VP Sales", "VP Operations", "Head of IT", "IT Manager",
    "Procurement Manager", "Operations Manager", "Finance Director", "Data Lead", "Office Manager",
)  # fmt: skip
ACCOUNT_WORDS = (
    "Northwind", "Bluewater", "Summit", "Redwood", "Silverline", "Ironbridge", "Lakeside",
    "Brightpath", "Granite", "Harbor", "Evergreen", "Pioneer", "Keystone", "Sterling", "Aurora",
    "Cedar", "Falcon", "Horizon", "Juniper", "Meridian", "Orchid", "Pinnacle", "Quarry", "Riverton",
    "Sequoia", "Tidewater", "Vantage", "Westfield", "Zenith", "Copperfield", "Oakridge", "Maple",
)  # fmt: skip
ACCOUNT_SUFFIXES = (
    "Logistics", "Health", "Foods", "Systems", "Manufacturing", "Retail", "Energy", "Labs",
    "Partners", "Group", "Holdings", "Industries", "Analytics", "Capital", "Supply", "Works",
    "Academy", "Motors", "Pharma", "Textiles",
)  # fmt: skip
COMPANY_NAMES = (
    "Acme Cloud", "Borealis Software", "Cobalt Robotics", "Driftwood Analytics", "Ember Networks",
    "Fjord Security", "Gallium Data", "Helix Payments",
)  # fmt: skip
# (name, family, list price in currency units)
PRODUCT_CATALOGUE = (
    ("Platform Starter", "Platform", 6000),
    ("Platform Professional", "Platform", 18000),
    ("Platform Enterprise", "Platform", 60000),
    ("Analytics Add-on", "Analytics", 9000),
    ("Analytics Suite", "Analytics", 30000),
    ("Connector Pack", "Integrations", 4000),
    ("API Gateway", "Integrations", 12000),
    ("Onboarding", "Services", 5000),
    ("Training", "Services", 2500),
    ("Custom Implementation", "Services", 40000),
    ("Premium Support", "Support", 8000),
    ("Enterprise Support", "Support", 20000),
)
# (city, region, lat, lon) per market; companies take markets in turn.
MARKETS = (
    {
        "currency": "USD",
        "utc_offset_hours": -5,
        "cities": (
            ("Boston", "Northeast", 42.36, -71.06), ("New York", "Northeast", 40.71, -74.01),
            ("Philadelphia", "Northeast", 39.95, -75.17), ("Washington", "Northeast", 38.91, -77.04),
            ("Atlanta", "Southeast", 33.75, -84.39), ("Miami", "Southeast", 25.76, -80.19),
            ("Charlotte", "Southeast", 35.23, -80.84), ("Chicago", "Midwest", 41.88, -87.63),
            ("Detroit", "Midwest", 42.33, -83.05), ("Minneapolis", "Midwest", 44.98, -93.27),
            ("St. Louis", "Midwest", 38.63, -90.20), ("Dallas", "South Central", 32.78, -96.80),
            ("Houston", "South Central", 29.76, -95.37), ("Austin", "South Central", 30.27, -97.74),
            ("Denver", "Mountain", 39.74, -104.99), ("Phoenix", "Mountain", 33.45, -112.07),
            ("Salt Lake City", "Mountain", 40.76, -111.89), ("Los Angeles", "West", 34.05, -118.24),
            ("San Francisco", "West", 37.77, -122.42), ("Seattle", "West", 47.61, -122.33),
            ("Portland", "West", 45.52, -122.68), ("San Diego", "West", 32.72, -117.16),
            ("Toronto", "Canada", 43.65, -79.38), ("Vancouver", "Canada", 49.28, -123.12),
            ("Montreal", "Canada", 45.50, -73.57),
        ),
    },
    {
        "currency": "EUR",
        "utc_offset_hours": 1,
        "cities": (
            ("London", "UK and Ireland", 51.51, -0.13), ("Manchester", "UK and Ireland", 53.48, -2.24),
            ("Dublin", "UK and Ireland", 53.35, -6.26), ("Edinburgh", "UK and Ireland", 55.95, -3.19),
            ("Paris", "France", 48.86, 2.35), ("Lyon", "France", 45.76, 4.84),
            ("Berlin", "DACH", 52.52, 13.40), ("Munich", "DACH", 48.14, 11.58),
            ("Hamburg", "DACH", 53.55, 9.99), ("Frankfurt", "DACH", 50.11, 8.68),
            ("Zurich", "DACH", 47.37, 8.54), ("Vienna", "DACH", 48.21, 16.37),
            ("Amsterdam", "Benelux", 52.37, 4.90), ("Brussels", "Benelux", 50.85, 4.35),
            ("Madrid", "Iberia", 40.42, -3.70), ("Barcelona", "Iberia", 41.39, 2.17),
            ("Lisbon", "Iberia", 38.72, -9.14), ("Milan", "Italy", 45.46, 9.19),
            ("Rome", "Italy", 41.90, 12.50), ("Stockholm", "Nordics", 59.33, 18.07),
            ("Copenhagen", "Nordics", 55.68, 12.57), ("Oslo", "Nordics", 59.91, 10.75),
            ("Helsinki", "Nordics", 60.17, 24.94), ("Warsaw", "CEE", 52.23, 21.01),
            ("Prague", "CEE", 50.08, 14.44),
        ),
    },
    {
        "currency": "AUD",
        "utc_offset_hours": 10,
        "cities": (
            ("Sydney", "ANZ", -33.87, 151.21), ("Melbourne", "ANZ", -37.81, 144.96),
            ("Brisbane", "ANZ", -27.47, 153.03), ("Perth", "ANZ", -31.95, 115.86),
            ("Adelaide", "ANZ", -34.93, 138.60), ("Auckland", "ANZ", -36.85, 174.76),
            ("Wellington", "ANZ", -41.29, 174.78), ("Singapore", "Southeast Asia", 1.35, 103.82),
            ("Kuala Lumpur", "Southeast Asia", 3.14, 101.69), ("Jakarta", "Southeast Asia", -6.21, 106.85),
            ("Tokyo", "North Asia", 35.68, 139.69), ("Osaka", "North Asia", 34.69, 135.50),
            ("Seoul", "North Asia", 37.57, 126.98), ("Hong Kong", "North Asia", 22.32, 114.17),
            ("Mumbai", "India", 19.08, 72.88), ("Bangalore", "India", 12.97, 77.59),
            ("Delhi", "India", 28.61, 77.21),
        ),
    },
)  # fmt: skip

# ------------------------------------------------------------------------------------- parameters

_N_STAGES = len(DEAL_STAGES_OPEN)

PARAMS: dict = {
    "arrivals": {
        "description": (
            "Leads, direct deals and new accounts arrive on day d with weight "
            "weekday_weights[d.weekday()] * (1 + yearly_amplitude * cos(2*pi*(day_of_year - "
            "yearly_peak_day_of_year) / 365.25)); the local hour is Normal(local_hour_mean, "
            "local_hour_sd) in the company's utc_offset_hours."
        ),
        "weekday_weights": [1.0, 1.08, 1.08, 1.02, 0.88, 0.22, 0.14],
        "yearly_amplitude": 0.2,
        "yearly_peak_day_of_year": 288,
        "local_hour_mean": 13.0,
        "local_hour_sd": 2.5,
    },
    "sizing": {
        "description": (
            "Per company with n deals: account executives max(3, round(ae_coef * n**ae_exp)); SDRs "
            "max(1, round(ae / 3)); territories clip(round(ae / 5), 2, min(territories_max, ae)); accounts "
            "max(accounts_min, round(n * accounts_per_deal)); contacts per account 1 + Poisson."
        ),
        "ae_coef": 0.25,
        "ae_exp": 0.7,
        "territories_max": 60,
        "inactive_rep_share": 0.05,
        "accounts_per_deal": 0.25,
        "accounts_min": 30,
        "accounts_existing_share": 0.75,
        "accounts_history_years": 3,
        "contacts_extra_poisson_mean": 1.5,
        "deal_company_share_dirichlet_alpha": 3.0,
    },
    "reps": {
        "description": (
            "AE teams (SMB, Mid-Market, Enterprise) are sized by their segment's share of expected "
            "deal value (at least 10% each). AE quota = expected yearly bookings of the team's "
            "segment (deals * win rate * mean amount * segment share / years) per active FTE of "
            "the team * fte * LogNormal(0, quota_lognormal_sigma) / quota_attainment_target; an "
            "SDR's quota is the pipeline an SDR sources, likewise. Account workload_hours are "
            "scaled so that they add up to workload_utilisation of the active AEs' capacity_hours."
        ),
        "quota_lognormal_sigma": 0.15,
        "quota_attainment_target": 0.9,
        "capacity_hours_per_fte": 1600,
        "workload_utilisation": 0.75,
    },
    "accounts": {
        "employees_lognormal_median": 120.0,
        "employees_lognormal_sigma": 1.4,
        "potential_per_employee_pow": 0.8,
        "potential_scale": 900.0,
        "potential_lognormal_sigma": 0.5,
        "location_sd_deg": [0.6, 0.8],
        "owner_change_probability": 0.10,
    },
    "leads": {
        "deal_share_from_leads": 0.5,
        "conversion": {
            "description": (
                "P(converted) = 1 / (1 + exp(-(intercept + source[s] + industry[i] + "
                "log_employees * ln(employees) + score * score))), score in [0, 100] as in the "
                "leads table; 'web' and 'software' are the reference levels (coefficient 0)."
            ),
            "intercept": -3.6,
            "source": {"web": 0.0, "referral": 0.9, "event": 0.3, "outbound": -0.5, "partner": 0.6},
            "industry": {
                "software": 0.0,
                "manufacturing": -0.3,
                "retail": -0.45,
                "healthcare": 0.2,
                "financial_services": 0.35,
                "logistics": -0.15,
                "education": -0.5,
                "energy": 0.1,
            },
            "log_employees": 0.18,
            "score": 0.035,
        },
        "score_beta": [2.0, 2.5],
        "score_updates_poisson_mean": 0.5,
        "account_known_at_creation_probability": 0.6,
        "conversion_lag_days_gamma": [2.0, 6.0],
        "disqualify_probability": 0.85,
        "disqualify_lag_days_gamma": [2.0, 10.0],
        "owner_change_probability": 0.04,
        "delete_probability": 0.01,
        "delete_delay_days_mean": 30.0,
    },
    "deals": {
        "stages": list(DEAL_STAGES_OPEN),
        "advance_probability": [0.55, 0.65, 0.60, 0.75],
        "stage_duration_days_lognormal_median": [9.0, 14.0, 18.0, 12.0],
        "stage_duration_days_lognormal_sigma": [0.8, 0.7, 0.7, 0.6],
        "zero_duration_probability": 0.04,
        "direct_start_stage_probability": [0.6, 0.4, 0.0, 0.0],
        "amount_change_poisson_mean_per_stage_visit": [0.08, 0.2, 0.35, 0.3],
        "amount_change_log_factor_mean": [0.05, 0.03, 0.0, -0.06],
        "amount_change_log_factor_sd": [0.2, 0.2, 0.2, 0.15],
        "amount_rounding": 10,
        "won_amount_probability": 0.25,
        "won_amount_log_factor_mean": -0.02,
        "won_amount_log_factor_sd": 0.05,
        "initial_amount": {
            "description": (
                "list_price(product) * (employees / 100) ** employees_pow * "
                "LogNormal(0, lognormal_sigma), rounded to `rounding`, at least `minimum`."
            ),
            "employees_pow": 0.25,
            "lognormal_sigma": 0.4,
            "rounding": 50,
            "minimum": 500,
        },
        "expected_close": {
            "description": (
                "created date + U(planned_fraction) * sum of the stage medians from the start "
                "stage, moved to the end of that month."
            ),
            "planned_fraction": [0.6, 1.1],
        },
        "push_poisson_mean_per_stage_visit": [0.05, 0.12, 0.3, 0.45],
        "push_days": {
            "description": "each push moves expected_close_date later by 7 * (1 + Poisson(mean)) days",
            "unit_days": 7,
            "extra_weeks_poisson_mean": 1.2,
        },
        "tie_probability": 0.3,
        "owner_change_probability": 0.06,
        "lost_reasons": dict(zip(LOST_REASONS, LOST_REASON_WEIGHTS)),
        "reopen_probability": 0.06,
        "reopen_gap_days_mean": 21.0,
        "max_passes": 3,
        "delete_probability_direct_deals": 0.02,
        "delete_delay_days_mean": 14.0,
    },
    "activities": {
        "per_deal_poisson_mean": 1.0,
        "per_lead_poisson_mean": 0.25,
        "account_only_per_deal": 0.1,
        "types": dict(zip(ACTIVITY_TYPES, ACTIVITY_TYPE_WEIGHTS)),
        "duration_minutes": {
            "call": "5 + Exponential(10)",
            "email": "2 + Exponential(3)",
            "meeting": "one of 30, 45, 60, 90",
            "task": "15 + Exponential(20)",
        },
        "delete_probability": 0.01,
    },
    "events": {
        "record_lag_seconds_exponential_mean": 20.0,
        "late_probability": 0.02,
        "late_lag_days_lognormal_median": 1.5,
        "late_lag_days_lognormal_sigma": 1.0,
        "description": (
            "recorded_at = occurred_at + lag, capped at the export instant (the day after `end`); "
            "late events arrive after events that happened later."
        ),
    },
}


def win_probability_from_stage(params: dict = PARAMS) -> dict[str, float]:
    """P(won | the deal is in stage s), first pass: the product of the advance probabilities."""
    a = params["deals"]["advance_probability"]
    out = {}
    for s, name in enumerate(DEAL_STAGES_OPEN):
        out[name] = float(np.prod(a[s:]))
    return out


# --------------------------------------------------------------------------------- small utilities


@dataclass(frozen=True)
class Window:
    """The simulated period: [t0, t1) in epoch seconds; t1 is the export instant."""

    t0: int
    t1: int
    day0: int  # first day (days since epoch)
    n_days: int
    day_p: np.ndarray  # arrival probability of each day

    @staticmethod
    def make(start_day: int, end_day: int, arrivals: dict) -> Window:
        days = np.arange(start_day, end_day + 1, dtype=np.int64)
        d64 = days.astype("datetime64[D]")
        doy = (d64 - d64.astype("datetime64[Y]").astype("datetime64[D]")).astype(np.int64) + 1
        weekday = (days + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        w = np.asarray(arrivals["weekday_weights"])[weekday] * (
            1.0
            + arrivals["yearly_amplitude"]
            * np.cos(2 * np.pi * (doy - arrivals["yearly_peak_day_of_year"]) / 365.25)
        )
        return Window(
            t0=start_day * DAY,
            t1=(end_day + 1) * DAY,
            day0=start_day,
            n_days=len(days),
            day_p=w / w.sum(),
        )


def arrival_times(rng: np.random.Generator, m: int, win: Window, utc_offset_hours: float) -> np.ndarray:
    """``m`` arrival instants with weekly and yearly seasonality (unsorted)."""
    arr = PARAMS["arrivals"]
    day = win.day0 + rng.choice(win.n_days, size=m, p=win.day_p)
    hour = rng.normal(arr["local_hour_mean"], arr["local_hour_sd"], m).clip(0.0, 23.99)
    t = day * DAY + np.rint((hour - utc_offset_hours) * 3600).astype(np.int64)
    return np.clip(t, win.t0, win.t1 - 1)


def categorical(rng: np.random.Generator, weights, m: int) -> np.ndarray:
    """``m`` draws of category indices with the given weights."""
    w = np.asarray(weights, dtype=float)
    return rng.choice(len(w), size=m, p=w / w.sum())


def group_starts(group: np.ndarray) -> np.ndarray:
    """For an array sorted by group, the index of the first row of each row's group."""
    n = len(group)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    first = np.ones(n, dtype=bool)
    first[1:] = group[1:] != group[:-1]
    return np.maximum.accumulate(np.where(first, np.arange(n), 0))


def grouped_cumsum(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at each group (rows sorted by group, ``starts`` from group_starts)."""
    if len(x) == 0:
        return x.copy()
    cs = np.cumsum(x)
    return cs - cs[starts] + x[starts]


def last_setter(group: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows sorted by (group, order): for each group with a row in ``mask``, its last such row.

    Returns ``(groups, rows)``.
    """
    rows = np.flatnonzero(mask)
    if len(rows) == 0:
        return rows, rows
    g = group[rows]
    last = np.ones(len(rows), dtype=bool)
    last[:-1] = g[1:] != g[:-1]
    return g[last], rows[last]


def month_end(days: np.ndarray) -> np.ndarray:
    """The last day of the month of each day (days since epoch)."""
    d = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    nxt = (d.astype("datetime64[M]") + 1).astype("datetime64[D]")
    return (nxt - np.timedelta64(1, "D")).astype(np.int64)


def rint_seconds(days: np.ndarray) -> np.ndarray:
    """Float days to integer seconds."""
    return np.rint(np.asarray(days) * DAY).astype(np.int64)


class Pools:
    """Members grouped by an integer key, for vectorised 'pick a member of pool k' draws."""

    def __init__(self, keys: np.ndarray, members: np.ndarray, n_keys: int):
        order = np.argsort(keys, kind="stable")
        self.members = np.asarray(members, dtype=np.int64)[order]
        sk = np.asarray(keys)[order]
        k = np.arange(n_keys)
        self.start = np.searchsorted(sk, k, "left")
        self.count = np.searchsorted(sk, k, "right") - self.start

    def pick(self, keys: np.ndarray, u: np.ndarray) -> np.ndarray:
        """A uniform member of each key's pool, -1 where the pool is empty."""
        cnt = self.count[keys]
        j = np.minimum((u * cnt).astype(np.int64), np.maximum(cnt - 1, 0))
        pos = np.minimum(self.start[keys] + j, max(len(self.members) - 1, 0))
        if len(self.members) == 0:
            return np.full(len(keys), -1, dtype=np.int64)
        return np.where(cnt > 0, self.members[pos], -1)

    def pick_other(self, keys: np.ndarray, current: np.ndarray, u: np.ndarray) -> np.ndarray:
        """A member other than ``current`` (uniform when current is in the pool); -1 if none."""
        cnt = self.count[keys]
        j = np.minimum((u * (cnt - 1)).astype(np.int64), np.maximum(cnt - 2, 0))
        if len(self.members) == 0:
            return np.full(len(keys), -1, dtype=np.int64)
        last = self.members[np.minimum(self.start[keys] + np.maximum(cnt - 1, 0), len(self.members) - 1)]
        cand = self.members[np.minimum(self.start[keys] + j, len(self.members) - 1)]
        cand = np.where(cand == current, last, cand)
        return np.where(cnt >= 2, cand, -1)


def owner_at(t: np.ndarray, owner0: np.ndarray, t_change: np.ndarray, owner1: np.ndarray) -> np.ndarray:
    """The owner at instant ``t`` given one optional change (t_change = NEVER when none)."""
    return np.where(t >= t_change, owner1, owner0)


def person_names(rng: np.random.Generator, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Random first and last name indices."""
    return rng.integers(0, len(FIRST_NAMES), m), rng.integers(0, len(LAST_NAMES), m)


def join_names(first: np.ndarray, last: np.ndarray, sep: str = " ") -> pa.Array:
    """"First Last" text."""
    return pc.binary_join_element_wise(A.vocab(FIRST_NAMES, first), A.vocab(LAST_NAMES, last), sep)


# ---------------------------------------------------------------------------------- company world


@dataclass
class EventParts:
    """Events of one aggregate type in fold order: numpy columns plus the payload text."""

    agg_type: int
    agg_num: np.ndarray  # 1-based number in the aggregate's id
    width: int
    seq: np.ndarray
    etype: np.ndarray
    t: np.ndarray
    actor: np.ndarray  # rep index, -1 for none
    payload: pa.Array


@dataclass
class Company:
    """A tenant's long-lived entities (numpy arrays) and its id widths."""

    company_id: str
    index: int
    name: str
    currency: str
    utc_offset_hours: float
    n_deals: int
    win: Window
    widths: dict
    # territories
    terr_lat: np.ndarray
    terr_lon: np.ndarray
    # reps
    rep_terr: np.ndarray
    ae_terr_pool: Pools
    sdr_terr_pool: Pools
    ae_all_pool: Pools
    # accounts (sorted by created_at; index i is acct-(i+1))
    acc_created: np.ndarray
    acc_industry: np.ndarray
    acc_employees: np.ndarray
    acc_terr: np.ndarray
    acc_owner0: np.ndarray
    acc_owner_t: np.ndarray
    acc_owner1: np.ndarray
    acc_name_a: np.ndarray
    acc_name_b: np.ndarray
    acc_cum_weight: np.ndarray
    acc_potential: np.ndarray  # currency units
    acc_lat: np.ndarray
    acc_lon: np.ndarray
    acc_workload: np.ndarray
    # products
    prod_price: np.ndarray  # currency units
    prod_names: tuple


def deal_split(rng: np.random.Generator, deals: int, companies: int) -> np.ndarray:
    """Split the total deal count between companies, unevenly (Dirichlet shares)."""
    if companies == 1:
        return np.array([deals], dtype=np.int64)
    shares = rng.dirichlet(np.full(companies, PARAMS["sizing"]["deal_company_share_dirichlet_alpha"]))
    raw = shares * deals
    counts = np.floor(raw).astype(np.int64)
    rest = deals - int(counts.sum())
    if rest:
        counts[np.argsort(-(raw - counts), kind="stable")[:rest]] += 1
    # every company gets a deal when there are enough to go round
    while deals >= companies and (counts == 0).any():
        counts[np.argmax(counts)] -= 1
        counts[np.flatnonzero(counts == 0)[0]] += 1
    return counts


def _digits(n: int) -> int:
    return len(str(max(int(n), 1)))


def build_company(
    rng: np.random.Generator, index: int, n_deals: int, win: Window
) -> tuple[Company, dict[str, pa.Table]]:
    """Create a company: territories, reps, products and the numeric arrays of its accounts.

    Returns the :class:`Company` and its small entity tables (companies, territories, reps,
    products); accounts, contacts and account events come from :func:`account_slices`.
    """
    sz, ap = PARAMS["sizing"], PARAMS["accounts"]
    company_id = f"c{index + 1}"
    market = MARKETS[index % len(MARKETS)]
    name = COMPANY_NAMES[index % len(COMPANY_NAMES)]
    if index >= len(COMPANY_NAMES):
        name = f"{name} {index // len(COMPANY_NAMES) + 1}"
    n_ae = max(3, round(sz["ae_coef"] * n_deals ** sz["ae_exp"]))
    n_sdr = max(1, round(n_ae / 3))
    n_inactive = round(sz["inactive_rep_share"] * (n_ae + n_sdr))
    n_reps = n_ae + n_sdr + n_inactive
    n_terr = int(min(max(2, round(n_ae / 5)), sz["territories_max"], n_ae))
    n_acc = max(sz["accounts_min"], round(n_deals * sz["accounts_per_deal"]))
    widths = {
        "territory": max(2, _digits(n_terr)),
        "rep": max(4, _digits(n_reps)),
        "account": max(5, _digits(n_acc)),
        "contact": max(6, _digits(6 * n_acc)),
        "product": 3,
        "deal": max(6, _digits(n_deals)),
        "lead": max(6, _digits(3 * n_deals)),
        "activity": max(7, _digits(4 * n_deals)),
    }

    # ---- territories: market cities in random order, repeated with a suffix when they run out
    cities = market["cities"]
    order = rng.permutation(len(cities))
    t_city = order[np.arange(n_terr) % len(cities)]
    rounds = np.arange(n_terr) // len(cities)
    terr_lat = np.array([cities[i][2] for i in t_city]) + np.where(rounds > 0, rng.normal(0, 0.5, n_terr), 0)
    terr_lon = np.array([cities[i][3] for i in t_city]) + np.where(rounds > 0, rng.normal(0, 0.5, n_terr), 0)
    terr_lat, terr_lon = terr_lat.round(4), terr_lon.round(4)
    terr_names = [cities[i][0] + (f" {r + 1}" if r else "") for i, r in zip(t_city, rounds)]
    terr_regions = [cities[i][1] for i in t_city]
    territories = pa.table(
        {
            "company_id": pa.array([company_id] * n_terr, pa.string()),
            "territory_id": A.ids("terr-", np.arange(1, n_terr + 1), widths["territory"]),
            "name": pa.array(terr_names, pa.string()),
            "region": pa.array(terr_regions, pa.string()),
            "center_lat": pa.array(terr_lat),
            "center_lon": pa.array(terr_lon),
        }
    )

    # ---- accounts
    n_pre = math.ceil(sz["accounts_existing_share"] * n_acc)
    hist = sz["accounts_history_years"] * 365 * DAY
    created = np.r_[
        rng.integers(win.t0 - hist, win.t0, n_pre),
        arrival_times(rng, n_acc - n_pre, win, market["utc_offset_hours"]),
    ]
    created = np.sort(created)
    industry = categorical(rng, INDUSTRY_WEIGHTS, n_acc)
    employees = np.clip(
        np.rint(
            rng.lognormal(math.log(ap["employees_lognormal_median"]), ap["employees_lognormal_sigma"], n_acc)
        ),
        2,
        250_000,
    ).astype(np.int64)
    segment = np.searchsorted(np.asarray(SEGMENT_EMPLOYEES), employees, side="right")
    potential_units = np.maximum(
        1000,
        np.round(
            employees ** ap["potential_per_employee_pow"]
            * ap["potential_scale"]
            * rng.lognormal(0, ap["potential_lognormal_sigma"], n_acc)
            / 1000
        )
        * 1000,
    ).astype(np.int64)
    terr_w = rng.dirichlet(np.full(n_terr, 4.0))
    acc_terr = categorical(rng, terr_w, n_acc).astype(np.int64)
    lat = np.round(terr_lat[acc_terr] + rng.normal(0, ap["location_sd_deg"][0], n_acc), 5)
    lon = np.round(terr_lon[acc_terr] + rng.normal(0, ap["location_sd_deg"][1], n_acc), 5)
    # expected deal value by segment: accounts are picked by sqrt(potential), amounts grow with size
    amount_w = np.sqrt(potential_units) * (employees / 100.0) ** PARAMS["deals"]["initial_amount"]["employees_pow"]
    seg_amount = np.bincount(segment, weights=amount_w, minlength=3) / amount_w.sum()

    # ---- reps: AEs (every territory gets one first), SDRs, a few inactive former reps
    role_ae = np.r_[np.ones(n_ae, bool), np.zeros(n_sdr, bool), np.ones(n_inactive, bool)]
    active = np.r_[np.ones(n_ae + n_sdr, bool), np.zeros(n_inactive, bool)]
    rep_terr = np.r_[
        np.arange(n_terr),  # n_terr <= n_ae: every territory has an account executive
        rng.integers(0, n_terr, n_ae - n_terr),
        rng.integers(0, n_terr, n_sdr),
        rng.integers(0, n_terr, n_inactive),
    ].astype(np.int64)
    # AE teams sized to the segments' share of the business (each team at least a tenth)
    team_w = np.maximum(seg_amount, 0.1)
    team_w = team_w / team_w.sum()
    team = np.r_[categorical(rng, team_w, n_ae), np.full(n_sdr, 3), categorical(rng, team_w, n_inactive)]
    team_names = TEAMS + (SDR_TEAM,)
    quota_noise = rng.lognormal(0, PARAMS["reps"]["quota_lognormal_sigma"], n_reps)
    fte = np.array([1.0, 0.8, 0.5])[categorical(rng, (0.85, 0.1, 0.05), n_reps)]
    capacity = np.round(PARAMS["reps"]["capacity_hours_per_fte"] * fte * rng.uniform(0.9, 1.1, n_reps), 1)
    skill = np.round(rng.beta(5, 3, n_reps), 3)
    rf, rl = person_names(rng, n_reps)
    rep_names = join_names(rf, rl)
    domain = name.lower().replace(" ", "") + ".example"
    # a number disambiguates namesakes so that emails are unique within the company
    pair = rf * len(LAST_NAMES) + rl
    _, first_pos, inverse = np.unique(pair, return_index=True, return_inverse=True)
    dup = first_pos[inverse] != np.arange(n_reps)
    number = np.char.mod("%d", np.arange(1, n_reps + 1))
    suffix = pa.array(np.where(dup, number, "").astype(object), pa.string())
    rep_email = pc.utf8_lower(
        pc.binary_join_element_wise(
            A.vocab(FIRST_NAMES, rf), ".", A.vocab(LAST_NAMES, rl), suffix, "@" + domain, ""
        )
    )
    home_lat = np.round(terr_lat[rep_terr] + rng.normal(0, 0.25, n_reps), 5)
    home_lon = np.round(terr_lon[rep_terr] + rng.normal(0, 0.3, n_reps), 5)
    start_day = win.t0 // DAY
    hired = start_day - rng.integers(60, 2500, n_reps)
    rep_idx = np.arange(n_reps)
    ae = role_ae & active
    sdr = ~role_ae & active
    ae_tt_pool = Pools(rep_terr[ae] * 3 + team[ae], rep_idx[ae], n_terr * 3)
    ae_terr_pool = Pools(rep_terr[ae], rep_idx[ae], n_terr)
    sdr_terr_pool = Pools(rep_terr[sdr], rep_idx[sdr], n_terr)
    ae_all_pool = Pools(np.zeros(int(ae.sum()), np.int64), rep_idx[ae], 1)

    # ---- account owners and workload
    # serving effort grows with size; scaled so the active AEs are busy but not full
    workload = (10 + 6 * np.log1p(employees)) * rng.lognormal(0, 0.3, n_acc)
    ae_hours = capacity[role_ae & active].sum()
    workload = np.round(workload * PARAMS["reps"]["workload_utilisation"] * ae_hours / workload.sum(), 1)
    u = rng.random(n_acc)
    owner0 = ae_tt_pool.pick(acc_terr * 3 + segment, u)
    owner0 = np.where(owner0 >= 0, owner0, ae_terr_pool.pick(acc_terr, u))
    change = rng.random(n_acc) < ap["owner_change_probability"]
    lo = np.maximum(created, win.t0)
    t_change = lo + (rng.random(n_acc) * (win.t1 - lo)).astype(np.int64)
    u2 = rng.random(n_acc)
    owner1 = ae_terr_pool.pick_other(acc_terr, owner0, u2)
    owner1 = np.where(owner1 >= 0, owner1, ae_all_pool.pick_other(np.zeros(n_acc, np.int64), owner0, u2))
    change &= (owner1 >= 0) & (t_change < win.t1)
    t_change = np.where(change, t_change, NEVER)
    owner1 = np.where(change, owner1, owner0)
    name_a = rng.integers(0, len(ACCOUNT_WORDS), n_acc)
    name_b = rng.integers(0, len(ACCOUNT_SUFFIXES), n_acc)
    # ---- products
    n_prod = int(rng.integers(6, len(PRODUCT_CATALOGUE) + 1))
    pick = np.sort(rng.choice(len(PRODUCT_CATALOGUE), n_prod, replace=False))
    price = np.array(
        [
            round(PRODUCT_CATALOGUE[i][2] * float(f) / 10) * 10
            for i, f in zip(pick, rng.uniform(0.8, 1.25, n_prod))
        ],
        dtype=np.int64,
    )
    prod_names = tuple(PRODUCT_CATALOGUE[i][0] for i in pick)
    products = pa.table(
        {
            "company_id": pa.array([company_id] * n_prod, pa.string()),
            "product_id": A.ids("prod-", np.arange(1, n_prod + 1), widths["product"]),
            "name": pa.array(prod_names, pa.string()),
            "family": pa.array([PRODUCT_CATALOGUE[i][1] for i in pick], pa.string()),
            "list_price": A.money(price * 100),
        }
    )

    # quotas: the bookings an AE can expect (the pipeline an SDR sources), per team, at the
    # target attainment
    rp, dp = PARAMS["reps"], PARAMS["deals"]
    years = (win.t1 - win.t0) / (365.25 * DAY)
    amount = (
        price.mean()
        * np.mean((employees / 100.0) ** dp["initial_amount"]["employees_pow"])
        * math.exp(dp["initial_amount"]["lognormal_sigma"] ** 2 / 2)
    )
    share = PARAMS["leads"]["deal_share_from_leads"]
    p_win = win_probability_from_stage()
    p_win = share * p_win[DEAL_STAGES_OPEN[0]] + (1 - share) * sum(
        w * p_win[st] for w, st in zip(dp["direct_start_stage_probability"], DEAL_STAGES_OPEN)
    )
    bookings = n_deals * p_win * amount / years
    ae_fte = np.bincount(team[role_ae & active], weights=fte[role_ae & active], minlength=3)[:3]
    per_ae_fte = bookings * seg_amount / np.maximum(ae_fte, 0.5)
    sdr_fte = max(float(fte[~role_ae & active].sum()), 0.5)
    per_sdr_fte = n_deals * share * amount / years / sdr_fte
    base = np.where(team < 3, per_ae_fte[np.minimum(team, 2)], per_sdr_fte)
    quota = np.maximum(1000, np.round(base * fte * quota_noise / rp["quota_attainment_target"] / 1000) * 1000)
    quota = quota.astype(np.int64)
    reps = pa.table(
        {
            "company_id": pa.array([company_id] * n_reps, pa.string()),
            "rep_id": A.ids("rep-", np.arange(1, n_reps + 1), widths["rep"]),
            "name": rep_names,
            "email": rep_email,
            "team": A.vocab(team_names, team),
            "territory_id": A.ids("terr-", rep_terr + 1, widths["territory"]),
            "role": A.vocab(("AE", "SDR"), np.where(role_ae, 0, 1)),
            "skill": pa.array(skill),
            "quota": A.money(quota * 100),
            "capacity_hours": pa.array(capacity),
            "fte": pa.array(fte),
            "home_lat": pa.array(home_lat),
            "home_lon": pa.array(home_lon),
            "hired_at": A.dates(hired),
            "is_active": pa.array(active),
        }
    )

    companies = pa.table(
        {
            "company_id": pa.array([company_id], pa.string()),
            "name": pa.array([name], pa.string()),
            "home_currency": pa.array([market["currency"]], pa.string()),
            "fiscal_year_start_month": pa.array([(1, 4, 7, 2, 10)[index % 5]], pa.int32()),
            "created_at": A.timestamps(np.array([win.t0 - hist - (180 + 97 * index) * DAY])),
        }
    )

    company = Company(
        company_id=company_id,
        index=index,
        name=name,
        currency=market["currency"],
        utc_offset_hours=market["utc_offset_hours"],
        n_deals=n_deals,
        win=win,
        widths=widths,
        terr_lat=terr_lat,
        terr_lon=terr_lon,
        rep_terr=rep_terr,
        ae_terr_pool=ae_terr_pool,
        sdr_terr_pool=sdr_terr_pool,
        ae_all_pool=ae_all_pool,
        acc_created=created,
        acc_industry=industry,
        acc_employees=employees,
        acc_terr=acc_terr,
        acc_owner0=owner0,
        acc_owner_t=t_change,
        acc_owner1=owner1,
        acc_name_a=name_a,
        acc_name_b=name_b,
        acc_cum_weight=np.cumsum(np.sqrt(potential_units.astype(float))),
        acc_potential=potential_units,
        acc_lat=lat,
        acc_lon=lon,
        acc_workload=workload,
        prod_price=price,
        prod_names=prod_names,
    )
    tables = {"companies": companies, "territories": territories, "reps": reps, "products": products}
    return company, tables


ACCOUNT_SLICE = 100_000


def account_slices(rng: np.random.Generator, co: Company):
    """Yield ``(accounts, contacts, account EventParts)`` for slices of ACCOUNT_SLICE accounts.

    The company's account arrays are numeric; their text tables, contacts and events are built a
    slice at a time so that memory stays bounded for large worlds.
    """
    sz, win, widths, company_id = PARAMS["sizing"], co.win, co.widths, co.company_id
    n_total = len(co.acc_created)
    contact_offset = 0
    q = A.json_quoted
    for lo_ in range(0, n_total, ACCOUNT_SLICE):
        acc = np.arange(lo_, min(lo_ + ACCOUNT_SLICE, n_total))
        n_acc = len(acc)
        created, industry, employees = co.acc_created[acc], co.acc_industry[acc], co.acc_employees[acc]
        potential_units, acc_terr = co.acc_potential[acc], co.acc_terr[acc]
        owner0, owner1, t_change = co.acc_owner0[acc], co.acc_owner1[acc], co.acc_owner_t[acc]
        change = t_change < NEVER
        name_a, name_b = co.acc_name_a[acc], co.acc_name_b[acc]
        acc_names = pc.binary_join_element_wise(
            A.vocab(ACCOUNT_WORDS, name_a), A.vocab(ACCOUNT_SUFFIXES, name_b), " "
        )
        final_owner = np.where(change, owner1, owner0)
        accounts = pa.table(
            {
                "company_id": pa.array([company_id] * n_acc, pa.string()),
                "account_id": A.ids("acct-", acc + 1, widths["account"]),
                "name": acc_names,
                "industry": A.vocab(INDUSTRIES, industry),
                "employees": pa.array(employees.astype(np.int32)),
                "potential": A.money(potential_units * 100),
                "lat": pa.array(co.acc_lat[acc]),
                "lon": pa.array(co.acc_lon[acc]),
                "territory_id": A.ids("terr-", acc_terr + 1, widths["territory"]),
                "owner_rep_id": A.ids("rep-", final_owner + 1, widths["rep"]),
                "workload_hours": pa.array(co.acc_workload[acc]),
                "created_at": A.timestamps(created),
            }
        )

        # account events: created (+ owner_changed)
        ch_idx = np.flatnonzero(change)
        n_ch = len(ch_idx)
        ev_acc = np.r_[np.arange(n_acc), ch_idx]
        ev_type = np.r_[np.full(n_acc, E["created"]), np.full(n_ch, E["owner_changed"])]
        is_created = ev_type == E["created"]
        ev_owner = np.r_[owner0, owner1[ch_idx]]
        payload = A.json_objects(
            len(ev_acc),
            [
                ("name", A.scatter(q(acc_names), is_created)),
                ("industry", A.scatter(q(A.vocab(INDUSTRIES, industry)), is_created)),
                ("employees", A.scatter(A.json_number(pa.array(employees)), is_created)),
                ("potential", A.scatter(A.json_number(A.money(potential_units * 100)), is_created)),
                ("territory_id", A.scatter(q(A.ids("terr-", acc_terr + 1, widths["territory"])), is_created)),
                ("owner_rep_id", q(A.ids("rep-", ev_owner + 1, widths["rep"]))),
            ],
        )
        events = EventParts(
            2,
            acc[ev_acc] + 1,
            widths["account"],
            np.r_[np.ones(n_acc, np.int64), np.full(n_ch, 2, np.int64)],
            ev_type,
            np.r_[created, t_change[ch_idx]],
            np.r_[owner0, owner0[ch_idx]],
            payload,
        )

        # contacts
        n_c = 1 + rng.poisson(sz["contacts_extra_poisson_mean"], n_acc)
        c_acc = np.repeat(np.arange(n_acc), n_c)
        m = len(c_acc)
        cf, cl = person_names(rng, m)
        c_created = np.minimum(created[c_acc] + rint_seconds(rng.exponential(30.0, m)), win.t1 - 1)
        c_created = np.maximum(c_created, created[c_acc])
        acc_domain = pc.utf8_lower(
            pc.binary_join_element_wise(
                A.vocab(ACCOUNT_WORDS, name_a[c_acc]), A.vocab(ACCOUNT_SUFFIXES, name_b[c_acc]), ".example", ""
            )
        )
        email = pc.utf8_lower(
            pc.binary_join_element_wise(
                A.vocab(FIRST_NAMES, cf), ".", A.vocab(LAST_NAMES, cl), "@", acc_domain, ""
            )
        )
        contacts = pa.table(
            {
                "company_id": pa.array([company_id] * m, pa.string()),
                "contact_id": A.ids("cont-", contact_offset + np.arange(1, m + 1), widths["contact"]),
                "account_id": A.ids("acct-", acc[c_acc] + 1, widths["account"]),
                "name": join_names(cf, cl),
                "email": email,
                "title": A.vocab(TITLES, rng.integers(0, len(TITLES), m)),
                "created_at": A.timestamps(c_created),
            }
        )
        contact_offset += m
        yield accounts, contacts, events


def pick_accounts(rng: np.random.Generator, co: Company, t: np.ndarray) -> np.ndarray:
    """An account that exists at each instant, weighted by sqrt(potential)."""
    n_before = np.searchsorted(co.acc_created, t, side="right")
    n_before = np.maximum(n_before, 1)
    total = co.acc_cum_weight[n_before - 1]
    r = rng.random(len(t)) * total
    idx = np.searchsorted(co.acc_cum_weight, r, side="right")
    return np.minimum(idx, n_before - 1)


def account_owner_at(co: Company, acc: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The account's owner at instant ``t``."""
    return owner_at(t, co.acc_owner0[acc], co.acc_owner_t[acc], co.acc_owner1[acc])


# --------------------------------------------------------------------------------- event assembly


class EventBlocks:
    """Event columns assembled block by block (one block per kind of event).

    Columns: ``g`` (aggregate index in the chunk), ``t`` (occurred, epoch seconds), ``v`` and
    ``sub`` (tie-breaks: the order within one instant), ``etype`` and any payload columns; a
    column that a block does not give takes its default.
    """

    def __init__(self, **defaults):
        self.defaults = {"v": 0, "sub": 0, **defaults}
        self.blocks: list[dict] = []

    def add(self, g, t, etype, **cols) -> None:
        g = np.asarray(g, dtype=np.int64)
        block = {"g": g, "t": np.asarray(t, dtype=np.int64), "etype": etype, **cols}
        unknown = set(cols) - set(self.defaults)
        if unknown:
            raise KeyError(f"unknown event columns {sorted(unknown)}")
        self.blocks.append(block)

    def fold_order(self, t_end: int) -> dict[str, np.ndarray]:
        """All columns sorted by (g, t, v, sub), without events at or after ``t_end`` nor events
        after an aggregate's deletion; adds ``seq`` (1, 2, ... per aggregate)."""
        names = ["g", "t", "etype", *self.defaults]
        cols = {}
        for name in names:
            parts = []
            for b in self.blocks:
                n = len(b["g"])
                val = b.get(name, self.defaults.get(name))
                parts.append(np.broadcast_to(np.asarray(val), (n,)))
            cols[name] = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        order = np.lexsort((cols["sub"], cols["v"], cols["t"], cols["g"]))
        keep = cols["t"][order] < t_end
        order = order[keep]
        cols = {k: v[order] for k, v in cols.items()}
        g, t = cols["g"], cols["t"]
        is_del = cols["etype"] == E["deleted"]
        if is_del.any():
            t_del = np.full(int(g.max()) + 1, NEVER, dtype=np.int64)
            t_del[g[is_del]] = t[is_del]
            # a deletion sorts last within its instant, so "t <= t_del" keeps what precedes it
            keep = t <= t_del[g]
            cols = {k: v[keep] for k, v in cols.items()}
        starts = group_starts(cols["g"])
        cols["starts"] = starts
        cols["seq"] = np.arange(len(cols["g"])) - starts + 1
        return cols


def _pj_ids(prefix: str, nums: np.ndarray, width: int, mask: np.ndarray) -> pa.Array:
    """Payload JSON of an id field: the quoted id on rows in ``mask``, absent elsewhere."""
    return A.scatter(A.json_quoted(A.ids(prefix, nums[mask], width), escape=False), mask)


def _pj_words(words, idx: np.ndarray, mask: np.ndarray) -> pa.Array:
    """Payload JSON of a vocabulary field on rows in ``mask``."""
    return A.scatter(A.json_quoted(A.vocab(words, idx[mask])), mask)


def _pj_const(text: str, mask: np.ndarray) -> pa.Array:
    """The same JSON text on rows in ``mask``."""
    return pc.if_else(pa.array(mask, pa.bool_()), pa.scalar(text), pa.scalar(None, pa.string()))


def _last(n_groups: int, g: np.ndarray, mask: np.ndarray, values: np.ndarray, default) -> np.ndarray:
    """Per aggregate, the value of the last event (in fold order) that sets the field."""
    out = np.full(n_groups, default, dtype=np.asarray(values).dtype)
    gg, rows = last_setter(g, mask)
    out[gg] = values[rows]
    return out


def _deal_names(co: Company, acc: np.ndarray, product: np.ndarray) -> pa.Array:
    """'Account Name - Product' text."""
    account = pc.binary_join_element_wise(
        A.vocab(ACCOUNT_WORDS, co.acc_name_a[acc]), A.vocab(ACCOUNT_SUFFIXES, co.acc_name_b[acc]), " "
    )
    return pc.binary_join_element_wise(account, A.vocab(co.prod_names, product), " - ")


def _text_column(value: str, n: int) -> pa.Array:
    return pa.array(np.full(n, value, dtype=object), pa.string())


# ------------------------------------------------------------------------------------------ leads


def conversion_logit(
    source: np.ndarray, industry: np.ndarray, employees: np.ndarray, score: np.ndarray
) -> np.ndarray:
    """The lead conversion log-odds of ``PARAMS['leads']['conversion']``."""
    c = PARAMS["leads"]["conversion"]
    src = np.array([c["source"][s] for s in SOURCES])
    ind = np.array([c["industry"][i] for i in INDUSTRIES])
    return (
        c["intercept"]
        + src[source]
        + ind[industry]
        + c["log_employees"] * np.log(employees)
        + c["score"] * score
    )


def _lead_candidates(rng: np.random.Generator, co: Company, m: int) -> dict:
    lp = PARAMS["leads"]
    t = arrival_times(rng, m, co.win, co.utc_offset_hours)
    acc = pick_accounts(rng, co, t)
    source = categorical(rng, SOURCE_WEIGHTS, m)
    score = np.round(100 * rng.beta(*lp["score_beta"], m), 1)
    logit = conversion_logit(source, co.acc_industry[acc], co.acc_employees[acc], score)
    conv = rng.random(m) < 1.0 / (1.0 + np.exp(-logit))
    return {"t": t, "acc": acc, "source": source, "score": score, "conv": conv}


def _draw_leads(rng: np.random.Generator, co: Company, n_converted: int) -> SimpleNamespace:
    """Leads arriving until ``n_converted`` of them convert, with their life cycle and events
    (everything numeric: the payload text needs the deal numbers, known later)."""
    lp, win = PARAMS["leads"], co.win
    cand = {k: [] for k in ("t", "acc", "source", "score", "conv")}
    got = 0
    while got < n_converted:
        batch = _lead_candidates(rng, co, int((n_converted - got) / 0.25) + 16)
        for k in cand:
            cand[k].append(batch[k])
        got += int(batch["conv"].sum())
    n = int(np.flatnonzero(np.concatenate(cand["conv"]))[n_converted - 1]) + 1 if n_converted else 0
    cand = {k: np.concatenate(v)[:n] if v else np.zeros(0, np.int64) for k, v in cand.items()}
    order = np.argsort(cand["t"], kind="stable")  # ids follow arrival
    L = SimpleNamespace(n=n, **{k: v[order] for k, v in cand.items()})
    L.conv = L.conv.astype(bool)
    t = L.t
    # outcome: converted (always before the export), disqualified, or still open
    t_conv = t + np.maximum(rint_seconds(rng.gamma(*lp["conversion_lag_days_gamma"], n)), 60)
    squeeze = t + ((win.t1 - 1 - t) * rng.uniform(0.1, 0.9, n)).astype(np.int64)
    L.t_conv = np.where(t_conv >= win.t1 - 60, squeeze, t_conv)
    t_dq = t + np.maximum(rint_seconds(rng.gamma(*lp["disqualify_lag_days_gamma"], n)), 60)
    dq = ~L.conv & (rng.random(n) < lp["disqualify_probability"]) & (t_dq < win.t1)
    L.t_term = np.where(L.conv, L.t_conv, np.where(dq, t_dq, NEVER))
    L.life_end = np.minimum(L.t_term, win.t1)
    # owners: an SDR of the account's territory (an AE where there is none); some change hands
    terr = co.acc_terr[L.acc]
    u = rng.random(n)
    owner0 = co.sdr_terr_pool.pick(terr, u)
    L.owner0 = np.where(owner0 >= 0, owner0, co.ae_terr_pool.pick(terr, u))
    u = rng.random(n)
    owner1 = co.sdr_terr_pool.pick_other(terr, L.owner0, u)
    L.owner1 = np.where(owner1 >= 0, owner1, co.ae_terr_pool.pick_other(terr, L.owner0, u))
    oc = (rng.random(n) < lp["owner_change_probability"]) & (L.owner1 >= 0)
    L.t_owner = np.where(oc, t + ((L.life_end - t) * rng.random(n)).astype(np.int64), NEVER)
    # deletion: after the outcome, or while open
    t_del = np.where(L.t_term < NEVER, L.t_term, t) + np.maximum(
        rint_seconds(rng.exponential(lp["delete_delay_days_mean"], n)), 1
    )
    deleted = (rng.random(n) < lp["delete_probability"]) & (t_del < win.t1)
    # score updates; the last one sets the score the conversion model saw
    k_upd = rng.poisson(lp["score_updates_poisson_mean"], n)
    L.score0 = np.where(k_upd > 0, np.round(100 * rng.beta(*lp["score_beta"], n), 1), L.score)
    L.known = rng.random(n) < lp["account_known_at_creation_probability"]
    L.first, L.last = person_names(rng, n)
    ui = np.repeat(np.arange(n), k_upd)
    has_term = L.t_term[ui] < NEVER
    t_u = t[ui] + np.maximum(1, ((L.life_end[ui] - t[ui]) * rng.random(len(ui))).astype(np.int64))
    tie = has_term & (rng.random(len(ui)) < PARAMS["deals"]["tie_probability"])
    t_u = np.where(tie, L.t_term[ui], t_u)
    t_u = np.minimum(t_u, np.where(has_term, L.t_term[ui], win.t1 - 1))

    ev = EventBlocks()
    ev.add(np.arange(n), t, E["created"])
    ev.add(ui, t_u, E["updated"], sub=1)
    oci = np.flatnonzero(oc)
    ev.add(oci, L.t_owner[oci], E["owner_changed"], sub=2)
    ti = np.flatnonzero(L.t_term < NEVER)
    ev.add(ti, L.t_term[ti], np.where(L.conv[ti], E["converted"], E["disqualified"]), sub=5)
    di = np.flatnonzero(deleted)
    ev.add(di, t_del[di], E["deleted"], sub=9)
    L.ev = ev.fold_order(win.t1)
    # score carried by each update: a path from score0 to the final score, the last exactly final
    g, et = L.ev["g"], L.ev["etype"]
    is_u = et == E["updated"]
    j = grouped_cumsum(is_u.astype(np.int64), L.ev["starts"])
    k = k_upd[g]
    path = np.round(L.score0[g] + (L.score[g] - L.score0[g]) * j / np.maximum(k, 1), 1)
    L.ev["score"] = np.where(is_u, np.where(j == k, L.score[g], path), L.score0[g])
    L.gone = np.zeros(n, bool)
    L.gone[g[et == E["deleted"]]] = True
    return L


def _lead_output(co: Company, L: SimpleNamespace, lead_num: np.ndarray, deal_num: np.ndarray):
    """The leads table (current state, by folding the events) and the lead events."""
    W, ev, n = co.widths, L.ev, L.n
    g, et, t = ev["g"], ev["etype"], ev["t"]
    is_c, is_u, is_oc = et == E["created"], et == E["updated"], et == E["owner_changed"]
    is_conv = et == E["converted"]
    owner_ev = np.where(is_oc, L.owner1[g], L.owner0[g])
    actor = np.where(is_oc, L.owner0[g], owner_at(t, L.owner0[g], L.t_owner[g], L.owner1[g]))
    acc_set = (is_c & L.known[g]) | (is_conv & ~L.known[g])
    acc_g, ind_g = L.acc[g], co.acc_industry[L.acc[g]]
    payload = A.json_objects(
        len(g),
        [
            ("account_id", _pj_ids("acct-", acc_g + 1, W["account"], acc_set)),
            ("owner_rep_id", _pj_ids("rep-", owner_ev + 1, W["rep"], is_c | is_oc)),
            ("name", A.scatter(A.json_quoted(join_names(L.first[g[is_c]], L.last[g[is_c]])), is_c)),
            ("source", _pj_words(SOURCES, L.source[g], is_c)),
            ("industry", _pj_words(INDUSTRIES, ind_g, is_c)),
            ("employees", A.scatter(A.json_number(pa.array(co.acc_employees[acc_g[is_c]])), is_c)),
            ("score", A.scatter(A.json_number(pa.array(ev["score"][is_c | is_u])), is_c | is_u)),
            ("status", _pj_const('"open"', is_c)),
            ("deal_id", _pj_ids("deal-", deal_num[g], W["deal"], is_conv)),
        ],
    )
    parts = EventParts(1, lead_num[g], W["lead"], ev["seq"], et, t, actor, payload)

    status_ev = np.select([is_c, is_conv, et == E["disqualified"]], [0, 1, 2], -1)
    f_acc = _last(n, g, acc_set, acc_g, -1)
    f_owner = _last(n, g, is_c | is_oc, owner_ev, -1)
    f_score = _last(n, g, is_c | is_u, ev["score"], np.nan)
    f_status = _last(n, g, status_ev >= 0, status_ev, 0)
    f_conv_t = _last(n, g, is_conv, t, -1)
    converted = f_conv_t >= 0
    keep = ~L.gone
    table = pa.table(
        {
            "company_id": _text_column(co.company_id, int(keep.sum())),
            "lead_id": A.ids("lead-", lead_num[keep], W["lead"]),
            "account_id": A.ids("acct-", f_acc[keep] + 1, W["account"], valid=f_acc[keep] >= 0),
            "owner_rep_id": A.ids("rep-", f_owner[keep] + 1, W["rep"]),
            "name": join_names(L.first[keep], L.last[keep]),
            "source": A.vocab(SOURCES, L.source[keep]),
            "industry": A.vocab(INDUSTRIES, co.acc_industry[L.acc[keep]]),
            "employees": pa.array(co.acc_employees[L.acc[keep]].astype(np.int32)),
            "score": pa.array(f_score[keep]),
            "status": A.vocab(LEAD_STATUSES, f_status[keep]),
            "deal_id": A.ids("deal-", deal_num[keep], W["deal"], valid=converted[keep]),
            "created_at": A.timestamps(L.t[keep]),
            "converted_at": A.timestamps(f_conv_t[keep], valid=converted[keep]),
        }
    )
    return table, parts


# ------------------------------------------------------------------------------------------ deals


def _stage_visits(
    rng: np.random.Generator, start_stage: np.ndarray, t0: np.ndarray, t_end: int
) -> tuple[dict, dict]:
    """Walk deals through the open stages.

    In each visit of stage s the deal stays a lognormal time (zero now and then when it was moved
    there by a stage change: reps click through stages), then advances with probability
    ``advance_probability[s]`` (from the last stage: won) or is lost. A lost deal may reopen in the
    stage it was lost from and walk again (at most ``max_passes`` walks).

    Returns the visits (deal, stage, entry, exit, outcome 0 advance / 1 won / 2 lost, visit number)
    and the reopenings (deal, stage, time, number of the visit that was lost).
    """
    dp = PARAMS["deals"]
    n = len(t0)
    med = np.asarray(dp["stage_duration_days_lognormal_median"])
    sig = np.asarray(dp["stage_duration_days_lognormal_sigma"])
    adv_p = np.asarray(dp["advance_probability"])
    last_stage = _N_STAGES - 1
    cur, t_cur = start_stage.astype(np.int64).copy(), t0.copy()
    alive = np.ones(n, bool)
    by_change = np.zeros(n, bool)
    visit_no = np.zeros(n, np.int64)
    vis = {k: [] for k in ("d", "s", "tin", "tout", "oc", "v")}
    reo = {k: [] for k in ("d", "s", "t", "v")}
    for walk in range(dp["max_passes"]):
        again = np.zeros(n, bool)
        for s in range(_N_STAGES):
            idx = np.flatnonzero(alive & (cur == s) & (t_cur < t_end))
            m = len(idx)
            dur = rint_seconds(rng.lognormal(np.log(med[s]), sig[s], m))
            zero = by_change[idx] & (rng.random(m) < dp["zero_duration_probability"])
            t_out = t_cur[idx] + np.where(zero, 0, np.maximum(dur, 1))
            adv = rng.random(m) < adv_p[s]
            visit_no[idx] += 1
            for key, val in (("d", idx), ("s", np.full(m, s)), ("tin", t_cur[idx]), ("tout", t_out),
                             ("oc", np.where(adv, 0 if s < last_stage else 1, 2)), ("v", visit_no[idx])):  # fmt: skip
                vis[key].append(val)
            moved = idx[adv]
            if s < last_stage:
                cur[moved], t_cur[moved], by_change[moved] = s + 1, t_out[adv], True
            else:
                alive[moved] = False
            lost = idx[~adv]
            alive[lost] = False
            if walk < dp["max_passes"] - 1:
                r = rng.random(len(lost)) < dp["reopen_probability"]
                back = lost[r]
                gap = np.maximum(3600, rint_seconds(rng.exponential(dp["reopen_gap_days_mean"], len(back))))
                t_back = t_out[~adv][r] + gap
                for key, val in (("d", back), ("s", np.full(len(back), s)), ("t", t_back),
                                 ("v", visit_no[back])):  # fmt: skip
                    reo[key].append(val)
                again[back] = True
                cur[back], t_cur[back], by_change[back] = s, t_back, False
        alive = again
    cat = lambda d: {k: np.concatenate(v).astype(np.int64) for k, v in d.items()}  # noqa: E731
    return cat(vis), cat(reo)


def _draw_deals(rng: np.random.Generator, co: Company, L: SimpleNamespace, n_direct: int) -> SimpleNamespace:
    """Deals from converted leads plus direct deals (existing customers), with their events."""
    dp, win = PARAMS["deals"], co.win
    conv = np.flatnonzero(L.conv)
    t_direct = arrival_times(rng, n_direct, win, co.utc_offset_hours)
    acc_direct = pick_accounts(rng, co, t_direct)
    start_direct = categorical(rng, dp["direct_start_stage_probability"], n_direct)
    t0 = np.r_[L.t_conv[conv], t_direct]
    order = np.lexsort((np.arange(len(t0)), t0))  # ids follow creation
    D = SimpleNamespace(n=len(t0))
    D.t0 = t0[order]
    D.acc = np.r_[L.acc[conv], acc_direct][order]
    D.lead = np.r_[conv, np.full(n_direct, -1)][order]
    D.start = np.r_[np.zeros(len(conv), np.int64), start_direct][order]
    n = D.n
    D.owner0 = account_owner_at(co, D.acc, D.t0)
    D.product = rng.integers(0, len(co.prod_price), n)
    ia = dp["initial_amount"]
    raw = (
        co.prod_price[D.product]
        * (co.acc_employees[D.acc] / 100.0) ** ia["employees_pow"]
        * rng.lognormal(0, ia["lognormal_sigma"], n)
    )
    D.amount0 = np.maximum(ia["minimum"], np.round(raw / ia["rounding"]) * ia["rounding"])  # units
    med = np.asarray(dp["stage_duration_days_lognormal_median"])
    remaining = np.cumsum(med[::-1])[::-1][D.start]
    planned = remaining * rng.uniform(*dp["expected_close"]["planned_fraction"], n)
    D.ecd0 = month_end(D.t0 // DAY + np.rint(planned).astype(np.int64))

    vis, reo = _stage_visits(rng, D.start, D.t0, win.t1)
    nv = len(vis["d"])

    def inside(rate_per_stage):
        """Events at random instants within visits (a share of them at the visit's exit)."""
        k = rng.poisson(np.asarray(rate_per_stage)[vis["s"]])
        vi = np.repeat(np.arange(nv), k)
        span = vis["tout"][vi] - vis["tin"][vi]
        t = vis["tin"][vi] + (span * rng.random(len(vi))).astype(np.int64)
        tie = rng.random(len(vi)) < dp["tie_probability"]
        return vi, np.where(tie, vis["tout"][vi], t)

    am_vi, am_t = inside(dp["amount_change_poisson_mean_per_stage_visit"])
    am_s = vis["s"][am_vi]
    am_lf = rng.normal(
        np.asarray(dp["amount_change_log_factor_mean"])[am_s],
        np.asarray(dp["amount_change_log_factor_sd"])[am_s],
    )
    pu_vi, pu_t = inside(dp["push_poisson_mean_per_stage_visit"])
    pd_ = dp["push_days"]
    pu_days = pd_["unit_days"] * (1 + rng.poisson(pd_["extra_weeks_poisson_mean"], len(pu_vi)))
    oc = vis["oc"]
    won_amt = (oc == 1) & (rng.random(nv) < dp["won_amount_probability"])
    won_lf = rng.normal(dp["won_amount_log_factor_mean"], dp["won_amount_log_factor_sd"], nv)
    won_lf = np.where(won_amt, won_lf, 0.0)
    reason = np.where(oc == 2, categorical(rng, LOST_REASON_WEIGHTS, nv), -1)
    # owner change within the deal's life; deletion of some direct deals
    last_t = D.t0.copy()
    np.maximum.at(last_t, vis["d"], vis["tout"])
    last_t = np.where(last_t > D.t0, last_t, D.t0 + 30 * DAY)
    t_oc = D.t0 + np.maximum(1, ((last_t - D.t0) * rng.random(n)).astype(np.int64))
    u = rng.random(n)
    terr = co.acc_terr[D.acc]
    owner1 = co.ae_terr_pool.pick_other(terr, D.owner0, u)
    D.owner1 = np.where(owner1 >= 0, owner1, co.ae_all_pool.pick_other(np.zeros(n, np.int64), D.owner0, u))
    oc_deal = (rng.random(n) < dp["owner_change_probability"]) & (D.owner1 >= 0)
    D.t_owner = np.where(oc_deal, t_oc, NEVER)
    t_del = D.t0 + np.maximum(60, rint_seconds(rng.exponential(dp["delete_delay_days_mean"], n)))
    deleted = (D.lead < 0) & (rng.random(n) < dp["delete_probability_direct_deals"])

    # stage: 0..3 open (in the payload), 4 closed_won, 5 closed_lost (set by the lifecycle)
    ev = EventBlocks(stage=-1, lf=0.0, amt=False, push=0, reason=-1)
    ev.add(np.arange(n), D.t0, E["created"], stage=D.start, amt=True)
    exit_type = np.select([oc == 0, oc == 1], [E["stage_changed"], E["won"]], E["lost"])
    exit_stage = np.select([oc == 0, oc == 1], [vis["s"] + 1, 4], 5)
    ev.add(
        vis["d"], vis["tout"], exit_type,
        v=vis["v"], sub=5, stage=exit_stage, lf=won_lf, amt=won_amt, reason=reason,
    )  # fmt: skip
    ev.add(vis["d"][am_vi], am_t, E["amount_changed"], v=vis["v"][am_vi], sub=1, lf=am_lf, amt=True)
    ev.add(vis["d"][pu_vi], pu_t, E["close_date_changed"], v=vis["v"][pu_vi], sub=2, push=pu_days)
    ev.add(reo["d"], reo["t"], E["reopened"], v=reo["v"], sub=6, stage=reo["s"], reason=-2)  # -2: JSON null
    oci = np.flatnonzero(oc_deal)
    ev.add(oci, t_oc[oci], E["owner_changed"], sub=3)
    di = np.flatnonzero(deleted)
    ev.add(di, t_del[di], E["deleted"], v=1 << 40, sub=9)
    ev = ev.fold_order(win.t1)
    g, et, starts = ev["g"], ev["etype"], ev["starts"]
    # amounts: a multiplicative walk from the initial amount; pushes add up
    rnd = dp["amount_rounding"]
    walked = np.maximum(rnd, np.round(D.amount0[g] * np.exp(grouped_cumsum(ev["lf"], starts)) / rnd) * rnd)
    ev["amount_cents"] = np.rint(np.where(et == E["created"], D.amount0[g], walked) * 100).astype(np.int64)
    ev["ecd"] = D.ecd0[g] + grouped_cumsum(ev["push"], starts)
    D.ev = ev
    D.gone = np.zeros(n, bool)
    D.gone[g[et == E["deleted"]]] = True
    return D


def _deal_output(co: Company, D: SimpleNamespace, L: SimpleNamespace, deal_num: np.ndarray):
    """The deals table (current state, by folding the events) and the deal events."""
    W, ev, n = co.widths, D.ev, D.n
    g, et, t = ev["g"], ev["etype"], ev["t"]
    is_c, is_oc, is_push = et == E["created"], et == E["owner_changed"], et == E["close_date_changed"]
    owner_ev = np.where(is_oc, D.owner1[g], D.owner0[g])
    actor = np.where(is_oc, D.owner0[g], owner_at(t, D.owner0[g], D.t_owner[g], D.owner1[g]))
    # a converted lead's deal is created by the lead's owner
    rows = np.flatnonzero(is_c & (D.lead[g] >= 0))
    lead = D.lead[g[rows]]
    actor[rows] = owner_at(t[rows], L.owner0[lead], L.t_owner[lead], L.owner1[lead])
    stage, amt, reason = ev["stage"], ev["amt"], ev["reason"]
    in_payload = (stage >= 0) & (stage < _N_STAGES)
    has_reason = reason != -1
    reason_text = pc.if_else(
        pa.array(reason[has_reason] == -2),
        pa.scalar("null"),
        A.json_quoted(A.vocab(LOST_REASONS, np.maximum(reason[has_reason], 0))),
    )
    cg = g[is_c]
    ecd_text = pc.cast(A.dates(ev["ecd"][is_c | is_push]), pa.string())
    payload = A.json_objects(
        len(g),
        [
            ("account_id", _pj_ids("acct-", D.acc[g] + 1, W["account"], is_c)),
            ("owner_rep_id", _pj_ids("rep-", owner_ev + 1, W["rep"], is_c | is_oc)),
            ("name", A.scatter(A.json_quoted(_deal_names(co, D.acc[cg], D.product[cg])), is_c)),
            ("stage", _pj_words(DEAL_STAGES_OPEN, stage, in_payload)),
            ("amount", A.scatter(A.json_number(A.money(ev["amount_cents"][amt])), amt)),
            ("currency", _pj_const(f'"{co.currency}"', is_c)),
            ("expected_close_date", A.scatter(A.json_quoted(ecd_text), is_c | is_push)),
            ("lost_reason", A.scatter(reason_text, has_reason)),
        ],
    )
    parts = EventParts(0, deal_num[g], W["deal"], ev["seq"], et, t, actor, payload)

    f_owner = _last(n, g, is_c | is_oc, owner_ev, -1)
    f_stage = _last(n, g, stage >= 0, stage, -1)
    f_amount = _last(n, g, amt, ev["amount_cents"], 0)
    f_ecd = _last(n, g, is_c | is_push, ev["ecd"], 0)
    f_reason = _last(n, g, has_reason, reason, -1)
    life = np.isin(et, (E["won"], E["lost"], E["reopened"]))
    life_code = np.select([et == E["won"], et == E["lost"]], [1, 2], 0)  # 0: open again
    f_life = _last(n, g, life, life_code, 0)
    f_closed_at = _last(n, g, life, t, 0)
    keep = ~D.gone
    closed = f_life[keep] > 0
    nk = int(keep.sum())
    table = pa.table(
        {
            "company_id": _text_column(co.company_id, nk),
            "deal_id": A.ids("deal-", deal_num[keep], W["deal"]),
            "account_id": A.ids("acct-", D.acc[keep] + 1, W["account"]),
            "owner_rep_id": A.ids("rep-", f_owner[keep] + 1, W["rep"]),
            "name": _deal_names(co, D.acc[keep], D.product[keep]),
            "stage": A.vocab(DEAL_STAGES_OPEN + ("closed_won", "closed_lost"), f_stage[keep]),
            "amount": A.money(f_amount[keep]),
            "currency": _text_column(co.currency, nk),
            "expected_close_date": A.dates(f_ecd[keep]),
            "lost_reason": A.vocab(LOST_REASONS, np.maximum(f_reason[keep], 0), valid=f_reason[keep] >= 0),
            "is_closed": pa.array(closed),
            "is_won": pa.array(f_life[keep] == 1, mask=~closed),
            "closed_at": A.timestamps(f_closed_at[keep], valid=closed),
            "created_at": A.timestamps(D.t0[keep]),
        }
    )
    D.life, D.closed_at = f_life, f_closed_at
    return table, parts


# ------------------------------------------------------------------------------------- activities


def _activities(rng, co: Company, D, L, deal_num, lead_num, first_num: int):
    """Calls, emails, meetings and tasks around deals, leads and accounts: table and events."""
    ap, win, W = PARAMS["activities"], co.win, co.widths
    # around deals, while open (none for deals that get deleted)
    k = np.where(D.gone, 0, rng.poisson(ap["per_deal_poisson_mean"], D.n))
    d = np.repeat(np.arange(D.n), k)
    end = np.where(D.life[d] > 0, D.closed_at[d], win.t1)
    t1 = D.t0[d] + ((end - D.t0[d]) * rng.random(len(d))).astype(np.int64)
    owner1 = owner_at(t1, D.owner0[d], D.t_owner[d], D.owner1[d])
    # around leads, while open (none for leads that get deleted)
    k = np.where(L.gone, 0, rng.poisson(ap["per_lead_poisson_mean"], L.n))
    ld = np.repeat(np.arange(L.n), k)
    t2 = L.t[ld] + ((L.life_end[ld] - L.t[ld]) * rng.random(len(ld))).astype(np.int64)
    owner2 = owner_at(t2, L.owner0[ld], L.t_owner[ld], L.owner1[ld])
    # account upkeep
    m3 = int(rng.poisson(ap["account_only_per_deal"] * D.n))
    t3 = rng.integers(win.t0, win.t1, m3)
    acc3 = pick_accounts(rng, co, t3)
    t3 = np.maximum(t3, co.acc_created[acc3])

    t = np.r_[t1, t2, t3]
    order = np.lexsort((np.arange(len(t)), t))  # ids follow time
    t = t[order]
    owner = np.r_[owner1, owner2, account_owner_at(co, acc3, t3)][order]
    acc = np.r_[D.acc[d], np.where(L.known[ld], L.acc[ld], -1), acc3][order]
    deal = np.r_[deal_num[d], np.zeros(len(ld) + m3, np.int64)][order]
    lead = np.r_[np.zeros(len(d), np.int64), lead_num[ld], np.zeros(m3, np.int64)][order]
    n = len(t)
    num = first_num + np.arange(n)
    typ = categorical(rng, ACTIVITY_TYPE_WEIGHTS, n)
    e1, e2 = rng.exponential(1.0, n), rng.integers(0, 4, n)
    minutes = np.select(
        [typ == 0, typ == 1, typ == 2], [5 + 10 * e1, 2 + 3 * e1, np.array([30, 45, 60, 90])[e2]], 15 + 20 * e1
    )
    t_del = t + np.maximum(60, rint_seconds(rng.exponential(7.0, n)))
    deleted = (rng.random(n) < ap["delete_probability"]) & (t_del < win.t1)
    keep = ~deleted
    nk = int(keep.sum())
    table = pa.table(
        {
            "company_id": _text_column(co.company_id, nk),
            "activity_id": A.ids("act-", num[keep], W["activity"]),
            "activity_type": A.vocab(ACTIVITY_TYPES, typ[keep]),
            "owner_rep_id": A.ids("rep-", owner[keep] + 1, W["rep"]),
            "account_id": A.ids("acct-", acc[keep] + 1, W["account"], valid=acc[keep] >= 0),
            "lead_id": A.ids("lead-", lead[keep], W["lead"], valid=lead[keep] > 0),
            "deal_id": A.ids("deal-", deal[keep], W["deal"], valid=deal[keep] > 0),
            "occurred_at": A.timestamps(t[keep]),
            "duration_minutes": pa.array(np.rint(minutes[keep]).astype(np.int32)),
        }
    )
    di = np.flatnonzero(deleted)
    g = np.r_[np.arange(n), di]
    created = np.r_[np.ones(n, bool), np.zeros(len(di), bool)]
    payload = A.json_objects(
        len(g),
        [
            ("activity_type", _pj_words(ACTIVITY_TYPES, typ[g], created)),
            ("owner_rep_id", _pj_ids("rep-", owner[g] + 1, W["rep"], created)),
            ("account_id", _pj_ids("acct-", acc[g] + 1, W["account"], created & (acc[g] >= 0))),
            ("lead_id", _pj_ids("lead-", lead[g], W["lead"], created & (lead[g] > 0))),
            ("deal_id", _pj_ids("deal-", deal[g], W["deal"], created & (deal[g] > 0))),
        ],
    )
    parts = EventParts(
        3,
        num[g],
        W["activity"],
        np.where(created, 1, 2),
        np.where(created, E["created"], E["deleted"]),
        np.r_[t, t_del[di]],
        owner[g],
        payload,
    )
    return table, parts, n


# ------------------------------------------------------------------------------------------ chunk


def simulate_chunk(
    rng: np.random.Generator, co: Company, n_deals: int, offsets: dict
) -> tuple[dict[str, pa.Table], list[EventParts], dict]:
    """Simulate ``n_deals`` deals of a company with the leads they come from and the activities
    around them.

    ``offsets`` holds how many deal, lead and activity numbers earlier chunks used. Returns the
    entity tables (leads, deals, activities), the event parts, and statistics (with the new
    offsets under ``"offsets"``).
    """
    # deals from leads: the running total over chunks stays at the share, whatever the chunk size
    share = PARAMS["leads"]["deal_share_from_leads"]
    done = offsets["deal"]
    from_leads = math.floor(share * (done + n_deals) + 0.5) - math.floor(share * done + 0.5)
    L = _draw_leads(rng, co, from_leads)
    D = _draw_deals(rng, co, L, n_deals - from_leads)
    lead_num = offsets["lead"] + 1 + np.arange(L.n)
    deal_num = offsets["deal"] + 1 + np.arange(D.n)
    lead_deal = np.zeros(L.n, np.int64)  # the deal number each converted lead became
    from_lead = D.lead >= 0
    lead_deal[D.lead[from_lead]] = deal_num[from_lead]
    leads, lead_parts = _lead_output(co, L, lead_num, lead_deal)
    deals, deal_parts = _deal_output(co, D, L, deal_num)
    activities, act_parts, n_act = _activities(rng, co, D, L, deal_num, lead_num, offsets["activity"] + 1)
    kept = ~D.gone
    stats = {
        "leads": L.n,
        "leads_converted": int(L.conv.sum()),
        "deals": D.n,
        "deals_from_leads": int(from_lead.sum()),
        "deals_deleted": int(D.gone.sum()),
        "deals_open_at_end": int(((D.life == 0) & kept).sum()),
        "deals_won": int(((D.life == 1) & kept).sum()),
        "deals_lost": int(((D.life == 2) & kept).sum()),
        "activities": n_act,
        "offsets": {
            "deal": offsets["deal"] + D.n,
            "lead": offsets["lead"] + L.n,
            "activity": offsets["activity"] + n_act,
        },
    }
    tables = {"leads": leads, "deals": deals, "activities": activities}
    return tables, [deal_parts, lead_parts, act_parts], stats


# ------------------------------------------------------------------------------------- event log

_AGG_PREFIX = {0: "deal-", 1: "lead-", 2: "acct-", 3: "act-"}
_MULT = np.uint64(0x9E3779B97F4A7C15)


def finish_events(
    rng: np.random.Generator, co: Company, parts: list[EventParts], counter: int
) -> tuple[pa.Table | None, int]:
    """Merge event parts into the ten contract columns.

    Adds recorded_at (a few late events), numbers events from ``counter`` in occurred order and
    turns the numbers into unique per-company ids, and orders rows by arrival (recorded_at).
    Returns the table (None when there are no events) and the next counter.
    """
    evp = PARAMS["events"]
    parts = [p for p in parts if len(p.t)]
    if not parts:
        return None, counter
    agg_type = np.concatenate([np.full(len(p.t), p.agg_type, np.int64) for p in parts])
    agg_num = np.concatenate([p.agg_num for p in parts])
    seq = np.concatenate([p.seq for p in parts]).astype(np.int64)
    etype = np.concatenate([p.etype for p in parts])
    t = np.concatenate([p.t for p in parts]).astype(np.int64)
    actor = np.concatenate([p.actor for p in parts]).astype(np.int64)
    agg_ids = pa.concat_arrays([A.ids(_AGG_PREFIX[p.agg_type], p.agg_num, p.width) for p in parts])
    payload = pa.concat_arrays([p.payload for p in parts])
    n = len(t)
    lag = np.rint(rng.exponential(evp["record_lag_seconds_exponential_mean"], n)).astype(np.int64)
    late = rng.random(n) < evp["late_probability"]
    late_lag = rint_seconds(
        rng.lognormal(math.log(evp["late_lag_days_lognormal_median"]), evp["late_lag_days_lognormal_sigma"], n)
    )
    rec = np.minimum(t + np.where(late, late_lag, lag), np.maximum(co.win.t1, t))
    occ_order = np.lexsort((seq, agg_num, agg_type, t))
    number = np.empty(n, np.int64)
    number[occ_order] = counter + 1 + np.arange(n)
    salt = np.uint64((co.index + 1) * 0x5851F42D4C957F2D % (1 << 64))
    hashed = (number.astype(np.uint64) * _MULT) ^ salt
    file_order = np.lexsort((number, rec))
    idx = pa.array(file_order)
    table = pa.table(
        {
            "event_id": A.hex_ids("evt-", hashed[file_order]),
            "company_id": pa.array(np.full(n, co.company_id, dtype=object), pa.string()),
            "aggregate_type": A.vocab(AGG_TYPES, agg_type[file_order]),
            "aggregate_id": pc.take(agg_ids, idx),
            "seq": pa.array(seq[file_order]),
            "event_type": A.vocab(EVENT_TYPES, etype[file_order]),
            "occurred_at": A.timestamps(t[file_order]),
            "recorded_at": A.timestamps(rec[file_order]),
            "actor_id": A.ids("rep-", actor[file_order] + 1, co.widths["rep"], valid=actor[file_order] >= 0),
            "payload": pc.take(payload, idx),
        }
    )
    return table, counter + n
