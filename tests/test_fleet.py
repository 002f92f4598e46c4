"""A fleet of three Ollama doubles on their own loopback ports, seen by one manager: every host asked at
once, per model where it is installed and loaded, per-host syncs and recommendations, and a host that is
down or answers garbage marked unreachable while the others are served. The CLI's and REST API's faces
of the same."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from conftest import API_BASE
from fleet_helpers import EIGHT_B, EIGHT_B_TAG, SMALL, SMALL_TAG, Doubles
from helpers import refused, success
from model_manager import ModelManager
from model_manager.api import create_app
from model_manager.cli import main
from model_manager.errors import InvalidRequestError
from model_manager.fleet import Fleet


def _where(models: list[dict[str, object]]) -> dict[object, tuple[object, object]]:
    return {m["name"]: (m["installed_on"], m["loaded_on"]) for m in models}


def test_list_all_shows_where_each_model_is_installed_and_loaded(
    fleet_manager: ModelManager, fleet_doubles: Doubles
) -> None:
    fleet_doubles[1].load(EIGHT_B_TAG)
    models = fleet_manager.list_available_models(installed_only=True, host="all")
    assert _where(models) == {SMALL: (["local", "gpu3"], []), EIGHT_B: (["gpu2", "gpu3"], ["gpu2"])}
    eight = next(m for m in models if m["name"] == EIGHT_B)
    assert eight["hosts"]["gpu2"] == {
        "installed": True,
        "loaded": True,
        "fit": "full",
        "installed_state_known": True,
    }
    assert eight["hosts"]["local"]["installed"] is False
    # The same model is judged in each host's memory: 8 GB here, 24 and 12 GB as added.
    assert {h: v["fit"] for h, v in eight["hosts"].items()} == {
        "local": "full",
        "gpu2": "full",
        "gpu3": "full",
    }
    every = fleet_manager.list_available_models(host="all")
    assert len(every) == len(fleet_manager.list_available_models())  # the catalog once, not once per host


def test_a_host_that_is_down_or_answers_garbage_is_marked_unreachable_and_the_others_served(
    fleet_manager: ModelManager, fleet_doubles: Doubles
) -> None:
    fleet = fleet_manager.fleet
    fleet.listing("all")  # every host seen once
    fleet_doubles[1].down = True
    fleet_doubles[2].faults.not_http = True
    models, answers = fleet.listing("all", installed_only=True)
    by_host = {a.host.name: a for a in answers}
    assert by_host["local"].ok
    assert by_host["gpu2"].error is not None and by_host["gpu2"].error.code == "ollama_unavailable"
    assert by_host["gpu3"].error is not None and by_host["gpu3"].error.code == "ollama_error"
    # The unreachable hosts' models are listed as last seen, and say so.
    rows = {m.info.name: m.on for m in models}
    assert (
        rows[EIGHT_B]["gpu2"]["installed"] is True and rows[EIGHT_B]["gpu2"]["installed_state_known"] is False
    )
    running = {a.host.name: a for a in fleet.running("all")}
    assert running["local"].ok and running["local"].value == []
    assert not running["gpu2"].ok and not running["gpu3"].ok
    synced = {a.host.name: a for a in fleet.sync("all")}
    assert synced["local"].value is not None and synced["local"].value.installed == [SMALL_TAG]
    assert not synced["gpu2"].ok


def test_a_fleet_wide_question_asks_every_host_at_once(fleet_manager: ModelManager) -> None:
    """Each host's call waits for the others at a barrier: asked one after another, none would pass."""
    barrier = threading.Barrier(3, timeout=10)
    answers = fleet_manager.fleet.ask(fleet_manager.fleet.hosts(), lambda m: barrier.wait() >= 0)
    assert [a.value for a in answers] == [True, True, True]
    names = {a.host.name for a in answers}
    assert names == {"local", "gpu2", "gpu3"}


