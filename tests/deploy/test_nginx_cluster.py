"""docs/DEPLOYMENT.md followed to the letter: nginx (docs/deploy/nginx.conf) with TLS in front of
two nodes of two processes each, in production mode, with a demo producer (tests/deploy/conftest.py).

What a user of that deployment sees: the form login and the live dashboard in Chromium, token
REST, the official JS client over websocket and over long-polling, spoofed forwarding headers not
trusted, and a node drained, one killed and both restarted with every client back by itself and
resuming exactly (no event missed, none twice, none out of order).
"""

from __future__ import annotations

import asyncio
import itertools
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from playwright.async_api import async_playwright, expect

from tests.deploy.clients import JsClient
from tests.deploy.conftest import SYMBOLS, Cluster, Process
from tests.support.auth import MakeToken, MakeUser
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.processes import wait_until

pytestmark = [pytest.mark.deploy]


@pytest.fixture(name="producing")
async def _producing(cluster: Cluster) -> Cluster:
    """The cluster with every process up and the producer publishing."""
    for process in cluster.processes:
        if not process.running:
            await process.start()
    await cluster.wait_healthy(cluster.processes)
    if cluster.producer is None:
        await cluster.start_producer()
    return cluster


@pytest.fixture(name="js_clients")
async def _js_clients() -> AsyncIterator[list[JsClient]]:
    clients: list[JsClient] = []
    yield clients
    await asyncio.gather(*(client.close() for client in clients))


async def _token(make_user: MakeUser, make_token: MakeToken) -> str:
    return await make_token(await make_user(), name="deploy")


def _lines(cluster: Cluster, needle: str) -> list[str]:
    return [
        line
        for process in cluster.processes
        for line in process.log.read_text(errors="replace").splitlines()
        if needle in line
    ]


async def test_tls_token_rest_and_forwarded_headers_are_nginx_s_own(
    producing: Cluster, make_user: MakeUser, make_token: MakeToken
) -> None:
    cluster = producing
    token = await _token(make_user, make_token)
    tls = cluster.ssl_context()
    async with aiohttp.ClientSession() as http:
        # Plain HTTP is redirected to HTTPS.
        async with http.get(
            f"http://localhost:{cluster.http_port}/api/symbols", allow_redirects=False
        ) as response:
            assert response.status == 301
            assert response.headers["Location"] == "https://localhost/api/symbols"

        # Token REST over TLS (the certificate verified), HSTS from nginx, no hypercorn banner.
        async with http.get(
            f"{cluster.url}/api/patterns/AAPL",
            params={"limit": "3"},
            headers={"Authorization": f"Bearer {token}"},
            ssl=tls,
        ) as response:
            body = await response.json()
            assert response.status == 200, body
            assert body["status"] == "success"
            assert "max-age=31536000" in response.headers["Strict-Transport-Security"]
            assert "hypercorn" not in response.headers.get("Server", "")
        async with http.get(cluster.processes[0].url + "/health") as response:
            assert "Server" not in response.headers

        # Forwarding headers a client makes up are replaced or appended to by nginx: every
        # location's request reaches the node as nginx saw it (the client is 127.0.0.1 here).
        spoofed = {
            "X-Forwarded-For": "6.6.6.6",
            "X-Forwarded-Host": "evil.example",
            "X-Forwarded-Proto": "http",
            "X-Real-IP": "6.6.6.6",
        }
        ids = {}
        for path in ("/api/auth/me", "/metrics"):  # the locations `/` and `= /metrics`
            ids[path] = f"spoof-{uuid.uuid4().hex}"
            async with http.get(
                cluster.url + path, headers={**spoofed, "X-Request-ID": ids[path]}, ssl=tls
            ) as response:
                assert response.status == 401
        for path, request_id in ids.items():

            async def logged(request_id: str = request_id) -> bool:
                return bool(_lines(cluster, request_id))

            await wait_until(logged, 5, f"the request line of {path}")
            (line,) = _lines(cluster, request_id)
            assert f"GET {path} 401" in line and "from 127.0.0.1 " in line, line
            assert "6.6.6.6" not in line
        # The Socket.IO location too: a frame that is no engine.io packet is logged with the
        # client's address, nginx's view of it.
        marker = secrets.token_hex(4)
        async with http.ws_connect(
            f"{cluster.url}/socket.io/?EIO=4&transport=websocket", headers=spoofed, ssl=tls
        ) as ws:
            await ws.send_str(f"x{marker}")

            async def warned() -> bool:
                return bool(_lines(cluster, marker))

            await wait_until(warned, 5, "the malformed frame's warning")
        (line,) = _lines(cluster, marker)
        assert "127.0.0.1" in line and "6.6.6.6" not in line, line
        # Logged once: tickstock's line, and no hypercorn access log line beside it.
        assert _lines(cluster, '"GET /api/auth/me') == []

        # The same-origin check of a login sees the public origin (Host and https from nginx):
        # the site's own origin passes it (a wrong password is a 401), another site's does
        # not, even with a forwarded host naming that site.
        login = {"username": "nobody-" + secrets.token_hex(4), "password": "x" * 12}
        for headers, status in (
            ({"Origin": cluster.url}, 401),
            ({"Origin": "https://evil.example", "X-Forwarded-Host": "evil.example"}, 403),
        ):
            async with http.post(
                cluster.url + "/api/auth/login", json=login, headers=headers, ssl=tls
            ) as response:
                assert response.status == status, await response.text()


