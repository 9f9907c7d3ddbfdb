"""``tickstock demo-producer``: realistic producer messages on Redis, for development."""

from __future__ import annotations

import asyncio
import signal

import click

from tickstock.cli.common import redact, run


@click.command("demo-producer")
@click.option(
    "--redis-url", envvar="TICKSTOCK_REDIS_URL", required=True, help="Redis to publish on."
)
@click.option(
    "--rate", type=float, default=2.0, show_default=True, help="Pattern events per second."
)
@click.option("--symbols", default="", help="Comma-separated symbols (default: a demo universe).")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
@click.option(
    "--database-url",
    envvar="TICKSTOCK_DATABASE_URL",
    default="",
    help="Producer database: store every detection and indicator before publishing it.",
)
@click.option(
    "--job-pace",
    envvar="TICKSTOCK_DEMO_JOB_PACE",
    type=click.FloatRange(0, 60),
    default=0.5,
    show_default=True,
    help="Seconds spent on each symbol of a backtest or data load.",
)
@click.option(
    "--channel-prefix",
    default="",
    help="Publish on the producer's channels with this prefix (e.g. `staging:`), to feed "
    "tickstock nodes whose TICKSTOCK_INGEST_CHANNELS carry the same prefix.",
)
def demo_producer(
    redis_url: str,
    rate: float,
    symbols: str,
    duration: float | None,
    database_url: str,
    job_pace: float,
    channel_prefix: str,
) -> None:
    """Publish realistic pattern, indicator, alert and health events on the producer channels.

    With a database (``--database-url`` or TICKSTOCK_DATABASE_URL) every detection is first
    written to its tier's table, as the real producer does, so history and REST show it, and the
    jobs asked for on the job channels (backtests, data loads; SPEC §13) run over those tables.
    """
    from tickstock.dev.demo_producer import DEFAULT_SYMBOLS, DemoChannels, run_demo_producer

    chosen = [s.strip().upper() for s in symbols.split(",") if s.strip()] or list(DEFAULT_SYMBOLS)
    if rate <= 0:
        raise click.BadParameter("must be positive", param_hint="--rate")
    channels = DemoChannels().prefixed(channel_prefix)

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
            raise click.ClickException(f"cannot reach Redis at {redact(redis_url)}: {exc}") from exc
        store = None
        if database_url:
            from tickstock.dev.demo_store import DemoStore

            try:
                store = await DemoStore.open(database_url)
            except Exception as exc:
                await client.aclose()
                raise click.ClickException(
                    f"cannot reach the database at {redact(database_url)}: {exc}"
                ) from exc
        from tickstock.dev.demo_jobs import run_job_runner

        jobs = asyncio.create_task(
            run_job_runner(
                client, store.pool if store is not None else None, stop=stop, pace=job_pace
            )
        )
        try:
            return await run_demo_producer(
                client,
                symbols=chosen,
                rate=rate,
                duration=duration,
                stop=stop,
                store=store,
                channels=channels,
            )
        finally:
            stop.set()
            await jobs
            await client.aclose()
            if store is not None:
                await store.close()

    sent = run(go())
    click.echo(f"published {sent} message(s)")
