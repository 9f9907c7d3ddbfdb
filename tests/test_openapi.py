"""The OpenAPI document and the docs page: behind login, complete for the read API."""

from __future__ import annotations

from typing import Any

import pytest

from tickstock.detection import Detection

# (method, path) of every operation the read API documents, with its query parameters.
READ_API: dict[tuple[str, str], set[str]] = {
    ("get", "/api/patterns"): {
        "tier",
        "symbols",
        "pattern",
        "confidence_min",
        "since",
        "until",
        "limit",
        "cursor",
        "format",
    },
    ("get", "/api/patterns/{symbol}"): {
        "tier",
        "pattern",
        "confidence_min",
        "since",
        "until",
        "limit",
        "cursor",
        "format",
    },
    ("get", "/api/patterns/tiers/{tier}"): {
        "symbols",
        "pattern",
        "confidence_min",
        "limit",
        "cursor",
        "format",
    },
    ("get", "/api/patterns/scan"): {
        "tier",
        "patterns",
        "sectors",
        "min_confidence",
        "rs_min",
        "rel_volume_min",
        "rsi_min",
        "rsi_max",
        "price_min",
        "price_max",
        "market_cap_min",
        "sort",
        "limit",
        "cursor",
        "format",
    },
    ("get", "/api/market/overview"): set(),
    ("get", "/api/market/breadth"): {"days"},
    ("get", "/api/analytics/patterns"): {"tier", "sector", "since", "min_samples", "format"},
    ("get", "/api/pattern-definitions"): {"enabled", "category"},
    ("get", "/api/indicators"): {"symbols", "source"},
    ("get", "/api/indicators/{symbol}"): {"source"},
    ("get", "/api/symbols"): {"q", "sector", "active", "limit", "cursor"},
    ("get", "/api/symbols/{symbol}"): set(),
    ("get", "/api/symbols/{symbol}/ohlcv"): {"start", "end", "limit"},
    ("get", "/api/user/watchlist"): set(),
    ("put", "/api/user/watchlist"): set(),
    ("get", "/api/user/settings"): set(),
    ("put", "/api/user/settings"): set(),
    ("get", "/api/admin/connections"): {"group_by", "user_id", "node_id", "limit", "cursor"},
    ("get", "/api/admin/errors"): {"source", "reason", "since", "limit", "cursor"},
}


