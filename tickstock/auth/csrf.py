"""Cross-site request checks: the one same-origin rule, and the CSRF token of a cookie session.

A cookie-authenticated state-changing request must carry either the session's CSRF token or an
``Origin``/``Referer`` of this site; sockets connecting with a cookie face the same origin rule.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Final
from urllib.parse import urlsplit

from quart import current_app, request

from tickstock.errors import APIError

__all__ = [
    "CSRF_HEADER",
    "check_origin",
    "csrf_ok",
    "csrf_token",
    "login_form_token",
    "login_form_token_ok",
    "request_source",
    "same_origin",
]

CSRF_HEADER = "X-CSRF-Token"


_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL, default ports filled in; None otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or parts.username is not None:
        return None
    return scheme, parts.hostname, port or _DEFAULT_PORTS[scheme]


def same_origin(source: str, scheme: str, host: str, trusted: Sequence[str]) -> bool:
    """True when ``source`` (an Origin or Referer) has the scheme, host and port of this
    request (``scheme`` and ``Host``) or of a trusted origin; nothing less counts."""
    origin = _origin(source)
    if origin is None:
        return False
    if origin == _origin(f"{scheme}://{host}"):
        return True
    return any(origin == _origin(other) for other in trusted)


def request_source() -> str | None:
    """The request's ``Origin``, else its ``Referer``; None when it sent neither (or "null")."""
    source = request.headers.get("Origin") or request.headers.get("Referer")
    return source if source and source != "null" else None


def check_origin() -> None:
    """A state-changing browser request must come from this site (Origin, Referer or token)."""
    trusted = current_app.config["SETTINGS"].cors_origins
    source = request_source()
    if source and same_origin(source, request.scheme, request.host, trusted):
        return
    raise APIError(403, "csrf_failed", "cross-site request refused (Origin/Referer check)")


def csrf_token(session_id: str) -> str:
    """The CSRF token of a cookie session (an alternative to the Origin check)."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"csrf:{session_id}".encode(), hashlib.sha256).hexdigest()[:40]


def login_form_token(nonce: str) -> str:
    """The token the login form carries for the random ``nonce`` in the browser's login cookie.

    A login form posted without Origin and Referer must carry it: another site can make a
    browser post the form, but can neither read the token nor set the cookie.
    """
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"login-csrf:{nonce}".encode(), hashlib.sha256).hexdigest()[:40]


def login_form_token_ok(nonce: str | None, supplied: str | None) -> bool:
    if not nonce or not supplied:
        return False
    return hmac.compare_digest(supplied, login_form_token(nonce))


def csrf_ok(session_id: str) -> bool:
    """The request carries the session's CSRF token or comes from this site."""
    supplied = request.headers.get(CSRF_HEADER)
    if supplied and hmac.compare_digest(supplied, csrf_token(session_id)):
        return True
    try:
        check_origin()
    except APIError:
        return False
    return True
