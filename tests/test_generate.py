"""Tests of the synthetic world generator (crm_lab.generate).

One world of a few thousand deals (several chunks per company) is generated once per module and
checked against the contract, against itself (events fold to the current-state tables) and against
truth.json (statistics within sampling error).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from crm_lab.contract import AGGREGATES, DEAL_STAGES_OPEN, EVENT_INPUT_COLUMNS, LOADABLE_TABLES
from crm_lab.generate import GenerateSummary, arrow_schema, generate

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "crm_lab" / "sql" / "schema"

# --------------------------------------------------------------------------------------- fixtures


def _con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.sql("SET TimeZone='UTC'")
    return con


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    summary = generate(out, companies=2, deals=5000, seed=11, chunk_deals=1500)
    return summary


@pytest.fixture(scope="module")
def tables(world):
    """Every table as a list of dicts (pyarrow: Decimal, date, aware datetime)."""
    return {t: pq.read_table(world.files[t]).to_pylist() for t in LOADABLE_TABLES}


@pytest.fixture(scope="module")
def truth(world):
    return json.loads(world.truth.read_text())


def _by_aggregate(events, agg_type):
    """{(company_id, aggregate_id): [events in fold order]}."""
    out = defaultdict(list)
    for e in events:
        if e["aggregate_type"] == agg_type:
            out[(e["company_id"], e["aggregate_id"])].append(e)
    for evs in out.values():
        evs.sort(key=lambda e: (e["occurred_at"], e["seq"], e["event_id"]))
    return out


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"companies": 0}, "companies must be >= 1, got 0"),
        ({"companies": "2"}, "companies must be an integer, got '2'"),
        ({"companies": True}, "companies must be an integer, got True"),
        ({"deals": 0}, "deals must be >= 1, got 0"),
        ({"deals": 2.5}, "deals must be an integer, got 2.5"),
        ({"seed": -1}, "seed must be >= 0, got -1"),
        ({"chunk_deals": 0}, "chunk_deals must be >= 1, got 0"),
        ({"fmt": "xlsx"}, "fmt must be one of ['csv', 'jsonl', 'parquet'], got 'xlsx'"),
        ({"start": "2024-13-01"}, "start must be a date like '2024-01-01', got '2024-13-01'"),
        ({"end": 20251231}, "end must be a date like '2024-01-01', got 20251231"),
        ({"start": "2025-01-01", "end": "2024-12-31"}, "end must not be before start (2025-01-01), got '2024-12-31'"),
    ],
)
def test_invalid_arguments_name_parameter_and_value(tmp_path, kwargs, message):
    with pytest.raises(ValueError) as err:
        generate(tmp_path / "out", **kwargs)
    assert str(err.value) == message
    assert not (tmp_path / "out").exists()


def test_out_dir_that_is_a_file_is_refused(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(ValueError, match=r"out_dir must be a directory, got '.*file\.txt'"):
        generate(f, deals=10)


def test_summary_counts_files_and_truth(world, tables, truth):
    assert isinstance(world, GenerateSummary)
    assert set(world.files) == set(LOADABLE_TABLES)
    for t, path in world.files.items():
        assert path.name == f"{t}.parquet" and path.exists()
        assert world.rows[t] == len(tables[t])
    assert world.events == world.rows["events"] == len(tables["events"])
    assert not list(world.out_dir.glob("*.partial"))
    assert truth["arguments"] == {
        "companies": 2, "deals": 5000, "seed": 11, "fmt": "parquet",
        "start": "2024-01-01", "end": "2025-12-31", "chunk_deals": 1500,
    }  # fmt: skip
    per = truth["companies"]
    assert [c["company_id"] for c in per] == ["c1", "c2"]
    assert sum(c["deals"] for c in per) == 5000
    assert per[0]["deals"] != per[1]["deals"]  # split, not evenly
    assert sum(c["events"] for c in per) == world.events
    p = truth["parameters"]
    for key in ("advance_probability", "stage_duration_days_lognormal_median", "push_poisson_mean_per_stage_visit",
                "push_days", "amount_change_log_factor_mean", "reopen_probability", "delete_probability_direct_deals"):
        assert key in p["deals"]
    assert set(truth["win_probability_from_stage"]) == set(DEAL_STAGES_OPEN)
    conv = p["leads"]["conversion"]
    assert {"intercept", "source", "industry", "log_employees", "score"} <= set(conv)
    assert "weekday_weights" in p["arrivals"]


# ----------------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path):
    kw = dict(companies=3, deals=450, chunk_deals=100)
    a = generate(tmp_path / "a", seed=5, **kw)
    b = generate(tmp_path / "b", seed=5, **kw)
    c = generate(tmp_path / "c", seed=6, **kw)
    names = sorted(p.name for p in a.out_dir.iterdir())
    assert names == sorted(p.name for p in b.out_dir.iterdir())
    assert len(names) == len(LOADABLE_TABLES) + 1
    for name in names:
        assert _sha(a.out_dir / name) == _sha(b.out_dir / name), name
    for t in ("events", "deals", "leads", "accounts"):
        assert _sha(a.files[t]) != _sha(c.files[t]), t


def test_csv_is_deterministic(tmp_path):
    a = generate(tmp_path / "a", deals=120, seed=2, fmt="csv")
    b = generate(tmp_path / "b", deals=120, seed=2, fmt="csv")
    for t in LOADABLE_TABLES:
        assert a.files[t].read_bytes() == b.files[t].read_bytes(), t


# --------------------------------------------------------------------------------- formats/schema


def _duck_type(arrow_type) -> str:
    s = str(arrow_type)
    return {
        "string": "VARCHAR", "int32": "INTEGER", "int64": "BIGINT", "double": "DOUBLE",
        "bool": "BOOLEAN", "date32[day]": "DATE", "timestamp[us, tz=UTC]": "TIMESTAMPTZ",
        "decimal128(18, 2)": "DECIMAL(18,2)",
    }[s]  # fmt: skip


def _sql_columns(table: str) -> list[tuple[str, str]]:
    """(name, DuckDB type) of a table created from its SQL schema file."""
    con = _con()
    con.sql((SCHEMA_DIR / f"{table}.sql").read_text())
    rows = con.sql(f"DESCRIBE {table}").fetchall()
    return [(r[0], r[1]) for r in rows]


@pytest.mark.parametrize("table", LOADABLE_TABLES)
def test_parquet_columns_and_types_match_sql_schema(world, table):
    con = _con()
    got = [(r[0], r[1]) for r in con.sql(f"DESCRIBE SELECT * FROM read_parquet('{world.files[table]}')").fetchall()]
    want = _sql_columns(table)
    if table == "events":
        want = [c for c in want if c[0] in EVENT_INPUT_COLUMNS]
        want = [(n, "VARCHAR" if t == "JSON" else t) for n, t in want]  # payload: JSON text
    assert got == want
    assert pq.read_schema(world.files[table]).equals(arrow_schema(table))


def test_csv_and_jsonl_hold_the_same_world(tmp_path):
    kw = dict(companies=2, deals=150, seed=3)
    p = generate(tmp_path / "p", **kw)
    c = generate(tmp_path / "c", fmt="csv", **kw)
    j = generate(tmp_path / "j", fmt="jsonl", **kw)
    assert p.rows == c.rows == j.rows
    con = _con()
    for t in LOADABLE_TABLES:
        schema = arrow_schema(t)
        cols = {f.name: _duck_type(f.type) for f in schema}
        spec = "{" + ", ".join(f"'{k}': '{v}'" for k, v in cols.items()) + "}"
        want = con.sql(f"SELECT * FROM read_parquet('{p.files[t]}')").fetchall()
        got_csv = con.sql(f"SELECT * FROM read_csv('{c.files[t]}', header=true, columns={spec})").fetchall()
        assert got_csv == want, t
        if t == "events":
            spec = spec.replace("'payload': 'VARCHAR'", "'payload': 'JSON'")
        got_json = con.sql(f"SELECT * FROM read_json('{j.files[t]}', format='newline_delimited', columns={spec})").fetchall()
        if t == "events":
            pi = list(cols).index("payload")
            assert all(json.loads(r[pi]) == json.loads(w[pi]) for r, w in zip(got_json, want))
            strip = lambda rows: [r[:pi] + r[pi + 1 :] for r in rows]  # noqa: E731
            got_json, want = strip(got_json), strip(want)
        assert got_json == want, t
    # money text keeps two decimals; timestamps are ISO 8601 UTC
    text = c.files["deals"].read_text().splitlines()
    assert re.search(r',\d+\.\d{2},"[A-Z]{3}",', text[1])
    assert re.search(r'"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"', text[1])
    line = json.loads(j.files["events"].read_text().splitlines()[0])
    assert isinstance(line["payload"], dict)


# ---------------------------------------------------------------------------------------- tenancy

# (table, column, referenced table, referenced key)
FOREIGN_KEYS = [
    ("territories", "company_id", "companies", "company_id"),
    ("reps", "territory_id", "territories", "territory_id"),
    ("accounts", "territory_id", "territories", "territory_id"),
    ("accounts", "owner_rep_id", "reps", "rep_id"),
    ("contacts", "account_id", "accounts", "account_id"),
    ("products", "company_id", "companies", "company_id"),
    ("leads", "account_id", "accounts", "account_id"),
    ("leads", "owner_rep_id", "reps", "rep_id"),
    ("leads", "deal_id", "deals", "deal_id"),
    ("deals", "account_id", "accounts", "account_id"),
    ("deals", "owner_rep_id", "reps", "rep_id"),
    ("activities", "owner_rep_id", "reps", "rep_id"),
    ("activities", "account_id", "accounts", "account_id"),
    ("activities", "lead_id", "leads", "lead_id"),
    ("activities", "deal_id", "deals", "deal_id"),
    ("events", "actor_id", "reps", "rep_id"),
]


def check_foreign_keys(files, require_all: bool = True) -> None:
    """Every id in a row (and in an event payload) names an entity of the row's own company."""
    con = _con()
    for t in LOADABLE_TABLES:
        con.sql(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{files[t]}')")
    for table, col, ref, key in FOREIGN_KEYS:
        n_set, n_bad = con.sql(
            f"""SELECT count(x.{col}), count(x.{col}) FILTER (WHERE r.{key} IS NULL)
                FROM {table} x LEFT JOIN (SELECT DISTINCT company_id, {key} FROM {ref}) r
                  ON r.company_id = x.company_id AND r.{key} = x.{col}"""
        ).fetchall()[0]
        assert n_set > 0 or not require_all, (table, col)
        assert n_bad == 0, (table, col)
    # ids referenced inside event payloads resolve too
    for field, ref, key in [
        ("account_id", "accounts", "account_id"),
        ("owner_rep_id", "reps", "rep_id"),
        ("territory_id", "territories", "territory_id"),
        ("deal_id", "deals", "deal_id"),
        ("lead_id", "leads", "lead_id"),
    ]:
        n_set, n_bad = con.sql(
            f"""WITH p AS (SELECT company_id, payload->>'$.{field}' AS v FROM events)
                SELECT count(v), count(v) FILTER (WHERE r.{key} IS NULL)
                FROM p LEFT JOIN {ref} r ON r.company_id = p.company_id AND r.{key} = p.v"""
        ).fetchall()[0]
        assert n_set > 0 or not require_all, field
        assert n_bad == 0, field


def test_every_foreign_key_resolves_within_its_company(world):
    check_foreign_keys(world.files)


def test_ids_collide_across_companies_and_are_unique_within_one(tables):
    for table, key in [("deals", "deal_id"), ("leads", "lead_id"), ("accounts", "account_id"),
                       ("reps", "rep_id"), ("territories", "territory_id"), ("activities", "activity_id"),
                       ("contacts", "contact_id"), ("products", "product_id")]:  # fmt: skip
        ids = defaultdict(set)
        for r in tables[table]:
            assert r[key] not in ids[r["company_id"]], (table, r[key])
            ids[r["company_id"]].add(r[key])
        assert ids["c1"] & ids["c2"], table
    assert {"deal-000001", "acct-00001", "lead-000001", "rep-0001"} <= {
        r["deal_id"] for r in tables["deals"] if r["company_id"] == "c2"
    } | {r["account_id"] for r in tables["accounts"] if r["company_id"] == "c2"} | {
        r["lead_id"] for r in tables["leads"] if r["company_id"] == "c2"
    } | {r["rep_id"] for r in tables["reps"] if r["company_id"] == "c2"}


def check_event_ids(tables) -> None:
    seen = set()
    for e in tables["events"]:
        key = (e["company_id"], e["event_id"])
        assert key not in seen
        seen.add(key)
        assert re.fullmatch(r"evt-[0-9a-f]{16}", e["event_id"])


def test_event_ids_unique_per_company(tables):
    check_event_ids(tables)


# --------------------------------------------------------------------------------- event contract


def test_events_follow_the_contract(tables):
    events = tables["events"]
    types_seen = defaultdict(set)
    for e in events:
        agg = AGGREGATES[e["aggregate_type"]]
        assert e["event_type"] in agg.event_types, e
        payload = json.loads(e["payload"])
        assert isinstance(payload, dict)
        assert set(payload) <= set(agg.fields), e
        assert e["recorded_at"] >= e["occurred_at"], e
        assert e["occurred_at"].tzinfo is not None and e["occurred_at"].utcoffset() == dt.timedelta(0)
        types_seen[e["aggregate_type"]].add(e["event_type"])
        if e["event_type"] == "lost":
            assert payload["lost_reason"], e
        if e["event_type"] == "reopened":
            assert payload["stage"] in DEAL_STAGES_OPEN and payload["lost_reason"] is None, e
        if e["event_type"] == "converted":
            assert payload["deal_id"].startswith("deal-"), e
        if "amount" in payload:
            assert re.search(r'"amount":\d+\.\d{2}[,}]', e["payload"]), e
    assert types_seen["deal"] == set(AGGREGATES["deal"].event_types) - {"updated"}
    assert types_seen["lead"] == set(AGGREGATES["lead"].event_types)
    assert {"created", "owner_changed"} <= types_seen["account"]
    assert {"created", "deleted"} <= types_seen["activity"]
    export_at = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    assert max(e["occurred_at"] for e in events) < export_at
    assert max(e["recorded_at"] for e in events) <= export_at


def test_seq_orders_each_aggregate_with_ties_and_late_arrivals(tables):
    ties = late = pushes = 0
    for agg_type in AGGREGATES:
        for key, evs in _by_aggregate(tables["events"], agg_type).items():
            assert [e["seq"] for e in evs] == list(range(1, len(evs) + 1)), key
            assert evs[0]["event_type"] == "created", key
            assert all(e["event_type"] != "deleted" for e in evs[:-1]), key
            for a, b in zip(evs, evs[1:]):
                ties += a["occurred_at"] == b["occurred_at"]
                late += a["recorded_at"] > b["recorded_at"]
            if agg_type == "deal":
                ecd = None
                for e in evs:
                    p = json.loads(e["payload"])
                    if "expected_close_date" in p:
                        new = dt.date.fromisoformat(p["expected_close_date"])
                        if e["event_type"] == "close_date_changed":
                            assert new > ecd, key
                            pushes += 1
                        ecd = new
    assert ties > 20 and late > 20 and pushes > 100


def test_some_deals_open_at_end_reopened_and_deleted(tables, world):
    deals = tables["deals"]
    assert sum(not d["is_closed"] for d in deals) > 50
    assert {d["stage"] for d in deals} == set(DEAL_STAGES_OPEN) | {"closed_won", "closed_lost"}
    by = _by_aggregate(tables["events"], "deal")
    reopened_then_won = sum(
        any(e["event_type"] == "reopened" for e in evs) and evs[-1]["event_type"] == "won" for evs in by.values()
    )
    deleted = sum(evs[-1]["event_type"] == "deleted" for evs in by.values())
    assert reopened_then_won >= 1 and deleted > 10
    assert len(by) == len(deals) + deleted


# ------------------------------------------------------------------- events fold to current state


def _fold(evs, fields):
    """Replay one aggregate's events per DESIGN.md; None when deleted."""
    state = None
    for e in evs:
        p = json.loads(e["payload"], parse_float=Decimal)
        et = e["event_type"]
        if et == "created":
            state = {f: None for f in fields}
            state.update(is_closed=False, is_won=None, closed_at=None, created_at=e["occurred_at"],
                         converted_at=None)  # fmt: skip
        elif et == "deleted":
            return None
        for k, v in p.items():
            state[k] = v
        if et == "won":
            state.update(stage="closed_won", is_closed=True, is_won=True, closed_at=e["occurred_at"])
        elif et == "lost":
            state.update(stage="closed_lost", is_closed=True, is_won=False, closed_at=e["occurred_at"])
        elif et == "reopened":
            state.update(is_closed=False, is_won=None, closed_at=None)
        elif et == "converted":
            state.update(status="converted", converted_at=e["occurred_at"])
        elif et == "disqualified":
            state.update(status="disqualified")
    return state


def _normalise(value):
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def check_fold(tables, agg_type: str, table: str) -> None:
    """Folding an aggregate type's events gives its current-state table, column by column."""
    agg = AGGREGATES[agg_type]
    folded = {}
    for key, evs in _by_aggregate(tables["events"], agg_type).items():
        state = _fold(evs, agg.fields)
        if state is not None:
            folded[key] = state
    rows = {(r["company_id"], r[agg.id_column]): r for r in tables[table]}
    assert set(folded) == set(rows)
    columns = [c for c in arrow_schema(table).names if c not in ("company_id", agg.id_column)]
    if agg_type in ("account", "activity"):  # tables with columns that are not event fields
        columns = list(agg.fields)
    for key, row in rows.items():
        state = folded[key]
        for c in columns:
            assert _normalise(state[c]) == _normalise(row[c]), (key, c, state[c], row[c])
        if agg_type == "activity":
            assert state["created_at"] == row["occurred_at"], key
        elif agg_type == "account":
            assert state["created_at"] == row["created_at"], key


@pytest.mark.parametrize(
    "agg_type, table", [("deal", "deals"), ("lead", "leads"), ("account", "accounts"), ("activity", "activities")]
)
def test_folding_the_events_gives_the_current_state_tables(tables, agg_type, table):
    check_fold(tables, agg_type, table)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"companies": 3, "deals": 1},
        {"deals": 7, "chunk_deals": 2, "start": "2025-06-01", "end": "2025-06-01"},
        {"companies": 5, "deals": 60, "chunk_deals": 7, "start": "2024-02-28", "end": "2024-03-02"},
    ],
)
def test_tiny_and_odd_worlds_are_consistent(tmp_path, kwargs):
    summary = generate(tmp_path, seed=1, **kwargs)
    tables = {t: pq.read_table(summary.files[t]).to_pylist() for t in LOADABLE_TABLES}
    deleted = sum(c["deals_deleted"] for c in json.loads(summary.truth.read_text())["companies"])
    assert len(tables["deals"]) + deleted == kwargs["deals"]
    for agg_type, table in [("deal", "deals"), ("lead", "leads"), ("account", "accounts"),
                            ("activity", "activities")]:  # fmt: skip
        check_fold(tables, agg_type, table)
    check_event_ids(tables)
    check_foreign_keys(summary.files, require_all=False)


