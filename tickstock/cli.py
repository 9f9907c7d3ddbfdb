"""The ``tickstock`` command."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import click

from tickstock.config import ConfigError, Settings, load_settings

log = logging.getLogger("tickstock.cli")

T = TypeVar("T")


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def _run(coro: Awaitable[T]) -> T:
    async def wrapper() -> T:
        return await coro

    return asyncio.run(wrapper())


async def _connect(dsn: str, what: str = "database") -> asyncpg.Connection:
    try:
        return await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise click.ClickException(
            f"cannot connect to the {what} at {_redact(dsn)}: {exc}"
        ) from exc


def _redact(url: str) -> str:
    # Hide a password in a URL before printing it.
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}{':***' if ':' in creds else ''}@{host}"
    return url


def _require_database(settings: Settings) -> str:
    if not settings.database_url:
        raise click.ClickException(
            "TICKSTOCK_DATABASE_URL is not set (set it, or run `tickstock serve` for the local stack)"
        )
    return settings.database_url


@click.group()
@click.version_option(package_name="tickstock")
def main() -> None:
    """tickstock: the real-time market-pattern gateway."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


# --------------------------------------------------------------------------- database


@main.group()
def db() -> None:
    """Schema migrations and demo data."""


def _default_sets(settings: Settings) -> tuple[str, ...]:
    # Producer tables belong to the producer in production; ship them for dev, demo and tests.
    return ("tickstock",) if settings.is_production else ("producer", "tickstock")


async def migrate_database(dsn: str, sets: Sequence[str]) -> list[str]:
    from tickstock.db.migrate import migrate

    conn = await _connect(dsn)
    try:
        return await migrate(conn, sets)
    finally:
        await conn.close()


@db.command("migrate")
@click.option(
    "--set",
    "sets",
    multiple=True,
    type=click.Choice(["producer", "tickstock"]),
    help="Migration set(s) to apply (default: both, or only tickstock in production).",
)
def db_migrate(sets: tuple[str, ...]) -> None:
    """Apply pending migrations (idempotent)."""
    settings = _settings()
    applied = _run(migrate_database(_require_database(settings), sets or _default_sets(settings)))
    click.echo(f"applied {len(applied)} migration(s)" + "".join(f"\n  {m}" for m in applied))


async def seed_database(dsn: str) -> dict[str, int]:
    from tickstock.db.seed import seed

    conn = await _connect(dsn)
    try:
        return await seed(conn)
    finally:
        await conn.close()


@db.command("seed")
def db_seed() -> None:
    """Fill the producer tables with realistic demo data (no duplicates when run twice)."""
    settings = _settings()
    counts = _run(seed_database(_require_database(settings)))
    for table, count in counts.items():
        click.echo(f"{table}: {count} row(s) inserted")


# --------------------------------------------------------------------------- demo producer


@main.command("demo-producer")
@click.option(
    "--redis-url", envvar="TICKSTOCK_REDIS_URL", required=True, help="Redis to publish on."
)
@click.option(
    "--rate", type=float, default=2.0, show_default=True, help="Pattern events per second."
)
@click.option("--symbols", default="", help="Comma-separated symbols (default: a demo universe).")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
def demo_producer(redis_url: str, rate: float, symbols: str, duration: float | None) -> None:
    """Publish realistic pattern, indicator, alert and health events on the producer channels."""
    from tickstock.realtime.demo_producer import DEFAULT_SYMBOLS, run_demo_producer

    chosen = [s.strip().upper() for s in symbols.split(",") if s.strip()] or list(DEFAULT_SYMBOLS)
    if rate <= 0:
        raise click.BadParameter("must be positive", param_hint="--rate")

    async def go() -> int:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(redis_url, socket_connect_timeout=5)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await client.ping()
        except Exception as exc:
            await client.aclose()
            raise click.ClickException(
                f"cannot reach Redis at {_redact(redis_url)}: {exc}"
            ) from exc
        try:
            return await run_demo_producer(
                client, symbols=chosen, rate=rate, duration=duration, stop=stop
            )
        finally:
            await client.aclose()

    sent = _run(go())
    click.echo(f"published {sent} message(s)")