def test_only_host_faults_become_answers(fleet_manager: ModelManager) -> None:
    def fails(_: object) -> None:
        raise InvalidRequestError("bad input is no host's fault")

    with pytest.raises(InvalidRequestError):
        fleet_manager.fleet.ask(fleet_manager.fleet.hosts(), fails)


def test_each_host_syncs_into_its_own_installed_state(fleet_manager: ModelManager) -> None:
    results = fleet_manager._sync_with_ollama("all")
    assert {h: r["installed"] for h, r in results.items()} == {
        "local": [SMALL_TAG],
        "gpu2": [EIGHT_B_TAG],
        "gpu3": sorted([SMALL_TAG, EIGHT_B_TAG]),
    }
    store = fleet_manager.store
    assert [r.name for r in store.list_models(installed_only=True, host="gpu2")] == [EIGHT_B_TAG]
    assert [r.name for r in store.list_models(installed_only=True)] == [SMALL_TAG]  # local
    assert fleet_manager._sync_with_ollama()["installed"] == results["local"]["installed"]  # as before


def test_each_host_recommends_in_its_own_memory(fleet_manager: ModelManager) -> None:
    answers = {a.host.name: a.value for a in fleet_manager.fleet.recommend("all", priority="quality")}
    assert all(rec is not None and rec.memory is not None for rec in answers.values())
    gb = {h: round(rec.memory.available_gb) for h, rec in answers.items() if rec and rec.memory}
    assert gb == {"local": 8, "gpu2": 24, "gpu3": 12}
    # The same call as a single host's recommend, in that host's memory.
    assert answers["gpu2"] is not None
    assert answers["gpu2"].model == fleet_manager.recommend_model(24, "quality")
    assert fleet_manager.recommend_model(priority="quality", host="gpu2") == answers["gpu2"].model


def test_a_single_host_is_a_manager_of_its_own(fleet_manager: ModelManager, fleet_doubles: Doubles) -> None:
    gpu2 = fleet_doubles[1]
    assert fleet_manager.switch_model(EIGHT_B, host="gpu2") is True
    assert gpu2.loaded() == [EIGHT_B_TAG] and fleet_doubles[0].loaded() == []
    assert fleet_manager.get_current_model(host="gpu2") == EIGHT_B
    assert fleet_manager.get_current_model() is None  # each host has its own current model
    ok, message = fleet_manager.download_model(SMALL, host="gpu2")
    assert ok and message.startswith("Downloaded llama3.2:1b-instruct") and SMALL_TAG in gpu2.installed()
    assert fleet_manager.delete_model(SMALL, host="gpu2") == (True, f"Deleted {SMALL}")
    assert gpu2.installed() == [EIGHT_B_TAG]
    fits, why = fleet_manager.check_model_compatibility(EIGHT_B, host="gpu3")
    assert fits and "of 12.0 GB" in why
    assert fleet_manager.get_model_info(EIGHT_B, host="gpu2")["installed"] is True
    assert fleet_manager.get_model_info(EIGHT_B)["installed"] is False
    assert fleet_manager.switch_model(EIGHT_B, host="nosuch") is False
    assert fleet_manager.last_error is not None and fleet_manager.last_error.code == "unknown_host"


# --- the CLI ---------------------------------------------------------------------------------------


def _cli(manager: ModelManager, *args: str) -> int:
    base = ["--ollama-host", str(manager.settings.ollama_host), "--data-dir", str(manager.settings.home)]
    return main([*base, *args])


