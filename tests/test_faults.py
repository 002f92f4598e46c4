"""Faults on the Ollama side: each gives the quick reference's error with a solution, changes nothing, and a retry works."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from model_manager import (
    DownloadFailedError,
    ModelManager,
    ModelNotInstalledError,
    OllamaError,
    OllamaUnavailableError,
)
from model_manager.config import load_settings
from model_manager.testing import OllamaDouble

SMALL = "llama3.2:1b-instruct"


def _state(manager: ModelManager) -> dict[str, Any]:
    """Everything a fault must leave alone: current model, statistics, metadata."""
    doc = manager.export_data()
    doc.pop("exported_at")
    return doc


@pytest.fixture
def quick(ollama: OllamaDouble, isolated_env: Path) -> Iterator[ModelManager]:
    """A manager with short timeouts, so hangs are seen quickly."""
    settings = replace(
        load_settings(host=ollama.url, data_dir=isolated_env),
        request_timeout_s=1.0,
        load_timeout_s=1.0,
        pull_silence_timeout_s=1.0,
    )
    with ModelManager(settings=settings) as manager:
        yield manager


@pytest.fixture
def ready(quick: ModelManager, ollama: OllamaDouble) -> ModelManager:
    """Two installed models, one current, some usage recorded."""
    assert quick.download_model(SMALL)[0]
    assert quick.download_model("llama3.2:3b-instruct")[0]
    assert quick.switch_model(SMALL)
    quick.record_usage(SMALL, 1.5)
    return quick


def test_ollama_down_at_start(ollama: OllamaDouble, ready: ModelManager) -> None:
    before = _state(ready)
    ollama.faults.down = True
    time.sleep(2.1)  # past the installed-state cache
    assert len(ready.list_available_models()) >= 6
    assert ready.installed_state_known() is False
    assert ready.switch_model("llama3.2:3b-instruct") is False
    assert isinstance(ready.last_error, OllamaUnavailableError)
    assert "Start Ollama" in ready.last_error.solution
    assert _state(ready) == before
    ollama.faults.down = False
    assert ready.switch_model("llama3.2:3b-instruct") is True


def test_ollama_goes_down_mid_pull_and_the_retry_resumes(ollama: OllamaDouble, quick: ModelManager) -> None:
    ollama.pull_chunks = 10
    ollama.pull_delay_s = 0.05
    before = _state(quick)
    seen: list[int] = []

    def progress(status: str, completed: int, total: int) -> None:
        seen.append(completed)
        if len(seen) == 4:
            ollama.faults.down = True

    success, msg = quick.download_model(SMALL, progress)
    assert success is False and msg.startswith("Download failed: ")
    assert isinstance(quick.last_error, DownloadFailedError)
    assert _state(quick) == before
    ollama.faults.down = False
    resumed: list[int] = []
    assert quick.download_model(SMALL, lambda s, c, t: resumed.append(c))[0]
    first_progress = next(c for c in resumed if c > 0)
    assert first_progress >= max(seen)


def test_http_500(ollama: OllamaDouble, ready: ModelManager) -> None:
    before = _state(ready)
    ollama.faults.http_500 = "something broke"
    assert ready.switch_model("llama3.2:3b-instruct") is False
    assert isinstance(ready.last_error, OllamaError)
    assert "something broke (HTTP 500)" in ready.last_error.message
    success, msg = ready.download_model("llama3.1:8b-instruct")
    assert success is False and msg.startswith("Download failed: ") and "something broke" in msg
    assert _state(ready) == before
    ollama.faults.http_500 = False
    assert ready.switch_model("llama3.2:3b-instruct") is True


def test_pull_stream_cut_then_resumed(ollama: OllamaDouble, quick: ModelManager) -> None:
    ollama.pull_chunks = 8
    ollama.faults.cut_pull_after = 4
    success, msg = quick.download_model(SMALL)
    assert success is False and msg.startswith("Download failed: ")
    assert quick.get_model_info(SMALL)["installed"] is False  # type: ignore[index]
    ollama.faults.cut_pull_after = None
    assert quick.download_model(SMALL)[0]
    assert quick.get_model_info(SMALL)["installed"] is True  # type: ignore[index]


def test_malformed_line(ollama: OllamaDouble, quick: ModelManager) -> None:
    ollama.faults.malformed_line = True
    success, msg = quick.download_model(SMALL)
    assert success is False and msg.startswith("Download failed: ") and "malformed" in msg
    ollama.faults.malformed_line = False
    assert quick.download_model(SMALL)[0]


def test_hang_past_the_timeout(ollama: OllamaDouble, ready: ModelManager) -> None:
    before = _state(ready)
    ollama.faults.hang_s = 3.0
    start = time.monotonic()
    assert ready.switch_model("llama3.2:3b-instruct") is False
    assert time.monotonic() - start < 2.9
    assert isinstance(ready.last_error, OllamaUnavailableError)
    assert "did not answer in time" in ready.last_error.message
    ollama.faults.hang_s = 0.0
    assert _state(ready) == before


def test_pull_timeout_is_on_silence_not_total_length(ollama: OllamaDouble, quick: ModelManager) -> None:
    limit = quick.settings.pull_silence_timeout_s
    ollama.pull_chunks = 12
    ollama.pull_delay_s = limit / 5  # longer than the limit in all, never silent for as long
    assert quick.download_model(SMALL)[0]
    ollama.pull_delay_s = limit * 1.5  # silent past the limit between two lines
    success, msg = quick.download_model("llama3.2:3b-instruct")
    assert success is False and "did not answer in time" in msg


def test_model_lost_between_list_and_switch(ollama: OllamaDouble, ready: ModelManager) -> None:
    assert ready.get_model_info("llama3.2:3b-instruct")["installed"] is True  # type: ignore[index]
    tag = ready.get_model_info("llama3.2:3b-instruct")["ollama_tag"]  # type: ignore[index]
    before = _state(ready)
    ollama.uninstall(tag)
    ready._installed_at = time.monotonic()  # the listing still believes it is installed; switch re-reads
    assert ready.switch_model("llama3.2:3b-instruct") is False
    assert isinstance(ready.last_error, ModelNotInstalledError)
    assert ready.get_current_model() == SMALL
    assert _state(ready) == before
