"""The line of a text file on which each of its records starts, so that a reject names the line
an analyst sees in an editor.

DuckDB's CSV and JSON readers number nothing, skip blank lines, and a quoted CSV value may hold
line breaks: record k is line k + 1 (after a CSV header) only when none of that happens. Counting
the file's line breaks tells whether it did; only then is the file read again, record by record,
to find where each one starts."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np

_CHUNK = 1 << 24
# Line breaks counted while a file was read anyway, by (path, size, mtime): see read_chunks.
_counted: dict[tuple[str, int, int], tuple[int, bytes]] = {}


def read_chunks(path: Path, *, count_lines: bool) -> Iterator[bytes]:
    """The bytes of ``path`` in chunks. With ``count_lines``, its line breaks are counted on the
    way, so that a load, which reads every byte for its fingerprint, spares
    :func:`record_start_lines` a second pass over a file of gigabytes."""
    count, last = 0, b""
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            if count_lines:
                count += chunk.count(b"\n")
                last = chunk[-1:]
            yield chunk
    if count_lines:
        _counted[_identity(path)] = (count, last)


def _identity(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns


def record_start_lines(path: Path, records: int, *, header: bool, fmt: str) -> np.ndarray | None:
    """Start line (1-based) of each of the ``records`` records DuckDB read from ``path``, or None
    when record k starts on line k (+1 with a ``header``).

    None also when this reading of the file does not find the same number of records as DuckDB
    (a CSV dialect it does not share): the record numbers
    are then the best line numbers there are."""
    line_breaks, last_byte = _count_line_breaks(path)
    lines = line_breaks + (0 if last_byte in (b"\n", b"") else 1)
    if lines == records + int(header):
        return None
    try:
        starts = _csv_starts(path, header) if fmt == "csv" else _jsonl_starts(path)
    except (csv.Error, UnicodeDecodeError):
        return None
    return starts if len(starts) == records else None


def _count_line_breaks(path: Path) -> tuple[int, bytes]:
    known = _counted.get(_identity(path))
    if known is None:
        for _ in read_chunks(path, count_lines=True):
            pass
        known = _counted[_identity(path)]
    return known


def _csv_starts(path: Path, header: bool) -> np.ndarray:
    starts = []
    # A value as long as DuckDB reads (a record up to 2 MB) is over csv's default field limit.
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, path.stat().st_size + 1))
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            if header:
                next(reader, None)
            end = reader.line_num  # the last line of the previous record (or blank line)
            for row in reader:
                if row:  # DuckDB skips blank lines; csv gives them as []
                    starts.append(end + 1)
                end = reader.line_num
    finally:
        csv.field_size_limit(limit)
    return np.asarray(starts, dtype=np.int64)


def _jsonl_starts(path: Path) -> np.ndarray:
    # A JSON Lines record is one line: a line break inside a string is escaped.
    with path.open(encoding="utf-8-sig") as handle:
        return np.asarray([number for number, line in enumerate(handle, start=1) if line.strip()], dtype=np.int64)


def lines_at(path: Path, byte_positions: list[int]) -> list[int]:
    """The line (1-based) on which a record starting at each byte offset of ``path`` is, for
    offsets in ascending order.

    An offset on a line break belongs to the line after the breaks: DuckDB reports a record that
    follows a CRLF, or blank lines, as starting on the first of those bytes. Only a file with
    misread records comes here; it is read up to the last offset."""
    lines: list[int] = []
    pending = iter(byte_positions)
    target = next(pending, None)
    # seen: line breaks before the scan point; consumed: bytes of the chunks before this one;
    # skipping: inside the run of line breaks in front of the record at ``target``.
    seen, consumed, skipping = 0, 0, False
    with path.open("rb") as handle:
        while target is not None and (chunk := handle.read(_CHUNK)):
            start = 0
            while target is not None:
                if not skipping:
                    if target >= consumed + len(chunk):
                        break
                    seen += chunk.count(b"\n", start, target - consumed)
                    start = target - consumed
                    skipping = True
                while start < len(chunk) and chunk[start] in b"\r\n":
                    seen += chunk[start] == ord("\n")
                    start += 1
                if start == len(chunk):
                    break  # the run of line breaks may go on in the next chunk
                lines.append(seen + 1)
                skipping = False
                target = next(pending, None)
            if not skipping:
                seen += chunk.count(b"\n", start)
            consumed += len(chunk)
    if target is not None:  # offsets at the very end, behind nothing but line breaks
        lines.append(seen + 1)
        lines.extend(seen + 1 for _ in pending)
    return lines


def long_line(path: Path, limit: int, line: int | None = None) -> tuple[int, bytes] | None:
    """The number (1-based) and bytes (without its line break) of line ``line`` of ``path``, or,
    without ``line``, of its first line longer than ``limit`` bytes; None when there is none.
    Only a file DuckDB refused for a long record comes here."""
    number, pending = 1, b""  # pending: the start of line ``number``, read in earlier chunks
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            breaks = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == ord("\n"))
            if len(breaks) == 0:
                pending += chunk
                continue
            starts = np.concatenate([[0], breaks[:-1] + 1])
            lengths = breaks - starts
            lengths[0] += len(pending)
            if line is not None:
                found = [line - number] if 0 <= line - number < len(breaks) else []
            else:
                found = np.flatnonzero(lengths > limit)
            if len(found):
                index = int(found[0])
                text = (pending if index == 0 else b"") + chunk[starts[index] : breaks[index]]
                return number + index, text.removesuffix(b"\r")
            number += len(breaks)
            pending = chunk[breaks[-1] + 1 :]
    if pending and (len(pending) > limit if line is None else line == number):
        return number, pending.removesuffix(b"\r")
    return None
