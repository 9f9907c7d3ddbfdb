"""The documented production deployment, run for real (docs/DEPLOYMENT.md).

``cluster``: nginx 1.22+ with ``docs/deploy/nginx.conf`` (only the addresses, ports, host name,
certificate paths and monitoring network substituted, see ``render_nginx_conf``) terminating TLS
with a throwaway self-signed certificate, in front of two nodes of two processes each:
``tickstock serve --config docs/deploy/hypercorn.toml --bind 127.0.0.1:<port>`` with
``TICKSTOCK_ENV=production``, ``TICKSTOCK_PROXY_HOPS=1`` and a strong secret, plus
``tickstock demo-producer`` on channels of their own. One cluster per module (it takes ~10 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psutil
import pytest

from tests.support.env import ROOT, free_port, tickstock_env
from tests.support.processes import get_json, run_command, tail, wait_until
from tickstock.cli.serve import _drain_workers
from tickstock.dev.demo_producer import DemoChannels

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
NGINX_CONF = ROOT / "docs" / "deploy" / "nginx.conf"
HYPERCORN_TOML = ROOT / "docs" / "deploy" / "hypercorn.toml"
SYMBOLS = ("AAPL", "MSFT", "NVDA", "TSLA")
PRODUCER_RATE = 24  # pattern detections a second, over SYMBOLS

# The example values of docs/deploy/nginx.conf, in the order of `processes`.
EXAMPLE_PROCESSES = ("10.0.0.11:8000", "10.0.0.11:8001", "10.0.0.12:8000", "10.0.0.12:8001")
EXAMPLE_HOST = "tickstock.example.com"


def render_nginx_conf(
    *, processes: list[int], http_port: int, https_port: int, cert: Path, key: Path
) -> str:
    """docs/deploy/nginx.conf with this machine's addresses, ports and certificate."""
    text = NGINX_CONF.read_text()
    substitutions = [
        *(
            (example, f"127.0.0.1:{port}")
            for example, port in zip(EXAMPLE_PROCESSES, processes, strict=True)
        ),
        (f"/etc/letsencrypt/live/{EXAMPLE_HOST}/fullchain.pem", str(cert)),
        (f"/etc/letsencrypt/live/{EXAMPLE_HOST}/privkey.pem", str(key)),
        (EXAMPLE_HOST, "localhost"),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;"),
        ("allow 10.0.100.0/24;", "allow 127.0.0.1;"),
    ]
    for example, value in substitutions:
        assert example in text, f"{example!r} is no longer in {NGINX_CONF.name}"
        text = text.replace(example, value)
    return text


async def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for localhost and 127.0.0.1."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    await run_command(
        *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
        *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"),
        *("-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
        what="openssl req",
    )
    return cert, key


@dataclass
class Process:
    """One tickstock process (``tickstock serve`` running one hypercorn worker) on its port."""

    port: int
    env: dict[str, str]
    log: Path
    serve: asyncio.subprocess.Process | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"\n==== start {self.starts}\n".encode())
            self.serve = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "tickstock", "serve"),
                *("--config", str(HYPERCORN_TOML), "--bind", f"127.0.0.1:{self.port}"),
                env=self.env,
                cwd=self.log.parent,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def running(self) -> bool:
        return self.serve is not None and self.serve.returncode is None

    def drain(self) -> None:
        """SIGUSR1 to the hypercorn worker only: it drains and stays up (in rotation)."""
        assert self.serve is not None
        (hypercorn,) = psutil.Process(self.serve.pid).children()
        _drain_workers(hypercorn.pid)

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crashed machine would vanish."""
        if self.serve is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.serve.pid, signal.SIGKILL)

    async def terminate(self) -> float:
        """SIGTERM to ``tickstock serve`` (what systemd's stop sends); seconds until it exited."""
        assert self.serve is not None
        started = asyncio.get_running_loop().time()
        self.serve.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.serve.wait(), 30)
        finally:
            self.kill()
        return asyncio.get_running_loop().time() - started

    async def wait_exited(self) -> None:
        if self.serve is not None:
            await self.serve.wait()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.serve.pid, signal.SIGKILL)  # workers of a killed master

    async def health(self, http: aiohttp.ClientSession) -> str | None:
        try:
            _, body = await get_json(http, self.url + "/health")
        except (aiohttp.ClientError, OSError):
            return None
        return str(body["status"]) if isinstance(body, dict) else None


