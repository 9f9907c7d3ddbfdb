"""Jobs end to end (SPEC §13): the API queues a job and hands it to the producer on Redis; a
stand-in producer (this test, publishing the SPEC §13 messages on real Redis) reports progress
and results; every node ingests them, each change is stored once, and the owner's sockets get
``job_progress`` / ``job_finished`` once each, in order. Real PostgreSQL, Redis, served apps and
Socket.IO clients."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest
import redis.asyncio as aioredis

from tests.support.auth import MakeUser, UserLogin
from tests.support.realtime import Publisher, Recorder
from tickstock.queries.jobs import PICKUP_ERROR
from tickstock.realtime.events import JOB_MESSAGE_MAX_BYTES, normalise
from tickstock.realtime.hub import get_hub
from tickstock.realtime.jobs import announce_every, announcement_message
from tickstock.vocab import (
    BACKTEST_PROGRESS_CHANNEL,
    BACKTEST_RESULTS_CHANNEL,
    JOB_BACKTEST_CHANNEL,
    JOB_CANCEL_CHANNEL,
    JOB_DATA_LOAD_CHANNEL,
    JOB_PROGRESS_CHANNEL,
)

PROGRESS, RESULTS = BACKTEST_PROGRESS_CHANNEL, BACKTEST_RESULTS_CHANNEL
Connect = Callable[..., Awaitable[Recorder]]


class Trader:
    """A user with an API token: creates and reads jobs on a served app, opens sockets."""

    def __init__(self, user: UserLogin, token: str, body: dict[str, Any]) -> None:
        self.user = user
        self.token = token
        self.body = body
        self.http = aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"})

    async def call(self, method: str, url: str, body: Any = None) -> tuple[int, Any]:
        async with self.http.request(method, url, json=body) as response:
            return response.status, await response.json()

    async def backtest(self, served: Any) -> str:
        status, created = await self.call("POST", f"{served.url}/api/jobs/backtests", self.body)
        assert status == 201, created
        job_id: str = created["data"]["id"]
        return job_id

    async def job(self, served: Any, job_id: str) -> dict[str, Any]:
        status, body = await self.call("GET", f"{served.url}/api/jobs/{job_id}")
        assert status == 200, body
        return dict(body["data"])

    async def until(
        self, served: Any, job_id: str, check: Callable[[dict[str, Any]], bool], within: float = 10
    ) -> dict[str, Any]:
        """The job once ``check`` holds (the database has no push: polling the API)."""
        async with asyncio.timeout(within):
            while not check(job := await self.job(served, job_id)):  # noqa: ASYNC110 (polling the API)
                await asyncio.sleep(0.05)
        return job


MakeTrader = Callable[..., Awaitable[Trader]]


@pytest.fixture(name="make_trader")
async def _make_trader(
    make_user: MakeUser, make_token: Any, conn: asyncpg.Connection
) -> AsyncIterator[MakeTrader]:
    pattern = await conn.fetchval("SELECT name FROM pattern_definitions ORDER BY id LIMIT 1")
    last = await conn.fetchval("SELECT max(date) FROM ohlcv_daily WHERE symbol = 'AAPL'")
    body = {
        "symbols": ["AAPL"],
        "patterns": [pattern],
        "start_date": (last - dt.timedelta(days=90)).isoformat(),
        "end_date": last.isoformat(),
    }
    traders: list[Trader] = []

    async def make(user: UserLogin | None = None) -> Trader:
        user = user or await make_user()
        trader = Trader(user, await make_token(user), body)
        traders.append(trader)
        return trader

    yield make
    for trader in traders:
        await trader.http.close()


@pytest.fixture(name="listen")
async def _listen(redis_url: str) -> AsyncIterator[Callable[..., Awaitable[Heard]]]:
    """``heard = await listen(channel, ...)``: what tickstock publishes to the producer."""
    opened: list[Heard] = []

    async def listen(*channels: str) -> Heard:
        heard = Heard(aioredis.Redis.from_url(redis_url))
        await heard.start(channels)
        opened.append(heard)
        return heard

    yield listen
    for heard in opened:
        await heard.stop()


class Heard:
    """Collects the messages published on the hand-off channels, by job id."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self.pubsub = client.pubsub(ignore_subscribe_messages=True)
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self, channels: tuple[str, ...]) -> None:
        await self.pubsub.subscribe(*channels)
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            message = await self.pubsub.get_message(timeout=1.0)
            if message is not None:
                body = orjson.loads(message["data"])
                self.messages.append((message["channel"].decode(), body))

    def about(self, job_id: str, channel: str | None = None) -> list[dict[str, Any]]:
        return [
            body
            for name, body in self.messages
            if body.get("job_id") == job_id and (channel is None or name == channel)
        ]

    async def wait(self, job_id: str, count: int, channel: str | None = None) -> None:
        async with asyncio.timeout(10):
            while len(self.about(job_id, channel)) < count:  # noqa: ASYNC110 (a reader task fills it)
                await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.pubsub.aclose()  # type: ignore[no-untyped-call]
        await self.client.aclose()


