"""The runnable usage example: the whole tour on the bundled Ollama double with ``--demo``; without it,
a tour that only reads the user's Ollama and store; a failed step is a non-zero exit."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from model_manager import ModelManager
from model_manager.testing import OllamaDouble

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "example_model_management_usage.py"
SMALL, SMALL_TAG = "llama3.2:1b-instruct", "llama3.2:1b-instruct-q8_0"
MEDIUM, MEDIUM_TAG = "llama3.1:8b-instruct", "llama3.1:8b-instruct-q4_K_M"


def run_example(*args: str, home: Path, ollama_url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "MODEL_MANAGER_"))}
    env["MODEL_MANAGER_HOME"] = str(home)
    if ollama_url is not None:
        env["OLLAMA_HOST"] = ollama_url
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_usage_example_runs_in_demo_mode(tmp_path: Path) -> None:
    result = run_example("--demo", home=tmp_path / "unused")  # --demo keeps its data in a temporary dir
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Recommended for 8.0 GB, balanced: " in out
    assert "Download: True (Downloaded " in out
    assert "Switch: True; current model: " in out
    assert "3 uses, 66.7% success, 2.50s average" in out
    assert "(False, 'Cannot delete current: " in out
    assert "(False, 'Model not found: no-such-model')" in out
    assert not (tmp_path / "unused").exists()


def recorded_state(home: Path, url: str) -> dict[str, Any]:
    """What the user has recorded in ``home``: the export document (statistics, metadata, current model)
    less its time."""
    with ModelManager(host=url, data_dir=home) as manager:
        doc = manager.export_data()
    doc.pop("exported_at")
    return doc


def test_without_demo_the_example_only_reads_the_users_store_and_ollama(
    ollama: OllamaDouble, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    ollama.install(MEDIUM_TAG)
    with ModelManager(host=ollama.url, data_dir=home) as manager:
        assert manager.switch_model(MEDIUM)
        manager.record_usage(MEDIUM, 1.5)
    before = recorded_state(home, ollama.url)
    ollama.clear_requests()

    result = run_example(home=home, ollama_url=ollama.url)

    assert result.returncode == 0, result.stderr
    assert f"Current model: {MEDIUM}" in result.stdout
    assert f"{MEDIUM}: 1 uses recorded, installed: True" in result.stdout
    assert recorded_state(home, ollama.url) == before
    changes = [r.path for r in ollama.requests if r.path in ("/api/pull", "/api/generate", "/api/delete")]
    assert changes == [] and ollama.installed() == [MEDIUM_TAG]
    assert not list(home.glob("backups/*"))


def test_without_demo_the_example_exits_1_when_ollama_does_not_answer(down_url: str, tmp_path: Path) -> None:
    result = run_example(home=tmp_path / "home", ollama_url=down_url)
    assert result.returncode == 1
    assert "Ollama unreachable" in result.stderr and "Solution: Start Ollama" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_demo_exits_1_when_nothing_fits(tmp_path: Path) -> None:
    result = run_example("--demo", "--vram", "0.1", home=tmp_path / "unused")
    assert result.returncode == 1 and "no balanced model fits in 0.1 GB" in result.stderr


@pytest.fixture
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("usage_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_failed_download_stops_the_tour_before_any_usage_is_recorded(
    example: ModuleType, manager: ModelManager, ollama: OllamaDouble
) -> None:
    ollama.faults.pull_error = "registry unreachable"
    with pytest.raises(
        example.StepFailed, match=r"download of .* failed: Download failed: .*registry unreachable"
    ):
        example.full_tour(manager, 8.0)
    assert all(s["usage_count"] == 0 for s in manager.get_all_statistics().values())
    assert manager.get_current_model() is None
