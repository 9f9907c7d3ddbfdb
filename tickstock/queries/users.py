"""Accounts and their sessions (tickstock's ``users`` and ``user_sessions`` tables).

The row types are declared here, beside the SQL that produces them; :mod:`tickstock.auth`
re-exports them for the rest of the app.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any, Literal, cast

import asyncpg

__all__ = [
    "MAX_TOKENS_PER_USER",
    "Credentials",
    "Role",
    "SessionInfo",
    "SessionKind",
    "SessionState",
    "TokenInfo",
    "User",
    "delete_lockouts",
    "insert_session",
    "insert_user",
    "select_active_admin_ids",
    "select_credentials_by_name",
    "select_lockouts",
    "select_password_hash",
    "select_password_hash_by_name",
    "select_session_state",
    "select_sessions",
    "select_token_owner",
    "select_tokens",
    "select_user",
    "select_user_by_name",
    "select_user_for_update",
    "select_users",
    "update_login_failure",
    "update_login_success",
    "update_other_sessions_revoked",
    "update_session_revoked",
    "update_session_touched",
    "update_user",
    "update_user_sessions_revoked",
]

MAX_TOKENS_PER_USER = 100

Role = Literal["user", "admin"]
SessionKind = Literal["cookie", "token"]


@dataclass(frozen=True, slots=True)
class User:
    """An account as the rest of tickstock sees it (never carries credentials)."""

    id: int
    username: str
    role: Role
    active: bool

    @property
    def is_admin(self) -> bool:
        return self.role == "admin" and self.active

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "username": self.username, "role": self.role, "active": self.active}


@dataclass(frozen=True, slots=True)
class Credentials:
    """A user with its login state, for password checks only."""

    user: User
    password_hash: str
    locked: bool
    account_failures: int = 0  # failed passwords on the account from every address, recently


@dataclass(slots=True)
class SessionState:
    """A live session row joined with its user, as cached per process."""

    session_id: str
    kind: SessionKind
    user: User
    secret_hash: str | None
    expires_at: dt.datetime | None
    last_active_at: dt.datetime


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """An API token as listed to its owner (the secret is never stored)."""

    id: str
    name: str | None
    created_at: dt.datetime
    last_active_at: dt.datetime
    expires_at: dt.datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "created_at": self.created_at,
            "last_active_at": self.last_active_at,
            "expires_at": self.expires_at,
        }


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A browser session as listed to its owner (its id is the cookie's secret, never shown)."""

    id: str
    created_at: dt.datetime
    last_active_at: dt.datetime
    expires_at: dt.datetime | None
    address: str | None
    user_agent: str | None


_USER_COLUMNS = "id, username, role, active"


def _user(record: asyncpg.Record) -> User:
    return User(
        id=record["id"],
        username=record["username"],
        role=cast(Role, record["role"]),
        active=record["active"],
    )


# --------------------------------------------------------------------------- users


async def select_user(conn: asyncpg.Connection, user_id: int) -> User | None:
    record = await conn.fetchrow(f"SELECT {_USER_COLUMNS} FROM users WHERE id = $1", user_id)
    return None if record is None else _user(record)


async def select_user_by_name(conn: asyncpg.Connection, username: str) -> User | None:
    """The account named ``username`` (case-insensitive)."""
    record = await conn.fetchrow(
        f"SELECT {_USER_COLUMNS} FROM users WHERE lower(username) = lower($1)", username
    )
    return None if record is None else _user(record)


async def select_credentials_by_name(
    conn: asyncpg.Connection, username: str, address: str, window_seconds: int = 900
) -> Credentials | None:
    """The account, its password hash, whether it is locked for logins from ``address``, and
    its failed passwords from all addresses within ``window_seconds``."""
    record = await conn.fetchrow(
        f"""SELECT {_USER_COLUMNS}, password_hash,
                   EXISTS (SELECT 1 FROM login_failures f
                           WHERE f.user_id = users.id AND f.address = $2
                             AND f.locked_until > now()) AS locked,
                   (SELECT coalesce(sum(f.failures), 0) FROM login_failures f
                    WHERE f.user_id = users.id
                      AND f.last_failure_at > now() - make_interval(secs => $3))
                       AS account_failures
            FROM users WHERE lower(username) = lower($1)""",
        username,
        address,
        window_seconds,
    )
    if record is None:
        return None
    return Credentials(
        _user(record), record["password_hash"], record["locked"], int(record["account_failures"])
    )


