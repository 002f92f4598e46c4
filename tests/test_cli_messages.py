"""What the CLI says when Ollama is down or was never read, figures that round to zero, and ``serve``
stopped by SIGTERM (a real process and a real signal)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from model_manager.cli import main
from model_manager.cli.render import gb, seconds, vram
from model_manager.testing import OllamaDouble
from processes import process_env

SMALL, SMALL_TAG = "llama3.2:1b-instruct", "llama3.2:1b-instruct-q8_0"
MEDIUM = "llama3.1:8b-instruct"


@dataclass
class Result:
    code: int
    out: str
    err: str

    def row(self, first: str) -> list[str]:
        for line in self.out.splitlines():
            cells = [c for c in line.split() if c != "*"]
            if cells and cells[0] == first:
                return cells
        raise AssertionError(f"no row for {first!r} in:\n{self.out}")


Cli = Callable[..., Result]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    def run(host: str, *args: str) -> Result:
        code = main(["--ollama-host", host, *args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


# --- Ollama down -----------------------------------------------------------------------------------


def test_pull_with_ollama_down_says_ollama_is_unreachable(cli: Cli, down_url: str) -> None:
    result = cli(down_url, "pull", SMALL)
    assert result.code == 1
    assert result.err.startswith(f"Ollama unreachable: cannot connect to Ollama at {down_url}")
    assert "Solution: Start Ollama (`ollama serve`)" in result.err
    assert f"`model-manager pull {SMALL}` resumes" in result.err
    assert "Download failed" not in result.err and "Retry" not in result.err
    as_json = cli(down_url, "--json", "pull", SMALL)
    assert as_json.code == 1 and json.loads(as_json.out)["error"] == "ollama_unavailable"


def test_pull_that_fails_in_ollama_still_says_download_failed(cli: Cli, ollama: OllamaDouble) -> None:
    ollama.faults.pull_error = "disk quota exceeded"
    result = cli(ollama.url, "pull", SMALL)
    assert result.code == 1 and "\nDownload failed: " in result.err and "disk quota exceeded" in result.err


def test_listings_on_a_fresh_install_with_ollama_down_say_unknown_not_no(cli: Cli, down_url: str) -> None:
    listed = cli(down_url, "list")
    assert listed.code == 0
    assert listed.row(MEDIUM)[5:7] == ["unknown", "0"]  # Installed, Uses
    assert "Installed (last seen)" not in listed.out
    assert "installed state is unknown (Ollama has not been read yet)" in listed.err
    every = cli(down_url, "stats", "--all")
    assert every.code == 0 and every.row(MEDIUM)[-1] == "unknown"
    assert cli(down_url, "stats", MEDIUM).row("Installed") == ["Installed", "unknown"]
    assert cli(down_url, "info", MEDIUM).row("Installed") == ["Installed", "unknown"]
    recommended = cli(down_url, "recommend", "8")
    assert recommended.row(MEDIUM)[-2] == "unknown"  # Installed, Uses end the row


def test_listings_after_a_sync_show_the_last_seen_state(
    cli: Cli, ollama: OllamaDouble, isolated_env: Path
) -> None:
    ollama.install(SMALL_TAG)
    assert cli(ollama.url, "sync").code == 0
    ollama.down = True
    listed = cli(ollama.url, "list")
    assert "Installed (last seen)" in listed.out
    assert listed.row(SMALL)[5] == "yes" and listed.row(MEDIUM)[5] == "no"
    assert "showing what was last seen" in listed.err
    assert cli(ollama.url, "stats", "--all").row(MEDIUM)[-1] == "no"


def test_rm_with_ollama_down_says_ollama_is_unreachable(cli: Cli, ollama: OllamaDouble) -> None:
    ollama.install(SMALL_TAG)
    assert cli(ollama.url, "sync").code == 0
    ollama.down = True
    for model in (MEDIUM, SMALL):  # last seen not installed, and last seen installed
        result = cli(ollama.url, "rm", "-y", model)
        assert result.code == 1, result.err
        assert result.err.startswith(f"Ollama unreachable: Ollama at {ollama.url} did not answer"), result.err
        assert "not installed" not in result.err and "Start Ollama" in result.err
    invalid = cli(ollama.url, "rm", "-y", "bad name!")
    assert invalid.code == 2 and invalid.err.startswith("Invalid model name")
    ollama.down = False
    assert ollama.installed() == [SMALL_TAG]


def test_rm_with_ollama_up_still_says_not_installed(cli: Cli, ollama: OllamaDouble) -> None:
    result = cli(ollama.url, "rm", "-y", MEDIUM)
    assert result.code == 1 and result.err.startswith(f"Model not installed: {MEDIUM}")


# --- figures that round to zero --------------------------------------------------------------------


def test_minus_zero_vram_prints_as_zero(cli: Cli, down_url: str) -> None:
    checked = cli(down_url, "check", SMALL, "-0")
    assert "only 0.0 GB available" in checked.out and "-0.0" not in checked.out + checked.err
    recommended = cli(down_url, "recommend", "-0.0")
    assert "fits in 0.0 GB" in recommended.err and "-0" not in recommended.err
    as_json = cli(down_url, "--json", "check", SMALL, "-0")
    assert json.loads(as_json.out)["available_vram_gb"] == 0.0 and "-0.0" not in as_json.out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (gb(-0.0), "0.0GB"),
        (gb(-0.04), "0.0GB"),
        (vram(-0.0), "0GB"),
        (seconds(-0.001), "0.00s"),
        (gb(-2.0), "-2.0GB"),
    ],
    ids=["gb(-0.0)", "gb(-0.04)", "vram(-0.0)", "seconds(-0.001)", "gb(-2.0)"],
)
def test_formats_never_print_a_negative_zero(text: str, expected: str) -> None:
    assert text == expected


# --- serve and SIGTERM -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [["-m", "model_manager", "serve", "--port", "0"], ["-m", "model_manager.api.server", "--port", "0"]],
    ids=["cli-serve", "server-module"],
)
def test_serve_exits_0_on_sigterm(
    command: list[str], ollama: OllamaDouble, isolated_env: Path, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, *command],
            env=process_env(isolated_env, ollama.url),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on http://" in line, log.read_text()
        url = line.strip().rsplit(" ", 1)[1]
        assert httpx.get(f"{url}/api/health", timeout=30).status_code == 200  # serving, not starting
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    text = log.read_text()
    assert "Application shutdown complete" in text and "Traceback" not in text