# --------------------------------------------------------------------------- users


@main.group()
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


async def _end_sessions(conn: asyncpg.Connection, settings: Settings, user_id: int) -> int:
    """Revoke a user's sessions, then ask every node to disconnect their sockets."""
    from tickstock.auth import revoke_user_sessions
    from tickstock.realtime.auth import publish_disconnect_user

    count = await revoke_user_sessions(conn, user_id)
    try:
        await publish_disconnect_user(settings, user_id)
    except Exception as exc:
        click.echo(f"warning: could not notify the servers to drop sockets: {exc}", err=True)
    return count


@users.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="Give the account the admin role.")
@click.option("--password-stdin", is_flag=True, help="Read the password as one line on stdin.")
def users_create(name: str, admin: bool, password_stdin: bool) -> None:
    """Create the account NAME."""
    from tickstock.auth import check_username, hash_password, insert_user

    settings = _settings()
    dsn = _require_database(settings)
    try:
        check_username(name)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from exc
    password = _read_password(password_stdin)

    async def go() -> int:
        password_hash = await hash_password(password)
        conn = await _connect(dsn)
        try:
            user = await insert_user(conn, name, password_hash, "admin" if admin else "user")
        except asyncpg.UniqueViolationError as exc:
            raise click.ClickException(f"a user named {name!r} already exists") from exc
        finally:
            await conn.close()
        return user.id

    user_id = _run(go())
    click.echo(f"created {'admin' if admin else 'user'} {name!r} (id {user_id})")


@users.command("set-password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password as one line on stdin.")
def users_set_password(name: str, password_stdin: bool) -> None:
    """Set NAME's password (unlocks the account and ends its sessions and tokens)."""
    from tickstock.auth import hash_password, select_user_by_name, update_user

    settings = _settings()
    dsn = _require_database(settings)
    password = _read_password(password_stdin)

    async def go() -> int:
        password_hash = await hash_password(password)
        conn = await _connect(dsn)
        try:
            async with conn.transaction():
                user = await select_user_by_name(conn, name)
                if user is None:
                    raise click.ClickException(f"no user named {name!r}")
                await update_user(conn, user.id, password_hash=password_hash)
            return await _end_sessions(conn, settings, user.id)
        finally:
            await conn.close()

    revoked = _run(go())
    click.echo(f"password of {name!r} changed; {revoked} session(s) ended")


@users.command("deactivate")
@click.argument("name")
def users_deactivate(name: str) -> None:
    """Deactivate NAME: no more logins, and its sessions, tokens and sockets end now."""
    from tickstock.auth import select_active_admin_ids, select_user_by_name, update_user

    settings = _settings()
    dsn = _require_database(settings)

    async def go() -> int:
        conn = await _connect(dsn)
        try:
            async with conn.transaction():
                user = await select_user_by_name(conn, name)
                if user is None:
                    raise click.ClickException(f"no user named {name!r}")
                if user.is_admin and await select_active_admin_ids(conn, lock=True) == [user.id]:
                    raise click.ClickException(
                        f"{name!r} is the last active admin; create another admin first"
                    )
                await update_user(conn, user.id, active=False)
            return await _end_sessions(conn, settings, user.id)
        finally:
            await conn.close()

    revoked = _run(go())
    click.echo(f"deactivated {name!r}; {revoked} session(s) ended")


# --------------------------------------------------------------------------- benchmarks


@main.group()
def bench() -> None:
    """Load tests against a running tickstock (SPEC §10)."""


def _print_result(result: dict[str, Any], as_json: bool, report: str) -> None:
    import json

    click.echo(report)
    if as_json:
        click.echo(json.dumps(result))


