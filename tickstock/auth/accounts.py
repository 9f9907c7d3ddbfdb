"""The accounts service: login and logout, API tokens, account changes and what follows them.

Every path that ends sessions revokes them in the database first and then calls
:meth:`Auth.sessions_ended <tickstock.auth.sessions.Auth.sessions_ended>` (cache dropped,
sockets disconnected by whoever registered for it). The "last active administrator" rule lives
in :func:`change_account`, which takes a plain connection so the CLI applies it too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass

import asyncpg
from quart import request
from quart_auth import Action, login_user, logout_user

from tickstock.auth.models import Identity, Role, User
from tickstock.auth.passwords import hash_password, needs_rehash, verify_password
from tickstock.auth.ratelimit import address_key
from tickstock.auth.sessions import (
    SessionAuthUser,
    client_address,
    create_session,
    get_auth,
    load_identity,
    set_identity,
)
from tickstock.errors import APIError
from tickstock.queries.users import (
    MAX_TOKENS_PER_USER,
    insert_user,
    select_active_admin_ids,
    select_credentials_by_name,
    select_password_hash,
    select_password_hash_by_name,
    select_sessions,
    select_token_owner,
    select_tokens,
    select_user,
    select_user_for_update,
    update_login_failure,
    update_login_success,
    update_other_sessions_revoked,
    update_session_revoked,
    update_user,
    update_user_sessions_revoked,
)

__all__ = [
    "INVALID_CREDENTIALS",
    "AccountChange",
    "LastAdminError",
    "after_user_sessions_ended",
    "authenticate_password",
    "change_account",
    "change_own_password",
    "ensure_user",
    "issue_token",
    "login",
    "logout",
    "public_session_id",
    "revoke_session",
    "revoke_token",
    "update_account",
]

log = logging.getLogger(__name__)

INVALID_CREDENTIALS = (
    "invalid username or password (repeated failures lock the account for a while"
    " from this address)"
)


class LastAdminError(APIError):
    """The change would leave no active administrator (409 ``last_admin``)."""

    def __init__(self) -> None:
        super().__init__(
            409, "last_admin", "the last active administrator cannot be demoted or deactivated"
        )


@dataclass(frozen=True, slots=True)
class AccountChange:
    """An account after :func:`change_account`, and how many of its sessions were revoked."""

    user: User
    sessions_ended: bool
    revoked: int


# --------------------------------------------------------------------------- login and logout


async def authenticate_password(username: str, password: str) -> User:
    """The user for these credentials, or 401 with one message for every failure.

    Unknown user, wrong password, locked or inactive account all answer alike, after the same
    argon2 work, so responses do not reveal whether an account exists.
    """
    auth = get_auth()
    settings = auth.settings
    await auth.check_login_rate(client_address())
    failed = APIError(401, "invalid_credentials", INVALID_CREDENTIALS)
    if not username or len(username) > 150 or not password or len(password) > 1024:
        await verify_password(None, password[:1024])
        raise failed
    address = address_key(client_address())  # an IPv6 client is locked out by its /64
    async with auth.db.connection() as conn:
        found = await select_credentials_by_name(
            conn, username, address, settings.login_lockout_seconds
        )
    if found is not None and not found.locked:
        assert auth.account_brake is not None
        if not await auth.account_brake.take_turn(found.user.id, found.account_failures):
            await verify_password(None, password)  # the same work as any other refusal
            raise failed
    ok = await verify_password(found.password_hash if found else None, password)
    if found is None or found.locked or not found.user.active:
        raise failed
    if not ok:
        # Counted per (account, address): a guesser locks out their own address, not the owner.
        async with auth.db.connection() as conn:
            locked = await update_login_failure(
                conn,
                found.user.id,
                address,
                settings.login_max_failures,
                settings.login_lockout_seconds,
            )
        if locked:
            log.warning(
                "account %r locked for %s after repeated login failures",
                found.user.username,
                address,
            )
        raise failed
    if needs_rehash(found.password_hash):
        new_hash = await hash_password(password)
        async with auth.db.connection() as conn:
            await update_user(conn, found.user.id, password_hash=new_hash)
    return found.user


async def login(username: str, password: str, *, remember: bool = True) -> Identity:
    """Check credentials, record a cookie session and set the cookie on this response."""
    user = await authenticate_password(username, password)
    auth = get_auth()
    assert auth.quart_auth is not None
    previous = auth.quart_auth.load_user().auth_id
    lifetime = dt.timedelta(seconds=auth.settings.session_lifetime_seconds)
    async with auth.db.write() as conn:
        await update_login_success(conn, user.id, address_key(client_address()))
        if previous:
            # The cookie being replaced names a session nobody can use any more.
            await update_session_revoked(conn, previous, kind="cookie")
        session_id, _, expires_at = await create_session(
            conn,
            user.id,
            "cookie",
            lifetime=lifetime,
            address=client_address(),
            user_agent=request.headers.get("User-Agent"),
        )
    if previous:
        auth.forget(session_id=previous)
    login_user(SessionAuthUser(session_id, Action.WRITE), remember=remember)
    identity = Identity(user, session_id, "cookie", expires_at)
    set_identity(identity)
    log.info("user %r logged in (session %s…)", user.username, session_id[:6])
    return identity


async def logout() -> None:
    """End the request's session: revoke it, drop the cookie, disconnect its sockets."""
    identity = await load_identity()
    if identity is not None:
        auth = get_auth()
        async with auth.db.connection() as conn:
            await update_session_revoked(conn, identity.session_id)
        await auth.sessions_ended(identity.user.id, identity.session_id)
    if identity is None or identity.kind == "cookie":
        logout_user()
    set_identity(None)


