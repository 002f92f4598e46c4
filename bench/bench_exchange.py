"""Export and import time against the number of metadata overrides in the store.

    python bench/bench_exchange.py [--sizes 10000,20000,40000,80000] [--runs 5]

For each size N the store first holds N models with an override and statistics (imported once from a
document file); then, timed separately, ``export_document`` writes the store to a file and
``import_document`` applies an N-model document file again (with its backup of the state before).
Each figure is the median of ``--runs`` runs, in CPU seconds of this process (``time.process_time``),
which other work on a shared machine disturbs far less than wall-clock time; wall-clock medians are
printed beside them. Target: linear, so the ratio between one size and the one before is ~2.0 per
doubling. Ollama is not needed: the manager answers from the store and the catalog.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from model_manager.manager import ManagerCore


def document(n: int) -> dict[str, Any]:
    """An export document of ``n`` models the catalog lacks, each with metadata and statistics."""
    return {
        "format": "model-manager-metadata",
        "version": 1,
        "models": {
            f"bench-model-{i}:7b": {
                "metadata": {"description": f"model {i}", "purpose": "balanced", "min_vram_gb": 6},
                "statistics": {
                    "usage_count": i % 9,
                    "success_count": i % 9,
                    "total_inference_time": 1.5 * (i % 9),
                    "last_used": None,
                },
            }
            for i in range(n)
        },
    }


def timed(call: Callable[[], object]) -> tuple[float, float]:
    """(CPU seconds, wall-clock seconds) of one call."""
    cpu, wall = time.process_time(), time.perf_counter()
    call()
    return time.process_time() - cpu, time.perf_counter() - wall


def measure(n: int, runs: int) -> dict[str, tuple[float, float]]:
    """{"export"/"import": (median CPU s, median wall s)} with ``n`` overrides in the store."""
    samples: dict[str, list[tuple[float, float]]] = {"export": [], "import": []}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        source = home / "document.json"
        source.write_text(json.dumps(document(n)))
        # Port 9 (discard) refuses connections: the manager runs as it does with Ollama down.
        with ManagerCore(host="http://127.0.0.1:9", data_dir=home) as manager:
            manager.import_document(source)
            for _ in range(runs):
                samples["export"].append(timed(lambda: manager.export_document(home / "export.json")))
                samples["import"].append(timed(lambda: manager.import_document(source)))
    return {
        what: (statistics.median(c for c, _ in pairs), statistics.median(w for _, w in pairs))
        for what, pairs in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,20000,40000,80000", help="override counts, comma-separated")
    parser.add_argument("--runs", type=int, default=5, help="runs per size (the median is printed)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    print(
        f"{'overrides':>10} | {'export CPU s':>12} {'ratio':>6} {'wall s':>7} | {'import CPU s':>12} {'ratio':>6} {'wall s':>7}"
    )
    previous: dict[str, tuple[float, float]] | None = None
    for n in sizes:
        figures = measure(n, args.runs)
        cells = []
        for what in ("export", "import"):
            cpu, wall = figures[what]
            ratio = f"{cpu / previous[what][0]:.2f}" if previous is not None else ""
            cells.append(f"{cpu:>12.2f} {ratio:>6} {wall:>7.2f}")
        print(f"{n:>10,} | {cells[0]} | {cells[1]}", flush=True)
        previous = figures
    print(f"(median of {args.runs} runs; ratio = this size's CPU time / the previous size's)")


if __name__ == "__main__":
    main()
