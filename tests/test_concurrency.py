"""Several processes and threads on one store and one Ollama: nothing lost, nothing inconsistent."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from model_manager import ModelManager
from model_manager.store import Store
from model_manager.testing import OllamaDouble

WRITER = textwrap.dedent(
    """
    import sys
    from model_manager import ModelManager
    manager = ModelManager(host="http://127.0.0.1:9", data_dir=sys.argv[1])
    for i in range(int(sys.argv[2])):
        manager.record_usage("shared:latest", 0.25, success=i % 4 != 0)
    """
)
READER = textwrap.dedent(
    """
    import sys, time
    from model_manager import ModelManager
    manager = ModelManager(host="http://127.0.0.1:9", data_dir=sys.argv[1])
    reads, last = 0, 0
    deadline = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < deadline:
        stats = manager.get_all_statistics().get("shared:latest")
        count = stats["usage_count"] if stats else 0
        assert count >= last, (count, last)   # aggregates only ever grow
        last, reads = count, reads + 1
    print(reads)
    """
)


def test_four_writers_and_a_reader_lose_nothing(tmp_path: Path) -> None:
    per_writer = 10_000
    ModelManager(host="http://127.0.0.1:9", data_dir=tmp_path).close()
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(per_writer)]) for _ in range(4)
    ]
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(tmp_path), "5"], stdout=subprocess.PIPE, text=True
    )
    assert [w.wait(timeout=300) for w in writers] == [0, 0, 0, 0]
    out, _ = reader.communicate(timeout=60)
    assert reader.returncode == 0 and int(out) > 0
    store = Store(tmp_path / "model_manager.db")
    stats = store.get_stats("shared:latest")
    assert stats is not None
    assert stats.usage_count == store.count_events() == 4 * per_writer
    assert stats.success_count == 4 * (per_writer - per_writer // 4)
    assert store.integrity_check() == "ok"


SWITCHER = textwrap.dedent(
    """
    import sys
    from model_manager import ModelManager
    manager = ModelManager(host=sys.argv[1], data_dir=sys.argv[2])
    for name in sys.argv[3:]:
        manager.switch_model(name)
    """
)


def _installed(ollama: OllamaDouble, manager: ModelManager, *names: str) -> list[str]:
    tags = []
    for name in names:
        entry = manager.catalog.get(name)
        assert entry is not None
        ollama.install(entry.ollama_tag)
        tags.append(entry.ollama_tag)
    return tags


def test_two_processes_switching_at_once_end_consistent(ollama: OllamaDouble, manager: ModelManager) -> None:
    a, b = "llama3.2:1b-instruct", "llama3.2:3b-instruct"
    tags = dict(zip((a, b), _installed(ollama, manager, a, b), strict=True))
    ollama.load_delay_s = 0.05
    home = str(manager.settings.home)
    procs = [
        subprocess.Popen([sys.executable, "-c", SWITCHER, ollama.url, home, *order])
        for order in ([a, b] * 3, [b, a] * 3)
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
    ollama: OllamaDouble, manager: ModelManager
) -> None:
    a, b = "llama3.2:1b-instruct", "llama3.2:3b-instruct"
    home = str(manager.settings.home)
    ollama.load_delay_s = 0.1
    for _ in range(4):
        _installed(ollama, manager, a, b)
        manager.sync()
        assert manager.switch_model(a)
        switch = subprocess.Popen([sys.executable, "-c", SWITCHER, ollama.url, home, b])
        delete = subprocess.Popen(
            [sys.executable, "-c", DELETER, ollama.url, home, b], stdout=subprocess.PIPE
        )
        assert switch.wait(timeout=60) == 0 and delete.wait(timeout=60) == 0
        current = manager.get_current_model()
        entry = manager.catalog.get(current or "")
        assert current is not None and entry is not None
        assert entry.ollama_tag in ollama.installed(), f"the current model {current} was deleted"