async def after_user_sessions_ended(user_id: int) -> None:
    """Forget cached checks and disconnect the user's sockets on every node."""
    await get_auth().sessions_ended(user_id, None)


# --------------------------------------------------------------------------- API tokens


async def issue_token(
    user: User, name: str, lifetime: dt.timedelta | None
) -> tuple[str, str, dt.datetime | None]:
    """A new API token of ``user``: (id, token, expires_at); 409 over the per-user cap."""
    async with get_auth().db.write() as conn:
        # Serialise this user's token creation so the cap below cannot be raced past.
        await select_user_for_update(conn, user.id)
        if len(await select_tokens(conn, user.id)) >= MAX_TOKENS_PER_USER:
            raise APIError(
                409,
                "too_many_tokens",
                f"at most {MAX_TOKENS_PER_USER} live tokens per user; delete one first",
            )
        token_id, token, expires_at = await create_session(
            conn,
            user.id,
            "token",
            lifetime=lifetime,
            name=name,
            address=client_address(),
            user_agent=request.headers.get("User-Agent"),
        )
    assert token is not None
    return token_id, token, expires_at


async def revoke_token(user: User, token_id: str) -> bool:
    """Revoke one of ``user``'s API tokens; False when it is not theirs (or does not exist)."""
    auth = get_auth()
    async with auth.db.connection() as conn:
        if await select_token_owner(conn, token_id) != user.id:
            return False
        await update_session_revoked(conn, token_id, user_id=user.id, kind="token")
    await auth.sessions_ended(user.id, token_id)
    return True


# --------------------------------------------------------------------------- one's own account


