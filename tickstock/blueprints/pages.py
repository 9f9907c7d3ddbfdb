"""The dashboard pages (server-rendered shells; the data comes from the public API) and the
front-end libraries they import, served from ``node_modules`` by an allow-list.

Every page needs a login (browsers are sent to /login); /admin also needs the admin role and
answers other users with a 403 page that carries no data. Pages are ``no-store`` (they embed
the CSRF token) and send a Content-Security-Policy whose only inline script is the import map,
allowed by a per-response nonce.
"""

from __future__ import annotations

import functools
import secrets
from pathlib import Path
from typing import Any

from quart import (
    Blueprint,
    Response,
    render_template,
    request,
)
from quart.typing import ResponseReturnValue

from tickstock.auth import (
    CSRF_HEADER,
    admin_required,
    csrf_token,
    current_identity,
    login_required,
)
from tickstock.errors import APIError, error_response
from tickstock.extensions.database import get_db
from tickstock.queries.bars import select_bar_range
from tickstock.queries.symbols import symbol_exists
from tickstock.queries.user_settings import select_user_settings
from tickstock.validation import normalise_symbol
from tickstock.vocab import DEMO_SYMBOLS, TIERS
from tickstock.web.assets import VENDOR, load_vendor, missing_vendor, vendor_version

blueprint = Blueprint("pages", __name__)

# Versioned vendor URLs (?v=<package version>) never change content: cache them for a year.
VERSIONED_MAX_AGE = 365 * 24 * 3600
UNVERSIONED_MAX_AGE = 3600

THEMES = ("dark", "light")

_CSP = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self';"
    " img-src 'self' data: blob:; font-src 'self'; connect-src 'self';"
    " object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


def _vendor_url(name: str) -> str:
    version = vendor_version(name)
    return f"/static/vendor/{name}" + (f"?v={version}" if version else "")


# Settings the pages apply from the first paint (the feed's initial filters and row limit).
BOOT_SETTINGS = ("default_tier", "min_confidence", "feed_limit")


async def _settings(user_id: int) -> dict[str, Any]:
    async with get_db().connection() as conn:
        return dict((await select_user_settings(conn, user_id)).settings)