def progress_of(client: Recorder, job_id: str) -> list[float]:
    return [
        e["data"]["progress"] for e in client.events["job_progress"] if e["data"]["id"] == job_id
    ]


def finished_of(client: Recorder, job_id: str) -> list[dict[str, Any]]:
    return [e["data"] for e in client.events["job_finished"] if e["data"]["id"] == job_id]


async def wait_finished(client: Recorder, job_id: str, within: float = 10) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while not finished_of(client, job_id):  # noqa: ASYNC110 (the socket's handler fills it)
            await asyncio.sleep(0.02)
    return finished_of(client, job_id)[0]


RESULTS_BODY = {
    "metrics": {"total_return": 0.0123, "win_rate": 0.5, "total_trades": 2},
    "pattern_metrics": {"Breakout": {"total_return": 0.0123}},
    "equity_curve": [["2025-01-02", 100000.0], ["2025-01-03", 101230.0]],
    "trades": [
        {
            "symbol": "AAPL",
            "pattern": "Breakout",
            "entry_date": "2025-01-02",
            "entry_price": 100.0,
            "exit_date": "2025-01-03",
            "exit_price": 101.0,
            "exit_reason": "take_profit",
            "shares": 10.0,
            "pnl": 10.0,
            "return": 0.01,
        }
    ],
}


async def test_progress_is_stored_once_never_backwards_and_reaches_the_owner_in_order(
    served: Any, connect: Connect, publisher: Publisher, make_trader: MakeTrader
) -> None:
    """Duplicate, late and out-of-order reports change nothing; the shapes the producer may use
    (0-1 or 0-100, ISO or epoch times, nested envelopes) all count; reports after the results
    change nothing either."""
    trader = await make_trader()
    client = await connect(served.url, auth={"token": trader.token})
    job_id = await trader.backtest(served)
    now = dt.datetime.now(dt.UTC)
    for message in (
        {"job_id": job_id, "progress": 0.1, "status": "running", "current_symbol": "AAPL",
         "timestamp": now.timestamp()},
        {"job_id": job_id, "progress": 25, "status": "running", "message": "AAPL done",
         "timestamp": now.isoformat()},
        {"job_id": job_id, "progress": 25, "status": "running"},  # a duplicate
        {"job_id": job_id, "progress": 0.1, "status": "running"},  # late
        {"job_id": job_id, "progress": 0.2},  # out of order (below 0.25)
        {"type": "backtest_progress", "data": {"job_id": job_id, "progress": "60%",
         "estimated_completion": (now + dt.timedelta(minutes=2)).isoformat()}},
    ):  # fmt: skip
        await publisher.publish(PROGRESS, message)
    await publisher.publish(
        RESULTS, {"job_id": job_id, "status": "completed", "results": RESULTS_BODY}
    )
    await publisher.publish(PROGRESS, {"job_id": job_id, "progress": 0.9})  # after the end
    await publisher.publish(
        RESULTS,
        {"job_id": job_id, "status": "failed", "error": "a repeat that must change nothing"},
    )
    finished = await wait_finished(client, job_id)
    await client.settle(1.0)
    assert progress_of(client, job_id) == [0.1, 0.25, 0.6]
    assert len(finished_of(client, job_id)) == 1
    assert finished["status"] == "completed" and finished["progress"] == 1
    assert finished["metrics"] == RESULTS_BODY["metrics"]
    progress = [e["data"] for e in client.events["job_progress"]]
    assert progress[0]["current_symbol"] == "AAPL" and progress[1]["message"] == "AAPL done"
    assert progress[2]["estimated_completion"] is not None
    assert [e["seq"] for e in progress] + [finished["seq"]] == [2, 3, 4, 5]
    job = await trader.job(served, job_id)
    assert job["status"] == "completed" and job["seq"] == 5 and job["error"] is None
    assert job["results"]["metrics"] == RESULTS_BODY["metrics"]
    assert job["results"]["trades"] == RESULTS_BODY["trades"]
    assert job["started_at"] is not None and job["finished_at"] is not None