def public_session_id(session_id: str) -> str:
    """The name a session is listed and revoked by: its id is the cookie's secret, never shown."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:24]


async def change_own_password(identity: Identity, current: str, new: str) -> int:
    """Change the caller's password after checking the current one; end every other session.

    The request's own session (cookie or token) stays signed in; every other session and token
    is revoked and its sockets disconnected. Wrong current password: 403 ``wrong_password``
    (attempts count against the login rate limit). Returns how many sessions were revoked.
    """
    auth = get_auth()
    await auth.check_login_rate(client_address())
    async with auth.db.connection() as conn:
        found = await select_password_hash(conn, identity.user.id)
    if not await verify_password(found, current[:1024]):
        raise APIError(403, "wrong_password", "the current password is not right")
    new_hash = await hash_password(new)
    async with auth.db.write() as conn, conn.transaction():
        await update_user(conn, identity.user.id, password_hash=new_hash)
        revoked = await update_other_sessions_revoked(conn, identity.user.id, identity.session_id)
    for session_id in revoked:
        await auth.sessions_ended(identity.user.id, session_id)
    log.info(
        "user %r changed their password; %d other session(s) ended",
        identity.user.username,
        len(revoked),
    )
    return len(revoked)


async def revoke_session(user: User, public_id: str) -> bool:
    """Sign out one of ``user``'s browser sessions (by :func:`public_session_id`) and drop its
    sockets, as logging out there would; False when no live session of theirs has that id."""
    auth = get_auth()
    async with auth.db.connection() as conn:
        sessions = await select_sessions(conn, user.id)
        match = [s.id for s in sessions if public_session_id(s.id) == public_id]
        if not match or not await update_session_revoked(
            conn, match[0], user_id=user.id, kind="cookie"
        ):
            return False
    await auth.sessions_ended(user.id, match[0])
    return True


# --------------------------------------------------------------------------- account changes


async def change_account(
    conn: asyncpg.Connection,
    user_id: int,
    *,
    role: Role | None = None,
    active: bool | None = None,
    password_hash: str | None = None,
) -> AccountChange:
    """Change role, active flag and/or password in one transaction on ``conn``.

    Deactivating an active account or setting a password revokes all its sessions and tokens;
    the caller then disconnects their sockets (:func:`after_user_sessions_ended` in the app).
    Raises 404 ``user_not_found``, and :class:`LastAdminError` when the last active
    administrator would be demoted or deactivated.
    """
    async with conn.transaction():
        # Lock the admins' rows: two admins demoting each other at once cannot both succeed.
        admins = await select_active_admin_ids(conn, lock=True)
        target = await select_user(conn, user_id)
        if target is None:
            raise APIError(404, "user_not_found", "no such user")
        loses_admin = role == "user" or active is False
        if target.is_admin and loses_admin and admins == [target.id]:
            raise LastAdminError()
        user = await update_user(
            conn, user_id, role=role, active=active, password_hash=password_hash
        )
        assert user is not None
        revoked = 0
        ended = password_hash is not None or (active is False and target.active)
        if ended:
            revoked = await update_user_sessions_revoked(conn, user_id)
    return AccountChange(user, ended, revoked)


async def update_account(
    user_id: int,
    *,
    role: Role | None = None,
    active: bool | None = None,
    password: str | None = None,
) -> AccountChange:
    """:func:`change_account` in the app, then end the sockets of revoked sessions."""
    password_hash = await hash_password(password) if password is not None else None
    auth = get_auth()
    async with auth.db.connection() as conn:
        change = await change_account(
            conn, user_id, role=role, active=active, password_hash=password_hash
        )
    if change.sessions_ended:
        await after_user_sessions_ended(user_id)
    else:
        # A new role applies to the user's next request on this node (others within a second).
        auth.forget(user_id=user_id)
    return change


async def ensure_user(
    conn: asyncpg.Connection, username: str, password: str, role: Role = "user"
) -> User:
    """Create the account, or bring an existing one to this password and role (active).

    Used for the demo login of ``tickstock serve``: when nothing changes, nothing is written, so
    existing sessions survive a restart; a changed password revokes them.
    """
    found = await select_password_hash_by_name(conn, username)
    if found is None:
        return await insert_user(conn, username, await hash_password(password), role)
    user, password_hash = found
    same_password = await verify_password(password_hash, password)
    if same_password and user.role == role and user.active:
        return user
    async with conn.transaction():
        updated = await update_user(
            conn,
            user.id,
            role=role,
            active=True,
            password_hash=None if same_password else await hash_password(password),
        )
        if not same_password:
            await update_user_sessions_revoked(conn, user.id)
    assert updated is not None
    return updated
