"""quart-schema on the app: request validation for every blueprint, and the OpenAPI document.

quart-schema's own documentation routes (Swagger UI, ReDoc, Scalar) load scripts from a CDN and are
public, so they are off; the docs blueprint serves the document and a page behind login instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from pydantic import TypeAdapter
from quart import Quart, current_app
from quart_schema import APIKeySecurityScheme, HttpSecurityScheme, OpenAPIProvider, QuartSchema
from werkzeug.routing import BaseConverter, Rule

from tickstock.config import get_settings
from tickstock.detection import DETECTION_EXAMPLE, Detection
from tickstock.jsonutil import OrjsonProvider
from tickstock.validation import SYMBOL_RULE
from tickstock.version import __version__
from tickstock.vocab import TIERS

__all__ = ["DETECTION_SCHEMA", "TickstockOpenAPI", "init_schema", "openapi_document"]

SCHEMA_CACHE_KEY: Final = "tickstock.openapi"
_SYMBOL_PARAMETER: Final = {
    "type": "string",
    "pattern": SYMBOL_RULE.replace("A-Z", "A-Za-z"),
    "maxLength": 10,
    "description": "Ticker symbol (case-insensitive), e.g. AAPL, BRK.B",
}
_TIER_PARAMETER: Final = {"type": "string", "enum": list(TIERS)}
_PAGE_BLUEPRINTS: Final = frozenset({"pages", "pages_auth"})
_NO_BODY: Final = {
    "required": False,
    "description": "No body (an empty JSON object is accepted too).",
    "content": {"application/json": {"schema": {"type": "object", "maxProperties": 0}}},
}


_CSV_CONTENT: Final = {
    "schema": {
        "type": "string",
        "description": "format=csv: a header row, then one line per item (an attachment)",
    }
}


def _document_csv(operation: dict[str, Any]) -> None:
    """Operations with a ``format`` parameter also answer ``text/csv`` (the export)."""
    parameters = operation.get("parameters", [])
    if not any(p.get("in") == "query" and p.get("name") == "format" for p in parameters):
        return
    responses = operation.get("responses", {})
    ok = responses.get(200, responses.get("200"))  # quart-schema keys statuses by int
    if ok is not None:
        ok.setdefault("content", {})["text/csv"] = dict(_CSV_CONTENT)


class TickstockOpenAPI(OpenAPIProvider):
    """Tags operations by blueprint and describes the shared path parameters."""

    def generate_rules(self) -> Iterable[Rule]:
        # Static files (the app's and any blueprint's under /static/) and the HTML pages (the
        # dashboard, the login form) are not part of the API.
        return (
            rule
            for rule in super().generate_rules()
            if rule.endpoint != "static"
            and not rule.rule.startswith("/static/")
            and rule.endpoint.split(".", 1)[0] not in _PAGE_BLUEPRINTS
        )

    def build_paths(self, rule: Rule) -> tuple[dict[str, Any], dict[str, Any]]:
        paths, components = super().build_paths(rule)
        area = rule.endpoint.rsplit(".", 1)[0] if "." in rule.endpoint else None
        for operations in paths.values():
            for method, operation in operations.items():
                if area is not None:
                    operation.setdefault("tags", [area])
                if method in ("post", "put", "patch") and not operation.get("requestBody"):
                    # Said outright, so a client never has to guess: this one takes no body.
                    operation["requestBody"] = _NO_BODY
                _document_csv(operation)
        return paths, components

    def build_path_parameter(self, name: str, converter: BaseConverter) -> dict[str, Any]:
        parameter = super().build_path_parameter(name, converter)
        if name == "symbol":
            parameter["schema"] = dict(_SYMBOL_PARAMETER)
        elif name == "tier":
            parameter["schema"] = dict(_TIER_PARAMETER)
        return parameter


def init_schema(app: Quart) -> QuartSchema:
    """Install quart-schema on ``app``, keeping tickstock's JSON provider (it would swap its own).

    Its validation errors become the 400 envelope in :func:`tickstock.errors.register_error_handlers`.
    """
    schema = QuartSchema(
        app,
        openapi_path=None,
        info={"title": "tickstock API", "version": __version__},
        security_schemes={
            "bearer": HttpSecurityScheme(scheme="bearer"),
            "session": APIKeySecurityScheme(name=get_settings(app).cookie_name, in_="cookie"),
        },
        security=[{"bearer": []}, {"session": []}],
        openapi_provider_class=TickstockOpenAPI,
    )
    # quart-schema swaps in a stdlib-json provider; tickstock's orjson one (UTC 'Z'
    # timestamps, Decimal as numbers) must stay.
    app.json = OrjsonProvider(app)
    return schema


DETECTION_SCHEMA: Final = "Detection"
_DETECTION_DESCRIPTION: Final = (
    "A pattern detection, the same in every view: the rows of GET /api/patterns,"
    " /api/patterns/{symbol}, /api/patterns/tiers/{tier} and /api/patterns/scan (and their CSV"
    " columns), the data of the live pattern_detected event and the event.data of an alert."
    " Each view adds its own fields (a row id, an event id and offset, market figures)."
)


def _add_detection(document: dict[str, Any]) -> None:
    """The shared detection shape as a schema of its own, with an example."""
    schema = TypeAdapter(Detection).json_schema(ref_template="#/components/schemas/{model}")
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, definition in schema.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    schema["description"] = _DETECTION_DESCRIPTION
    schema["examples"] = [DETECTION_EXAMPLE]
    schemas[DETECTION_SCHEMA] = schema


def openapi_document() -> dict[str, Any]:
    """The current app's OpenAPI document, built once (routes do not change while serving)."""
    cached: dict[str, Any] | None = current_app.extensions.get(SCHEMA_CACHE_KEY)
    if cached is None:
        extension: QuartSchema = current_app.extensions["QUART_SCHEMA"]
        cached = extension.openapi_provider.schema()
        _add_detection(cached)
        current_app.extensions[SCHEMA_CACHE_KEY] = cached
    return cached