async def select_password_hash_by_name(
    conn: asyncpg.Connection, username: str
) -> tuple[User, str] | None:
    """The account named ``username`` and its password hash, whatever its lock state."""
    record = await conn.fetchrow(
        f"SELECT {_USER_COLUMNS}, password_hash FROM users WHERE lower(username) = lower($1)",
        username,
    )
    return None if record is None else (_user(record), record["password_hash"])


async def insert_user(
    conn: asyncpg.Connection, username: str, password_hash: str, role: Role = "user"
) -> User:
    """Create an account; raises ``asyncpg.UniqueViolationError`` when the name is taken."""
    record = await conn.fetchrow(
        f"""INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3)
            RETURNING {_USER_COLUMNS}""",
        username,
        password_hash,
        role,
    )
    assert record is not None
    return _user(record)


async def update_user(
    conn: asyncpg.Connection,
    user_id: int,
    *,
    role: Role | None = None,
    active: bool | None = None,
    password_hash: str | None = None,
) -> User | None:
    """Change role, active flag and/or password; a new password or re-activation unlocks."""
    record = await conn.fetchrow(
        f"""WITH unlocked AS (
                DELETE FROM login_failures
                WHERE user_id = $1 AND ($4::text IS NOT NULL OR coalesce($3::boolean, false))
            )
            UPDATE users SET
                role = coalesce($2, role),
                active = coalesce($3, active),
                password_hash = coalesce($4, password_hash),
                password_changed_at = CASE WHEN $4::text IS NULL
                                           THEN password_changed_at ELSE now() END
            WHERE id = $1
            RETURNING {_USER_COLUMNS}""",
        user_id,
        role,
        active,
        password_hash,
    )
    return None if record is None else _user(record)


async def select_users(
    conn: asyncpg.Connection,
    *,
    before_id: int | None = None,
    limit: int = 50,
    search: str | None = None,
) -> list[asyncpg.Record]:
    """Accounts for administration, newest first, with their lock state and live sessions.

    ``search`` keeps usernames containing it (case-insensitive); ``before_id`` pages on.
    """
    return list(
        await conn.fetch(
            f"""SELECT {_USER_COLUMNS}, created_at, password_changed_at,
                       (SELECT coalesce(sum(f.failures), 0)::int FROM login_failures f
                        WHERE f.user_id = users.id) AS failed_logins,
                       (SELECT max(f.locked_until) FROM login_failures f
                        WHERE f.user_id = users.id AND f.locked_until > now()) AS locked_until,
                       (SELECT count(*) FROM user_sessions s
                        WHERE s.user_id = users.id AND s.revoked_at IS NULL
                          AND (s.expires_at IS NULL OR s.expires_at > now())) AS live_sessions
                FROM users
                WHERE ($1::bigint IS NULL OR id < $1)
                  AND ($3::text IS NULL OR strpos(lower(username), lower($3)) > 0)
                ORDER BY id DESC LIMIT $2""",
            before_id,
            limit,
            search,
        )
    )


async def select_active_admin_ids(conn: asyncpg.Connection, *, lock: bool = False) -> list[int]:
    """Ids of the active admins; ``lock`` holds their rows until the transaction ends."""
    suffix = " FOR UPDATE" if lock else ""
    rows = await conn.fetch(
        f"SELECT id FROM users WHERE role = 'admin' AND active ORDER BY id{suffix}"
    )
    return [row["id"] for row in rows]


