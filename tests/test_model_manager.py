"""The quick reference's Python API, snippet by snippet, against the Ollama double over real HTTP."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from helpers import catalog_tag
from model_manager import (
    CannotDeleteCurrentError,
    DownloadFailedError,
    InsufficientVramError,
    ModelManager,
    ModelNotFoundError,
    ModelNotInstalledError,
    ModelPurpose,
    OllamaUnavailableError,
)
from model_manager.testing import OllamaDouble

QUICK_REFERENCE_MODELS = {
    "llama3.2:1b-instruct",
    "llama3.2:3b-instruct",
    "llama3.1:8b-instruct",
    "llama3.1:13b-instruct",
    "mixtral:8x7b-instruct",
    "llama3.1:70b-instruct",
}
METADATA_FIELDS = {
    "name": str,
    "size": str,
    "purpose": str,
    "description": str,
    "recommended_use": str,
    "min_vram_gb": (float, type(None)),
    "quantization_support": list,
    "download_size_mb": int,
    "installed": bool,
    "last_used": (str, type(None)),
    "usage_count": int,
    "avg_inference_time": float,
    "success_rate": float,
}
STATISTICS_FIELDS = {
    "name": str,
    "usage_count": int,
    "last_used": (str, type(None)),
    "avg_inference_time": float,
    "success_rate": float,
    "installed": bool,
}


class TestModelManager:
    """Every call of the quick reference's "Python API" section, as written there."""

    def test_initialization_never_contacts_ollama(self, ollama: OllamaDouble, tmp_path: Path) -> None:
        manager = ModelManager(host=ollama.url, data_dir=tmp_path / "d")
        assert manager.store.schema_version() >= 1
        manager.close()
        assert ollama.requests == []

    def test_list_models(self, manager: ModelManager) -> None:
        models = manager.list_available_models()
        assert {m["name"] for m in models} >= QUICK_REFERENCE_MODELS
        for meta in models:
            for key, kind in METADATA_FIELDS.items():
                assert isinstance(meta[key], kind), (meta["name"], key, meta[key])

    def test_list_installed_only(self, manager: ModelManager, ollama: OllamaDouble) -> None:
        assert manager.list_available_models(installed_only=True) == []
        ollama.install(catalog_tag(manager, "llama3.2:1b-instruct"))
        manager.sync()
        installed = manager.list_available_models(installed_only=True)
        assert [m["name"] for m in installed] == ["llama3.2:1b-instruct"]
        assert installed[0]["installed"] is True

    def test_list_by_purpose(self, manager: ModelManager) -> None:
        speed_models = manager.list_available_models(purpose=ModelPurpose.SPEED)
        assert {"llama3.2:1b-instruct", "llama3.2:3b-instruct"} <= {m["name"] for m in speed_models}
        assert all(m["purpose"] == "speed" for m in speed_models)
        assert manager.list_available_models(purpose="Speed") == speed_models

    def test_list_by_vram(self, manager: ModelManager) -> None:
        vram_models = manager.list_available_models(max_vram_gb=8.0)
        names = {m["name"] for m in vram_models}
        assert {"llama3.2:1b-instruct", "llama3.1:8b-instruct", "llama3.1:13b-instruct"} <= names
        assert not {"mixtral:8x7b-instruct", "llama3.1:70b-instruct"} & names

    def test_get_model_info(self, manager: ModelManager) -> None:
        info = manager.get_model_info("llama3.1:8b-instruct")
        assert info is not None
        assert (info["size"], info["purpose"], info["min_vram_gb"], info["download_size_mb"]) == (
            "8B",
            "balanced",
            6.0,
            4700,
        )
        assert manager.get_model_info("no-such-model") is None
        assert (
            manager.last_error is not None and manager.last_error.message == "Model not found: no-such-model"
        )

    def test_get_current_model(self, manager: ModelManager) -> None:
        assert manager.get_current_model() is None

    def test_check_compatibility(self, manager: ModelManager) -> None:
        compatible, msg = manager.check_model_compatibility("llama3.1:8b-instruct", 8.0)
        assert compatible is True and "6.0 GB" in msg
        compatible, msg = manager.check_model_compatibility("llama3.1:70b-instruct", 8.0)
        assert compatible is False and msg.startswith("Insufficient VRAM: ")
        compatible, msg = manager.check_model_compatibility("model-name", 8.0)
        assert (compatible, msg) == (False, "Model not found: model-name")

    def test_download_model(self, manager: ModelManager, ollama: OllamaDouble) -> None:
        seen: list[tuple[str, int, int]] = []
        success, msg = manager.download_model("llama3.2:3b-instruct", progress=lambda *a: seen.append(a))
        assert success is True, msg
        assert msg.startswith("Downloaded llama3.2:3b-instruct")
        assert seen[0][0] == "pulling manifest" and seen[-1][0] == "success"
        assert any(total > 0 and completed == total for _, completed, total in seen)
        assert catalog_tag(manager, "llama3.2:3b-instruct") in ollama.installed()
        assert manager.get_model_info("llama3.2:3b-instruct")["installed"] is True  # type: ignore[index]

    def test_switch_model(self, manager: ModelManager, ollama: OllamaDouble) -> None:
        assert manager.download_model("llama3.2:1b-instruct")[0]
        assert manager.download_model("llama3.1:8b-instruct")[0]
        success = manager.switch_model("llama3.2:1b-instruct")
        assert success is True
        assert manager.get_current_model() == "llama3.2:1b-instruct"
        assert ollama.loaded() == [catalog_tag(manager, "llama3.2:1b-instruct")]

        success = manager.switch_model("llama3.1:8b-instruct")
        assert success is True
        assert manager.get_current_model() == "llama3.1:8b-instruct"
        # The new model was loaded before the previous one was unloaded.
        assert ollama.loaded() == [catalog_tag(manager, "llama3.1:8b-instruct")]

    def test_delete_model(self, manager: ModelManager, ollama: OllamaDouble) -> None:
        success, msg = manager.delete_model("model-name")
        assert (success, msg) == (False, "Model not found: model-name")
        assert manager.download_model("llama3.2:1b-instruct")[0]
        success, msg = manager.delete_model("llama3.2:1b-instruct")
        assert success is True and msg == "Deleted llama3.2:1b-instruct"
        assert ollama.installed() == []
        assert manager.get_model_info("llama3.2:1b-instruct")["installed"] is False  # type: ignore[index]

    def test_get_recommendation(self, manager: ModelManager) -> None:
        recommended = manager.recommend_model(8.0, "balanced")
        fitting = {m["name"]: m for m in manager.list_available_models(purpose="balanced", max_vram_gb=8.0)}
        assert recommended in fitting and fitting[recommended]["fit"]["fits_at_default"]
        # Balanced weighs the quality standing by speed: no candidate that fits fully does better.
        rec = manager.recommend(8.0, "balanced")
        assert rec.model == recommended and rec.best is not None and rec.best.balance is not None
        assert all((c.balance or 0) <= rec.best.balance for c in rec.candidates if c.fits_at_default)
        assert manager.recommend_model(0.5, "quality") is None

    def test_record_usage_and_statistics(self, manager: ModelManager) -> None:
        manager.record_usage("model-name", 2.5, success=True)
        manager.record_usage("model-name", 1.5, success=False)
        stats = manager.get_model_statistics("model-name")
        # Kept under Ollama's display form of the name, the one key every spelling of it shares.
        assert stats == {
            "name": "model-name:latest",
            "usage_count": 2,
            "last_used": stats["last_used"],  # type: ignore[index]
            "avg_inference_time": 2.0,
            "success_rate": 0.5,
            "installed": False,
            "measured_tokens_per_second": None,
            "speed_samples": 0,
            "benchmark": None,
        }
        assert stats is not None and stats["last_used"].endswith("+00:00")
        all_stats = manager.get_all_statistics()
        assert all_stats["model-name:latest"] == stats
        for stat in all_stats.values():
            assert {k: type(stat[k]) for k in STATISTICS_FIELDS} and all(
                isinstance(stat[k], kind) for k, kind in STATISTICS_FIELDS.items()
            )

    def test_every_spelling_of_a_name_is_one_model(self, manager: ModelManager) -> None:
        for name in ("MyModel:latest", "mymodel", "registry.ollama.ai/library/mymodel:latest"):
            manager.record_usage(name, 1.0)
        stats = manager.get_model_statistics("MYMODEL")
        assert stats is not None and stats["usage_count"] == 3
        assert [n for n in manager.get_all_statistics() if n.lower() == "mymodel:latest"] == [
            "MyModel:latest"
        ]

    def test_usage_recorded_under_catalog_name(self, manager: ModelManager) -> None:
        manager.record_usage(catalog_tag(manager, "llama3.1:8b-instruct").upper(), 1.0)
        assert manager.get_model_statistics("llama3.1:8b-instruct")["usage_count"] == 1  # type: ignore[index]

    def test_export_import(self, manager: ModelManager, tmp_path: Path) -> None:
        manager.record_usage("llama3.1:8b-instruct", 3.0)
        backup = tmp_path / "backup.json"
        success, msg = manager.export_metadata(str(backup))
        assert success, msg
        doc = json.loads(backup.read_text())
        assert doc["format"] == "model-manager-metadata" and doc["version"] == 1
        assert doc["models"]["llama3.1:8b-instruct"]["statistics"]["usage_count"] == 1

        with ModelManager(host=manager.settings.ollama_host, data_dir=tmp_path / "other") as fresh:
            success, msg = fresh.import_metadata(str(backup))
            assert success, msg
            assert fresh.get_model_statistics("llama3.1:8b-instruct")["usage_count"] == 1  # type: ignore[index]

    def test_sync_with_ollama(self, manager: ModelManager, ollama: OllamaDouble) -> None:
        ollama.install(catalog_tag(manager, "llama3.2:1b-instruct"))
        result = manager._sync_with_ollama()
        assert result["added"] == [catalog_tag(manager, "llama3.2:1b-instruct")]
        ollama.uninstall(catalog_tag(manager, "llama3.2:1b-instruct"))
        assert manager.sync().removed == [catalog_tag(manager, "llama3.2:1b-instruct")]


