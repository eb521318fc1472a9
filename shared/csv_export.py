"""The one CSV writer of every export (progress's learner list, certification's lists).

Exports hold text that came from outside (names and organisations from CSV imports and
xAPI statements). A spreadsheet runs a cell starting with `=`, `+`, `-`, `@`, a tab or
a carriage return as a formula (`=HYPERLINK(...)`, `=cmd|' /C calc'!A0`), so such a
text cell is written with a leading single quote, as OWASP's CSV injection guidance
says: the spreadsheet shows it as text and runs nothing.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CHUNK_CHARS = 64 * 1024


def safe_cell(value) -> str:
    """The text of one cell; None is empty. Only text is neutralised: a number we wrote
    (a negative one, say) is not a formula, and quoting it would make it text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return f"'{value}" if value.startswith(FORMULA_STARTS) else value
    return str(value)


def csv_chunks(columns: Sequence[str], rows: Iterable[Mapping],
               headers: Sequence[str] | None = None) -> Iterator[str]:
    """A header row (`headers`, the columns' names in the reader's language; else the
    columns' own names), then each row's values for the columns (missing ones empty), in
    chunks of about 64 KB: an export of thousands streams instead of sitting in memory."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([safe_cell(h) for h in headers] if headers is not None else columns)
    for row in rows:
        writer.writerow([safe_cell(row.get(column)) for column in columns])
        if buffer.tell() > CHUNK_CHARS:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def csv_text(columns: Sequence[str], rows: Iterable[Mapping], headers: Sequence[str] | None = None) -> str:
    return "".join(csv_chunks(columns, rows, headers))
