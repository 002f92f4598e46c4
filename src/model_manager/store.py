"""The SQLite store: installed-model records, usage events with per-model aggregates, state.

One connection per Store, opened with ``check_same_thread=False`` and guarded by a lock: the REST
server calls in from a thread pool, and a single connection per process keeps transactions simple.
Other processes (the CLI, the user's app) open their own connections; WAL mode lets their readers run
beside one writer, and ``busy_timeout`` makes a writer wait for the lock instead of failing with
"database is locked". Writes begin with ``BEGIN IMMEDIATE`` so that a read-then-write transaction
never has to upgrade its lock (the upgrade is what deadlocks across processes).

Durability: ``synchronous=NORMAL`` in WAL mode, so a committed event survives the process being
killed at any point; surviving a power loss as well would take ``synchronous=FULL``, an fsync per
event, which is not set.

The schema is versioned by numbered migrations (``m001_…``) recorded in ``_migrations`` and applied,
in order and inside one transaction each, whenever a store is opened.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import InvalidModelNameError, StoreError
from .names import display_name, stored_name_key
from .types import InstalledModel, ModelRecord, ModelStats

BUSY_TIMEOUT_MS = 60_000


def utc_now() -> str:
    """An ISO 8601 UTC timestamp with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run ``;``-separated DDL inside the caller's transaction (``executescript`` would commit it)."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def m001_initial(conn: sqlite3.Connection) -> None:
    _m001_tables(conn)
    # Aggregates are kept by a trigger so that statistics never rescan the history.
    conn.execute(
        """CREATE TRIGGER usage_events_aggregate AFTER INSERT ON usage_events BEGIN
             INSERT INTO model_stats (model, usage_count, success_count, total_time, last_used)
             VALUES (NEW.model, 1, NEW.success, NEW.seconds, NEW.at)
             ON CONFLICT (model) DO UPDATE SET
               usage_count = usage_count + 1,
               success_count = success_count + NEW.success,
               total_time = total_time + NEW.seconds,
               last_used = MAX(COALESCE(last_used, ''), NEW.at);
           END"""
    )


def _m001_tables(conn: sqlite3.Connection) -> None:
    _run_script(
        conn,
        """
        CREATE TABLE models (
            name        TEXT PRIMARY KEY COLLATE NOCASE,
            installed   INTEGER NOT NULL DEFAULT 0,
            size_bytes  INTEGER NOT NULL DEFAULT 0,
            digest      TEXT NOT NULL DEFAULT '',
            modified_at TEXT NOT NULL DEFAULT '',
            facts       TEXT,
            updated_at  TEXT NOT NULL
        );
        CREATE TABLE usage_events (
            id      INTEGER PRIMARY KEY,
            model   TEXT NOT NULL COLLATE NOCASE,
            at      TEXT NOT NULL,
            seconds REAL NOT NULL,
            success INTEGER NOT NULL
        );
        CREATE INDEX usage_events_model ON usage_events (model);
        CREATE TABLE model_stats (
            model         TEXT PRIMARY KEY COLLATE NOCASE,
            usage_count   INTEGER NOT NULL DEFAULT 0,
            success_count INTEGER NOT NULL DEFAULT 0,
            total_time    REAL NOT NULL DEFAULT 0,
            last_used     TEXT
        );
        CREATE TABLE metadata_overrides (
            model  TEXT PRIMARY KEY COLLATE NOCASE,
            fields TEXT NOT NULL
        );
        CREATE TABLE state (
            key   TEXT PRIMARY KEY,
            value TEXT
        );
        """,
    )


def m002_download_jobs(conn: sqlite3.Connection) -> None:
    """Download jobs of the REST API, kept so that a restart can report and resume them."""
    _run_script(
        conn,
        """
        CREATE TABLE download_jobs (
            id          TEXT PRIMARY KEY,
            model       TEXT NOT NULL,
            model_key   TEXT NOT NULL,
            status      TEXT NOT NULL,
            completed   INTEGER NOT NULL DEFAULT 0,
            total       INTEGER NOT NULL DEFAULT 0,
            detail      TEXT NOT NULL DEFAULT '',
            error       TEXT,
            message     TEXT,
            owner       TEXT NOT NULL DEFAULT '',
            attempts    INTEGER NOT NULL DEFAULT 1,
            created_at  TEXT NOT NULL,
            updated_at  TEXT NOT NULL,
            finished_at TEXT
        );
        CREATE INDEX download_jobs_model ON download_jobs (model_key, created_at);
        CREATE INDEX download_jobs_status ON download_jobs (status)
        """,
    )


