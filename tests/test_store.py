"""The store on both backends (a SQLite file, a real PostgreSQL server): migrations, aggregates, names
compared as Ollama compares them, atomic imports, and several writers at once."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from model_manager.config import load_settings
from model_manager.errors import InvalidSettingError, StoreError
from model_manager.store import MIGRATIONS, Store, Transaction
from model_manager.types import InstalledModel, ModelStats
from processes import process_env


def tables(store: Store) -> set[str]:
    if store.backend == "sqlite":
        rows = store._read("SELECT name FROM sqlite_master WHERE type = 'table'")
    else:
        rows = store._read(
            "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
    return {r["name"] for r in rows}


def test_store_opens_with_the_schema(store_location: str) -> None:
    store = Store(store_location)
    assert store.schema_version() == len(MIGRATIONS)
    assert {"models", "usage_events", "model_stats", "state", "_migrations", "download_jobs"} <= tables(store)
    assert store.integrity_check() == "ok"
    if store.backend == "sqlite":
        assert store._read("PRAGMA journal_mode")[0][0] == "wal"
    store.close()


def test_store_migrates_an_older_schema(store_location: str) -> None:
    Store(store_location, migrations=MIGRATIONS[:1]).close()

    def m_extra(tx: Transaction) -> None:
        tx.execute("CREATE TABLE extra (x INTEGER)")

    store = Store(store_location, migrations=[*MIGRATIONS, m_extra])
    assert store.schema_version() == len(MIGRATIONS) + 1
    assert store._read("SELECT COUNT(*) AS n FROM extra")[0]["n"] == 0
    assert {"download_jobs", "extra"} <= tables(store)
    store.close()
    # Re-opening applies nothing twice.
    Store(store_location, migrations=[*MIGRATIONS, m_extra]).close()


def test_store_failed_migration_changes_nothing(store_location: str) -> None:
    Store(store_location).close()

    def m_broken(tx: Transaction) -> None:
        tx.execute("CREATE TABLE half (x INTEGER)")
        tx.execute("THIS IS NOT SQL")

    with pytest.raises(StoreError, match="cannot open"):
        Store(store_location, migrations=[*MIGRATIONS, m_broken])
    store = Store(store_location)
    assert store.schema_version() == len(MIGRATIONS)
    assert "half" not in tables(store)
    store.close()


def test_record_usage_keeps_aggregates(store_location: str) -> None:
    store = Store(store_location)
    store.record_usage("m:1b", 2.0, True, at="2026-01-01T00:00:00+00:00")
    store.record_usage("M:1B", 4.0, False, at="2026-01-02T00:00:00+00:00")
    assert store.get_stats("m:1b") == ModelStats("m:1b", 2, 1, 6.0, "2026-01-02T00:00:00+00:00")
    assert store.count_events("m:1b") == 2
    # A late event does not move the last use back.
    store.record_usage("m:1b", 1.0, True, at="2025-12-31T00:00:00+00:00")
    assert store.get_stats("M:1b") == ModelStats("m:1b", 3, 2, 7.0, "2026-01-02T00:00:00+00:00")
    store.close()


def test_names_compare_as_ollama_compares_them(store_location: str) -> None:
    """One name in any case is one row, kept in the spelling first stored; listings are ordered alike on
    both backends (SQLite's NOCASE order)."""
    store = Store(store_location)
    names = ["b-c:1b", "MyModel:latest", "m10:7b", "m1:7b", "B.c:1b", "a_b:1b", "M2:7b"]
    for name in names:
        store.record_usage(name, 1.0, True)
    store.record_usage("MYMODEL:LATEST", 1.0, False)
    store.apply_import([], {"mymodel:latest": {"description": "x"}})
    store.apply_import([], {"MyModel:Latest": {"description": "y"}})
    assert list(store.all_stats()) == sorted(names, key=str.lower)
    found = store.get_stats("mymodel:LATEST")
    assert found is not None and (found.name, found.usage_count, found.success_count) == (
        "MyModel:latest",
        2,
        1,
    )
    assert store.get_overrides() == {"mymodel:latest": {"description": "y"}}
    model = InstalledModel("Qwen3:8B", 1, "d" * 64, "2026-01-01T00:00:00Z")
    store.upsert_model(model)
    store.set_installed("qwen3:8b", False)
    record = store.get_model("QWEN3:8b")
    assert record is not None and (record.name, record.installed) == ("Qwen3:8B", False)
    store.close()


def test_usage_events_lists_the_uses_of_one_model_since_a_time(store_location: str) -> None:
    store = Store(store_location)
    for day, success in ((1, True), (2, False), (3, True)):
        store.record_usage("m:1b", float(day), success, at=f"2026-01-0{day}T00:00:00.000000+00:00")
    store.record_usage("other:1b", 9.0, True, at="2026-01-02T00:00:00.000000+00:00")
    assert store.usage_events("M:1B") == [
        ("2026-01-01T00:00:00.000000+00:00", 1.0, True),
        ("2026-01-02T00:00:00.000000+00:00", 2.0, False),
        ("2026-01-03T00:00:00.000000+00:00", 3.0, True),
    ]
    assert [e[0][:10] for e in store.usage_events("m:1b", since="2026-01-02")] == ["2026-01-02", "2026-01-03"]
    assert store.usage_events("nothing:1b") == []
    store.close()


@pytest.mark.parametrize(
    ("stats", "overrides"),
    [
        # The second row cannot be stored (no total time), after the first was written.
        ([ModelStats("a", 9, 9, 9.0, None), ModelStats("b", 1, 1, None, "x")], {}),  # type: ignore[arg-type]
        # A time that is not a number is refused before anything is written.
        ([ModelStats("a", 9, 9, 9.0, None), ModelStats("b", 1, 1, float("nan"), "x")], {}),
        # The stats are fine; an override that is not JSON fails after them.
        ([ModelStats("a", 9, 9, 9.0, None)], {"a": {"description": object()}}),
    ],
    ids=["missing-time", "nan-time", "bad-override"],
)
def test_apply_import_is_all_or_nothing(store_location: str, stats: list[ModelStats], overrides: Any) -> None:
    store = Store(store_location)
    store.record_usage("a", 1.0, True)
    before = (store.all_stats(), store.get_overrides())
    with pytest.raises(StoreError):
        store.apply_import(stats, overrides)
    assert (store.all_stats(), store.get_overrides()) == before
    store.close()


def test_replace_installed_reports_added_and_removed(store_location: str) -> None:
    store = Store(store_location)
    a = InstalledModel("a:latest", 1, "d" * 64, "2026-01-01T00:00:00Z")
    b = InstalledModel("b:latest", 6 * 2**30, "e" * 64, "2026-01-01T00:00:00Z")  # beyond 32 bits
    assert store.replace_installed([a]) == (["a:latest"], [])
    assert store.replace_installed([b]) == (["b:latest"], ["a:latest"])
    assert [(r.name, r.size_bytes) for r in store.list_models(installed_only=True)] == [
        ("b:latest", 6 * 2**30)
    ]
    assert store.get_model("A:LATEST") is not None
    store.close()


def test_jobs_are_kept_listed_and_pruned(store_location: str) -> None:
    store = Store(store_location)
    for i, status in enumerate(("succeeded", "failed", "running", "succeeded")):
        row = {"id": f"j{i}", "model": "m", "model_key": "m:latest", "status": status, "owner": "1:x"}
        store.save_job(row | {"total": 2**40, "created_at": f"2026-01-0{i + 1}", "updated_at": "2026"})
    assert [j["id"] for j in store.list_jobs()] == ["j3", "j2", "j1", "j0"]
    assert (store.latest_job("m:latest") or {})["total"] == 2**40
    assert store.interrupt_jobs(lambda owner: owner == "1:x", "2027") == ["j2"]
    assert store.prune_jobs(keep=2) == 2
    assert {j["id"]: j["status"] for j in store.list_jobs()} == {"j3": "succeeded", "j2": "interrupted"}
    store.close()


def test_the_change_marker_moves_with_commits_of_other_stores(store_location: str) -> None:
    reader, writer = Store(store_location), Store(store_location)
    marker = reader.change_marker()
    assert reader.change_marker() == marker  # nothing committed, nothing changed
    writer.set_state("k", "v")
    assert reader.change_marker() != marker
    reader.close()
    writer.close()


def test_store_refuses_a_path_it_cannot_create(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError):
        Store(blocker / "sub" / "s.db")


WRITER = textwrap.dedent(
    """
    import sys
    from model_manager import ModelManager
    manager = ModelManager(host="http://127.0.0.1:9")
    for i in range(int(sys.argv[1])):
        manager.record_usage(sys.argv[2], 0.5, success=i % 2 == 0)
    """
)


def test_two_processes_recording_at_once_lose_nothing(
    store_location: str, backend_env: dict[str, str], tmp_path: Path
) -> None:
    """Two managers in separate processes (with separate homes, as on two machines, when the store is
    PostgreSQL) record into one store at the same time."""
    n = 1500
    homes = [tmp_path / "home"] * 2 if not backend_env else [tmp_path / "a", tmp_path / "b"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(n), "shared:latest"],
            env=process_env(home, "http://127.0.0.1:9", **backend_env),
        )
        for home in homes
    ]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    store = Store(store_location)
    stats = store.get_stats("shared:latest")
    assert stats is not None
    assert (stats.usage_count, stats.success_count) == (2 * n, 2 * ((n + 1) // 2))
    assert stats.total_time == pytest.approx(2 * n * 0.5)
    assert store.count_events("shared:latest") == 2 * n
    assert store.integrity_check() == "ok"
    store.close()


def test_migration_merges_the_spellings_of_one_name(store_location: str) -> None:
    """Rows recorded under spellings of one Ollama name before the one-key rule become one model's."""
    old = Store(store_location, migrations=MIGRATIONS[:2])
    spellings = ("MyModel:latest", "mymodel", "registry.ollama.ai/library/mymodel:latest")
    # Written as the store of that version wrote them (its tables had no host).
    event = "INSERT INTO usage_events (model, at, seconds, success) VALUES (?, ?, ?, ?)"
    with old.atomic() as tx:
        for i, name in enumerate(spellings):
            tx.execute(event, (name, f"2026-01-0{i + 1}T00:00:00+00:00", float(i + 1), int(i != 1)))
        tx.execute(event, ("other", "2026-01-04T00:00:00+00:00", 1.0, 1))
        for model, fields in (("mymodel", '{"description": "a"}'), ("MyModel:latest", '{"size": "7B"}')):
            tx.execute("INSERT INTO metadata_overrides (model, fields) VALUES (?, ?)", (model, fields))
    old.close()

    store = Store(store_location)
    assert store.schema_version() == len(MIGRATIONS)
    stats = store.all_stats()
    assert set(stats) == {"MyModel:latest", "other:latest"}
    assert stats["MyModel:latest"] == ModelStats("MyModel:latest", 3, 2, 6.0, "2026-01-03T00:00:00+00:00")
    assert store.count_events() == 4 and store.count_events("mymodel:latest") == 3
    assert store.get_overrides() == {"MyModel:latest": {"description": "a", "size": "7B"}}
    store.close()


def test_two_stores_opening_a_new_database_at_once_migrate_it_once(
    store_location: str, backend_env: dict[str, str], tmp_path: Path
) -> None:
    """Four processes open a store nobody has migrated yet, at the same moment."""
    opener = "import sys; from model_manager.store import Store; Store(sys.argv[1]).close()"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", opener, store_location],
            env=process_env(tmp_path / "home", "http://127.0.0.1:9", **backend_env),
        )
        for _ in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    store = Store(store_location)
    assert [r["version"] for r in store._read("SELECT version FROM _migrations ORDER BY version")] == list(
        range(1, len(MIGRATIONS) + 1)
    )
    store.close()


def test_settings_say_where_the_store_lives_and_how_long_a_switch_waits(tmp_path: Path) -> None:
    home = {"MODEL_MANAGER_HOME": str(tmp_path)}
    assert load_settings(home).store_location == tmp_path / "model_manager.db"
    url = "postgresql://mm:pw-9f2@db.lan/models"
    from_env = load_settings(home | {"MODEL_MANAGER_DATABASE_URL": url})
    assert from_env.store_location == url and "pw-9f2" not in repr(from_env)
    given = load_settings(home | {"MODEL_MANAGER_DATABASE_URL": url}, database_url="postgres://h/other")
    assert given.store_location == "postgres://h/other"
    assert load_settings(home).switch_wait_s == 60.0
    assert load_settings(home | {"MODEL_MANAGER_SWITCH_WAIT": "0"}).switch_wait_s == 0.0
    for bad in ("-1", "soon", "nan"):
        with pytest.raises(InvalidSettingError, match="MODEL_MANAGER_SWITCH_WAIT"):
            load_settings(home | {"MODEL_MANAGER_SWITCH_WAIT": bad})
    for bad_url in ("sqlite:///x.db", "db.lan:5432", "mysql://mm:pw-9f2@db.lan/models"):
        with pytest.raises(InvalidSettingError, match="is not a postgresql:// URL") as refused:
            load_settings(home | {"MODEL_MANAGER_DATABASE_URL": bad_url})
        assert "pw-9f2" not in str(refused.value)