async def update_login_failure(
    conn: asyncpg.Connection,
    user_id: int,
    address: str,
    max_failures: int,
    lockout_seconds: int,
) -> bool:
    """Count a failed password from ``address``; the ``max_failures``-th within
    ``lockout_seconds`` locks the account for that address alone. True when now locked."""
    locked = await conn.fetchval(
        """WITH stale AS (
               DELETE FROM login_failures
               WHERE user_id = $1 AND address <> $2
                 AND last_failure_at < now() - make_interval(secs => $4)
                 AND (locked_until IS NULL OR locked_until < now())
           )
           INSERT INTO login_failures AS f (user_id, address, failures, locked_until)
           VALUES ($1, $2,
                   1,
                   CASE WHEN $3 <= 1 THEN now() + make_interval(secs => $4) END)
           ON CONFLICT (user_id, address) DO UPDATE SET
               failures = CASE WHEN f.last_failure_at < now() - make_interval(secs => $4)
                               THEN 1 ELSE f.failures + 1 END,
               locked_until = CASE WHEN (CASE WHEN f.last_failure_at
                                                   < now() - make_interval(secs => $4)
                                              THEN 1 ELSE f.failures + 1 END) >= $3
                                   THEN now() + make_interval(secs => $4)
                                   ELSE f.locked_until END,
               last_failure_at = now()
           RETURNING coalesce(f.locked_until > now(), false)""",
        user_id,
        address,
        max_failures,
        float(lockout_seconds),
    )
    return bool(locked)


async def update_login_success(conn: asyncpg.Connection, user_id: int, address: str) -> None:
    """Forget the failed passwords from ``address`` after a successful login from it."""
    await conn.execute(
        "DELETE FROM login_failures WHERE user_id = $1 AND address = $2", user_id, address
    )


async def select_lockouts(conn: asyncpg.Connection, *, limit: int = 500) -> list[asyncpg.Record]:
    """Accounts locked for an address, and addresses with recent failed passwords."""
    return list(
        await conn.fetch(
            """SELECT f.user_id, u.username, f.address, f.failures,
                      CASE WHEN f.locked_until > now() THEN f.locked_until END AS locked_until,
                      f.last_failure_at
               FROM login_failures f JOIN users u ON u.id = f.user_id
               WHERE f.locked_until > now() OR f.failures > 0
               ORDER BY f.locked_until > now() DESC, f.last_failure_at DESC
               LIMIT $1""",
            limit,
        )
    )


async def delete_lockouts(
    conn: asyncpg.Connection, user_id: int, address: str | None = None
) -> int:
    """Unlock an account for one address, or for all; returns how many addresses were cleared."""
    status = await conn.execute(
        "DELETE FROM login_failures WHERE user_id = $1 AND ($2::text IS NULL OR address = $2)",
        user_id,
        address,
    )
    return int(status.split()[-1])


async def select_user_for_update(conn: asyncpg.Connection, user_id: int) -> None:
    """Lock the user's row until the transaction ends (serialises their token creation)."""
    await conn.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", user_id)


# --------------------------------------------------------------------------- sessions


async def insert_session(
    conn: asyncpg.Connection,
    user_id: int,
    kind: SessionKind,
    *,
    lifetime: dt.timedelta | None,
    name: str | None = None,
    secret_hash: str | None = None,
    address: str | None = None,
    user_agent: str | None = None,
) -> tuple[str, dt.datetime | None]:
    """Record a new session with a random id; returns (id, expires_at)."""
    session_id = secrets.token_urlsafe(18)
    expires_at = await conn.fetchval(
        """INSERT INTO user_sessions
               (id, user_id, kind, name, secret_hash, expires_at, address, user_agent)
           VALUES ($1, $2, $3, $4, $5, now() + $6::interval, $7, $8)
           RETURNING expires_at""",
        session_id,
        user_id,
        kind,
        name,
        secret_hash,
        lifetime,
        address,
        (user_agent or "")[:256] or None,
    )
    return session_id, expires_at