def _display_or_same(name: str) -> str:
    try:
        return display_name(name)
    except InvalidModelNameError:
        return name  # recorded before names were checked: kept as it is


def m003_one_name_key(conn: sqlite3.Connection) -> None:
    """One model, one row: usage recorded under spellings of the same Ollama name (``MyModel:latest``,
    ``mymodel``, ``registry.ollama.ai/library/mymodel:latest``) becomes that model's.

    Names are stored in Ollama's display form from now on, which compares (NOCASE) exactly as
    ``names.name_key`` does. Events are renamed, never dropped; aggregates and overrides of one name
    merge under the spelling with the most uses (counts and times add up, the latest use wins; where
    two spellings override the same field, the one kept wins).
    """
    for (model,) in conn.execute("SELECT DISTINCT model FROM usage_events").fetchall():
        shown = _display_or_same(model)
        if shown != model:
            conn.execute("UPDATE usage_events SET model = ? WHERE model = ?", (shown, model))
    groups: dict[str, list[sqlite3.Row]] = {}
    rows_by_use = "SELECT * FROM model_stats ORDER BY usage_count DESC, model COLLATE BINARY"
    for row in conn.execute(rows_by_use).fetchall():
        groups.setdefault(stored_name_key(row["model"]), []).append(row)
    kept = {key: _display_or_same(rows[0]["model"]) for key, rows in groups.items()}
    for key, rows in groups.items():
        shown = kept[key]
        if len(rows) == 1 and shown == rows[0]["model"]:
            continue
        conn.executemany("DELETE FROM model_stats WHERE model = ?", [(r["model"],) for r in rows])
        conn.execute(
            "INSERT INTO model_stats (model, usage_count, success_count, total_time, last_used) VALUES (?, ?, ?, ?, ?)",
            (
                shown,
                sum(r["usage_count"] for r in rows),
                sum(r["success_count"] for r in rows),
                sum(r["total_time"] for r in rows),
                max((r["last_used"] for r in rows if r["last_used"]), default=None),
            ),
        )
    overrides: dict[str, list[sqlite3.Row]] = {}
    for row in conn.execute("SELECT * FROM metadata_overrides ORDER BY model COLLATE BINARY").fetchall():
        overrides.setdefault(stored_name_key(row["model"]), []).append(row)
    for key, rows in overrides.items():
        shown = kept.get(key) or _display_or_same(rows[0]["model"])
        if len(rows) == 1 and shown == rows[0]["model"]:
            continue
        fields: dict[str, Any] = {}
        for row in sorted(rows, key=lambda r: (r["model"] == shown, r["model"])):
            fields.update(json.loads(row["fields"]))
        conn.executemany("DELETE FROM metadata_overrides WHERE model = ?", [(r["model"],) for r in rows])
        conn.execute(
            "INSERT INTO metadata_overrides (model, fields) VALUES (?, ?)",
            (shown, json.dumps(fields, sort_keys=True)),
        )


Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[Migration] = [m001_initial, m002_download_jobs, m003_one_name_key]


def _record_from_row(row: sqlite3.Row) -> ModelRecord:
    return ModelRecord(
        name=row["name"],
        installed=bool(row["installed"]),
        size_bytes=row["size_bytes"],
        digest=row["digest"],
        modified_at=row["modified_at"],
        facts=json.loads(row["facts"]) if row["facts"] else None,
        updated_at=row["updated_at"],
    )


def _stats_from_row(row: sqlite3.Row) -> ModelStats:
    return ModelStats(
        name=row["model"],
        usage_count=row["usage_count"],
        success_count=row["success_count"],
        total_time=row["total_time"],
        last_used=row["last_used"],
    )


