"""Leases: one holder at a time per name, across every process (and machine) sharing the store.

The manager takes the ``switch`` lease around each switch and delete. A lease dies with its holder:

* on SQLite it is a row in ``state`` naming the holder's process by its liveness token (pid and process
  start time, see ``liveness``), host and pid namespace. A holder on this host that no longer runs is
  taken over at once; a holder elsewhere (another machine, another container's pid namespace) is trusted
  until the row's time to live ends, as a pid means nothing there. A holder that lives but hangs is also
  overtaken once the time to live ends.
* on PostgreSQL it is an advisory lock held by a session of its own (``postgres.AdvisoryLeases``), which
  the server drops when the holder's connection closes: a process that exits, is killed or loses its
  machine releases it (a dead machine once TCP keepalives give up on it, seconds later).

A caller waits at most ``wait_s`` for the turn, then gets SwitchInProgressError naming the holder.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Protocol

from ..errors import SwitchInProgressError
from ..liveness import is_alive, process_token
from .schema import Transaction, utc_now


class Leases(Protocol):
    """What the store asks of a backend's leases."""

    def acquire(self, name: str, ttl_s: float, wait_s: float, poll_s: float) -> object:
        """Take the lease (a handle for ``release``). Raises SwitchInProgressError after ``wait_s``."""

    def release(self, handle: object) -> None: ...

    def holder(self, name: str) -> str | None:
        """Who holds the lease now, in words; None when nobody (alive) does."""

    def close(self) -> None:
        """Release every lease this store holds (the store is closing)."""


def busy(holder: str | None, waited_s: float) -> SwitchInProgressError:
    """The error for a lease that stayed taken: who holds it, and how long the caller waited."""
    detail = holder or "held by another process"
    if waited_s > 0:
        detail += f"; waited {waited_s:.3g} s"
    return SwitchInProgressError(detail)


def describe(pid: str, host: str, since: str) -> str:
    return f"process {pid} on {host} since {since[:19]}Z"


@lru_cache(maxsize=1)
def _pid_namespace() -> str:
    """This process's pid namespace on Linux (containers sharing a host name and a volume have their
    own), "" elsewhere."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


@dataclass(frozen=True)
class Holder:
    """One lease row's holder (SQLite): ``owner`` is its liveness token, valid in the pid namespace
    ``ns`` of ``host``; ``expires`` is a Unix time."""

    id: str
    owner: str
    host: str
    since: str
    expires: float
    ns: str = ""

    @classmethod
    def mine(cls, ttl_s: float) -> Holder:
        import uuid

        token, host = process_token(), socket.gethostname()
        return cls(uuid.uuid4().hex, token, host, utc_now(), time.time() + ttl_s, _pid_namespace())

    def encode(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def decode(cls, text: str | None) -> Holder | None:
        """The holder of a row; rows written before liveness tokens (``pid:thread:uuid|expires``) are
        read as this host's, with the pid alone to tell whether they live."""
        if not text:
            return None
        try:
            fields = json.loads(text)
            known = {k: fields[k] for k in ("id", "owner", "host", "since", "expires")}
            return cls(**known, ns=str(fields.get("ns", "")))
        except (ValueError, TypeError, KeyError):
            token, _, expires = text.rpartition("|")
            pid = token.partition(":")[0]
            try:
                until = float(expires)
            except ValueError:
                until = 0.0
            return cls(token, f"{pid}:", socket.gethostname(), utc_now(), until, _pid_namespace())

    def holds(self, now: float) -> bool:
        """Whether this holder still has the lease: its time is not up and, where its pid can be checked
        (this host, this pid namespace), it runs."""
        if now >= self.expires:
            return False
        here = self.host == socket.gethostname() and self.ns in ("", _pid_namespace())
        return not here or is_alive(self.owner)

    def describe(self) -> str:
        return describe(self.owner.partition(":")[0], self.host, self.since)


Writer = Callable[[], AbstractContextManager[Transaction]]
Reader = Callable[[str, Sequence[Any]], list[Any]]


class RowLeases:
    """Leases as rows of the ``state`` table, taken and released in write transactions of the store."""

    def __init__(self, write: Writer, read: Reader) -> None:
        self._write, self._read = write, read
        self._held: dict[str, tuple[str, str]] = {}  # holder id -> (key, row value)

    def acquire(self, name: str, ttl_s: float, wait_s: float, poll_s: float) -> object:
        key, started = f"lease:{name}", time.monotonic()
        while True:
            with self._write() as tx:
                row = tx.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
                current = Holder.decode(row["value"] if row else None)
                if current is None or not current.holds(time.time()):
                    mine = Holder.mine(ttl_s)
                    value = mine.encode()
                    tx.execute(
                        "INSERT INTO state (key, value) VALUES (?, ?) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        (key, value),
                    )
                    self._held[mine.id] = (key, value)
                    return mine.id
            waited = time.monotonic() - started
            if waited >= wait_s:
                raise busy(current.describe(), wait_s)
            time.sleep(min(poll_s, wait_s - waited))

    def release(self, handle: object) -> None:
        held = self._held.pop(str(handle), None)
        if held is not None:
            with self._write() as tx:
                tx.execute("DELETE FROM state WHERE key = ? AND value = ?", held)

    def holder(self, name: str) -> str | None:
        rows = self._read("SELECT value FROM state WHERE key = ?", (f"lease:{name}",))
        current = Holder.decode(rows[0]["value"] if rows else None)
        return current.describe() if current is not None and current.holds(time.time()) else None

    def close(self) -> None:
        for handle in list(self._held):
            self.release(handle)
