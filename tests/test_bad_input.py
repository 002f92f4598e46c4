"""Bad input to the library: a clear error, and nothing changed, nothing sent to Ollama."""

from __future__ import annotations

from typing import Any

import pytest

from model_manager import InvalidModelNameError, InvalidRequestError, ModelManager
from model_manager.testing import OllamaDouble

BAD_NAMES: list[Any] = [
    "",
    " ",
    "x" * 600,
    "../../etc/passwd",
    "..\\..\\windows",
    "model\x00",
    "mo\x1bdel",
    "mo\ndel",  # surrounding white space is trimmed, as Ollama does; inside a name it is refused
    "model;rm -rf ~",
    "$(touch /tmp/pwned)",
    "`id`",
    "a|b",
    "mödel:latest",
    "模型",
    "name:tag:extra",
    None,
    42,
    ["llama3"],
]
BAD_VRAM: list[Any] = [-1, -0.001, float("nan"), float("inf"), float("-inf"), "eight", "", True, 1e12, [8]]


def _snapshot(manager: ModelManager) -> dict[str, Any]:
    doc = manager.export_data()
    doc.pop("exported_at")
    return doc


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_bad_names_are_rejected_before_ollama(manager: ModelManager, ollama: OllamaDouble, name: Any) -> None:
    before = _snapshot(manager)
    ollama.clear_requests()
    for call in (manager.switch, manager.download, manager.delete, manager.model_info):
        with pytest.raises(InvalidModelNameError) as info:
            call(name)
        assert info.value.message.startswith("Invalid model name")
    with pytest.raises(InvalidModelNameError):
        manager.record_usage(name, 1.0)
    assert manager.switch_model(name) is False
    assert manager.download_model(name)[1].startswith("Invalid model name")
    assert [r.path for r in ollama.requests if r.path not in ("/api/tags", "/api/show")] == []
    assert _snapshot(manager) == before


def test_mixed_case_names_are_normalised(manager: ModelManager) -> None:
    info = manager.get_model_info("LLAMA3.1:8B-Instruct")
    assert info is not None and info["name"] == "llama3.1:8b-instruct"
    manager.record_usage("Llama3.1:8B-INSTRUCT", 1.0)
    assert manager.get_model_statistics("llama3.1:8b-instruct")["usage_count"] == 1  # type: ignore[index]


@pytest.mark.parametrize("vram", BAD_VRAM, ids=repr)
def test_bad_vram_figures(manager: ModelManager, vram: Any) -> None:
    before = _snapshot(manager)
    with pytest.raises(InvalidRequestError):
        manager.compatibility("llama3.1:8b-instruct", vram)
    with pytest.raises(InvalidRequestError):
        manager.recommend(vram, "balanced")
    with pytest.raises(InvalidRequestError):
        manager.list_available_models(max_vram_gb=vram)
    ok, msg = manager.check_model_compatibility("llama3.1:8b-instruct", vram)
    assert ok is False and msg.startswith("Invalid request: ")
    assert manager.recommend_model(vram, "balanced") is None
    assert _snapshot(manager) == before


@pytest.mark.parametrize("seconds", [-1.0, float("nan"), float("inf"), "2.5", None, True])
def test_bad_inference_times_record_nothing(manager: ModelManager, seconds: Any) -> None:
    with pytest.raises(InvalidRequestError):
        manager.record_usage("llama3.2:1b-instruct", seconds)
    assert manager.store.count_events() == 0


@pytest.mark.parametrize("success", [1, "yes", None])
def test_success_must_be_a_bool(manager: ModelManager, success: Any) -> None:
    with pytest.raises(InvalidRequestError):
        manager.record_usage("llama3.2:1b-instruct", 1.0, success=success)
    assert manager.store.count_events() == 0


@pytest.mark.parametrize("priority", ["fastest", "", None, 3, "specialized"])
def test_bad_priorities(manager: ModelManager, priority: Any) -> None:
    with pytest.raises(InvalidRequestError, match="unknown priority"):
        manager.recommend(8.0, priority)


@pytest.mark.parametrize("purpose", ["fast", "", 3])
def test_bad_purposes(manager: ModelManager, purpose: Any) -> None:
    with pytest.raises(InvalidRequestError, match="purpose"):
        manager.list_available_models(purpose=purpose)


def test_import_of_a_missing_file(manager: ModelManager, tmp_path: Any) -> None:
    ok, msg = manager.import_metadata(tmp_path / "missing.json")
    assert ok is False and "cannot read" in msg
