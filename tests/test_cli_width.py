"""Tables fit the terminal: at ``COLUMNS=80`` every command's table keeps the figures it exists to show,
whole (no "…", no line past 80), wrapping names and notes instead; narrower still, each row becomes a
block of "Header  value" lines. Run as users run them: ``python -m model_manager`` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from helpers import catalog_tag
from model_manager import ModelManager
from model_manager.cli.layout import Col, FittedTable, _broken, layout
from model_manager.cli.render import gb
from model_manager.testing import OllamaDouble

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture
def env(ollama: OllamaDouble, isolated_env: Path) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    pythonpath = os.pathsep.join(p for p in (str(SRC), environment.get("PYTHONPATH", "")) if p)
    return environment | {
        "MODEL_MANAGER_HOME": str(isolated_env),
        "OLLAMA_HOST": ollama.url,
        "PYTHONPATH": pythonpath,
    }


def run(env: dict[str, str], *args: str, columns: int = 80) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "model_manager", *args],
        env=env | {"COLUMNS": str(columns)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def assert_fits(out: str, columns: int = 80) -> None:
    """No table line is wider than ``columns`` and nothing is cut. (A sentence such as recommend's "Why:"
    is one line of text, which the terminal wraps by itself.)"""
    too_long = [line for line in out.splitlines() if len(line) > columns and not line.startswith("Why: ")]
    assert too_long == [], too_long
    assert "…" not in out, out


def column(out: str, header: str, next_header: str) -> list[str]:
    """The cells of one left-aligned column, wrapped lines joined: a line whose other cells are blank
    continues the row above."""
    lines = out.splitlines()
    top = next(i for i, line in enumerate(lines) if f" {header} " in f" {line} ")
    start, end = lines[top].index(header), lines[top].index(next_header)
    cells: list[str] = []
    for line in lines[top + 2 :]:
        if not line.strip() or line.startswith("*"):
            break
        cell, rest = line[start:end].strip(), (line[:start] + line[end:]).strip()
        if rest or not cells:
            cells.append(cell)
        else:
            cells[-1] += cell
    return cells


def test_list_at_80_columns_keeps_every_figure(
    env: dict[str, str], manager: ModelManager, ollama: OllamaDouble
) -> None:
    ollama.install(catalog_tag(manager, "llama3.1:13b-instruct"))
    doc = json.loads(run(env, "--json", "list"))
    out = run(env, "list")
    assert_fits(out)
    assert column(out, "Model", "Size") == [m["name"] for m in doc["models"]]
    rows = [line.split() for line in out.splitlines()[2:] if line.strip() and not line.startswith("*")]
    figures = " ".join(" ".join(r) for r in rows)
    for m in doc["models"]:
        assert m["size"] in figures and m["purpose"].capitalize() in figures
    head = out.splitlines()[0].split()
    assert head == ["Model", "Size", "Purpose", "VRAM", "Download", "Inst.", "Uses"]
    wide = run(env, "list", columns=160)
    assert "Min VRAM" in wide and "Download Size" in wide
    assert column(wide, "Model", "Size") == [m["name"] for m in doc["models"]]
    assert all(len(line) > 0 for line in wide.splitlines())


def test_gpu_at_80_columns_keeps_total_free_and_usable(env: dict[str, str]) -> None:
    report = json.loads(run(env, "--json", "gpu"))
    out = run(env, "gpu")
    assert_fits(out)
    header = next(line for line in out.splitlines() if line.startswith("#"))
    for name in ("Total", "Free", "Usable", "Source", "Note"):
        assert name in header, header
    for d in report["devices"]:
        mark = "" if d["accuracy"] == "exact" else "~"
        row = next(line for line in out.splitlines() if d["name"].split()[0] in line).split()
        for key in ("total_bytes", "free_bytes", "usable_bytes"):
            assert mark + gb(d[key] / 2**30) in row, (key, row)
    for p in report["probes"]:
        assert p["probe"] in out


def test_recommend_stats_and_ps_at_80_columns(
    env: dict[str, str], manager: ModelManager, ollama: OllamaDouble
) -> None:
    tag = catalog_tag(manager, "llama3.2:1b-instruct")
    ollama.install(tag)
    run(env, "use", "llama3.2:1b-instruct")
    run(env, "--json", "sync")
    for _ in range(3):
        manager.record_usage("llama3.2:1b-instruct", 1.5)
    for args, header in (
        (("recommend", "24", "balanced"), "Candidate"),
        (("stats",), "Model"),
        (("ps",), "Model"),
    ):
        out = run(env, *args)
        assert_fits(out)
        assert header in out, out
    ps = run(env, "ps")
    assert "100% GPU" in ps and "llama3.2:1b-instruct" in ps and "4096" in ps


def test_below_any_table_width_each_row_becomes_a_block(env: dict[str, str]) -> None:
    out = run(env, "list", "--purpose", "speed", columns=40)
    assert_fits(out, 40)
    assert "Model          llama3.2:1b-instruct" in out and "Download Size  1.3GB" in out


# --- the layout rule -------------------------------------------------------------------------------


def test_layout_prefers_full_headers_then_short_ones_then_wrapping_then_leaving_out() -> None:
    columns = [
        Col("Name", wrap=True, min_width=6),
        Col("Figure one", "F1", right=True),
        Col("Extra", optional=True),
    ]
    rows = [["a-long-name-here", "12.5GB", "x"]]
    assert layout(columns, rows, 80) == ([0, 1, 2], ["Name", "Figure one", "Extra"], [16, 10, 5])
    assert layout(columns, rows, 36) == ([0, 1, 2], ["Name", "F1", "Extra"], [16, 6, 5])
    assert layout(columns, rows, 30) == ([0, 1, 2], ["Name", "F1", "Extra"], [13, 6, 5])
    assert layout(columns, rows, 20) == ([0, 1], ["Name", "F1", "Extra"], [11, 6, 5])  # Extra left out
    assert layout(columns, rows, 8) is None  # the figure alone needs more than this


def test_names_wrap_after_separators() -> None:
    assert _broken("llama3.1:13b-instruct", 14) == "llama3.1:13b-\ninstruct"
    assert _broken("nomic-embed-text:latest", 10) == "nomic-\nembed-\ntext:\nlatest"
    assert _broken("short", 10) == "short"
    assert _broken("unbreakablename", 5) == "unbreakablename"  # rich folds what has no break


def test_a_fitted_table_renders_within_the_console_width() -> None:
    table = FittedTable(
        [Col("Model", wrap=True), Col("Size", right=True)], [["mixtral:8x7b-instruct", "26GB"]]
    )
    console = Console(width=24, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(table)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 24 and "26GB" in text and "…" not in text