async def test_results_before_any_progress_still_complete_the_job(
    served: Any, connect: Connect, publisher: Publisher, make_trader: MakeTrader
) -> None:
    trader = await make_trader()
    client = await connect(served.url, auth={"token": trader.token})
    job_id = await trader.backtest(served)
    await publisher.publish(RESULTS, {"job_id": job_id, "results": RESULTS_BODY})
    finished = await wait_finished(client, job_id)
    await publisher.publish(PROGRESS, {"job_id": job_id, "progress": 0.5, "status": "running"})
    await client.settle(0.5)
    assert finished["status"] == "completed"
    assert progress_of(client, job_id) == []
    job = await trader.job(served, job_id)
    assert (job["status"], job["progress"], job["seq"]) == ("completed", 1, 2)


async def test_a_failed_report_fails_the_job_with_the_producers_reason(
    served: Any, connect: Connect, publisher: Publisher, make_trader: MakeTrader
) -> None:
    trader = await make_trader()
    client = await connect(served.url, auth={"token": trader.token})
    job_id = await trader.backtest(served)
    await publisher.publish(PROGRESS, {"job_id": job_id, "progress": 0.4})
    await publisher.publish(
        RESULTS, {"job_id": job_id, "status": "failed", "error": "no bars for AAPL"}
    )
    finished = await wait_finished(client, job_id)
    assert finished["status"] == "failed" and finished["error"] == "no bars for AAPL"
    assert finished["progress"] == 0.4 and finished["metrics"] is None


async def test_a_data_load_completes_from_its_progress_channel(
    served: Any, connect: Connect, publisher: Publisher, make_trader: MakeTrader,
    make_user: MakeUser, listen: Any,
) -> None:  # fmt: skip
    admin = await make_trader(await make_user("admin"))
    heard = await listen(JOB_DATA_LOAD_CHANNEL)
    client = await connect(served.url, auth={"token": admin.token})
    status, created = await admin.call(
        "POST", f"{served.url}/api/admin/jobs/data-loads", {"symbols": ["AAPL", "MSFT"]}
    )
    assert status == 201
    job_id = created["data"]["id"]
    await heard.wait(job_id, 1)
    await publisher.publish(JOB_PROGRESS_CHANNEL, {"job_id": job_id, "progress": 50})
    await publisher.publish(
        JOB_PROGRESS_CHANNEL, {"job_id": job_id, "progress": 100, "status": "completed"}
    )
    finished = await wait_finished(client, job_id)
    assert progress_of(client, job_id) == [0.5]
    assert finished["status"] == "completed" and finished["kind"] == "data_load"