class TestCommonPatterns:
    """The quick reference's Patterns 2–4, as written there."""

    def test_pattern_2_track_all_usage(self, manager: ModelManager) -> None:
        def process_with_tracking(model_name, func, *args):  # type: ignore[no-untyped-def]
            start = time.time()
            try:
                result = func(*args)
                elapsed = time.time() - start
                manager.record_usage(model_name, elapsed, success=True)
                return result
            except Exception:
                elapsed = time.time() - start
                manager.record_usage(model_name, elapsed, success=False)
                raise

        assert process_with_tracking("llama3.2:1b-instruct", lambda x: x * 2, 21) == 42
        with pytest.raises(ZeroDivisionError):
            process_with_tracking("llama3.2:1b-instruct", lambda x: x / 0, 1)
        stats = manager.get_model_statistics("llama3.2:1b-instruct")
        assert stats is not None and stats["usage_count"] == 2 and stats["success_rate"] == 0.5

    def test_pattern_3_fallback(self, manager: ModelManager) -> None:
        def get_best_available_model(vram_gb):  # type: ignore[no-untyped-def]
            model = manager.recommend_model(vram_gb, "quality")
            if model:
                return model
            model = manager.recommend_model(vram_gb, "balanced")
            if model:
                return model
            return manager.recommend_model(vram_gb, "speed")

        # At 48 GB Ollama's default context is 262,144 (capped at each model's own): the pick fits fully
        # there, ahead of llama3.1:70b-instruct, which fits fully only below it.
        rec = manager.recommend(48.0, "quality")
        assert (
            get_best_available_model(48.0) == rec.model and rec.best is not None and rec.best.fits_at_default
        )
        seventy = next(c for c in rec.candidates if c.info.name == "llama3.1:70b-instruct")
        assert not seventy.fits_at_default and rec.candidates.index(seventy) > 0
        assert manager.get_model_info(get_best_available_model(1.5))["purpose"] == "speed"  # type: ignore[index]
        assert get_best_available_model(0.1) is None

    def test_pattern_4_performance_report(
        self, manager: ModelManager, capsys: pytest.CaptureFixture[str]
    ) -> None:
        manager.record_usage("llama3.2:1b-instruct", 1.0, success=True)
        manager.record_usage("llama3.1:8b-instruct", 3.0, success=False)

        def get_performance_report():  # type: ignore[no-untyped-def]
            stats = manager.get_all_statistics()
            sorted_models = sorted(stats.items(), key=lambda x: x[1].get("success_rate", 0), reverse=True)
            for model, stat in sorted_models:
                if stat["usage_count"] > 0:
                    print(f"{model}:")
                    print(f"  Success: {stat['success_rate'] * 100:.1f}%")
                    print(f"  Avg Time: {stat['avg_inference_time']:.2f}s")

        get_performance_report()
        out = capsys.readouterr().out
        assert out == (
            "llama3.2:1b-instruct:\n  Success: 100.0%\n  Avg Time: 1.00s\n"
            "llama3.1:8b-instruct:\n  Success: 0.0%\n  Avg Time: 3.00s\n"
        )


