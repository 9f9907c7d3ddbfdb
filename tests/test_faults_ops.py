"""Operations under faults, against real servers on loopback.

- PostgreSQL stopped (immediate mode) under authenticated REST load: quick 503s, ``/health``
  unhealthy, recovery without restarting tickstock, no leaked connections. The cluster is a
  private one started here: the machine's shared PostgreSQL is never stopped.
- Redis stopped: authenticated REST keeps answering 200 (the socket side is covered by
  ``tests/realtime/test_faults.py``).
- One of two nodes (hypercorn subprocesses) SIGKILLed mid-stream: the client resumes on the other
  node with its last offset and gets every event exactly once, in order, across the seam.
- Redis Sentinel failover (private master, replica and sentinel): the service follows the new
  master and events flow again; the replicated history survives.
- Oversized (1 MiB, 10 MiB) and 10,000 malformed ingest messages: rejected and counted, memory
  bounded, valid events after them still delivered.
- ``hypercorn --workers 2``: both workers consume, each event reaches a client once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg
import orjson
import psutil
import pytest
import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel

from tests.support.auth import new_api_token
from tests.support.processes import (
    Node,
    PrivatePostgres,
    SentinelSetup,
    get_json,
    node_env,
    wait_until,
    wait_while_progressing,
)
from tests.support.realtime import (
    PATTERNS,
    Producer,
    Publisher,
    Recorder,
    RedisServer,
    pattern,
    unique_symbol,
)

pytestmark = [pytest.mark.fault, pytest.mark.ops]


# --------------------------------------------------------------------------- helpers


def _rest_path(app: Any) -> str:
    """An authenticated endpoint that reads the database on every request."""
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    return "/api/patterns/AAPL" if "/api/patterns/<symbol>" in rules else "/api/auth/me"


# --------------------------------------------------------------------------- PostgreSQL outage


@dataclass
class Sample:
    started: float
    elapsed: float
    status: int
    code: str | None  # the error envelope's code


@dataclass
class RestLoad:
    """``workers`` clients sending the same authenticated GET back to back."""

    url: str
    headers: dict[str, str]
    workers: int = 16
    samples: list[Sample] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.workers),
            timeout=aiohttp.ClientTimeout(total=10),
        )
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(self.workers)]

    async def _worker(self) -> None:
        assert self._session is not None
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                status, body = await get_json(self._session, self.url, self.headers)
                code = None
                if isinstance(body, dict) and body.get("status") == "error" and body["message"]:
                    code = body.get("code")
            except (aiohttp.ClientError, TimeoutError) as exc:
                status, code = 0, type(exc).__name__
            self.samples.append(Sample(started, time.monotonic() - started, status, code))

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)
        if self._session is not None:
            await self._session.close()

    def between(self, start: float, end: float) -> list[Sample]:
        return [s for s in self.samples if start <= s.started and s.started + s.elapsed <= end]


async def test_postgres_stopped_under_rest_load_answers_503_quickly_and_recovers(
    private_postgres: PrivatePostgres, serve_app: Any
) -> None:
    from tickstock.db.migrate import migrate
    from tickstock.dev.seed import seed

    admin = await asyncpg.connect(private_postgres.dsn())
    await admin.execute("CREATE DATABASE tickstock_fault")
    await admin.close()
    dsn = private_postgres.dsn("tickstock_fault")
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        await seed(conn, symbols=20, days=5)
    finally:
        await conn.close()
    token = await new_api_token(dsn, "ops")
    pool_max = 4
    served = await serve_app(database_url=dsn, db_pool_min=2, db_pool_max=pool_max)
    path = _rest_path(served.app)
    load = RestLoad(served.url + path, {"Authorization": f"Bearer {token}"})
    http = aiohttp.ClientSession()
    try:
        await load.start()
        await asyncio.sleep(1.0)
        t_stop = time.monotonic()
        await private_postgres.stop("immediate")
        t_stopped = time.monotonic()
        await asyncio.sleep(3.0)
        status, body = await get_json(http, served.url + "/health")
        assert status == 503 and body["status"] == "unhealthy", body
        assert body["components"]["database"]["status"] == "down"
        t_restart = time.monotonic()
        await private_postgres.start()

        async def answers_200() -> bool:
            status, _ = await get_json(http, served.url + path, load.headers)
            return status == 200

        recovery = await wait_until(answers_200, 15, "REST answers 200 after restart")
        t_recovered = time.monotonic()
        await asyncio.sleep(1.5)
    finally:
        await load.stop()
        await http.close()

    before = load.between(0, t_stop)
    assert before and {s.status for s in before} == {200}
    outage = [s for s in load.samples if t_stop <= s.started + s.elapsed <= t_restart]
    assert outage, "no request completed during the outage"
    assert {s.status for s in outage} <= {200, 503}, {(s.status, s.code) for s in outage}
    slowest = max(s.elapsed for s in outage)
    assert slowest < 3.0, f"a request took {slowest:.2f}s during the outage"
    # Token checks are cached for at most a second; after that every request needs the database.
    settled = [s for s in outage if s.started >= t_stopped + 1.5]
    assert settled and {(s.status, s.code) for s in settled} == {(503, "database_unavailable")}
    after = load.between(t_recovered, float("inf"))
    assert after and {s.status for s in after} == {200}

    conn = await asyncpg.connect(private_postgres.dsn())
    try:
        backends = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = 'tickstock_fault'"
        )
    finally:
        await conn.close()
    # Two pools per app (primary and read-only reads), each bounded by the pool max: no leak.
    assert backends <= 2 * pool_max
    print(
        f"\npostgres outage: {len(outage)} requests during it, slowest {slowest * 1000:.0f} ms;"
        f" recovered {recovery:.2f}s after restart; {backends} backend(s) afterwards"
    )


# --------------------------------------------------------------------------- Redis outage, REST


async def test_rest_keeps_answering_while_redis_is_down(
    private_redis: RedisServer, serve_app: Any, admin_headers: dict[str, str]
) -> None:
    served = await serve_app(redis_url=private_redis.url)
    path = _rest_path(served.app)
    async with aiohttp.ClientSession(headers=admin_headers) as http:
        await private_redis.stop()

        async def degraded() -> bool:
            _, body = await get_json(http, served.url + "/health")
            return bool(body["status"] == "degraded")

        await wait_until(degraded, 15, "/health reports degraded")
        started = time.monotonic()
        results = await asyncio.gather(*(get_json(http, served.url + path) for _ in range(20)))
        elapsed = time.monotonic() - started
        assert [status for status, _ in results] == [200] * 20, results[0]
        assert elapsed < 3.0
        status, body = await get_json(http, served.url + "/api/streaming/status")
        assert status == 200 and body["data"]["ingest"]["connected"] is False
        status, body = await get_json(http, served.url + "/health")
        assert status == 200 and body["components"]["redis"]["status"] == "down"


# --------------------------------------------------------------------------- hypercorn nodes


async def test_node_killed_mid_stream_client_resumes_on_other_node_exactly_once(
    start_node: Callable[..., Awaitable[Node]],
    database_url: str,
    redis_url: str,
    key_prefix: str,
) -> None:
    env = node_env(database_url, redis_url, key_prefix)
    node_a, node_b = await asyncio.gather(start_node(env), start_node(env))
    token = await new_api_token(database_url, "ops")
    symbol = unique_symbol()
    first, second = Recorder(), Recorder()
    publisher = Publisher(redis_url)
    producer = Producer(publisher.client.publish, symbol, "Seam")
    try:
        await first.connect(node_a.url, auth={"token": token})
        await first.call("subscribe_patterns", {"symbol": symbol})
        producer.start()
        await first.wait_for("pattern_detected", 40, within=10)
        node_a.kill()
        t_kill = time.monotonic()
        async with asyncio.timeout(5):
            await first.disconnected.wait()
        before = first.patterns()
        last_offset = before[-1]["offset"]
        # What a load balancer does: the next connection goes to a live node (after a moment in
        # which events keep coming, so that there is something to replay: longer than the ingest
        # lease, in case node A was the node storing them).
        await asyncio.sleep(2.0)
        await second.connect(node_b.url, auth={"token": token})
        ack = await second.call(
            "subscribe_patterns", {"symbol": symbol, "since": {symbol: last_offset}}
        )
        resumed = time.monotonic() - t_kill
        assert ack["recovered"] == {symbol: True}, ack
        await asyncio.sleep(1.0)
        await producer.stop()
        published = producer.names()
        missing = len(published) - len(before)
        await second.wait_for("pattern_detected", missing, within=10)
        await second.settle(0.3)
        after = second.patterns()
    finally:
        await producer.stop()
        await publisher.close()
        await first.close()
        await second.close()

    seen = [event["pattern"] for event in before + after]
    assert seen == published, "events lost, duplicated or reordered across the seam"
    offsets = [event["offset"] for event in before + after]
    keys = [tuple(int(part) for part in offset.split("-")) for offset in offsets]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert ack["replayed"] >= 1, "the kill should leave events to replay"
    print(
        f"\nnode kill: {len(published)} events, {len(before)} on node A, {ack['replayed']} replayed"
        f" and {len(after) - ack['replayed']} live on node B; resumed {resumed:.2f}s after kill"
    )


async def test_the_ingesting_node_killed_the_other_stores_what_it_kept_and_nothing_is_lost(
    start_node: Callable[..., Awaitable[Node]],
    database_url: str,
    redis_url: str,
    key_prefix: str,
) -> None:
    """One node stores the producer's messages (the ingest lease); the other keeps the last
    seconds of them. Killing the ingesting node loses nothing: the other takes the lease when it
    lapses and stores what it kept, and its client sees every event once, in order."""
    key_prefix = f"{key_prefix}:{unique_symbol()}"  # only these two nodes compete for the lease
    env = node_env(database_url, redis_url, key_prefix)
    nodes = await asyncio.gather(start_node(env), start_node(env))
    token = await new_api_token(database_url, "ops")
    symbol = unique_symbol()
    client = Recorder()
    publisher = Publisher(redis_url)
    producer = Producer(publisher.client.publish, symbol, "Lease")
    try:
        async with asyncio.timeout(10):
            while not (leases := await publisher.client.keys(f"{key_prefix}:ingest:leader:*")):  # noqa: ASYNC110
                await asyncio.sleep(0.1)
            while not (holder := await publisher.client.get(leases[0])):  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        holder_pid = int(holder.decode().split(":")[-2])

        def runs(node: Node, pid: int) -> bool:
            tree = psutil.Process(node.process.pid)
            return pid in {tree.pid, *(child.pid for child in tree.children(recursive=True))}

        [leader] = [node for node in nodes if runs(node, holder_pid)]
        [other] = [node for node in nodes if node is not leader]
        await client.connect(other.url, auth={"token": token})
        await client.call("subscribe_patterns", {"symbol": symbol})
        producer.start()
        await client.wait_for("pattern_detected", 20, within=10)
        leader.kill()
        await asyncio.sleep(4.0)  # the lease lapses (1.5 s) while events keep coming
        await producer.stop()
        published = producer.names()
        await client.wait_for("pattern_detected", len(published), within=15)
        await client.settle(0.5)
    finally:
        await producer.stop()
        await publisher.close()
        await client.close()
    seen = [event["pattern"] for event in client.patterns()]
    assert seen == published, "events lost, duplicated or reordered across the lease hand-over"


async def test_two_hypercorn_workers_both_consume_and_deliver_each_event_once(
    start_node: Callable[..., Awaitable[Node]],
    database_url: str,
    key_prefix: str,
    private_redis: RedisServer,
) -> None:
    env = node_env(database_url, private_redis.url, f"{key_prefix}:w2")
    node = await start_node(env, workers=2)
    redis = aioredis.Redis.from_url(private_redis.url)

    async def both_workers_subscribed() -> bool:
        counts: Any = await redis.pubsub_numsub(PATTERNS)
        return bool(counts[0][1] == 2)

    token = await new_api_token(database_url, "ops")
    symbol = unique_symbol()
    client = Recorder()
    try:
        await wait_until(both_workers_subscribed, 20, "both workers consume the channel")
        await client.connect(node.url, auth={"token": token})
        await client.call("subscribe_patterns", {"symbol": symbol})
        total = 200
        for index in range(total):
            receivers = await redis.publish(
                PATTERNS,
                orjson.dumps(
                    pattern(symbol, f"W{index:04d}", timestamp=time.time() - 3600 + index)
                ),
            )
            assert receivers == 2
        received = await client.wait_for("pattern_detected", total, within=15)
        await client.settle(0.5)
        # Patterns only: the session's alert rules (other tests' "*" rules) may add alerts.
        entries: Any = await redis.xrange(f"{key_prefix}:w2:fanout")
        stored = sum(1 for _, fields in entries if fields[b"t"] == b"pattern_detected")
    finally:
        await client.close()
        await redis.aclose()
    names = [message["data"]["pattern"] for message in received]
    assert names == [f"W{index:04d}" for index in range(total)]
    assert stored == total  # two ingesting workers, one stored event each


# --------------------------------------------------------------------------- Redis Sentinel


async def test_sentinel_failover_is_followed_and_events_flow_again(
    sentinel_setup: SentinelSetup,  # first: torn down after the app has stopped
    serve_app: Any,
    make_user: Any,
    make_token: Any,
    key_prefix: str,
) -> None:
    setup = sentinel_setup
    prefix = f"{key_prefix}:sentinel"
    served = await serve_app(
        redis_url="redis://127.0.0.1:1/0",  # only its db number is used with sentinels
        redis_sentinels=setup.sentinels,
        key_prefix=prefix,
    )
    token = await make_token(await make_user())
    symbol = unique_symbol()
    client = Recorder()
    # The producer follows the failover the same way the service does.
    sentinel = Sentinel([("127.0.0.1", setup.sentinel_port)], socket_timeout=1.0)
    producer_redis = sentinel.master_for("mymaster", socket_timeout=1.0)
    producer = Producer(producer_redis.publish, symbol, "Fail")
    replica = aioredis.Redis.from_url(setup.replica.url)
    http = aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"})
    try:
        await client.connect(served.url, auth={"token": token})
        await client.call("subscribe_patterns", {"symbol": symbol})
        producer.start()
        # Every wait below is on a condition, failing only when the system stops moving (a
        # loaded machine is slow, not stuck); the failover's own time is reported, not judged.
        delivered = lambda: len(client.patterns())  # noqa: E731

        async def received(count: int) -> bool:
            return delivered() >= count

        await wait_while_progressing(lambda: received(25), delivered, "first events delivered")
        await producer.stop()
        before = len(producer.published)
        await wait_while_progressing(lambda: received(before), delivered, "all of them delivered")
        history_key = f"{prefix}:history:patterns:{symbol}"

        async def replicated() -> bool:
            return bool(await replica.xlen(history_key) == before)

        await wait_while_progressing(
            replicated, lambda: 0, "history replicated to the replica", stall=30
        )

        producer.start()
        await asyncio.sleep(0.3)
        assert setup.master.process is not None
        setup.master.process.kill()
        t_kill = time.monotonic()

        def delivered_after_kill() -> list[str]:
            late = {name for name, _, at in producer.published if at > t_kill}
            return [p["pattern"] for p in client.patterns() if p["pattern"] in late]

        async def flowing_again() -> bool:
            return len(delivered_after_kill()) >= 10

        # Sentinel promotes the replica within seconds (down-after 1 s); until then nothing
        # moves, so this one waits on the promotion, and then on deliveries.
        async def promoted() -> bool:
            with contextlib.suppress(aioredis.ConnectionError, OSError):
                info = await replica.info("replication")
                return bool(info.get("role") == "master")
            return False

        await wait_while_progressing(promoted, lambda: 0, "the replica promoted", stall=60)
        await wait_while_progressing(
            flowing_again, delivered, "events flow after the failover", stall=60
        )
        failover = time.monotonic() - t_kill
        await producer.stop()
        received_names = {p["pattern"] for p in client.patterns()}
        ingested = [name for name, receivers, _ in producer.published if receivers > 0]

        async def all_ingested_delivered() -> bool:
            received = {p["pattern"] for p in client.patterns()}
            return received >= set(ingested)

        await wait_while_progressing(
            all_ingested_delivered, delivered, "every ingested event delivered", stall=30
        )

        async def healthy() -> bool:
            _, body = await get_json(http, served.url + "/health")
            return bool(body["status"] == "healthy")

        await wait_while_progressing(
            healthy, lambda: 0, "/health healthy on the new master", stall=30
        )
        status, body = await get_json(
            http, served.url + f"/api/streaming/history/{symbol}?limit=1000"
        )
        assert status == 200
        history = [item["data"]["pattern"] for item in body["data"]]
        manager_redis = aioredis.Redis(port=setup.replica.port)
        try:

            async def manager_listening() -> bool:
                counts: Any = await manager_redis.pubsub_numsub(f"{prefix}:sio")
                return bool(counts[0][1] >= 1)

            # python-socketio's manager retries with its own backoff (1, 2, 4 s...).
            await wait_while_progressing(
                manager_listening, lambda: 0, "Socket.IO manager on the new master", stall=60
            )
        finally:
            await manager_redis.aclose()
    finally:
        await producer.stop()
        await http.close()
        await client.close()
        await replica.aclose()
        await producer_redis.aclose()
        await sentinel.aclose()

    names = [p["pattern"] for p in client.patterns()]
    assert len(names) == len(set(names)), "duplicates after the failover"
    published = producer.names()
    assert names == [n for n in published if n in set(names)], "out of order"
    assert set(ingested) <= set(names)
    assert published[:before] == names[:before]
    # Written before the failover and replicated: the promoted replica still has it.
    assert history[:before] == published[:before]
    lost = len(published) - len(received_names)
    print(
        f"\nsentinel failover: events flowing again {failover:.2f}s after the master was killed;"
        f" {lost} event(s) published into the gap were lost (pub/sub),"
        f" {producer.failures} publish attempt(s) failed over"
    )


# --------------------------------------------------------------------------- hostile input


async def test_huge_and_malformed_ingest_messages_are_rejected_counted_and_bounded(
    private_redis: RedisServer, serve_app: Any, make_user: Any, make_token: Any
) -> None:
    served = await serve_app(redis_url=private_redis.url)
    # An admin: the ingest counters of /api/streaming/status are for operators.
    token = await make_token(await make_user("admin"))
    symbol = unique_symbol()
    client = Recorder()
    redis = aioredis.Redis.from_url(private_redis.url)
    process = psutil.Process()
    baseline = process.memory_info().rss
    peak = baseline
    sampling = True

    async def sample_rss() -> None:
        nonlocal peak
        while sampling:
            peak = max(peak, process.memory_info().rss)
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample_rss())
    started = time.monotonic()
    try:
        await client.connect(served.url, auth={"token": token})
        await client.call("subscribe_patterns", {"symbol": symbol})
        for size in (1 << 20, 10 << 20):
            big = orjson.dumps(pattern(symbol, "Huge", metadata={"pad": "x" * size}))
            assert await redis.publish(PATTERNS, big) == 1
            del big
        malformed = [
            *(f"not json {i} {{".encode() for i in range(4000)),
            *(orjson.dumps({"pattern": "NoSymbol", "n": i}) for i in range(3000)),
            *(orjson.dumps({"symbol": f"bad sym {i}", "pattern": "X"}) for i in range(3000)),
        ]
        for chunk in range(0, len(malformed), 1000):
            async with redis.pipeline(transaction=False) as pipe:
                for message in malformed[chunk : chunk + 1000]:
                    pipe.publish(PATTERNS, message)
                await pipe.execute()
        for index in range(5):
            await redis.publish(PATTERNS, orjson.dumps(pattern(symbol, f"Valid{index}")))
        received = await client.wait_for("pattern_detected", 5, within=20)
        elapsed = time.monotonic() - started
        await client.settle(0.3)
        async with aiohttp.ClientSession() as http:
            status, body = await get_json(
                http,
                served.url + "/api/streaming/status",
                {"Authorization": f"Bearer {token}"},
            )
        await asyncio.sleep(1.5)  # let the error-log writer flush its batch
    finally:
        sampling = False
        await sampler
        await client.close()
        await redis.aclose()

    assert [m["data"]["pattern"] for m in received] == [f"Valid{i}" for i in range(5)]
    assert status == 200
    channel = body["data"]["ingest"]["channels"][PATTERNS]
    assert channel["rejected"] == {
        "too_large": 2,
        "invalid_json": 4000,
        "missing_symbol": 3000,
        "invalid_symbol": 3000,
    }
    assert channel["accepted"] == 5 and channel["received"] == 10_007
    growth_mb = (peak - baseline) / 2**20
    assert growth_mb < 100, f"RSS grew by {growth_mb:.0f} MB"
    # The flood is counted in full but only a bounded number of rows reach error_logs.
    hub = served.app.extensions["tickstock.hub"]
    per_minute = served.app.config["SETTINGS"].error_log_max_per_minute
    async with served.app.extensions["tickstock.db"].connection() as conn:
        rows = await conn.fetchval(
            "SELECT count(*) FROM error_logs WHERE context->>'node' = $1", hub.node_id
        )
    assert 0 < rows <= per_minute
    print(
        f"\nhostile ingest: 10,002 rejects + 5 valid handled in {elapsed:.2f}s;"
        f" peak RSS growth {growth_mb:.1f} MB; {rows} error_logs row(s)"
    )
