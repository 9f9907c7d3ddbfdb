"""Access control for views: ``login_required``, ``admin_required`` and who the caller is.

Place the decorators below the route decorator and read the caller with :func:`current_user`.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlencode, urlsplit

from quart import current_app, redirect, request
from werkzeug.exceptions import HTTPException

from tickstock.auth.models import Identity, User
from tickstock.auth.sessions import bearer_token, current_identity, load_identity
from tickstock.errors import APIError

__all__ = [
    "ACCESS_ATTRIBUTE",
    "LoginRedirect",
    "admin_or_metrics_token",
    "admin_required",
    "current_identity",
    "current_user",
    "login_required",
    "mark_access",
    "required_access",
    "safe_next",
]

ACCESS_ATTRIBUTE = "tickstock_access"

P = ParamSpec("P")
T = TypeVar("T")


class LoginRedirect(HTTPException):
    """Sends a browser to the login page (answered by the 3xx branch of the error handler)."""

    code = 302

    def __init__(self, location: str) -> None:
        super().__init__(description="login required")
        self.location = location

    def get_response(self, *args: Any, **kwargs: Any) -> Any:
        return redirect(self.location, 302)


def current_user() -> User:
    """The authenticated user of this request (use below ``login_required``)."""
    return current_identity().user


def wants_json() -> bool:
    """API callers get JSON errors; browsers asking for pages get redirected."""
    if request.path.startswith("/api/") or "Authorization" in request.headers:
        return True
    accept = request.accept_mimetypes
    return accept.best_match(["text/html", "application/json"]) == "application/json"


def login_url(next_path: str | None = None) -> str:
    if next_path is None:
        query = request.query_string.decode(errors="replace")
        next_path = request.path + (f"?{query}" if query else "")
    return "/login?" + urlencode({"next": safe_next(next_path)})


def safe_next(value: str | None, default: str = "/") -> str:
    """``value`` when it is a path on this site, else ``default`` (no open redirects)."""
    if not value or len(value) > 2048 or not value.startswith("/") or value.startswith("//"):
        return default
    if "\\" in value or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


async def _require_identity() -> Identity:
    identity = await load_identity()
    if identity is None:
        if wants_json():
            raise APIError(401, "unauthorized", "login required")
        raise LoginRedirect(login_url())
    return identity


def mark_access(view: Callable[P, Awaitable[T]], access: str) -> Callable[P, Awaitable[T]]:
    """Record the access a view requires (``"login"`` or ``"admin"``) for :func:`required_access`."""
    setattr(view, ACCESS_ATTRIBUTE, access)
    return view


def login_required(func: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Only for logged-in callers: 401 JSON for API requests, a redirect to /login for pages.

    Place it below the route decorator::

        @blueprint.get("/api/things")
        @login_required
        async def things() -> ...
    """

    @wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        await _require_identity()
        return await func(*args, **kwargs)

    return mark_access(wrapper, "login")


def admin_required(func: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Only for administrators: like ``login_required``, then 403 for other users."""

    @wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        identity = await _require_identity()
        if not identity.user.is_admin:
            raise APIError(403, "forbidden", "administrator role required")
        return await func(*args, **kwargs)

    return mark_access(wrapper, "admin")


def _metrics_token_matches() -> bool:
    settings = current_app.config["SETTINGS"]
    token = bearer_token(request.headers.get("Authorization"))
    return bool(
        settings.metrics_token
        and token is not None
        and hmac.compare_digest(token.encode(), settings.metrics_token.encode())
    )


def admin_or_metrics_token(func: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """For operators: the metrics token (``TICKSTOCK_METRICS_TOKEN``) or an admin session;
    scrapers always get JSON 401/403, never a login page."""

    @wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        if not _metrics_token_matches():
            identity = await load_identity()
            if identity is None:
                raise APIError(
                    401, "unauthorized", "an admin login or the metrics token is required"
                )
            if not identity.user.is_admin:
                raise APIError(403, "forbidden", "administrator role required")
        return await func(*args, **kwargs)

    return mark_access(wrapper, "admin")


def required_access(view: Callable[..., Any]) -> str | None:
    """``"login"`` or ``"admin"`` for views behind those decorators (docs and policy tests).

    The mark survives further ``functools.wraps`` decorators, which copy ``__dict__``.
    """
    access: str | None = getattr(view, ACCESS_ATTRIBUTE, None)
    return access