async def _page(
    template: str, page: str, *, status: int = 200, title: str = "", **context: Any
) -> Response:
    if template != "error.html" and missing_vendor():
        return await _page(
            "error.html",
            "error",
            status=503,
            title="Not installed",
            heading="The dashboard's libraries are not installed on this server",
            message="An operator runs `npm ci --prefix tickstock/web` once per release"
            " (docs/DEPLOYMENT.md, section 3). The API and live events work meanwhile.",
            link=(request.path, "Try again"),
        )
    identity = current_identity()
    user = identity.user
    nonce = secrets.token_urlsafe(16)
    settings = await _settings(user.id)
    # The saved theme is rendered into <html>, so the page never flashes the other one.
    theme = settings.get("theme")
    boot = {
        "page": page,
        "user": {"id": user.id, "username": user.username, "role": user.role},
        "csrf": {"header": CSRF_HEADER, "token": csrf_token(identity.session_id)},
        # Named by the empty states ("add AAPL, MSFT …"): the symbols the demo producer publishes.
        "suggested_symbols": list(DEMO_SYMBOLS),
        "settings": {key: settings[key] for key in BOOT_SETTINGS if key in settings},
        **context.get("boot", {}),
    }
    body = await render_template(
        template,
        page=page,
        title=title,
        user=user,
        boot=boot,
        csp_nonce=nonce,
        saved_theme=theme if theme in THEMES else None,
        import_map={"imports": {name.removesuffix(".js"): _vendor_url(name) for name in VENDOR}},
        **{key: value for key, value in context.items() if key != "boot"},
    )
    response = Response(body, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = _CSP.format(nonce=nonce)
    return response


@blueprint.get("/")
@login_required
async def dashboard() -> ResponseReturnValue:
    """The live dashboard: watchlist, live feed and the selected symbol."""
    return await _page("dashboard.html", "dashboard", title="Live")


@blueprint.get("/history")
@login_required
async def history() -> ResponseReturnValue:
    """Pattern history with filters and cursor pagination."""
    return await _page("history.html", "history", title="History")


@blueprint.get("/screener")
@login_required
async def screener() -> ResponseReturnValue:
    """The screener: latest detections filtered by market figures, sortable, exportable."""
    return await _page("screener.html", "screener", title="Screener")


@blueprint.get("/market")
@login_required
async def market() -> ResponseReturnValue:
    """Market breadth over time, sectors as a heat-map, movers."""
    return await _page("market.html", "market", title="Market")


@blueprint.get("/analytics")
@login_required
async def analytics() -> ResponseReturnValue:
    """How each pattern did afterwards: hit rates with intervals, returns."""
    return await _page("analytics.html", "analytics", title="Analytics")


@blueprint.get("/backtest")
@login_required
async def backtest() -> ResponseReturnValue:
    """Backtests: the form, your jobs with live progress, and a finished job's result."""
    async with get_db().read() as conn:
        first, last = await select_bar_range(conn)
    bars = {
        "first": first.isoformat() if first else None,
        "last": last.isoformat() if last else None,
    }
    return await _page(
        "backtest.html", "backtest", title="Backtest", bars=bars, boot={"bars": bars}
    )


@blueprint.get("/alerts")
@login_required
async def alerts() -> ResponseReturnValue:
    """Your alerts: the inbox (mark read, filter) and the rules that raise them."""
    return await _page("alerts.html", "alerts", title="Alerts", tiers=TIERS)


@blueprint.get("/symbols")
@login_required
async def symbols() -> ResponseReturnValue:
    """Symbol search and browsing."""
    return await _page("symbols.html", "symbols", title="Symbols")


@blueprint.get("/symbols/<symbol>")
@login_required
async def symbol_view(symbol: str) -> ResponseReturnValue:
    """One symbol: daily candles with pattern markers, indicators and detections."""
    parsed = normalise_symbol(symbol)
    if parsed is not None:
        async with get_db().read() as conn:
            known = await symbol_exists(conn, parsed)
    if parsed is None or not known:
        shown = parsed or symbol[:20]
        return await _page(
            "error.html",
            "error",
            status=404,
            title="Unknown symbol",
            heading=f"Unknown symbol {shown}",
            message="There is no such symbol. Search the symbol list for the one you meant.",
            link=("/symbols", "Search symbols"),
        )
    return await _page(
        "symbol.html", "symbol", title=parsed, symbol=parsed, boot={"symbol": parsed}
    )


@blueprint.get("/account")
@login_required
async def account() -> ResponseReturnValue:
    """Your account: change password, sessions and API tokens."""
    return await _page("account.html", "account", title="Account")


@blueprint.get("/admin")
@admin_required
async def admin() -> ResponseReturnValue:
    """Administration: users, live connections, ingest errors (admin role only)."""
    return await _page("admin.html", "admin", title="Admin")


def _signed_in() -> bool:
    try:
        current_identity()
    except APIError:
        return False
    return True


@blueprint.errorhandler(APIError)
async def forbidden_page(error: APIError) -> ResponseReturnValue:
    """A signed-in user refused a page gets the 403 page (with the header), never JSON."""
    if error.status == 403 and _signed_in():
        return await _page(
            "error.html",
            "error",
            status=403,
            title="Forbidden",
            heading="Administrators only",
            message="This page needs the admin role. Ask an administrator if you need access.",
            link=("/", "Back to the live dashboard"),
        )
    return error_response(error.status, error.code, error.message, error.headers, error.extra)


@blueprint.get("/favicon.ico")
async def favicon() -> ResponseReturnValue:
    """The icon browsers ask for on pages without an icon link (the SVG; public like static)."""
    # A few hundred bytes, read once: no file handle per request.
    response = Response(_favicon(), mimetype="image/svg+xml")
    response.headers["Cache-Control"] = f"public, max-age={UNVERSIONED_MAX_AGE}"
    return response


@functools.cache
def _favicon() -> bytes:
    return (Path(__file__).resolve().parent.parent / "web" / "static" / "favicon.svg").read_bytes()


@blueprint.get("/static/vendor/<name>")
async def vendor(name: str) -> ResponseReturnValue:
    """A front-end library from node_modules (allow-listed names only; public like all static)."""
    asset = load_vendor(name)
    if asset is None:
        if name in VENDOR:
            missing_vendor()  # the log line that tells the operator what to do
            return Response(
                "/* front-end packages are not installed: run `npm ci` in tickstock/web */",
                status=503,
                mimetype="text/javascript",
                headers={"Retry-After": "10", "Cache-Control": "no-store"},
            )
        return Response("not found", status=404, mimetype="text/plain")
    versioned = request.args.get("v") == vendor_version(name)
    headers = {
        "ETag": f'"{asset.etag}"',
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": (
            f"public, max-age={VERSIONED_MAX_AGE}, immutable"
            if versioned
            else f"public, max-age={UNVERSIONED_MAX_AGE}"
        ),
    }
    if request.if_none_match.contains(asset.etag):
        return Response(b"", status=304, headers=headers)
    body = asset.body
    if request.accept_encodings.best_match(["gzip"]) == "gzip":
        body = asset.gzipped
        headers["Content-Encoding"] = "gzip"
    return Response(body, mimetype="text/javascript", headers=headers)
