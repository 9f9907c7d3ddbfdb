"""``tickstock users``: create accounts, set passwords, deactivate."""

from __future__ import annotations

import sys
from typing import Any

import asyncpg
import click

from tickstock.cli.common import cli_settings, connect, require_database, run
from tickstock.config import Settings


@click.group()
def users() -> None:
    """User accounts (passwords are read from a prompt or stdin, never from arguments)."""


def _read_password(password_stdin: bool) -> str:
    from tickstock.auth import check_password

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        return check_password(password)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


async def _change(conn: asyncpg.Connection, settings: Settings, name: str, **change: Any) -> int:
    """Change NAME through the accounts service (which owns the last-admin rule); when that ended
    its sessions, ask every node to disconnect their sockets. Returns the sessions ended."""
    from tickstock.auth import LastAdminError, change_account
    from tickstock.queries.users import select_user_by_name
    from tickstock.realtime.auth import publish_disconnect_user

    user = await select_user_by_name(conn, name)
    if user is None:
        raise click.ClickException(f"no user named {name!r}")
    try:
        result = await change_account(conn, user.id, **change)
    except LastAdminError as exc:
        raise click.ClickException(
            f"{name!r} is the last active admin; create another admin first"
        ) from exc
    if result.sessions_ended:
        try:
            await publish_disconnect_user(settings, user.id)
        except Exception as exc:
            click.echo(f"warning: could not notify the servers to drop sockets: {exc}", err=True)
    return result.revoked


@users.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="Give the account the admin role.")
@click.option("--password-stdin", is_flag=True, help="Read the password as one line on stdin.")
def users_create(name: str, admin: bool, password_stdin: bool) -> None:
    """Create the account NAME."""
    from tickstock.auth import check_username, hash_password
    from tickstock.queries.users import insert_user

    settings = cli_settings()
    dsn = require_database(settings)
    try:
        check_username(name)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from exc
    password = _read_password(password_stdin)

    async def go() -> int:
        password_hash = await hash_password(password)
        conn = await connect(dsn)
        try:
            user = await insert_user(conn, name, password_hash, "admin" if admin else "user")
        except asyncpg.UniqueViolationError as exc:
            raise click.ClickException(f"a user named {name!r} already exists") from exc
        finally:
            await conn.close()
        return user.id

    user_id = run(go())
    click.echo(f"created {'admin' if admin else 'user'} {name!r} (id {user_id})")


@users.command("set-password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password as one line on stdin.")
def users_set_password(name: str, password_stdin: bool) -> None:
    """Set NAME's password (unlocks the account and ends its sessions and tokens)."""
    from tickstock.auth import hash_password

    settings = cli_settings()
    dsn = require_database(settings)
    password = _read_password(password_stdin)

    async def go() -> int:
        password_hash = await hash_password(password)
        conn = await connect(dsn)
        try:
            return await _change(conn, settings, name, password_hash=password_hash)
        finally:
            await conn.close()

    revoked = run(go())
    click.echo(f"password of {name!r} changed; {revoked} session(s) ended")


@users.command("deactivate")
@click.argument("name")
def users_deactivate(name: str) -> None:
    """Deactivate NAME: no more logins, and its sessions, tokens and sockets end now."""
    settings = cli_settings()
    dsn = require_database(settings)

    async def go() -> int:
        conn = await connect(dsn)
        try:
            return await _change(conn, settings, name, active=False)
        finally:
            await conn.close()

    revoked = run(go())
    click.echo(f"deactivated {name!r}; {revoked} session(s) ended")
