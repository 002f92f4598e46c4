"""Generation speed: device names to memory bandwidth, bytes read per token, the estimate against
published measurements, partial offload, and the figure the faces show."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pynvml
import pytest

from model_manager import ModelManager
from model_manager.catalog import load_catalog
from model_manager.gpu import GPUManager
from model_manager.gpu.apple import probe_apple
from model_manager.gpu.host import HostMemory
from model_manager.gpu.records import CommandNotFoundError, System
from model_manager.memory.planner import MemoryPlanner
from model_manager.speed import (
    DEFAULT_HOST,
    ESTIMATED,
    MEASURED,
    PROFILES,
    MemorySystem,
    Speed,
    TokenRead,
    bytes_per_token,
    estimate_speed,
    host_memory,
    lookup_bandwidth,
    prefer_measured,
)
from model_manager.speed_planner import SpeedPlanner, machine_of
from model_manager.testing import OllamaDouble
from model_manager.units import GIB, MB

# --------------------------------------------------------------------------------- bandwidth table


@pytest.mark.parametrize(
    ("device", "gbps"),
    [
        ("NVIDIA GeForce RTX 4090", 1008),
        ("NVIDIA GeForce RTX 4090 Laptop GPU", 576),
        ("NVIDIA GeForce RTX 4080 SUPER", 736),
        ("NVIDIA GeForce RTX 4080", 716.8),
        ("NVIDIA GeForce RTX 4070 Ti SUPER", 672),
        ("NVIDIA GeForce RTX 3060", 360),
        ("NVIDIA GeForce RTX 5090", 1792),
        ("NVIDIA RTX 6000 Ada Generation", 960),
        ("Quadro RTX 6000", 672),
        ("NVIDIA RTX A6000", 768),
        ("Tesla T4", 320),
        ("NVIDIA L4", 300),
        ("NVIDIA L40S", 864),
        ("NVIDIA A10G", 600),
        ("NVIDIA A100-SXM4-80GB", 2039),
        ("NVIDIA A100 80GB PCIe", 1935),
        ("NVIDIA A100-PCIE-40GB", 1555),
        ("NVIDIA H100 80GB HBM3", 3350),
        ("NVIDIA H100 PCIe", 2000),
        ("NVIDIA H200", 4800),
        ("NVIDIA GH200 480GB", 4000),
        ("AMD Radeon RX 7900 XTX", 960),
        ("Radeon RX 7900 XT", 800),
        ("AMD Instinct MI300X", 5300),
        ("Intel(R) Arc(TM) A770 Graphics", 560),
        ("Apple M1 GPU (Metal)", 68.25),
        ("Apple M1 Max GPU (Metal)", 400),
        ("Apple M2 Ultra GPU (Metal)", 800),
        ("Apple M3 Pro GPU (Metal)", 150),
        ("Apple M4 Pro GPU (Metal)", 273),
    ],
)
def test_device_names_map_to_their_rated_bandwidth(device: str, gbps: float) -> None:
    found = lookup_bandwidth(device)
    assert found is not None, device
    assert found.bandwidth_gbps == gbps and found.source


@pytest.mark.parametrize("device", ["Apple GPU (Metal)", "System RAM", "NVIDIA Some Future Card", ""])
def test_unknown_devices_are_not_guessed(device: str) -> None:
    assert lookup_bandwidth(device) is None


def test_memory_kinds_follow_the_memory() -> None:
    kinds = {
        n: lookup_bandwidth(n) for n in ("NVIDIA H200", "NVIDIA GeForce RTX 3090", "Apple M2 GPU (Metal)")
    }
    assert [m.kind if m else None for m in kinds.values()] == ["hbm", "gddr", "unified"]


@pytest.mark.parametrize(
    ("generation", "mt_s", "channels", "gbps"),
    [("DDR4", 3200, 2, 51.2), ("DDR5", 6400, 2, 102.4), ("DDR5", 4800, 8, 307.2), ("ddr4", 2666, 4, 85.312)],
)
def test_host_memory_is_channels_times_transfer_rate(
    generation: str, mt_s: int, channels: int, gbps: float
) -> None:
    memory = host_memory(generation, mt_s, channels)
    assert memory.bandwidth_gbps == pytest.approx(gbps) and memory.kind == "cpu"


@pytest.mark.parametrize(
    ("generation", "mt_s", "channels"), [("DDR3", 1600, 2), ("DDR5", 3200, 2), ("DDR4", 3200, 0)]
)
def test_host_memory_rejects_configurations_that_do_not_exist(
    generation: str, mt_s: int, channels: int
) -> None:
    with pytest.raises(ValueError):
        host_memory(generation, mt_s, channels)


# --------------------------------------------------------------------- the estimate vs measurements

# Published llama.cpp text-generation speeds (tokens/s) and model files (GB), with the memory they ran
# on. XiongjieDai/GPU-Benchmarks-on-LLM-Inference README: "LLaMA" tables (Dec 2023; 7B Q4_0 is 3.82 GB on
# NVIDIA, 3.89 GB on Apple; 13B Q4_0 7.24 / 7.33 GB; 30B Q4_0 17.84 GB; 7B F16 12.63 GB) and "LLaMA 3"
# tables (May 2024; 8B Q4_K_M is 4.58 GiB). The CPU figure is slaren's in ggml-org/llama.cpp issue #34.
PUBLISHED = [
    ("RTX 4090, LLaMA 7B Q4_0", "NVIDIA GeForce RTX 4090", 3.82e9, 149.41),
    ("RTX 4090, Llama 3 8B Q4_K_M", "NVIDIA GeForce RTX 4090", 4.58 * GIB, 130.58),
    ("RTX 3090, LLaMA 13B Q4_0", "NVIDIA GeForce RTX 3090", 7.24e9, 75.01),
    ("RTX 3070, Llama 3 8B Q4_K_M", "NVIDIA GeForce RTX 3070", 4.58 * GIB, 72.79),
    ("A100 80GB, LLaMA 7B F16", "NVIDIA A100 80GB PCIe", 12.63e9, 73.91),
    ("H100 PCIe, LLaMA 30B Q4_0", "NVIDIA H100 PCIe", 17.84e9, 48.92),
    ("M2 Ultra, LLaMA 7B Q4_0", "Apple M2 Ultra GPU (Metal)", 3.89e9, 92.13),
    ("M3, LLaMA 7B Q4_0", "Apple M3 GPU (Metal)", 3.89e9, 19.68),
    ("M1 Max, LLaMA 7B Q4_0", "Apple M1 Max GPU (Metal)", 3.89e9, 48.14),
]
TOLERANCE = 0.25
"""The fits' worst errors are 22% (GDDR cards) and 18% (HBM cards); these points lie within 25%."""


