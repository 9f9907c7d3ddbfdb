"""The OpenAPI document and a server-rendered API docs page, both behind login.

Registering this blueprint installs quart-schema on the app: request validation errors become
the 400 envelope, and the OpenAPI document is built from the routes, their query/body models and
docstrings. quart-schema's own documentation routes (Swagger UI, ReDoc, Scalar) load scripts from
a CDN and are public, so they are disabled; ``/docs`` renders the document here instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from quart import Blueprint, Quart, Response, current_app, render_template_string
from quart.blueprints import BlueprintSetupState
from quart_schema import (
    APIKeySecurityScheme,
    HttpSecurityScheme,
    OpenAPIProvider,
    QuartSchema,
    hide,
)
from werkzeug.routing import BaseConverter, Rule

from tickstock import __version__
from tickstock.auth import login_required
from tickstock.jsonutil import OrjsonProvider, dumps
from tickstock.queries.patterns import ALL_TIERS
from tickstock.validation import SYMBOL_RULE, register

blueprint = Blueprint("docs", __name__)

SCHEMA_CACHE_KEY: Final = "tickstock.openapi"
_SYMBOL_PARAMETER: Final = {
    "type": "string",
    "pattern": SYMBOL_RULE.replace("A-Z", "A-Za-z"),
    "maxLength": 10,
    "description": "Ticker symbol (case-insensitive), e.g. AAPL, BRK.B",
}
_TIER_PARAMETER: Final = {"type": "string", "enum": list(ALL_TIERS)}


class TickstockOpenAPI(OpenAPIProvider):
    """Tags operations by blueprint and describes the shared path parameters."""

    def generate_rules(self) -> Iterable[Rule]:
        # Static files (the app's and any blueprint's under /static/) are not part of the API.
        return (
            rule
            for rule in super().generate_rules()
            if rule.endpoint != "static" and not rule.rule.startswith("/static/")
        )

    def build_paths(self, rule: Rule) -> tuple[dict[str, Any], dict[str, Any]]:
        paths, components = super().build_paths(rule)
        area = rule.endpoint.rsplit(".", 1)[0] if "." in rule.endpoint else None
        for operations in paths.values():
            for operation in operations.values():
                if area is not None:
                    operation.setdefault("tags", [area])
        return paths, components

    def build_path_parameter(self, name: str, converter: BaseConverter) -> dict[str, Any]:
        parameter = super().build_path_parameter(name, converter)
        if name == "symbol":
            parameter["schema"] = dict(_SYMBOL_PARAMETER)
        elif name == "tier":
            parameter["schema"] = dict(_TIER_PARAMETER)
        return parameter


def install_schema(app: Quart) -> QuartSchema:
    """quart-schema on ``app`` with tickstock's JSON provider kept (it would install its own)."""
    settings = app.config["SETTINGS"]
    schema = QuartSchema(
        app,
        openapi_path=None,
        info={"title": "tickstock API", "version": __version__},
        security_schemes={
            "bearer": HttpSecurityScheme(scheme="bearer"),
            "session": APIKeySecurityScheme(name=settings.cookie_name, in_="cookie"),
        },
        security=[{"bearer": []}, {"session": []}],
        openapi_provider_class=TickstockOpenAPI,
    )
    # quart-schema swaps in a stdlib-json provider; tickstock's orjson one (UTC 'Z'
    # timestamps, Decimal as numbers) must stay.
    app.json = OrjsonProvider(app)
    register(app)
    return schema


def _install(state: BlueprintSetupState) -> None:
    app = state.app
    assert isinstance(app, Quart)
    install_schema(app)


blueprint.record_once(_install)


def openapi_document() -> dict[str, Any]:
    """The app's OpenAPI document, built once (routes do not change while serving)."""
    cached: dict[str, Any] | None = current_app.extensions.get(SCHEMA_CACHE_KEY)
    if cached is None:
        extension: QuartSchema = current_app.extensions["QUART_SCHEMA"]
        cached = extension.openapi_provider.schema()
        current_app.extensions[SCHEMA_CACHE_KEY] = cached
    return cached


