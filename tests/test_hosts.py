"""Hosts: added, listed and removed in the store every manager sharing it sees (both backends), their
names and URLs checked, and what is known of each one's memory: the report its serving manager publishes
every heartbeat, the --vram it was added with, and a report older than three heartbeats said to be stale."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from conftest import API_BASE
from fleet_helpers import GIB, wait_until
from helpers import refused, success
from model_manager import ModelManager
from model_manager.api import create_app
from model_manager.cli import main
from model_manager.config import load_settings
from model_manager.errors import InvalidRequestError, InvalidSettingError, UnknownHostError
from model_manager.fleet import Fleet
from model_manager.hosts import Heartbeat
from model_manager.testing import OllamaDouble


def _manager(home: Path, ollama_url: str, database_url: str | None, **env: str) -> ModelManager:
    settings = load_settings(
        {"MODEL_MANAGER_HOME": str(home), **env}, host=ollama_url, database_url=database_url
    )
    return ModelManager(settings=settings)


@pytest.fixture
def pair(
    store_location: str, database_url: str | None, ollama: OllamaDouble, tmp_path: Path
) -> Iterator[tuple[ModelManager, ModelManager]]:
    """Two managers on one store: separate homes on PostgreSQL; one home (one file) on SQLite."""
    first = tmp_path / "a"
    second = first if database_url is None else tmp_path / "b"
    with (
        _manager(first, ollama.url, database_url) as a,
        _manager(second, ollama.url, database_url, MODEL_MANAGER_HOST_NAME="box-b") as b,
    ):
        yield a, b


def test_a_host_added_by_one_manager_is_seen_by_another_and_removed_for_both(
    pair: tuple[ModelManager, ModelManager], down_url: str
) -> None:
    a, b = pair
    assert a.add_host("GPU2", "gpu2.lan", vram_gb=24) == (True, "Added host gpu2 at http://gpu2.lan:11434")
    assert a.add_host("gpu3", down_url) == (True, f"Added host gpu3 at {down_url}")
    seen = b.list_hosts(check=False)
    # Each manager lists its own host first: the Ollama beside it, under its MODEL_MANAGER_HOST_NAME.
    assert [(h["name"], h["own"]) for h in seen] == [("box-b", True), ("gpu2", False), ("gpu3", False)]
    assert seen[1]["vram_gb"] == 24 and seen[1]["memory"]["status"] == "vram"
    assert seen[2]["memory"] == {**seen[2]["memory"], "status": "unknown", "known": False}
    assert [h["name"] for h in a.list_hosts(check=False)] == ["local", "gpu2", "gpu3"]

    # Adding a host again changes its URL and figure.
    assert b.add_host("gpu2", "https://gpu2.lan", vram_gb=16) == (
        True,
        "Updated host gpu2 at https://gpu2.lan:443",
    )
    assert next(h for h in a.list_hosts(check=False) if h["name"] == "gpu2")["vram_gb"] == 16

    assert b.remove_host("gpu3") == (True, "Removed host gpu3")
    assert [h["name"] for h in a.list_hosts(check=False)] == ["local", "gpu2"]
    assert b.remove_host("gpu3")[0] is False and isinstance(b.last_error, UnknownHostError)


def test_checking_the_hosts_asks_each_one_and_marks_the_one_that_does_not_answer(
    manager: ModelManager, ollama: OllamaDouble, down_url: str
) -> None:
    with OllamaDouble() as other:
        manager.add_host("gpu2", other.url)
        manager.add_host("gone", down_url)
        hosts = {h["name"]: h for h in manager.list_hosts()}
    assert hosts["local"]["reachable"] is True and hosts["local"]["version"] == "0.32.15"
    assert hosts["gpu2"]["reachable"] is True
    assert hosts["gone"]["reachable"] is False and hosts["gone"]["error"]["error"] == "ollama_unavailable"
    assert down_url in hosts["gone"]["error"]["message"]


@pytest.mark.parametrize(
    ("name", "url", "vram", "says"),
    [
        ("", "gpu2.lan", None, "is not a host name"),
        ("local", "gpu2.lan", None, "local names each manager's own Ollama"),
        ("ALL", "gpu2.lan", None, "is taken: --host all means every host"),
        ("auto", "gpu2.lan", None, "is taken"),
        ("gpu 2", "gpu2.lan", None, "is not a host name"),
        ("-gpu", "gpu2.lan", None, "is not a host name"),
        ("g" * 64, "gpu2.lan", None, "is not a host name"),
        ("gpu:2", "gpu2.lan", None, "an Ollama address goes in the URL"),
        ("gpu2", "", None, "is not an Ollama address"),
        ("gpu2", "ftp://gpu2.lan", None, "Ollama speaks http or https, not ftp"),
        ("gpu2", "http://user:pw@gpu2.lan", None, "without a user"),
        ("gpu2", "http://gpu2.lan/?x=1", None, "query"),
        ("gpu2", " gpu2.lan", None, "spaces"),
        ("gpu2", "gpu2.lan", -1, "--vram must be a finite number of GB"),
        ("gpu2", "gpu2.lan", "lots", "--vram must be a number of GB"),
    ],
)
def test_a_bad_name_url_or_figure_is_refused_and_stores_nothing(
    manager: ModelManager, name: str, url: str, vram: object, says: str
) -> None:
    with pytest.raises(InvalidRequestError) as failure:
        manager.fleet.add_host(name, url, vram)
    assert says in failure.value.message
    assert [h.name for h in manager.fleet.hosts()] == ["local"]


@pytest.mark.parametrize(
    ("url", "dialled"),
    [
        ("gpu2.lan", "http://gpu2.lan:11434"),
        ("https://gpu2.lan", "https://gpu2.lan:443"),
        ("http://gpu2.lan", "http://gpu2.lan:80"),
        ("0.0.0.0:8080", "http://127.0.0.1:8080"),
        ("[::1]:1234", "http://[::1]:1234"),
        ("http://gpu2.lan:11434/ollama", "http://gpu2.lan:11434/ollama"),
    ],
)
def test_a_host_url_is_read_as_ollama_host_is(manager: ModelManager, url: str, dialled: str) -> None:
    host, _ = manager.fleet.add_host("gpu2", url)
    assert host.url == dialled


def test_the_host_name_setting_is_checked(tmp_path: Path) -> None:
    home = {"MODEL_MANAGER_HOME": str(tmp_path)}
    assert load_settings(home).host_name == "local"
    assert load_settings(home | {"MODEL_MANAGER_HOST_NAME": "GPU-1"}).host_name == "gpu-1"
    for bad in ("all", "gpu 1", "http://gpu1"):
        with pytest.raises(InvalidSettingError, match="MODEL_MANAGER_HOST_NAME"):
            load_settings(home | {"MODEL_MANAGER_HOST_NAME": bad})
    with pytest.raises(InvalidSettingError, match="MODEL_MANAGER_HEARTBEAT_S"):
        load_settings(home | {"MODEL_MANAGER_HEARTBEAT_S": "0"})


# --- each host's memory ----------------------------------------------------------------------------


def test_a_serving_managers_report_is_the_hosts_memory_until_it_is_three_heartbeats_old(
    store_location: str, database_url: str | None, tmp_path: Path, down_url: str
) -> None:
    """The manager of host gpu2 publishes what GPU detection says there (a 6 GB override); another
    manager judges models in that memory, and says when the report has gone stale."""
    shared = tmp_path / "home" if database_url is None else None
    env = {
        "MODEL_MANAGER_HOST_NAME": "gpu2",
        "MODEL_MANAGER_HEARTBEAT_S": "0.2",
        "MODEL_MANAGER_VRAM_GB": "6",
    }
    with (
        _manager(shared or tmp_path / "gpu2", down_url, database_url, **env) as on_gpu2,
        _manager(shared or tmp_path / "a", down_url, database_url) as a,
    ):
        a.add_host("gpu2", down_url, vram_gb=24)
        beat = Heartbeat(on_gpu2.hosts, lambda: on_gpu2.gpu).start()
        try:
            host = a.fleet.registry.get("gpu2")
            assert host.memory_status == "reported" and host.report is not None
            assert host.report.available_bytes == 6 * GIB and host.report.heartbeat_s == 0.2
            assert host.describe_memory().startswith("6.0 GB, reported ")
            remote = a.fleet.manager("gpu2")
            memory = remote.memory()
            assert memory.available_bytes == 6 * GIB and memory.origin == "MODEL_MANAGER_VRAM_GB on gpu2"
            wait_until(lambda: beat.beats >= 3)
        finally:
            beat.stop()
        # No beat for three heartbeats: the report is stale, and the --vram figure is used, said so.
        stale = wait_until(lambda: (h := a.fleet.registry.get("gpu2")).memory_status == "vram" and h, 10)
        assert "as added (--vram; its free RAM unknown); its report is stale" in stale.describe_memory()
        wait_until(lambda: a.fleet.manager("gpu2").memory().available_bytes == 24 * GIB, 5)
        # Without a --vram figure, the stale report is all there is: used, and said to be stale.
        a.add_host("gpu2", down_url)
        host = a.fleet.registry.get("gpu2")
        assert host.memory_status == "stale" and not host.memory_known
        assert (
            "stale: reported" in host.describe_memory()
            and "older than 3 heartbeats, 0.6 s" in host.describe_memory()
        )


def test_a_host_without_a_report_or_a_figure_has_unknown_memory(manager: ModelManager, down_url: str) -> None:
    manager.fleet.add_host("gpu2", down_url)
    remote = manager.fleet.manager("gpu2")
    assert remote.memory().available_bytes == 0
    assert manager.fleet.registry.get("gpu2").describe_memory() == "unknown: no report and no --vram"
    report = remote.gpu.report().to_dict()
    assert report["available_gb"] == 0 and report["notes"] == [
        "memory of gpu2: unknown: no report and no --vram"
    ]


def test_a_report_that_does_not_parse_is_ignored(manager: ModelManager, down_url: str) -> None:
    manager.fleet.add_host("gpu2", down_url, vram_gb=8)
    manager.store.publish_report(
        "gpu2", json.dumps({"backend": "cuda"}), 10.0, "someone", "2026-01-01T00:00:00+00:00"
    )
    host = manager.fleet.registry.get("gpu2")
    assert host.report is None and host.memory_status == "vram"


# --- the faces -------------------------------------------------------------------------------------


def test_rest_hosts_adds_lists_and_removes(
    manager: ModelManager, ollama: OllamaDouble, down_url: str
) -> None:
    with TestClient(create_app(manager), base_url=API_BASE) as c:
        added = success(c.post("/api/hosts", json={"name": "gpu2", "url": ollama.url, "vram_gb": 12}), 201)
        assert added["added"] is True and added["host"]["name"] == "gpu2" and added["host"]["vram_gb"] == 12
        again = success(c.post("/api/hosts", json={"name": "gpu2", "url": down_url}), 200)
        assert again["added"] is False and again["host"]["url"] == down_url
        refused(c.post("/api/hosts", json={"name": "all", "url": down_url}), 422, "invalid_request")
        refused(c.post("/api/hosts", json={"name": "gpu3", "url": "ftp://x"}), 422, "invalid_request")
        listed = success(c.get("/api/hosts"))
        assert [(h["name"], h["reachable"]) for h in listed["hosts"]] == [("local", True), ("gpu2", False)]
        assert listed["count"] == 2
        refused(c.delete("/api/hosts/gpu3"), 404, "unknown_host")
        gone = success(c.delete("/api/hosts/gpu2"))
        assert gone["host"]["name"] == "gpu2" and "kept" in gone["message"]
        assert success(c.get("/api/hosts"))["count"] == 1
        refused(c.get("/api/model/list", params={"host": "gpu2"}), 404, "unknown_host")


def test_cli_hosts_add_list_rm(
    ollama: OllamaDouble, isolated_env: Path, down_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--ollama-host", ollama.url, "--data-dir", str(isolated_env)]
    assert main([*base, "hosts", "add", "gpu2", down_url, "--vram", "24"]) == 0
    assert (
        capsys.readouterr().out
        == f"Added host gpu2 at {down_url}; memory: 24 GB, as added (--vram; its free RAM unknown)\n"
    )
    assert main([*base, "hosts", "list", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(h["name"], h["reachable"], h["version"]) for h in doc["hosts"]] == [
        ("local", True, "0.32.15"),
        ("gpu2", False, None),
    ]
    assert main([*base, "hosts", "list"]) == 0
    out, err = capsys.readouterr()
    assert "local (here)" in out and "answers, version 0.32.15" in out and "unreachable" in out
    assert f"Note: host gpu2 ({down_url}) is unreachable: Ollama unreachable" in err
    assert main([*base, "hosts", "add", "all", down_url]) == 2
    assert "is taken" in capsys.readouterr().err
    assert main([*base, "hosts", "rm", "gpu2"]) == 0
    assert "Removed host gpu2" in capsys.readouterr().out
    assert main([*base, "hosts", "rm", "gpu2"]) == 1
    assert "Unknown host: gpu2" in capsys.readouterr().err


def test_removing_a_host_keeps_its_recorded_usage(manager: ModelManager, down_url: str) -> None:
    manager.fleet.add_host("gpu2", down_url)
    manager.record_usage("llama3.2:1b-instruct", 2.0, host="gpu2")
    manager.fleet.remove_host("gpu2")
    assert manager.get_model_statistics("llama3.2:1b-instruct")["usage_count"] == 1
    with pytest.raises(UnknownHostError):
        manager.record_usage("llama3.2:1b-instruct", 2.0, host="gpu2")
    assert manager.store.count_events() == 1


def test_a_fleet_closes_the_adapters_it_opened_and_leaves_its_core_open(
    manager: ModelManager, down_url: str
) -> None:
    fleet = Fleet(manager)
    fleet.add_host("gpu2", down_url)
    remote = fleet.manager("gpu2")
    assert fleet.manager("gpu2") is remote and fleet.manager("local") is manager
    fleet.add_host("gpu2", "gpu2.lan")  # a new URL: a new adapter
    assert (
        fleet.manager("gpu2") is not remote and fleet.manager("gpu2").ollama.host == "http://gpu2.lan:11434"
    )
    fleet.close()
    assert manager.store.schema_version() >= 4  # the shared store is still open


def test_a_manager_named_for_its_host_keeps_and_exports_that_hosts_current_model(
    ollama: OllamaDouble, isolated_env: Path
) -> None:
    ollama.install("llama3.2:1b-instruct-q8_0")
    named = load_settings(
        {"MODEL_MANAGER_HOME": str(isolated_env), "MODEL_MANAGER_HOST_NAME": "box-a"}, host=ollama.url
    )
    with ModelManager(settings=named) as mm:
        assert mm.switch_model("llama3.2:1b-instruct") is True
        assert mm.get_current_model() == "llama3.2:1b-instruct"
        assert mm.export_data()["current_model"] == "llama3.2:1b-instruct"
        assert mm.store.get_state("current_model") is None  # the default host's is its own
    with ModelManager(host=ollama.url, data_dir=isolated_env) as local:
        assert local.get_current_model() is None and local.export_data()["current_model"] is None
