"""Vectorised builders of Arrow columns for the generator: ids, money, timestamps and JSON text.

Private to :mod:`crm_lab.generate`. Everything here works on whole numpy arrays and returns Arrow
arrays, so that millions of rows never become Python objects.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

US_PER_S = 1_000_000
TS_TYPE = pa.timestamp("us", tz="UTC")
MONEY_TYPE = pa.decimal128(18, 2)
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _string_from_matrix(buf: np.ndarray) -> pa.StringArray:
    """Wrap an ``(n, width)`` uint8 matrix of ASCII bytes as an Arrow string array (no copy of rows)."""
    n, width = buf.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int64)
    data = np.ascontiguousarray(buf).reshape(-1)
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data)).cast(
        pa.string()
    )


def with_nulls(arr: pa.Array, valid: np.ndarray | None) -> pa.Array:
    """Return ``arr`` with the rows where ``valid`` is False set to null."""
    if valid is None or bool(np.all(valid)):
        return arr
    return pc.if_else(pa.array(valid, pa.bool_()), arr, pa.scalar(None, arr.type))


def ids(prefix: str, nums: np.ndarray, width: int, valid: np.ndarray | None = None) -> pa.Array:
    """Format integers as zero-padded ids, e.g. ``ids("deal-", [1, 2], 6)`` -> deal-000001, deal-000002.

    The width grows when a number needs more digits, so ids stay unique. Rows where ``valid`` is False
    are null (their number is ignored).
    """
    nums = np.asarray(nums, dtype=np.int64)
    if valid is not None:
        nums = np.where(valid, nums, 0)
    if len(nums):
        width = max(width, len(str(int(nums.max()))))
    p = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    buf = np.empty((len(nums), len(p) + width), dtype=np.uint8)
    buf[:, : len(p)] = p
    x = nums.copy()
    for j in range(len(p) + width - 1, len(p) - 1, -1):
        buf[:, j] = 48 + (x % 10)
        x //= 10
    return with_nulls(_string_from_matrix(buf), valid)


def hex_ids(prefix: str, nums: np.ndarray) -> pa.Array:
    """Format uint64 values as ``prefix`` + 16 lower-case hex digits."""
    x = np.asarray(nums, dtype=np.uint64)
    p = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    buf = np.empty((len(x), len(p) + 16), dtype=np.uint8)
    buf[:, : len(p)] = p
    for j in range(16):
        shift = np.uint64(4 * (15 - j))
        buf[:, len(p) + j] = _HEX[((x >> shift) & np.uint64(15)).astype(np.intp)]
    return _string_from_matrix(buf)


def vocab(words: Sequence[str], idx: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Take words by index; rows where ``valid`` is False (or idx < 0 when valid is None) are null."""
    idx = np.asarray(idx, dtype=np.int64)
    if valid is None:
        valid = idx >= 0
    safe = np.where(valid, idx, 0)
    out = pa.array(list(words), pa.string()).take(pa.array(safe))
    return with_nulls(out, valid)


