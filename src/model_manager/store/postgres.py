"""The PostgreSQL backend: ``MODEL_MANAGER_DATABASE_URL=postgresql://…``, through psycopg 3.

Several managers, on one machine or many, share one database. What SQLite gets from its file lock this
backend gets from the server:

* Writes: ``record_usage`` is one ``INSERT`` in autocommit mode; the aggregate trigger runs in its
  transaction, and ``ON CONFLICT DO UPDATE`` takes the aggregate's row lock, so concurrent writers never
  lose a count. Every other write transaction first takes a transaction-level advisory lock
  (``WRITE_LOCK``), so that, as with SQLite's ``BEGIN IMMEDIATE``, multi-statement writes (an import, a
  sync, migrations) run one at a time and never deadlock each other.
* The switch lease is a session-level advisory lock on a connection of its own (``AdvisoryLeases``).
* A database that goes away: the call that finds it gone raises StoreError (an event whose call raised
  was not acknowledged; one whose call returned is committed). A connection the server closed while
  idle is noticed before it is used and opened again, so a restarted server is used again at once.
  Reads are retried once on a new connection; writes never are, since their commit may have landed.

The URL's password appears in no message: ``location`` is the URL with it masked, and every driver
message is passed through :meth:`PostgresBackend.describe`.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import select
import socket
import threading
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from ..config import database_password, redact_database_url
from ..errors import StoreError
from .lease import Leases, Reader, Writer, busy, describe
from .schema import POSTGRESQL, Cursor

NAMESPACE = 0x6D6D  # the first key of every advisory lock this package takes ("mm")
WRITE_LOCK = (NAMESPACE, 0)
# Client-side defaults, unless the URL sets them: a server that does not answer fails the call within
# seconds instead of the operating system's minutes.
CONNECT_DEFAULTS = {
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "application_name": "model-manager",
}
# The server drops a lease session whose machine stopped answering after about 5 + 2 * 3 seconds.
LEASE_KEEPALIVES = (
    "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 3"
)


@lru_cache(maxsize=256)
def _pg(sql: str) -> str:
    """The store's ``?`` placeholders as psycopg's ``%s`` (and a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


def lease_key(name: str) -> tuple[int, int]:
    digest = hashlib.blake2b(name.encode(), digest_size=4).digest()
    return NAMESPACE, 1 + int.from_bytes(digest) % 0x7FFFFFFE  # never WRITE_LOCK's 0


class PostgresBackend:
    """One connection for the store's statements (the store holds its lock around every call), plus one
    per held lease."""

    dialect = POSTGRESQL
    errors: tuple[type[Exception], ...] = (psycopg.Error,)

    def __init__(self, url: str) -> None:
        self.location = redact_database_url(url)
        self._secrets = _secret_forms(url)
        self._conn: psycopg.Connection[dict[str, Any]] | None = None
        self._in_transaction = False
        self._closed = False
        try:
            self._params: dict[str, Any] = CONNECT_DEFAULTS | conninfo_to_dict(url)
            self._connection()
        except psycopg.Error as exc:
            raise StoreError(f"cannot open {self.location}: {self.describe(exc)}") from None

    def describe(self, exc: BaseException) -> str:
        """The driver's message on one line, without the password (the URL itself shows masked)."""
        text = " ".join(str(exc).split())
        for secret, shown in self._secrets:
            text = text.replace(secret, shown)
        return text

    def session(self, application_name: str) -> psycopg.Connection[dict[str, Any]]:
        """A new autocommit connection of its own (for a lease)."""
        params = self._params | {"application_name": application_name}
        return psycopg.connect(**params, autocommit=True, row_factory=dict_row)

    def _connection(self) -> psycopg.Connection[dict[str, Any]]:
        if self._closed:
            raise StoreError(f"{self.location}: the store is closed")
        conn = self._conn
        if conn is not None and not self._in_transaction and (conn.closed or conn.broken or _hung_up(conn)):
            conn.close()
            conn = self._conn = None
        if conn is None:
            if self._in_transaction:
                raise psycopg.OperationalError("the connection to the database was lost mid-transaction")
            conn = self._conn = self.session(str(self._params["application_name"]))
        return conn

    # --- statements and transactions ---------------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return self._connection().execute(_pg(sql), tuple(params))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._connection().cursor() as cursor:
            cursor.executemany(_pg(sql), [tuple(r) for r in rows])

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return self.execute(sql, params).fetchall()
        except psycopg.OperationalError:
            if self._in_transaction or self._conn is None or not self._conn.broken:
                raise
        return self.execute(sql, params).fetchall()  # once more, on a new connection

    def begin(self) -> None:
        conn = self._connection()
        self._in_transaction = True
        try:
            conn.execute(f"BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK[0]}, {WRITE_LOCK[1]})")
        except BaseException:
            self.rollback()
            raise

    def commit(self) -> None:
        try:
            self._connection().execute("COMMIT")
        finally:
            self._in_transaction = False

    def rollback(self) -> None:
        self._in_transaction = False
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            return  # the server has already ended the transaction with the connection
        if conn.info.transaction_status != pq.TransactionStatus.IDLE:
            conn.execute("ROLLBACK")

    # --- what only this backend knows ---------------------------------------------------------------

    def change_marker(self) -> int:
        """The server's current snapshot (which transactions are visible) as a number: it changes when
        any session commits a write."""
        text = str(self.read("SELECT pg_current_snapshot()::text AS s")[0]["s"])
        return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest())

    def integrity_check(self) -> str:
        """Answers "ok" when the schema's indexes are valid and the aggregate trigger is enabled, else
        what is wrong (a table that is missing raises)."""
        rows = self.read(
            """SELECT c.relname AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
               WHERE NOT i.indisvalid AND i.indrelid = ANY (?::regclass[])""",
            (
                [
                    "models",
                    "usage_events",
                    "model_stats",
                    "metadata_overrides",
                    "state",
                    "download_jobs",
                    "hosts",
                    "host_reports",
                ],
            ),
        )
        if rows:
            return "invalid indexes: " + ", ".join(sorted(r["name"] for r in rows))
        trigger = self.read(
            "SELECT tgenabled AS state FROM pg_trigger WHERE tgname = 'usage_events_aggregate'"
            " AND tgrelid = 'usage_events'::regclass"
        )
        if not trigger or trigger[0]["state"] != "O":
            return "the usage aggregate trigger is missing or disabled"
        return "ok"

    def leases(self, write: Writer, read: Reader) -> Leases:
        return AdvisoryLeases(self, read)

    def close(self) -> None:
        self._closed = True
        if self._conn is not None:
            self._conn.close()


