"""Conditional reads: weak ETags, ``If-None-Match`` answered 304, and ``Cache-Control``.

An ETag is a digest of what a page is made of (row identities and versions, or the body), the
served format's version and the request's path and query. A client presenting it again in
``If-None-Match`` gets 304 with no body: when the ETag comes from the rows, the page is never
encoded at all. Pages are per-user data behind a login, hence ``private`` everywhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Final

from quart import Response, request

from tickstock.version import __version__

__all__ = [
    "HISTORY",
    "REVALIDATE",
    "body_etag",
    "conditional",
    "etag_of",
]

REVALIDATE: Final = "private, no-cache"
"""Data that changes as the producer writes: cache, but ask (cheaply, by ETag) every time."""
HISTORY: Final = "private, max-age=60"
"""Older, append-only history (a page behind a cursor, bars before today): a minute as it is."""


def _digest(parts: Iterable[str | bytes]) -> str:
    digest = hashlib.blake2b(digest_size=12)
    digest.update(__version__.encode())
    digest.update(request.full_path.encode())
    for part in parts:
        digest.update(part if isinstance(part, bytes) else part.encode())
    return f'W/"{digest.hexdigest()}"'


def etag_of(versions: Iterable[str]) -> str:
    """The ETag of a page whose content is fixed by ``versions`` (row identities and versions)."""
    return _digest(("".join(versions),))


async def body_etag(response: Response, cache_control: str = REVALIDATE) -> Response:
    """ETag ``response`` by its encoded body; 304 (no body) when the client already has it."""
    if response.status_code != 200:
        return response
    body = await response.get_data()
    assert isinstance(body, bytes)
    return conditional(_digest((body,)), lambda: response, cache_control)


def _matches(etag: str) -> bool:
    header = request.headers.get("If-None-Match")
    if not header:
        return False
    if header.strip() == "*":
        return True
    # Weak comparison (RFC 9110 §13.1.2): the opaque tags are compared, W/ ignored.
    tag = etag.removeprefix("W/")
    return any(candidate.strip().removeprefix("W/") == tag for candidate in header.split(","))


def conditional(etag: str, build: Callable[[], Response], cache_control: str) -> Response:
    """304 when ``If-None-Match`` names ``etag``; otherwise ``build()``, with its validators."""
    if _matches(etag):
        response = Response(b"", status=304)
    else:
        response = build()
        if response.status_code != 200:
            return response
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = cache_control
    return response
