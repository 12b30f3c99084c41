"""Salesforce record ids in one form: 18 characters.

A record's id is 15 characters, case-sensitive (``001A0000006Vm9r``); the API and data exports
write it with a 3-character suffix that makes it unique case-insensitively
(``001A0000006Vm9rIAC``), while reports and the user interface write the 15-character form. An
export assembled from both (a report's OpportunityHistory beside a data export's Opportunity)
names one record two ways. The suffix is a checksum of the id itself: for each of the three
5-character chunks, a 5-bit number whose bit ``i`` is set when the chunk's character ``i`` is an
uppercase letter A-Z, written as a character of ``ABCDEFGHIJKLMNOPQRSTUVWXYZ012345``. So every
15-character id is given its suffix, and the two forms match. Ids that differ only by case
(``0015g00000AbCdE``, ``0015g00000abcde``) are two records, and get two suffixes."""

from __future__ import annotations

import duckdb

from crm_lab.typing_checks import quote_ident

SUFFIX_CHARACTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
ID15 = "[0-9A-Za-z]{15}"

# Fields that hold record ids, besides every field named Id or ending in Id (lower case).
ID_FIELDS = {"id", "accountid", "ownerid", "opportunityid", "leadid", "whoid", "whatid", "createdbyid", "lastmodifiedbyid",
             "convertedopportunityid", "convertedaccountid", "convertedcontactid", "contactid"}  # fmt: skip
# Field history rows whose OldValue / NewValue are record ids (lookup fields).
LOOKUP_HISTORY_FIELDS = {"OpportunityFieldHistory": ("Owner", "Account"), "LeadHistory": ("Owner",)}


def id18(value: str) -> str:
    """The 18-character form of a 15-character id; any other value as it is.

    >>> id18("001A0000006Vm9r")
    '001A0000006Vm9rIAC'
    """
    if len(value) != 15 or not (value.isascii() and value.isalnum()):
        return value
    suffix = ""
    for chunk in range(3):
        bits = sum(1 << i for i, ch in enumerate(value[chunk * 5 : chunk * 5 + 5]) if "A" <= ch <= "Z")
        suffix += SUFFIX_CHARACTERS[bits]
    return value + suffix


def id18_sql(value: str) -> str:
    """SQL for :func:`id18` of the text ``value`` (trimmed); other values are left untouched."""
    trimmed = f"trim({value})"
    chunks = []
    for chunk in range(3):
        bits = " + ".join(
            f"CASE WHEN regexp_full_match(substr({trimmed}, {chunk * 5 + i + 1}, 1), '[A-Z]') THEN {1 << i} ELSE 0 END"
            for i in range(5)
        )
        chunks.append(f"substr('{SUFFIX_CHARACTERS}', 1 + {bits}, 1)")
    return f"CASE WHEN regexp_full_match({trimmed}, '{ID15}') THEN {trimmed} || {' || '.join(chunks)} ELSE {value} END"


def is_id_field(name: str) -> bool:
    return name.lower() in ID_FIELDS or name.endswith("Id")


def normalise_ids(con: duckdb.DuckDBPyConnection, table: str, columns: tuple[str, ...], sobject: str) -> None:
    """Give every 15-character id in ``table`` (an object's staged export) its suffix: in each
    id field, and in the OldValue / NewValue of a field history row of a lookup field."""
    sets = [f"{quote_ident(c)} = {id18_sql(quote_ident(c))}" for c in columns if is_id_field(c)]
    lookups = LOOKUP_HISTORY_FIELDS.get(sobject)
    by_lower = {c.lower(): c for c in columns}
    if lookups and {"field", "oldvalue", "newvalue"} <= set(by_lower):
        names = ", ".join(f"'{name}'" for name in lookups)
        field = quote_ident(by_lower["field"])
        for value in ("oldvalue", "newvalue"):
            column = quote_ident(by_lower[value])
            sets.append(f"{column} = CASE WHEN trim({field}) IN ({names}) THEN {id18_sql(column)} ELSE {column} END")
    if sets:
        con.execute(f"UPDATE {table} SET {', '.join(sets)}")
