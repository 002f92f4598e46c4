"""Time the memory estimator (target: at most 1 ms a call), or print its checks as docs/memory.md shows them.

    PYTHONPATH=src python bench/bench_memory.py               # timings
    PYTHONPATH=src python bench/bench_memory.py --calls 20000
    PYTHONPATH=src python bench/bench_memory.py --engine-table  # needs llama-cpp-python and gguf
    PYTHONPATH=src python bench/bench_memory.py --measurements  # the published measurements

``--engine-table`` loads SmolLM2 and the hand-built shapes of tests/engine_models.py with llama.cpp and
prints the Markdown table of docs/memory.md (estimated vs reported KV / weights / compute, error %).
``--measurements`` prints the table of published measurements (tests/memory_measurements.py) with the
estimate's error on each, its median and its worst.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from model_manager.catalog import load_catalog
from model_manager.memory import estimate_memory, layers_on_gpu, max_context_for

GIB = 1 << 30
MIB = 1 << 20

# llama3.1:8b's facts come from the catalog, the one place that holds them.
_LLAMA = load_catalog().get("llama3.1:8b-instruct")
assert _LLAMA is not None
LLAMA31_8B: dict[str, Any] = dict(_LLAMA.model_info)
LLAMA31_8B_FILE = _LLAMA.file_size_bytes
GEMMA3_27B: dict[str, Any] = {
    "general.architecture": "gemma3",
    "general.parameter_count": 27009002240,
    "gemma3.block_count": 62,
    "gemma3.context_length": 131072,
    "gemma3.embedding_length": 5376,
    "gemma3.feed_forward_length": 21504,
    "gemma3.attention.head_count": 32,
    "gemma3.attention.head_count_kv": 16,
    "gemma3.attention.key_length": 128,
    "gemma3.attention.value_length": 128,
    "gemma3.attention.sliding_window": 1024,
    "gemma3.vocab_size": 262208,
    "tokenizer.ggml.model": "llama",
}


def _time(label: str, fn: Callable[[], object], calls: int) -> float:
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    mean, median = statistics.fmean(samples) * 1e3, statistics.median(samples) * 1e3
    print(f"{label:<48} mean {mean:7.4f} ms   median {median:7.4f} ms   ({calls} calls)")
    return mean


def timings(calls: int) -> int:
    mean = _time(
        "estimate_memory llama3.1:8b 8k",
        lambda: estimate_memory(LLAMA31_8B, weights_bytes=LLAMA31_8B_FILE, context_length=8192),
        calls,
    )
    mean = max(
        mean,
        _time(
            "estimate_memory gemma3:27b 32k fa q8_0 x4",
            lambda: estimate_memory(
                GEMMA3_27B,
                weights_bytes=17_400_000_000,
                context_length=32768,
                num_parallel=4,
                flash_attention=True,
                kv_cache_type="q8_0",
            ),
            calls,
        ),
    )
    few = max(1, calls // 50)
    _time(
        "max_context_for llama3.1:8b in 12 GB",
        lambda: max_context_for(LLAMA31_8B, weights_bytes=LLAMA31_8B_FILE, memory_bytes=12 * GIB),
        few,
    )
    _time(
        "layers_on_gpu llama3.1:8b in 4 GB", lambda: layers_on_gpu(LLAMA31_8B, LLAMA31_8B_FILE, 4 * GIB), few
    )
    print(f"target ≤ 1 ms per estimate_memory call: {'met' if mean <= 1.0 else 'NOT met'}")
    return 0 if mean <= 1.0 else 1


def _tests_on_path() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def engine_table() -> int:
    _tests_on_path()
    from engine_models import SHAPES, Engine, build_gguf, model_info_of, smollm2_path

    # (context per request, flash attention: True/False/None for auto, KV type, parallel, batch or None)
    cases: list[tuple[int, bool | None, str, int, int | None]] = [
        (512, False, "f16", 1, None),
        (4096, False, "f16", 1, None),
        (16384, False, "f16", 1, None),
        (8192, True, "f16", 1, None),
        (16384, None, "q8_0", 1, None),
        (16384, True, "q4_0", 1, None),
        (2048, False, "f16", 4, None),
        (4096, None, "q4_0", 4, None),
        (16384, None, "f16", 4, None),
        (8192, False, "f16", 1, 256),
    ]
    models = [("SmolLM2-135M Q4_1 (llama, GQA 3:1)", smollm2_path(), False)]
    models += [(f"{s.name} ({s.arch})", build_gguf(s), not isinstance(s.n_head, int)) for s in SHAPES]
    print(
        "| model / shape | ctx | FA | KV | par | batch | KV MiB est / llama.cpp | weights MiB est / llama.cpp "
        "| compute MiB est / llama.cpp | err KV / W / compute / total |"
    )
    print("|---|---:|:-:|:-:|---:|---:|---|---|---|---|")
    for label, path, verbose in models:
        info = model_info_of(path, verbose=verbose)
        with Engine(path) as engine:
            for ctx, fa, kv, par, batch in cases:
                e = estimate_memory(
                    info,
                    weights_bytes=path.stat().st_size,
                    context_length=ctx,
                    kv_cache_type=kv,
                    num_parallel=par,
                    flash_attention=fa,
                    num_batch=batch,
                )
                m = engine.measure(
                    n_ctx=ctx * par, flash_attention=fa, kv_cache_type=kv, n_seq_max=par, batch=e.num_batch
                )

                def err(ours: int, theirs: int) -> str:
                    return f"{100 * (ours - theirs) / theirs:+.1f}"

                graph = e.graph_bytes + e.output_bytes
                mode = {True: "on", False: "off", None: "auto"}[fa]
                print(
                    f"| {label} | {ctx} | {mode} | {kv} | {par} | {e.num_batch} "
                    f"| {e.kv_cache_bytes / MIB:.1f} / {m.kv_bytes / MIB:.1f} "
                    f"| {e.weights_bytes / MIB:.1f} / {m.model_bytes / MIB:.1f} "
                    f"| {graph / MIB:.1f} / {m.graph_bytes / MIB:.1f} "
                    f"| {err(e.kv_cache_bytes, m.kv_bytes)} / {err(e.weights_bytes, m.model_bytes)} / "
                    f"{err(graph, m.graph_bytes)} / {err(e.cpu_only_bytes, m.total_bytes)} |"
                )
    return 0


def measurements_table() -> int:
    _tests_on_path()
    from memory_measurements import MEASUREMENTS
    from test_memory_measurements import error, estimated_mib

    print("| model and load | counts | measured MiB | estimate MiB | error | source |")
    print("|---|---|---:|---:|---:|---|")
    errors = []
    for row in MEASUREMENTS:
        errors.append(abs(error(row)))
        print(
            f"| {row.model}; {row.runner} | {row.what} | {row.measured_mib:,.2f} | {estimated_mib(row):,.2f} "
            f"| {100 * error(row):+.2f} % | {row.source} |"
        )
    print()
    print(
        f"{len(errors)} measurements: median |error| {100 * statistics.median(errors):.2f} %, "
        f"worst {100 * max(errors):.2f} % (bounds: 3 % and 8 %)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=5000, help="calls per timing (default 5000)")
    parser.add_argument("--engine-table", action="store_true", help="print the llama.cpp comparison table")
    parser.add_argument("--measurements", action="store_true", help="print the published measurements table")
    args = parser.parse_args(argv)
    if args.measurements:
        return measurements_table()
    return engine_table() if args.engine_table else timings(args.calls)


if __name__ == "__main__":
    sys.exit(main())