class TestErrorCodes:
    """Each row of the quick reference's "Error Codes" table, produced for real."""

    def test_model_not_found(self, manager: ModelManager) -> None:
        assert manager.switch_model("no-such-model") is False
        assert isinstance(manager.last_error, ModelNotFoundError)
        assert manager.last_error.solution == "Check catalog"

    def test_model_not_found_in_registry(self, manager: ModelManager) -> None:
        success, msg = manager.download_model("no-such-model:7b")
        assert success is False and msg.startswith("Model not found: no-such-model:7b")

    def test_model_not_installed(self, manager: ModelManager) -> None:
        assert manager.switch_model("llama3.1:8b-instruct") is False
        assert isinstance(manager.last_error, ModelNotInstalledError)
        assert manager.last_error.message == "Model not installed: llama3.1:8b-instruct"
        assert manager.last_error.solution == "Download first"

    def test_insufficient_vram(self, manager: ModelManager) -> None:
        ok, msg = manager.check_model_compatibility("mixtral:8x7b-instruct", 8.0)
        assert ok is False and msg.startswith("Insufficient VRAM: mixtral:8x7b-instruct needs 24.0 GB")

    def test_insufficient_memory_when_ollama_cannot_load(
        self, manager: ModelManager, ollama: OllamaDouble
    ) -> None:
        assert manager.download_model("llama3.1:8b-instruct")[0]
        ollama.vram_bytes = 1 << 30
        ollama.ram_bytes = 1 << 30
        assert manager.switch_model("llama3.1:8b-instruct") is False
        assert isinstance(manager.last_error, InsufficientVramError)
        assert "llama-server reported out-of-memory during startup" in manager.last_error.message
        assert manager.get_current_model() is None

    def test_download_failed(self, manager: ModelManager, ollama: OllamaDouble) -> None:
        ollama.faults.pull_error = "max retries exceeded: connection reset"
        success, msg = manager.download_model("llama3.2:1b-instruct")
        assert success is False
        tag = catalog_tag(manager, "llama3.2:1b-instruct")
        assert msg == f"Download failed: {tag}: max retries exceeded: connection reset"
        assert isinstance(manager.last_error, DownloadFailedError)
        assert manager.last_error.solution == "Retry or check Ollama"

    def test_cannot_delete_current(self, manager: ModelManager, ollama: OllamaDouble) -> None:
        assert manager.download_model("llama3.2:1b-instruct")[0]
        assert manager.switch_model("llama3.2:1b-instruct")
        success, msg = manager.delete_model("llama3.2:1b-instruct")
        assert success is False and msg.startswith("Cannot delete current: ")
        assert isinstance(manager.last_error, CannotDeleteCurrentError)
        assert manager.last_error.solution == "Switch first"
        assert catalog_tag(manager, "llama3.2:1b-instruct") in ollama.installed()

    def test_ollama_unreachable(self, down_url: str, tmp_path: Path) -> None:
        with ModelManager(host=down_url, data_dir=tmp_path / "d") as manager:
            assert len(manager.list_available_models()) >= 6
            assert manager.switch_model("llama3.1:8b-instruct") is False
            assert isinstance(manager.last_error, OllamaUnavailableError)
            success, msg = manager.download_model("llama3.2:1b-instruct")
            assert success is False and msg.startswith("Download failed: ")