# ---------------------------------------------------------------------------- truth within error


def _stage_exits(events):
    """Per open stage: (exits, advances) over all observed stage visits."""
    exits = np.zeros(len(DEAL_STAGES_OPEN), int)
    adv = np.zeros(len(DEAL_STAGES_OPEN), int)
    index = {s: i for i, s in enumerate(DEAL_STAGES_OPEN)}
    for evs in _by_aggregate(events, "deal").values():
        stage = None
        for e in evs:
            p = json.loads(e["payload"])
            et = e["event_type"]
            if et in ("created", "reopened"):
                stage = index[p["stage"]]
            elif et == "stage_changed":
                exits[stage] += 1
                adv[stage] += 1
                stage = index[p["stage"]]
            elif et in ("won", "lost"):
                exits[stage] += 1
                adv[stage] += et == "won"
                stage = None
    return exits, adv


def test_stage_advance_rates_match_truth(tables, truth):
    exits, adv = _stage_exits(tables["events"])
    want = np.asarray(truth["parameters"]["deals"]["advance_probability"])
    se = np.sqrt(want * (1 - want) / exits)
    z = (adv / exits - want) / se
    assert exits.min() > 300
    assert np.all(np.abs(z) < 4), z


def test_win_rate_from_each_stage_matches_truth(tables, truth):
    """First-pass outcome of deals created early enough for nearly all to have closed."""
    cutoff = dt.datetime(2024, 12, 1, tzinfo=dt.timezone.utc)
    index = {s: i for i, s in enumerate(DEAL_STAGES_OPEN)}
    entered = np.zeros(len(DEAL_STAGES_OPEN), int)
    won = np.zeros(len(DEAL_STAGES_OPEN), int)
    for evs in _by_aggregate(tables["events"], "deal").values():
        if evs[0]["occurred_at"] >= cutoff or evs[-1]["event_type"] == "deleted":
            continue
        path, outcome = [], None
        for e in evs:
            p = json.loads(e["payload"])
            if e["event_type"] in ("created", "stage_changed"):
                path.append(index[p["stage"]])
            elif e["event_type"] in ("won", "lost"):
                outcome = e["event_type"] == "won"
                break
        if outcome is None:
            continue  # still open in its first pass (rare)
        for s in path:
            entered[s] += 1
            won[s] += outcome
    want = np.asarray([truth["win_probability_from_stage"][s] for s in DEAL_STAGES_OPEN])
    z = (won / entered - want) / np.sqrt(want * (1 - want) / entered)
    assert entered.min() > 200
    assert np.all(np.abs(z) < 4), z