@pytest.mark.parametrize(
    ("label", "device", "file_bytes", "measured"), PUBLISHED, ids=[p[0] for p in PUBLISHED]
)
def test_estimate_is_near_published_measurements(
    label: str, device: str, file_bytes: float, measured: float
) -> None:
    gpu = lookup_bandwidth(device)
    assert gpu is not None
    speed = estimate_speed(TokenRead(int(file_bytes), 0, 0), gpu)
    assert speed.source == ESTIMATED
    assert speed.tokens_per_second == pytest.approx(measured, rel=TOLERANCE), label


def test_m3_max_with_40_gpu_cores_near_its_measurement() -> None:
    # The 40-core M3 Max has 400 GB/s (the table's "M3 Max" is the 30-core, 300 GB/s); 13B Q4_0: 35.98 t/s.
    m3_max_40 = MemorySystem("Apple M3 Max (40-core GPU)", 400, "unified", "Apple")
    speed = estimate_speed(TokenRead(int(7.33e9), 0, 0), m3_max_40)
    assert speed.tokens_per_second == pytest.approx(35.98, rel=TOLERANCE)


def test_cpu_estimate_matches_the_measurement_it_is_fitted_to() -> None:
    ddr5 = host_memory("DDR5", 6400, 2)
    speed = estimate_speed(TokenRead(int(3.82e9), 0, 0), None, ddr5)
    assert speed.tokens_per_second == pytest.approx(18.27, rel=0.02)


def test_profiles_name_what_they_are_fitted_to() -> None:
    for profile in PROFILES.values():
        assert 0 < profile.efficiency <= 1 and profile.per_token_s >= 0 and profile.fitted_to


# ---------------------------------------------------------------------------------- bytes per token


@pytest.fixture(scope="module")
def catalog() -> Any:
    return load_catalog()


def _weights(entry: Any) -> int:
    return int(entry.file_size_bytes or entry.download_size_mb * MB)


def _read(catalog: Any, name: str) -> TokenRead:
    entry = catalog.get(name)
    return bytes_per_token(entry.model_info, _weights(entry), entry.quantization)


