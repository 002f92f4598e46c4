"""The store: installed-model records, usage events with per-model aggregates, state, leases and jobs.

``Store(location)`` opens a SQLite file (the default: ``<home>/model_manager.db``) or, for a
``postgresql://`` URL, a PostgreSQL database shared by managers on several machines. Both backends run
the same statements (``?`` placeholders) on one schema and one set of numbered migrations
(``schema.MIGRATIONS``); what differs lives in ``sqlite.py`` and ``postgres.py``: connections,
transactions, the change marker, the integrity check and how a lease is held (``lease.py``).

    store/
      __init__.py  the Store API the rest of the package uses
      schema.py    migrations, timestamps, the transaction protocol
      lease.py     the switch lease: rows with liveness tokens (SQLite), or ``postgres.AdvisoryLeases``
      hosts.py     the fleet's hosts and the GPU reports their managers publish
      jobs.py      background jobs' rows (downloads, benchmarks)
      speeds.py    the speed measured per model and host (benchmarks, timed uses)
      sqlite.py    the SQLite backend
      postgres.py  the PostgreSQL backend (psycopg 3, imported only when a URL names it)
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import DATABASE_URL_SCHEMES, DEFAULT_HOST_NAME, redact_database_url
from ..errors import ModelManagerError, StoreError
from ..types import InstalledModel, ModelRecord, ModelStats
from .hosts import HostTables
from .jobs import JobTables
from .schema import MIGRATIONS, POSTGRESQL, Backend, Migration, Transaction, utc_now
from .speeds import SpeedTables

if TYPE_CHECKING:
    from .lease import Leases

__all__ = ["IMPORTED", "MIGRATIONS", "Migration", "Store", "Transaction", "utc_now"]

UsageEvent = tuple[str, float, bool]
"""One recorded use: (when, seconds, success)."""
IMPORTED = ""
"""The host an imported aggregate is kept under: an export document says nothing of hosts."""
_SUMS = """model, SUM(usage_count) AS usage_count, SUM(success_count) AS success_count,
           SUM(total_time) AS total_time, MAX(last_used) AS last_used FROM model_stats"""


def _record_from_row(row: Any) -> ModelRecord:
    return ModelRecord(
        name=row["name"],
        installed=bool(row["installed"]),
        size_bytes=row["size_bytes"],
        digest=row["digest"],
        modified_at=row["modified_at"],
        facts=json.loads(row["facts"]) if row["facts"] else None,
        updated_at=row["updated_at"],
    )


def _stats_from_row(row: Any) -> ModelStats:
    return ModelStats(
        name=row["model"],
        usage_count=int(row["usage_count"]),  # PostgreSQL's SUM of a BIGINT is a NUMERIC
        success_count=int(row["success_count"]),
        total_time=float(row["total_time"]),
        last_used=row["last_used"],
    )


def _open_backend(location: str | Path) -> Backend:
    text = str(location)
    if text.partition("://")[0].lower() in DATABASE_URL_SCHEMES:
        try:
            from .postgres import PostgresBackend
        except ImportError as exc:
            raise StoreError(
                f"cannot open {redact_database_url(text)}: the PostgreSQL store needs psycopg 3 "
                f'(pip install "model-manager[postgres]"): {exc}'
            ) from None
        return PostgresBackend(text)
    from .sqlite import SQLiteBackend

    return SQLiteBackend(location)


class Store(HostTables, JobTables, SpeedTables):
    """Everything the manager records, in a SQLite file (or ``":memory:"``) or a PostgreSQL database.

    ``path`` names it in messages: the file, or the URL with its password masked. Installed state, usage
    and jobs are kept per host (``host``: a fleet host's name; the default host is ``local``).
    """

    def __init__(self, location: str | Path, *, migrations: list[Migration] | None = None) -> None:
        self._lock = threading.RLock()
        self._depth = 0
        self._commits = 0
        try:
            self._db = _open_backend(location)
        except ModelManagerError:
            raise
        except Exception as exc:  # the file cannot be created or opened
            raise StoreError(f"cannot open {redact_database_url(str(location))}: {exc}") from None
        self.path = self._db.location
        self.backend = self._db.dialect
        failures: tuple[type[Exception], ...] = (*self._db.errors, OSError)
        try:
            self._migrate(MIGRATIONS if migrations is None else migrations)
        except failures as exc:
            self._db.close()
            raise StoreError(f"cannot open {self.path}: {self._db.describe(exc)}") from None
        self._held_leases: Leases | None = None

    @property
    def _leases(self) -> Leases:
        """The backend's leases, set up on first use (most commands never take one)."""
        if self._held_leases is None:
            self._held_leases = self._db.leases(self._write, self._read)
        return self._held_leases

    def close(self) -> None:
        """Release the leases this store holds and close its connection."""
        gone: tuple[type[Exception], ...] = (*self._db.errors, StoreError)
        with self._lock:
            try:
                if self._held_leases is not None:
                    self._held_leases.close()
            except gone:
                pass  # the database went away, and with it what this store held
            finally:
                self._db.close()

    # --- schema ----------------------------------------------------------------------------------

    def _applied(self) -> set[int]:
        try:
            return {row["version"] for row in self._db.read("SELECT version FROM _migrations")}
        except self._db.errors:
            self._db.rollback()
            return set()  # a new database: no _migrations table yet

    def _migrate(self, migrations: list[Migration]) -> None:
        # Most opens find nothing to do: check with a plain read first, so opening a store does not
        # take the write lock that other processes' writers are using.
        if self._applied() >= set(range(1, len(migrations) + 1)):
            return
        with self.atomic() as tx:
            tx.execute(
                "CREATE TABLE IF NOT EXISTS _migrations (version INTEGER PRIMARY KEY, name TEXT, applied_at TEXT)"
            )
            done = {row["version"] for row in tx.execute("SELECT version FROM _migrations").fetchall()}
            for version, migration in enumerate(migrations, start=1):
                if version in done:
                    continue
                migration(tx)
                tx.execute(
                    "INSERT INTO _migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (version, migration.__name__, utc_now()),
                )

    def schema_version(self) -> int:
        rows = self._read("SELECT MAX(version) AS v FROM _migrations")
        return int(rows[0]["v"] or 0)

    def change_marker(self) -> tuple[int, int]:
        """A value that changes whenever anything is committed to the store, by any process: the
        backend's view of other connections' commits, and a counter of this store's own."""
        try:
            with self._lock:
                return int(self._db.change_marker()), self._commits
        except self._db.errors as exc:
            raise StoreError(f"{self.path}: {self._db.describe(exc)}") from None

    def integrity_check(self) -> str:
        """Answers "ok", or what is wrong (SQLite's ``integrity_check``; on PostgreSQL, the schema's objects)."""
        try:
            with self._lock:
                return str(self._db.integrity_check())
        except self._db.errors as exc:
            raise StoreError(f"{self.path}: {self._db.describe(exc)}") from None

    # --- transactions ----------------------------------------------------------------------------

    @contextmanager
    def atomic(self) -> Iterator[Transaction]:
        """A write transaction, one writer at a time across processes; nested calls join the outer one."""
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._db.begin()
            self._depth += 1
            try:
                yield self._db
            except BaseException:
                self._depth -= 1
                if outer:
                    self._db.rollback()
                raise
            self._depth -= 1
            if outer:
                try:
                    self._db.commit()
                    self._commits += 1
                except BaseException:
                    self._db.rollback()
                    raise

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            with self._lock:
                return list(self._db.read(sql, params))
        except self._db.errors as exc:
            raise StoreError(f"{self.path}: {self._db.describe(exc)}") from None

    @contextmanager
    def _write(self) -> Iterator[Transaction]:
        try:
            with self.atomic() as tx:
                yield tx
        except self._db.errors as exc:
            raise StoreError(f"{self.path}: {self._db.describe(exc)}") from None

    # --- state and leases ------------------------------------------------------------------------

    def get_state(self, key: str) -> str | None:
        rows = self._read("SELECT value FROM state WHERE key = ?", (key,))
        return rows[0]["value"] if rows else None

    def set_state(self, key: str, value: str | None) -> None:
        with self._write() as tx:
            tx.execute(
                "INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    @contextmanager
    def lease(
        self, name: str, ttl_s: float, *, wait_s: float = math.inf, poll_s: float = 0.02
    ) -> Iterator[None]:
        """Hold a named lease shared by every process using this store, waiting at most ``wait_s`` for it.

        The lease dies with its holder (see ``lease.py``): a holder that no longer runs is taken over at
        once. ``ttl_s`` bounds how long a SQLite lease row is trusted when its holder cannot be checked
        (another host) or hangs. Raises SwitchInProgressError naming the holder when the wait ends
        (the lease guards switches and deletes), StoreError when the store fails.
        """
        handle = self._leases.acquire(name, ttl_s, wait_s, poll_s)
        try:
            yield
        finally:
            # If the store went away, the lease went with it (PostgreSQL) or goes with its holder.
            with suppress(StoreError):
                self._leases.release(handle)

    def lease_holder(self, name: str) -> str | None:
        """Who holds lease ``name`` now, in words ("process 4242 on box since …"); None when nobody
        alive does."""
        with self._lock:
            holder: str | None = self._leases.holder(name)
        return holder

    # --- models ----------------------------------------------------------------------------------

    def get_model(self, name: str, host: str = DEFAULT_HOST_NAME) -> ModelRecord | None:
        rows = self._read("SELECT * FROM models WHERE host = ? AND name = ?", (host, name))
        return _record_from_row(rows[0]) if rows else None

    def list_models(
        self, *, installed_only: bool = False, host: str = DEFAULT_HOST_NAME
    ) -> list[ModelRecord]:
        where = " AND installed = 1" if installed_only else ""
        return [
            _record_from_row(r)
            for r in self._read(
                f"SELECT * FROM models WHERE host = ?{where} ORDER BY {self._by('name')}", (host,)
            )
        ]

    def _by(self, column: str) -> str:
        """ORDER BY a name column as SQLite's NOCASE orders it (ICU's order would differ)."""
        return f'lower({column}) COLLATE "C"' if self.backend == POSTGRESQL else column

    def upsert_model(
        self,
        model: InstalledModel,
        *,
        installed: bool = True,
        facts: Mapping[str, Any] | None = None,
        host: str = DEFAULT_HOST_NAME,
    ) -> None:
        """Record ``model`` as ``host``'s Ollama reports it; ``facts`` (from /api/show) are kept when not given."""
        with self._write() as tx:
            self._upsert(tx, model, installed, facts, host)

    @staticmethod
    def _upsert(
        tx: Transaction, model: InstalledModel, installed: bool, facts: Mapping[str, Any] | None, host: str
    ) -> None:
        tx.execute(
            """INSERT INTO models (host, name, installed, size_bytes, digest, modified_at, facts, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (host, name) DO UPDATE SET
                 installed = excluded.installed, size_bytes = excluded.size_bytes,
                 digest = excluded.digest, modified_at = excluded.modified_at,
                 facts = COALESCE(excluded.facts, CASE WHEN models.digest = excluded.digest
                                                       THEN models.facts END),
                 updated_at = excluded.updated_at""",
            (
                host,
                model.name,
                int(installed),
                model.size_bytes,
                model.digest,
                model.modified_at,
                json.dumps(facts) if facts is not None else None,
                utc_now(),
            ),
        )

    def set_installed(self, name: str, installed: bool, host: str = DEFAULT_HOST_NAME) -> None:
        with self._write() as tx:
            tx.execute(
                "UPDATE models SET installed = ?, updated_at = ? WHERE host = ? AND name = ?",
                (int(installed), utc_now(), host, name),
            )

    def replace_installed(
        self, models: Iterable[InstalledModel], host: str = DEFAULT_HOST_NAME
    ) -> tuple[list[str], list[str]]:
        """Make ``host``'s installed set exactly ``models`` in one transaction; return (added, removed) names."""
        models = list(models)
        with self._write() as tx:
            rows = tx.execute("SELECT name FROM models WHERE host = ? AND installed = 1", (host,)).fetchall()
            before = {r["name"].lower(): r["name"] for r in rows}
            now = {m.name.lower(): m.name for m in models}
            for model in models:
                self._upsert(tx, model, True, None, host)
            gone = [before[k] for k in before.keys() - now.keys()]
            tx.executemany(
                "UPDATE models SET installed = 0, updated_at = ? WHERE host = ? AND name = ?",
                [(utc_now(), host, n) for n in gone],
            )
        return sorted(now[k] for k in now.keys() - before.keys()), sorted(gone)

    # --- usage -----------------------------------------------------------------------------------

    def record_usage(
        self, model: str, seconds: float, success: bool, at: str | None = None, *, host: str | None = None
    ) -> None:
        """Append one event of ``host`` (default: ``local``); the ``usage_events_aggregate`` trigger updates
        the model's aggregate on that host.

        One statement in autocommit mode is one transaction, so the event and its aggregate are written
        together or not at all, in a single round trip. When this returns, the event is committed;
        when it raises StoreError, it was not acknowledged.
        """
        try:
            with self._lock:
                self._db.execute(
                    "INSERT INTO usage_events (model, at, seconds, success, host) VALUES (?, ?, ?, ?, ?)",
                    (model, at or utc_now(), seconds, int(success), host or DEFAULT_HOST_NAME),
                )
                self._commits += 1
        except self._db.errors as exc:
            raise StoreError(f"{self.path}: {self._db.describe(exc)}") from None

    def get_stats(self, model: str) -> ModelStats | None:
        """The model's totals: the sum of its aggregates on every host."""
        rows = self._read(f"SELECT {_SUMS} WHERE model = ? GROUP BY model", (model,))
        return _stats_from_row(rows[0]) if rows else None

    def all_stats(self) -> dict[str, ModelStats]:
        """Every model's totals (the sums over hosts)."""
        rows = self._read(f"SELECT {_SUMS} GROUP BY model ORDER BY {self._by('model')}")
        return {r["model"]: _stats_from_row(r) for r in rows}

    def stats_by_host(self, model: str | None = None) -> dict[str, dict[str, ModelStats]]:
        """{host: {model: aggregate}}, of one model or of all; imported aggregates under ``IMPORTED``."""
        where, params = (" WHERE model = ?", (model,)) if model is not None else ("", ())
        rows = self._read(f"SELECT * FROM model_stats{where} ORDER BY host, {self._by('model')}", params)
        out: dict[str, dict[str, ModelStats]] = {}
        for r in rows:
            out.setdefault(r["host"], {})[r["model"]] = _stats_from_row(r)
        return out

    def count_events(self, model: str | None = None, *, host: str | None = None) -> int:
        """Recorded events, of one model and/or one host."""
        clauses = [(c, v) for c, v in (("model = ?", model), ("host = ?", host)) if v is not None]
        where = " WHERE " + " AND ".join(c for c, _ in clauses) if clauses else ""
        rows = self._read(f"SELECT COUNT(*) AS n FROM usage_events{where}", [v for _, v in clauses])
        return int(rows[0]["n"])

    def usage_events(self, model: str, since: str | None = None) -> list[UsageEvent]:
        """The recorded uses of ``model`` (any case) at or after ``since`` (an ISO 8601 UTC time as
        ``utc_now`` writes it), oldest first."""
        rows = self._read(
            "SELECT at, seconds, success FROM usage_events WHERE model = ? AND at >= ? ORDER BY at, id",
            (model, since or ""),
        )
        return [(r["at"], float(r["seconds"]), bool(r["success"])) for r in rows]

    # --- metadata overrides ----------------------------------------------------------------------

    def get_overrides(self) -> dict[str, dict[str, Any]]:
        return {r["model"]: json.loads(r["fields"]) for r in self._read("SELECT * FROM metadata_overrides")}

    def apply_import(self, stats: Iterable[ModelStats], overrides: Mapping[str, Mapping[str, Any]]) -> None:
        """Replace the aggregates of the named models and set their metadata overrides, all or nothing.

        A document's figures belong to no host: they replace the model's aggregates on every host, kept
        under ``IMPORTED``, so its totals are the document's. Raw usage events are never deleted, so
        nothing recorded locally is lost by an import.
        Raises StoreError (nothing changed) when a row cannot be stored.
        """
        stats = list(stats)
        try:
            encoded = {m: json.dumps(dict(f), sort_keys=True) if f else None for m, f in overrides.items()}
        except (TypeError, ValueError) as exc:
            raise StoreError(f"{self.path}: an override is not JSON: {exc}") from None
        for s in stats:
            if isinstance(s.total_time, float) and not math.isfinite(s.total_time):
                raise StoreError(f"{self.path}: the total time of {s.name} is not a finite number")
        with self._write() as tx:
            for s in stats:
                tx.execute("DELETE FROM model_stats WHERE model = ?", (s.name,))
                tx.execute(
                    """INSERT INTO model_stats (model, host, usage_count, success_count, total_time, last_used)
                       VALUES (?, ?, ?, ?, ?, ?)""",
                    (s.name, IMPORTED, s.usage_count, s.success_count, s.total_time, s.last_used),
                )
            for model, fields in encoded.items():
                if fields is not None:
                    tx.execute(
                        """INSERT INTO metadata_overrides (model, fields) VALUES (?, ?)
                           ON CONFLICT (model) DO UPDATE SET fields = excluded.fields""",
                        (model, fields),
                    )
                else:
                    tx.execute("DELETE FROM metadata_overrides WHERE model = ?", (model,))