async def test_unknown_jobs_and_hostile_reports_change_nothing_and_break_nothing(
    served: Any,
    connect: Connect,
    publisher: Publisher,
    make_trader: MakeTrader,
    make_user: MakeUser,
) -> None:
    trader = await make_trader()
    client = await connect(served.url, auth={"token": trader.token})
    job_id = await trader.backtest(served)
    updater = get_hub(served.app).jobs
    assert updater is not None
    unknown_before = updater.stats.unknown
    for message in (
        {"job_id": str(uuid.uuid4()), "progress": 0.5},  # nobody's job
        {"job_id": "job_1733412345678", "progress": 0.5},  # not even one of our ids
        {"job_id": str(uuid.uuid4()), "status": "completed", "results": RESULTS_BODY},
    ):
        channel = RESULTS if "results" in message else PROGRESS
        await publisher.publish(channel, message)
    hostile: list[tuple[str, bytes]] = [
        (PROGRESS, b'{"job_id": "%s", "progress": NaN}' % job_id.encode()),
        (PROGRESS, b'{"job_id": "%s", "progress": -3}' % job_id.encode()),
        (PROGRESS, b'{"job_id": "%s", "progress": "lots"}' % job_id.encode()),
        (PROGRESS, b"\x00\xff not json"),
        (PROGRESS, b'{"progress": 0.5}'),  # no job id
        (PROGRESS, orjson.dumps({"job_id": "x" * 1_000_000, "progress": 0.5})),
        (RESULTS, b"[" * 100_000),
        (RESULTS, b"{" + b" " * (9 * 1024 * 1024) + b"}"),  # beyond the size limit
    ]
    for channel, raw in hostile:
        await publisher.publish(channel, raw)
    await client.settle(0.5)
    job = await trader.job(served, job_id)
    assert (job["status"], job["progress"], job["seq"]) == ("queued", 0, 1)
    assert updater.stats.unknown - unknown_before == 3
    admin = await make_trader(await make_user("admin"))  # operators see the counts
    _, status = await admin.call("GET", f"{served.url}/api/streaming/status")
    assert status["data"]["jobs"]["unknown"] == updater.stats.unknown
    # Text with NUL and a megabyte of it is cleaned, not stored as sent.
    await publisher.publish(
        PROGRESS,
        {
            "job_id": job_id,
            "progress": 0.3,
            "current_symbol": "AA\x00PL",
            "message": "half\x00way " + "x" * 1_000_000,
        },
    )
    job = await trader.until(served, job_id, lambda j: j["status"] == "running")
    assert job["current_symbol"] is None and job["message"].startswith("half way x")
    assert len(job["message"]) == 500
    # NaN and Infinity (Python's json writes them) become null in the results.
    await publisher.publish(
        RESULTS,
        b'{"job_id": "%s", "status": "completed", "results": {"metrics": {"profit_factor":'
        b' Infinity, "sharpe_ratio": NaN, "total_return": 0.1}, "trades": [{"symbol": "AAPL",'
        b' "exit_reason": "%s", "return": NaN}, {"symbol": "bad symbol"}, "junk"]}}'
        % (job_id.encode(), b"r" * 1_000_000),
    )
    finished = await wait_finished(client, job_id)
    assert finished["metrics"] == {"profit_factor": None, "sharpe_ratio": None, "total_return": 0.1}
    job = await trader.job(served, job_id)
    [trade] = job["results"]["trades"]
    assert trade["return"] is None and len(trade["exit_reason"]) == 64
    assert job["results"]["dropped"] == 2 and job["results"]["trades_total"] == 3
    status, trades = await trader.call("GET", f"{served.url}/api/jobs/{job_id}/trades")
    assert status == 200 and len(trades["data"]) == 1