async def test_form_login_and_the_live_dashboard_in_chromium(
    producing: Cluster, make_user: MakeUser, make_token: MakeToken
) -> None:
    cluster = producing
    user = await make_user(username=f"ops.{secrets.token_hex(3)}")
    token = await make_token(user, name="watchlist")
    async with (
        aiohttp.ClientSession() as http,
        http.put(
            f"{cluster.url}/api/user/watchlist",
            json={"symbols": list(SYMBOLS[:2])},
            headers={"Authorization": f"Bearer {token}"},
            ssl=cluster.ssl_context(),
        ) as response,
    ):
        assert response.status == 200, await response.text()

    errors: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            # The throwaway certificate is self-signed: the browser is told to accept it.
            context = await browser.new_context(ignore_https_errors=True, base_url=cluster.url)
            context.set_default_timeout(10_000)
            page = await context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto("/")
            await expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))
            await page.fill("#username", user.username)
            await page.fill("#password", user.password)
            await page.click("button[type=submit]")
            await expect(page).to_have_url(f"{cluster.url}/")
            # The cookie-authenticated socket went through nginx: live, and rows arrive.
            await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
            await expect(page.locator("#wl-rows tr")).to_have_count(2)
            await expect(page.locator("#feed-rows tr").first).to_be_visible()
            symbol = await page.locator("#feed-rows tr").first.get_attribute("data-symbol")
            assert symbol in SYMBOLS[:2]
            (cookie,) = [c for c in await context.cookies() if c["httpOnly"]]
            assert cookie["secure"] is True
        finally:
            await browser.close()
    assert not errors, errors


@pytest.mark.parametrize("transports", ["websocket", "polling", "polling,websocket"])
async def test_the_js_client_receives_events_over_each_transport(
    producing: Cluster,
    make_user: MakeUser,
    make_token: MakeToken,
    js_clients: list[JsClient],
    transports: str,
) -> None:
    cluster = producing
    token = await _token(make_user, make_token)
    client = await JsClient.start(
        transports, cluster.url, token, ["AAPL", "MSFT"], transports, cluster.cert
    )
    js_clients.append(client)
    ack = await client.wait_acks(1)
    await client.wait_events(10)
    # Long-polling stays long-polling; with an upgrade, it ends on the websocket (sticky
    # routing keeps every request of the session on the process that holds it).
    if transports == "polling,websocket":
        await client.wait(lambda: bool(client.of("upgrade")), 10, "the upgrade")
        assert client.of("upgrade")[0]["transport"] == "websocket"
        await client.wait_events(len(client.of("event")) + 5)  # and events after it
    else:
        assert ack["transport"] == transports
    assert client.of("connect_error") == [] and client.of("disconnect") == []


def _history_key(cluster: Cluster, symbol: str) -> str:
    return f"{cluster.key_prefix}:history:patterns:{symbol}"


async def _history_after(cluster: Cluster, symbol: str, offset: str) -> list[str]:
    client = aioredis.Redis.from_url(cluster.redis_url)
    try:
        entries: Any = await client.xrange(_history_key(cluster, symbol), min=f"({offset}")
    finally:
        await client.aclose()
    return [entry_id.decode() for entry_id, _ in entries]


async def _sockets_on(cluster: Cluster, processes: list[Process]) -> int:
    return sum([await cluster.sockets(process) for process in processes])


def _now_ms() -> int:
    return int(time.time() * 1000)


