"""The one security-headers layer: every response of the served app passes through it.

- ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: same-origin`` on everything (JSON,
  static files, Socket.IO long-polling, refusals);
- HTML pages are never framed (``X-Frame-Options`` and CSP ``frame-ancestors``) and get a strict
  default Content-Security-Policy unless the page sets its own (the dashboard's carries a nonce).
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["DEFAULT_CSP", "SecurityHeaders"]

# No inline script anywhere; the API docs page keeps its inline stylesheet.
DEFAULT_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline';"
    " img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self';"
    " frame-ancestors 'none'"
)
_ALWAYS: Final = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"))
_HTML: Final = ((b"x-frame-options", b"DENY"), (b"content-security-policy", DEFAULT_CSP.encode()))


class SecurityHeaders:
    """ASGI middleware adding the headers above where the response has not set them."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                content_type = next(
                    (value for name, value in headers if name.lower() == b"content-type"), b""
                )
                wanted = _ALWAYS + (_HTML if content_type.startswith(b"text/html") else ())
                headers += [(name, value) for name, value in wanted if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
