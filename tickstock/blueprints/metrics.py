"""``GET /metrics``: Prometheus exposition for an admin session or the metrics token."""

from __future__ import annotations

import hmac
from functools import wraps
from typing import Any

from quart import Blueprint, Response, current_app, request

from tickstock.auth import bearer_token, load_identity, mark_access
from tickstock.config import Settings
from tickstock.errors import APIError
from tickstock.metrics import render

blueprint = Blueprint("metrics", __name__)


def _token_matches() -> bool:
    settings: Settings = current_app.config["SETTINGS"]
    token = bearer_token(request.headers.get("Authorization"))
    return bool(
        settings.metrics_token
        and token is not None
        and hmac.compare_digest(token.encode(), settings.metrics_token.encode())
    )


def metrics_access(func: Any) -> Any:
    """The metrics token, else an admin session; scrapers always get JSON 401/403, never a page."""

    @wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not _token_matches():
            identity = await load_identity()
            if identity is None:
                raise APIError(
                    401, "unauthorized", "metrics need an admin login or the metrics token"
                )
            if not identity.user.is_admin:
                raise APIError(403, "forbidden", "administrator role required")
        return await func(*args, **kwargs)

    return mark_access(wrapper, "admin")


@blueprint.get("/metrics")
@metrics_access
async def metrics() -> Response:
    """Prometheus metrics (text exposition format)."""
    body, content_type = render()
    return Response(body, content_type=content_type)