def _secret_forms(url: str) -> list[tuple[str, str]]:
    """What to replace in a message, longest first: the URL by its masked form, and the password as it
    may show up (decoded, or as written in the URL) by ``***``."""
    forms = [(url, redact_database_url(url))]
    password = database_password(url)
    if password and len(password) >= 3:  # masking every "a" of a message would hide nothing
        from urllib.parse import quote

        forms += [(form, "***") for form in {password, quote(password, safe=""), quote(password)}]
    return sorted(forms, key=lambda pair: len(pair[0]), reverse=True)


def _hung_up(conn: psycopg.Connection[Any]) -> bool:
    """Whether the server closed this idle connection: an idle connection has nothing to read but a
    notice or the end of the stream, and reading what is there tells which."""
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        return False
    # A server that shuts down sends its reason, then closes: read until nothing is left to read.
    for _ in range(8):
        if not select.select([conn.fileno()], [], [], 0)[0]:
            return False
        try:
            conn.pgconn.consume_input()
        except psycopg.OperationalError:
            return True
        if conn.pgconn.status == pq.ConnStatus.BAD:
            return True
    return True  # still talking while idle: not a connection to trust


class AdvisoryLeases:
    """Leases as session-level advisory locks, each on a connection of its own: the lock lives exactly
    as long as that session, so it dies with its holder."""

    def __init__(self, backend: PostgresBackend, read: Reader) -> None:
        self._backend, self._read = backend, read
        self._held: dict[int, psycopg.Connection[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def acquire(self, name: str, ttl_s: float, wait_s: float, poll_s: float) -> object:
        key = lease_key(name)
        label = f"model-manager pid {os.getpid()} on {socket.gethostname()}"[:63]
        try:
            conn = self._backend.session(label)
        except psycopg.Error as exc:
            raise StoreError(f"{self._backend.location}: {self._backend.describe(exc)}") from None
        try:
            conn.execute(LEASE_KEEPALIVES)
            taken = _take(conn, key, wait_s)
            holder = None if taken else _holder(conn, key)
        except psycopg.Error as exc:
            conn.close()
            raise StoreError(f"{self._backend.location}: {self._backend.describe(exc)}") from None
        except BaseException:
            conn.close()
            raise
        if not taken:
            conn.close()
            raise busy(holder, wait_s)
        with self._lock:
            self._held[id(conn)] = conn
        return id(conn)

    def release(self, handle: object) -> None:
        with self._lock:
            conn = self._held.pop(int(str(handle)), None)
        if conn is None:
            return
        try:
            conn.execute("SELECT pg_advisory_unlock_all()")  # now, not once the server notices the close
        except psycopg.Error:
            pass  # the session is gone, and its lock with it
        finally:
            conn.close()

    def holder(self, name: str) -> str | None:
        sql, params = _holder_query(lease_key(name))
        rows = self._read(sql, params)
        return _described(rows[0]) if rows else None

    def close(self) -> None:
        for handle in list(self._held):
            self.release(handle)


def _take(conn: psycopg.Connection[Any], key: tuple[int, int], wait_s: float) -> bool:
    if wait_s <= 0:
        row = conn.execute("SELECT pg_try_advisory_lock(%s, %s) AS got", key).fetchone()
        return row is not None and bool(row["got"])
    # The server queues the waiter and hands the lock over the moment it is released.
    timeout = 0 if math.isinf(wait_s) else max(1, round(wait_s * 1000))
    conn.execute(f"SET lock_timeout = {timeout}")
    try:
        conn.execute("SELECT pg_advisory_lock(%s, %s)", key)
    except psycopg.errors.LockNotAvailable:
        return False
    return True


def _holder_query(key: tuple[int, int]) -> tuple[str, tuple[int, int]]:
    return (
        """SELECT a.pid, a.application_name, host(a.client_addr) AS addr,
                  to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') AS since
           FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
             AND l.classid::bigint = ? AND l.objid::bigint = ?""",
        key,
    )


def _holder(conn: psycopg.Connection[Any], key: tuple[int, int]) -> str | None:
    sql, params = _holder_query(key)
    row = conn.execute(_pg(sql), params).fetchone()
    return _described(row) if row else None


def _described(row: dict[str, Any]) -> str:
    since = str(row["since"])
    found = re.fullmatch(r"model-manager pid (\d+) on (.+)", row["application_name"] or "")
    if found:
        return describe(found[1], found[2], since)
    return describe(f"behind server session {row['pid']}", row["addr"] or "the database server", since)
