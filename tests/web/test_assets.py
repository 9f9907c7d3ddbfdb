"""Front-end packages: installed by ``npm ci`` when missing or stale, served by an allow-list."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.support.auth import UserLogin
from tickstock.web import assets
from tickstock.web.assets import (
    VENDOR,
    WEB_DIR,
    FrontendError,
    ensure_frontend,
    needs_install,
    vendor_path,
    vendor_version,
)


def _web_dir(tmp_path: Path) -> Path:
    web = tmp_path / "web"
    web.mkdir()
    (web / "package.json").write_text("{}")
    (web / "package-lock.json").write_text("{}")
    return web


def _fake_npm(tmp_path: Path) -> Path:
    """An ``npm`` that records its arguments and installs like ``npm ci`` would."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text(
        "#!/bin/sh\n"
        'echo "$@" >> calls.log\n'
        "mkdir -p node_modules && echo '{}' > node_modules/.package-lock.json\n"
    )
    npm.chmod(npm.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def test_installs_when_missing_then_only_when_the_lock_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    web = _web_dir(tmp_path)
    monkeypatch.setenv("PATH", f"{_fake_npm(tmp_path)}{os.pathsep}{os.environ['PATH']}")
    assert needs_install(web)
    assert ensure_frontend(web) is True
    assert (web / "calls.log").read_text().split() == [
        "ci",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
    ]
    assert ensure_frontend(web) is False

    # A newer lock file (a pull that changed the packages) installs again.
    installed = web / "node_modules" / ".package-lock.json"
    old = installed.stat().st_mtime - 10
    os.utime(installed, (old, old))
    assert needs_install(web)
    assert ensure_frontend(web) is True
    assert len((web / "calls.log").read_text().splitlines()) == 2


def test_missing_npm_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    web = _web_dir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    with pytest.raises(FrontendError, match="npm was not found"):
        ensure_frontend(web)


def test_only_allow_listed_files_are_served() -> None:
    assert vendor_path("../package.json") is None
    assert vendor_path("socket.io-client/package.json") is None
    for name in VENDOR:
        path = vendor_path(name)
        assert path is not None and path.is_relative_to(WEB_DIR / "node_modules")
        assert vendor_version(name)


async def test_favicon_ico_is_served_to_everyone(served: object) -> None:
    import aiohttp

    url = f"{served.url}/favicon.ico"  # type: ignore[attr-defined]
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200  # no login needed: the login page asks for it too
        assert response.content_type == "image/svg+xml"
        assert (await response.read()).lstrip().startswith(b"<svg")


async def test_pages_without_the_packages_say_what_to_run_and_log_it_once(
    client: Any,
    user: UserLogin,
    login_client: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """hypercorn started before `npm ci`: a page explains, and the log tells the operator."""
    monkeypatch.setattr(assets, "WEB_DIR", _web_dir(tmp_path))  # npm ci never ran there
    await login_client(client, user)
    caplog.set_level(logging.ERROR, "tickstock.web.assets")
    for _ in range(2):
        response = await client.get("/")
        assert response.status_code == 503
        assert "npm ci --prefix tickstock/web" in await response.get_data(as_text=True)
    logged = [r.getMessage() for r in caplog.records if r.name == "tickstock.web.assets"]
    assert len(logged) == 1 and "npm ci --prefix" in logged[0], logged