@dataclass
class Cluster:
    """nginx in front of node A (processes 0, 1) and node B (processes 2, 3), and a producer."""

    directory: Path
    https_port: int
    http_port: int
    cert: Path
    processes: list[Process]
    metrics_token: str
    redis_url: str
    key_prefix: str
    channels: DemoChannels
    nginx: asyncio.subprocess.Process | None = None
    producer: asyncio.subprocess.Process | None = None
    http: aiohttp.ClientSession = field(init=False)

    @property
    def url(self) -> str:
        return f"https://localhost:{self.https_port}"

    @property
    def node_a(self) -> list[Process]:
        return self.processes[:2]

    @property
    def node_b(self) -> list[Process]:
        return self.processes[2:]

    def ssl_context(self) -> ssl.SSLContext:
        """Verifies the throwaway certificate as a client would verify a real one."""
        return ssl.create_default_context(cafile=str(self.cert))

    async def wait_healthy(self, processes: list[Process], within: float = 45) -> None:
        async def healthy() -> bool:
            for process in processes:
                if not process.running:
                    pytest.fail(f"process {process.port} exited:\n{tail(process.log)}")
            states = [await process.health(self.http) for process in processes]
            return all(state == "healthy" for state in states)

        await wait_until(healthy, within, "processes healthy", step=0.2)

    async def sockets(self, process: Process) -> int:
        """Sockets connected to one process (its detailed health, asked directly)."""
        headers = {"Authorization": f"Bearer {self.metrics_token}"}
        status, body = await get_json(self.http, process.url + "/api/health", headers)
        assert status == 200, body
        return int(body["data"]["realtime"]["sockets"])

    async def start_producer(self) -> None:
        with (self.directory / "producer.log").open("ab") as log:
            self.producer = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "tickstock", "demo-producer"),
                *("--redis-url", self.redis_url, "--rate", str(PRODUCER_RATE)),
                *("--symbols", ",".join(SYMBOLS)),
                *("--channel-prefix", self.channels.patterns.removesuffix(DemoChannels().patterns)),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=log,
            )

    async def stop_producer(self) -> None:
        if self.producer is not None and self.producer.returncode is None:
            self.producer.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.producer.wait(), 10)
        self.producer = None

    def logs(self) -> str:
        return "\n".join(f"--- {p.port}\n{tail(p.log, 15)}" for p in self.processes) + (
            f"\n--- nginx\n{tail(self.directory / 'error.log', 15)}"
        )


def nginx_main_conf(directory: Path) -> str:
    """The nginx.conf around the tickstock file (as Debian's /etc/nginx/nginx.conf would be)."""
    temp = directory / "temp"
    temp.mkdir(exist_ok=True)
    user = "user root root;\n" if os.geteuid() == 0 else ""
    paths = "".join(
        f"    {kind}_temp_path {temp / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"{user}worker_processes 1;\npid {directory / 'nginx.pid'};\n"
        f"error_log {directory / 'error.log'} notice;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        f"    access_log {directory / 'access.log'};\n"
        f"{paths}"
        f"    include {directory / 'tickstock.conf'};\n"
        "}\n"
    )


@pytest.fixture(name="cluster", scope="module")
async def _cluster(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_url: str, key_prefix: str
) -> AsyncIterator[Cluster]:
    if not os.access(NGINX, os.X_OK):  # pragma: no cover - CI installs it (.ci/run)
        pytest.skip(f"{NGINX} is not installed (apt-get install nginx)")
    directory = tmp_path_factory.mktemp("deploy")
    cert, key = await make_certificate(directory)
    prefix = f"{key_prefix}:deploy{secrets.token_hex(3)}"
    channels = DemoChannels().prefixed(f"{prefix}:")
    metrics_token = secrets.token_urlsafe(24)
    env = tickstock_env(
        env="production",
        secret_key=secrets.token_urlsafe(48),
        proxy_hops="1",
        database_url=database_url,
        redis_url=redis_url,
        key_prefix=prefix,
        ingest_channels=",".join(channels.all()),
        metrics_token=metrics_token,
        log_level="INFO",
    )
    env["PYTHONUNBUFFERED"] = "1"
    ports = [free_port() for _ in range(4)]
    processes = [Process(port, env, directory / f"process-{port}.log") for port in ports]
    cluster = Cluster(
        directory=directory,
        https_port=free_port(),
        http_port=free_port(),
        cert=cert,
        processes=processes,
        metrics_token=metrics_token,
        redis_url=redis_url,
        key_prefix=prefix,
        channels=channels,
    )
    (directory / "tickstock.conf").write_text(
        render_nginx_conf(
            processes=ports,
            http_port=cluster.http_port,
            https_port=cluster.https_port,
            cert=cert,
            key=key,
        )
    )
    (directory / "nginx.conf").write_text(nginx_main_conf(directory))
    nginx_args = (NGINX, "-p", str(directory), "-c", str(directory / "nginx.conf"))
    subprocess.run([*nginx_args, "-t", "-q"], check=True)  # noqa: ASYNC221 - before serving
    cluster.http = aiohttp.ClientSession()
    try:
        for process in processes:
            await process.start()
        with (directory / "nginx.stderr").open("wb") as log:
            cluster.nginx = await asyncio.create_subprocess_exec(
                *nginx_args, "-g", "daemon off;", stdout=asyncio.subprocess.DEVNULL, stderr=log
            )
        await cluster.wait_healthy(processes)
        await cluster.start_producer()
        yield cluster
    finally:
        with contextlib.suppress(Exception):
            await cluster.stop_producer()
        for process in processes:
            if process.running:
                with contextlib.suppress(Exception):
                    await process.terminate()
            process.kill()
        if cluster.nginx is not None and cluster.nginx.returncode is None:
            cluster.nginx.send_signal(signal.SIGQUIT)
            try:
                await asyncio.wait_for(cluster.nginx.wait(), 10)
            except TimeoutError:
                cluster.nginx.kill()
                await cluster.nginx.wait()
        await cluster.http.close()