@blueprint.get("/openapi.json")
@hide
@login_required
async def openapi() -> Response:
    """The OpenAPI 3.1 document of the whole API."""
    return Response(dumps(openapi_document()), mimetype="application/json")


_METHOD_ORDER: Final = ("get", "post", "put", "patch", "delete")

_PAGE: Final = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ title }} {{ version }}</title>
<style>
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; }
h2 { border-bottom: 1px solid #ccc; margin-top: 2.5rem; }
.op { margin: 1.25rem 0; }
.method { display: inline-block; min-width: 4rem; font-weight: 700; text-transform: uppercase; }
code { background: #f3f3f3; padding: 0 .25rem; }
table { border-collapse: collapse; margin-top: .5rem; }
td, th { border: 1px solid #ddd; padding: .2rem .5rem; text-align: left; vertical-align: top; }
.desc { white-space: pre-line; color: #333; }
</style>
</head>
<body>
<h1>{{ title }} <small>{{ version }}</small></h1>
<p>Every endpoint answers <code>{"status": "success", "data": ..., "meta": {...}}</code> or
<code>{"status": "error", "code": "...", "message": "..."}</code>. Authenticate with
<code>Authorization: Bearer &lt;token&gt;</code> or a browser session. Machine-readable:
<a href="{{ openapi_url }}">openapi.json</a>.</p>
{% for tag, operations in groups %}
<h2 id="{{ tag }}">{{ tag }}</h2>
{% for op in operations %}
<div class="op">
<div><span class="method">{{ op.method }}</span> <code>{{ op.path }}</code> {{ op.summary }}</div>
{% if op.description %}<div class="desc">{{ op.description }}</div>{% endif %}
{% if op.parameters %}
<table>
<tr><th>parameter</th><th>in</th><th>type</th><th>description</th></tr>
{% for p in op.parameters %}
<tr><td><code>{{ p.name }}</code>{% if p.required %} *{% endif %}</td><td>{{ p.location }}</td>
<td>{{ p.type }}</td><td>{{ p.description }}</td></tr>
{% endfor %}
</table>
{% endif %}
{% if op.body %}<div>JSON body: <code>{{ op.body }}</code></div>{% endif %}
</div>
{% endfor %}
{% endfor %}
</body>
</html>
"""


def _type(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return " | ".join(str(value) for value in schema["enum"])
    if "anyOf" in schema:
        return " | ".join(
            _type(option) for option in schema["anyOf"] if option.get("type") != "null"
        )
    text = str(schema.get("type", "any"))
    bounds = [
        f"{label}{schema[key]}"
        for key, label in (("minimum", ">="), ("maximum", "<="), ("maxLength", "len<="))
        if key in schema
    ]
    return f"{text} ({', '.join(bounds)})" if bounds else text


def _operations(document: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for path, operations in sorted(document.get("paths", {}).items()):
        for method in _METHOD_ORDER:
            operation = operations.get(method)
            if operation is None:
                continue
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            body_ref = (body or {}).get("schema", {}).get("$ref", "")
            groups.setdefault((operation.get("tags") or ["other"])[0], []).append(
                {
                    "method": method,
                    "path": path,
                    "summary": operation.get("summary", ""),
                    "description": operation.get("description", ""),
                    "body": body_ref.rsplit("/", 1)[-1] if body_ref else ("JSON" if body else ""),
                    "parameters": [
                        {
                            "name": parameter["name"],
                            "location": parameter["in"],
                            "required": parameter.get("required", False),
                            "type": _type(parameter.get("schema", {})),
                            "description": parameter.get("description")
                            or parameter.get("schema", {}).get("description", ""),
                        }
                        for parameter in operation.get("parameters", [])
                    ],
                }
            )
    return sorted(groups.items())


@blueprint.get("/docs")
@hide
@login_required
async def docs() -> str:
    """The API documentation page, rendered on the server from the OpenAPI document."""
    document = openapi_document()
    return await render_template_string(
        _PAGE,
        title=document["info"]["title"],
        version=document["info"]["version"],
        openapi_url="/openapi.json",
        groups=_operations(document),
    )
