"""Running the package as real processes in tests: a clean environment, and the REST server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def process_env(home: Path, ollama_url: str, **extra: str) -> dict[str, str]:
    """This environment without inherited Ollama or model-manager settings, pointed at ``home`` and
    ``ollama_url``, with the source tree importable; ``extra`` variables on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "MODEL_MANAGER_"))}
    env.update(
        MODEL_MANAGER_HOME=str(home),
        OLLAMA_HOST=ollama_url,
        PYTHONPATH=os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH", "")) if p),
    )
    env.update(extra)
    return env


@contextmanager
def server_process(
    env: dict[str, str], log: Path, *args: str, graceful: bool = False
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``python -m model_manager.api.server --port 0 [args]`` for the block; yields the process and its URL
    (read from the line it prints once listening). Stops it with SIGTERM when ``graceful``, else kills it."""
    command = [sys.executable, "-m", "model_manager.api.server", "--port", "0", *args]
    with log.open("w") as stderr:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on http://" in line, log.read_text()
        yield proc, f"http://127.0.0.1:{line.strip().rsplit(':', 1)[1]}"
    finally:
        if proc.poll() is None:
            if graceful:
                proc.terminate()
            else:
                proc.kill()
        proc.wait(15)
