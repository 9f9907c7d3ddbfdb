"""Front-end libraries: installed from npm with the lock file, served from ``node_modules``.

``tickstock/web/package.json`` pins the libraries and ``package-lock.json`` fixes the whole tree;
``npm ci`` installs exactly that into ``tickstock/web/node_modules`` (git-ignored). Nothing from
npm is copied into the source tree: the pages load the ES module builds through
``/static/vendor/<name>``, an allow-list that maps a public name to one file in ``node_modules``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Final

__all__ = [
    "VENDOR",
    "WEB_DIR",
    "FrontendError",
    "VendorAsset",
    "VendorFile",
    "ensure_frontend",
    "load_vendor",
    "missing_vendor",
    "needs_install",
    "vendor_path",
    "vendor_version",
]

log = logging.getLogger(__name__)

WEB_DIR: Final = Path(__file__).resolve().parent


class FrontendError(RuntimeError):
    """The front-end packages cannot be installed (no npm, or ``npm ci`` failed)."""


@dataclass(frozen=True, slots=True)
class VendorFile:
    """One servable file of an npm package."""

    package: str
    file: str


# Public name -> file. Only these are served; the names are what the import map points at.
VENDOR: Final[dict[str, VendorFile]] = {
    "socket.io.js": VendorFile("socket.io-client", "dist/socket.io.esm.min.js"),
    "lightweight-charts.js": VendorFile(
        "lightweight-charts", "dist/lightweight-charts.standalone.production.mjs"
    ),
}


def needs_install(web_dir: Path = WEB_DIR) -> bool:
    """Whether ``node_modules`` is missing or older than ``package-lock.json``.

    npm writes ``node_modules/.package-lock.json`` at the end of every install, so its time is
    the time of the last complete install.
    """
    lock = web_dir / "package-lock.json"
    installed = web_dir / "node_modules" / ".package-lock.json"
    if not installed.is_file():
        return True
    return lock.is_file() and installed.stat().st_mtime < lock.stat().st_mtime


def ensure_frontend(web_dir: Path = WEB_DIR, *, npm: str = "npm") -> bool:
    """Run ``npm ci`` in ``web_dir`` when needed; True when it installed something.

    Raises :class:`FrontendError` when npm is missing or the install fails.
    """
    if not needs_install(web_dir):
        return False
    executable = shutil.which(npm)
    if executable is None:
        raise FrontendError(
            f"the dashboard's front-end packages are not installed in {web_dir / 'node_modules'}"
            " and npm was not found: install Node.js (npm), or run `npm ci` in that folder"
        )
    log.info("installing the dashboard's front-end packages (npm ci in %s)", web_dir)
    try:
        subprocess.run(
            [executable, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=web_dir,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise FrontendError(f"npm ci failed in {web_dir}: {exc}") from exc
    vendor_version.cache_clear()
    return True


def vendor_path(name: str, web_dir: Path = WEB_DIR) -> Path | None:
    """The file behind an allow-listed vendor name, or None (unknown name or not installed)."""
    entry = VENDOR.get(name)
    if entry is None:
        return None
    path = web_dir / "node_modules" / entry.package / entry.file
    return path if path.is_file() else None


def missing_vendor(web_dir: Path | None = None) -> list[str]:
    """The allow-listed files that are not installed; logged once per process and folder.

    Without them the API and Socket.IO work, but no page can load its libraries: the
    operator has to run ``npm ci`` (``tickstock serve`` does it by itself; hypercorn does not).
    """
    folder = web_dir or WEB_DIR
    missing = [name for name in VENDOR if vendor_path(name, folder) is None]
    if missing:
        _log_missing(folder)
    return missing


@cache
def _log_missing(web_dir: Path) -> None:
    log.error(
        "front-end packages are not installed in %s: the dashboard cannot load until an"
        " operator runs `npm ci --prefix %s` (Node 20); the API and Socket.IO work meanwhile",
        web_dir / "node_modules",
        web_dir,
    )


@cache
def vendor_version(name: str, web_dir: Path = WEB_DIR) -> str | None:
    """The installed version of a vendor file's package (for cache-busting URLs)."""
    entry = VENDOR.get(name)
    if entry is None:
        return None
    manifest = web_dir / "node_modules" / entry.package / "package.json"
    try:
        version = json.loads(manifest.read_text(encoding="utf-8")).get("version")
    except (OSError, ValueError):
        return None
    return version if isinstance(version, str) else None


@dataclass(frozen=True, slots=True)
class VendorAsset:
    """A vendor file held in memory, with its gzip form and validators."""

    body: bytes
    gzipped: bytes
    etag: str
    modified: float


def load_vendor(name: str, web_dir: Path = WEB_DIR) -> VendorAsset | None:
    """The allow-listed file ``name`` in memory (re-read when it changes on disk), or None.

    The files are a few hundred kilobytes in all: serving them from memory, compressed once,
    beats streaming them from disk on every request.
    """
    path = vendor_path(name, web_dir)
    if path is None:
        return None
    return _read_asset(path, path.stat().st_mtime_ns)


@lru_cache(maxsize=16)
def _read_asset(path: Path, mtime_ns: int) -> VendorAsset:
    body = path.read_bytes()
    digest = hashlib.sha256(body).hexdigest()[:32]
    return VendorAsset(body, gzip.compress(body, mtime=0), digest, mtime_ns / 1e9)