@bench.command("fanout")
@click.option("--url", required=True, help="Base URL of the served app, e.g. http://127.0.0.1:8000")
@click.option("--user", default="", help="Account to log in with (or use --token).")
@click.option("--password", default="", envvar="TICKSTOCK_BENCH_PASSWORD", help="Its password.")
@click.option(
    "--token", default="", envvar="TICKSTOCK_BENCH_TOKEN", help="API token instead of a login."
)
@click.option("--clients", type=click.IntRange(1), default=100, show_default=True)
@click.option("--symbols-per-client", type=click.IntRange(1), default=5, show_default=True)
@click.option("--universe", type=click.IntRange(1), default=500, show_default=True)
@click.option(
    "--rate",
    type=click.FloatRange(min=0.1),
    default=200.0,
    show_default=True,
    help="Events per second.",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0.5),
    default=20.0,
    show_default=True,
    help="Measured seconds.",
)
@click.option("--warmup", type=click.FloatRange(min=0), default=3.0, show_default=True)
@click.option(
    "--redis-url",
    default="redis://127.0.0.1:6379/0",
    show_default=True,
    envvar="TICKSTOCK_REDIS_URL",
)
@click.option(
    "--server-pid",
    "server_pids",
    type=int,
    multiple=True,
    help="Server process id(s) for CPU and RSS.",
)
@click.option(
    "--processes",
    type=click.IntRange(1),
    default=2,
    show_default=True,
    help="Client worker processes.",
)
@click.option(
    "--stalled",
    type=click.FloatRange(0, 0.9),
    default=0.0,
    help="Fraction of clients that stop reading.",
)
@click.option(
    "--batch-ms",
    type=click.IntRange(0, 1000),
    default=0,
    show_default=True,
    help="Clients ask for coalesced 'events' frames every N ms (0: one frame per event).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object as the last line.")
def bench_fanout(
    url: str,
    user: str,
    password: str,
    token: str,
    clients: int,
    symbols_per_client: int,
    universe: int,
    rate: float,
    duration: float,
    warmup: float,
    redis_url: str,
    server_pids: tuple[int, ...],
    processes: int,
    stalled: float,
    batch_ms: int,
    as_json: bool,
) -> None:
    """N sockets on K symbols of U; events on Redis at R/s: loss, order, latency, server cost."""
    from tickstock.bench.fanout import (
        FanoutConfig,
        format_report,
        progress_printer,
        run_fanout_bench,
    )

    if not token and not (user and password):
        raise click.UsageError("give --token, or --user and --password")
    config = FanoutConfig(
        url=url,
        user=user,
        password=password,
        token=token,
        clients=clients,
        symbols_per_client=symbols_per_client,
        universe=universe,
        rate=rate,
        duration=duration,
        warmup=warmup,
        redis_url=redis_url,
        server_pids=list(server_pids),
        processes=processes,
        stalled_fraction=stalled,
        batch_ms=batch_ms,
    )
    result = _run(run_fanout_bench(config, progress_printer))
    _print_result(result, as_json, format_report(result))