async def test_a_job_nobody_picks_up_is_announced_again_then_fails(
    serve_app: Any, connect: Connect, make_trader: MakeTrader, listen: Any
) -> None:
    served = await serve_app(job_pickup_seconds=2)  # announced again every half second
    trader = await make_trader()
    heard = await listen(JOB_BACKTEST_CHANNEL)
    client = await connect(served.url, auth={"token": trader.token})
    job_id = await trader.backtest(served)
    finished = await wait_finished(client, job_id)
    assert finished["status"] == "failed" and finished["error"] == PICKUP_ERROR
    announced = heard.about(job_id)
    assert len(announced) >= 3
    assert [m["announcement"] for m in announced] == list(range(1, len(announced) + 1))
    assert all(m["type"] == "backtest_job" and m["job_id"] == job_id for m in announced)
    await client.settle(1.0)
    assert len(heard.about(job_id)) == len(announced)  # a failed job is not announced again
    job = await trader.job(served, job_id)
    assert job["status"] == "failed" and job["error"] == PICKUP_ERROR


async def test_a_producer_that_picks_the_job_up_stops_the_announcements(
    serve_app: Any, publisher: Publisher, make_trader: MakeTrader, listen: Any
) -> None:
    served = await serve_app(job_pickup_seconds=2)
    trader = await make_trader()
    heard = await listen(JOB_BACKTEST_CHANNEL)
    job_id = await trader.backtest(served)
    await heard.wait(job_id, 1)
    await publisher.publish(PROGRESS, {"job_id": job_id, "progress": 0.05})
    await trader.until(served, job_id, lambda j: j["status"] == "running")
    count = len(heard.about(job_id))
    for _ in range(6):  # past the pickup time, kept alive by reports
        await asyncio.sleep(0.5)
        await publisher.publish(PROGRESS, {"job_id": job_id, "progress": 0.05})
    assert len(heard.about(job_id)) == count
    assert (await trader.job(served, job_id))["status"] == "running"


async def test_a_producer_that_goes_silent_mid_job_stalls_it(
    serve_app: Any, connect: Connect, publisher: Publisher, make_trader: MakeTrader, listen: Any
) -> None:
    served = await serve_app(job_stall_seconds=2)
    trader = await make_trader()
    heard = await listen(JOB_CANCEL_CHANNEL)
    client = await connect(served.url, auth={"token": trader.token})
    job_id = await trader.backtest(served)
    for step in range(1, 6):  # alive for 2.5 s, longer than the stall time
        await publisher.publish(PROGRESS, {"job_id": job_id, "progress": step / 10})
        await asyncio.sleep(0.5)
    assert (await trader.job(served, job_id))["status"] == "running"
    finished = await wait_finished(client, job_id)  # then silence
    assert finished["status"] == "failed" and finished["error"].startswith("stalled")
    assert finished["progress"] == 0.5
    await heard.wait(job_id, 1)  # the producer is asked to stop it, should it still run
    assert progress_of(client, job_id) == [0.1, 0.2, 0.3, 0.4, 0.5]


async def test_cancel_mid_job_is_final_and_repeated_to_a_producer_that_missed_it(
    served: Any, connect: Connect, publisher: Publisher, make_trader: MakeTrader, listen: Any
) -> None:
    trader = await make_trader()
    heard = await listen(JOB_CANCEL_CHANNEL)
    client = await connect(served.url, auth={"token": trader.token})
    job_id = await trader.backtest(served)
    await publisher.publish(PROGRESS, {"job_id": job_id, "progress": 0.3})
    await trader.until(served, job_id, lambda j: j["status"] == "running")
    status, body = await trader.call("POST", f"{served.url}/api/jobs/{job_id}/cancel")
    assert status == 200 and body["data"]["status"] == "cancelled"
    finished = await wait_finished(client, job_id)
    assert finished["status"] == "cancelled"
    await heard.wait(job_id, 1)
    # The producer missed it and carries on: nothing changes, and it is told again.
    await publisher.publish(PROGRESS, {"job_id": job_id, "progress": 0.6})
    await publisher.publish(RESULTS, {"job_id": job_id, "results": RESULTS_BODY})
    await heard.wait(job_id, 2)
    await client.settle(0.5)
    job = await trader.job(served, job_id)
    assert (job["status"], job["progress"], job["results"]) == ("cancelled", 0.3, None)
    assert progress_of(client, job_id) == [0.3] and len(finished_of(client, job_id)) == 1


