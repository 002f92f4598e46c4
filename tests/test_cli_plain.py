"""Piped tables written without rich (``FittedTable.plain``) are the lines rich draws, to the character:
on random tables and on the CLI's own; and a piped ``recommend`` never imports rich."""

from __future__ import annotations

import io
import string
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from model_manager import ModelManager
from model_manager.cli.layout import Col, FittedTable
from model_manager.cli.render import candidates_table, models_table, recommendations_table, stats_table
from model_manager.testing import OllamaDouble
from processes import process_env


def drawn(table: FittedTable, width: int) -> list[str]:
    """What rich prints for ``table`` at ``width``, trailing spaces left out (as the CLI writes a pipe)."""
    out = io.StringIO()
    Console(file=out, width=width, highlight=False, soft_wrap=False, emoji=False).print(table)
    return [line.rstrip() for line in out.getvalue().splitlines()]


TEXT = st.text(alphabet=string.ascii_letters + string.digits + " :-/_.~*%()", max_size=24)


@st.composite
def tables(draw: st.DrawFn) -> FittedTable:
    count = draw(st.integers(1, 7))
    columns = [
        Col(
            draw(TEXT),
            short=draw(TEXT),
            right=draw(st.booleans()),
            wrap=draw(st.booleans()),
            min_width=draw(st.integers(1, 14)),
            optional=draw(st.booleans()),
            drop=draw(st.integers(0, 2)),
        )
        for _ in range(count)
    ]
    rows = draw(st.lists(st.lists(TEXT, min_size=count, max_size=count), max_size=6))
    return FittedTable(columns, rows)


@settings(max_examples=300, deadline=None)
@given(tables(), st.integers(10, 200))
def test_plain_lines_are_what_rich_draws(table: FittedTable, width: int) -> None:
    lines = table.plain(width)
    if lines is not None:
        assert lines == drawn(table, width)


def _check(table: FittedTable, widths: Sequence[int] = (80, 120, 200)) -> None:
    for width in widths:
        lines = table.plain(width)
        if lines is not None:
            assert lines == drawn(table, width), width
    assert table.plain(200) is not None  # the CLI's tables take the fast path when piped


def test_the_clis_tables_are_written_as_rich_draws_them(manager: ModelManager) -> None:
    models = [manager.metadata(i, 16.0) for i in manager.models()]
    _check(models_table(models, current=models[0]["name"]))
    rec = manager.recommend(16.0, "quality", capability="vision")
    _check(candidates_table([c.to_dict() for c in rec.candidates], rec.model))
    answers = [
        {"priority": r.priority.value, **r.to_dict()} for r in manager.recommend_all(8.0, capability="vision")
    ]
    _check(recommendations_table(answers))
    manager.record_usage("llama3.2:1b-instruct", 1.5)
    _check(stats_table([s.to_dict() for s in manager.all_statistics().values()]))


def test_a_piped_recommend_does_not_import_rich(ollama: OllamaDouble, tmp_path: Path) -> None:
    code = (
        "import sys, io; from model_manager.cli import main; sys.stdout = io.StringIO(); "
        "code = main(['recommend', '8', 'balanced']); sys.stdout = sys.__stdout__; "
        "print(code, 'rich' in sys.modules)"
    )
    with ModelManager(host=ollama.url, data_dir=tmp_path) as synced:
        synced.sync()  # as a user's earlier command left it: recommend then reads the store alone
    env = process_env(tmp_path, ollama.url)
    env.pop("COLUMNS", None)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["0", "False"], done.stderr


@pytest.mark.parametrize(("columns", "width"), [(None, 200), ("120", 120), ("wide", 80)])
def test_the_pipe_width_is_richs(monkeypatch: pytest.MonkeyPatch, columns: str | None, width: int) -> None:
    from model_manager.cli.render import make_console, pipe_width

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert pipe_width() == width == make_console(io.StringIO()).width