async def test_drain_kill_and_restart_every_client_back_with_exact_resume(
    producing: Cluster,
    make_user: MakeUser,
    make_token: MakeToken,
    js_clients: list[JsClient],
) -> None:
    cluster = producing
    token = await _token(make_user, make_token)
    symbols = list(SYMBOLS)

    async def no_sockets() -> bool:  # the clients of other tests have gone
        return await _sockets_on(cluster, cluster.processes) == 0

    await wait_until(no_sockets, 60, "no socket left from other tests")
    kinds = ["websocket"] * 6 + ["polling"] * 2
    for index, transports in enumerate(kinds):
        js_clients.append(
            await JsClient.start(
                f"{transports}-{index}", cluster.url, token, symbols, transports, cluster.cert
            )
        )
    for client in js_clients:
        await client.wait_acks(1)
        await client.wait_events(5)
    on_a, on_b = (
        await _sockets_on(cluster, cluster.node_a),
        await _sockets_on(cluster, cluster.node_b),
    )
    assert on_a + on_b == len(kinds) and on_a and on_b, (on_a, on_b)
    report: dict[str, Any] = {"clients": len(kinds), "before": {"A": on_a, "B": on_b}}

    # Round 1: node A drains while still in rotation (nginx passes the 503s to node B).
    drained_at = _now_ms()
    for process in cluster.node_a:
        process.drain()

    def resumed_since(moment: int) -> bool:
        """Every client dropped after ``moment`` has subscribed again."""
        return all(
            len(client.reconnects(moment))
            == len([d for d in client.of("disconnect") if d["t"] >= moment])
            for client in js_clients
        )

    async def a_empty_and_all_back() -> bool:
        if await _sockets_on(cluster, cluster.node_a):
            return False
        on_b = await _sockets_on(cluster, cluster.node_b)
        return on_b == len(kinds) and resumed_since(drained_at)

    await wait_until(a_empty_and_all_back, 30, "every client of node A back, on node B")
    for process in cluster.node_a:
        assert await process.health(cluster.http) == "draining"
    # Straight at a draining process, a new client is turned away with a 503 on the engine.io
    # handshake: a transport error, which socket.io-client keeps retrying by itself (a
    # namespace connect_error would have been final: no retry, the client offline for good).
    direct = await JsClient.start(
        "direct", cluster.node_a[0].url, token, symbols, "websocket", cluster.cert
    )
    js_clients.append(direct)
    await direct.wait(lambda: len(direct.of("reconnect_attempt")) >= 2, 15, "two retries")
    assert direct.of("ack") == []
    assert all(e["message"] != "draining" for e in direct.of("connect_error"))
    await direct.close()
    js_clients.remove(direct)
    drain_times = [(client.name, t) for client in js_clients for t in client.reconnects(drained_at)]
    assert len(drain_times) == on_a, drain_times
    report["drain"] = drain_times

    # Node A stops (SIGTERM to `tickstock serve`) and comes back, taking no client yet.
    report["drained_stop_s"] = [await process.terminate() for process in cluster.node_a]
    for process in cluster.node_a:
        await process.start()
    await cluster.wait_healthy(cluster.node_a)

    # Round 2: node B is SIGKILLed; every client comes back, now on node A.
    killed_at = _now_ms()
    for process in cluster.node_b:
        process.kill()
    for process in cluster.node_b:
        await process.wait_exited()

    async def all_on_a() -> bool:
        on_a = await _sockets_on(cluster, cluster.node_a)
        return on_a == len(kinds) and resumed_since(killed_at)

    await wait_until(all_on_a, 45, "every client back on node A after node B was killed")
    kill_times = [(client.name, t) for client in js_clients for t in client.reconnects(killed_at)]
    assert len(kill_times) == len(kinds), kill_times
    report["kill"] = kill_times

    # Node B restarts and takes new connections again.
    for process in cluster.node_b:
        await process.start()
    await cluster.wait_healthy(cluster.node_b)
    newcomers = []
    for index in range(4):
        newcomer = await JsClient.start(
            f"new-{index}", cluster.url, token, symbols, "websocket", cluster.cert
        )
        js_clients.append(newcomer)
        newcomers.append(newcomer)
        await newcomer.wait_acks(1)
    assert await _sockets_on(cluster, cluster.node_b) > 0
    for newcomer in newcomers:
        await newcomer.wait_events(3)

    # Exact resume: each client has, per symbol, every event after its first baseline, once
    # and in order, whatever node it was on.
    await cluster.stop_producer()
    expected = {
        (client.name, symbol): await _history_after(cluster, symbol, client.baselines()[symbol])
        for client in js_clients[: len(kinds)]
        for symbol in symbols
    }

    def caught_up() -> bool:
        return all(
            len(client.offsets().get(symbol, [])) >= len(expected[client.name, symbol])
            for client in js_clients[: len(kinds)]
            for symbol in symbols
        )

    deadline = time.monotonic() + 15
    while not caught_up() and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # anything extra would have arrived by now
    missed = duplicated = out_of_order = 0
    for client in js_clients[: len(kinds)]:
        for symbol in symbols:
            got, want = client.offsets().get(symbol, []), expected[client.name, symbol]
            missed += len(set(want) - set(got))
            duplicated += len(got) - len(set(got))
            out_of_order += sum(1 for a, b in itertools.pairwise(got) if _key(a) >= _key(b))
            if got != want:
                report.setdefault("differences", []).append(
                    (client.name, symbol, sorted(set(want) - set(got))[:5], len(got), len(want))
                )
    report["events_checked"] = sum(len(v) for v in expected.values())
    report["missed/duplicated/out_of_order"] = (missed, duplicated, out_of_order)
    print("\ndeploy rounds:", report)
    assert (missed, duplicated, out_of_order) == (0, 0, 0), report
    assert "differences" not in report, report


def _key(offset: str) -> tuple[int, int]:
    ms, _, seq = offset.partition("-")
    return int(ms), int(seq)