def test_lead_conversion_coefficients_are_recovered(tables, truth):
    from sklearn.linear_model import LogisticRegression

    conv = truth["parameters"]["leads"]["conversion"]
    sources = list(conv["source"])
    industries = list(conv["industry"])
    leads = tables["leads"]
    n = len(leads)
    X = np.zeros((n, len(sources) - 1 + len(industries) - 1 + 2))
    y = np.zeros(n)
    for i, r in enumerate(leads):
        s, ind = sources.index(r["source"]), industries.index(r["industry"])
        if s:
            X[i, s - 1] = 1
        if ind:
            X[i, len(sources) - 1 + ind - 1] = 1
        X[i, -2] = math.log(r["employees"])
        X[i, -1] = r["score"]
        y[i] = r["status"] == "converted"
    model = LogisticRegression(C=1e8, solver="newton-cholesky", max_iter=200).fit(X, y)
    beta = np.r_[model.intercept_, model.coef_[0]]
    want = np.r_[
        conv["intercept"],
        [conv["source"][s] for s in sources[1:]],
        [conv["industry"][i] for i in industries[1:]],
        conv["log_employees"],
        conv["score"],
    ]
    X1 = np.c_[np.ones(n), X]
    p = model.predict_proba(X)[:, 1]
    cov = np.linalg.inv(X1.T @ (X1 * (p * (1 - p))[:, None]))
    z = (beta - want) / np.sqrt(np.diag(cov))
    assert np.all(np.abs(z) < 4), dict(zip(["intercept", *sources[1:], *industries[1:], "log_emp", "score"], z))


