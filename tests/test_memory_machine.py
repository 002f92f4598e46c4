"""The memory a verdict is reached in, read from GPU detection: the driver's reserve counted once (on the free
memory side), llama.cpp's margin beside the footprint, Ollama's tier and flash-attention rule from the GPUs,
"memory" (and the 4,096 tier) on a machine without a GPU, and an override reported as an override.

GPUs come from the NVML stand-in of tests/test_gpu.py over a fake /proc (real GPUManager, fake driver)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model_manager import GPUManager, ModelManager
from model_manager.cli import main
from model_manager.gpu import CUDA_RESERVE_BYTES
from model_manager.memory.planner import MemoryPlanner
from model_manager.memory.verdict import Verdict
from model_manager.testing import OllamaDouble
from test_gpu import DATA, FakeGpu, FakeNvml, write
from test_gpu import manager as gpu_manager

MIB = 1 << 20
GIB = 1 << 30
EIGHT_B = "llama3.1:8b-instruct"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A machine with RAM (tests/data/gpu/meminfo.txt) and whatever GPUs the NVML stand-in has."""
    base = tmp_path / "root"
    write(base, "/proc/meminfo", (DATA / "meminfo.txt").read_text())
    return base


def _verdict(mm: ModelManager, gpu: GPUManager, env: dict[str, str] | None = None, **kw: object) -> Verdict:
    planner = MemoryPlanner(env or {}, lambda: gpu)
    return planner.verdict(mm.model_info(EIGHT_B), planner.memory(), detail=True, **kw)  # type: ignore[arg-type]


def _gpu(
    root: Path, free: int, total: int = 16 * GIB, compute: tuple[int, int] | None = (8, 6)
) -> GPUManager:
    return gpu_manager(root, nvml=FakeNvml([FakeGpu("GPU-a", total=total, free=free, compute=compute)]))


def test_the_driver_reserve_is_counted_once_and_the_margin_is_kept_beside_the_footprint(
    manager: ModelManager, root: Path
) -> None:
    first = _verdict(manager, _gpu(root, 15 * GIB))
    assert first.estimate is not None and first.level == "full"
    footprint = first.estimate.total_bytes
    e = first.estimate
    assert footprint == e.gpu_weights_bytes + e.kv_cache_bytes + e.graph_bytes  # no reserve inside
    # Fully on the GPU exactly when the footprint and the 1 GiB fit target fit in free − 457 MiB.
    exact = footprint + GIB + CUDA_RESERVE_BYTES
    at = _verdict(manager, _gpu(root, exact))
    assert at.memory.available_bytes == exact - CUDA_RESERVE_BYTES  # GPU detection's usable figure
    assert (at.level, at.placement and at.placement.margin_bytes) == ("full", GIB)
    short = _verdict(manager, _gpu(root, exact - MIB))
    assert short.level == "partial" and short.layers_on_gpu is not None and short.layers_on_gpu < 32


def test_the_default_context_comes_from_the_gpus_total_memory(manager: ModelManager, root: Path) -> None:
    assert _verdict(manager, _gpu(root, 15 * GIB, total=16 * GIB)).default_context == 4096
    assert _verdict(manager, _gpu(root, 20 * GIB, total=24 * GIB)).default_context == 32768
    # Ollama subtracts OLLAMA_GPU_OVERHEAD from each GPU's total before picking the tier.
    overhead = {"OLLAMA_GPU_OVERHEAD": str(2 * GIB)}
    gpu = manager_with_env(root, overhead, 20 * GIB, 24 * GIB)
    assert _verdict(manager, gpu, overhead).default_context == 4096


def manager_with_env(root: Path, env: dict[str, str], free: int, total: int) -> GPUManager:
    return gpu_manager(
        root, env=env, nvml=FakeNvml([FakeGpu("GPU-a", total=total, free=free, compute=(8, 6))])
    )


def test_flash_attention_and_the_batch_follow_the_gpus_compute_capability(
    manager: ModelManager, root: Path
) -> None:
    modern = _verdict(manager, _gpu(root, 7 * GIB, total=8 * GIB), context_length=8192)
    assert modern.run is not None and (modern.run.flash_attention, modern.run.num_batch) == (True, 512)
    maxwell = _verdict(manager, _gpu(root, 7 * GIB, total=8 * GIB, compute=(5, 2)), context_length=8192)
    assert maxwell.run is not None and maxwell.run.flash_attention_mode == "off"
    assert (maxwell.run.flash_attention, maxwell.run.num_batch) == (False, 256)  # CUDA ≤ 8 GiB without FA
    quantised = _verdict(manager, _gpu(root, 7 * GIB, compute=(7, 2)), {"OLLAMA_KV_CACHE_TYPE": "q8_0"})
    assert quantised.level == "none" and quantised.run and "needs flash attention" in quantised.run.problem
    assert quantised.describe().startswith("Ollama cannot load it at 4,096 context with a q8_0 KV cache")


def test_a_machine_without_a_gpu_says_memory_and_takes_the_4096_tier(
    manager: ModelManager, root: Path
) -> None:
    verdict = _verdict(manager, manager_no_gpu(root))
    assert verdict.memory.cpu_only and verdict.memory.word == "memory"
    assert verdict.default_context == 4096 and verdict.context_length == 4096  # 20 GiB of RAM is no GPU
    assert "GB memory" in verdict.message() and "VRAM" not in verdict.message()
    assert verdict.placement is not None and verdict.placement.margin_bytes == 0
    assert verdict.estimate is not None and verdict.placement.needed_bytes == verdict.estimate.cpu_only_bytes


def manager_no_gpu(root: Path) -> GPUManager:
    return gpu_manager(root, nvml=FakeNvml([]))


def test_cli_check_without_a_figure_judges_the_detected_ram_as_ram(
    ollama: OllamaDouble,
    isolated_env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A CPU-only machine with 23.5 GiB of RAM: Ollama's default context there is 4,096, not the 32k tier.
    monkeypatch.setattr(GPUManager, "get_backend", lambda self: "cpu")
    monkeypatch.setattr(GPUManager, "get_available_memory_gb", lambda self: 23.5)
    base = ["--ollama-host", ollama.url, "--data-dir", str(isolated_env)]
    assert main([*base, "check", EIGHT_B, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["context_length"], doc["vram_source"], doc["memory"]["kind"]) == (4096, "detected", "memory")
    assert main([*base, "check", EIGHT_B]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        f"Compatible: {EIGHT_B} needs 6.0 GB memory, 23.5 GB available; fits in memory at 4,096"
    )
    assert out.rstrip().endswith("(memory detected)") and "VRAM" not in out


def test_an_override_is_reported_as_an_override(manager: ModelManager, root: Path) -> None:
    gpu = manager_with_env(root, {"MODEL_MANAGER_VRAM_GB": "12"}, 5 * GIB, 8 * GIB)
    verdict = _verdict(manager, gpu)
    assert (verdict.memory.source, verdict.memory.origin) == ("override", "MODEL_MANAGER_VRAM_GB")
    assert (
        verdict.memory.available_gb == 12.0
        and verdict.memory.label == "VRAM override from MODEL_MANAGER_VRAM_GB"
    )
    assert verdict.to_dict()["memory_source"] == "override"
