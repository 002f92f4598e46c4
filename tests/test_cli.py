"""The command-line interface in-process (``main(argv)``), against the Ollama double over real HTTP.

Every command is run for people and with ``--json``; exit codes, stdout and stderr are checked apart,
because scripts read stdout and people read both.
"""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from helpers import catalog_tag
from model_manager import ModelManager
from model_manager.cli import build_parser, main
from model_manager.cli.progress import PlainDisplay
from model_manager.cli.render import download_size, gb, size_bytes, vram
from model_manager.testing import OllamaDouble


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        """The one JSON document on stdout (json.loads fails on anything more)."""
        return json.loads(self.out)

    def row(self, first: str) -> list[str]:
        """The cells of the table row whose first non-marker cell is ``first``."""
        for line in self.out.splitlines():
            cells = [c for c in line.split() if c != "*"]
            if cells and cells[0] == first:
                return cells
        raise AssertionError(f"no row for {first!r} in:\n{self.out}")


Cli = Callable[..., Result]


@pytest.fixture
def cli(ollama: OllamaDouble, capsys: pytest.CaptureFixture[str]) -> Cli:
    def run(*args: str, host: str | None = None) -> Result:
        code = main(["--ollama-host", host or ollama.url, *args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


class TtyInput(io.StringIO):
    """Typed answers on a stdin that says it is a terminal (what `rm` checks before asking)."""

    def isatty(self) -> bool:
        return True


# --- parsing ----------------------------------------------------------------------------------------


def test_help_names_every_command_and_alias(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in (
        "list",
        "current",
        "recommend",
        "bench",
        "stats",
        "info",
        "check",
        "pull",
        "download",
        "rm",
        "delete",
        "use",
        "switch",
        "ps",
        "gpu",
        "sync",
        "export",
        "import",
        "serve",
    ):
        assert command in out


@pytest.mark.parametrize(
    "argv",
    [
        ["list", "--max-vram", "lots"],
        ["list", "--max-vram", "-1"],
        ["list", "--purpose", "fastest"],
        ["recommend", "8", "fastest"],
        ["recommend", "eight"],
        ["recommend", "8", "9"],
        ["check", "llama3.1:8b-instruct", "nan"],
        ["info"],
        ["frobnicate"],
        ["serve", "--port", "70000"],
    ],
)
def test_bad_usage_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_options_after_the_command(cli: Cli, ollama: OllamaDouble, tmp_path: Path) -> None:
    result = cli("list", "--json", "--ollama-host", ollama.url, "--data-dir", str(tmp_path / "elsewhere"))
    assert result.code == 0 and result.json()["installed_state_known"] is True
    assert (tmp_path / "elsewhere" / "model_manager.db").is_file()


# --- list ---------------------------------------------------------------------------------------------


def test_list_shows_the_quick_reference_catalog_in_its_units(
    cli: Cli, manager: ModelManager, ollama: OllamaDouble
) -> None:
    ollama.install(catalog_tag(manager, "llama3.1:8b-instruct"))
    result = cli("list")
    assert result.code == 0
    assert result.row("llama3.1:8b-instruct")[:6] == [
        "llama3.1:8b-instruct",
        "8B",
        "Balanced",
        "6GB",
        "4.7GB",
        "yes",
    ]
    assert result.row("mixtral:8x7b-instruct")[:6] == [
        "mixtral:8x7b-instruct",
        "8x7B",
        "Quality",
        "24GB",
        "26GB",
        "no",
    ]
    assert result.row("llama3.2:3b-instruct")[3:5] == ["2GB", "2.0GB"]
    assert "Min VRAM" in result.out and "Download Size" in result.out
    assert all(line == line.rstrip() for line in result.out.splitlines())  # no padding left for pipes
    assert result.err == ""


def test_list_json_is_one_document_with_installed_flags(
    cli: Cli, manager: ModelManager, ollama: OllamaDouble
) -> None:
    ollama.install(catalog_tag(manager, "llama3.2:1b-instruct"))
    doc = cli("list", "--json").json()
    by_name = {m["name"]: m for m in doc["models"]}
    assert doc["count"] == len(doc["models"]) == len(manager.list_available_models())
    assert by_name["llama3.2:1b-instruct"]["installed"] is True
    assert by_name["llama3.1:8b-instruct"]["installed"] is False
    assert by_name["llama3.1:8b-instruct"]["required_vram_gb"] == 6.0
    assert doc["installed_state_known"] is True and doc["current_model"] is None


def test_list_filters(cli: Cli, manager: ModelManager, ollama: OllamaDouble) -> None:
    ollama.install(catalog_tag(manager, "llama3.2:3b-instruct"))
    names = lambda *a: {m["name"] for m in cli("list", "--json", *a).json()["models"]}  # noqa: E731
    assert names("--installed") == {"llama3.2:3b-instruct"}
    speed = names("--purpose", "Speed")
    assert {"llama3.2:1b-instruct", "llama3.2:3b-instruct"} <= speed and "llama3.1:8b-instruct" not in speed
    small = names("--max-vram", "2")
    assert {"llama3.2:1b-instruct", "llama3.2:3b-instruct"} <= small
    assert small == {m["name"] for m in manager.list_available_models(max_vram_gb=2)}
    assert "llama3.1:8b-instruct" not in small


def test_list_with_nothing_matching(cli: Cli) -> None:
    result = cli("list", "--installed")
    assert (result.code, result.out) == (0, "No models match.\n")


def test_list_with_ollama_down_still_answers(cli: Cli, down_url: str) -> None:
    result = cli("list", host=down_url)
    assert result.code == 0
    assert result.row("llama3.1:8b-instruct")[:5] == [
        "llama3.1:8b-instruct",
        "8B",
        "Balanced",
        "6GB",
        "4.7GB",
    ]
    assert "installed state is unknown" in result.err and down_url in result.err
    # A fresh home has never read Ollama: installed state is "unknown", not "no".
    assert result.row("llama3.1:8b-instruct")[5] == "unknown"  # the Installed column
    doc = cli("list", "--json", host=down_url)
    assert doc.code == 0 and doc.json()["installed_state_known"] is False and doc.err == ""


# --- current, use, ps -------------------------------------------------------------------------------


def test_current_before_and_after_use(cli: Cli, manager: ModelManager, ollama: OllamaDouble) -> None:
    ollama.install(catalog_tag(manager, "llama3.2:1b-instruct"))
    assert cli("current").out == "No current model. Choose one with: model-manager use MODEL\n"
    assert cli("current", "--json").json() == {
        "current_model": None,
        "loaded": False,
        "expires_at": None,
        "size_vram_gb": None,
        "processor": None,
        "installed_state_known": True,
    }
    result = cli("use", "llama3.2:1b")
    assert (result.code, result.out) == (0, "Switched to llama3.2:1b-instruct\n")
    assert ollama.loaded() == [catalog_tag(manager, "llama3.2:1b-instruct")]
    assert cli("current").out.startswith("Current model: llama3.2:1b-instruct\nLoaded: 100% GPU, ")
    assert cli("current", "--json").json()["current_model"] == "llama3.2:1b-instruct"
    assert "* current model" in cli("list").out


def test_current_model_removed_behind_our_back(cli: Cli, manager: ModelManager, ollama: OllamaDouble) -> None:
    tag = catalog_tag(manager, "llama3.2:1b-instruct")
    ollama.install(tag)
    assert cli("use", "llama3.2:1b-instruct").code == 0
    ollama.uninstall(tag)
    result = cli("current")
    assert result.code == 1 and result.out == ""
    assert result.err.startswith("Model not installed: llama3.2:1b-instruct (the current model) is no longer")


def test_use_json_and_switch_alias(cli: Cli, manager: ModelManager, ollama: OllamaDouble) -> None:
    ollama.install(catalog_tag(manager, "llama3.2:1b-instruct"))
    ollama.install(catalog_tag(manager, "llama3.2:3b-instruct"))
    assert cli("use", "llama3.2:1b-instruct").code == 0
    doc = cli("switch", "llama3.2:3b-instruct", "--json").json()
    assert doc["success"] is True and doc["model"]["name"] == "llama3.2:3b-instruct"
    assert ollama.loaded() == [catalog_tag(manager, "llama3.2:3b-instruct")]


def test_use_a_model_that_is_not_installed(cli: Cli) -> None:
    result = cli("use", "llama3.1:8b-instruct")
    assert result.code == 1 and result.out == ""
    assert result.err.splitlines() == [
        "Model not installed: llama3.1:8b-instruct",
        "Solution: Download first (`model-manager pull MODEL` downloads it)",
    ]


def test_ps_shows_memory_and_gpu_share(cli: Cli, manager: ModelManager, ollama: OllamaDouble) -> None:
    assert cli("ps").out == "No models loaded.\n"
    tag = catalog_tag(manager, "llama3.2:1b-instruct")
    ollama.install(tag)
    ollama.load(tag)
    result = cli("ps")
    row = result.row("llama3.2:1b-instruct")
    assert row[1] == tag and "100% GPU" in result.out
    (loaded,) = cli("ps", "--json").json()["models"]
    assert loaded["ollama_tag"] == tag and loaded["size_vram_bytes"] == loaded["size_bytes"] > 0
    assert row[2] == size_bytes(loaded["size_bytes"])


def test_ps_when_the_model_spills_to_ram(cli: Cli, manager: ModelManager, ollama: OllamaDouble) -> None:
    tag = catalog_tag(manager, "llama3.2:1b-instruct")
    ollama.install(tag)
    ollama.vram_bytes = 1_000_000_000
    ollama.load(tag)
    (loaded,) = cli("ps", "--json").json()["models"]
    assert 0 < loaded["gpu_fraction"] < 1
    assert loaded["processor"] in cli("ps").out
    assert "CPU/GPU" in cli("ps").out


# --- recommend and check ----------------------------------------------------------------------------------


def test_recommend_8_balanced(cli: Cli, manager: ModelManager) -> None:
    expected = manager.recommend(8, "balanced")
    result = cli("recommend", "8", "balanced")
    assert result.code == 0 and expected.model is not None
    assert result.out.splitlines()[0] == f"Recommended: {expected.model}"
    assert f"Why: {expected.reason}" in result.out
    assert f"Next: model-manager pull {expected.model}" in result.out
    doc = cli("recommend", "8", "balanced", "--json").json()
    assert doc["model"] == expected.model and doc["reason"] == expected.reason
    assert (doc["priority"], doc["available_vram_gb"], doc["vram_source"]) == ("balanced", 8.0, "argument")
    assert [c["name"] for c in doc["candidates"]] == [c.info.name for c in expected.candidates]


def test_recommend_reports_the_vram_override_as_an_override(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODEL_MANAGER_VRAM_GB", "3")
    doc = cli("recommend", "speed", "--json").json()
    assert (doc["available_vram_gb"], doc["vram_source"], doc["priority"]) == (3.0, "override", "speed")
    assert all(c["required_vram_gb"] <= 3 for c in doc["candidates"]) and doc["model"]
    assert cli("recommend", "--json").json()["priority"] == "balanced"
    out = cli("recommend", "speed").out
    assert "(VRAM override from MODEL_MANAGER_VRAM_GB)" in out and "detected" not in out


def test_recommend_says_when_nothing_fits(cli: Cli) -> None:
    result = cli("recommend", "0.5", "quality")
    assert result.code == 1 and result.out == ""
    assert result.err.startswith("No recommendation: no quality model in the catalog fits in 0.5 GB")
    assert "Solution: Use smaller model" in result.err
    doc = cli("recommend", "0.5", "quality", "--json")
    assert doc.code == 1 and doc.json()["model"] is None


def test_check_fits_and_does_not_fit(cli: Cli) -> None:
    fits = cli("check", "llama3.1:8b-instruct", "8")
    assert fits.code == 0
    assert fits.out.startswith(
        "Compatible: llama3.1:8b-instruct needs 6.0 GB VRAM, 8.0 GB available; "
        "fits fully on the GPU at 4,096 context: needs "
    )
    assert fits.out.endswith(" GB plus 1.0 GB kept free, of 8.0 GB\n") and "GiB" not in fits.out
    too_big = cli("check", "llama3.1:70b-instruct", "8")
    assert too_big.code == 1 and too_big.out.startswith(
        "Insufficient VRAM: llama3.1:70b-instruct needs 40.0 GB"
    )
    assert too_big.err.startswith("Solution: Use smaller model")
    doc = cli("check", "llama3.1:70b-instruct", "8", "--json")
    assert doc.code == 1
    body = doc.json()
    assert {
        k: body[k] for k in ("model", "compatible", "required_vram_gb", "available_vram_gb", "vram_source")
    } == {
        "model": "llama3.1:70b-instruct",
        "compatible": False,
        "required_vram_gb": 40.0,
        "available_vram_gb": 8.0,
        "vram_source": "argument",
    }
    assert body["fit"] in ("partial", "none") and body["layers_total"] == 80
    assert body["estimate"]["total_gb"] > 30 and body["context_length"] == 4096


def test_check_takes_the_override_and_rejects_unknown_models(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODEL_MANAGER_VRAM_GB", "24")
    doc = cli("check", "mixtral:8x7b-instruct", "--json").json()
    assert (doc["compatible"], doc["available_vram_gb"], doc["vram_source"]) == (True, 24.0, "override")
    missing = cli("check", "no-such-model", "8")
    assert missing.code == 1 and missing.err.startswith(
        "Model not found: no-such-model\nSolution: Check catalog"
    )


# --- stats and info -----------------------------------------------------------------------------------


def test_stats_lists_models_with_usage(cli: Cli, manager: ModelManager) -> None:
    assert cli("stats").out == "No usage recorded yet.\n"
    manager.record_usage("llama3.1:8b-instruct", 2.0, success=True)
    manager.record_usage("llama3.1:8b-instruct", 3.0, success=False)
    manager.record_usage("llama3.2:1b-instruct", 0.5, success=True)
    result = cli("stats")
    assert result.row("llama3.1:8b-instruct")[:4] == ["llama3.1:8b-instruct", "2", "50.0%", "2.50s"]
    assert result.row("llama3.2:1b-instruct")[:4] == ["llama3.2:1b-instruct", "1", "100.0%", "0.50s"]
    assert result.out.index("llama3.1:8b-instruct") < result.out.index("llama3.2:1b-instruct")
    assert "more models without recorded usage (--all shows them)" in result.out
    assert "mixtral:8x7b-instruct" in cli("stats", "--all").out


def test_stats_json_has_the_quick_reference_fields(cli: Cli, manager: ModelManager) -> None:
    manager.record_usage("llama3.1:8b-instruct", 2.0, success=True)
    doc = cli("stats", "--json").json()
    assert doc["statistics"] == {k: v.to_dict() for k, v in manager.all_statistics().items()}
    one = cli("stats", "llama3.1:8b", "--json").json()["statistics"]
    quick_reference = {"name", "usage_count", "last_used", "avg_inference_time", "success_rate", "installed"}
    assert set(one) == quick_reference | {"measured_tokens_per_second", "speed_samples", "benchmark"}
    assert (one["name"], one["usage_count"], one["success_rate"]) == ("llama3.1:8b-instruct", 1, 1.0)


def test_stats_of_one_model(cli: Cli, manager: ModelManager) -> None:
    manager.record_usage("llama3.1:8b-instruct", 1.25, success=True)
    result = cli("stats", "llama3.1:8b-instruct")
    assert result.row("Uses") == ["Uses", "1"]
    assert result.row("Avg") == ["Avg", "inference", "1.25s"]
    unknown = cli("stats", "never-heard-of:it")
    assert unknown.code == 1 and unknown.err.startswith("Model not found: never-heard-of:it")


def test_info(cli: Cli, manager: ModelManager) -> None:
    result = cli("info", "llama3.1:8b")
    assert result.code == 0
    assert result.row("Model") == ["Model", "llama3.1:8b-instruct"]
    assert result.row("Ollama") == ["Ollama", "tag", catalog_tag(manager, "llama3.1:8b-instruct")]
    assert result.row("Min") == ["Min", "VRAM", "6GB"]
    assert result.row("Download") == ["Download", "size", "4.7GB"]
    doc = cli("info", "llama3.1:8b", "--json").json()
    assert doc["model"] | {"required_vram_gb": None} == manager.get_model_info("llama3.1:8b") | {
        "required_vram_gb": None
    }


def test_info_marks_estimated_vram(cli: Cli, manager: ModelManager) -> None:
    estimated = next(e for e in manager.catalog if e.min_vram_gb is None)
    doc = cli("info", estimated.name, "--json").json()["model"]
    assert doc["min_vram_source"] == "estimate" and doc["min_vram_gb"] == doc["required_vram_gb"] > 0
    row = cli("info", estimated.name).row("Min")
    assert row[2] == vram(doc["min_vram_gb"], estimated=True) and row[3] == "(estimated)"


def test_info_errors(cli: Cli) -> None:
    missing = cli("info", "no-such-model")
    assert (missing.code, missing.out) == (1, "")
    assert (
        missing.err
        == "Model not found: no-such-model\nSolution: Check catalog (`model-manager list` shows the catalog)\n"
    )
    invalid = cli("info", "bad!name", "--json")
    assert invalid.code == 2
    assert invalid.json() | {"message": ""} == {
        "success": False,
        "error": "invalid_request",
        "message": "",
        "solution": "Use [host/][namespace/]model[:tag] with letters, digits, '_', '-' and '.'",
    }
    assert invalid.err.startswith("Invalid model name: ")


# --- pull and rm ----------------------------------------------------------------------------------------


def test_pull_prints_plain_progress_when_piped(cli: Cli, manager: ModelManager, ollama: OllamaDouble) -> None:
    ollama.pull_chunks = 4
    result = cli("pull", "llama3.2:1b-instruct")
    tag = catalog_tag(manager, "llama3.2:1b-instruct")
    assert result.code == 0
    assert result.out == f"Downloaded llama3.2:1b-instruct ({tag})\n"
    lines = result.err.splitlines()
    assert lines[0] == "pulling manifest" and lines[-1] == "success"
    blob = [line for line in lines if line.startswith("pulling ") and "1.3GB" in line]
    assert [line.split("(")[1].split("%")[0] for line in blob] == ["0", "25", "50", "75", "100"]
    assert tag in ollama.installed()


def test_pull_json_prints_only_the_result(cli: Cli, manager: ModelManager, ollama: OllamaDouble) -> None:
    result = cli("download", "llama3.2:3b-instruct", "--json")
    assert result.code == 0 and result.err == ""
    doc = result.json()
    assert doc["success"] is True and doc["message"].startswith("Downloaded llama3.2:3b-instruct")
    assert catalog_tag(manager, "llama3.2:3b-instruct") in ollama.installed()


def test_pull_failures(cli: Cli, ollama: OllamaDouble, down_url: str) -> None:
    unknown = cli("pull", "nosuchmodel:1b")
    assert unknown.code == 1 and "Model not found: nosuchmodel:1b" in unknown.err
    ollama.faults.pull_error = "max retries exceeded: connection reset"
    failed = cli("pull", "llama3.2:1b-instruct", "--json")
    assert failed.code == 1 and failed.json()["error"] == "download_failed"
    assert "max retries exceeded" in failed.json()["message"]
    ollama.faults.pull_error = None
    down = cli("pull", "llama3.2:1b-instruct", host=down_url)
    assert down.code == 1 and down.err.startswith("Ollama unreachable") and "Traceback" not in down.err
    assert "Solution: Start Ollama" in down.err


def test_rm_refuses_to_ask_without_a_terminal(cli: Cli, manager: ModelManager, ollama: OllamaDouble) -> None:
    tag = catalog_tag(manager, "llama3.2:1b-instruct")
    ollama.install(tag)
    result = cli("rm", "llama3.2:1b-instruct")
    assert result.code == 2 and result.out == ""
    assert "stdin is not a terminal" in result.err and "Pass -y" in result.err
    assert cli("rm", "llama3.2:1b-instruct", "--json").json()["error"] == "confirmation_required"
    assert tag in ollama.installed()


def test_rm_with_yes_and_delete_alias(cli: Cli, manager: ModelManager, ollama: OllamaDouble) -> None:
    ollama.install(catalog_tag(manager, "llama3.2:1b-instruct"))
    ollama.install(catalog_tag(manager, "llama3.2:3b-instruct"))
    assert cli("rm", "-y", "llama3.2:1b-instruct").out == "Deleted llama3.2:1b-instruct\n"
    doc = cli("delete", "--yes", "llama3.2:3b-instruct", "--json").json()
    assert doc == {
        "success": True,
        "model": "llama3.2:3b-instruct",
        "message": "Deleted llama3.2:3b-instruct",
    }
    assert ollama.installed() == []


@pytest.mark.parametrize(("answer", "code", "kept"), [("y\n", 0, False), ("n\n", 1, True), ("", 1, True)])
def test_rm_asks_on_a_terminal(
    answer: str,
    code: int,
    kept: bool,
    cli: Cli,
    manager: ModelManager,
    ollama: OllamaDouble,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tag = catalog_tag(manager, "llama3.2:1b-instruct")
    ollama.install(tag)
    monkeypatch.setattr("sys.stdin", TtyInput(answer))
    result = cli("rm", "llama3.2:1b")
    assert result.code == code
    assert result.err.startswith(f"Delete llama3.2:1b-instruct ({tag}, 1.3GB) from Ollama? [y/N] ")
    assert (tag in ollama.installed()) is kept


def test_rm_refusals(cli: Cli, manager: ModelManager, ollama: OllamaDouble) -> None:
    assert cli("rm", "-y", "llama3.1:8b-instruct").err.startswith("Model not installed: llama3.1:8b-instruct")
    ollama.install(catalog_tag(manager, "llama3.2:1b-instruct"))
    assert cli("use", "llama3.2:1b-instruct").code == 0
    current = cli("rm", "-y", "llama3.2:1b-instruct")
    assert current.code == 1 and current.err.startswith("Cannot delete current: ")
    assert "Solution: Switch first" in current.err


def test_switch_with_ollama_down_says_ollama_is_unreachable(cli: Cli, down_url: str) -> None:
    result = cli("use", "llama3.1:8b-instruct", host=down_url)
    assert result.code == 1 and result.err.startswith("Ollama unreachable: cannot connect to Ollama at ")
    assert "Solution: Start Ollama" in result.err


# --- gpu, sync, export/import, serve --------------------------------------------------------------------


def test_gpu_reports_override_and_probes(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_MANAGER_VRAM_GB", "12")
    result = cli("gpu")
    assert result.code == 0
    assert result.out.splitlines()[0].startswith("Memory available for models: 12GB (")
    assert "set by MODEL_MANAGER_VRAM_GB" in result.out and "Probe" in result.out
    doc = cli("gpu", "--json").json()
    assert doc["available_gb"] == 12.0 and doc["override"] == {"gb": 12.0, "source": "MODEL_MANAGER_VRAM_GB"}
    assert {p["probe"] for p in doc["probes"]} >= {"cpu"}
    assert all(p["probe"] in result.out for p in doc["probes"])


def test_sync_reports_added_and_removed(cli: Cli, manager: ModelManager, ollama: OllamaDouble) -> None:
    first = cli("sync", "--json").json()
    assert first == {"added": [], "removed": [], "installed": []}
    tag = catalog_tag(manager, "llama3.2:1b-instruct")
    ollama.install(tag)
    result = cli("sync")
    assert result.code == 0
    assert result.out == f"Ollama at {ollama.url} has 1 models installed.\nAdded: {tag}\n"
    ollama.uninstall(tag)
    assert cli("sync", "--json").json()["removed"] == [tag]


def test_ollama_down_fails_commands_that_need_it(cli: Cli, down_url: str) -> None:
    for command in ("ps", "sync"):
        result = cli(command, host=down_url)
        assert result.code == 1 and result.out == ""
        assert result.err.startswith(
            f"Ollama unreachable: cannot connect to Ollama at {down_url}\nSolution: "
        )
        doc = cli(command, "--json", host=down_url)
        assert doc.json()["error"] == "ollama_unavailable"


def test_export_then_import_elsewhere(cli: Cli, manager: ModelManager, tmp_path: Path) -> None:
    manager.record_usage("llama3.1:8b-instruct", 2.0, success=True)
    target = tmp_path / "backup.json"
    result = cli("export", str(target))
    assert result.code == 0 and result.out.startswith("Exported ") and str(target) in result.out
    assert json.loads(target.read_text())["models"]
    other = tmp_path / "other-home"
    doc = cli("import", str(target), "--data-dir", str(other), "--json").json()
    assert doc["success"] is True and doc["message"].startswith("Imported statistics")
    stats = cli("stats", "llama3.1:8b-instruct", "--data-dir", str(other), "--json").json()["statistics"]
    assert stats["usage_count"] == 1
    exported = cli("export", str(tmp_path / "b2.json"), "--json").json()
    assert exported["success"] is True and exported["path"] == str(tmp_path / "b2.json")


def test_export_and_import_failures(cli: Cli, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    unwritable = cli("export", str(blocker / "x.json"))
    assert unwritable.code == 1 and unwritable.err.startswith(
        f"File error: cannot write {blocker / 'x.json'}"
    )
    assert "Solution: Check the path and its permissions" in unwritable.err
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}')
    invalid = cli("import", str(bad))
    assert invalid.code == 1 and invalid.out == "" and "Solution: " in invalid.err
    missing = cli("import", str(tmp_path / "missing.json"), "--json")
    assert missing.code == 1 and missing.json()["success"] is False


def test_serve_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--host ADDRESS" in out and "--port PORT" in out


def test_serve_offers_exactly_the_servers_options() -> None:
    from model_manager.api import server

    def options(parser: argparse.ArgumentParser) -> dict[str, tuple[object, object]]:
        return {
            s: (a.default, a.choices)
            for a in parser._actions
            for s in a.option_strings
            if s not in ("-h", "--help", "--json", "--data-dir", "-v", "--verbose", "--ollama-host")
        }

    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert options(subparsers.choices["serve"]) == options(server.build_parser())


def test_serve_refusals(cli: Cli) -> None:
    as_json = cli("serve", "--json")
    assert as_json.code == 2 and as_json.json()["solution"] == "Leave out --json"
    unsafe = cli("serve", "--host", "0.0.0.0", "--port", "0")
    assert unsafe.code == 1
    assert unsafe.err.startswith("Refusing to serve beyond this machine without a token")
    assert "Solution: Set MODEL_MANAGER_API_TOKEN" in unsafe.err


# --- formats and the plain progress display ---------------------------------------------------------


@pytest.mark.parametrize(
    ("mb", "text"),
    [(1300, "1.3GB"), (2000, "2.0GB"), (4700, "4.7GB"), (7400, "7.4GB"), (26000, "26GB"), (40000, "40GB")],
)
def test_download_size_as_the_quick_reference_writes_it(mb: int, text: str) -> None:
    assert download_size(mb) == text


@pytest.mark.parametrize(("value", "text"), [(1.0, "1GB"), (6.0, "6GB"), (24.0, "24GB"), (5.5, "5.5GB")])
def test_vram_as_the_quick_reference_writes_it(value: float, text: str) -> None:
    assert vram(value) == text
    assert vram(value, estimated=True) == "~" + text


def test_gb_and_bytes() -> None:
    assert (gb(None), gb(0.26), gb(12.4)) == ("-", "0.3GB", "12GB")
    assert (size_bytes(0), size_bytes(2_500), size_bytes(274_000_000), size_bytes(5_400_000_000)) == (
        "0B",
        "2kB",
        "274MB",
        "5.4GB",
    )


def test_plain_display_prints_each_tenth_once() -> None:
    stream = io.StringIO()
    display = PlainDisplay(stream)
    display.update("pulling manifest", 0, 0)
    for done in range(0, 1001, 7):
        display.update("pulling abc123def456", done, 1000)
    display.update("pulling abc123def456", 1000, 1000)
    display.update("success", 0, 0)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "pulling manifest" and lines[-1] == "success"
    percents = [line.split("(")[1].split("%")[0] for line in lines[1:-1]]
    assert percents == ["0", "10", "20", "30", "40", "50", "60", "70", "80", "90", "100"]