# Active parameters as the makers publish them: Mistral's Mixtral announcement (12.9B), the
# Qwen/Qwen3-30B-A3B and Qwen/Qwen3-VL-235B-A22B cards (3.3B, 22B), Meta's Llama 4 cards (17B for
# Scout and Maverick), OpenAI's gpt-oss model card (3.6B, which leaves out the input embedding).
@pytest.mark.parametrize(
    ("name", "active"),
    [
        ("mixtral:8x7b-instruct", 12.9e9),
        ("qwen3:30b", 3.3e9),
        ("qwen3-vl:235b", 22e9),
        ("llama4:16x17b", 17e9),
        ("llama4:128x17b", 17e9),
        ("gpt-oss:20b", 3.6e9),
    ],
)
def test_mixtures_of_experts_read_only_their_active_experts(catalog: Any, name: str, active: float) -> None:
    entry = catalog.get(name)
    read = _read(catalog, name)
    assert read.active_parameters == pytest.approx(active, rel=0.2)
    assert read.weights_bytes < _weights(entry) / 2


def test_dense_models_read_every_weight(catalog: Any) -> None:
    entry = catalog.get("llama3.1:8b")
    read = _read(catalog, "llama3.1:8b")
    assert (read.weights_bytes, read.active_parameters) == (entry.file_size_bytes, entry.parameter_count)


def test_expert_bytes_follow_the_expert_format(catalog: Any) -> None:
    """gpt-oss keeps its experts in MXFP4 (4.25 bits) beside BF16 attention and embeddings: the bytes a
    token skips are 28 of 32 experts' MXFP4 bytes, not 28/32 of the file."""
    entry = catalog.get("gpt-oss:20b")
    info = entry.model_info
    expert_params = (
        3 * info["gpt-oss.embedding_length"] * info["gpt-oss.expert_feed_forward_length"] * 32 * 24
    )
    skipped = expert_params * 4.25 / 8 * 28 / 32
    assert _read(catalog, "gpt-oss:20b").weights_bytes == pytest.approx(
        entry.file_size_bytes - skipped, rel=1e-6
    )


def test_kv_cache_is_read_as_far_as_the_context_is_filled() -> None:
    info = {"general.architecture": "llama", "general.parameter_count": 8_000_000_000}
    half = bytes_per_token(
        info, 4_000_000_000, kv_cache_bytes=512_000_000, cache_tokens=4096, context_tokens=2048
    )
    full = bytes_per_token(
        info, 4_000_000_000, kv_cache_bytes=512_000_000, cache_tokens=4096, context_tokens=9999
    )
    assert (half.kv_bytes, full.kv_bytes) == (256_000_000, 512_000_000)
    gpu = lookup_bandwidth("NVIDIA GeForce RTX 4090")
    assert estimate_speed(full, gpu).tokens_per_second < estimate_speed(half, gpu).tokens_per_second


# ---------------------------------------------------------------------------------- partial offload


def test_partial_offload_reads_the_cpu_share_at_host_bandwidth() -> None:
    gpu = lookup_bandwidth("NVIDIA GeForce RTX 4090")
    assert gpu is not None
    read = TokenRead(10_000_000_000, 0, 0)
    speeds = [
        estimate_speed(read, gpu, DEFAULT_HOST, share).tokens_per_second for share in (1.0, 0.75, 0.5, 0.0)
    ]
    assert speeds == sorted(speeds, reverse=True) and len(set(speeds)) == 4
    # Time per token is the GPU part plus the CPU part plus the GPU's fixed cost.
    g, h = gpu.bandwidth_gbps * 1e9 * gpu.profile.efficiency, DEFAULT_HOST.bandwidth_gbps * 1e9 * 0.68
    seconds = 0.75 * 1e10 / g + 0.25 * 1e10 / h + gpu.profile.per_token_s
    assert speeds[1] == pytest.approx(1 / seconds, abs=0.05)
    assert speeds[3] == estimate_speed(read, None, DEFAULT_HOST).tokens_per_second
    assert "25% from 2-channel DDR4-3200 host RAM" in estimate_speed(read, gpu, DEFAULT_HOST, 0.75).basis


@pytest.mark.parametrize("share", [-0.1, 1.5])
def test_a_share_outside_zero_to_one_is_refused(share: float) -> None:
    with pytest.raises(ValueError):
        estimate_speed(TokenRead(1, 0, 0), None, DEFAULT_HOST, share)


# --------------------------------------------------------------------------------- measured figures


def test_a_measured_speed_comes_from_ollama_timing_and_wins() -> None:
    measured = Speed.measured(eval_count=120, eval_duration_ns=2_000_000_000, basis="bench here")
    assert (measured.tokens_per_second, measured.source) == (60.0, MEASURED)
    estimated = estimate_speed(TokenRead(4_000_000_000, 0, 0), None)
    assert prefer_measured(measured, estimated) is measured
    assert prefer_measured(None, estimated) is estimated
    assert measured.to_dict() == {
        "tokens_per_second": 60.0,
        "speed_source": "measured",
        "speed_basis": "bench here",
    }
    with pytest.raises(ValueError):
        Speed.measured(eval_count=0, eval_duration_ns=1, basis="")


