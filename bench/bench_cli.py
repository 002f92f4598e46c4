"""CLI start-up benchmark: real ``python -m model_manager`` subprocesses, median of N runs.

    python bench/bench_cli.py [--runs 15] [--importtime]

Targets: ``--help``, ``stats`` and ``recommend`` (``8 balanced``, and ``16 quality --capability vision``)
≤ 150 ms median; ``list`` with Ollama answering ≤ 400 ms; ``recommend --all`` (three answers) is shown without
a target. Ollama is the protocol double (a real HTTP server on 127.0.0.1) with two
models installed; each case also runs with Ollama down, where the catalog commands must still answer.
The store is a real SQLite file in a temporary directory, created by a warm-up run so that the timed
runs see what a user's second run sees (bytecode compiled, database migrated).

``--importtime`` adds, per command, the modules that cost the most to import (``python -X importtime``,
cumulative microseconds), so a slow start can be traced to the module responsible.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from model_manager.testing import OllamaDouble

SRC = Path(__file__).resolve().parents[1] / "src"
CASES: list[tuple[str, list[str], float | None, bool]] = [
    # (label, argv, target ms or None, with Ollama answering)
    ("python -c pass (interpreter alone)", [], None, True),
    ("--help", ["--help"], 150, True),
    ("stats", ["stats"], 150, True),
    ("recommend 8 balanced", ["recommend", "8", "balanced"], 150, True),
    (
        "recommend 16 quality --capability vision",
        ["recommend", "16", "quality", "--capability", "vision"],
        150,
        True,
    ),
    (
        "recommend 16 --all --capability vision",
        ["recommend", "16", "--all", "--capability", "vision"],
        None,
        True,
    ),
    ("list", ["list"], 400, True),
    ("list --json", ["list", "--json"], 400, True),
    ("stats (Ollama down)", ["stats"], 150, False),
    ("recommend 8 balanced (Ollama down)", ["recommend", "8", "balanced"], 150, False),
    ("list (Ollama down)", ["list"], 400, False),
]


def _free_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def _command(argv: list[str]) -> list[str]:
    return [sys.executable, "-c", "pass"] if not argv else [sys.executable, "-m", "model_manager", *argv]


def _time_once(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = (time.perf_counter() - start) * 1000
    if result.returncode not in (0,):
        raise SystemExit(f"{' '.join(cmd)} exited {result.returncode}: {result.stderr}")
    return elapsed


def _importtime(argv: list[str], env: dict[str, str], top: int) -> list[tuple[int, str]]:
    """(self µs, package) of the costliest imports, costliest first.

    Self time is summed per top-level package (``ollama``, ``pydantic``, ``rich``…), and per module
    for ours (``model_manager.manager``…), so each line names something one can decide not to import.
    """
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "model_manager", *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    totals: dict[str, int] = {}
    for line in result.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if match:
            module = match.group(2)
            key = module if module.startswith("model_manager") else module.split(".")[0]
            totals[key] = totals.get(key, 0) + int(match.group(1))
    return sorted(((us, key) for key, us in totals.items()), reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15, help="timed runs per case (median reported)")
    parser.add_argument("--importtime", action="store_true", help="show the costliest imports per command")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as home, OllamaDouble() as ollama:
        ollama.install("llama3.1:8b-instruct-q4_K_M")
        ollama.install("llama3.2:1b-instruct-q8_0")
        # As an installed package runs: with bytecode written (pip compiles it at install time).
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("OLLAMA_", "MODEL_MANAGER_")) and k != "PYTHONDONTWRITEBYTECODE"
        }
        pythonpath = os.pathsep.join(p for p in (str(SRC), base.get("PYTHONPATH", "")) if p)
        up = base | {"MODEL_MANAGER_HOME": home, "OLLAMA_HOST": ollama.url, "PYTHONPATH": pythonpath}
        down = up | {"OLLAMA_HOST": _free_url()}
        _time_once(_command(["list"]), up)  # compile bytecode, create and migrate the store

        print(f"{'case':42} {'median':>9} {'max':>9} {'target':>8}  ({args.runs} runs, {sys.executable})")
        failures = 0
        for label, argv, target, answering in CASES:
            env = up if answering else down
            times = [_time_once(_command(argv), env) for _ in range(args.runs)]
            median = statistics.median(times)
            verdict = ""
            if target is not None:
                ok = median <= target
                failures += not ok
                verdict = f"≤{target:.0f} ms {'ok' if ok else 'MISSED'}"
            print(f"{label:42} {median:7.1f}ms {max(times):7.1f}ms  {verdict}")

        if args.importtime:
            for _, argv, _, answering in CASES[1:7]:
                rows = _importtime(argv, up if answering else down, 15)
                print(f"\nimports of `model-manager {' '.join(argv)}` (self time per package, ms):")
                for own, package in rows:
                    print(f"  {own / 1000:7.1f}  {package}")
        print(f"\n{failures} target(s) missed" if failures else "\nall targets met")


if __name__ == "__main__":
    main()
