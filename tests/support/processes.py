"""Child processes and private servers for tests that stop, kill or restart them.

Fixtures (a pytest plugin loaded by ``tests/conftest.py``):

- ``private_postgres``: a throwaway PostgreSQL cluster (``PrivatePostgres``) that a test may stop.
- ``private_redis``: a private redis-server (``RedisServer``) that a test may stop.
- ``start_node``: factory, ``node = await start_node(env, workers=1)``: a hypercorn process serving
  ``tickstock.asgi:app`` (``Node``), healthy when returned; every node is stopped afterwards.
  ``nofile=256`` runs it under that open-file limit (``ulimit -n``).
- ``sentinel_setup``: a Redis master, its replica and one sentinel (``SentinelSetup``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import resource
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from tests.support.env import ROOT, free_port, tickstock_env
from tests.support.realtime import RedisServer

NODE_SECRET_KEY = "fault-test-secret-key-" + "y" * 32


async def get_json(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    async with session.get(url, headers=headers) as response:
        body = await response.json(content_type=None) if await response.read() else None
        return response.status, body


async def wait_until(
    check: Callable[[], Awaitable[bool]], within: float, what: str, step: float = 0.05
) -> float:
    """Poll ``check`` until it is true; returns the seconds it took."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > within:
            pytest.fail(f"not within {within:.0f}s: {what}")
        await asyncio.sleep(step)
    return time.monotonic() - started


async def wait_while_progressing(
    check: Callable[[], Awaitable[bool]],
    progress: Callable[[], object],
    what: str,
    *,
    stall: float = 20.0,
    step: float = 0.05,
) -> float:
    """Poll ``check`` until it is true, failing only when ``progress()`` stopped changing for
    ``stall`` seconds: a loaded machine may be slow, but a stuck system stops moving. Returns
    the seconds it took."""
    started = moved = time.monotonic()
    seen = progress()
    while not await check():
        now = time.monotonic()
        current = progress()
        if current != seen:
            seen, moved = current, now
        elif now - moved > stall:
            pytest.fail(f"no progress for {stall:.0f}s (at {seen!r}): {what}")
        await asyncio.sleep(step)
    return time.monotonic() - started


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