def test_cli_list_ps_sync_and_recommend_all(
    fleet_manager: ModelManager, fleet_doubles: Doubles, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet_doubles[2].load(SMALL_TAG)
    assert _cli(fleet_manager, "list", "--installed", "--host", "all") == 0
    out = capsys.readouterr().out
    assert "Installed on" in out and "local, gpu3" in out and "gpu2, gpu3" in out
    assert _cli(fleet_manager, "ps", "--host", "all", "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(m["host"], m["name"]) for m in doc["models"]] == [("gpu3", SMALL)]
    assert [h["reachable"] for h in doc["hosts"]] == [True, True, True]
    assert _cli(fleet_manager, "recommend", "speed", "--host", "all") == 0
    out = capsys.readouterr().out
    assert [line.split(":")[0] for line in out.splitlines()] == ["local", "gpu2", "gpu3"]

    fleet_doubles[1].down = True
    assert _cli(fleet_manager, "sync", "--host", "all") == 1  # one host failed: not a success
    out, err = capsys.readouterr()
    assert "local (" in out and "gpu3 (" in out and "has 2 models installed" in out
    assert f"Note: host gpu2 ({fleet_doubles[1].url}) is unreachable" in err
    assert _cli(fleet_manager, "list", "--host", "all", "--installed") == 0  # a listing is still served
    assert "gpu2" in capsys.readouterr().err


def test_cli_host_name_runs_the_command_on_that_host(
    fleet_manager: ModelManager, fleet_doubles: Doubles, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(fleet_manager, "use", EIGHT_B, "--host", "gpu3", "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert (
        doc["host"] == "gpu3"
        and doc["model"]["name"] == EIGHT_B
        and fleet_doubles[2].loaded() == [EIGHT_B_TAG]
    )
    assert _cli(fleet_manager, "current", "--host", "gpu3") == 0
    assert capsys.readouterr().out.startswith(f"Current model: {EIGHT_B}")
    assert _cli(fleet_manager, "--host", "gpu2", "check", EIGHT_B) == 0
    assert "of 24.0 GB" in capsys.readouterr().out
    assert _cli(fleet_manager, "gpu", "--host", "gpu2") == 0
    assert "Memory available for models on gpu2: 24GB" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("list", "--host", "auto"), "--host auto goes with pull, use; list takes one host's name"),
        (("use", SMALL, "--host", "all"), "--host all goes with list, ps, recommend, stats, sync"),
        (("export", "x.json", "--host", "gpu2"), None),  # export takes no --host at all: argparse says so
        (("--host", "gpu2", "export", "x.json"), "export does not take --host"),
        (("--host", "gpu2", "serve"), "serve does not take --host"),
        (("list", "--host", "gpu 2"), "is not a host name"),
        (("list", "--host", "nosuch"), "Unknown host: nosuch"),
    ],
)
def test_cli_host_values_a_command_does_not_take_are_refused(
    fleet_manager: ModelManager, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], says: str | None
) -> None:
    try:
        code = _cli(fleet_manager, *args)
    except SystemExit as exc:  # argparse's own usage error
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code in (1, 2)
    if says is not None:
        assert says in err
    if "nosuch" in args:
        assert "--ollama-host URL" in err  # the hint for someone who meant Ollama's address


def test_cli_host_given_a_url_is_read_as_ollamas_address_with_a_note(
    fleet_manager: ModelManager, fleet_doubles: Doubles, capsys: pytest.CaptureFixture[str]
) -> None:
    home = str(fleet_manager.settings.home)
    assert main(["--host", fleet_doubles[1].url, "--data-dir", home, "list", "--installed", "--json"]) == 0
    out, err = capsys.readouterr()
    assert [m["name"] for m in json.loads(out)["models"]] == [EIGHT_B]
    assert f"so write --ollama-host {fleet_doubles[1].url}" in err
    assert (
        main(
            [
                "--host",
                fleet_doubles[1].url,
                "--ollama-host",
                fleet_doubles[1].url,
                "--data-dir",
                home,
                "list",
            ]
        )
        == 2
    )


# --- the REST API ----------------------------------------------------------------------------------