def money(cents: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Exact decimal128(18, 2) from integer cents."""
    c = np.ascontiguousarray(cents, dtype=np.int64)
    buf = np.empty((len(c), 2), dtype=np.int64)
    buf[:, 0] = c
    buf[:, 1] = c >> 63
    arr = pa.Array.from_buffers(MONEY_TYPE, len(c), [None, pa.py_buffer(buf)])
    return with_nulls(arr, valid)


def timestamps(seconds: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """UTC timestamps (microseconds) from integer epoch seconds."""
    s = np.asarray(seconds, dtype=np.int64)
    arr = pa.array(s * US_PER_S, type=TS_TYPE)
    return with_nulls(arr, valid)


def dates(days: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """date32 from integer days since 1970-01-01."""
    arr = pa.array(np.asarray(days, dtype=np.int32), type=pa.date32())
    return with_nulls(arr, valid)


def scatter(values: pa.Array, mask: np.ndarray) -> pa.Array:
    """Spread ``values`` (one per True in ``mask``, in order) over ``len(mask)`` rows; others null."""
    mask = np.asarray(mask, dtype=bool)
    pos = np.full(len(mask), -1, dtype=np.int64)
    pos[mask] = np.arange(int(mask.sum()))
    indices = pa.array(pos, mask=~mask)
    if len(values) == 0:
        return pa.nulls(len(mask), values.type)
    return pc.take(values, indices)


# --------------------------------------------------------------------------------------- JSON text


def json_escape(arr: pa.Array) -> pa.Array:
    """Escape backslashes, quotes and control characters for a JSON string body."""
    arr = pc.replace_substring(arr, "\\", "\\\\")
    arr = pc.replace_substring(arr, '"', '\\"')
    for ch, rep in (("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
        arr = pc.replace_substring(arr, ch, rep)
    return arr


def json_quoted(arr: pa.Array, escape: bool = True) -> pa.Array:
    """JSON string literals (``"..."``); nulls stay null."""
    if escape:
        arr = json_escape(arr)
    return pc.binary_join_element_wise('"', arr, '"', "")


def json_number(arr: pa.Array) -> pa.Array:
    """JSON number text of an integer, float or decimal array; nulls stay null."""
    return pc.cast(arr, pa.string())


def json_objects(n: int, fields: Sequence[tuple[str, pa.Array]]) -> pa.Array:
    """Build one JSON object per row from ``(key, value_text)`` pairs.

    ``value_text`` holds JSON text for the value (``"abc"``, ``12.50``, ``null``) or an Arrow null
    when the key is absent from that row's object. Keys keep the given order.
    """
    if n == 0:
        return pa.array([], pa.string())
    pieces = []
    for key, val in fields:
        if len(val) != n:
            raise ValueError(f"field {key!r} has {len(val)} rows, expected {n}")
        pieces.append(pc.binary_join_element_wise(f',"{key}":', val, ""))
    if not pieces:
        return pa.array(np.full(n, "{}", dtype=object), pa.string())
    joined = pc.binary_join_element_wise(
        "{", *pieces, "}", "", null_handling="replace", null_replacement=""
    )
    return pc.replace_substring(joined, "{,", "{", max_replacements=1)


def iso_text(ts: pa.Array) -> pa.Array:
    """ISO 8601 text ``YYYY-MM-DDTHH:MM:SSZ`` (or with fractional seconds when present)."""
    secs = pc.cast(ts, pa.timestamp("s", tz="UTC"), safe=False)
    whole = pc.equal(pc.cast(ts, pa.int64()), pc.multiply(pc.cast(secs, pa.int64()), US_PER_S))
    plain = pc.strftime(secs, format="%Y-%m-%dT%H:%M:%SZ")
    if pc.all(pc.fill_null(whole, True)).as_py():
        return plain
    fine = pc.strftime(ts, format="%Y-%m-%dT%H:%M:%SZ")
    return pc.if_else(whole, plain, fine)


def table_to_csv_ready(table: pa.Table) -> pa.Table:
    """Timestamps as ISO 8601 text with ``Z``; everything else as Arrow's CSV writer prints it."""
    cols = []
    for col in table.columns:
        arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        cols.append(iso_text(arr) if pa.types.is_timestamp(arr.type) else arr)
    return pa.table(cols, names=table.column_names)


def csv_schema(schema: pa.Schema) -> pa.Schema:
    """The schema of :func:`table_to_csv_ready` output."""
    return pa.schema(
        [pa.field(f.name, pa.string() if pa.types.is_timestamp(f.type) else f.type) for f in schema]
    )


def table_to_jsonl(table: pa.Table, raw_json_columns: Sequence[str] = (), rows_per_piece: int = 100_000):
    """Serialise a table as JSON Lines, yielding the text in pieces (buffer-protocol objects).

    ``raw_json_columns`` already hold JSON text (objects) and are embedded as they are.
    """
    for start in range(0, table.num_rows, rows_per_piece):
        piece = table.slice(start, rows_per_piece)
        n = piece.num_rows
        parts = []
        for i, name in enumerate(piece.column_names):
            col = piece.column(i).combine_chunks()
            t = col.type
            if name in raw_json_columns:
                text = col
            elif pa.types.is_timestamp(t):
                text = json_quoted(iso_text(col), escape=False)
            elif pa.types.is_date(t):
                text = json_quoted(pc.cast(col, pa.string()), escape=False)
            elif pa.types.is_boolean(t):
                text = pc.if_else(col, "true", "false")
            elif pa.types.is_string(t) or pa.types.is_large_string(t):
                text = json_quoted(col)
            else:
                text = json_number(col)
            text = pc.fill_null(text, "null")
            sep = "{" if i == 0 else ","
            parts.append(pc.binary_join_element_wise(f'{sep}"{name}":', text, ""))
        lines = pc.binary_join_element_wise(*parts, "}\n", "")
        offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset : lines.offset + n + 1]
        yield memoryview(lines.buffers()[2])[int(offsets[0]) : int(offsets[-1])]
