"""The login page: a small server-rendered form, and the page logout."""

from __future__ import annotations

from quart import Blueprint, Response, redirect, render_template, request
from quart.typing import ResponseReturnValue

from tickstock.auth import check_origin, load_identity, login, logout, safe_next
from tickstock.errors import APIError

blueprint = Blueprint("pages_auth", __name__)


async def _form_page(next_path: str, *, error: str = "", username: str = "") -> str:
    return await render_template("login.html", next_path=next_path, error=error, username=username)


def _page(body: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = Response(body, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    # Framing (clickjacking) and the CSP: tickstock.headers, as for every page.
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


@blueprint.get("/login")
async def login_page() -> ResponseReturnValue:
    """The login form; already logged-in browsers go straight on to ``next``."""
    next_path = safe_next(request.args.get("next"))
    try:
        identity = await load_identity()
    except APIError:
        identity = None
    if identity is not None:
        return redirect(next_path, 303)
    return _page(await _form_page(next_path))


@blueprint.post("/login")
async def login_submit() -> ResponseReturnValue:
    """Form login: on success a redirect to ``next`` (a path on this site), else the form again."""
    form = await request.form
    next_path = safe_next(form.get("next"))
    username = form.get("username", "")
    try:
        if request.headers.get("Origin"):
            check_origin()
        await login(username, form.get("password", ""), remember=bool(form.get("remember")))
    except APIError as exc:
        if exc.status >= 500:
            raise
        return _page(
            await _form_page(next_path, error=exc.message, username=username[:150]),
            exc.status,
            exc.headers,
        )
    return redirect(next_path, 303)


@blueprint.post("/logout")
async def logout_submit() -> ResponseReturnValue:
    """End the browser session and return to the login page."""
    await logout()
    return redirect("/login", 303)