class Store:
    """A SQLite file (or ``":memory:"``) holding everything the manager records."""

    def __init__(self, path: str | Path, *, migrations: list[Migration] | None = None) -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        self._depth = 0
        self._commits = 0
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
            self._conn.row_factory = sqlite3.Row
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._enable_wal()
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._migrate(MIGRATIONS if migrations is None else migrations)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from exc

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

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _applied(self) -> set[int]:
        try:
            return {row[0] for row in self._conn.execute("SELECT version FROM _migrations")}
        except sqlite3.OperationalError:
            return set()  # a new file: no _migrations table yet

    def _migrate(self, migrations: list[Migration]) -> None:
        # Most opens find nothing to do: check with a plain read first, so opening a store does not
        # take the write lock that other processes' writers are using.
        if self._applied() >= set(range(1, len(migrations) + 1)):
            return
        with self.atomic() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS _migrations (version INTEGER PRIMARY KEY, name TEXT, applied_at TEXT)"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM _migrations")}
            for version, migration in enumerate(migrations, start=1):
                if version in done:
                    continue
                migration(conn)
                conn.execute(
                    "INSERT INTO _migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (version, migration.__name__, utc_now()),
                )

    def change_marker(self) -> tuple[int, int]:
        """A value that changes whenever anything is committed to the store, by any process: SQLite's
        ``data_version`` counts other connections' commits, and a counter counts this one's."""
        with self._lock:
            return int(self._conn.execute("PRAGMA data_version").fetchone()[0]), self._commits

    def schema_version(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT MAX(version) FROM _migrations").fetchone()
        return int(row[0] or 0)

    @contextmanager
    def atomic(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``); nested calls join the outer one."""
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._conn.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield self._conn
            except BaseException:
                self._depth -= 1
                if outer:
                    self._conn.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                try:
                    self._conn.execute("COMMIT")
                    self._commits += 1
                except BaseException:
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                    raise

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        try:
            with self._lock:
                return self._conn.execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        try:
            with self.atomic() as conn:
                yield conn
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc

    # --- state -------------------------------------------------------------------------------

    def get_state(self, key: str) -> str | None:
        rows = self._read("SELECT value FROM state WHERE key = ?", (key,))
        return rows[0]["value"] if rows else None

    def set_state(self, key: str, value: str | None) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    @contextmanager
    def lease(self, name: str, ttl_s: float, poll_s: float = 0.02) -> Iterator[None]:
        """Hold a named lease shared by every process using this store; waits while another holds it.

        The lease expires ``ttl_s`` seconds after it was taken, so a holder that died (killed
        mid-switch) blocks others for at most that long.
        """
        import uuid

        key, token = f"lease:{name}", f"{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex}"
        while True:
            now = time.time()
            with self._write() as conn:
                row = conn.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
                if row is None or float(row[0].rpartition("|")[2] or 0) < now:
                    conn.execute(
                        "INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)",
                        (key, f"{token}|{now + ttl_s}"),
                    )
                    break
            time.sleep(poll_s)
        try:
            yield
        finally:
            with self._write() as conn:
                conn.execute("DELETE FROM state WHERE key = ? AND value LIKE ?", (key, f"{token}|%"))

    # --- models ------------------------------------------------------------------------------

    def get_model(self, name: str) -> ModelRecord | None:
        rows = self._read("SELECT * FROM models WHERE name = ?", (name,))
        return _record_from_row(rows[0]) if rows else None

    def list_models(self, *, installed_only: bool = False) -> list[ModelRecord]:
        sql = "SELECT * FROM models" + (" WHERE installed = 1" if installed_only else "") + " ORDER BY name"
        return [_record_from_row(r) for r in self._read(sql)]

    def upsert_model(
        self, model: InstalledModel, *, installed: bool = True, facts: Mapping[str, Any] | None = None
    ) -> None:
        """Record ``model`` as Ollama reports it; ``facts`` (from /api/show) are kept when not given."""
        with self._write() as conn:
            self._upsert(conn, model, installed, facts)

    @staticmethod
    def _upsert(
        conn: sqlite3.Connection, model: InstalledModel, installed: bool, facts: Mapping[str, Any] | None
    ) -> None:
        conn.execute(
            """INSERT INTO models (name, installed, size_bytes, digest, modified_at, facts, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (name) DO UPDATE SET
                 installed = excluded.installed, size_bytes = excluded.size_bytes,
                 digest = excluded.digest, modified_at = excluded.modified_at,
                 facts = COALESCE(excluded.facts, CASE WHEN models.digest = excluded.digest
                                                       THEN models.facts END),
                 updated_at = excluded.updated_at""",
            (
                model.name,
                int(installed),
                model.size_bytes,
                model.digest,
                model.modified_at,
                json.dumps(facts) if facts is not None else None,
                utc_now(),
            ),
        )

    def set_installed(self, name: str, installed: bool) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE models SET installed = ?, updated_at = ? WHERE name = ?",
                (int(installed), utc_now(), name),
            )

    def replace_installed(self, models: Iterable[InstalledModel]) -> tuple[list[str], list[str]]:
        """Make the installed set exactly ``models`` in one transaction; return (added, removed) names."""
        models = list(models)
        with self._write() as conn:
            before = {
                r["name"].lower(): r["name"] for r in conn.execute("SELECT name FROM models WHERE installed")
            }
            now = {m.name.lower(): m.name for m in models}
            for model in models:
                self._upsert(conn, model, True, None)
            gone = [before[k] for k in before.keys() - now.keys()]
            conn.executemany(
                "UPDATE models SET installed = 0, updated_at = ? WHERE name = ?",
                [(utc_now(), n) for n in gone],
            )
        return sorted(now[k] for k in now.keys() - before.keys()), sorted(gone)

    # --- usage -------------------------------------------------------------------------------

    def record_usage(self, model: str, seconds: float, success: bool, at: str | None = None) -> None:
        """Append one event; the ``usage_events_aggregate`` trigger updates the model's aggregate.

        One statement in autocommit mode is one transaction, so the event and its aggregate are
        written together or not at all, with a single round trip into SQLite.
        """
        try:
            with self._lock:
                self._conn.execute(
                    "INSERT INTO usage_events (model, at, seconds, success) VALUES (?, ?, ?, ?)",
                    (model, at or utc_now(), seconds, int(success)),
                )
                self._commits += 1
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc

    def get_stats(self, model: str) -> ModelStats | None:
        rows = self._read("SELECT * FROM model_stats WHERE model = ?", (model,))
        return _stats_from_row(rows[0]) if rows else None

    def all_stats(self) -> dict[str, ModelStats]:
        return {
            r["model"]: _stats_from_row(r) for r in self._read("SELECT * FROM model_stats ORDER BY model")
        }

    def count_events(self, model: str | None = None) -> int:
        if model is None:
            rows = self._read("SELECT COUNT(*) AS n FROM usage_events")
        else:
            rows = self._read("SELECT COUNT(*) AS n FROM usage_events WHERE model = ?", (model,))
        return int(rows[0]["n"])

    # --- metadata overrides -------------------------------------------------------------------

    def get_overrides(self) -> dict[str, dict[str, Any]]:
        return {r["model"]: json.loads(r["fields"]) for r in self._read("SELECT * FROM metadata_overrides")}

    def apply_import(self, stats: Iterable[ModelStats], overrides: Mapping[str, Mapping[str, Any]]) -> None:
        """Replace the aggregates of the named models and set their metadata overrides, all or nothing.

        Raw usage events are never deleted, so nothing recorded locally is lost by an import.
        Raises StoreError (nothing changed) when a row cannot be stored.
        """
        try:
            encoded = {m: json.dumps(dict(f), sort_keys=True) if f else None for m, f in overrides.items()}
        except (TypeError, ValueError) as exc:
            raise StoreError(f"{self.path}: an override is not JSON: {exc}") from None
        with self._write() as conn:
            for s in stats:
                conn.execute(
                    """INSERT INTO model_stats (model, usage_count, success_count, total_time, last_used)
                       VALUES (?, ?, ?, ?, ?)
                       ON CONFLICT (model) DO UPDATE SET usage_count = excluded.usage_count,
                         success_count = excluded.success_count, total_time = excluded.total_time,
                         last_used = excluded.last_used""",
                    (s.name, s.usage_count, s.success_count, s.total_time, s.last_used),
                )
            for model, fields in encoded.items():
                if fields is not None:
                    conn.execute(
                        """INSERT INTO metadata_overrides (model, fields) VALUES (?, ?)
                           ON CONFLICT (model) DO UPDATE SET fields = excluded.fields""",
                        (model, fields),
                    )
                else:
                    conn.execute("DELETE FROM metadata_overrides WHERE model = ?", (model,))

    def integrity_check(self) -> str:
        return str(self._read("PRAGMA integrity_check")[0][0])

    # --- download jobs (REST API; see jobs.py) ---------------------------------------------------
    # Rows are plain dicts: the job record and its rules live in jobs.py, the store only keeps them.

    JOB_COLUMNS = (
        "id",
        "model",
        "model_key",
        "status",
        "completed",
        "total",
        "detail",
        "error",
        "message",
        "owner",
        "attempts",
        "created_at",
        "updated_at",
        "finished_at",
    )

    def save_job(self, job: Mapping[str, Any]) -> None:
        """Insert or replace one job row (keys: ``JOB_COLUMNS``; missing ones take their defaults)."""
        columns = [c for c in self.JOB_COLUMNS if c in job]
        placeholders = ", ".join("?" for _ in columns)
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != "id")
        with self._write() as conn:
            conn.execute(
                f"INSERT INTO download_jobs ({', '.join(columns)}) VALUES ({placeholders}) "
                f"ON CONFLICT (id) DO UPDATE SET {updates}",
                [job[c] for c in columns],
            )

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        rows = self._read("SELECT * FROM download_jobs WHERE id = ?", (job_id,))
        return dict(rows[0]) if rows else None

    def list_jobs(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest jobs first."""
        rows = self._read("SELECT * FROM download_jobs ORDER BY created_at DESC, id LIMIT ?", (limit,))
        return [dict(r) for r in rows]

    def latest_job(self, model_key: str) -> dict[str, Any] | None:
        rows = self._read(
            "SELECT * FROM download_jobs WHERE model_key = ? ORDER BY created_at DESC, id LIMIT 1",
            (model_key,),
        )
        return dict(rows[0]) if rows else None

    def interrupt_jobs(self, orphaned: Callable[[str], bool], at: str) -> list[str]:
        """Mark queued or running jobs whose ``owner`` is ``orphaned`` as interrupted; return their ids."""
        with self._write() as conn:
            rows = conn.execute(
                "SELECT id, owner FROM download_jobs WHERE status IN ('queued', 'running')"
            ).fetchall()
            ids = [r["id"] for r in rows if orphaned(r["owner"])]
            conn.executemany(
                "UPDATE download_jobs SET status = 'interrupted', updated_at = ? WHERE id = ?",
                [(at, i) for i in ids],
            )
        return ids

    def prune_jobs(self, keep: int) -> int:
        """Delete all but the newest ``keep`` finished jobs; return how many went."""
        with self._write() as conn:
            cursor = conn.execute(
                """DELETE FROM download_jobs WHERE status NOT IN ('queued', 'running', 'interrupted')
                   AND id NOT IN (SELECT id FROM download_jobs ORDER BY created_at DESC LIMIT ?)""",
                (keep,),
            )
            return cursor.rowcount

    # --- usage history (the dashboard's charts) -------------------------------------------------

    def usage_events(self, model: str, since: str | None = None) -> list[tuple[str, float, bool]]:
        """``(at, seconds, success)`` of each recorded use of ``model``, oldest first; only those at or
        after ``since`` (an ISO 8601 UTC timestamp in ``utc_now``'s format) when given."""
        sql = "SELECT at, seconds, success FROM usage_events WHERE model = ?"
        params: list[Any] = [model]
        if since is not None:
            sql += " AND at >= ?"
            params.append(since)
        rows = self._read(sql + " ORDER BY at, id", params)
        return [(r["at"], float(r["seconds"]), bool(r["success"])) for r in rows]
