"""Socket.IO connect authentication and cross-node disconnection on revocation."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import asyncpg
import pytest
import socketio

from tests.support.auth import MakeToken, UserLogin, new_cookie_session
from tests.support.realtime import connect_socket
from tickstock.realtime.auth import SocketIdentity, authenticate_socket


async def _refused(url: str, **kwargs: Any) -> None:
    sio = socketio.AsyncClient(reconnection=False)
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            await sio.connect(url, transports=["websocket"], wait_timeout=5, **kwargs)
    finally:
        await sio.disconnect()


async def test_token_socket_joins_its_rooms_and_saves_who_it_is(
    served: Any, user: UserLogin, socket_token: Any
) -> None:
    token = await socket_token(user)
    sio, _ = await connect_socket(served.url, auth={"token": token})
    try:
        server = served.app.extensions["tickstock.sio"].sio
        sid = sio.get_sid()
        assert sid is not None
        session = await server.get_session(sid)
        assert session == {
            "user_id": user.id,
            "username": user.username,
            "role": "user",
            "session_id": token.split(".")[0],
        }
        rooms = set(server.rooms(sid))
        assert {f"user:{user.id}", f"session:{token.split('.')[0]}", "system"} <= rooms
    finally:
        await sio.disconnect()


async def test_cookie_socket_is_accepted(
    served: Any, user: UserLogin, auth_pool: asyncpg.Pool
) -> None:
    _, cookie, _ = await new_cookie_session(auth_pool, served.app, user)
    name = served.app.config["SETTINGS"].cookie_name
    sio, _ = await connect_socket(served.url, headers={"Cookie": f"other=1; {name}={cookie}"})
    assert sio.connected
    await sio.disconnect()


async def test_refused_without_credentials(served: Any) -> None:
    await _refused(served.url)
    await _refused(served.url, auth={"token": ""})
    await _refused(served.url, auth={"token": 12345})
    await _refused(served.url, auth="not a dict")


async def test_refused_with_tampered_cookie(
    served: Any, user: UserLogin, auth_pool: asyncpg.Pool
) -> None:
    _, cookie, _ = await new_cookie_session(auth_pool, served.app, user)
    name = served.app.config["SETTINGS"].cookie_name
    payload, _, signature = cookie.rpartition(".")
    tampered = f"{payload}.{signature[:-3]}{'AAA' if signature[-3:] != 'AAA' else 'BBB'}"
    await _refused(served.url, headers={"Cookie": f"{name}={tampered}"})
    # Another secret key signed it: the same as tampering.
    from itsdangerous import URLSafeTimedSerializer

    forged = URLSafeTimedSerializer("not-the-key", "quart auth salt").dumps("whatever")
    await _refused(served.url, headers={"Cookie": f"{name}={forged}"})


async def test_refused_with_cookie_from_another_site(
    served: Any, user: UserLogin, auth_pool: asyncpg.Pool
) -> None:
    _, cookie, _ = await new_cookie_session(auth_pool, served.app, user)
    name = served.app.config["SETTINGS"].cookie_name
    await _refused(
        served.url, headers={"Cookie": f"{name}={cookie}", "Origin": "https://evil.example"}
    )


async def test_refused_with_revoked_or_expired_token(
    served: Any, user: UserLogin, make_token: MakeToken, auth_pool: asyncpg.Pool
) -> None:
    revoked, expired = await make_token(user), await make_token(user)
    async with auth_pool.acquire() as conn:
        await conn.execute(
            "UPDATE user_sessions SET revoked_at = now() WHERE id = $1", revoked.split(".")[0]
        )
        await conn.execute(
            "UPDATE user_sessions SET expires_at = now() - interval '1 second' WHERE id = $1",
            expired.split(".")[0],
        )
    await _refused(served.url, auth={"token": revoked})
    await _refused(served.url, auth={"token": expired})
    await _refused(served.url, auth={"token": revoked.split(".")[0] + ".wrong-secret"})


async def test_refused_for_deactivated_user(
    served: Any, user: UserLogin, make_token: MakeToken, auth_pool: asyncpg.Pool
) -> None:
    token = await make_token(user)
    async with auth_pool.acquire() as conn:
        await conn.execute("UPDATE users SET active = false WHERE id = $1", user.id)
    await _refused(served.url, auth={"token": token})


async def test_authenticate_socket_reads_bearer_header(
    app: Any, user: UserLogin, make_token: MakeToken
) -> None:
    token = await make_token(user)
    identity = await authenticate_socket(app, {"HTTP_AUTHORIZATION": f"Bearer {token}"}, None)
    assert identity == SocketIdentity(user.id, user.username, "user", token.split(".")[0])
    assert await authenticate_socket(app, {"HTTP_COOKIE": "garbage;;=="}, None) is None


async def test_logout_on_one_node_disconnects_socket_on_another(
    serve_app: Any, user: UserLogin, make_token: MakeToken
) -> None:
    node_a, node_b = await serve_app(), await serve_app()
    token = await make_token(user)
    session_id = token.split(".")[0]
    sio, gone = await connect_socket(node_b.url, auth={"token": token})
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.delete(
                f"{node_a.url}/api/auth/tokens/{session_id}",
                headers={"Authorization": f"Bearer {await make_token(user)}"},
            ) as response,
        ):
            assert response.status == 200
        await asyncio.wait_for(gone.wait(), 3)
        # Node B refuses the revoked token too.
        await _refused(node_b.url, auth={"token": token})
    finally:
        await sio.disconnect()


async def test_admin_deactivation_disconnects_all_the_users_sockets(
    served: Any,
    make_user: Any,
    make_token: MakeToken,
    admin_headers: dict[str, str],
    auth_pool: asyncpg.Pool,
) -> None:
    target = await make_user()
    _, cookie, _ = await new_cookie_session(auth_pool, served.app, target)
    name = served.app.config["SETTINGS"].cookie_name
    first, gone_first = await connect_socket(served.url, auth={"token": await make_token(target)})
    second, gone_second = await connect_socket(served.url, headers={"Cookie": f"{name}={cookie}"})
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.patch(
                f"{served.url}/api/admin/users/{target.id}",
                json={"active": False},
                headers=admin_headers,
            ) as response,
        ):
            assert response.status == 200
            assert (await response.json())["meta"]["sessions_revoked"] is True
        await asyncio.wait_for(asyncio.gather(gone_first.wait(), gone_second.wait()), 3)
    finally:
        await first.disconnect()
        await second.disconnect()
