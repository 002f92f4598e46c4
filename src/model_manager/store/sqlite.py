"""The SQLite backend: a file in the data directory (or ``":memory:"``), the default.

One connection per store, opened with ``check_same_thread=False`` and guarded by the store's lock: the
REST server calls in from a thread pool, and a single connection per process keeps transactions simple.
Other processes (the CLI, the user's app) open their own connections; WAL mode lets their readers run
beside one writer, and ``busy_timeout`` makes a writer wait for the lock instead of failing with
"database is locked". Writes begin with ``BEGIN IMMEDIATE`` so that a read-then-write transaction
never has to upgrade its lock (the upgrade is what deadlocks across processes).

Durability: ``synchronous=NORMAL`` in WAL mode, so a committed event survives the process being
killed at any point; surviving a power loss as well would take ``synchronous=FULL``, an fsync per
event, which is not set.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .schema import SQLITE, Cursor

if TYPE_CHECKING:
    from .lease import Leases, Reader, Writer

BUSY_TIMEOUT_MS = 60_000


class SQLiteBackend:
    """One SQLite connection; the store holds its lock around every call."""

    dialect = SQLITE
    errors: tuple[type[Exception], ...] = (sqlite3.Error,)

    def __init__(self, path: str | Path) -> None:
        self.location = str(path)
        if self.location != ":memory:":
            Path(self.location).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(
            self.location, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        try:
            self._conn.row_factory = sqlite3.Row
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._enable_wal()
            self._conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            self._conn.close()
            raise

    def _enable_wal(self) -> None:
        # Switching a new file to WAL takes an exclusive lock and does not wait on busy_timeout, so
        # processes opening a fresh store at the same moment retry here instead of failing.
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def describe(self, exc: BaseException) -> str:
        return str(exc)

    # --- statements and transactions ---------------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return self._conn.execute(sql, tuple(params))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._conn.execute(sql, tuple(params)).fetchall()

    def begin(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self._conn.execute("COMMIT")

    def rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    # --- what only this backend knows ---------------------------------------------------------------

    def change_marker(self) -> int:
        """SQLite's ``data_version``: it changes when another connection commits."""
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def integrity_check(self) -> str:
        return str(self._conn.execute("PRAGMA integrity_check").fetchone()[0])

    def leases(self, write: Writer, read: Reader) -> Leases:
        from .lease import RowLeases

        return RowLeases(write, read)

    def close(self) -> None:
        self._conn.close()