@bench.command("rest")
@click.option("--url", required=True, help="Base URL of the served app.")
@click.option("--path", default="/api/patterns/AAPL", show_default=True, help="Endpoint to load.")
@click.option("--user", default="")
@click.option("--password", default="", envvar="TICKSTOCK_BENCH_PASSWORD")
@click.option("--token", default="", envvar="TICKSTOCK_BENCH_TOKEN")
@click.option("--concurrency", "-c", type=click.IntRange(1), default=50, show_default=True)
@click.option("--warmup", type=click.FloatRange(min=0), default=2.0, show_default=True)
@click.option("--server-pid", type=int, default=None, help="Server worker pid for CPU per request.")
@click.option("--duration", type=click.FloatRange(min=0.5), default=10.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object as the last line.")
def bench_rest(
    url: str,
    path: str,
    user: str,
    password: str,
    token: str,
    concurrency: int,
    warmup: float,
    server_pid: int | None,
    duration: float,
    as_json: bool,
) -> None:
    """C concurrent authenticated clients on one endpoint: requests/s, latency, errors."""
    from tickstock.bench.rest import format_rest_report, run_rest_bench

    if not token and not (user and password):
        raise click.UsageError("give --token, or --user and --password")
    headers = (
        {"Authorization": f"Bearer {token}"} if token else _run(_login_cookie(url, user, password))
    )
    result = _run(
        run_rest_bench(
            url, headers, path, concurrency, duration, warmup=warmup, server_pid=server_pid
        )
    )
    _print_result(result, as_json, format_rest_report(result))


async def _login_cookie(url: str, user: str, password: str) -> dict[str, str]:
    import aiohttp

    jar = aiohttp.CookieJar(unsafe=True)
    async with (
        aiohttp.ClientSession(cookie_jar=jar) as http,
        http.post(
            f"{url.rstrip('/')}/api/auth/login", json={"username": user, "password": password}
        ) as response,
    ):
        if response.status != 200:
            raise click.ClickException(f"login failed: HTTP {response.status}")
    return {"Cookie": "; ".join(f"{c.key}={c.value}" for c in jar)}


# --------------------------------------------------------------------------- serve


@main.command()
@click.option("--bind", default=None, help="HOST:PORT to listen on (overrides hypercorn.toml).")
@click.option(
    "--config",
    "config_path",
    default="hypercorn.toml",
    show_default=True,
    help="Hypercorn configuration file (used when it exists).",
)
def serve(bind: str | None, config_path: str) -> None:
    """Run the service with hypercorn; with nothing configured, start the local stack first."""
    settings = _settings()
    _ensure_frontend()
    env = dict(os.environ)
    stack = None
    children: list[subprocess.Popen[bytes]] = []
    if not settings.database_url and not settings.redis_url:
        stack, env = _start_local_stack(settings, env)
    elif not settings.database_url or not settings.redis_url:
        missing = "TICKSTOCK_DATABASE_URL" if not settings.database_url else "TICKSTOCK_REDIS_URL"
        raise click.ClickException(
            f"{missing} is not set: configure both URLs, or neither to use the local stack"
        )
    else:
        _check_configured(settings)
        _run(migrate_database(settings.database_url, ("tickstock",)))

    metrics_dir = _metrics_dir()
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    try:
        if stack is not None and settings.demo_producer:
            children.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "tickstock",
                        "demo-producer",
                        "--rate",
                        str(settings.demo_producer_rate),
                    ],
                    env=env,
                    preexec_fn=_die_with_parent(),
                )
            )
        args = [sys.executable, "-m", "hypercorn"]
        if Path(config_path).is_file():
            args += ["--config", config_path]
        else:
            args += ["--worker-class", "uvloop"]
            if bind is None:
                bind = "127.0.0.1:8000"
        if bind:
            args += ["--bind", bind]
        args.append("tickstock.asgi:app")
        server = subprocess.Popen(args, env=env, preexec_fn=_die_with_parent())
        children.insert(0, server)
        code = _wait_forwarding_signals(server, children)
    finally:
        _stop_children(children)
        if stack is not None:
            stack.stop()
        shutil.rmtree(metrics_dir, ignore_errors=True)
    sys.exit(code)


def _ensure_frontend() -> None:
    """The dashboard's npm packages, installed on first run (and after the lock file changes)."""
    from tickstock.web.assets import FrontendError, ensure_frontend

    try:
        ensure_frontend()
    except FrontendError as exc:
        # The API and Socket.IO work without them; only the dashboard page needs them.
        click.echo(f"warning: {exc}; the dashboard will not load until this is fixed", err=True)


def _die_with_parent() -> Callable[[], None] | None:
    from tickstock.localstack import die_with_parent

    return die_with_parent()


def _metrics_dir() -> Path:
    """A fresh folder where every hypercorn worker writes its metric samples."""
    import tempfile

    return Path(tempfile.mkdtemp(prefix="tickstock-metrics-"))


