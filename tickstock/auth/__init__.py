"""Accounts, sessions and access control.

- :mod:`~tickstock.auth.sessions`: the extension (:func:`init_auth`, :func:`get_auth`), live-session
  checks cached for a second, and the identity of the current request;
- :mod:`~tickstock.auth.decorators`: ``login_required``, ``admin_required``, ``current_user``;
- :mod:`~tickstock.auth.accounts`: login, logout, API tokens, account changes (the last-admin
  rule) and ending a user's sessions everywhere;
- :mod:`~tickstock.auth.passwords`, :mod:`~tickstock.auth.csrf`, :mod:`~tickstock.auth.ratelimit`;
- the SQL is in :mod:`tickstock.queries.users`.

Nothing here imports the realtime server: it registers for :meth:`Auth.on_sessions_ended`.
"""

from __future__ import annotations

from tickstock.auth.accounts import (
    AccountChange,
    LastAdminError,
    after_user_sessions_ended,
    change_account,
    ensure_user,
    issue_token,
    login,
    logout,
    revoke_token,
    update_account,
)
from tickstock.auth.csrf import (
    CSRF_HEADER,
    check_origin,
    csrf_token,
    login_form_token,
    login_form_token_ok,
    request_source,
    same_origin,
)
from tickstock.auth.decorators import (
    admin_or_metrics_token,
    admin_required,
    current_identity,
    current_user,
    login_required,
    mark_access,
    required_access,
    safe_next,
)
from tickstock.auth.models import Identity, Role, User
from tickstock.auth.passwords import check_password, check_username, hash_password
from tickstock.auth.sessions import (
    bearer_token,
    create_session,
    get_auth,
    init_auth,
    load_identity,
)

__all__ = [
    "CSRF_HEADER",
    "AccountChange",
    "Identity",
    "LastAdminError",
    "Role",
    "User",
    "admin_or_metrics_token",
    "admin_required",
    "after_user_sessions_ended",
    "bearer_token",
    "change_account",
    "check_origin",
    "check_password",
    "check_username",
    "create_session",
    "csrf_token",
    "current_identity",
    "current_user",
    "ensure_user",
    "get_auth",
    "hash_password",
    "init_auth",
    "issue_token",
    "load_identity",
    "login",
    "login_form_token",
    "login_form_token_ok",
    "login_required",
    "logout",
    "mark_access",
    "request_source",
    "required_access",
    "revoke_token",
    "safe_next",
    "same_origin",
    "update_account",
]
