"""CSV export of list endpoints (``format=csv``): a header row, then one line per row, streamed.

Cells hold what the JSON response holds: numbers as JSON writes them, times as ISO-8601 UTC,
JSON objects and lists as JSON text, nulls as empty cells. Nested objects (the analytics
horizons) are flattened into ``parent.child`` columns.

Text that a spreadsheet would run as a formula (it starts with ``=``, ``+``, ``-``, ``@``, a tab
or a carriage return: OWASP's CSV injection rule) gets a leading ``'``, so it is shown as the
text it is; numbers are never text here, so they stay numbers.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, Final

from quart import Response

from tickstock.jsonutil import dumps

__all__ = ["CSV_MAX_ROWS", "csv_cell", "csv_response", "flatten"]

CSV_MAX_ROWS: Final = 10_000
_CHUNK_ROWS: Final = 500
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """One cell: empty for null, text as is (formulas neutralised), else its JSON text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return "'" + value if value.startswith(_FORMULA_STARTS) else value
    text = dumps(value).decode()
    if isinstance(value, dt.date | dt.datetime):
        return text.strip('"')
    return text


def flatten(row: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"d1": {"samples": 3}}`` -> ``{"d1.samples": 3}`` (plain mappings only)."""
    flat: dict[str, Any] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def csv_response(
    filename: str,
    columns: Sequence[str],
    rows: Iterable[Mapping[str, Any]],
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A streamed ``text/csv`` attachment: the header row ``columns``, then each row's cells."""

    async def body() -> AsyncIterator[bytes]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(columns)
        pending = 0
        for row in rows:
            flat = flatten(row)
            writer.writerow([csv_cell(flat.get(column)) for column in columns])
            pending += 1
            if pending >= _CHUNK_ROWS:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
                pending = 0
        yield buffer.getvalue().encode()

    response = Response(body(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response