async def test_two_nodes_store_each_change_once_and_each_owner_socket_gets_it_once_in_order(
    serve_app: Any, connect: Connect, publisher: Publisher, make_trader: MakeTrader
) -> None:
    """Both nodes hear every report (pub/sub): either may store a change, never both; the
    owner's sockets on both nodes get every change once, in order; another user gets none."""
    node_a, node_b = await serve_app(), await serve_app()
    owner, other = await make_trader(), await make_trader()
    sockets = [
        await connect(node_a.url, auth={"token": owner.token}),
        await connect(node_b.url, auth={"token": owner.token}),
    ]
    bystander = await connect(node_b.url, auth={"token": other.token})
    job_id = await owner.backtest(node_a)
    steps = [round(step / 20, 2) for step in range(1, 20)]
    for value in steps:
        await publisher.publish(PROGRESS, {"job_id": job_id, "progress": value})
        await publisher.publish(PROGRESS, {"job_id": job_id, "progress": value})  # twice
    await publisher.publish(RESULTS, {"job_id": job_id, "results": RESULTS_BODY})
    for client in sockets:
        await wait_finished(client, job_id)
    await asyncio.sleep(1.0)
    for client in sockets:
        assert progress_of(client, job_id) == steps
        assert len(finished_of(client, job_id)) == 1
        seqs = [e["data"]["seq"] for e in client.events["job_progress"]]
        assert seqs == list(range(2, 2 + len(steps)))
    assert bystander.events["job_progress"] == [] and bystander.events["job_finished"] == []
    job = await owner.job(node_b, job_id)
    assert job["seq"] == 1 + len(steps) + 1  # each change stored once, cluster-wide
    updaters = [get_hub(node.app).jobs for node in (node_a, node_b)]
    stored = [u.stats.stored for u in updaters if u is not None]
    assert sum(stored) == len(steps) + 1


# --- reading the producer's reports (pure: realtime/events.py) -----------------------------------


def report(message: Any, channel: str = PROGRESS) -> dict[str, Any]:
    raw = message if isinstance(message, bytes) else orjson.dumps(message)
    result = normalise(raw, channel, max_bytes=JOB_MESSAGE_MAX_BYTES)
    assert result.rejects == [], result.rejects
    [event] = result.events
    assert event.kind == "job"
    return event.data


def rejected(message: Any, channel: str = PROGRESS) -> str:
    raw = message if isinstance(message, bytes) else orjson.dumps(message)
    result = normalise(raw, channel, max_bytes=JOB_MESSAGE_MAX_BYTES)
    assert result.events == []
    return result.rejects[0].reason


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"progress": 0.25}, 0.25),
        ({"progress": 25}, 0.25),
        ({"progress": "25%"}, 0.25),
        ({"progress": "0.5"}, 0.5),
        ({"percent": 1}, 0.01),  # a percent field is a percent, even at 1
        ({"progress": 1}, 1.0),  # exactly 1 on "progress" reads as complete
        ({"progress": 100}, 1.0),
        ({"symbols_completed": 3, "total_symbols": 12}, 0.25),
        ({"progress": {"completed": 1, "total": 4}}, 0.25),
        ({}, None),
    ],
)
def test_progress_is_read_in_every_shape(fields: dict[str, Any], expected: float | None) -> None:
    assert report({"job_id": "j", **fields})["progress"] == expected


