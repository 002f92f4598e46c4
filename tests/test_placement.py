"""Placement (``--host auto``): where it is installed and fits fully, else where it fits fully with the most
free memory, else the best partial fit; hosts whose memory is known first; a switch only where the model
is installed. Each host is judged by the one fit verdict in its own memory, and the answer names the host
and why. Three Ollama doubles on their own loopback ports stand for the hosts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from conftest import API_BASE
from fleet_helpers import EIGHT_B, EIGHT_B_TAG, SMALL, SMALL_TAG, THIRTEEN_B, fleet_of, wait_until
from helpers import success
from model_manager import ModelManager
from model_manager.api import create_app
from model_manager.cli import main
from model_manager.config import load_settings
from model_manager.errors import (
    HostUnreachableError,
    InsufficientVramError,
    ModelNotFoundError,
    ModelNotInstalledError,
)
from model_manager.hosts import HostReport
from model_manager.placement import place
from model_manager.testing import OllamaDouble

MIXTRAL = "mixtral:8x7b-instruct"
SEVENTY_B = "llama3.1:70b-instruct"


@pytest.fixture
def doubles() -> Iterator[tuple[OllamaDouble, OllamaDouble, OllamaDouble]]:
    with OllamaDouble() as local, OllamaDouble() as gpu2, OllamaDouble() as gpu3:
        gpu3.install(EIGHT_B_TAG)
        yield local, gpu2, gpu3


@pytest.fixture
def mm(
    doubles: tuple[OllamaDouble, OllamaDouble, OllamaDouble],
    isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[ModelManager]:
    """This machine's host has 8 GB; gpu2 was added with 24 GB, gpu3 with 12 GB."""
    monkeypatch.setenv("MODEL_MANAGER_VRAM_GB", "8")
    with fleet_of(doubles, isolated_env) as manager:
        yield manager


def _report(manager: ModelManager, host: str, vram_gb: float, *, at: str | None = None) -> None:
    """Publish ``host``'s report as the manager serving there would: its GPU detection with a
    MODEL_MANAGER_VRAM_GB of ``vram_gb`` (host RAM: this machine's), at ``at`` (default now)."""
    settings = load_settings(
        {"MODEL_MANAGER_HOME": str(manager.settings.home), "MODEL_MANAGER_VRAM_GB": str(vram_gb)},
        host=str(manager.settings.ollama_host),
    )
    with ModelManager(settings=settings) as there:
        payload = json.dumps(HostReport.payload(there.gpu))
    from model_manager.store import utc_now

    manager.store.publish_report(host, payload, 10.0, "test", at or utc_now())


def test_installed_and_fitting_fully_beats_more_free_memory(mm: ModelManager) -> None:
    chosen = place(mm.fleet, EIGHT_B)
    assert chosen.host.name == "gpu3"
    assert chosen.reason.startswith("installed on gpu3 and fits fully there: fits fully on the GPU")
    assert (
        "of 12.0 GB" in chosen.reason
        and "(memory 12 GB, as added (--vram; its free RAM unknown))" in chosen.reason
    )
    assert [o.host.name for o in chosen.options] == ["gpu3", "gpu2", "local"]


def test_else_where_it_fits_fully_with_the_most_free_memory(mm: ModelManager) -> None:
    chosen = place(mm.fleet, THIRTEEN_B)  # 10 GB: fits fully on gpu2 (24) and gpu3 (12), not here (8)
    assert chosen.host.name == "gpu2"
    assert chosen.reason.startswith(
        "fits fully on gpu2, with the most free memory of the hosts where it does"
    )
    levels = {o.host.name: o.level for o in chosen.options}
    assert levels == {"gpu2": "full", "gpu3": "full", "local": "partial"}


def test_else_the_best_partial_fit(mm: ModelManager) -> None:
    # gpu3's manager publishes 12 GB of VRAM beside this machine's RAM: more of mixtral on its GPU than
    # here (8 GB). gpu2 is known only by its --vram, without RAM for the rest: mixtral does not run there.
    _report(mm, "gpu3", 12)
    chosen = place(mm.fleet, MIXTRAL)
    assert chosen.host.name == "gpu3" and chosen.reason.startswith("fits fully on no host; gpu3 runs it best")
    by_host = {o.host.name: o for o in chosen.options}
    assert by_host["gpu3"].level == by_host["local"].level == "partial"
    gpu3, local = by_host["gpu3"].verdict, by_host["local"].verdict
    assert gpu3.layers_on_gpu is not None and local.layers_on_gpu is not None
    assert gpu3.layers_on_gpu > local.layers_on_gpu
    assert by_host["gpu2"].level == "none"


