"""``tickstock bench fanout``: N authenticated sockets, events published on Redis, accounted.

Clients are lean Socket.IO-over-websocket speakers (aiohttp) spread over worker processes so the
generator is not the bottleneck. Every published event carries its sequence number and send time;
each client records what it receives, and the parent compares that with what each client should
have received (its symbols, the measured window): lost, duplicated, out of order, latency.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import queue
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from tickstock.bench.common import (
    LeanSocket,
    answer_pings_until,
    process_stats,
    raise_fd_limit,
    run_sockets,
    run_worker,
    socketio_ws_url,
)
from tickstock.bench.stats import DeliveryLedger, latency_summary
from tickstock.vocab import PATTERNS_CHANNEL

CHANNEL = PATTERNS_CHANNEL


@dataclass
class FanoutConfig:
    url: str
    clients: int
    symbols_per_client: int
    universe: int
    rate: float
    duration: float
    warmup: float = 2.0
    redis_url: str = "redis://127.0.0.1:6379/0"
    server_pids: list[int] = field(default_factory=list)
    processes: int = 2
    user: str = ""
    password: str = ""
    token: str = ""
    stalled_fraction: float = 0.0
    inject_lost: int = 0
    seed: int = 7
    drain: float = 2.0
    connect_concurrency: int = 50
    batch_ms: int = 0
    # Offer permessage-deflate as browsers do ("permessage-deflate; client_max_window_bits").
    compression_offer: bool = False
    # After the steady phase: this many events published within one second (a minute bar
    # closing across the universe), accounted like the others and timed on their own.
    burst: int = 0


def universe_symbols(size: int) -> list[str]:
    return [f"BX{i:05d}" for i in range(size)]


def client_symbols(config: FanoutConfig, index: int, universe: list[str]) -> list[str]:
    """The symbols client ``index`` follows (deterministic, so the parent knows them too)."""
    rng = random.Random(config.seed * 1_000_003 + index)
    return rng.sample(universe, min(config.symbols_per_client, len(universe)))


def is_stalled(config: FanoutConfig, index: int) -> bool:
    """Clients that stop reading after subscribing (to measure the effect on the others)."""
    if config.stalled_fraction <= 0:
        return False
    every = max(1, round(1 / config.stalled_fraction))
    return index % every == every - 1


# --------------------------------------------------------------------------- worker process


class LeanClient(LeanSocket):
    """One Socket.IO client over a raw websocket: connect, subscribe, record, answer pings."""

    def __init__(
        self,
        index: int,
        auth: dict[str, Any] | None,
        symbols: list[str],
        run_id: str,
        stalled: bool,
        offer_deflate: bool,
    ) -> None:
        super().__init__(index, auth)
        self.compress = 15 if offer_deflate else 0
        self.symbols = symbols
        self.run_id = run_id
        self.marker = b'"bench_run":"' + run_id.encode() + b'"'
        self.stalled = stalled
        self.received: dict[str, list[int]] = {}
        self.latencies: list[tuple[int, float]] = []  # (sequence number, ms)
        self.count = 0
        self.last_at = 0.0  # when the last event of this run arrived

    async def opened(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        subscribe = orjson.dumps(["subscribe_patterns", {"symbols": self.symbols}]).decode()
        await ws.send_str("421" + subscribe)
        await answer_pings_until(ws, "431")

    async def listen(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        if self.stalled:
            # Stop reading: aiohttp's flow control pauses the transport, TCP buffers
            # fill, and the server has to cope with a client that is not there.
            await asyncio.Event().wait()
        await super().listen(ws)

    def received_text(self, text: str) -> None:
        if text.startswith('42["pattern_detected"'):
            envelopes = None
        elif text.startswith('42["events"'):  # coalesced (--batch-ms)
            envelopes = True
        else:
            return
        now = time.time()
        raw = text[2:].encode()
        if self.marker not in raw:
            return
        decoded = orjson.loads(raw)
        items = (
            [env for kind, env in decoded[1] if kind == "pattern_detected"]
            if envelopes
            else [decoded[1]]
        )
        for envelope in items:
            data = envelope["data"]
            meta = data.get("metadata", {})
            if meta.get("bench_run") != self.run_id:
                continue
            seq = int(meta["bench_seq"])
            self.received.setdefault(data["symbol"], []).append(seq)
            self.latencies.append((seq, (now - float(meta["bench_sent"])) * 1000))
            self.count += 1
            self.last_at = now


async def _worker_main(
    config: FanoutConfig,
    indices: list[int],
    run_id: str,
    headers: dict[str, str],
    auth: dict[str, Any] | None,
    inbox: Any,
    outbox: Any,
) -> None:
    universe = universe_symbols(config.universe)
    clients = [
        LeanClient(
            i,
            auth,
            client_symbols(config, i, universe),
            run_id,
            is_stalled(config, i),
            config.compression_offer,
        )
        for i in indices
    ]
    await run_sockets(
        clients,
        socketio_ws_url(config.url),
        headers,
        config.connect_concurrency,
        connected=lambda: outbox.put(
            (
                "connected",
                [c.index for c in clients if c.connected],
                [c.error for c in clients if c.error][:5],
                sum(1 for c in clients if c.deflate),
            )
        ),
        inbox=inbox,
        idle=lambda: outbox.put(("progress", indices[0], sum(c.count for c in clients))),
    )
    outbox.put(
        (
            "result",
            {c.index: c.received for c in clients if c.connected},
            [lat for c in clients for lat in c.latencies],
            max((c.last_at for c in clients), default=0.0),
        )
    )


def _worker_entry(
    config: FanoutConfig,
    indices: list[int],
    run_id: str,
    headers: dict[str, str],
    auth: dict[str, Any] | None,
    inbox: Any,
    outbox: Any,
) -> None:
    raise_fd_limit()
    run_worker(_worker_main(config, indices, run_id, headers, auth, inbox, outbox))


# --------------------------------------------------------------------------- parent


async def _login(config: FanoutConfig) -> tuple[dict[str, str], dict[str, Any] | None]:
    """Headers and Socket.IO auth for the clients: a token, or a cookie from one login."""
    origin = config.url.rstrip("/")
    if config.token:
        return {"Origin": origin}, {"token": config.token}
    jar = aiohttp.CookieJar(unsafe=True)
    async with (
        aiohttp.ClientSession(cookie_jar=jar) as http,
        http.post(
            f"{origin}/api/auth/login", json={"username": config.user, "password": config.password}
        ) as response,
    ):
        if response.status != 200:
            raise RuntimeError(f"login failed: HTTP {response.status} {await response.text()}")
    cookie = "; ".join(f"{c.key}={c.value}" for c in jar)
    return {"Cookie": cookie, "Origin": origin}, None


async def run_fanout_bench(
    config: FanoutConfig, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Run the benchmark and return its figures (see the module docstring)."""
    import redis.asyncio as aioredis

    say = progress or (lambda _line: None)
    raise_fd_limit()
    run_id = uuid.uuid4().hex[:10]
    headers, auth = await _login(config)
    if config.batch_ms:
        auth = {**(auth or {}), "batch_ms": config.batch_ms}
    universe = universe_symbols(config.universe)
    subscriptions = {i: client_symbols(config, i, universe) for i in range(config.clients)}

    ctx = mp.get_context("spawn")
    workers = max(1, min(config.processes, config.clients))
    outbox = ctx.Queue()
    inboxes = [ctx.Queue() for _ in range(workers)]
    procs = []
    _cpu0, rss_before = process_stats(config.server_pids)
    for w in range(workers):
        indices = list(range(w, config.clients, workers))
        proc = ctx.Process(
            target=_worker_entry,
            args=(config, indices, run_id, headers, auth, inboxes[w], outbox),
            daemon=True,
        )
        proc.start()
        procs.append(proc)

    loop = asyncio.get_running_loop()

    async def next_message(wait_s: float) -> Any:
        return await loop.run_in_executor(None, outbox.get, True, wait_s)

    connected: list[int] = []
    errors: list[str] = []
    deflated = 0
    pending = workers
    connect_started = time.monotonic()
    while pending:
        kind, *rest = await next_message(600)
        if kind == "connected":
            connected += rest[0]
            errors += rest[1]
            deflated += rest[2]
            pending -= 1
            say(
                f"connected {len(connected)}/{config.clients} sockets "
                f"({time.monotonic() - connect_started:.1f}s)"
            )
    await asyncio.sleep(1.0)  # let server memory settle after the connection burst
    _cpu, rss_after = process_stats(config.server_pids)
    stalled = {i for i in connected if is_stalled(config, i)}

    client = aioredis.Redis.from_url(config.redis_url)
    by_symbol: dict[str, list[int]] = {}
    for i in connected:
        if i in stalled:
            continue
        for symbol in subscriptions[i]:
            by_symbol.setdefault(symbol, []).append(i)
    ledgers = {i: DeliveryLedger() for i in connected if i not in stalled}
    published = 0
    measured_from = 0
    gen_pids = [os.getpid(), *[p.pid for p in procs if p.pid is not None]]
    rng = random.Random(config.seed)
    server_cpu_start = gen_cpu_start = 0.0
    delivered_progress: dict[int, int] = {}

    async def publish(seq: int, count: int, expected: bool) -> int:
        """Publish ``count`` events from ``seq`` in one round trip; the next sequence number."""
        async with client.pipeline(transaction=False) as pipe:
            for _ in range(count):
                symbol = universe[rng.randrange(len(universe))]
                message: dict[str, Any] = {
                    "event_id": f"bench-{run_id}-{seq}",
                    "symbol": symbol,
                    "pattern": "BenchBreakout",
                    "confidence": 0.91,
                    "timestamp": time.time(),
                    "price": 100.0,
                    "tier": "intraday",
                    "bench_run": run_id,
                    "bench_seq": seq,
                    "bench_sent": time.time(),
                }
                if expected:
                    for i in by_symbol.get(symbol, ()):
                        ledgers[i].expect(symbol, seq)
                        expected_deliveries[0] += 1
                pipe.publish(CHANNEL, orjson.dumps(message))
                seq += 1
            await pipe.execute()
        return seq

    burst: dict[str, Any] = {}
    burst_from, burst_last_publish, burst_cpu_start = 0, 0.0, 0.0
    expected_deliveries = [0]
    try:
        total = config.warmup + config.duration
        started = time.perf_counter()
        next_report = started + 1
        interval = 1.0 / config.rate
        seq = 0
        measuring = False
        while True:
            now = time.perf_counter()
            elapsed = now - started
            if elapsed >= total:
                break
            if not measuring and elapsed >= config.warmup:
                measuring = True
                measured_from = seq
                server_cpu_start, _ = process_stats(config.server_pids)
                gen_cpu_start, _ = process_stats(gen_pids)
                measure_started = time.perf_counter()
            due = int(elapsed / interval) + 1 - seq
            if due > 0:
                seq = await publish(seq, min(due, 1000), measuring)
                published = seq
            if now >= next_report:
                next_report += 1
                while True:
                    try:
                        kind, *rest = outbox.get_nowait()
                    except queue.Empty:
                        break
                    if kind == "progress":
                        delivered_progress[rest[0]] = rest[1]
                say(
                    f"t={elapsed:5.1f}s published={published} "
                    f"phase={'measure' if measuring else 'warmup'}"
                )
            await asyncio.sleep(max(0.0, min(interval, 0.01)))
        measure_elapsed = time.perf_counter() - measure_started
        steady_events = seq - measured_from
        await asyncio.sleep(config.drain)
        steady_cpu_end, _ = process_stats(config.server_pids)
        if config.burst:
            # The burst in ten slices over about 0.75 s, after the steady phase has drained.
            burst_cpu_start, _ = process_stats(config.server_pids)
            burst_from = seq
            burst_expected_from = expected_deliveries[0]
            burst_started = time.perf_counter()
            slices = 10
            for n in range(slices):
                size = config.burst // slices + (1 if n < config.burst % slices else 0)
                seq = await publish(seq, size, True)
                pause = burst_started + (n + 1) * 0.075 - time.perf_counter()
                if pause > 0 and n < slices - 1:
                    await asyncio.sleep(pause)
            burst_last_publish = time.time()
            burst["published"] = seq - burst_from
            burst["deliveries"] = expected_deliveries[0] - burst_expected_from
            burst["publish_s"] = round(time.perf_counter() - burst_started, 3)
            published = seq
            # The clients may take longer than the server: wait until their counts stop moving.
            still, deadline = 0, time.monotonic() + 60
            while still < 2 * workers and time.monotonic() < deadline:
                before = sum(delivered_progress.values())
                try:
                    kind, *rest = await next_message(1.5)
                except queue.Empty:
                    continue
                if kind == "progress":
                    delivered_progress[rest[0]] = rest[1]
                    if len(delivered_progress) == workers:
                        still = still + 1 if sum(delivered_progress.values()) == before else 0
        injected = 0
        for _ in range(config.inject_lost):
            # Events the server rejects (confidence out of range) but the clients expect: lost.
            symbol = universe[rng.randrange(len(universe))]
            for i in by_symbol.get(symbol, ()):
                ledgers[i].expect(symbol, seq)
                injected += 1
            bad = {
                "symbol": symbol,
                "pattern": "BenchLost",
                "confidence": 500,
                "bench_run": run_id,
                "bench_seq": seq,
                "bench_sent": time.time(),
            }
            await client.publish(CHANNEL, orjson.dumps(bad))
            seq += 1
        await asyncio.sleep(config.drain)
        server_cpu_end, rss_end = process_stats(config.server_pids)
        gen_cpu_end, _ = process_stats(gen_pids)
        if config.burst and config.server_pids:
            burst["server_cpu_us_per_event"] = round(
                (server_cpu_end - burst_cpu_start) / burst["published"] * 1e6, 1
            )
    finally:
        await client.aclose()
        for inbox in inboxes:
            inbox.put("stop")

    latencies: list[float] = []
    burst_latencies: list[float] = []
    last_arrival = 0.0
    pending = workers
    while pending:
        kind, *rest = await next_message(120)
        if kind != "result":
            continue
        pending -= 1
        last_arrival = max(last_arrival, rest[2])
        for index, received in rest[0].items():
            if index in ledgers:
                for symbol, seqs in received.items():
                    for s in seqs:
                        if s >= measured_from:
                            ledgers[index].receive(symbol, s)
        for s, latency in rest[1]:
            if config.burst and s >= burst_from:
                burst_latencies.append(latency)
            elif s >= measured_from:
                latencies.append(latency)
    for proc in procs:
        proc.join(10)

    totals = {"expected": 0, "received": 0, "lost": 0, "duplicates": 0, "out_of_order": 0}
    for ledger in ledgers.values():
        for key, value in ledger.account().items():
            if key in totals:
                totals[key] += value
    result: dict[str, Any] = {
        "clients": config.clients,
        "connected": len(connected),
        "failed": config.clients - len(connected),
        "stalled": len(stalled),
        "compression_offered": config.compression_offer,
        "compression_negotiated": deflated,
        "errors": errors[:5],
        "injected_lost": injected,
        "published": published,
        "rate": config.rate,
        "duration_s": round(measure_elapsed, 2),
        **totals,
        **latency_summary(latencies),
        "deliveries_per_s": round(totals["received"] / measure_elapsed, 1)
        if measure_elapsed
        else 0,
        "generator_cpu_percent": round(
            (gen_cpu_end - gen_cpu_start) / (measure_elapsed + config.drain) * 100, 1
        ),
        "steady_events": steady_events,
    }
    if config.burst:
        burst["last_delivery_after_last_publish_s"] = round(last_arrival - burst_last_publish, 3)
        burst["p99_ms"] = latency_summary(burst_latencies)["p99_ms"]
        result["burst"] = burst
    if config.server_pids:
        server_cpu = steady_cpu_end - server_cpu_start
        result["server_cpu_s"] = round(server_cpu, 3)
        result["server_cpu_us_per_event"] = (
            round(server_cpu / steady_events * 1e6, 1) if steady_events else None
        )
        steady_received = totals["received"] - burst.get("deliveries", 0)
        result["server_cpu_us_per_delivery"] = (
            round(server_cpu / steady_received * 1e6, 2) if steady_received else None
        )
        result["server_rss_before_kb"] = rss_before // 1024
        result["server_rss_after_kb"] = rss_after // 1024
        result["server_rss_end_kb"] = rss_end // 1024
        result["kb_per_socket"] = (
            round((rss_after - rss_before) / 1024 / len(connected), 2) if connected else None
        )
    return result