async def _document(client: Any, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get("/openapi.json", headers=headers)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    document: dict[str, Any] = await response.get_json()
    return document


async def test_openapi_requires_login(client: Any) -> None:
    response = await client.get("/openapi.json", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert (await response.get_json())["code"] == "unauthorized"
    # A browser is sent to the login page instead.
    response = await client.get("/openapi.json", headers={"Accept": "text/html"})
    assert response.status_code in (302, 303)


async def test_document_lists_the_read_api(client: Any, auth_headers: dict[str, str]) -> None:
    document = await _document(client, auth_headers)
    assert document["openapi"].startswith("3.1")
    assert document["info"]["title"] == "tickstock API"
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
    }
    assert {"bearer": []} in document["security"]
    for (method, path), parameters in READ_API.items():
        operation = document["paths"][path][method]
        assert operation["summary"], path
        query = {p["name"] for p in operation["parameters"] if p["in"] == "query"}
        assert query == parameters, path
        assert "200" in operation["responses"] and "401" in operation["responses"], path
    # Not part of the API: static files and the docs themselves.
    assert not any(path.startswith("/static") for path in document["paths"])
    assert "/openapi.json" not in document["paths"] and "/docs" not in document["paths"]


async def test_documented_constraints(client: Any, auth_headers: dict[str, str]) -> None:
    document = await _document(client, auth_headers)
    patterns = document["paths"]["/api/patterns"]["get"]
    limit = next(p for p in patterns["parameters"] if p["name"] == "limit")
    bounded = next(s for s in limit["schema"]["anyOf"] if s.get("type") == "integer")
    # JSON pages stop at 500 (a 400 beyond); format=csv downloads go up to 10,000 rows.
    assert (bounded["minimum"], bounded["maximum"]) == (1, 10_000)
    assert "at most 500" in bounded["description"]
    tier = document["paths"]["/api/patterns/tiers/{tier}"]["get"]["parameters"][0]
    assert tier["schema"]["enum"] == [
        "daily",
        "intraday",
        "hourly",
        "weekly",
        "monthly",
        "combo",
        "daily_intraday",
    ]
    symbol = document["paths"]["/api/symbols/{symbol}"]["get"]["parameters"][0]
    assert symbol["schema"]["maxLength"] == 10
    body = document["paths"]["/api/user/settings"]["put"]["requestBody"]["content"]
    settings = body["application/json"]["schema"]
    assert settings["additionalProperties"] is False
    assert set(settings["properties"]) == {"theme", "default_tier", "min_confidence", "feed_limit"}
    assert "7 days" in document["paths"]["/api/patterns/tiers/{tier}"]["get"]["description"]


async def test_every_read_operation_requires_login(
    client: Any, auth_headers: dict[str, str]
) -> None:
    document = await _document(client, auth_headers)
    for method, path in READ_API:
        url = path.replace("{symbol}", "AAPL").replace("{tier}", "daily")
        response = await client.open(url, method=method.upper(), json={})
        assert response.status_code == 401, (method, path)
        assert await response.get_json() == {
            "status": "error",
            "message": "login required",
            "code": "unauthorized",
        }
    assert document  # the walk above used the documented paths


async def test_docs_page(client: Any, auth_headers: dict[str, str]) -> None:
    response = await client.get("/docs", headers=auth_headers)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = await response.get_data(as_text=True)
    for _, path in READ_API:
        assert f"<code>{path}</code>" in page
    assert "Windows, from the request time" in page
    # Nothing loaded from elsewhere (no CDN: the page works offline).
    assert "<script" not in page and "https://" not in page


async def test_docs_page_behind_login(client: Any) -> None:
    response = await client.get("/docs", headers={"Accept": "text/html"})
    assert response.status_code in (302, 303)
    assert response.headers["Location"].startswith("/login?next=")
    response = await client.get("/docs", headers={"Accept": "application/json"})
    assert response.status_code == 401


@pytest.mark.parametrize("path", ["/redocs", "/scalar", "/swagger", "/openapi"])
async def test_quart_schema_public_pages_are_off(
    client: Any, auth_headers: dict[str, str], path: str
) -> None:
    response = await client.get(path, headers=auth_headers)
    assert response.status_code == 404


async def test_json_provider_kept(client: Any, auth_headers: dict[str, str]) -> None:
    # quart-schema installs its own JSON provider; tickstock's orjson one must survive it.
    response = await client.get(
        "/api/patterns", headers=auth_headers, query_string={"limit": 1, "tier": "daily"}
    )
    item = (await response.get_json())["data"][0]
    assert item["detected_at"].endswith("Z")
    assert client.app.json.__class__.__name__ == "OrjsonProvider"


async def test_every_write_operation_documents_its_request_body(
    client: Any, auth_headers: dict[str, str]
) -> None:
    document = await _document(client, auth_headers)
    writes = [
        (method, path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if method in ("post", "put", "patch")
    ]
    assert len(writes) >= 8
    for method, path, operation in writes:
        body = operation.get("requestBody")
        assert body and body["content"]["application/json"]["schema"], (method, path)
    login = document["paths"]["/api/auth/login"]["post"]["requestBody"]
    schema = login["content"]["application/json"]["schema"]
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    assert {"username", "password"} <= set(schema["properties"])
    # HTML pages (the login form, the dashboard) are not API operations.
    assert "/login" not in document["paths"] and "/" not in document["paths"]


async def test_docs_page_is_a_reference(client: Any, auth_headers: dict[str, str]) -> None:
    response = await client.get("/docs", headers=auth_headers)
    page = await response.get_data(as_text=True)
    assert '<link rel="stylesheet" href="/static/css/app.css">' in page  # styled like the app
    for area in ("auth", "patterns", "symbols", "user"):
        assert f'<a href="#{area}">{area}</a>' in page  # navigation by area
    assert "X-CSRF-Token" in page and "Authorization: Bearer" in page
    assert page.count("<h2>CSRF</h2>") == 1  # stated once, at the top
    assert "``" not in page  # docstrings rendered as text
    # The request body of a POST, from the model that validates it, with an example.
    tokens = page[page.index('id="post-api-auth-tokens"') :]
    tokens = tokens[: tokens.index("</article>")]
    assert '<code>name</code> <span class="muted">required</span>' in tokens
    assert "<code>expires_in_days</code>" in tokens
    assert "{&#34;name&#34;:&#34;text&#34;}" in tokens


async def test_a_detection_is_documented_once_with_an_example(
    client: Any, auth_headers: dict[str, str]
) -> None:
    document = await _document(client, auth_headers)
    detection = document["components"]["schemas"]["Detection"]
    assert set(detection["properties"]) == set(Detection.__annotations__)
    (example,) = detection["examples"]
    assert example["levels"][0] == {"type": "support", "value": 180.5}
    response = await client.get("/docs", headers=auth_headers)
    page = await response.get_data(as_text=True)
    assert page.count('id="detection"') == 1
    section = page[page.index('id="detection"') :]
    section = section[: section.index("</section>")]
    for field in Detection.__annotations__:
        assert f"<code>{field}</code>" in section
    assert "&#34;price&#34;:185.2" in section  # the example
    # The lists of detections refer to it instead of repeating its fields.
    listing = page[page.index('id="get-api-patterns-symbol"') :]
    listing = listing[: listing.index("</article>")]
    assert (
        '<a href="#detection">Detections</a>' in listing and "<code>pattern_data</code>" in listing
    )
    assert "<code>confidence</code>" not in listing.split("Responses", 1)[1]


async def test_docs_page_explains_both_subscribe_shapes_and_cites_no_private_document(
    client: Any, auth_headers: dict[str, str]
) -> None:
    response = await client.get("/docs", headers=auth_headers)
    page = await response.get_data(as_text=True)
    live = page[page.index('id="live"') :]
    assert 'subscribe_patterns {"symbol": "AAPL"}' in live
    assert 'subscribe_patterns {"symbols": ["AAPL", "MSFT"]' in live
    document = await _document(client, auth_headers)
    assert "SPEC" not in page and "SPEC" not in str(document)
