"""The SQLite store: migrations, aggregates, atomic imports, and several writers at once."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from model_manager.errors import StoreError
from model_manager.store import MIGRATIONS, Store
from model_manager.types import InstalledModel, ModelStats


def test_store_opens_in_wal_mode_with_schema(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    assert store.schema_version() == len(MIGRATIONS)
    conn = sqlite3.connect(tmp_path / "s.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"models", "usage_events", "model_stats", "state", "_migrations"} <= tables


def test_store_migrates_an_older_schema(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    Store(path, migrations=MIGRATIONS[:1]).close()

    def m_extra(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE extra (x INTEGER)")

    store = Store(path, migrations=[*MIGRATIONS, m_extra])
    assert store.schema_version() == len(MIGRATIONS) + 1
    assert store._read("SELECT COUNT(*) FROM extra")[0][0] == 0
    # Re-opening applies nothing twice.
    Store(path, migrations=[*MIGRATIONS, m_extra]).close()


def test_store_failed_migration_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    Store(path).close()

    def m_broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half (x INTEGER)")
        conn.execute("THIS IS NOT SQL")

    with pytest.raises(StoreError):
        Store(path, migrations=[*MIGRATIONS, m_broken])
    store = Store(path)
    assert store.schema_version() == len(MIGRATIONS)
    assert not store._read("SELECT name FROM sqlite_master WHERE name = 'half'")


def test_record_usage_keeps_aggregates(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    store.record_usage("m:1b", 2.0, True, at="2026-01-01T00:00:00+00:00")
    store.record_usage("M:1B", 4.0, False, at="2026-01-02T00:00:00+00:00")
    assert store.get_stats("m:1b") == ModelStats("m:1b", 2, 1, 6.0, "2026-01-02T00:00:00+00:00")
    assert store.count_events("m:1b") == 2


def test_apply_import_is_all_or_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    store.record_usage("a", 1.0, True)
    before = store.all_stats()
    bad = [ModelStats("a", 9, 9, 9.0, None), ModelStats("b", 1, 1, float("nan"), "x")]
    with pytest.raises(StoreError):
        store.apply_import(bad, {"a": {"description": object()}})  # type: ignore[dict-item]
    assert store.all_stats() == before


def test_replace_installed_reports_added_and_removed(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    a = InstalledModel("a:latest", 1, "d" * 64, "2026-01-01T00:00:00Z")
    b = InstalledModel("b:latest", 2, "e" * 64, "2026-01-01T00:00:00Z")
    assert store.replace_installed([a]) == (["a:latest"], [])
    assert store.replace_installed([b]) == (["b:latest"], ["a:latest"])
    assert [r.name for r in store.list_models(installed_only=True)] == ["b:latest"]
    assert store.get_model("A:LATEST") is not None


def test_store_refuses_a_path_it_cannot_create(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError):
        Store(blocker / "sub" / "s.db")


WRITER = textwrap.dedent(
    """
    import sys
    from model_manager import ModelManager
    manager = ModelManager(host="http://127.0.0.1:9", data_dir=sys.argv[1])
    for i in range(int(sys.argv[2])):
        manager.record_usage(sys.argv[3], 0.5, success=i % 2 == 0)
    """
)


def test_two_processes_recording_at_once_lose_nothing(tmp_path: Path) -> None:
    n = 1500
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(n), "shared:latest"])
        for _ in range(2)
    ]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    store = Store(tmp_path / "model_manager.db")
    stats = store.get_stats("shared:latest")
    assert stats is not None
    assert (stats.usage_count, stats.success_count) == (2 * n, 2 * ((n + 1) // 2))
    assert stats.total_time == pytest.approx(2 * n * 0.5)
    assert store.count_events("shared:latest") == 2 * n
    assert store.integrity_check() == "ok"
