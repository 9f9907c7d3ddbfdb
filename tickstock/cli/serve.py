"""``tickstock serve``: a small process supervisor around hypercorn.

With no database or Redis configured it first starts the local stack (migrated, seeded, with a demo
login) and a demo producer child; on SIGINT/SIGTERM it drains the hypercorn workers, then stops
every child.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tickstock.cli.common import cli_settings, connect, redact, run
from tickstock.cli.db import migrate_database, seed_database
from tickstock.config import Settings

if TYPE_CHECKING:
    from tickstock.queries.alerts import RuleFields


@click.command()
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
    settings = cli_settings()
    _ensure_frontend()
    env = dict(os.environ)
    stack = None
    children: list[subprocess.Popen[bytes]] = []
    login = "with an account from `tickstock users create`"
    if not settings.database_url and not settings.redis_url:
        stack, env, login = _start_local_stack(settings, env)
    elif not settings.database_url or not settings.redis_url:
        missing = "TICKSTOCK_DATABASE_URL" if not settings.database_url else "TICKSTOCK_REDIS_URL"
        raise click.ClickException(
            f"{missing} is not set: configure both URLs, or neither to use the local stack"
        )
    else:
        _check_configured(settings)
        run(migrate_database(settings.database_url, ("tickstock",)))

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
                        "--job-pace",
                        str(settings.demo_job_pace),
                    ],
                    env=env,
                    preexec_fn=_die_with_parent(),
                )
            )
        args = [sys.executable, "-m", "hypercorn"]
        url = _public_url(bind, config_path)
        if Path(config_path).is_file():
            args += ["--config", config_path]
        else:
            args += ["--config", f"python:{__name__}.HypercornDefaults"]
            if bind is None:
                bind = "127.0.0.1:8000"
        if bind:
            args += ["--bind", bind]
        args.append("tickstock.asgi:app")
        server = subprocess.Popen(args, env=env, preexec_fn=_die_with_parent())
        children.insert(0, server)
        _announce_when_ready(server, url, login)
        code = _wait_forwarding_signals(server, children)
    finally:
        _stop_children(children)
        if stack is not None:
            stack.stop()
        shutil.rmtree(metrics_dir, ignore_errors=True)
    sys.exit(code)


class HypercornDefaults:
    """hypercorn's settings when there is no hypercorn.toml (the same as the shipped one's)."""

    worker_class = "uvloop"
    include_server_header = False  # no "Server: hypercorn-h11" banner


def _ensure_frontend() -> None:
    """The dashboard's npm packages, installed on first run (and after the lock file changes)."""
    from tickstock.web.assets import FrontendError, ensure_frontend

    try:
        ensure_frontend()
    except FrontendError as exc:
        # The API and Socket.IO work without them; only the dashboard page needs them.
        click.echo(f"warning: {exc}; the dashboard will not load until this is fixed", err=True)


def _public_url(bind: str | None, config_path: str) -> str:
    """The dashboard's URL for the ready line: the first bind address, as a browser opens it."""
    import tomllib

    address = bind
    if address is None and Path(config_path).is_file():
        binds = tomllib.loads(Path(config_path).read_text()).get("bind", [])
        address = binds if isinstance(binds, str) else (binds[0] if binds else None)
    host, _, port = (address or "127.0.0.1:8000").rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


READY_AFTER_LOG_S = 0.5


def _announce_when_ready(server: subprocess.Popen[bytes], url: str, login: str) -> None:
    """One "ready" line, the last of start-up: printed once the service answers /health."""
    import threading
    import urllib.error
    import urllib.request

    def wait() -> None:
        while server.poll() is None:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):
                    pass
            except urllib.error.HTTPError:
                pass  # it answers, even if degraded: the page will say what is wrong
            except (OSError, ValueError):
                time.sleep(0.2)
                continue
            # The server's own start-up lines go through its log writer, which writes every
            # 50 ms (logconfig): let them out first, so this stays the last line.
            time.sleep(READY_AFTER_LOG_S)
            click.echo(f"ready: open {url} and sign in {login}")
            return

    threading.Thread(target=wait, name="ready-line", daemon=True).start()


def _die_with_parent() -> Callable[[], None] | None:
    from tickstock.dev.localstack import die_with_parent

    return die_with_parent()


def _metrics_dir() -> Path:
    """A fresh folder where every hypercorn worker writes its metric samples."""
    import tempfile

    return Path(tempfile.mkdtemp(prefix="tickstock-metrics-"))


