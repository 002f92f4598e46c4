"""A three-host fleet on this machine, step by step, printing each command and its output (docs/fleet.md).

    PYTHONPATH=src python scripts/fleet_demo.py

The three hosts are Ollama doubles (``python -m model_manager.testing``) on 127.0.0.1:11434-11436 with
8, 24 and 12 GB of GPU memory; the shared store is a throwaway PostgreSQL server (tests/pg_server.py,
PostgreSQL's binaries must be installed). gpu1 and gpu2 each run ``model-manager serve`` (their GPU
detection stands in through MODEL_MANAGER_VRAM_GB); gpu3 runs no manager, so it is added with --vram.
The commands are run as on gpu1; every machine is added as a host, gpu1 too, so that the others reach it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

REPO = Path(__file__).resolve().parents[1]
GIB = 2**30
HOSTS = {  # name: (port, GB of GPU memory, installed models)
    "gpu1": (11434, 8, ["llama3.2:1b-instruct-q8_0"]),
    "gpu2": (11435, 24, []),
    "gpu3": (11436, 12, ["llama3.1:8b-instruct-q4_K_M"]),
}
PROGRESS = ("pulling ", "verifying ", "writing ", "success")


def _env(home: Path, name: str, db_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "MODEL_MANAGER_"))}
    port, vram, _ = HOSTS[name]
    env.update(
        PYTHONPATH=str(REPO / "src"),
        MODEL_MANAGER_HOME=str(home / name),
        MODEL_MANAGER_DATABASE_URL=db_url,
        MODEL_MANAGER_HOST_NAME=name,
        MODEL_MANAGER_VRAM_GB=str(vram),
        OLLAMA_HOST=f"http://127.0.0.1:{port}",
        COLUMNS="110",
    )
    return env


def run(env: dict[str, str], *args: str) -> None:
    print(f"$ model-manager {' '.join(args)}")
    done = subprocess.run(
        [sys.executable, "-m", "model_manager", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # notes where they come
        text=True,
        check=False,
    )
    lines = done.stdout.splitlines()
    shown = [line for line in lines if not line.startswith(PROGRESS)]
    for line in shown:
        print(line.rstrip())
    if len(shown) < len(lines):
        print("(the pull's progress lines are left out)")
    if done.returncode:
        print(f"(exit code {done.returncode})")
    print()


def call(url: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return dict(json.loads(answer.read()))


def serve(stack: ExitStack, env: dict[str, str]) -> str:
    proc = subprocess.Popen(
        [sys.executable, "-m", "model_manager", "serve", "--port", "0", "--no-access-log"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    stack.callback(proc.wait, 15)
    stack.callback(proc.terminate)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "listening on" in line, line
    return line.split()[-1]


def main() -> None:
    sys.path.insert(0, str(REPO / "tests"))
    sys.path.insert(0, str(REPO / "src"))
    from model_manager.config import redact_database_url
    from pg_server import PostgresServer

    with ExitStack() as stack, TemporaryDirectory() as tmp:
        pg = stack.enter_context(PostgresServer())
        doubles = {}
        for name, (port, vram, installed) in HOSTS.items():
            install = ["--install", *installed] if installed else []
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "model_manager.testing",
                    "--port",
                    str(port),
                    "--vram-bytes",
                    str(vram * GIB),
                    *install,
                ],
                env={**os.environ, "PYTHONPATH": str(REPO / "src")},
                stdout=subprocess.PIPE,
                text=True,
            )
            stack.callback(proc.wait, 10)
            stack.callback(proc.kill)
            assert proc.stdout is not None and "listening on" in proc.stdout.readline()
            doubles[name] = proc
        home = Path(tmp)
        gpu1, gpu2 = _env(home, "gpu1", pg.url), _env(home, "gpu2", pg.url)
        print(f"# MODEL_MANAGER_DATABASE_URL={redact_database_url(pg.url)} on every host")
        print(
            "# gpu1 and gpu2 serve (model-manager serve, MODEL_MANAGER_HOST_NAME=gpu1 / gpu2); as on gpu1:\n"
        )
        url1, url2 = serve(stack, gpu1), serve(stack, gpu2)
        run(gpu1, "hosts", "add", "gpu1", "http://127.0.0.1:11434")
        run(gpu1, "hosts", "add", "gpu2", "http://127.0.0.1:11435")
        run(gpu1, "hosts", "add", "gpu3", "http://127.0.0.1:11436", "--vram", "12")
        run(gpu1, "hosts", "list")
        run(gpu1, "list", "--host", "all", "--installed")
        run(gpu1, "pull", "llama3.1:13b-instruct", "--host", "auto")
        run(gpu1, "use", "llama3.1:8b-instruct", "--host", "auto")
        run(gpu1, "ps", "--host", "all")
        run(gpu1, "recommend", "--host", "all")
        for url, host, n in ((url1, None, 3), (url2, None, 2), (url2, "gpu3", 4)):
            for _ in range(n):
                body: dict[str, Any] = {"model": "llama3.1:8b-instruct", "inference_time": 1.5}
                call(url, "/api/model/usage", body | ({"host": host} if host else {}))
        print("# 3 uses recorded through gpu1's server, 2 through gpu2's, and 4 through gpu2's for gpu3\n")
        run(gpu1, "stats", "--host", "all")
        run(gpu1, "stats", "--host", "gpu3")
        listed = call(url2, "/api/model/list?host=all&installed_only=true")
        print(f"$ curl '{url2}/api/model/list?host=all&installed_only=true'   (gpu2's server; shortened)")
        for m in listed["models"]:
            print(json.dumps({k: m[k] for k in ("name", "installed_on", "loaded_on")}))
        print()
        doubles["gpu3"].kill()
        doubles["gpu3"].wait(10)
        time.sleep(0.2)
        print("# gpu3's Ollama is killed\n")
        run(gpu1, "list", "--host", "all", "--installed")
        run(gpu1, "sync", "--host", "all")
        run(gpu1, "pull", "llama3.2:3b-instruct", "--host", "auto")


if __name__ == "__main__":
    main()