def test_a_host_whose_memory_is_known_comes_before_one_with_a_stale_report(mm: ModelManager) -> None:
    mm.add_host("gpu2", str(mm.fleet.registry.get("gpu2").url))  # no --vram: its report is all it has
    _report(mm, "gpu2", 48, at="2026-01-01T00:00:00+00:00")  # long past three heartbeats
    gpu2 = mm.fleet.registry.get("gpu2")
    assert gpu2.memory_status == "stale" and not gpu2.memory_known
    chosen = place(mm.fleet, THIRTEEN_B)  # fits fully on gpu2 (48, stale) and gpu3 (12, known)
    assert chosen.host.name == "gpu3"
    assert chosen.reason.startswith(
        "fits fully on gpu3, with the most free memory of the hosts whose memory is known"
    )
    stale = next(o for o in chosen.options if o.host.name == "gpu2")
    assert stale.level == "full" and "stale: reported" in stale.to_dict()["memory"]
    # Installed on the stale host and fitting fully there, a model still goes where memory is known.
    mm.fleet.manager("gpu2").ollama.pull(EIGHT_B_TAG)
    mm.fleet.manager("gpu3").delete(EIGHT_B)
    moved = place(mm.fleet, EIGHT_B)
    assert moved.host.name == "gpu3"
    assert moved.reason.endswith("; passed over for memory that is stale or unknown: gpu2")
    # A fresh report makes it known again, and the most free memory wins.
    _report(mm, "gpu2", 48)
    assert place(mm.fleet, THIRTEEN_B).host.name == "gpu2"


def test_a_switch_goes_only_where_the_model_is_installed(
    mm: ModelManager, doubles: tuple[OllamaDouble, ...]
) -> None:
    doubles[1].install(SMALL_TAG)
    assert place(mm.fleet, SMALL, installed_only=True).host.name == "gpu2"
    assert mm.switch_model(EIGHT_B, host="auto") is True
    assert doubles[2].loaded() == [EIGHT_B_TAG] and mm.get_current_model(host="gpu3") == EIGHT_B
    with pytest.raises(ModelNotInstalledError, match="on any host that answers"):
        place(mm.fleet, THIRTEEN_B, installed_only=True)


def test_a_model_that_runs_nowhere_is_refused_naming_each_hosts_verdict(mm: ModelManager) -> None:
    with pytest.raises(InsufficientVramError) as refused:
        place(mm.fleet, SEVENTY_B)
    message = refused.value.message
    assert message.startswith(f"Insufficient VRAM: {SEVENTY_B} runs on no host: ")
    assert all(f"; {h}: " in message or f"host: {h}: " in message for h in ("local", "gpu2", "gpu3"))
    assert message.count("does not fit at 4,096 context") == 3


def test_an_unknown_model_is_refused_before_the_other_hosts_are_asked(
    mm: ModelManager, doubles: tuple[OllamaDouble, ...]
) -> None:
    for double in doubles:
        double.clear_requests()
    with pytest.raises(ModelNotFoundError):
        place(mm.fleet, "nosuch:7b")
    assert doubles[1].requests == [] and doubles[2].requests == []


def test_unreachable_hosts_are_left_out_and_none_answering_is_an_error(
    mm: ModelManager, doubles: tuple[OllamaDouble, ...]
) -> None:
    doubles[2].down = True
    chosen = place(mm.fleet, EIGHT_B)  # installed only on gpu3, which is down: placed where it fits
    assert chosen.host.name == "gpu2" and [a.host.name for a in chosen.unreachable] == ["gpu3"]
    assert chosen.to_dict()["unreachable"][0]["reachable"] is False
    for double in doubles:
        double.down = True
    with pytest.raises(HostUnreachableError) as refused:
        place(mm.fleet, EIGHT_B)
    assert all(f"{h}: Ollama unreachable" in refused.value.message for h in ("local", "gpu2", "gpu3"))


def test_cli_pull_auto_names_the_host_and_why(
    mm: ModelManager, doubles: tuple[OllamaDouble, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--ollama-host", str(mm.settings.ollama_host), "--data-dir", str(mm.settings.home)]
    assert main([*base, "pull", THIRTEEN_B, "--host", "auto", "--json"]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["host"] == "gpu2" and doc["placement"]["host"] == "gpu2" and doc["success"] is True
    assert err.startswith(f"Host: gpu2 ({doubles[1].url}): {THIRTEEN_B} fits fully on gpu2")
    assert "llama2:13b-chat" in doubles[1].installed()
    assert main([*base, "use", THIRTEEN_B, "--host", "auto"]) == 0
    out, err = capsys.readouterr()
    assert out == f"Switched to {THIRTEEN_B}\n" and "installed on gpu2 and fits fully there" in err
    assert main([*base, "pull", SEVENTY_B, "--host", "auto"]) == 1
    assert "runs on no host" in capsys.readouterr().err


def test_rest_download_and_switch_auto(mm: ModelManager, doubles: tuple[OllamaDouble, ...]) -> None:
    with TestClient(create_app(mm), base_url=API_BASE) as c:
        started = success(c.post("/api/model/download", json={"model": THIRTEEN_B, "host": "auto"}), 202)
        assert started["job"]["host"] == "gpu2"
        job = wait_until(
            lambda: (
                (j := c.get(f"/api/model/download/{started['job']['id']}").json()["job"])["status"]
                == "succeeded"
                and j
            )
        )
        assert job["host"] == "gpu2" and "llama2:13b-chat" in doubles[1].installed()
        switched = success(c.post("/api/model/switch", json={"model": THIRTEEN_B, "host": "auto"}))
        assert switched["host"] == "gpu2" and switched["placement"]["reason"].startswith("installed on gpu2")
        again = success(c.post("/api/model/download", json={"model": SMALL, "host": "gpu3", "wait": True}))
        assert again["job"]["host"] == "gpu3" and SMALL_TAG in doubles[2].installed()
        assert {j["host"] for j in success(c.get("/api/model/downloads"))["jobs"]} == {"gpu2", "gpu3"}
