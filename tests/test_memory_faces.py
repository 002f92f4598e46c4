"""One truth about memory: every catalog model, at 4, 8, 12, 16, 24 and 48 GB, shows the same figure, fit
level and context in every face — the quick-reference API, the raising core, the REST API and the CLI —
whether the memory is given as an argument or comes from ``MODEL_MANAGER_VRAM_GB``; and ``check`` and
``recommend`` never disagree."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from helpers import success
from model_manager import GPUManager, ModelManager
from model_manager.api import create_app
from model_manager.cli import main
from model_manager.testing import OllamaDouble
from model_manager.types import Priority

MEMORY_SIZES = (4, 8, 12, 16, 24, 48)
HOST_RAM_GB = 16.0
"""Host RAM held still, so that "partial" and "none" cannot flip between two calls."""
FIELDS = ("min_vram_gb", "estimated_vram_gb", "fit", "context_length", "kv_cache_type", "max_context")


def _figures(meta: dict[str, Any]) -> dict[str, Any]:
    """What every face must agree on, from a metadata dict."""
    fit = meta["fit"]
    return {
        "min_vram_gb": meta["min_vram_gb"],
        "estimated_vram_gb": meta["estimated_vram_gb"],
        "fit": fit["fit"],
        "context_length": fit["context_length"],
        "kv_cache_type": fit["kv_cache_type"],
    }


def _check_figures(doc: dict[str, Any]) -> dict[str, Any]:
    """The same, from a compatibility answer."""
    return {
        "min_vram_gb": doc["required_vram_gb"],
        "estimated_vram_gb": doc["estimated_vram_gb"],
        "fit": doc["fit"],
        "context_length": doc["context_length"],
        "kv_cache_type": doc["kv_cache_type"],
    }


@pytest.fixture
def held_ram(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(GPUManager, "get_host_available_gb", lambda self: HOST_RAM_GB)


@pytest.fixture
def faces(
    ollama: OllamaDouble, isolated_env: Path, held_ram: None
) -> Iterator[tuple[ModelManager, TestClient]]:
    with (
        ModelManager(host=ollama.url, data_dir=isolated_env) as mm,
        TestClient(create_app(mm), base_url="http://127.0.0.1:8000") as client,
    ):
        yield mm, client


def _cli(ollama: OllamaDouble, home: Path, capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    main(["--ollama-host", ollama.url, "--data-dir", str(home), *args, "--json"])
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("gb", MEMORY_SIZES)
def test_every_face_shows_one_figure_per_model(
    gb: int,
    faces: tuple[ModelManager, TestClient],
    ollama: OllamaDouble,
    isolated_env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    manager, client = faces
    names = [entry.name for entry in manager.catalog]
    # Argument: the quick-reference list and check, the REST list and check, the CLI list and check.
    listed = {m["name"]: m for m in manager.list_available_models()}  # detected here; figures compared below
    at_gb = {m["name"]: _figures(m) for m in manager.list_available_models(max_vram_gb=float(gb))}
    rest_list = success(client.get("/api/model/list", params={"max_vram": gb}))["models"]
    assert {m["name"]: _figures(m) for m in rest_list} == at_gb
    cli_list = _cli(ollama, isolated_env, capsys, "list", "--max-vram", str(gb))["models"]
    assert {m["name"]: _figures(m) for m in cli_list} == at_gb
    for name in names:
        check = manager.compatibility(name, float(gb))
        doc = check.to_dict()
        assert listed[name]["min_vram_gb"] == doc["required_vram_gb"], name
        # The list keeps exactly the models the check calls compatible, with the same figures.
        assert (name in at_gb) is check.compatible, name
        if check.compatible:
            assert at_gb[name] == _check_figures(doc), name
        rest = success(
            client.post("/api/model/check_compatibility", json={"model": name, "available_vram_gb": gb})
        )
        assert {k: rest[k] for k in doc if k != "memory"} == {k: v for k, v in doc.items() if k != "memory"}
        assert check.message == manager.check_model_compatibility(name, float(gb))[1]
        assert doc["memory_source"] == "argument"

    # The same memory as an override: info and check without a figure say "override", never "detected".
    monkeypatch.setenv("MODEL_MANAGER_VRAM_GB", str(gb))
    with ModelManager(host=ollama.url, data_dir=isolated_env) as overridden:
        for name in names:
            info = overridden.get_model_info(name)
            assert info is not None and info["fit"]["memory_source"] == "override"
            check = overridden.compatibility(name).to_dict()
            assert check["memory_source"] == "override"
            assert _check_figures(check) == _figures(info), name
            given = manager.compatibility(name, float(gb)).to_dict()
            assert {k: check[k] for k in FIELDS if k in check} == {k: given[k] for k in FIELDS if k in given}
        cli_check = _cli(ollama, isolated_env, capsys, "check", names[0])
        assert cli_check["vram_source"] == "override"
        assert cli_check["fit"] == overridden.compatibility(names[0]).to_dict()["fit"]


@pytest.mark.parametrize("gb", MEMORY_SIZES)
def test_check_and_recommend_never_disagree(
    gb: int,
    faces: tuple[ModelManager, TestClient],
    ollama: OllamaDouble,
    isolated_env: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    manager, client = faces
    for priority in Priority:
        rec = manager.recommend(float(gb), priority)
        considered = {c.info.name: c for c in rec.candidates}
        for entry in manager.catalog:
            if entry.purpose.value != priority.purpose.value:
                continue
            check = manager.compatibility(entry.name, float(gb))
            assert (entry.name in considered) is check.compatible, (priority, entry.name)
            if check.compatible:
                candidate = considered[entry.name].to_dict()
                doc = check.to_dict()
                for key in ("fit", "context_length", "kv_cache_type", "estimated_vram_gb", "max_context"):
                    assert candidate[key] == doc[key], (priority, entry.name, key)
                assert candidate["required_vram_gb"] == doc["required_vram_gb"]
        # A model that fits fully at Ollama's default context is preferred over one that does not.
        fits = [c.fits_at_default for c in rec.candidates]
        assert fits == sorted(fits, reverse=True), priority
        if rec.best is not None and not rec.best.fits_at_default:
            assert "Ollama's default" in rec.reason or "even at 256" in rec.reason
        body = success(
            client.post("/api/model/recommend", json={"available_vram_gb": gb, "priority": priority.value})
        )
        assert body["model"] == rec.model and body["reason"] == rec.reason
        assert [c["name"] for c in body["candidates"]] == [c.info.name for c in rec.candidates]
        cli_doc = _cli(ollama, isolated_env, capsys, "recommend", str(gb), priority.value)
        assert cli_doc["model"] == rec.model and cli_doc["vram_source"] == "argument"