@pytest.mark.parametrize("value", [-0.1, 100.5, "NaN", "lots", True, [1]])
def test_progress_that_is_no_fraction_or_percent_is_refused(value: Any) -> None:
    assert rejected({"job_id": "j", "progress": value}) == "invalid_field"


def test_times_envelopes_statuses_and_text_are_normalised() -> None:
    moment = dt.datetime(2026, 11, 26, 14, 30, tzinfo=dt.UTC)
    iso = report({"job_id": "j", "estimated_completion": moment.isoformat()})
    epoch = report({"job_id": "j", "estimated_completion": moment.timestamp()})
    millis = report({"job_id": "j", "estimated_completion": moment.timestamp() * 1000})
    assert iso["estimated_completion"] == epoch["estimated_completion"]
    assert millis["estimated_completion"] == "2026-11-26T14:30:00.000Z"
    assert report({"job_id": "j", "eta": 99_999_999_999_999})["estimated_completion"] is None
    nested = report({"type": "backtest_progress", "payload": {"data": {"jobId": "j", "pct": 5}}})
    assert (nested["job_id"], nested["progress"]) == ("j", 0.05)
    assert report({"job_id": "j", "status": "Processing"})["status"] == "running"
    assert report({"job_id": "j", "status": "canceled"})["status"] == "cancelled"
    assert report({"job_id": "j", "status": "whatever"})["status"] == "running"
    done = report({"job_id": "j", "status": "done"}, RESULTS)
    assert done["status"] == "completed" and done["progress"] == 1.0
    failed = report({"job_id": "j", "error_message": "no data"}, RESULTS)
    assert (failed["status"], failed["error"], failed["results"]) == ("failed", "no data", None)
    text = report({"job_id": "j", "message": "a\x00b\x1b[31m" + "x" * 5000, "symbol": "msft"})
    assert text["message"].startswith("a b [31m") and len(text["message"]) == 500
    assert text["current_symbol"] == "MSFT"
    assert report({"job_id": "j", "current_symbol": "NOT A SYMBOL"})["current_symbol"] is None
    assert rejected({"progress": 0.5}) == "missing_field"
    assert rejected({"job_id": "a\x00b"}) == "invalid_field"
    assert rejected({"job_id": "x" * 200}) == "invalid_field"
    assert normalise(b'{"type": "ping"}', PROGRESS).ignored


def test_results_are_kept_in_one_shape_and_cleaned() -> None:
    data = report(
        b'{"job_id": "j", "status": "completed", "results": {'
        b'"metrics": {"total_return": "12.5%", "sharpe_ratio": NaN, "nested": {"a": 1},'
        b' "profit_factor": Infinity, "label": "high"},'
        b'"per_pattern": [{"pattern": "Doji", "win_rate": 0.5}],'
        b'"equity": [{"date": "2025-01-02T00:00:00Z", "value": 1}, [1735862400, 2], ["x", 3]],'
        b'"trades": [{"ticker": "aapl", "pattern_name": "Doji", "entry_time": 1735776000000,'
        b' "return_pct": 5, "qty": 3}, {"symbol": "A B"}, 7]}}',
        RESULTS,
    )
    results = data["results"]
    assert results["metrics"] == {
        "total_return": 0.125,
        "sharpe_ratio": None,
        "profit_factor": None,
        "label": None,
    }
    assert results["pattern_metrics"] == {"Doji": {"win_rate": 0.5}}
    assert results["equity_curve"] == [("2025-01-02", 1.0), ("2025-01-03", 2.0)]
    [trade] = results["trades"]
    assert trade["symbol"] == "AAPL" and trade["pattern"] == "Doji"
    assert trade["entry_date"] == "2025-01-02" and trade["return"] == 0.05
    assert trade["shares"] == 3
    assert results["trades_total"] == 3 and results["dropped"] == 4  # nested, curve x, 2 trades
    flat = report({"job_id": "j", "metrics": {"total_return": 0.1}, "trades": []}, RESULTS)
    assert flat["results"]["metrics"] == {"total_return": 0.1}


