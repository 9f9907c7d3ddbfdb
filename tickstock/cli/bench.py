"""``tickstock bench``: load tests against a running tickstock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from tickstock.cli.common import run


@click.group()
def bench() -> None:
    """Load tests against a running tickstock (figures and commands: docs/PERFORMANCE.md)."""


F = TypeVar("F", bound=Callable[..., Any])

_url_option = click.option(
    "--url", required=True, help="Base URL of the served app, e.g. http://127.0.0.1:8000"
)
_json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object as the last line."
)


def _load_options(duration: float, processes: int, server_pid_help: str) -> Callable[[F], F]:
    """The options of a benchmark that publishes events on Redis against served app(s):
    --rate, --duration, --warmup, --redis-url, --server-pid (as ``server_pids``), --processes."""
    options = [
        click.option(
            "--rate",
            type=click.FloatRange(min=0.1),
            default=200.0,
            show_default=True,
            help="Events per second.",
        ),
        click.option(
            "--duration",
            type=click.FloatRange(min=0.5),
            default=duration,
            show_default=True,
            help="Measured seconds.",
        ),
        click.option("--warmup", type=click.FloatRange(min=0), default=3.0, show_default=True),
        click.option(
            "--redis-url",
            default="redis://127.0.0.1:6379/0",
            show_default=True,
            envvar="TICKSTOCK_REDIS_URL",
        ),
        click.option("--server-pid", "server_pids", type=int, multiple=True, help=server_pid_help),
        click.option(
            "--processes",
            type=click.IntRange(1),
            default=processes,
            show_default=True,
            help="Client worker processes.",
        ),
    ]

    def apply(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return apply


def _print_result(result: dict[str, Any], as_json: bool, report: str) -> None:
    import json

    click.echo(report)
    if as_json:
        click.echo(json.dumps(result))


@bench.command("fanout")
@_url_option
@click.option("--user", default="", help="Account to log in with (or use --token).")
@click.option("--password", default="", envvar="TICKSTOCK_BENCH_PASSWORD", help="Its password.")
@click.option(
    "--token", default="", envvar="TICKSTOCK_BENCH_TOKEN", help="API token instead of a login."
)
@click.option("--clients", type=click.IntRange(1), default=100, show_default=True)
@click.option("--symbols-per-client", type=click.IntRange(1), default=5, show_default=True)
@click.option("--universe", type=click.IntRange(1), default=500, show_default=True)
@_load_options(duration=20.0, processes=2, server_pid_help="Server process id(s) for CPU and RSS.")
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
@click.option(
    "--compression",
    type=click.Choice(["none", "offer"]),
    default="none",
    show_default=True,
    help="'offer': clients offer permessage-deflate as browsers do.",
)
@click.option(
    "--burst",
    type=click.IntRange(0, 100_000),
    default=0,
    show_default=True,
    help="After the steady phase, publish this many events within one second (a bar closing "
    "across the universe) and time their delivery.",
)
@_json_option
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
    compression: str,
    burst: int,
    as_json: bool,
) -> None:
    """N sockets on K symbols of U; events on Redis at R/s: loss, order, latency, server cost."""
    from tickstock.bench.common import progress_printer
    from tickstock.bench.fanout import (
        FanoutConfig,
        format_report,
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
        compression_offer=compression == "offer",
        burst=burst,
    )
    result = run(run_fanout_bench(config, progress_printer))
    _print_result(result, as_json, format_report(result))


@bench.command("steps")
@click.argument("profile", type=click.File("r"))
@click.option(
    "--cpu-per-event",
    type=float,
    default=None,
    help="The benchmark's µs of server CPU per event in the same run (scales the shares).",
)
def bench_steps(profile: Any, cpu_per_event: float | None) -> None:
    """Where a node's CPU goes per event: a py-spy raw profile (--gil) attributed to steps."""
    from tickstock.bench.steps import attribute, format_table

    click.echo(format_table(attribute(profile), cpu_per_event))


