"""A real, throwaway PostgreSQL server for the tests (and the store benchmark).

    with PostgresServer() as pg:          # initdb + start on a free 127.0.0.1 port (about 0.5 s)
        Store(pg.url)                     # postgresql://mm:...@127.0.0.1:PORT/mm
        pg.kill()                         # SIGKILL the postmaster and its backends: the database goes away
        pg.start()                        # again, on the same data dir and port: committed data is still there
    # stopped and its temporary directory removed, also when the body raised

The cluster lives in a fresh directory under /dev/shm when that is a roomy tmpfs, else under the
system temp dir (override: base_dir= or MODEL_MANAGER_PG_TMPDIR); it is removed on exit.
Standard library only (no psycopg needed here). PostgreSQL refuses to run as root, so when
the tests run as root the server is run as an unprivileged OS user (``postgres`` if that
account exists, else ``nobody``; override with ``os_user=`` or MODEL_MANAGER_PG_OS_USER) and
its temporary directory is owned by that user. As a normal user it runs as that user.

The binaries are looked up by :func:`find_postgres_bin`: MODEL_MANAGER_PG_BINDIR, then
``pg_config --bindir``, then PATH, then the usual install directories
(/usr/lib/postgresql/*/bin on Debian/Ubuntu, /usr/pgsql-*/bin on RHEL, Homebrew, ...).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

__all__ = ["BINDIR_ENV", "PostgresError", "PostgresServer", "default_parent_dir", "find_postgres_bin"]

BINDIR_ENV = "MODEL_MANAGER_PG_BINDIR"
OS_USER_ENV = "MODEL_MANAGER_PG_OS_USER"
TMPDIR_ENV = "MODEL_MANAGER_PG_TMPDIR"
_SHM_MIN_FREE = 1 << 30  # Docker's default /dev/shm is 64 MiB: too small for a cluster (about 40 MiB + WAL)

_REQUIRED = ("initdb", "postgres")
_CANDIDATE_GLOBS = (
    "/usr/lib/postgresql/*/bin",  # Debian, Ubuntu
    "/usr/pgsql-*/bin",  # RHEL, Fedora (PGDG)
    "/opt/homebrew/opt/postgresql@*/bin",  # Homebrew on Apple silicon
    "/usr/local/opt/postgresql@*/bin",  # Homebrew on Intel
    "/usr/local/pgsql/bin",  # built from source
    "/opt/homebrew/bin",
    "/usr/local/bin",
    "/usr/bin",
)


class PostgresError(RuntimeError):
    """initdb or the server failed; the message carries the tail of its log."""


def _is_bindir(path: Path) -> bool:
    return all(os.access(path / name, os.X_OK) and (path / name).is_file() for name in _REQUIRED)


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path)) or (0,)


def find_postgres_bin() -> Path | None:
    """The directory holding ``initdb`` and ``postgres``, or None when they are not installed.

    MODEL_MANAGER_PG_BINDIR, when set, is the only place looked at (set it to a bad path to
    simulate a machine without PostgreSQL). Otherwise the newest major version found wins.
    """
    override = os.environ.get(BINDIR_ENV)
    if override is not None:
        path = Path(override)
        return path if _is_bindir(path) else None

    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            # On Debian pg_config comes from libpq-dev and may name a version whose server is not installed.
            if out and _is_bindir(Path(out)):
                return Path(out)

    initdb = shutil.which("initdb")
    if initdb and _is_bindir(Path(initdb).resolve().parent):
        return Path(initdb).resolve().parent

    for pattern in _CANDIDATE_GLOBS:
        for candidate in sorted(glob.glob(pattern), key=_version_key, reverse=True):
            if _is_bindir(Path(candidate)):
                return Path(candidate)
    return None


def default_parent_dir() -> Path:
    """Where the temporary cluster goes: MODEL_MANAGER_PG_TMPDIR, else /dev/shm when it is a roomy
    world-writable tmpfs (initdb about 3x and CREATE DATABASE about 10x faster than on disk here),
    else the system temp dir."""
    override = os.environ.get(TMPDIR_ENV)
    if override:
        return Path(override)
    shm = Path("/dev/shm")
    with contextlib.suppress(OSError):
        st = shm.stat()
        vfs = os.statvfs(shm)
        roomy = vfs.f_bavail * vfs.f_frsize >= _SHM_MIN_FREE
        if stat.S_ISDIR(st.st_mode) and st.st_mode & 0o1777 == 0o1777 and roomy and os.access(shm, os.W_OK):
            return shm
    return Path(tempfile.gettempdir())


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of a process from /proc, or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[1])


def _children(pid: int) -> list[int]:
    """Direct children of pid (every PostgreSQL server process is a child of the postmaster)."""
    kids = []
    for entry in glob.glob("/proc/[0-9]*"):
        child = int(entry.rsplit("/", 1)[1])
        st = _proc_stat(child)
        if st is not None and st[1] == pid:
            kids.append(child)
    return kids


def _alive(pid: int) -> bool:
    if Path("/proc/self/stat").exists():
        st = _proc_stat(pid)
        # Unreaped zombies count as gone: PID 1 in a container may never reap them.
        return st is not None and st[0] not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class PostgresServer:
    """A PostgreSQL server in a temporary directory, on a free loopback TCP port and a unix socket there.

    Attributes once started: ``url`` (``postgresql://user:password@127.0.0.1:PORT/dbname``),
    ``host``, ``port``, ``user``, ``password``, ``dbname``, ``socket_dir``, ``data_dir``,
    ``log_path``, ``pid`` (the postmaster), ``start_seconds`` (the last start) and
    ``init_seconds`` (initdb).
    """

    def __init__(
        self,
        *,
        bindir: Path | str | None = None,
        user: str = "mm",
        password: str | None = None,
        dbname: str = "mm",
        port: int | None = None,
        base_dir: Path | str | None = None,
        os_user: str | None = None,
        durable: bool = False,
        settings: dict[str, str] | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        found = Path(bindir) if bindir is not None else find_postgres_bin()
        if found is None or not _is_bindir(found):
            raise PostgresError(
                f"PostgreSQL binaries (initdb, postgres) not found (looked in {BINDIR_ENV}, "
                f"pg_config --bindir, PATH, {', '.join(_CANDIDATE_GLOBS[:2])})"
            )
        self.bindir = found
        self.user = user
        self.password = password if password is not None else "pw-" + secrets.token_hex(8)
        self.dbname = dbname
        self.host = "127.0.0.1"
        self._fixed_port = port is not None
        self.port = port if port is not None else _free_port(self.host)
        self.durable = durable
        self.settings = dict(settings or {})
        self.start_timeout = start_timeout
        self.init_seconds: float | None = None
        self.start_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._initialized = False
        self._created_db = False

        self._uid, self._gid = self._pick_os_user(os_user)
        self.os_user = pwd.getpwuid(self._uid).pw_name
        parent = Path(base_dir) if base_dir is not None else default_parent_dir()
        self.base_dir = Path(tempfile.mkdtemp(prefix="pgtest-", dir=parent))
        self.data_dir = self.base_dir / "data"
        self.socket_dir = self.base_dir / "sock"
        self.log_path = self.base_dir / "postgres.log"
        if self._switch_user:
            os.chown(self.base_dir, self._uid, self._gid)
            self._check_traversable(self.base_dir)

    # --- who runs it -------------------------------------------------------------------------

    @property
    def _switch_user(self) -> bool:
        return self._uid != os.geteuid()

    @staticmethod
    def _pick_os_user(name: str | None) -> tuple[int, int]:
        name = name or os.environ.get(OS_USER_ENV)
        if os.geteuid() != 0:
            if name and name != pwd.getpwuid(os.geteuid()).pw_name:
                raise PostgresError(f"os_user={name!r} needs root; running as uid {os.geteuid()}")
            return os.geteuid(), os.getegid()
        candidates = [name] if name else ["postgres", "nobody"]
        for candidate in candidates:
            try:
                entry = pwd.getpwnam(candidate)
            except KeyError:
                continue
            if entry.pw_uid == 0:
                raise PostgresError(f"os_user={candidate!r} is root; PostgreSQL refuses to run as root")
            return entry.pw_uid, entry.pw_gid
        raise PostgresError(f"running as root and none of the OS users {candidates} exists to run PostgreSQL")

    def _check_traversable(self, path: Path) -> None:
        """Every parent of ``path`` must let the server's user through (pytest's tmp dirs are 0700)."""
        for parent in path.parents:
            st = parent.stat()
            if st.st_uid == self._uid:
                ok = bool(st.st_mode & stat.S_IXUSR)
            elif st.st_gid == self._gid:
                ok = bool(st.st_mode & stat.S_IXGRP)
            else:
                ok = bool(st.st_mode & stat.S_IXOTH)
            if not ok:
                raise PostgresError(
                    f"{parent} is not searchable by OS user {self.os_user!r}, who runs PostgreSQL; "
                    f"pass base_dir= (or set {TMPDIR_ENV} to) a world-searchable directory"
                )

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C", TZ="UTC")
        if self._switch_user:
            env.update(HOME=str(self.base_dir), USER=self.os_user, LOGNAME=self.os_user)
        return env

    @property
    def _as_uid(self) -> int | None:  # for subprocess' user=/group=/extra_groups=: None = stay as we are
        return self._uid if self._switch_user else None

    @property
    def _as_gid(self) -> int | None:
        return self._gid if self._switch_user else None

    @property
    def _as_groups(self) -> list[int] | None:
        return [] if self._switch_user else None  # drop root's supplementary groups

    def _cmd(self, argv: Sequence[str], *, die_with_parent: bool = False) -> list[str]:
        # setpriv (util-linux) sets PR_SET_PDEATHSIG after the user switch, so the server dies with
        # the test process even when pytest itself is SIGKILLed; without setpriv we rely on stop()/__del__.
        # Linux sends it when the *thread* that started the server exits: start it from the main thread.
        setpriv = shutil.which("setpriv")
        if die_with_parent and setpriv and os.uname().sysname == "Linux":
            return [setpriv, "--pdeathsig", "KILL", "--", *argv]
        return list(argv)

    # --- lifecycle ---------------------------------------------------------------------------

    def _initdb(self) -> None:
        pwfile = self.base_dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if self._switch_user:
            os.chown(pwfile, self._uid, self._gid)
        t0 = time.perf_counter()
        argv = [
            str(self.bindir / "initdb"),
            "-D", str(self.data_dir),
            "-U", self.user,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "-E", "UTF8",
            "--locale=C",
            "--no-sync",  # a throwaway cluster: skip the fsyncs (about 10x faster initdb)
        ]  # fmt: skip
        try:
            result = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=120,
                env=self._env(),
                cwd=self.base_dir,
                user=self._as_uid,
                group=self._as_gid,
                extra_groups=self._as_groups,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        self.init_seconds = time.perf_counter() - t0
        if result.returncode != 0:
            raise PostgresError(f"initdb failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")

        self.socket_dir.mkdir(mode=0o700)
        if self._switch_user:
            os.chown(self.socket_dir, self._uid, self._gid)
        conf = {
            "listen_addresses": f"'{self.host}'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "max_connections": "100",
            "shared_buffers": "'32MB'",
            "dynamic_shared_memory_type": "posix",
            "log_destination": "'stderr'",
            "logging_collector": "off",
            "log_min_messages": "warning",
            "timezone": "'UTC'",
        }
        if not self.durable:
            # Fine for a test server: a SIGKILL of postgres keeps every committed transaction (the OS
            # has the WAL); only a crash of the machine could lose data.
            # Not synchronous_commit=off: its commits sit in shared memory for up to 3 x wal_writer_delay
            # and a kill() loses them. fsync=off only skips flushing the OS cache, which a kill keeps.
            conf.update(fsync="off", full_page_writes="off")
        conf.update(self.settings)
        with (self.data_dir / "postgresql.conf").open("a") as fh:
            fh.write("\n# added by pg_server.py\n")
            fh.writelines(f"{key} = {value}\n" for key, value in conf.items())
        self._initialized = True

    def _set_port(self, port: int) -> None:
        self.port = port
        with (self.data_dir / "postgresql.conf").open("a") as fh:
            fh.write(f"port = {port}\n")

    def start(self) -> PostgresServer:
        """initdb (the first time) and start the server; returns self. Safe to call after stop()/kill()."""
        if self.running:
            return self
        if not self._initialized:
            self._initdb()
        attempts = 1 if self._fixed_port else 3
        for attempt in range(attempts):
            if attempt or (not self._fixed_port and _port_open(self.host, self.port)):
                self._set_port(_free_port(self.host))  # lost the race for the port: take another one
            try:
                self._start_once()
                break
            except PostgresError:
                if attempt == attempts - 1 or "could not bind" not in _tail(self.log_path, 60):
                    raise
        if not self._created_db:
            self._create_default_db()
        return self

    def _start_once(self) -> None:
        t0 = time.perf_counter()
        log = self.log_path.open("ab")
        try:
            self._proc = subprocess.Popen(
                self._cmd(
                    [str(self.bindir / "postgres"), "-D", str(self.data_dir)],
                    die_with_parent=True,
                ),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # not in pytest's process group: a Ctrl-C goes to pytest, which stops it
                env=self._env(),
                cwd=self.base_dir,
                user=self._as_uid,
                group=self._as_gid,
                extra_groups=self._as_groups,
            )
        finally:
            log.close()
        deadline = time.monotonic() + self.start_timeout
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                self._proc = None
                raise PostgresError(f"postgres exited while starting:\n{_tail(self.log_path)}")
            if self._ready():
                break
            if time.monotonic() > deadline:
                self.kill()
                raise PostgresError(
                    f"postgres not ready after {self.start_timeout}s:\n{_tail(self.log_path)}"
                )
            time.sleep(0.02)
        self.start_seconds = time.perf_counter() - t0

    def _ready(self) -> bool:
        # postmaster.pid line 8 reads "ready" once it accepts connections (what pg_ctl -w waits for).
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[7].strip() == "ready" and _port_open(self.host, self.port)

    def _create_default_db(self) -> None:
        if self.dbname == "postgres":
            self._created_db = True
            return
        self.run_client("createdb", self.dbname)
        self._created_db = True

    def run_client(self, tool: str, *args: str) -> str:
        """Run a client program of the same bindir (createdb, psql, pg_dump...) against this server."""
        exe = self.bindir / tool
        if not exe.exists():
            raise PostgresError(f"{exe} not found")
        env = self._env()
        env.update(
            PGHOST=str(self.socket_dir), PGPORT=str(self.port), PGUSER=self.user, PGPASSWORD=self.password
        )
        env.setdefault("PGDATABASE", "postgres")
        result = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=60, env=env)
        if result.returncode != 0:
            raise PostgresError(f"{tool} {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def stop(self, timeout: float = 15.0) -> None:
        """Fast shutdown (SIGINT: roll back open transactions, disconnect clients); escalates to SIGKILL."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return
        self._proc = None  # a postmaster that exited has waited for all its children

    def kill(self) -> None:
        """SIGKILL the postmaster and all its children (backends, checkpointer, walwriter...) at once, as
        a crash or OOM kill would: clients see their connections drop. They are gone when this returns,
        so the next start() is immediate. (PostgreSQL makes each child its own process group, so killpg
        would not reach them.)"""
        proc = self._proc
        if proc is None:
            return
        victims = [proc.pid]
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGSTOP)  # no new forks while we collect its children
            victims += _children(proc.pid)
            for pid in victims:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        proc.wait()
        self._proc = None
        self._wait_gone(victims)

    @staticmethod
    def _wait_gone(pids: Sequence[int], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.01)

    def cleanup(self) -> None:
        """Stop the server (if running) and delete its directory."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    # --- URLs --------------------------------------------------------------------------------

    def url_for(self, dbname: str) -> str:
        return (
            f"postgresql://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
            f"@{self.host}:{self.port}/{quote(dbname, safe='')}"
        )

    @property
    def url(self) -> str:
        """postgresql://user:password@127.0.0.1:PORT/dbname (the database created at the first start)."""
        return self.url_for(self.dbname)

    @property
    def admin_url(self) -> str:
        """The same role on the ``postgres`` maintenance database (for CREATE/DROP DATABASE)."""
        return self.url_for("postgres")

    # --- context manager ---------------------------------------------------------------------

    def __enter__(self) -> PostgresServer:
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cleanup()

    def __del__(self) -> None:  # last resort: never leave a postmaster (or its directory) behind
        with contextlib.suppress(Exception):
            if self._proc is not None and self._proc.poll() is None:
                self.kill()
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<PostgresServer {state} {self.host}:{self.port} data={self.data_dir} os_user={self.os_user}>"