def test_the_hand_off_carries_the_spec_fields_and_the_original_systems() -> None:
    job: Any = {
        "id": "4c1f",
        "user_id": 7,
        "kind": "backtest",
        "params": {
            "symbols": ["AAPL"],
            "patterns": ["Doji"],
            "start_date": "2025-01-02",
            "end_date": "2025-06-30",
            "parameters": {"initial_capital": 1000.0},
        },
    }
    message = announcement_message(job, 2)
    assert {key: message[key] for key in ("type", "job_id", "user_id", "announcement")} == {
        "type": "backtest_job",
        "job_id": "4c1f",
        "user_id": 7,
        "announcement": 2,
    }
    assert message["date_range"] == {"start": "2025-01-02", "end": "2025-06-30"}
    assert message["job_type"] == "backtest" and message["parameters"] == {
        "initial_capital": 1000.0
    }
    assert announce_every(60) == 5.0 and announce_every(2) == 0.5 and announce_every(8) == 2.0


@pytest.mark.fault
async def test_reports_heard_while_postgres_is_away_are_stored_once_it_is_back(
    private_postgres: Any, serve_app: Any, connect: Connect, publisher: Publisher
) -> None:
    """PostgreSQL stopping delays job reports (they wait in the node's queue) and loses none:
    once it is back they are stored and delivered, once each, in order."""
    import secrets

    from tickstock.auth import create_session, ensure_user
    from tickstock.db.migrate import migrate
    from tickstock.dev.seed import seed

    admin = await asyncpg.connect(private_postgres.dsn())
    await admin.execute("CREATE DATABASE tickstock_jobs_fault")
    await admin.close()
    dsn = private_postgres.dsn("tickstock_jobs_fault")
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        await seed(conn, symbols=5, days=2)
        user = await ensure_user(conn, "jobs-" + secrets.token_hex(4), secrets.token_hex(8))
        _, token, _ = await create_session(conn, user.id, "token", lifetime=None)
        pattern = await conn.fetchval("SELECT name FROM pattern_definitions ORDER BY id LIMIT 1")
        last = await conn.fetchval("SELECT max(date) FROM ohlcv_daily WHERE symbol = 'AAPL'")
    finally:
        await conn.close()
    assert token is not None
    served = await serve_app(
        database_url=dsn, key_prefix="tstest:jobsfault:" + secrets.token_hex(4)
    )
    client = await connect(served.url, auth={"token": token})
    body = {
        "symbols": ["AAPL"],
        "patterns": [pattern],
        "start_date": (last - dt.timedelta(days=30)).isoformat(),
        "end_date": last.isoformat(),
    }
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.post(f"{served.url}/api/jobs/backtests", json=body) as response:
            assert response.status == 201
            job_id = (await response.json())["data"]["id"]
        await publisher.publish(PROGRESS, {"job_id": job_id, "progress": 0.2})
        async with asyncio.timeout(10):
            while progress_of(client, job_id) != [0.2]:  # noqa: ASYNC110 (the socket fills it)
                await asyncio.sleep(0.05)

        await private_postgres.stop("fast")
        await publisher.publish(PROGRESS, {"job_id": job_id, "progress": 0.4})
        await publisher.publish(PROGRESS, {"job_id": job_id, "progress": 0.6})
        await client.settle(1.5)
        assert progress_of(client, job_id) == [0.2]  # not stored, so not sent either

        await private_postgres.start()
        async with asyncio.timeout(30):
            while progress_of(client, job_id) != [0.2, 0.4, 0.6]:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        await client.settle(0.5)
        assert progress_of(client, job_id) == [0.2, 0.4, 0.6]
        async with http.get(f"{served.url}/api/jobs/{job_id}") as response:
            job = (await response.json())["data"]
    assert (job["status"], job["progress"], job["seq"]) == ("running", 0.6, 4)