# ------------------------------------------------------------------------ this machine, end to end


class _NoNvml:
    NVMLError = pynvml.NVMLError

    def nvmlInit(self) -> None:
        raise pynvml.NVMLError_LibraryNotFound()


def _nvidia_smi(rows: str) -> Any:
    def run(argv: Any) -> str:
        if argv[0] == "nvidia-smi":
            return rows
        raise CommandNotFoundError(f"{argv[0]} not found on PATH")

    return run


@pytest.fixture
def machine_root(tmp_path: Path) -> Path:
    meminfo = tmp_path / "root" / "proc" / "meminfo"
    meminfo.parent.mkdir(parents=True)
    meminfo.write_text("MemTotal:       32768000 kB\nMemAvailable:   20480000 kB\n")
    return tmp_path / "root"


def _rtx(root: Path, free_mib: int = 23012) -> GPUManager:
    rows = f"0, GPU-1a2b3c4d-0000-4000-8000-000000000001, NVIDIA GeForce RTX 4090, 24564, {free_mib}, 00000000:01:00.0\n"
    return GPUManager(root=root, env={}, nvml=_NoNvml(), run=_nvidia_smi(rows), platform=("Linux", "x86_64"))


def test_detected_device_names_its_bandwidth(machine_root: Path) -> None:
    machine = machine_of(_rtx(machine_root))
    assert machine.gpu is not None and machine.gpu.bandwidth_gbps == 1008
    assert machine.host == DEFAULT_HOST and machine.gpu_bytes > 20 * GIB


def test_cpu_only_machine_reads_from_host_ram(machine_root: Path) -> None:
    cpu = GPUManager(
        root=machine_root, env={}, nvml=_NoNvml(), run=_nvidia_smi(""), platform=("Linux", "x86_64")
    )
    machine = machine_of(cpu)
    assert (machine.gpu, machine.host, machine.gpu_bytes) == (None, DEFAULT_HOST, 0)


def test_apple_device_is_named_after_its_chip(tmp_path: Path) -> None:
    def run(argv: Any) -> str:
        if list(argv) == ["sysctl", "-n", "machdep.cpu.brand_string"]:
            return "Apple M2 Pro\n"
        raise CommandNotFoundError(argv[0])

    system = System(tmp_path, {}, run, "Darwin", "arm64")
    result = probe_apple(
        system, lambda: 16 * GIB, lambda: HostMemory(32 * GIB, 20 * GIB, "vm_stat", True, "")
    )
    [slot] = result.slots
    memory = lookup_bandwidth(slot.name)
    assert slot.name == "Apple M2 Pro GPU (Metal)" and memory is not None and memory.bandwidth_gbps == 200


def test_speeds_on_this_machine_follow_the_fit(manager: ModelManager, machine_root: Path) -> None:
    gpu = _rtx(machine_root)
    planner, speeds = MemoryPlanner(manager.settings.ollama_env, lambda: gpu), SpeedPlanner(lambda: gpu)

    def speed(name: str) -> Speed | None:
        info = manager.model_info(name)
        return speeds.speed(info, planner.verdict(info))

    small, big = speed("llama3.1:8b"), speed("qwen2.5:32b")
    assert small is not None and big is not None
    assert small.source == ESTIMATED and "GeForce RTX 4090" in small.basis
    # At the 32,768 context Ollama gives a 24 GiB card, 8B fits in the 22 GiB free and 32B does not:
    # some of its layers stay on the CPU and it is far slower than its size alone would make it.
    assert "on the GPU" not in small.basis and "2,048 of 32,768 context tokens filled" in small.basis
    assert "of the layers on the GPU" in big.basis and big.tokens_per_second < small.tokens_per_second / 5
    assert speed("nomic-embed-text") is None


def test_metadata_shows_speed_and_quality(
    ollama: OllamaDouble, manager: ModelManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODEL_MANAGER_VRAM_GB", "12")
    with ModelManager(host=ollama.url, data_dir=manager.settings.home) as mm:
        meta = mm.get_model_info("gemma3:12b")
        assert meta is not None
        assert meta["speed_source"] == "estimated" and meta["tokens_per_second"] > 0 and meta["speed_basis"]
        assert (meta["quality_score"], meta["quality_benchmark"]) == (62.8, "OpenVLM avg")
        assert meta["quality_source"].startswith("measured:")
        embed = mm.get_model_info("nomic-embed-text")
        assert embed is not None and embed["tokens_per_second"] is None and embed["speed_source"] is None