def test_rest_host_in_queries_and_bodies(fleet_manager: ModelManager, fleet_doubles: Doubles) -> None:
    with TestClient(create_app(fleet_manager), base_url=API_BASE) as c:
        listed = success(c.get("/api/model/list", params={"host": "all", "installed_only": True}))
        assert _where(listed["models"])[EIGHT_B] == (["gpu2", "gpu3"], [])
        assert [h["name"] for h in listed["hosts"]] == ["local", "gpu2", "gpu3"] and listed[
            "installed_state_known"
        ]
        one = success(c.get("/api/model/installed", params={"host": "gpu2"}))
        assert [m["name"] for m in one["models"]] == [EIGHT_B]
        switched = success(c.post("/api/model/switch", json={"model": EIGHT_B, "host": "gpu2"}))
        assert switched["host"] == "gpu2" and fleet_doubles[1].loaded() == [EIGHT_B_TAG]
        running = success(c.get("/api/model/running", params={"host": "all"}))
        assert [(m["host"], m["name"]) for m in running["models"]] == [("gpu2", EIGHT_B)]
        assert success(c.get("/api/model/current", params={"host": "gpu2"}))["model"] == EIGHT_B
        synced = success(c.post("/api/model/sync", json={"host": "all"}))
        assert [h["sync"]["installed"] for h in synced["hosts"]] == [
            [SMALL_TAG],
            [EIGHT_B_TAG],
            sorted([SMALL_TAG, EIGHT_B_TAG]),
        ]
        rec = success(c.post("/api/model/recommend", json={"host": "all", "priority": "speed"}))
        assert [h["name"] for h in rec["hosts"]] == ["local", "gpu2", "gpu3"] and rec["priority"] == "speed"
        fit = success(c.post("/api/model/check_compatibility", json={"model": EIGHT_B, "host": "gpu3"}))
        assert fit["available_vram_gb"] == 12.0
        success(c.post("/api/model/usage", json={"model": SMALL, "inference_time": 1.0, "host": "gpu3"}))
        stats = success(c.get("/api/model/statistics", params={"host": "all", "model": SMALL}))["statistics"]
        assert stats["usage_count"] == 1 and stats["hosts"] == {"gpu3": stats["hosts"]["gpu3"]}
        refused(
            c.post("/api/model/usage", json={"model": SMALL, "inference_time": 1.0, "host": "all"}),
            422,
            "invalid_request",
        )
        refused(c.post("/api/model/switch", json={"model": EIGHT_B, "host": "nosuch"}), 404, "unknown_host")
        fleet_doubles[2].down = True
        listed = success(c.get("/api/model/list", params={"host": "all"}))
        assert [h["reachable"] for h in listed["hosts"]] == [True, True, False]
        assert listed["installed_state_known"] is False


def test_a_fleet_over_a_manager_sees_what_the_manager_does(fleet_manager: ModelManager) -> None:
    fleet = Fleet(fleet_manager)
    try:
        assert [h.name for h in fleet.hosts()] == [h.name for h in fleet_manager.fleet.hosts()]
        assert fleet.manager(None) is fleet_manager and fleet.manager("LOCAL") is fleet_manager
        with pytest.raises(InvalidRequestError, match="names several hosts"):
            fleet.manager("all")
    finally:
        fleet.close()


def test_the_fleets_tables_fit_80_columns(
    fleet_manager: ModelManager, fleet_doubles: Doubles, down_url: str
) -> None:
    from test_cli_width import assert_fits, run

    fleet_manager.add_host("a-host-with-a-long-name.studio.lan", down_url, vram_gb=48)
    fleet_doubles[1].load(EIGHT_B_TAG)
    fleet_manager.record_usage(SMALL, 1.0, host="gpu2")
    fleet_manager.record_usage(SMALL, 1.0, host="gpu3")
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "OLLAMA_HOST")}
    env |= {
        "MODEL_MANAGER_HOME": str(fleet_manager.settings.home),
        "OLLAMA_HOST": str(fleet_manager.settings.ollama_host),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"),
    }
    for args, header in (
        (("hosts", "list"), "Memory"),
        (("list", "--host", "all"), "Installed"),
        (("ps", "--host", "all"), "Host"),
        (("stats", "--host", "all"), "Per host"),
    ):
        out = run(env, *args)
        assert_fits(out)
        assert header in out, out