async def run_command(*args: str, what: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{what} failed ({process.returncode}): {output.decode()[-2000:]}")


# --------------------------------------------------------------------------- private PostgreSQL


def _postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: p.parts[-3])
    if found:
        return found[-1].parent
    from tickstock.dev.localstack import _find_pg_bin_dir

    return _find_pg_bin_dir()


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on a free loopback port (its own data dir, own process).

    As root, it runs as the ``postgres`` OS user (``nobody`` when that user does not exist).
    """

    def __init__(self) -> None:
        self.bin = _postgres_bin()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="tickstock-fault-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.run_as: str | None = None
        if os.geteuid() == 0:
            self.run_as = "postgres"
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                self.run_as = "nobody"
            entry = pwd.getpwnam(self.run_as)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.root.chmod(0o700)

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _cmd(self, tool: str, *args: str) -> list[str]:
        command = [str(self.bin / tool), *args]
        return ["runuser", "-u", self.run_as, "--", *command] if self.run_as else command

    async def init(self) -> None:
        await run_command(
            *self._cmd(
                "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync"
            ),
            what="initdb",
        )

    async def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        await run_command(
            *self._cmd("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options),
            "-w",
            "start",
            what="pg_ctl start",
        )

    async def stop(self, mode: str = "immediate") -> None:
        await run_command(
            *self._cmd("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop"),
            what="pg_ctl stop",
        )

    async def destroy(self) -> None:
        with contextlib.suppress(RuntimeError):
            await self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(name="private_postgres")
async def _private_postgres() -> AsyncIterator[PrivatePostgres]:
    cluster = PrivatePostgres()
    try:
        await cluster.init()
        await cluster.start()
        yield cluster
    finally:
        await cluster.destroy()


@pytest.fixture(name="private_redis")
async def _private_redis() -> AsyncIterator[RedisServer]:
    server = RedisServer(free_port())
    await server.start()
    yield server
    await server.stop()


# --------------------------------------------------------------------------- hypercorn nodes


@dataclass
class Node:
    """A hypercorn process serving ``tickstock.asgi:app`` (its own process group)."""

    port: int
    process: asyncio.subprocess.Process
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL the whole node (master and workers), as a crashed machine would vanish."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)

    async def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.kill()
        await self.process.wait()
        # Workers of a killed master may linger a moment; the group is ours alone.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


def node_env(database_url: str, redis_url: str, key_prefix: str) -> dict[str, str]:
    """The environment of a node (``start_node``) on these stores."""
    env = tickstock_env(
        env="test",
        secret_key=NODE_SECRET_KEY,
        database_url=database_url,
        redis_url=redis_url,
        key_prefix=key_prefix,
        demo_producer="false",
        log_level="WARNING",
    )
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture(name="start_node")
async def _start_node(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Node]]]:
    """Factory: ``node = await start_node(env, workers=1)``, healthy when returned."""
    nodes: list[Node] = []

    async def start(env: dict[str, str], *, workers: int = 1, nofile: int | None = None) -> Node:
        port = free_port()

        def limits() -> None:
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        log = tmp_path / f"node-{port}.log"
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "hypercorn",
                "--config",  # as `tickstock serve` without hypercorn.toml (no Server banner)
                "python:tickstock.cli.serve.HypercornDefaults",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--worker-class",
                "uvloop",
                "--graceful-timeout",
                "2",
                "tickstock.asgi:app",
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=limits,
            )
        node = Node(port, process, log)
        nodes.append(node)
        async with aiohttp.ClientSession() as http:

            async def healthy() -> bool:
                if process.returncode is not None:
                    pytest.fail(f"node exited ({process.returncode}):\n{tail(log)}")
                try:
                    _, body = await get_json(http, node.url + "/health")
                except aiohttp.ClientError:
                    return False
                return bool(body["status"] == "healthy")

            await wait_until(healthy, 30, f"node {port} healthy\n{tail(log)}", step=0.1)
        return node

    yield start
    await asyncio.gather(*(node.stop() for node in nodes))


# --------------------------------------------------------------------------- Redis Sentinel


@dataclass
class SentinelSetup:
    master: RedisServer
    replica: RedisServer
    sentinel_port: int
    sentinel: asyncio.subprocess.Process | None = None

    @property
    def sentinels(self) -> list[str]:
        return [f"127.0.0.1:{self.sentinel_port}"]


async def redis_process(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        RedisServer.executable(),
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


@pytest.fixture(name="sentinel_setup")
async def _sentinel_setup(tmp_path: Path) -> AsyncIterator[SentinelSetup]:
    """A master, its replica and one sentinel (quorum 1), each on a free loopback port."""
    master = RedisServer(free_port())
    replica = RedisServer(free_port())
    setup = SentinelSetup(master, replica, free_port())
    replica_client = aioredis.Redis.from_url(replica.url, decode_responses=True)
    sentinel_client = aioredis.Redis(port=setup.sentinel_port, decode_responses=True)
    try:
        await master.start()
        replica.process = await redis_process(
            "--port", str(replica.port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
            "no", "--replicaof", "127.0.0.1", str(master.port),
        )  # fmt: skip

        async def replica_in_sync() -> bool:
            with contextlib.suppress(aioredis.ConnectionError, OSError):
                info = await replica_client.info("replication")
                return bool(info.get("master_link_status") == "up")
            return False

        await wait_until(replica_in_sync, 15, "replica in sync")
        config = tmp_path / "sentinel.conf"
        config.write_text(
            f"port {setup.sentinel_port}\nbind 127.0.0.1\ndaemonize no\n"
            f"dir {tmp_path}\n"
            f"sentinel monitor mymaster 127.0.0.1 {master.port} 1\n"
            "sentinel down-after-milliseconds mymaster 1000\n"
            "sentinel failover-timeout mymaster 3000\n"
            "sentinel parallel-syncs mymaster 1\n"
        )
        sentinel_binary = shutil.which("redis-sentinel")
        if sentinel_binary:
            setup.sentinel = await asyncio.create_subprocess_exec(
                sentinel_binary,
                str(config),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        else:  # the same binary in sentinel mode
            setup.sentinel = await redis_process(str(config), "--sentinel")

        async def sentinel_knows_replica() -> bool:
            with contextlib.suppress(aioredis.ConnectionError, OSError):
                replicas: Any = await sentinel_client.sentinel_slaves("mymaster")
                return any(int(entry["port"]) == replica.port for entry in replicas)
            return False

        await wait_until(sentinel_knows_replica, 20, "sentinel discovers the replica")
        yield setup
    finally:
        await replica_client.aclose()
        await sentinel_client.aclose()
        if setup.sentinel is not None and setup.sentinel.returncode is None:
            setup.sentinel.kill()
            await setup.sentinel.wait()
        await replica.stop()
        await master.stop()