def _check_configured(settings: Settings) -> None:
    """A configured but unreachable store is an error, never a silent fallback."""

    async def check() -> None:
        conn = await _connect(settings.database_url)
        await conn.close()
        from tickstock.extensions.redis import make_client

        client = make_client(settings)  # through the sentinels when they are configured
        try:
            await client.ping()
        except Exception as exc:
            raise click.ClickException(
                f"cannot reach Redis at {_redact(settings.redis_url)}: {exc}"
            ) from exc
        finally:
            await client.aclose()

    _run(check())


def _start_local_stack(settings: Settings, env: dict[str, str]) -> tuple[Any, dict[str, str]]:
    from tickstock.localstack import LocalStack

    data_dir = Path(settings.local_stack_dir).resolve()
    click.echo(f"No database or Redis configured: starting the local stack in {data_dir}")
    stack = LocalStack(data_dir)
    urls = stack.start()
    try:
        applied = _run(migrate_database(urls.database_url, ("producer", "tickstock")))
        if applied:
            click.echo(f"applied {len(applied)} migration(s)")
        counts = _run(seed_database(urls.database_url))
        if any(counts.values()):
            click.echo("seeded demo data")
        password = _run(_ensure_demo_user(urls.database_url, settings, data_dir))
    except BaseException:
        stack.stop()
        raise
    env = dict(env)
    env["TICKSTOCK_DATABASE_URL"] = urls.database_url
    env["TICKSTOCK_REDIS_URL"] = urls.redis_url
    if password:
        click.echo(
            f"Demo login: user {settings.demo_user!r}, password {password!r} "
            f"(stored in {data_dir / 'demo-login.txt'})"
        )
    return stack, env


async def _ensure_demo_user(dsn: str, settings: Settings, data_dir: Path) -> str | None:
    try:
        from tickstock.auth import ensure_user
    except ImportError:
        return None
    import secrets

    login_file = data_dir / "demo-login.txt"
    password = settings.demo_password
    if not password and login_file.exists():
        password = login_file.read_text().split("\n", 1)[0].split(" ", 1)[-1].strip()
    if not password:
        password = secrets.token_urlsafe(9)
    conn = await _connect(dsn)
    try:
        await ensure_user(conn, settings.demo_user, password, role="admin")
    finally:
        await conn.close()
    login_file.write_text(f"{settings.demo_user} {password}\n")
    login_file.chmod(0o600)
    return password


# Seconds between asking the workers to hand their sockets over and stopping them.
DRAIN_SECONDS = 1.0


def _wait_forwarding_signals(
    server: subprocess.Popen[bytes], children: list[subprocess.Popen[bytes]]
) -> int:
    """Wait for hypercorn; on SIGINT/SIGTERM drain its workers, then stop every child."""
    stopping: list[float] = []

    def on_signal(_signum: int, _frame: object) -> None:
        if not stopping:
            stopping.append(time.monotonic())
            _drain_workers(server.pid)

    previous: dict[signal.Signals, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, on_signal)
    terminated = False
    try:
        while True:
            try:
                return server.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                pass
            except KeyboardInterrupt:
                on_signal(signal.SIGINT, None)
            if stopping and not terminated and time.monotonic() - stopping[0] >= DRAIN_SECONDS:
                terminated = True
                for child in children:
                    if child.poll() is None:
                        child.send_signal(signal.SIGTERM)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _drain_workers(hypercorn_pid: int) -> None:
    """SIGUSR1 to each hypercorn worker: sockets reconnect to other nodes before the SIGTERM."""
    import psutil

    try:
        parent = psutil.Process(hypercorn_pid)
        # Workers are spawned processes; the multiprocessing resource tracker is not one.
        workers = [
            child for child in parent.children() if "spawn_main" in " ".join(child.cmdline())
        ] or [parent]
    except psutil.NoSuchProcess:
        return
    for worker in workers:
        with contextlib.suppress(psutil.NoSuchProcess):
            worker.send_signal(signal.SIGUSR1)


def _stop_children(children: list[subprocess.Popen[bytes]], timeout: float = 15.0) -> None:
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


if __name__ == "__main__":
    main()
