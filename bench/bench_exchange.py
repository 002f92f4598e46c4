"""Export and import time against the number of metadata overrides in the store.

    python bench/bench_exchange.py [--sizes 10000,20000,40000,80000] [--runs 5]

For each size N the store first holds N models with an override and statistics (imported once from a
document file); then, timed separately, ``export_document`` writes the store to a file and
``import_document`` applies an N-model document file again (with its backup of the state before).
Each figure is the median of ``--runs`` runs. Target: linear, so the ratio between one size and the
one before is ~2.0 per doubling. Ollama is not
needed: the manager answers from the store and the catalog.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
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


def measure(n: int, runs: int) -> tuple[float, float]:
    """(median export seconds, median import seconds) with ``n`` overrides in the store."""
    exports, imports = [], []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        source = home / "document.json"
        source.write_text(json.dumps(document(n)))
        # Port 9 (discard) refuses connections: the manager runs as it does with Ollama down.
        with ManagerCore(host="http://127.0.0.1:9", data_dir=home) as manager:
            manager.import_document(source)
            for _ in range(runs):
                start = time.perf_counter()
                manager.export_document(home / "export.json")
                exports.append(time.perf_counter() - start)
                start = time.perf_counter()
                manager.import_document(source)
                imports.append(time.perf_counter() - start)
    return statistics.median(exports), statistics.median(imports)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,20000,40000,80000", help="override counts, comma-separated")
    parser.add_argument("--runs", type=int, default=5, help="runs per size (the median is printed)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    print(f"{'overrides':>10} {'export s':>9} {'ratio':>6} {'import s':>9} {'ratio':>6}")
    previous: tuple[float, float] | None = None
    for n in sizes:
        export_s, import_s = measure(n, args.runs)
        ratios = (
            ("", "")
            if previous is None
            else tuple(f"{a / b:.2f}" for a, b in zip((export_s, import_s), previous, strict=True))
        )
        print(f"{n:>10,} {export_s:>9.2f} {ratios[0]:>6} {import_s:>9.2f} {ratios[1]:>6}", flush=True)
        previous = (export_s, import_s)
    print(f"(median of {args.runs} runs; ratio = this size's time / the previous size's)")


if __name__ == "__main__":
    main()
