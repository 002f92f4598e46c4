"""The SQLite store: migrations, aggregates, atomic imports, and several writers at once."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

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


@pytest.mark.parametrize(
    ("stats", "overrides"),
    [
        # The second row cannot be stored (NaN is NULL to SQLite), after the first was written.
        ([ModelStats("a", 9, 9, 9.0, None), ModelStats("b", 1, 1, float("nan"), "x")], {}),
        # The stats are fine; an override that is not JSON fails after them.
        ([ModelStats("a", 9, 9, 9.0, None)], {"a": {"description": object()}}),
    ],
    ids=["bad-statistics", "bad-override"],
)
def test_apply_import_is_all_or_nothing(tmp_path: Path, stats: list[ModelStats], overrides: Any) -> None:
    store = Store(tmp_path / "s.db")
    store.record_usage("a", 1.0, True)
    before = (store.all_stats(), store.get_overrides())
    with pytest.raises(StoreError):
        store.apply_import(stats, overrides)
    assert (store.all_stats(), store.get_overrides()) == before


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


def test_migration_merges_the_spellings_of_one_name(tmp_path: Path) -> None:
    """Rows recorded under spellings of one Ollama name before the one-key rule become one model's."""
    path = tmp_path / "old.db"
    old = Store(path, migrations=MIGRATIONS[:2])
    spellings = ("MyModel:latest", "mymodel", "registry.ollama.ai/library/mymodel:latest")
    for i, name in enumerate(spellings):
        old.record_usage(name, float(i + 1), i != 1, at=f"2026-01-0{i + 1}T00:00:00+00:00")
    old.record_usage("other", 1.0, True)
    old.apply_import([], {"mymodel": {"description": "a"}, "MyModel:latest": {"size": "7B"}})
    old.close()

    store = Store(path)
    assert store.schema_version() == len(MIGRATIONS)
    stats = store.all_stats()
    assert set(stats) == {"MyModel:latest", "other:latest"}
    assert stats["MyModel:latest"] == ModelStats("MyModel:latest", 3, 2, 6.0, "2026-01-03T00:00:00+00:00")
    assert store.count_events() == 4 and store.count_events("mymodel:latest") == 3
    assert store.get_overrides() == {"MyModel:latest": {"description": "a", "size": "7B"}}