def format_report(result: dict[str, Any]) -> str:
    lines = [
        f"sockets     connected {result['connected']}/{result['clients']}"
        f" (failed {result['failed']}, stalled {result['stalled']});"
        f" permessage-deflate {'offered' if result['compression_offered'] else 'not offered'},"
        f" negotiated on {result['compression_negotiated']}",
        f"events      published {result['published']} at {result['rate']}/s"
        f" over {result['duration_s']}s measured",
        f"deliveries  expected {result['expected']}  received {result['received']}"
        f"  lost {result['lost']}  duplicates {result['duplicates']}"
        f"  out of order {result['out_of_order']}",
        f"latency ms  p50 {result['p50_ms']}  p90 {result['p90_ms']}  p99 {result['p99_ms']}"
        f"  p99.9 {result['p999_ms']}  max {result['max_ms']}",
        f"throughput  {result['deliveries_per_s']} deliveries/s;"
        f" generator CPU {result['generator_cpu_percent']}%",
    ]
    if "server_cpu_us_per_delivery" in result:
        lines.append(
            f"server      {result['server_cpu_us_per_event']} µs CPU per event,"
            f" {result['server_cpu_us_per_delivery']} µs CPU per delivery (steady phase);"
            f" RSS {result['server_rss_before_kb']} → {result['server_rss_after_kb']}"
            f" → {result['server_rss_end_kb']} KB (start, connected, end)"
            f" ({result['kb_per_socket']} KB per socket)"
        )
    if "burst" in result:
        burst = result["burst"]
        lines.append(
            f"burst       {burst['published']} events published in {burst['publish_s']}s;"
            f" last delivered {burst['last_delivery_after_last_publish_s']}s after the last"
            f" publish (p99 {burst['p99_ms']} ms from its publish);"
            f" {burst.get('server_cpu_us_per_event', '?')} µs server CPU per event"
        )
    if result["errors"]:
        lines.append("errors      " + "; ".join(result["errors"]))
    return "\n".join(lines)
