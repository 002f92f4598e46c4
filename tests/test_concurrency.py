"""Several processes and threads on one store and one Ollama: nothing lost, nothing inconsistent, on
both backends (on PostgreSQL the processes have homes of their own, as managers on several machines)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from model_manager import ModelManager
from model_manager.testing import OllamaDouble
from processes import process_env

SWITCHER = textwrap.dedent(
    """
    import sys
    from model_manager import ModelManager
    manager = ModelManager(host=sys.argv[1], data_dir=sys.argv[2])
    for name in sys.argv[3:]:
        manager.switch_model(name)
    """
)


@pytest.fixture
def manager(ollama: OllamaDouble, isolated_env: Path, database_url: str | None) -> Iterator[ModelManager]:
    """The test's own manager, on each backend in turn."""
    with ModelManager(host=ollama.url, data_dir=isolated_env, database_url=database_url) as mm:
        yield mm


def _home(manager: ModelManager, backend_env: dict[str, str], tmp_path: Path, i: int) -> str:
    """A process's home: the test manager's own for SQLite (the store is the file in it), else its own."""
    return str(manager.settings.home if not backend_env else tmp_path / f"home-{i}")


def _env(ollama: OllamaDouble, backend_env: dict[str, str], home: str) -> dict[str, str]:
    return process_env(Path(home), ollama.url, **backend_env)


def _installed(ollama: OllamaDouble, manager: ModelManager, *names: str) -> list[str]:
    tags = []
    for name in names:
        entry = manager.catalog.get(name)
        assert entry is not None
        ollama.install(entry.ollama_tag)
        tags.append(entry.ollama_tag)
    return tags


def test_two_processes_switching_at_once_end_consistent(
    ollama: OllamaDouble, manager: ModelManager, backend_env: dict[str, str], tmp_path: Path
) -> None:
    a, b = "llama3.2:1b-instruct", "llama3.2:3b-instruct"
    tags = dict(zip((a, b), _installed(ollama, manager, a, b), strict=True))
    ollama.load_delay_s = 0.05
    homes = [_home(manager, backend_env, tmp_path, i) for i in range(2)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SWITCHER, ollama.url, home, *order], env=_env(ollama, backend_env, home)
        )
        for home, order in zip(homes, ([a, b] * 3, [b, a] * 3), strict=True)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    current = manager.get_current_model()
    assert current in (a, b)
    assert ollama.loaded() == [tags[current]]


def test_threads_switching_at_once_end_consistent(ollama: OllamaDouble, manager: ModelManager) -> None:
    names = ["llama3.2:1b-instruct", "llama3.2:3b-instruct", "llama3.1:8b-instruct"]
    tags = dict(zip(names, _installed(ollama, manager, *names), strict=True))
    ollama.load_delay_s = 0.02
    threads = [threading.Thread(target=manager.switch_model, args=(n,)) for n in names * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    current = manager.get_current_model()
    assert current in names
    assert ollama.loaded() == [tags[current]]  # type: ignore[index]


DELETER = textwrap.dedent(
    """
    import sys
    from model_manager import ModelManager
    manager = ModelManager(host=sys.argv[1], data_dir=sys.argv[2])
    print(manager.delete_model(sys.argv[3])[0])
    """
)


def test_a_delete_racing_a_switch_never_deletes_the_current_model(
    ollama: OllamaDouble, manager: ModelManager, backend_env: dict[str, str], tmp_path: Path
) -> None:
    a, b = "llama3.2:1b-instruct", "llama3.2:3b-instruct"
    homes = [_home(manager, backend_env, tmp_path, i) for i in range(2)]
    ollama.load_delay_s = 0.1
    for _ in range(4):
        _installed(ollama, manager, a, b)
        manager.sync()
        assert manager.switch_model(a)
        switch = subprocess.Popen(
            [sys.executable, "-c", SWITCHER, ollama.url, homes[0], b], env=_env(ollama, backend_env, homes[0])
        )
        delete = subprocess.Popen(
            [sys.executable, "-c", DELETER, ollama.url, homes[1], b],
            stdout=subprocess.PIPE,
            env=_env(ollama, backend_env, homes[1]),
        )
        assert switch.wait(timeout=60) == 0 and delete.wait(timeout=60) == 0
        current = manager.get_current_model()
        entry = manager.catalog.get(current or "")
        assert current is not None and entry is not None
        assert entry.ollama_tag in ollama.installed(), f"the current model {current} was deleted"
