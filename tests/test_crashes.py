"""kill -9 in the middle of writes, many times over: the store stays sound (on both backends), imports
are all or nothing, and an export file is the old one or the new one, never half."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from model_manager.store import Store
from processes import process_env

KILLS = int(os.environ.get("MODEL_MANAGER_CRASH_KILLS", "12"))

RECORDER = textwrap.dedent(
    """
    import sys
    from model_manager import ModelManager
    manager = ModelManager(host="http://127.0.0.1:9", data_dir=sys.argv[1])
    print("ready", flush=True)
    while True:
        manager.record_usage("crash:latest", 0.5, success=True)
    """
)
IMPORTER = textwrap.dedent(
    """
    import sys
    from model_manager import ModelManager
    manager = ModelManager(host="http://127.0.0.1:9", data_dir=sys.argv[1])
    print("ready", flush=True)
    while True:
        for doc in sys.argv[2:]:
            ok, msg = manager.import_metadata(doc)
            assert ok, msg
    """
)
EXPORTER = textwrap.dedent(
    """
    import sys
    from model_manager import ModelManager
    manager = ModelManager(host="http://127.0.0.1:9", data_dir=sys.argv[1])
    i = 0
    while True:
        manager.record_usage(f"m{i % 50}:latest", 1.0)
        ok, msg = manager.export_metadata(sys.argv[2])
        assert ok, msg
        if i == 0:
            print("ready", flush=True)
        i += 1
    """
)


def _run_and_kill(script: str, *args: str, rng: random.Random, env: dict[str, str] | None = None) -> None:
    proc = subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    time.sleep(rng.uniform(0.05, 0.4))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def test_kill_during_record_usage(
    isolated_env: Path, store_location: str, backend_env: dict[str, str]
) -> None:
    rng = random.Random(7)
    env = process_env(isolated_env, "http://127.0.0.1:9", **backend_env)
    for _ in range(KILLS):
        _run_and_kill(RECORDER, str(isolated_env), rng=rng, env=env)
    store = Store(store_location)
    assert store.integrity_check() == "ok"
    stats = store.get_stats("crash:latest")
    assert stats is not None and stats.usage_count == store.count_events() > 0
    store.close()


def _doc(usage: int) -> dict[str, object]:
    models = {
        f"model-{i}:latest": {"statistics": {"usage_count": usage, "success_count": usage}}
        for i in range(200)
    }
    return {"format": "model-manager-metadata", "version": 1, "models": models}


def test_kill_during_import_applies_all_or_nothing(
    tmp_path: Path, isolated_env: Path, store_location: str, backend_env: dict[str, str]
) -> None:
    rng = random.Random(11)
    docs = []
    for usage in (111, 222):
        path = tmp_path / f"doc{usage}.json"
        path.write_text(json.dumps(_doc(usage)))
        docs.append(str(path))
    env = process_env(isolated_env, "http://127.0.0.1:9", **backend_env)
    for _ in range(KILLS):
        _run_and_kill(IMPORTER, str(isolated_env), *docs, rng=rng, env=env)
        store = Store(store_location)
        assert store.integrity_check() == "ok"
        counts = {s.usage_count for s in store.all_stats().values()}
        assert counts in ({111}, {222}, set()), counts  # never a mix of two imports
        store.close()


def test_kill_during_export_leaves_old_or_new_file(tmp_path: Path) -> None:
    rng = random.Random(13)
    target = tmp_path / "export.json"
    seen = set()
    for _ in range(KILLS):
        _run_and_kill(EXPORTER, str(tmp_path / "home"), str(target), rng=rng)
        if target.exists():
            doc = json.loads(target.read_text())  # never half a file
            assert doc["format"] == "model-manager-metadata"
            seen.add(doc["exported_at"])
    assert seen
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".export.json.")]
    assert len(leftovers) <= KILLS  # temp files of killed writers, never the target itself
    store = Store(tmp_path / "home" / "model_manager.db")
    assert store.integrity_check() == "ok"
