"""End-to-end tests of the local PostgreSQL + Redis stack (real servers, marked slow)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import psutil
import pytest
import redis.asyncio as aioredis

from tickstock.dev.localstack import LocalStack, LocalStackError, LocalStackURLs

pytestmark = pytest.mark.slow


def _stack_processes(data_dir: Path) -> list[psutil.Process]:
    """Live processes tied to data_dir by command line or working directory."""
    root = str(data_dir.resolve())
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            cmdline = " ".join(proc.cmdline())
            cwd = proc.cwd()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if root in cmdline or cwd == root or cwd.startswith(root + os.sep):
            found.append(proc)
    return found


def _assert_clean(data_dir: Path) -> None:
    assert _stack_processes(data_dir) == []
    zombies = [
        c for c in psutil.Process().children(recursive=True) if c.status() == psutil.STATUS_ZOMBIE
    ]
    assert zombies == []


def _wait_no_processes(data_dir: Path, timeout: float = 15.0) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while (left := _stack_processes(data_dir)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


async def _exercise(urls: LocalStackURLs, *, first_run: bool) -> None:
    conn = await asyncpg.connect(urls.database_url)
    try:
        assert await conn.fetchval("select 1") == 1
        assert await conn.fetchval("select current_database()") == "tickstock"
        if first_run:
            await conn.execute("create table survivor (id int primary key, note text)")
            await conn.execute("insert into survivor values (1, 'still here')")
        else:
            assert await conn.fetchval("select note from survivor where id = 1") == "still here"
    finally:
        await conn.close()

    client = aioredis.from_url(urls.redis_url)
    try:
        assert await client.ping() is True
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe("ticks")
            msg = await pubsub.get_message(timeout=5.0)
            assert msg is not None and msg["type"] == "subscribe"
            assert await client.publish("ticks", b"AAPL:double-top") == 1
            msg = None
            deadline = time.monotonic() + 5.0
            while msg is None and time.monotonic() < deadline:
                msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            assert msg is not None and msg["data"] == b"AAPL:double-top"
        finally:
            await pubsub.aclose()
    finally:
        await client.aclose()


async def test_start_stop_restart_keeps_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "stack"
    stack = LocalStack(data_dir)
    try:
        urls = stack.start(timeout=60)
        assert stack.start() == urls  # idempotent
        assert ":5432" not in urls.database_url and "6379" not in urls.redis_url
        await _exercise(urls, first_run=True)
    finally:
        stack.stop()
    stack.stop()  # safe twice
    _assert_clean(data_dir)

    with LocalStack(data_dir) as again:
        assert again.urls is not None
        await _exercise(again.urls, first_run=False)
    again.stop()
    _assert_clean(data_dir)


_CHILD = """
import sys, threading, time
from pathlib import Path
from tickstock.dev.localstack import LocalStack
stack = LocalStack(Path(sys.argv[1]))
if sys.argv[2] == "thread":  # no PR_SET_PDEATHSIG off the main thread: servers outlive us
    t = threading.Thread(target=stack.start)
    t.start()
    t.join()
else:
    stack.start()
print(*stack.pids, flush=True)
time.sleep(120)
"""


def _start_in_child(data_dir: Path, mode: str) -> tuple[subprocess.Popen[str], list[int]]:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(data_dir), mode],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    child.stdout.close()
    assert line.strip(), "child failed to start the stack"
    return child, [int(p) for p in line.split()]


def test_parent_sigkill_and_orphan_cleanup(tmp_path: Path) -> None:
    data_dir = tmp_path / "stack"

    # Started on the main thread: PR_SET_PDEATHSIG stops the servers when the parent is killed.
    child, pids = _start_in_child(data_dir, "main")
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert _wait_no_processes(data_dir) == []
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids)

    # Started off the main thread: the servers survive the SIGKILL as orphans...
    child, pids = _start_in_child(data_dir, "thread")
    try:
        with pytest.raises(LocalStackError, match="already in use"):
            LocalStack(data_dir).start()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert _stack_processes(data_dir), "expected orphaned servers"

    # ...and the next start() shuts them down and starts its own servers.
    stack = LocalStack(data_dir)
    try:
        urls = stack.start()
        assert set(stack.pids).isdisjoint(pids)
        asyncio.run(_exercise(urls, first_run=True))
    finally:
        stack.stop()
    _assert_clean(data_dir)


def test_startup_failure_reports_log_and_cleans_up(tmp_path: Path) -> None:
    data_dir = tmp_path / "stack"
    with LocalStack(data_dir):
        pass
    conf = data_dir / "pg" / "postgresql.conf"
    original = conf.read_bytes()
    conf.write_bytes(original + b"\nshared_buffers = 'not a size'\n")

    stack = LocalStack(data_dir)
    with pytest.raises(LocalStackError, match="shared_buffers") as err:
        stack.start(timeout=30)
    assert "postgres exited" in str(err.value)
    _assert_clean(data_dir)

    conf.write_bytes(original)
    with LocalStack(data_dir) as fixed:
        assert fixed.urls is not None
    _assert_clean(data_dir)