def _check_configured(settings: Settings) -> None:
    """A configured but unreachable store is an error, never a silent fallback."""

    async def check() -> None:
        conn = await connect(settings.database_url)
        await conn.close()
        from tickstock.extensions.redis import make_client

        client = make_client(settings)  # through the sentinels when they are configured
        try:
            await client.ping()
        except Exception as exc:
            raise click.ClickException(
                f"cannot reach Redis at {redact(settings.redis_url)}: {exc}"
            ) from exc
        finally:
            await client.aclose()

    run(check())


def _start_local_stack(settings: Settings, env: dict[str, str]) -> tuple[Any, dict[str, str], str]:
    from tickstock.dev.localstack import LocalStack

    data_dir = Path(settings.local_stack_dir).resolve()
    click.echo(f"No database or Redis configured: starting the local stack in {data_dir}")
    stack = LocalStack(data_dir)
    urls = stack.start()
    try:
        applied = run(migrate_database(urls.database_url, ("producer", "tickstock")))
        if applied:
            click.echo(f"applied {len(applied)} migration(s)")
        counts = run(seed_database(urls.database_url))
        if any(counts.values()):
            click.echo("seeded demo data")
        password = run(_ensure_demo_user(urls.database_url, settings, data_dir))
    except BaseException:
        stack.stop()
        raise
    env = dict(env)
    env["TICKSTOCK_DATABASE_URL"] = urls.database_url
    env["TICKSTOCK_REDIS_URL"] = urls.redis_url
    return stack, env, _login_line(settings, password, data_dir)


def _login_line(settings: Settings, password: str | None, data_dir: Path) -> str:
    """How the ready line says to sign in: with the saved password only while it works."""
    if password is None:
        return (
            f"as {settings.demo_user} with the password you set on the Account page (forgotten:"
            f" tickstock users set-password {settings.demo_user})"
        )
    return f"as {settings.demo_user} / {password} (saved in {data_dir / DEMO_LOGIN_FILE})"


def _demo_rule() -> RuleFields:
    from tickstock.queries.alerts import RuleFields

    return RuleFields(
        name="Strong patterns on my watchlist",
        symbols="watchlist",
        patterns=[],
        tiers=[],
        min_confidence=0.95,
        indicator=None,
        cooldown_seconds=900,
        enabled=True,
    )


DEMO_LOGIN_FILE = "demo-login.txt"


async def _ensure_demo_user(dsn: str, settings: Settings, data_dir: Path) -> str | None:
    """Create the demo login on the first start; the password that signs it in, or None.

    Only the first start sets the password (``TICKSTOCK_DEMO_PASSWORD``, else a random one,
    saved in ``demo-login.txt``). Later starts change nothing on the account, so a password its
    owner changed on the Account page, and every session, survive a restart; the saved
    password is returned only while it still signs in (a stale file is removed).
    """
    import secrets

    from tickstock.auth import ensure_user
    from tickstock.auth.passwords import verify_password
    from tickstock.queries.alerts import insert_rule
    from tickstock.queries.user_settings import insert_first_watchlist
    from tickstock.queries.users import select_password_hash_by_name
    from tickstock.vocab import DEMO_SYMBOLS

    login_file = data_dir / DEMO_LOGIN_FILE
    saved = None
    if login_file.exists():
        saved = login_file.read_text().split("\n", 1)[0].split(" ", 1)[-1].strip() or None
    password: str | None
    conn = await connect(dsn)
    try:
        found = await select_password_hash_by_name(conn, settings.demo_user)
        if found is None:
            password = settings.demo_password or saved or secrets.token_urlsafe(9)
            user = await ensure_user(conn, settings.demo_user, password, role="admin")
        else:
            user, password_hash = found
            candidate = saved or settings.demo_password or None
            ok = candidate is not None and await verify_password(password_hash, candidate)
            password = candidate if ok else None
        # The first screen is alive: the demo login starts out watching the demo producer's
        # symbols (a watchlist the user has since changed is kept), with one alert rule on them,
        # so the bell and its toasts show what alerts are from the first minute.
        if await insert_first_watchlist(conn, user.id, DEMO_SYMBOLS):
            await insert_rule(conn, user.id, _demo_rule(), settings.alert_max_rules_per_user)
    finally:
        await conn.close()
    if password is None:
        login_file.unlink(missing_ok=True)  # it would show a password that no longer works
        return None
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
