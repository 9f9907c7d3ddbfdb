"""The OpenAPI document and a server-rendered API docs page, both behind login.

quart-schema itself is installed by ``create_app`` (tickstock.openapi): removing this blueprint
removes these two pages and nothing else.
"""

from __future__ import annotations

from typing import Any, Final

from quart import Blueprint, Response, render_template_string
from quart_schema import hide

from tickstock.auth import login_required
from tickstock.jsonutil import dumps
from tickstock.openapi import openapi_document

blueprint = Blueprint("docs", __name__)


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