@bench.command("rest")
@click.option("--url", required=True, help="Base URL of the served app.")
@click.option("--path", default="/api/patterns/AAPL", show_default=True, help="Endpoint to load.")
@click.option("--user", default="")
@click.option("--password", default="", envvar="TICKSTOCK_BENCH_PASSWORD")
@click.option("--token", default="", envvar="TICKSTOCK_BENCH_TOKEN")
@click.option("--concurrency", "-c", type=click.IntRange(1), default=50, show_default=True)
@click.option("--warmup", type=click.FloatRange(min=0), default=2.0, show_default=True)
@click.option(
    "--server-pid",
    type=int,
    default=None,
    help="Server pid (a master with its workers) for CPU per request.",
)
@click.option("--duration", type=click.FloatRange(min=0.5), default=10.0, show_default=True)
@_json_option
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
        {"Authorization": f"Bearer {token}"} if token else run(_login_cookie(url, user, password))
    )
    result = run(
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


@bench.command("churn")
@click.option("--user", required=True, help="Account the clients sign in as.")
@click.option("--password", required=True, envvar="TICKSTOCK_BENCH_PASSWORD")
@click.option("--sockets", type=click.IntRange(1), default=500, show_default=True)
@click.option("--symbols", type=click.IntRange(0, 200), default=200, show_default=True)
@click.option("--cycles", type=click.IntRange(1), default=10, show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8809, show_default=True)
def bench_churn(
    user: str, password: str, sockets: int, symbols: int, cycles: int, port: int
) -> None:
    """Serve the app here; connect, subscribe and close N sockets, CYCLES times; report RSS."""
    from tickstock.bench.churn import ChurnConfig, run_churn

    config = ChurnConfig(user, password, sockets, symbols, cycles, port)
    run(run_churn(config, click.echo))


@bench.command("alerts")
@_url_option
@click.option(
    "--database-url",
    required=True,
    envvar="TICKSTOCK_DATABASE_URL",
    help="The app's database: the bench accounts, rules and tokens are written there.",
)
@click.option(
    "--key-prefix",
    default="tickstock",
    show_default=True,
    envvar="TICKSTOCK_KEY_PREFIX",
    help="The app's Redis key prefix (rule changes are announced under it).",
)
@click.option(
    "--pattern-channel",
    default="tickstock.events.patterns",
    show_default=True,
    help="Channel the pattern messages are published on.",
)
@click.option(
    "--indicator-channel",
    default="tickstock.events.indicators",
    show_default=True,
    help="Channel the indicator messages are published on.",
)
@click.option("--users", type=click.IntRange(1), default=1000, show_default=True)
@click.option("--rules-per-user", type=click.IntRange(2, 100), default=10, show_default=True)
@click.option("--universe", type=click.IntRange(50), default=3000, show_default=True)
@click.option(
    "--sockets",
    type=click.IntRange(0),
    default=200,
    show_default=True,
    help="Users with a connected socket.",
)
@click.option("--sockets-per-user", type=click.IntRange(1, 10), default=1, show_default=True)
@click.option(
    "--indicator-share",
    type=click.FloatRange(0, 1),
    default=0.1,
    show_default=True,
    help="Fraction of the events that are indicator updates.",
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0.5),
    default=3.0,
    show_default=True,
    help="Seconds to wait for the last alerts before accounting.",
)
@click.option(
    "--attack-rules",
    type=click.IntRange(0, 10_000),
    default=0,
    show_default=True,
    help='One more user (no socket) with this many rules {"symbols": "*", "min_confidence": 0,'
    ' "cooldown_seconds": 0}: what the others\' alerts cost while one user floods.',
)
@_load_options(
    duration=30.0, processes=1, server_pid_help="Server process id(s) for CPU per event."
)
@click.option("--keep", is_flag=True, help="Keep the bench accounts, rules and alerts.")
@_json_option
def bench_alerts(
    url: str,
    database_url: str,
    redis_url: str,
    key_prefix: str,
    pattern_channel: str,
    indicator_channel: str,
    users: int,
    rules_per_user: int,
    universe: int,
    sockets: int,
    sockets_per_user: int,
    rate: float,
    indicator_share: float,
    duration: float,
    warmup: float,
    grace: float,
    attack_rules: int,
    server_pids: tuple[int, ...],
    processes: int,
    keep: bool,
    as_json: bool,
) -> None:
    """U users' rules against events at R/s: matching cost, alerts/s, latency, loss, duplicates."""
    from tickstock.bench.alerts import (
        AlertsConfig,
        format_report,
        run_alerts_bench,
    )
    from tickstock.bench.common import progress_printer

    config = AlertsConfig(
        url=url,
        database_url=database_url,
        redis_url=redis_url,
        key_prefix=key_prefix,
        pattern_channel=pattern_channel,
        indicator_channel=indicator_channel,
        users=users,
        rules_per_user=rules_per_user,
        universe=universe,
        sockets=sockets,
        sockets_per_user=sockets_per_user,
        rate=rate,
        indicator_share=indicator_share,
        duration=duration,
        warmup=warmup,
        grace=grace,
        attack_rules=attack_rules,
        server_pids=list(server_pids),
        processes=processes,
        keep=keep,
    )
    result = run(run_alerts_bench(config, progress_printer))
    _print_result(result, as_json, format_report(result))
