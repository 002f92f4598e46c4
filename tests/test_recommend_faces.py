"""Task-aware recommendations at every face: the quick-reference call, the REST body's ``capability`` and
``/api/model/recommend/all``, and the CLI's ``--capability`` and ``--all``; the same answer everywhere, and
a bad capability refused as bad input (422, exit 2)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from helpers import refused, success
from model_manager import ModelManager
from model_manager.api import create_app
from model_manager.cli import main
from model_manager.testing import OllamaDouble

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def api(manager: ModelManager) -> Iterator[TestClient]:
    with TestClient(create_app(manager), base_url="http://127.0.0.1:8000") as c:
        yield c


@pytest.fixture
def cli(ollama: OllamaDouble, capsys: pytest.CaptureFixture[str]) -> Run:
    def run(*args: str) -> tuple[int, str, str]:
        code = main(["--ollama-host", ollama.url, *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_the_quick_reference_call_takes_a_capability(manager: ModelManager) -> None:
    plain = manager.recommend_model(16.0, "quality")
    seeing = manager.recommend_model(16.0, "quality", capability="vision")
    assert plain and seeing and "vision" in manager.model_info(seeing).capabilities
    assert manager.recommend_model(16.0, "quality", capability="Vision") == seeing


@pytest.mark.parametrize("gb", [8, 16, 24])
def test_rest_answers_as_the_core_does(api: TestClient, manager: ModelManager, gb: int) -> None:
    for priority in ("speed", "balanced", "quality"):
        body = {"available_vram_gb": gb, "priority": priority, "capability": "vision"}
        answer = success(api.post("/api/model/recommend", json=body))
        rec = manager.recommend(float(gb), priority, capability="vision")
        assert (answer["model"], answer["reason"], answer["capability"]) == (rec.model, rec.reason, "vision")
        assert [c["name"] for c in answer["candidates"]] == [c.info.name for c in rec.candidates]
    every = success(
        api.post("/api/model/recommend/all", json={"available_vram_gb": gb, "capability": "vision"})
    )
    assert every["capability"] == "vision" and every["available_vram_gb"] == gb
    assert [(r["priority"], r["model"]) for r in every["recommendations"]] == [
        (r.priority.value, r.model) for r in manager.recommend_all(float(gb), capability="vision")
    ]


def test_rest_refuses_a_capability_that_is_not_ollamas(api: TestClient) -> None:
    for body in ({"capability": "sight"}, {"capability": 3}, {"capability": ""}):
        refused(
            api.post("/api/model/recommend", json={"available_vram_gb": 8, **body}), 422, "invalid_request"
        )
        refused(
            api.post("/api/model/recommend/all", json={"available_vram_gb": 8, **body}),
            422,
            "invalid_request",
        )
    assert success(api.post("/api/model/recommend/all", json={}))["recommendations"]


def test_cli_capability_and_all(cli: Run, manager: ModelManager) -> None:
    code, out, _ = cli("recommend", "16", "quality", "--capability", "vision", "--json")
    rec = manager.recommend(16.0, "quality", capability="vision")
    doc = json.loads(out)
    assert code == 0 and (doc["model"], doc["capability"]) == (rec.model, "vision")
    code, out, _ = cli("recommend", "16", "quality", "--capability", "vision")
    lines = out.splitlines()
    assert code == 0 and lines[0] == f"Recommended: {rec.model}" and lines[1] == f"Why: {rec.reason}"
    rows = [
        line.split()[1] if line.startswith("*") else line.split()[0]
        for line in lines[4 : 4 + len(rec.candidates)]
    ]
    assert rows == [c.info.name for c in rec.candidates]
    assert "Score" in lines[2] and "tok/s" in lines[2] and "Fit" in lines[2]
    code, out, _ = cli("recommend", "16", "--all", "--capability", "vision", "--json")
    doc = json.loads(out)
    assert code == 0 and [r["priority"] for r in doc["recommendations"]] == ["speed", "balanced", "quality"]
    assert doc["recommendations"][2]["model"] == rec.model and doc["vram_source"] == "argument"
    code, out, _ = cli("recommend", "16", "--all")
    assert code == 0 and all(f"{p}: " in out for p in ("speed", "balanced", "quality"))


@pytest.mark.parametrize(
    "argv",
    [
        ["recommend", "16", "--capability", "sight"],
        ["recommend", "16", "quality", "--all"],
    ],
)
def test_cli_refuses_bad_recommend_options(cli: Run, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli(*argv)
    assert exc.value.code == 2


def test_cli_says_when_no_model_of_a_capability_fits(cli: Run) -> None:
    code, _, err = cli("recommend", "4", "quality", "--capability", "vision")
    assert code == 1 and err.startswith(
        "No recommendation: no vision quality model in the catalog fits in 4.0 GB"
    )
    assert "--capability vision" in err


def test_the_readmes_photo_answers_are_what_the_command_prints(
    cli: Run, manager: ModelManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README shows the photo user's answers as the command printed them: they stay true to the code."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Which model for photos?", 1)[1].split("```console\n", 1)[1].split("```", 1)[0]
    blocks = [b for b in section.split("$ model-manager ") if b.strip()]
    assert [b.split("\n", 1)[0] for b in blocks] == [
        f"recommend {gb} --all --capability vision" for gb in (8, 16, 24)
    ]
    manager.sync()  # Ollama answers, with nothing installed
    monkeypatch.setenv("COLUMNS", "120")
    for block in blocks:
        command, shown = block.split("\n", 1)
        code, out, _ = cli(*command.split())
        assert code == 0
        assert [line.rstrip() for line in out.strip().splitlines()] == shown.strip().splitlines(), command
