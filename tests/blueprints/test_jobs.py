"""Jobs over the served app (SPEC §13): a backtest is validated field by field, queued, handed to
the producer on Redis and listed; the active-job cap; another user's ids are 404 everywhere;
every write is CSRF-checked; trades as JSON pages and as CSV; admins' data loads and list."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest
import redis.asyncio as aioredis

from tests.support.auth import MakeToken, MakeUser, UserLogin, new_cookie_session
from tests.support.realtime import Publisher
from tickstock.vocab import (
    BACKTEST_RESULTS_CHANNEL,
    JOB_BACKTEST_CHANNEL,
    JOB_CANCEL_CHANNEL,
    JOB_DATA_LOAD_CHANNEL,
)


@dataclass
class Api:
    """A bearer-token client of the served app: ``status, body = await api("GET", path)``."""

    http: aiohttp.ClientSession
    url: str
    user: UserLogin

    async def __call__(
        self, method: str, path: str, body: Any = None, **params: Any
    ) -> tuple[int, Any]:
        async with self.http.request(
            method, f"{self.url}{path}", json=body, params=params or None
        ) as response:
            return response.status, await response.json()


ApiFor = Callable[..., Awaitable[Api]]


@pytest.fixture(name="api_for")
async def _api_for(
    served: Any, make_user: MakeUser, make_token: MakeToken
) -> AsyncIterator[ApiFor]:
    opened: list[aiohttp.ClientSession] = []

    async def api_for(user: UserLogin | None = None) -> Api:
        user = user or await make_user()
        http = aiohttp.ClientSession(headers={"Authorization": f"Bearer {await make_token(user)}"})
        opened.append(http)
        return Api(http, served.url, user)

    yield api_for
    for http in opened:
        await http.close()


@pytest.fixture(name="publisher")
async def _publisher(redis_url: str) -> AsyncIterator[Publisher]:
    """Publishes as the producer would (its reports on the job channels)."""
    publisher = Publisher(redis_url)
    yield publisher
    await publisher.close()


@dataclass(frozen=True)
class Seeded:
    """What a valid backtest can ask for in the seeded data."""

    pattern: str
    first: dt.date
    last: dt.date


@pytest.fixture(name="seeded")
async def _seeded(conn: asyncpg.Connection) -> Seeded:
    pattern = await conn.fetchval("SELECT name FROM pattern_definitions ORDER BY id LIMIT 1")
    first, last = await conn.fetchrow(
        "SELECT max(first), min(last) FROM (SELECT min(date) AS first, max(date) AS last"
        " FROM ohlcv_daily WHERE symbol IN ('AAPL', 'MSFT') GROUP BY symbol) AS r"
    )
    return Seeded(pattern, first, last)


def backtest(seeded: Seeded, **fields: Any) -> dict[str, Any]:
    return {
        "symbols": ["aapl", "MSFT"],
        "patterns": [seeded.pattern.upper()],
        "start_date": seeded.first.isoformat(),
        "end_date": seeded.last.isoformat(),
        **fields,
    }


@pytest.fixture(name="channel")
async def _channel(redis_url: str) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """``messages = await channel(name)``: a subscription to a hand-off channel; ``messages``
    collects what is published there (``await messages.next(job_id)`` waits for one)."""
    clients: list[Any] = []

    async def subscribe(*names: str) -> Any:
        client = aioredis.Redis.from_url(redis_url)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(*names)
        clients.append((client, pubsub))
        return Heard(pubsub)

    yield subscribe
    for client, pubsub in clients:
        await pubsub.aclose()
        await client.aclose()


class Heard:
    def __init__(self, pubsub: Any) -> None:
        self.pubsub = pubsub

    async def next(self, job_id: str, within: float = 5.0) -> tuple[str, dict[str, Any]]:
        """The next message about ``job_id`` (other test sessions share the channels)."""
        async with asyncio.timeout(within):
            while True:
                message = await self.pubsub.get_message(timeout=within)
                if message is None:
                    continue
                body = orjson.loads(message["data"])
                if body.get("job_id") == job_id:
                    return message["channel"].decode(), body


async def test_a_backtest_is_queued_handed_to_the_producer_and_listed(
    api_for: ApiFor, seeded: Seeded, channel: Any
) -> None:
    api = await api_for()
    heard = await channel(JOB_BACKTEST_CHANNEL)
    body = backtest(seeded, parameters={"initial_capital": 50_000, "max_hold_days": 10})
    status, created = await api("POST", "/api/jobs/backtests", body)
    assert status == 201, created
    job = created["data"]
    assert job["status"] == "queued" and job["kind"] == "backtest" and job["progress"] == 0
    name, message = await heard.next(job["id"])
    assert name == JOB_BACKTEST_CHANNEL
    assert message["type"] == "backtest_job" and message["user_id"] == api.user.id
    assert message["symbols"] == ["AAPL", "MSFT"]
    assert message["patterns"] == [seeded.pattern]  # the stored name, whatever the case sent
    assert (message["start_date"], message["end_date"]) == (
        seeded.first.isoformat(),
        seeded.last.isoformat(),
    )
    assert message["parameters"] == {
        "initial_capital": 50_000,
        "commission_rate": 0.001,
        "slippage_rate": 0.0005,
        "max_position_size": 0.1,
        "stop_loss_pct": 0.05,
        "take_profit_pct": 0.1,
        "max_hold_days": 10,
    }
    assert isinstance(message["timestamp"], float) and message["source"] == "tickstock"
    status, listed = await api("GET", "/api/jobs")
    assert status == 200 and [j["id"] for j in listed["data"]] == [job["id"]]
    assert listed["meta"]["max_active"] == 3
    status, one = await api("GET", f"/api/jobs/{job['id']}")
    assert status == 200 and one["data"]["results"] is None
    assert one["data"]["params"]["symbols"] == ["AAPL", "MSFT"]


# (field the message must name, changes to a valid body)
INVALID: list[tuple[str, dict[str, Any]]] = [
    ("symbols", {"symbols": []}),
    ("symbols", {"symbols": "AAPL"}),
    ("symbols", {"symbols": ["AAPL;DROP"]}),
    ("symbols", {"symbols": [f"S{i}" for i in range(51)]}),
    ("symbols", {"symbols": ["ZZZZZZ9"]}),  # well formed, unknown
    ("patterns", {"patterns": []}),
    ("patterns", {"patterns": ["No Such Pattern"]}),
    ("start_date", {"start_date": "2024-13-01"}),
    ("end_date", {"end_date": "1999-01-01"}),  # before the start
    ("end_date", {"start_date": "2015-01-01", "end_date": "2021-01-02"}),  # over 5 years
    ("start_date", {"start_date": "first bar - 30"}),  # before the stored bars
    ("end_date", {"end_date": "last bar + 30"}),  # after the stored bars
    ("parameters.initial_capital", {"parameters": {"initial_capital": 50}}),
    ("parameters.commission_rate", {"parameters": {"commission_rate": 0.5}}),
    ("parameters.slippage_rate", {"parameters": {"slippage_rate": -0.01}}),
    ("parameters.max_position_size", {"parameters": {"max_position_size": 0}}),
    ("parameters.stop_loss_pct", {"parameters": {"stop_loss_pct": 1}}),
    ("parameters.take_profit_pct", {"parameters": {"take_profit_pct": 11}}),
    ("parameters.max_hold_days", {"parameters": {"max_hold_days": 366}}),
    ("parameters.max_hold_days", {"parameters": {"max_hold_days": 2.5}}),
    ("parameters.initial_capital", {"parameters": {"initial_capital": "lots"}}),
    ("parameters.leverage", {"parameters": {"leverage": 2}}),
    ("mode", {"mode": "fast"}),
]


@pytest.mark.parametrize(("field", "changes"), INVALID)
async def test_every_invalid_backtest_is_a_400_naming_its_field(
    api_for: ApiFor, seeded: Seeded, field: str, changes: dict[str, Any]
) -> None:
    api = await api_for()
    near = {
        "first bar - 30": (seeded.first - dt.timedelta(days=30)).isoformat(),
        "last bar + 30": (seeded.last + dt.timedelta(days=30)).isoformat(),
    }
    changes = {k: near.get(v, v) if isinstance(v, str) else v for k, v in changes.items()}
    status, body = await api("POST", "/api/jobs/backtests", backtest(seeded, **changes))
    assert status == 400, body
    assert body["code"] == "validation_error"
    assert body["message"].startswith(f"{field}:"), body["message"]
    status, listed = await api("GET", "/api/jobs")
    assert listed["data"] == []  # nothing was queued


async def test_a_missing_field_is_named(api_for: ApiFor, seeded: Seeded) -> None:
    api = await api_for()
    body = backtest(seeded)
    del body["start_date"]
    status, answer = await api("POST", "/api/jobs/backtests", body)
    assert status == 400 and answer["message"].startswith("start_date:")


async def test_at_most_three_active_jobs_per_user_even_when_sent_at_once(
    api_for: ApiFor, seeded: Seeded
) -> None:
    api = await api_for()
    other = await api_for()
    answers = await asyncio.gather(
        *(api("POST", "/api/jobs/backtests", backtest(seeded)) for _ in range(6))
    )
    statuses = sorted(status for status, _ in answers)
    assert statuses == [201, 201, 201, 429, 429, 429]
    refused = next(body for status, body in answers if status == 429)
    assert refused["code"] == "too_many_active_jobs" and "3" in refused["message"]
    # Another user has a cap of their own.
    assert (await other("POST", "/api/jobs/backtests", backtest(seeded)))[0] == 201
    # Cancelling one frees a place.
    job_id = next(body["data"]["id"] for status, body in answers if status == 201)
    assert (await api("POST", f"/api/jobs/{job_id}/cancel"))[0] == 200
    assert (await api("POST", "/api/jobs/backtests", backtest(seeded)))[0] == 201
    assert (await api("POST", "/api/jobs/backtests", backtest(seeded)))[0] == 429


async def test_another_users_job_is_not_found_on_every_route(
    api_for: ApiFor, seeded: Seeded
) -> None:
    owner, intruder = await api_for(), await api_for()
    status, created = await owner("POST", "/api/jobs/backtests", backtest(seeded))
    job_id = created["data"]["id"]
    for method, path in (
        ("GET", f"/api/jobs/{job_id}"),
        ("POST", f"/api/jobs/{job_id}/cancel"),
        ("GET", f"/api/jobs/{job_id}/trades"),
        ("GET", f"/api/jobs/{job_id}/trades?format=csv"),
        ("GET", f"/api/jobs/{uuid.uuid4()}"),
        ("GET", "/api/jobs/not-a-job"),
        ("POST", "/api/jobs/not-a-job/cancel"),
        ("GET", "/api/jobs/not-a-job/trades"),
    ):
        status, body = await intruder(method, path)
        assert (status, body["code"]) == (404, "job_not_found"), (method, path)
    assert (await intruder("GET", "/api/jobs"))[1]["data"] == []
    status, still = await owner("GET", f"/api/jobs/{job_id}")
    assert still["data"]["status"] == "queued"  # the intruder's cancel changed nothing


async def test_every_write_is_csrf_checked_for_cookie_sessions(
    served: Any, auth_pool: asyncpg.Pool, make_user: MakeUser, seeded: Seeded
) -> None:
    user, admin = await make_user(), await make_user("admin")
    body = backtest(seeded)
    cookie_name = served.app.config["SETTINGS"].cookie_name

    async def session_for(account: UserLogin) -> tuple[dict[str, str], str]:
        _, cookie, token = await new_cookie_session(auth_pool, served.app, account)
        return {"Cookie": f"{cookie_name}={cookie}"}, token

    async with aiohttp.ClientSession() as http:

        async def post(path: str, headers: dict[str, str], json: Any = None) -> tuple[int, Any]:
            async with http.post(f"{served.url}{path}", json=json, headers=headers) as response:
                return response.status, await response.json()

        cookie, token = await session_for(user)
        refused = await post("/api/jobs/backtests", cookie, body)
        assert refused[0] == 403 and refused[1]["code"] == "csrf_failed"
        foreign = await post(
            "/api/jobs/backtests", {**cookie, "Origin": "https://evil.example"}, body
        )
        assert foreign[0] == 403
        status, created = await post("/api/jobs/backtests", {**cookie, "X-CSRF-Token": token}, body)
        assert status == 201
        job_id = created["data"]["id"]
        assert (await post(f"/api/jobs/{job_id}/cancel", cookie))[0] == 403
        assert (await post(f"/api/jobs/{job_id}/cancel", {**cookie, "Origin": served.url}))[
            0
        ] == 200

        admin_cookie, admin_token = await session_for(admin)
        load = {"symbols": ["AAPL"], "years": 2}
        assert (await post("/api/admin/jobs/data-loads", admin_cookie, load))[0] == 403
        status, _ = await post(
            "/api/admin/jobs/data-loads", {**admin_cookie, "X-CSRF-Token": admin_token}, load
        )
        assert status == 201


async def test_cancel_ends_a_queued_job_tells_the_producer_and_is_final(
    api_for: ApiFor, seeded: Seeded, channel: Any, publisher: Any
) -> None:
    api = await api_for()
    heard = await channel(JOB_CANCEL_CHANNEL)
    _, created = await api("POST", "/api/jobs/backtests", backtest(seeded))
    job_id = created["data"]["id"]
    status, cancelled = await api("POST", f"/api/jobs/{job_id}/cancel")
    assert status == 200 and cancelled["data"]["status"] == "cancelled"
    assert cancelled["data"]["finished_at"] is not None
    _, message = await heard.next(job_id)
    assert message["type"] == "cancel_job" and isinstance(message["timestamp"], float)
    again = await api("POST", f"/api/jobs/{job_id}/cancel")
    assert again[0] == 200 and again[1]["data"]["seq"] == cancelled["data"]["seq"]
    # A completed job cannot be cancelled.
    _, other = await api("POST", "/api/jobs/backtests", backtest(seeded))
    await publisher.publish(
        BACKTEST_RESULTS_CHANNEL,
        {"job_id": other["data"]["id"], "status": "completed", "results": {"metrics": {}}},
    )
    await _until(api, other["data"]["id"], "completed")
    status, body = await api("POST", f"/api/jobs/{other['data']['id']}/cancel")
    assert (status, body["code"]) == (409, "job_finished")


async def _until(api: Api, job_id: str, status: str) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            _, body = await api("GET", f"/api/jobs/{job_id}")
            if body["data"]["status"] == status:
                return dict(body["data"])
            await asyncio.sleep(0.05)


TRADES = [
    {"symbol": "AAPL", "pattern": "Doji", "entry_date": "2025-01-02", "entry_price": 100,
     "exit_date": "2025-01-09", "exit_price": 105, "exit_reason": "take_profit", "shares": 10,
     "pnl": 50, "return": 0.05},
    {"symbol": "MSFT", "pattern": "Doji", "entry_date": "2025-01-03", "entry_price": 200,
     "exit_date": "2025-01-06", "exit_price": 190, "exit_reason": "stop_loss", "shares": 5,
     "pnl": -50, "return": -0.05},
    {"symbol": "AAPL", "pattern": "Hammer", "entry_date": "2025-01-07", "entry_price": 110,
     "exit_date": "2025-02-04", "exit_price": 112.2, "exit_reason": "max_hold", "shares": 9,
     "pnl": 19.8, "return": 0.02},
]  # fmt: skip


async def test_trades_sort_page_and_download_as_csv(
    api_for: ApiFor, seeded: Seeded, publisher: Any
) -> None:
    api = await api_for()
    _, created = await api("POST", "/api/jobs/backtests", backtest(seeded))
    job_id = created["data"]["id"]
    status, empty = await api("GET", f"/api/jobs/{job_id}/trades")
    assert status == 200 and empty["data"] == [] and empty["meta"]["job_status"] == "queued"
    results = {
        "metrics": {"total_return": 0.0002, "total_trades": 3},
        "pattern_metrics": {"Doji": {"total_trades": 2}},
        "equity_curve": [["2025-01-02", 100000], ["2025-02-04", 100019.8]],
        "trades": TRADES,
    }
    await publisher.publish(
        BACKTEST_RESULTS_CHANNEL, {"job_id": job_id, "status": "completed", "results": results}
    )
    job = await _until(api, job_id, "completed")
    assert job["results"]["metrics"] == {"total_return": 0.0002, "total_trades": 3}
    assert job["results"]["trades"] == TRADES
    assert job["results"]["equity_curve"] == [["2025-01-02", 100000], ["2025-02-04", 100019.8]]

    status, first = await api(
        "GET", f"/api/jobs/{job_id}/trades", sort="return", order="desc", limit=2
    )
    assert [t["return"] for t in first["data"]] == [0.05, 0.02]
    assert first["meta"]["total"] == 3 and first["meta"]["next_cursor"]
    _, rest = await api(
        "GET",
        f"/api/jobs/{job_id}/trades",
        sort="return",
        order="desc",
        limit=2,
        cursor=first["meta"]["next_cursor"],
    )
    assert [t["return"] for t in rest["data"]] == [-0.05] and rest["meta"]["next_cursor"] is None
    status, bad = await api("GET", f"/api/jobs/{job_id}/trades", sort="colour")
    assert status == 400 and bad["message"].startswith("sort:")

    async with api.http.get(
        f"{api.url}/api/jobs/{job_id}/trades", params={"format": "csv", "sort": "symbol"}
    ) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/csv")
        assert "attachment" in response.headers["Content-Disposition"]
        rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert [row["symbol"] for row in rows] == ["AAPL", "AAPL", "MSFT"]
    assert list(rows[0]) == [
        "symbol", "pattern", "entry_date", "entry_price", "exit_date", "exit_price",
        "exit_reason", "shares", "pnl", "return",
    ]  # fmt: skip
    assert rows[2]["exit_reason"] == "stop_loss" and float(rows[2]["return"]) == -0.05


async def test_admins_queue_data_loads_and_see_everyones_jobs(
    api_for: ApiFor, make_user: MakeUser, seeded: Seeded, channel: Any
) -> None:
    admin = await api_for(await make_user("admin"))
    trader = await api_for()
    heard = await channel(JOB_DATA_LOAD_CHANNEL)
    status, _ = await trader("POST", "/api/admin/jobs/data-loads", {"symbols": "universe"})
    assert status == 403
    assert (await trader("GET", "/api/admin/jobs"))[0] == 403
    for field, body in (
        ("years", {"symbols": "universe", "years": 0}),
        ("symbols", {"symbols": "everything"}),
        ("symbols", {"symbols": []}),
        ("timeframes", {"symbols": ["AAPL"], "timeframes": ["yearly"]}),
    ):
        status, answer = await admin("POST", "/api/admin/jobs/data-loads", body)
        assert status == 400 and answer["message"].startswith(f"{field}"), answer
    status, created = await admin(
        "POST",
        "/api/admin/jobs/data-loads",
        {"symbols": "universe", "years": 3, "timeframes": ["daily", "hourly"]},
    )
    assert status == 201 and created["data"]["kind"] == "data_load"
    _, message = await heard.next(created["data"]["id"])
    assert message["type"] == "data_load" and message["symbols"] == "universe"
    assert message["years"] == 3 and message["timeframes"] == ["daily", "hourly"]
    assert message["requested_by"] == admin.user.username
    _, theirs = await trader("POST", "/api/jobs/backtests", backtest(seeded))
    status, everyone = await admin("GET", "/api/admin/jobs", user_id=trader.user.id)
    assert status == 200
    assert [(j["id"], j["username"]) for j in everyone["data"]] == [
        (theirs["data"]["id"], trader.user.username)
    ]
    _, loads = await admin("GET", "/api/admin/jobs", kind="data_load", limit=500)
    assert created["data"]["id"] in [j["id"] for j in loads["data"]]
    # Listing filters and pages.
    _, mine = await admin("GET", "/api/jobs", kind="backtest")
    assert mine["data"] == []


async def test_job_lists_page_newest_first(api_for: ApiFor, seeded: Seeded) -> None:
    api = await api_for()
    ids = []
    for _ in range(3):
        _, created = await api("POST", "/api/jobs/backtests", backtest(seeded))
        ids.append(created["data"]["id"])
        await api("POST", f"/api/jobs/{ids[-1]}/cancel")
    _, first = await api("GET", "/api/jobs", limit=2)
    _, second = await api("GET", "/api/jobs", limit=2, cursor=first["meta"]["next_cursor"])
    assert [j["id"] for j in first["data"] + second["data"]] == ids[::-1]
    _, queued = await api("GET", "/api/jobs", status="queued")
    assert queued["data"] == []
    status, bad = await api("GET", "/api/jobs", status="sleeping")
    assert status == 400 and bad["message"].startswith("status:")
    status, bad = await api("GET", "/api/jobs", cursor="nope")
    assert status == 400 and bad["code"] == "invalid_cursor"


async def test_the_api_documents_the_request_bodies(api_for: ApiFor) -> None:
    api = await api_for(None)
    async with api.http.get(f"{api.url}/openapi.json") as response:
        document = await response.json()
    paths = document["paths"]
    backtests = paths["/api/jobs/backtests"]["post"]["requestBody"]["content"]["application/json"]
    loads = paths["/api/admin/jobs/data-loads"]["post"]["requestBody"]["content"][
        "application/json"
    ]
    assert backtests["schema"] and loads["schema"]
    assert "429" in paths["/api/jobs/backtests"]["post"]["responses"]
    assert "/api/jobs/{job_id}/trades" in paths
