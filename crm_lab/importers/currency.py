"""Amounts in one currency: an export's amounts with their currency codes, converted to the
corporate currency through an optional rates file.

The rates file is CSV with columns ``currency`` and ``rate`` (the value of one unit in the
corporate currency, e.g. ``EUR,1.08`` for a USD company), optionally ``valid_from`` and
``valid_to`` (inclusive dates; a row without them applies at any date). The corporate currency
is the one listed with rate 1. An amount converts at the rate valid on its date (the close
date, as Salesforce's dated exchange rates do) and is rounded to the cent."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from crm_lab.errors import LoadError
from crm_lab.importers.exports import ExportTable, read_export, refuse_first, require_values
from crm_lab.importers.problems import refuse
from crm_lab.typing_checks import quote_literal

RATES_TABLE = "_import_rates"


@dataclass(frozen=True)
class Rates:
    path: Path
    corporate: str


@dataclass(frozen=True)
class Money:
    """Where a table's amounts are: the amount field, its currency field and its date (SQL)."""

    export: ExportTable
    amount_field: str
    currency_field: str
    date_sql: str
    default_currency: str | None = None  # of an amount whose row names none (a mapping's currency:)


def read_rates(con: duckdb.DuckDBPyConnection, path: Path) -> Rates:
    raw = read_export(con, path, "_import_rates_raw", ("currency", "rate"), "a rates file")
    currency, rate = raw.column("currency"), raw.column("rate")
    require_values(con, raw, ("currency", "rate"))
    refuse_first(con, raw, "rate", f"coalesce(TRY_CAST({rate} AS DECIMAL(18, 8)) <= 0, true)", "is not a positive number")
    for field in ("valid_from", "valid_to"):
        refuse_first(con, raw, field, f"TRY_CAST({raw.column(field)} AS DATE) IS NULL", "is not a date (YYYY-MM-DD)")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {RATES_TABLE} AS
            SELECT _line, upper(trim({currency})) AS currency, CAST({rate} AS DECIMAL(18, 8)) AS rate,
                   CAST({raw.column('valid_from')} AS DATE) AS valid_from, CAST({raw.column('valid_to')} AS DATE) AS valid_to
            FROM {raw.table}"""
    )
    corporate = [c for (c,) in con.sql(f"SELECT DISTINCT currency FROM {RATES_TABLE} WHERE rate = 1 ORDER BY 1").fetchall()]
    if len(corporate) != 1:
        found = f"found {', '.join(corporate)}" if corporate else "found none"
        raise LoadError(f"{path}: list the corporate currency once with rate 1 (e.g. USD,1); {found}")
    return Rates(path, corporate[0])


def check_amounts(con: duckdb.DuckDBPyConnection, money: Money) -> None:
    """Every amount present is a number."""
    amount = money.export.column(money.amount_field)
    refuse_first(con, money.export, money.amount_field, f"TRY_CAST(trim({amount}) AS DECIMAL(38, 10)) IS NULL", "is not a number")


def home_currency(con: duckdb.DuckDBPyConnection, sources: list[Money], rates: Rates | None, default: str | None) -> str | None:
    """The company's currency. Without rates every amount must be in one currency; with rates
    every currency met must have a rate on every date it is met."""
    for money in sources:
        check_amounts(con, money)
    firsts: dict[str, tuple[Path, int]] = {}
    for money in sources:
        currency = _currency_sql(money, default)
        amount = money.export.column(money.amount_field)
        for code, line in con.sql(
            f"SELECT {currency} AS code, min(_line) FROM {money.export.table} WHERE {amount} IS NOT NULL AND code IS NOT NULL "
            "GROUP BY code ORDER BY 2"
        ).fetchall():
            firsts.setdefault(code, (money.export.path, line))
    if rates is None:
        if len(firsts) > 1:
            listed = ", ".join(f"{code} (first at {path} line {line})" for code, (path, line) in sorted(firsts.items()))
            refuse(
                f"mixed currencies and no rates file: {listed}; pass --rates FILE (CSV: currency,rate) "
                "converting each to the corporate currency"
            )
        return next(iter(firsts), default)
    reported: set[str] = set()  # a currency without a rate is named once, at its first row
    for money in sources:
        amount = money.export.column(money.amount_field)
        missing = con.sql(
            f"SELECT _line, {_currency_sql(money, money.default_currency or rates.corporate)} AS code, {money.date_sql} AS on_date "
            f"FROM {money.export.table} WHERE {amount} IS NOT NULL AND {_rate_sql(money, rates)} IS NULL ORDER BY _line LIMIT 1"
        ).fetchall()
        if missing and missing[0][1] not in reported:
            line, code, on_date = missing[0]
            reported.add(code)
            when = f" on {on_date}" if on_date is not None else ""
            refuse(f"{money.export.path} line {line}, field {money.currency_field}: no rate for {code}{when} in {rates.path}")
    return rates.corporate


def amount_sql(money: Money, rates: Rates | None) -> str:
    """The amount in the corporate currency, as DECIMAL(18, 2) (NULL for one that is no number:
    the reader has rejected its row)."""
    amount = f"TRY_CAST(trim({money.export.column(money.amount_field)}) AS DECIMAL(38, 10))"
    if rates is None:
        return f"CAST(round({amount}, 2) AS DECIMAL(18, 2))"
    return f"CAST(round({amount} * {_rate_sql(money, rates)}, 2) AS DECIMAL(18, 2))"


def _currency_sql(money: Money, default: str | None) -> str:
    fallback = quote_literal(default) if default else "CAST(NULL AS VARCHAR)"
    return f"coalesce(upper(trim({money.export.column(money.currency_field)})), {fallback})"


def _rate_sql(money: Money, rates: Rates) -> str:
    return (
        f"(SELECT r.rate FROM {RATES_TABLE} r WHERE r.currency = {_currency_sql(money, money.default_currency or rates.corporate)} "
        f"AND (r.valid_from IS NULL OR {money.date_sql} >= r.valid_from) "
        f"AND (r.valid_to IS NULL OR {money.date_sql} <= r.valid_to) "
        "ORDER BY r.valid_from DESC NULLS LAST LIMIT 1)"
    )
