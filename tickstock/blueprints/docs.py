"""The OpenAPI document and a server-rendered API docs page, both behind login.

quart-schema itself is installed by ``create_app`` (tickstock.openapi): removing this blueprint
removes these two pages and nothing else.
"""

from __future__ import annotations

import re
from typing import Any, Final

from markupsafe import Markup, escape
from quart import Blueprint, Response, render_template
from quart_schema import hide

from tickstock.auth import CSRF_HEADER, login_required
from tickstock.jsonutil import dumps
from tickstock.openapi import DETECTION_SCHEMA, openapi_document

blueprint = Blueprint("docs", __name__)


@blueprint.get("/openapi.json")
@hide
@login_required
async def openapi() -> Response:
    """The OpenAPI 3.1 document of the whole API."""
    return Response(dumps(openapi_document()), mimetype="application/json")


_METHOD_ORDER: Final = ("get", "post", "put", "patch", "delete")
_LITERAL: Final = re.compile(r"``(.+?)``")


def prose(text: object) -> Markup:
    """A docstring as text: HTML escaped, reST ``literals`` shown as code, nothing else."""
    escaped = str(escape(str(text or "")))
    return Markup(_LITERAL.sub(r"<code>\1</code>", escaped))


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        found: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[-1]]
        return found
    return schema


def _example(document: dict[str, Any], schema: dict[str, Any], depth: int = 0) -> Any:
    """A plausible value for ``schema`` (its example, default or first enum value)."""
    schema = _resolve(document, schema)
    for key in ("example", "default"):
        if schema.get(key) is not None:
            return schema[key]
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        options = [o for o in schema["anyOf"] if o.get("type") != "null"]
        return _example(document, options[0], depth) if options else None
    kind = schema.get("type")
    if kind == "object" and depth < 3:
        required = set(schema.get("required", []))
        return {
            name: _example(document, prop, depth + 1)
            for name, prop in schema.get("properties", {}).items()
            if name in required
        }
    if kind == "array":
        return [_example(document, schema.get("items", {}), depth + 1)]
    return {"string": "text", "integer": 1, "number": 0.5, "boolean": True}.get(str(kind))


def _body(document: dict[str, Any], operation: dict[str, Any]) -> dict[str, Any] | None:
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return None
    schema = _resolve(document, content.get("schema", {}))
    required = set(schema.get("required", []))
    fields = [
        {
            "name": name,
            "required": name in required,
            "type": _type(_resolve(document, prop)),
            "description": prop.get("description", ""),
        }
        for name, prop in schema.get("properties", {}).items()
    ]
    example = _example(document, schema) if fields else None
    return {
        "description": schema.get("description") or operation["requestBody"].get("description"),
        "fields": fields,
        "example": dumps(example).decode() if example else "",
    }


def _responses(document: dict[str, Any], operation: dict[str, Any]) -> list[dict[str, Any]]:
    responses = []
    for code, response in sorted(operation.get("responses", {}).items(), key=lambda i: str(i[0])):
        status = str(code)
        schema = _resolve(
            document,
            response.get("content", {}).get("application/json", {}).get("schema", {}),
        )
        data = _resolve(document, schema.get("properties", {}).get("data", {}))
        if data.get("type") == "array":
            data = _resolve(document, data.get("items", {}))
        if "anyOf" in data:  # a list of detections of either kind of row
            options = [_resolve(document, option) for option in data["anyOf"]]
            data = {
                "properties": {k: v for o in options for k, v in o.get("properties", {}).items()}
            }
        fields = list(data.get("properties", {})) if status.startswith("2") else []
        shared = _detection_fields(document)
        detection = bool(fields) and set(shared) <= set(fields)
        responses.append(
            {
                "status": status,
                "description": schema.get("description") or response.get("description", ""),
                "detection": detection,
                "fields": [f for f in fields if f not in shared] if detection else fields,
            }
        )
    return responses


def _detection_fields(document: dict[str, Any]) -> list[str]:
    schema = document.get("components", {}).get("schemas", {}).get(DETECTION_SCHEMA, {})
    return list(schema.get("properties", {}))


def _detection(document: dict[str, Any]) -> dict[str, Any]:
    """The shared detection shape, shown once on the page: its fields and its example."""
    schema = document["components"]["schemas"][DETECTION_SCHEMA]
    required = set(schema.get("required", []))
    fields = [
        {
            "name": name,
            "required": name in required,
            "type": _type(_resolve(document, prop)),
            "description": prop.get("description", ""),
        }
        for name, prop in schema.get("properties", {}).items()
    ]
    example = dumps(schema["examples"][0]).decode()
    return {"description": schema["description"], "fields": fields, "example": example}


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
            groups.setdefault((operation.get("tags") or ["other"])[0], []).append(
                {
                    "method": method,
                    "path": path,
                    "anchor": f"{method}{path}".replace("/", "-").replace("{", "").replace("}", ""),
                    "summary": operation.get("summary", ""),
                    "description": operation.get("description", ""),
                    "body": _body(document, operation),
                    "responses": _responses(document, operation),
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
    return await render_template(
        "docs.html",
        title=document["info"]["title"],
        version=document["info"]["version"],
        openapi_url="/openapi.json",
        csrf_header=CSRF_HEADER,
        groups=_operations(document),
        detection=_detection(document),
    )


@blueprint.app_template_filter("prose")
def _prose_filter(text: object) -> Markup:
    return prose(text)