def test_leads_arrive_with_weekly_seasonality(tables, truth):
    weights = np.asarray(truth["parameters"]["arrivals"]["weekday_weights"])
    counts = np.zeros(7)
    for r in tables["leads"]:
        counts[r["created_at"].weekday()] += 1
    weekend, weekday = counts[5:].sum() / 2, counts[:5].sum() / 5
    want = weights[5:].mean() / weights[:5].mean()
    assert abs(weekend / weekday - want) < 0.08


def test_slip_and_amount_change_sizes_follow_truth(tables, truth):
    p = truth["parameters"]["deals"]
    pushes, factors = [], []
    for evs in _by_aggregate(tables["events"], "deal").values():
        ecd, amount = None, None
        for e in evs:
            q = json.loads(e["payload"], parse_float=Decimal)
            if "expected_close_date" in q:
                new = dt.date.fromisoformat(q["expected_close_date"])
                if e["event_type"] == "close_date_changed":
                    pushes.append((new - ecd).days)
                ecd = new
            if "amount" in q:
                if e["event_type"] == "amount_changed":
                    factors.append(float(q["amount"] / amount))
                amount = q["amount"]
    pushes = np.asarray(pushes)
    pd = p["push_days"]
    assert np.all(pushes % pd["unit_days"] == 0) and pushes.min() >= pd["unit_days"]
    lam = pd["extra_weeks_poisson_mean"]
    assert abs((pushes / 7 - 1).mean() - lam) < 4 * math.sqrt(lam / len(pushes))
    # amount changes are multiplicative, centred near the truth's log-factor means
    assert 0.7 < np.median(factors) < 1.3 and len(factors) > 100


# ------------------------------------------------------------------------------- committed sample

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


def test_committed_sample_is_what_the_generator_writes(tmp_path):
    """data/sample is regenerated by the arguments in its truth.json, byte for byte."""
    truth = json.loads((SAMPLE / "truth.json").read_text())
    args = truth["arguments"]
    assert args["fmt"] == "csv" and args["companies"] >= 2
    summary = generate(tmp_path, **args)
    assert 3000 <= summary.events <= 8000
    for path in [*summary.files.values(), summary.truth]:
        assert path.read_bytes() == (SAMPLE / path.name).read_bytes(), f"regenerate data/sample: {path.name}"
    assert sum(p.stat().st_size for p in SAMPLE.iterdir()) < 2_000_000