async def select_session_state(conn: asyncpg.Connection, session_id: str) -> SessionState | None:
    """The session if it is live: not revoked, not expired, and its user active."""
    record = await conn.fetchrow(
        """SELECT s.id, s.kind, s.secret_hash, s.expires_at, s.last_active_at,
                  u.id AS user_id, u.username, u.role, u.active
           FROM user_sessions s JOIN users u ON u.id = s.user_id
           WHERE s.id = $1 AND s.revoked_at IS NULL
             AND (s.expires_at IS NULL OR s.expires_at > now()) AND u.active""",
        session_id,
    )
    if record is None:
        return None
    user = User(record["user_id"], record["username"], record["role"], record["active"])
    return SessionState(
        session_id=record["id"],
        kind=record["kind"],
        user=user,
        secret_hash=record["secret_hash"],
        expires_at=record["expires_at"],
        last_active_at=record["last_active_at"],
    )


async def update_session_touched(conn: asyncpg.Connection, session_id: str) -> None:
    """Mark the session as used now (at most once a minute per session, see the cache)."""
    await conn.execute("UPDATE user_sessions SET last_active_at = now() WHERE id = $1", session_id)


async def update_session_revoked(
    conn: asyncpg.Connection,
    session_id: str,
    *,
    user_id: int | None = None,
    kind: SessionKind | None = None,
) -> bool:
    """Revoke one session (optionally only the given user's / kind). True when one was live."""
    status = await conn.execute(
        """UPDATE user_sessions SET revoked_at = now()
           WHERE id = $1 AND revoked_at IS NULL
             AND ($2::bigint IS NULL OR user_id = $2) AND ($3::text IS NULL OR kind = $3)""",
        session_id,
        user_id,
        kind,
    )
    return status != "UPDATE 0"


async def update_user_sessions_revoked(conn: asyncpg.Connection, user_id: int) -> int:
    """Revoke every live session and token of a user; returns how many."""
    status = await conn.execute(
        "UPDATE user_sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
        user_id,
    )
    return int(status.split()[-1])


async def select_tokens(conn: asyncpg.Connection, user_id: int) -> list[TokenInfo]:
    """The user's live API tokens, newest first."""
    rows = await conn.fetch(
        """SELECT id, name, created_at, last_active_at, expires_at FROM user_sessions
           WHERE user_id = $1 AND kind = 'token' AND revoked_at IS NULL
             AND (expires_at IS NULL OR expires_at > now())
           ORDER BY created_at DESC, id
           LIMIT $2""",
        user_id,
        MAX_TOKENS_PER_USER,
    )
    return [
        TokenInfo(r["id"], r["name"], r["created_at"], r["last_active_at"], r["expires_at"])
        for r in rows
    ]


async def select_token_owner(conn: asyncpg.Connection, token_id: str) -> int | None:
    owner: int | None = await conn.fetchval(
        "SELECT user_id FROM user_sessions WHERE id = $1 AND kind = 'token'", token_id
    )
    return owner


async def select_sessions(conn: asyncpg.Connection, user_id: int) -> list[SessionInfo]:
    """The user's live browser sessions, most recently used first."""
    rows = await conn.fetch(
        """SELECT id, created_at, last_active_at, expires_at, address, user_agent
           FROM user_sessions
           WHERE user_id = $1 AND kind = 'cookie' AND revoked_at IS NULL
             AND (expires_at IS NULL OR expires_at > now())
           ORDER BY last_active_at DESC, id""",
        user_id,
    )
    return [SessionInfo(**dict(r)) for r in rows]


async def select_password_hash(conn: asyncpg.Connection, user_id: int) -> str | None:
    found: str | None = await conn.fetchval(
        "SELECT password_hash FROM users WHERE id = $1 AND active", user_id
    )
    return found


async def update_other_sessions_revoked(
    conn: asyncpg.Connection, user_id: int, keep: str
) -> list[str]:
    """Revoke every live session and token of a user but ``keep``; returns the revoked ids."""
    rows = await conn.fetch(
        """UPDATE user_sessions SET revoked_at = now()
           WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL RETURNING id""",
        user_id,
        keep,
    )
    return [r["id"] for r in rows]
