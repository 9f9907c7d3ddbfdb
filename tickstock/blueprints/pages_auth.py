"""The login page: a small server-rendered form, and the page logout."""

from __future__ import annotations

import secrets

from quart import Blueprint, Response, redirect, render_template, request
from quart.typing import ResponseReturnValue

from tickstock.auth import (
    check_origin,
    load_identity,
    login,
    login_form_token,
    login_form_token_ok,
    logout,
    request_source,
    safe_next,
)
from tickstock.config import get_settings
from tickstock.errors import APIError

blueprint = Blueprint("pages_auth", __name__)


_FORM_EXPIRED = "This sign-in form came from another site or has expired: please sign in again."


def _nonce_cookie() -> str:
    return f"{get_settings().cookie_name}_login"


async def _form_page(
    next_path: str, *, error: str = "", username: str = "", status: int = 200, **headers: str
) -> Response:
    """The form, with a fresh login-CSRF token whose nonce goes in a cookie beside it."""
    nonce = secrets.token_urlsafe(18)
    body = await render_template(
        "login.html",
        next_path=next_path,
        error=error,
        username=username,
        csrf_token=login_form_token(nonce),
    )
    response = Response(body, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    for key, value in headers.items():
        response.headers[key] = value
    response.set_cookie(
        _nonce_cookie(),
        nonce,
        path="/login",
        httponly=True,
        secure=get_settings().secure_cookies,
        samesite="Lax",
    )
    return response


def _from_this_site(form_token: str | None) -> bool:
    """Login CSRF: an Origin or Referer of exactly this site, or (sent neither) the form's token."""
    if request_source() is not None:
        try:
            check_origin()
        except APIError:
            return False
        return True
    return login_form_token_ok(request.cookies.get(_nonce_cookie()), form_token)


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
    return await _form_page(next_path)


@blueprint.post("/login")
async def login_submit() -> ResponseReturnValue:
    """Form login: on success a redirect to ``next`` (a path on this site), else the form again."""
    form = await request.form
    next_path = safe_next(form.get("next"))
    username = form.get("username", "")
    if not _from_this_site(form.get("csrf_token")):
        return await _form_page(next_path, error=_FORM_EXPIRED, username=username, status=403)
    try:
        await login(username, form.get("password", ""), remember=bool(form.get("remember")))
    except APIError as exc:
        if exc.status >= 500:
            raise
        return await _form_page(
            next_path,
            error=exc.message,
            username=username[:150],
            status=exc.status,
            **exc.headers,
        )
    response = redirect(next_path, 303)
    response.delete_cookie(_nonce_cookie(), path="/login")
    return response


@blueprint.post("/logout")
async def logout_submit() -> ResponseReturnValue:
    """End the browser session and return to the login page."""
    await logout()
    return redirect("/login", 303)
