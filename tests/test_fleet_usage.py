"""Usage per host: each event names its host, each host's aggregate is kept in the event's transaction,
and a model's totals are the sum of its hosts' (both backends). A store from before hosts keeps all it
had as the default host's; an import's figures belong to no host; a database that goes away loses no
acknowledged event of any host."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from fleet_helpers import SMALL
from model_manager import ModelManager
from model_manager.cli import main
from model_manager.config import load_settings
from model_manager.errors import UnknownHostError
from model_manager.hosts import Heartbeat
from model_manager.store import MIGRATIONS, Store
from model_manager.types import ModelStats
from pg_server import PostgresServer
from test_store_postgres import record_through_an_outage

OTHER = "llama3.2:3b-instruct"


@pytest.fixture
def mm(store_location: str, database_url: str | None, isolated_env: Path, down_url: str) -> ModelManager:
    manager = ModelManager(host=down_url, data_dir=isolated_env, database_url=database_url)
    manager.add_host("gpu2", down_url)
    manager.add_host("gpu3", down_url)
    return manager


def test_usage_is_kept_per_host_and_the_totals_are_the_sums(mm: ModelManager) -> None:
    with mm:
        for host, seconds, success in (
            (None, 1.0, True),
            ("local", 2.0, False),
            ("gpu2", 3.0, True),
            ("GPU2", 4.0, True),
            ("gpu3", 10.0, True),
        ):
            mm.record_usage(SMALL, seconds, success, host=host)
        mm.record_usage(OTHER, 5.0, host="gpu3")
        by_host = mm.store.stats_by_host()
        assert by_host["local"][SMALL] == ModelStats(SMALL, 2, 1, 3.0, by_host["local"][SMALL].last_used)
        assert (by_host["gpu2"][SMALL].usage_count, by_host["gpu2"][SMALL].total_time) == (2, 7.0)
        assert set(by_host["gpu3"]) == {SMALL, OTHER}
        total = mm.get_model_statistics(SMALL)
        assert total is not None and total["usage_count"] == 5 and total["avg_inference_time"] == 20.0 / 5
        assert total["success_rate"] == 4 / 5
        every = mm.get_all_statistics(host="all")
        shares = every[SMALL]["hosts"]
        assert {h: s["usage_count"] for h, s in shares.items()} == {"local": 2, "gpu2": 2, "gpu3": 1}
        assert sum(s["usage_count"] for s in shares.values()) == every[SMALL]["usage_count"]
        on_gpu2 = mm.get_model_statistics(SMALL, host="gpu2")
        assert on_gpu2 is not None
        assert (on_gpu2["usage_count"], on_gpu2["avg_inference_time"], on_gpu2["success_rate"]) == (
            2,
            3.5,
            1.0,
        )
        assert set(mm.get_all_statistics(host="gpu3")) == {SMALL, OTHER}
        assert mm.store.count_events(host="gpu2") == 2 and mm.store.count_events(SMALL) == 5
        with pytest.raises(UnknownHostError):
            mm.record_usage(SMALL, 1.0, host="gpu9")
        assert mm.store.count_events() == 6  # the refused event was not recorded


def test_an_imports_figures_replace_a_models_aggregates_on_every_host(
    mm: ModelManager, tmp_path: Path
) -> None:
    with mm:
        mm.record_usage(SMALL, 1.0, host="gpu2")
        mm.record_usage(OTHER, 1.0, host="gpu2")
        doc = {
            "format": "model-manager-metadata",
            "version": 1,
            "models": {
                SMALL: {"statistics": {"usage_count": 10, "success_count": 9, "total_inference_time": 20.0}}
            },
        }
        path = tmp_path / "doc.json"
        path.write_text(json.dumps(doc))
        assert mm.import_metadata(path)[0] is True
        shares = mm.fleet.all_statistics()
        assert shares[SMALL]["usage_count"] == 10 and shares[SMALL]["hosts"] == {
            "imported": shares[SMALL]["hosts"]["imported"]
        }
        assert shares[OTHER]["hosts"]["gpu2"]["usage_count"] == 1  # a model the document does not name
        mm.record_usage(SMALL, 1.0, host="gpu3")
        shares = mm.fleet.all_statistics(SMALL)[SMALL]
        assert shares["usage_count"] == 11 and set(shares["hosts"]) == {"imported", "gpu3"}
        assert mm.store.count_events(SMALL) == 2  # the events themselves are kept


def test_a_store_from_before_hosts_keeps_everything_as_the_default_hosts(store_location: str) -> None:
    old = Store(store_location, migrations=MIGRATIONS[:3])
    with old.atomic() as tx:
        for i in range(3):
            tx.execute(
                "INSERT INTO usage_events (model, at, seconds, success) VALUES (?, ?, ?, ?)",
                (SMALL, f"2026-01-0{i + 1}T00:00:00+00:00", float(i + 1), 1),
            )
        tx.execute(
            "INSERT INTO models (name, installed, size_bytes, digest, updated_at) VALUES (?, 1, 7, 'd', 'now')",
            ("llama3.2:1b-instruct-q8_0",),
        )
        tx.execute(
            "INSERT INTO download_jobs (id, model, model_key, status, created_at, updated_at) "
            "VALUES ('j1', ?, ?, 'interrupted', 'then', 'then')",
            (SMALL, SMALL),
        )
    old.close()
    store = Store(store_location)
    assert store.schema_version() == len(MIGRATIONS)
    assert store.get_stats(SMALL) == ModelStats(SMALL, 3, 3, 6.0, "2026-01-03T00:00:00+00:00")
    assert set(store.stats_by_host()) == {"local"}
    assert [r.name for r in store.list_models(installed_only=True)] == ["llama3.2:1b-instruct-q8_0"]
    assert store.list_models(host="gpu2") == []
    job = store.latest_job(SMALL)
    assert job is not None and job["host"] == "local" and job["status"] == "interrupted"
    store.record_usage(SMALL, 4.0, True)  # the new trigger keeps the migrated aggregate
    after = store.get_stats(SMALL)
    assert after is not None and (after.usage_count, after.success_count, after.total_time) == (4, 4, 10.0)
    assert store.integrity_check() == "ok"
    store.close()


def test_cli_stats_per_host_and_all(
    mm: ModelManager, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with mm:
        mm.record_usage(SMALL, 1.0, host="gpu2")
        mm.record_usage(SMALL, 3.0)
        base = ["--ollama-host", str(mm.settings.ollama_host), "--data-dir", str(mm.settings.home)]
        db = ["--json"]
        if mm.settings.database_url:
            monkeypatch.setenv("MODEL_MANAGER_DATABASE_URL", mm.settings.database_url)
        assert main([*base, "stats", "--host", "all", *db]) == 0
        doc = json.loads(capsys.readouterr().out)["statistics"][SMALL]
        assert doc["usage_count"] == 2 and {h: s["usage_count"] for h, s in doc["hosts"].items()} == {
            "gpu2": 1,
            "local": 1,
        }
        assert main([*base, "stats", SMALL, "--host", "gpu2", *db]) == 0
        one = json.loads(capsys.readouterr().out)
        assert one["host"] == "gpu2" and one["statistics"]["usage_count"] == 1
        assert one["statistics"]["avg_inference_time"] == 1.0
        assert main([*base, "stats", "--host", "all"]) == 0
        assert "gpu2 1, local 1" in capsys.readouterr().out
        assert main([*base, "stats"]) == 0  # without --host: the totals, as before
        assert f"{SMALL}" in capsys.readouterr().out


RECORDER = textwrap.dedent(
    """
    import select, sys
    from model_manager import ManagerCore
    from model_manager.errors import StoreError
    manager = ManagerCore(host="http://127.0.0.1:9")
    manager.hosts.add("gpu2", "http://127.0.0.1:9")
    print("ready", flush=True)
    i = 0
    while not select.select([sys.stdin], [], [], 0)[0]:  # until the test closes our stdin
        i += 1
        try:
            manager.record_usage("kept:latest", float(i), host="gpu2" if i % 2 else None)
        except StoreError as exc:
            print("error", exc.message, flush=True)
            continue
        print("ok", i, flush=True)
    """
)


def test_a_database_that_goes_away_loses_no_acknowledged_event_of_any_host(
    pg_private_server: PostgresServer, tmp_path: Path
) -> None:
    pg = pg_private_server
    out = record_through_an_outage(pg, tmp_path / "home", RECORDER, 200)
    assert out.proc.returncode == 0 and not [e for e in out.errors if pg.password in e]
    store = Store(pg.url)
    stored = {seconds for _, seconds, _ in store.usage_events("kept:latest")}
    assert set(out.ok) <= stored
    by_host = store.stats_by_host("kept:latest")
    odd = {s for s in stored if int(s) % 2}
    assert by_host["gpu2"]["kept:latest"].usage_count == len(odd)
    assert by_host["local"]["kept:latest"].usage_count == len(stored - odd)
    assert store.count_events("kept:latest", host="gpu2") == len(odd)
    store.close()


def test_a_heartbeat_carries_on_when_the_database_comes_back(
    pg_private_server: PostgresServer, tmp_path: Path
) -> None:
    pg = pg_private_server
    settings = load_settings(
        {
            "MODEL_MANAGER_HOME": str(tmp_path),
            "MODEL_MANAGER_HOST_NAME": "gpu2",
            "MODEL_MANAGER_VRAM_GB": "6",
        },
        database_url=pg.url,
    )
    with ModelManager(settings=settings) as manager:
        beat = Heartbeat(manager.hosts, lambda: manager.gpu)
        assert beat.beat() is True
        pg.kill()
        assert beat.beat() is False  # logged, not raised
        pg.start()
        assert beat.beat() is True and beat.beats == 2
        report = manager.store.host_report("gpu2")
        assert report is not None and json.loads(report["report"])["override_gb"] == 6.0
