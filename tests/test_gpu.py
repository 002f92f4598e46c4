"""GPUManager on every vendor path without the hardware: fake /proc, /sys and cgroup trees under
tmp_path, a fake NVML module that raises nvidia-ml-py's real exception classes, and recorded-format
nvidia-smi output run through a real subprocess."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pynvml
import pytest

from model_manager.errors import InvalidRequestError
from model_manager.gpu import (
    CUDA_RESERVE_BYTES,
    GIB,
    METAL_RESERVE_BYTES,
    ROCM_RESERVE_BYTES,
    CommandError,
    CommandNotFoundError,
    GPUManager,
    parse_cuda_visible_devices,
    parse_meminfo,
    parse_nvidia_smi,
    parse_vm_stat,
)
from model_manager.gpu.amd import kfd_problem, load_amdsmi
from model_manager.gpu.apple import metal_recommended_working_set
from model_manager.gpu.records import make_runner
from model_manager.units import MIB

DATA = Path(__file__).parent / "data" / "gpu"
REPO = Path(__file__).resolve().parents[1]
MEM_AVAILABLE = 20480000 * 1024  # data/gpu/meminfo.txt
MEM_TOTAL = 32768000 * 1024


# ------------------------------------------------------------------------------------------- helpers


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A machine with RAM and nothing else: /proc/meminfo from the fixture, no cgroup files."""
    base = tmp_path / "root"
    write(base, "/proc/meminfo", (DATA / "meminfo.txt").read_text())
    return base


def no_commands(argv: Any) -> str:
    raise CommandNotFoundError(f"{argv[0]} not found on PATH")


@dataclass
class FakeGpu:
    uuid: str
    name: str = "NVIDIA A100-SXM4-80GB"
    total: int = 80 * GIB
    free: int = 70 * GIB
    bus: str = "00000000:01:00.0"
    migs: list[FakeGpu | None] | None = None
    lost: bool = False
    v2_error: type[pynvml.NVMLError] | None = None
    v1_error: type[pynvml.NVMLError] | None = None
    read_error: type[pynvml.NVMLError] | None = None
    compute: tuple[int, int] | None = None


@dataclass
class FakeNvml:
    """Stands in for the pynvml module: the same function names, nvidia-ml-py's own exceptions."""

    gpus: list[FakeGpu] = field(default_factory=list)
    init_error: type[pynvml.NVMLError] | None = None
    inits: int = 0
    shutdowns: int = 0
    counts: int = 0
    memory_calls: list[tuple[str, Any]] = field(default_factory=list)

    NVMLError = pynvml.NVMLError
    nvmlMemory_v2 = pynvml.nvmlMemory_v2
    NVML_DEVICE_MIG_ENABLE = pynvml.NVML_DEVICE_MIG_ENABLE

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise self.init_error()
        self.inits += 1

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        self.counts += 1
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        if self.gpus[index].lost:
            raise pynvml.NVMLError_GpuIsLost()
        return self.gpus[index]

    def nvmlDeviceGetUUID(self, handle: FakeGpu) -> str:
        return handle.uuid

    def nvmlDeviceGetName(self, handle: FakeGpu) -> str:
        return handle.name

    def nvmlDeviceGetPciInfo(self, handle: FakeGpu) -> Any:
        return SimpleNamespace(busId=handle.bus.encode())

    def nvmlDeviceGetCudaComputeCapability(self, handle: FakeGpu) -> tuple[int, int]:
        if handle.compute is None:
            raise pynvml.NVMLError_NotSupported()
        return handle.compute

    def nvmlDeviceGetMigMode(self, handle: FakeGpu) -> list[int]:
        if handle.migs is None:
            raise pynvml.NVMLError_NotSupported()
        return [1, 1]

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: FakeGpu) -> int:
        return len(handle.migs or [])

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: FakeGpu, slot: int) -> FakeGpu:
        mig = (handle.migs or [])[slot]
        if mig is None:
            raise pynvml.NVMLError_NotFound()
        return mig

    def nvmlDeviceGetMemoryInfo(self, handle: FakeGpu, version: int | None = None) -> Any:
        self.memory_calls.append((handle.uuid, version))
        error = handle.read_error or (handle.v2_error if version else handle.v1_error)
        if error is not None:
            raise error()
        if version:  # v2: driver-reserved memory split out of "used"
            reserved = 512 * MIB
            return SimpleNamespace(
                total=handle.total,
                reserved=reserved,
                free=handle.free,
                used=handle.total - handle.free - reserved,
            )
        return SimpleNamespace(total=handle.total, free=handle.free, used=handle.total - handle.free)


NO_NVML = FakeNvml(init_error=pynvml.NVMLError_LibraryNotFound)


def manager(root: Path, **kwargs: Any) -> GPUManager:
    kwargs.setdefault("env", {})
    kwargs.setdefault("nvml", NO_NVML)
    kwargs.setdefault("run", no_commands)
    kwargs.setdefault("platform", ("Linux", "x86_64"))
    return GPUManager(root=root, **kwargs)


def probe(gpu: GPUManager, name: str) -> Any:
    return next(p for p in gpu.report().probes if p.probe == name)


def usable(free: int, reserve: int = CUDA_RESERVE_BYTES) -> float:
    return (free - reserve) / GIB


# ------------------------------------------------------------------------------------ Pattern 1, CPU


def test_quick_reference_pattern_1_runs_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODEL_MANAGER_VRAM_GB", raising=False)
    from gpu_manager import GPUManager

    gpu = GPUManager()
    available_vram = gpu.get_available_memory_gb()

    assert available_vram > 0
    if gpu.get_backend() == "cpu":  # this machine: no GPU, so the answer is available RAM
        host_available = parse_meminfo(Path("/proc/meminfo").read_text())[1] / GIB
        assert available_vram <= host_available * 1.05


def test_gpu_manager_is_importable_from_the_package() -> None:
    import gpu_manager
    import model_manager

    assert model_manager.GPUManager is GPUManager is gpu_manager.GPUManager


def test_meminfo_parse_uses_memavailable() -> None:
    assert parse_meminfo((DATA / "meminfo.txt").read_text()) == (MEM_TOTAL, MEM_AVAILABLE, True)


def test_meminfo_without_memavailable_adds_free_buffers_cached() -> None:
    total, available, exact = parse_meminfo((DATA / "meminfo-no-memavailable.txt").read_text())
    assert (total, available, exact) == (16384000 * 1024, (4096000 + 256000 + 2048000) * 1024, False)


def test_cpu_only_machine_reports_available_ram(root: Path) -> None:
    gpu = manager(root)
    assert gpu.get_backend() == "cpu"
    assert gpu.get_available_memory_gb() == MEM_AVAILABLE / GIB
    assert gpu.get_total_memory_gb() == MEM_TOTAL / GIB
    [device] = gpu.get_devices()
    assert (device.backend, device.reserve_bytes, device.exact) == ("cpu", 0, True)
    assert probe(gpu, "cpu").status == "used"


def cgroup_v2(root: Path, path: str, levels: dict[str, tuple[str, int, int]]) -> None:
    """levels: cgroup dir -> (memory.max, memory.current, inactive_file)."""
    write(root, "/proc/self/cgroup", f"0::{path}\n")
    write(
        root,
        "/proc/self/mountinfo",
        "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
    )
    for directory, (limit, current, inactive) in levels.items():
        base = f"/sys/fs/cgroup{directory}".rstrip("/")
        write(root, f"{base}/memory.max", f"{limit}\n")
        write(root, f"{base}/memory.current", f"{current}\n")
        write(root, f"{base}/memory.stat", f"anon 1000\nfile 2000\ninactive_file {inactive}\nactive_file 5\n")


def test_cgroup_v2_limit_minus_usage_not_counting_inactive_file(root: Path) -> None:
    cgroup_v2(root, "/app", {"/app": (str(4 * GIB), 3 * GIB, 1 * GIB), "/": ("max", 9 * GIB, 0)})
    gpu = manager(root)
    assert gpu.get_available_memory_gb() == 2.0
    assert gpu.get_total_memory_gb() == 4.0
    assert "cgroup v2 /app" in probe(gpu, "cpu").detail


def test_cgroup_v2_limit_on_parent_binds_the_child(root: Path) -> None:
    cgroup_v2(root, "/pod/app", {"/pod/app": ("max", GIB, 0), "/pod": (str(3 * GIB), 2 * GIB, 0)})
    assert manager(root).get_available_memory_gb() == 1.0


def test_cgroup_v2_max_everywhere_leaves_host_ram(root: Path) -> None:
    cgroup_v2(root, "/app", {"/app": ("max", GIB, 0)})
    assert manager(root).get_available_memory_gb() == MEM_AVAILABLE / GIB


def cgroup_v1(root: Path, mount_root: str, path: str, limit: int, usage: int, inactive: int) -> None:
    write(root, "/proc/self/cgroup", f"5:devices:/\n4:memory:{path}\n0::/\n")
    write(
        root,
        "/proc/self/mountinfo",
        f"35 31 0:32 {mount_root} /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n",
    )
    base = "/sys/fs/cgroup/memory" + (path[len(mount_root.rstrip("/")) :] if mount_root != "/" else path)
    write(root, f"{base}/memory.limit_in_bytes", f"{limit}\n")
    write(root, f"{base}/memory.usage_in_bytes", f"{usage}\n")
    write(root, f"{base}/memory.stat", f"cache 10\ninactive_file 99\ntotal_inactive_file {inactive}\n")


def test_cgroup_v1_limit_uses_total_inactive_file(root: Path) -> None:
    cgroup_v1(root, "/", "/process_api/abc", 6 * GIB, 5 * GIB, 2 * GIB)
    assert manager(root).get_available_memory_gb() == 3.0


def test_cgroup_v1_unlimited_sentinel_is_no_limit(root: Path) -> None:
    cgroup_v1(root, "/", "/process_api/abc", 9223372036854771712, 5 * GIB, 0)
    gpu = manager(root)
    assert gpu.get_available_memory_gb() == MEM_AVAILABLE / GIB
    assert "no cgroup memory limit" in probe(gpu, "cpu").detail


def test_cgroup_v1_mounted_at_the_containers_own_group(root: Path) -> None:
    cgroup_v1(root, "/docker/abc", "/docker/abc", 2 * GIB, GIB, 0)
    assert manager(root).get_available_memory_gb() == 1.0


def test_cpu_probe_failure_is_recorded_not_raised(tmp_path: Path) -> None:
    gpu = manager(tmp_path)  # no /proc/meminfo at all
    assert gpu.get_available_memory_gb() == 0.0
    assert probe(gpu, "cpu").status == "failed"
    assert "meminfo" in probe(gpu, "cpu").detail


# ---------------------------------------------------------------------------------------------- NVML


def two_gpus() -> FakeNvml:
    return FakeNvml(
        [
            FakeGpu("GPU-aaaa1111-0000-0000-0000-000000000000", total=80 * GIB, free=70 * GIB),
            FakeGpu(
                "GPU-bbbb2222-0000-0000-0000-000000000000",
                total=80 * GIB,
                free=30 * GIB,
                bus="00000000:41:00.0",
            ),
        ]
    )


def test_nvml_sums_free_minus_reserve_over_gpus(root: Path) -> None:
    gpu = manager(root, nvml=two_gpus())
    assert gpu.get_backend() == "cuda"
    assert gpu.get_available_memory_gb() == pytest.approx(usable(70 * GIB) + usable(30 * GIB))
    assert gpu.get_total_memory_gb() == 160.0
    assert gpu.get_largest_device_gb() == pytest.approx(usable(70 * GIB))
    assert probe(gpu, "nvml").status == "used" and probe(gpu, "nvidia-smi").status == "skipped"


def test_nvml_device_records(root: Path) -> None:
    first, second = manager(root, nvml=two_gpus()).get_devices()
    assert (first.backend, first.index, first.id, first.pci_id) == (
        "cuda",
        0,
        "GPU-aaaa1111-0000-0000-0000-000000000000",
        "0000:01:00.0",
    )
    assert (first.name, first.source, first.exact, first.integrated) == (
        "NVIDIA A100-SXM4-80GB",
        "nvml-v2",
        True,
        False,
    )
    assert (first.reserve_bytes, first.usable_bytes) == (CUDA_RESERVE_BYTES, 70 * GIB - CUDA_RESERVE_BYTES)
    assert second.index == 1 and second.pci_id == "0000:41:00.0"


def test_nvml_asks_v2_and_reads_its_free_field(root: Path) -> None:
    nvml = FakeNvml([FakeGpu("GPU-a", total=40 * GIB, free=39 * GIB)])
    [device] = manager(root, nvml=nvml).get_devices()
    assert nvml.memory_calls == [("GPU-a", pynvml.nvmlMemory_v2)]
    assert device.free_bytes == 39 * GIB  # not total - used, which would count reserved memory as free


@pytest.mark.parametrize("v2_error", [pynvml.NVMLError_FunctionNotFound, pynvml.NVMLError_Unknown])
def test_nvml_falls_back_to_v1_when_v2_fails(root: Path, v2_error: type[pynvml.NVMLError]) -> None:
    nvml = FakeNvml([FakeGpu("GPU-a", free=10 * GIB, v2_error=v2_error)])
    [device] = manager(root, nvml=nvml).get_devices()
    assert (device.source, device.free_bytes) == ("nvml-v1", 10 * GIB)


@pytest.mark.parametrize(
    ("error", "status", "words"),
    [
        (pynvml.NVMLError_LibraryNotFound, "absent", "not found"),
        (pynvml.NVMLError_DriverNotLoaded, "absent", "not loaded"),
        (pynvml.NVMLError_LibRmVersionMismatch, "unusable", "reboot"),
        (pynvml.NVMLError_NoPermission, "unusable", "NoPermission"),
    ],
)
def test_nvml_init_errors_fall_back_to_nvidia_smi_then_cpu(
    root: Path, error: type[pynvml.NVMLError], status: str, words: str
) -> None:
    commands: list[tuple[str, ...]] = []

    def run(argv: Any) -> str:
        commands.append(tuple(argv))
        raise CommandNotFoundError("nvidia-smi not found on PATH")

    gpu = manager(root, nvml=FakeNvml(init_error=error), run=run)
    assert gpu.get_backend() == "cpu"
    assert probe(gpu, "nvml").status == status and words in probe(gpu, "nvml").detail
    assert commands and commands[0][0] == "nvidia-smi"
    assert probe(gpu, "nvidia-smi").status == "absent"


@pytest.mark.parametrize("total", [None, 0])
def test_unified_memory_gpu_is_reported_from_host_ram(root: Path, total: int | None) -> None:
    fake = FakeGpu("GPU-gb10", name="NVIDIA GB10", total=total or 0, free=0)
    if total is None:
        fake.v1_error = fake.v2_error = pynvml.NVMLError_NotSupported
    gpu = manager(root, nvml=FakeNvml([fake]))
    [device] = gpu.get_devices()
    assert (device.backend, device.integrated, device.total_bytes) == ("cuda", True, MEM_TOTAL)
    assert gpu.get_available_memory_gb() == pytest.approx(usable(MEM_AVAILABLE))
    assert "unified memory" in device.note


def test_gpu_lost_at_enumeration_skips_only_that_gpu(root: Path) -> None:
    nvml = two_gpus()
    nvml.gpus[0].lost = True
    gpu = manager(root, nvml=nvml)
    assert [d.id for d in gpu.get_devices()] == ["GPU-bbbb2222-0000-0000-0000-000000000000"]
    assert "GPU 0 skipped: NVMLError_GpuIsLost" in probe(gpu, "nvml").detail


def test_gpu_failing_a_memory_read_does_not_hide_the_others(root: Path) -> None:
    nvml = two_gpus()
    nvml.gpus[1].read_error = pynvml.NVMLError_Unknown
    gpu = manager(root, nvml=nvml)
    broken = gpu.get_devices()[1]
    assert broken.usable_bytes == 0 and "memory read failed" in broken.problem
    assert gpu.get_available_memory_gb() == pytest.approx(usable(70 * GIB))


def test_nvml_names_as_bytes_from_old_bindings_are_decoded(root: Path) -> None:
    class OldNvml(FakeNvml):
        def nvmlDeviceGetName(self, handle: FakeGpu) -> bytes:  # type: ignore[override]
            return handle.name.encode()

    [device] = manager(root, nvml=OldNvml([FakeGpu("GPU-a")])).get_devices()
    assert device.name == "NVIDIA A100-SXM4-80GB"


def mig_nvml() -> FakeNvml:
    parent = FakeGpu(
        "GPU-parent",
        migs=[
            FakeGpu("MIG-one", name="NVIDIA A100 MIG 3g.40gb", total=40 * GIB, free=39 * GIB),
            None,  # an empty slot answers NotFound
            FakeGpu("MIG-two", name="NVIDIA A100 MIG 2g.20gb", total=20 * GIB, free=19 * GIB),
        ],
    )
    return FakeNvml([parent])


def test_mig_instances_are_devices_and_one_process_sees_one(root: Path) -> None:
    gpu = manager(root, nvml=mig_nvml())
    devices = [d for d in gpu.report().devices if d.backend == "cuda"]
    assert [(d.id, d.visible) for d in devices] == [("MIG-one", True), ("MIG-two", False)]
    assert "one MIG instance" in devices[1].note
    assert gpu.get_available_memory_gb() == pytest.approx(usable(39 * GIB))
    assert "MIG mode with 2 instance(s)" in probe(gpu, "nvml").detail


def test_cuda_visible_devices_mig_uuid_picks_that_instance(root: Path) -> None:
    gpu = manager(root, nvml=mig_nvml(), env={"CUDA_VISIBLE_DEVICES": "MIG-two"})
    assert [d.id for d in gpu.get_devices()] == ["MIG-two"]
    assert gpu.get_available_memory_gb() == pytest.approx(usable(19 * GIB))


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        (None, None),
        ("", []),
        ("-1", []),
        ("1", ["1"]),
        ("0,0", []),
        ("0,-1,1", ["0"]),
        ("1gpu2", ["1"]),
        (" 0, 1", ["0", "1"]),
        ("GPU-abc", ["GPU-abc"]),
        ("GPU-abc,1,GPU-def", ["GPU-abc"]),
        ("MIG-x,MIG-y", ["MIG-x", "MIG-y"]),
    ],
)
def test_parse_cuda_visible_devices_like_cuda(value: str | None, parsed: list[str] | None) -> None:
    assert parse_cuda_visible_devices(value) == parsed


@pytest.mark.parametrize(
    ("value", "ids"),
    [
        ("1", ["GPU-bbbb2222-0000-0000-0000-000000000000"]),
        ("1,0", ["GPU-bbbb2222-0000-0000-0000-000000000000", "GPU-aaaa1111-0000-0000-0000-000000000000"]),
        ("GPU-aaaa", ["GPU-aaaa1111-0000-0000-0000-000000000000"]),
        ("0,7", ["GPU-aaaa1111-0000-0000-0000-000000000000"]),
    ],
)
def test_cuda_visible_devices_selects_and_orders_gpus(root: Path, value: str, ids: list[str]) -> None:
    devices = manager(root, nvml=two_gpus(), env={"CUDA_VISIBLE_DEVICES": value}).get_devices()
    assert [d.id for d in devices] == ids
    assert [d.index for d in devices] == list(range(len(ids)))


@pytest.mark.parametrize("value", ["", "-1", "GPU-", "0,0", "5"])
def test_cuda_visible_devices_hiding_every_gpu_falls_to_cpu(root: Path, value: str) -> None:
    gpu = manager(root, nvml=two_gpus(), env={"CUDA_VISIBLE_DEVICES": value})
    assert gpu.get_backend() == "cpu"
    assert gpu.get_available_memory_gb() == MEM_AVAILABLE / GIB  # RAM alone, nothing added from the GPUs
    assert all(not d.visible for d in gpu.report().devices if d.backend == "cuda")


def test_index_mapping_is_an_estimate_on_mixed_gpus_without_pci_order(root: Path) -> None:
    nvml = two_gpus()
    nvml.gpus[1].name = "NVIDIA GeForce RTX 4090"
    [device] = manager(root, nvml=nvml, env={"CUDA_VISIBLE_DEVICES": "1"}).get_devices()
    assert not device.exact and "CUDA_DEVICE_ORDER" in device.note
    env = {"CUDA_VISIBLE_DEVICES": "1", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    [device] = manager(root, nvml=two_gpus(), env=env).get_devices()
    assert device.exact


def test_enumeration_is_cached_and_free_memory_refreshed(root: Path) -> None:
    nvml = two_gpus()
    now = [0.0]
    gpu = manager(root, nvml=nvml, ttl_s=1.0, clock=lambda: now[0])
    before = gpu.get_available_memory_gb()
    nvml.gpus[0].free -= 10 * GIB
    assert gpu.get_available_memory_gb() == before  # within the TTL
    now[0] = 5.0
    assert gpu.get_available_memory_gb() == pytest.approx(before - 10)
    assert (nvml.inits, nvml.counts) == (1, 1)


def test_refresh_re_enumerates_and_close_shuts_nvml_down(root: Path) -> None:
    nvml = two_gpus()
    gpu = manager(root, nvml=nvml)
    gpu.get_devices()
    nvml.gpus.pop()
    gpu.refresh()
    assert len(gpu.get_devices()) == 1
    gpu.close()
    assert (nvml.inits, nvml.shutdowns) == (2, 2)


def test_probe_that_throws_is_recorded_and_others_still_run(root: Path) -> None:
    class Broken(FakeNvml):
        def nvmlDeviceGetCount(self) -> int:
            raise RuntimeError("driver exploded")

    gpu = manager(root, nvml=Broken([FakeGpu("GPU-a")]))
    assert probe(gpu, "nvml").status == "failed" and "driver exploded" in probe(gpu, "nvml").detail
    assert gpu.get_backend() == "cpu" and gpu.get_available_memory_gb() > 0


def test_gpu_without_room_reports_zero_not_host_ram(root: Path) -> None:
    gpu = manager(root, nvml=FakeNvml([FakeGpu("GPU-a", free=CUDA_RESERVE_BYTES + 100 * MIB)]))
    assert (gpu.get_backend(), gpu.get_available_memory_gb()) == ("cuda", 0.0)


def test_ollama_gpu_overhead_adds_to_each_reserve(root: Path) -> None:
    gpu = manager(root, nvml=two_gpus(), env={"OLLAMA_GPU_OVERHEAD": str(GIB)})
    assert gpu.get_available_memory_gb() == pytest.approx(
        usable(70 * GIB, CUDA_RESERVE_BYTES + GIB) + usable(30 * GIB, CUDA_RESERVE_BYTES + GIB)
    )


def test_unparsable_ollama_gpu_overhead_is_ignored_and_noted(root: Path) -> None:
    gpu = manager(root, nvml=two_gpus(), env={"OLLAMA_GPU_OVERHEAD": "lots"})
    assert gpu.get_available_memory_gb() == pytest.approx(usable(70 * GIB) + usable(30 * GIB))
    assert any("OLLAMA_GPU_OVERHEAD='lots'" in note for note in gpu.report().notes)


def test_legacy_pynvml_module_is_refused(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", SimpleNamespace(nvmlInit=lambda: None))
    gpu = manager(root, nvml=None)
    assert probe(gpu, "nvml").status == "absent" and "not NVIDIA's nvidia-ml-py" in probe(gpu, "nvml").detail


def test_missing_pynvml_is_reported(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    assert "pynvml not importable" in probe(manager(root, nvml=None), "nvml").detail


def test_real_nvml_without_a_driver_reports_the_library_missing(root: Path) -> None:
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError_LibraryNotFound:
        gpu = manager(root, nvml=None)
        assert probe(gpu, "nvml").status == "absent" and "libnvidia-ml" in probe(gpu, "nvml").detail
        return
    pynvml.nvmlShutdown()
    pytest.skip("an NVIDIA driver is installed here")


# ---------------------------------------------------------------------------------------- nvidia-smi


def test_parse_nvidia_smi_rows() -> None:
    first, second = parse_nvidia_smi((DATA / "nvidia-smi-two-gpus.csv").read_text())
    assert (first.index, first.name, first.total_mib, first.free_mib, first.pci_id) == (
        0,
        "NVIDIA GeForce RTX 4090",
        24564,
        23012,
        "0000:01:00.0",
    )
    assert second.uuid == "GPU-9f8e7d6c-5b4a-4c3d-9e2f-1a0b9c8d7e6f"
    [gb10] = parse_nvidia_smi((DATA / "nvidia-smi-gb10.csv").read_text())
    assert (gb10.total_mib, gb10.free_mib, gb10.pci_id) == (None, None, "000f:01:00.0")
    assert parse_nvidia_smi((DATA / "nvidia-smi-no-driver.txt").read_text()) == []


def fake_nvidia_smi(tmp_path: Path, fixture: str, status: int = 0) -> dict[str, str]:
    """A real ``nvidia-smi`` executable on a private PATH that prints a fixture and checks its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "nvidia-smi"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "expected = ['--query-gpu=index,uuid,name,memory.total,memory.free,pci.bus_id',"
        " '--format=csv,noheader,nounits']\n"
        "if sys.argv[1:] != expected:\n"
        "    sys.exit(64)\n"
        f"sys.stdout.write(open({str(DATA / fixture)!r}).read())\n"
        f"sys.exit({status})\n"
    )
    script.chmod(0o755)
    return {"PATH": str(bin_dir)}


def test_nvidia_smi_fallback_through_a_real_subprocess(root: Path, tmp_path: Path) -> None:
    gpu = GPUManager(
        root=root,
        env=fake_nvidia_smi(tmp_path, "nvidia-smi-two-gpus.csv"),
        nvml=NO_NVML,
        platform=("Linux", "x86_64"),
    )
    first, _ = gpu.get_devices()
    assert (first.source, first.total_bytes, first.free_bytes) == ("nvidia-smi", 24564 * MIB, 23012 * MIB)
    assert gpu.get_available_memory_gb() == pytest.approx(usable(23012 * MIB) + usable(18432 * MIB))
    assert probe(gpu, "nvidia-smi").status == "used"


def test_nvidia_smi_failure_is_reported_with_its_message(root: Path, tmp_path: Path) -> None:
    env = fake_nvidia_smi(tmp_path, "nvidia-smi-no-driver.txt", status=9)
    gpu = GPUManager(root=root, env=env, nvml=NO_NVML, platform=("Linux", "x86_64"))
    outcome = probe(gpu, "nvidia-smi")
    assert outcome.status == "unusable" and "status 9" in outcome.detail and "NVIDIA driver" in outcome.detail
    assert gpu.get_backend() == "cpu"


def test_nvidia_smi_unified_memory_gpu_uses_host_ram(root: Path, tmp_path: Path) -> None:
    env = fake_nvidia_smi(tmp_path, "nvidia-smi-gb10.csv")
    [device] = GPUManager(root=root, env=env, nvml=NO_NVML, platform=("Linux", "x86_64")).get_devices()
    assert (device.integrated, device.free_bytes, device.source) == (
        True,
        MEM_AVAILABLE,
        "nvidia-smi+meminfo",
    )


def test_nvidia_smi_honours_cuda_visible_devices(root: Path, tmp_path: Path) -> None:
    env = {**fake_nvidia_smi(tmp_path, "nvidia-smi-two-gpus.csv"), "CUDA_VISIBLE_DEVICES": "GPU-9f8e"}
    [device] = GPUManager(root=root, env=env, nvml=NO_NVML, platform=("Linux", "x86_64")).get_devices()
    assert device.name == "NVIDIA GeForce RTX 3090"


def test_default_runner_times_out(tmp_path: Path) -> None:
    script = tmp_path / "slow"
    script.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(5)\n")
    script.chmod(0o755)
    with pytest.raises(CommandError, match="did not finish"):
        make_runner({"PATH": str(tmp_path)}, timeout_s=0.3)(["slow"])


# ----------------------------------------------------------------------------------------------- AMD


def amd_gpu(
    root: Path,
    node: int,
    minor: int,
    *,
    bdf: str,
    vram: int = 24 * GIB,
    used: int | None = 2 * GIB,
    gtt: int = 16 * GIB,
    gfx: int = 110000,
    unique_id: int | None = None,
    discrete_marker: bool = True,
) -> None:
    """One KFD GPU node plus its DRM device, as amdgpu lays them out (see the design note §3.5)."""
    props = (DATA / "kfd-node-gfx1100.properties").read_text()
    props = props.replace("drm_render_minor 128", f"drm_render_minor {minor}")
    props = props.replace("gfx_target_version 110000", f"gfx_target_version {gfx}")
    if unique_id is not None:
        props = props.replace("unique_id 4519683582648316484", f"unique_id {unique_id}")
    kfd = f"/sys/class/kfd/kfd/topology/nodes/{node}"
    write(root, f"{kfd}/properties", props)
    write(root, f"{kfd}/mem_banks/0/properties", f"heap_type 1\nsize_in_bytes {vram}\nwidth 384\n")
    device = root / f"sys/devices/pci0000:00/{bdf}"
    files = {
        "vendor": "0x1002",
        "device": "0x744c",
        "uevent": f"DRIVER=amdgpu\nPCI_SLOT_NAME={bdf}\n",
        "mem_info_vram_total": str(vram),
        "mem_info_gtt_total": str(gtt),
        "mem_info_gtt_used": str(GIB),
    }
    if used is not None:
        files["mem_info_vram_used"] = str(used)
    if discrete_marker:
        files["mem_info_vram_vendor"] = "samsung"
    for name, text in files.items():
        write(device, name, text + "\n")
    link = root / f"sys/class/drm/renderD{minor}/device"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(device)


@pytest.fixture
def amd_root(root: Path) -> Path:
    """CPU node 0 and one RX 7900 XTX (gfx1100) with 24 GiB VRAM, 2 GiB used."""
    write(root, "/sys/module/amdgpu/version", "6.8.5\n")
    write(root, "/dev/kfd", "")
    write(
        root, "/sys/class/kfd/kfd/topology/nodes/0/properties", (DATA / "kfd-node-cpu.properties").read_text()
    )
    amd_gpu(root, 1, 128, bdf="0000:03:00.0")
    return root


def test_amd_sysfs_discrete_gpu(amd_root: Path) -> None:
    gpu = manager(amd_root)
    [device] = gpu.get_devices()
    assert (device.backend, device.id, device.pci_id) == (
        "rocm",
        f"GPU-{4519683582648316484:016x}",
        "0000:03:00.0",
    )
    assert (device.total_bytes, device.free_bytes, device.reserve_bytes) == (
        24 * GIB,
        22 * GIB,
        ROCM_RESERVE_BYTES,
    )
    assert (device.name, device.integrated, device.exact) == ("AMD gfx1100 (0x744c)", False, True)
    assert gpu.get_available_memory_gb() == pytest.approx(usable(22 * GIB, ROCM_RESERVE_BYTES))
    assert probe(gpu, "amd-sysfs").status == "used" and probe(gpu, "amdsmi").status == "skipped"


def test_amd_masked_gpu_node_is_skipped_and_named(amd_root: Path) -> None:
    write(
        amd_root, "/sys/class/kfd/kfd/topology/nodes/2/properties", "gfx_target_version 0\ndevice_id 29772\n"
    )
    gpu = manager(amd_root)
    assert len(gpu.get_devices()) == 1
    assert "gfx 0.0.0 (masked)" in probe(gpu, "amd-sysfs").detail


def test_amd_missing_vram_used_file_assumes_free_is_total(root: Path) -> None:
    write(root, "/sys/module/amdgpu/version", "1\n")
    write(root, "/dev/kfd", "")
    amd_gpu(root, 1, 128, bdf="0000:03:00.0", used=None)
    [device] = manager(root).get_devices()
    assert (device.free_bytes, device.exact) == (24 * GIB, False)
    assert "mem_info_vram_used missing" in device.note


def test_two_identical_amd_cards_without_unique_id(amd_root: Path) -> None:
    (amd_root / "sys/class/kfd/kfd/topology/nodes/1/properties").write_text(
        (amd_root / "sys/class/kfd/kfd/topology/nodes/1/properties")
        .read_text()
        .replace("unique_id 4519683582648316484", "unique_id 0")
    )
    amd_gpu(amd_root, 2, 129, bdf="0000:43:00.0", unique_id=0)
    gpu = manager(amd_root)
    assert [d.id for d in gpu.get_devices()] == ["0000:03:00.0", "0000:43:00.0"]
    assert gpu.get_available_memory_gb() == pytest.approx(2 * usable(22 * GIB, ROCM_RESERVE_BYTES))


def test_amd_apu_is_integrated_and_loses_to_a_discrete_card(amd_root: Path) -> None:
    amd_gpu(
        amd_root,
        2,
        129,
        bdf="0000:c5:00.0",
        vram=512 * MIB,
        used=100 * MIB,
        gtt=16 * GIB,
        discrete_marker=False,
    )
    gpu = manager(amd_root)
    apu = gpu.get_devices()[1]
    assert apu.integrated and apu.total_bytes == 512 * MIB + 16 * GIB
    assert apu.free_bytes == 412 * MIB + 15 * GIB  # VRAM free + GTT free (less than available RAM)
    assert gpu.get_available_memory_gb() == pytest.approx(usable(22 * GIB, ROCM_RESERVE_BYTES))


def test_discrete_gpu_wins_even_with_less_room_than_the_apu(root: Path) -> None:
    write(root, "/sys/module/amdgpu/version", "1\n")
    write(root, "/dev/kfd", "")
    amd_gpu(root, 1, 128, bdf="0000:03:00.0", vram=8 * GIB, used=4 * GIB)
    amd_gpu(root, 2, 129, bdf="0000:c5:00.0", vram=512 * MIB, used=0, gtt=64 * GIB, discrete_marker=False)
    gpu = manager(root)
    assert gpu.get_available_memory_gb() == pytest.approx(usable(4 * GIB, ROCM_RESERVE_BYTES))
    assert gpu.get_total_memory_gb() == 8.0


def test_amd_apu_alone_beats_the_cpu_record(root: Path) -> None:
    write(root, "/sys/module/amdgpu/version", "1\n")
    write(root, "/dev/kfd", "")
    amd_gpu(root, 1, 128, bdf="0000:c5:00.0", vram=512 * MIB, used=0, gtt=64 * GIB, discrete_marker=False)
    gpu = manager(root)
    assert gpu.get_backend() == "rocm"
    assert gpu.get_available_memory_gb() == pytest.approx(
        usable(512 * MIB + MEM_AVAILABLE, ROCM_RESERVE_BYTES)
    )


@pytest.fixture
def amd_two(amd_root: Path) -> Path:
    amd_gpu(amd_root, 2, 129, bdf="0000:43:00.0", unique_id=0xABCDEF, used=12 * GIB)
    return amd_root


@pytest.mark.parametrize(
    ("env", "pci_ids"),
    [
        ({"ROCR_VISIBLE_DEVICES": "1"}, ["0000:43:00.0"]),
        ({"ROCR_VISIBLE_DEVICES": "GPU-0000000000abcdef"}, ["0000:43:00.0"]),
        ({"ROCR_VISIBLE_DEVICES": "1,0"}, ["0000:43:00.0", "0000:03:00.0"]),
        ({"HIP_VISIBLE_DEVICES": "1"}, ["0000:43:00.0"]),
        ({"GPU_DEVICE_ORDINAL": "1"}, ["0000:43:00.0"]),
        ({"ROCR_VISIBLE_DEVICES": "1,0", "HIP_VISIBLE_DEVICES": "1"}, ["0000:03:00.0"]),
        ({"HIP_VISIBLE_DEVICES": "0", "GPU_DEVICE_ORDINAL": "1"}, ["0000:03:00.0"]),
    ],
)
def test_amd_visibility_variables(amd_two: Path, env: dict[str, str], pci_ids: list[str]) -> None:
    assert [d.pci_id for d in manager(amd_two, env=env).get_devices()] == pci_ids


def test_amd_hidden_by_every_variable_falls_to_cpu(amd_two: Path) -> None:
    gpu = manager(amd_two, env={"ROCR_VISIBLE_DEVICES": "-1"})
    assert gpu.get_backend() == "cpu"
    assert all(
        "hidden by ROCR_VISIBLE_DEVICES=-1" in d.note for d in gpu.report().devices if d.backend == "rocm"
    )


def test_amd_without_dev_kfd_is_present_but_unusable(amd_root: Path) -> None:
    (amd_root / "dev/kfd").unlink()
    gpu = manager(amd_root)
    rocm = next(d for d in gpu.report().devices if d.backend == "rocm")
    assert "--device /dev/kfd" in rocm.problem and rocm.usable_bytes == 0
    assert gpu.get_backend() == "cpu" and probe(gpu, "amd-sysfs").status == "found"


def test_kfd_permission_denied_says_which_group() -> None:
    assert "'render'" in kfd_problem(PermissionError(errno.EACCES, "Permission denied"))
    assert "cannot be opened" in kfd_problem(OSError(errno.EISDIR, "Is a directory"))


def test_amd_gpu_older_than_gfx9_is_unusable(root: Path) -> None:
    write(root, "/sys/module/amdgpu/version", "1\n")
    write(root, "/dev/kfd", "")
    amd_gpu(root, 1, 128, bdf="0000:03:00.0", gfx=80003)
    gpu = manager(root)
    assert "gfx803 is older than gfx900" in gpu.report().devices[0].problem
    assert gpu.get_backend() == "cpu"


class FakeAmdsmi:
    AmdSmiInitFlags = SimpleNamespace(INIT_AMD_GPUS=2)
    AmdSmiMemoryType = SimpleNamespace(VRAM=0, VIS_VRAM=1, GTT=2)

    def __init__(self) -> None:
        self.shut = False

    def amdsmi_init(self, flags: int) -> None:
        assert flags == 2

    def amdsmi_shut_down(self) -> None:
        self.shut = True

    def amdsmi_get_processor_handles(self) -> list[str]:
        return ["h0"]

    def amdsmi_get_gpu_device_bdf(self, handle: str) -> str:
        return "0000:03:00.0"

    def amdsmi_get_gpu_device_uuid(self, handle: str) -> str:
        return "5bff744c-0000-1000-80ab-cdef01234567"

    def amdsmi_get_gpu_asic_info(self, handle: str) -> dict[str, str]:
        return {"market_name": "AMD Radeon RX 7900 XTX"}

    def amdsmi_get_gpu_memory_total(self, handle: str, kind: int) -> int:
        return 24 * GIB if kind == 0 else 0

    def amdsmi_get_gpu_memory_usage(self, handle: str, kind: int) -> int:
        return 4 * GIB if kind == 0 else 0


def test_amdsmi_is_used_when_sysfs_has_no_topology(root: Path) -> None:
    write(root, "/sys/module/amdgpu/version", "1\n")
    write(root, "/dev/kfd", "")
    smi = FakeAmdsmi()
    gpu = manager(root, amdsmi=smi)
    [device] = gpu.get_devices()
    assert (device.name, device.source, device.free_bytes) == ("AMD Radeon RX 7900 XTX", "amdsmi", 20 * GIB)
    assert probe(gpu, "amd-sysfs").status == "absent" and probe(gpu, "amdsmi").status == "used"
    gpu.close()
    assert smi.shut


def test_amdsmi_import_failure_is_silent_and_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    package = tmp_path / "site" / "amdsmi"
    write(package, "__init__.py", "print('Unable to find amdsmi library')\nraise KeyError('libamd_smi.so')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "amdsmi", raising=False)
    module, why = load_amdsmi()
    assert module is None and "KeyError" in why and "libamd_smi.so" in why
    assert capsys.readouterr().out == ""


# ------------------------------------------------------------------------------------- mixed vendors


def test_nvidia_and_amd_are_never_added_together(amd_root: Path) -> None:
    gpu = manager(amd_root, nvml=FakeNvml([FakeGpu("GPU-a", total=16 * GIB, free=15 * GIB)]))
    assert gpu.get_backend() == "rocm"  # 22 GiB free beats 15 GiB
    assert gpu.get_available_memory_gb() == pytest.approx(usable(22 * GIB, ROCM_RESERVE_BYTES))
    assert {d.backend for d in gpu.get_devices()} == {"cuda", "rocm"}
    assert probe(gpu, "nvml").status == "found" and probe(gpu, "amd-sysfs").status == "used"


def test_equal_vendors_prefer_cuda(amd_root: Path) -> None:
    nvml = FakeNvml([FakeGpu("GPU-a", total=24 * GIB, free=22 * GIB)])
    assert manager(amd_root, nvml=nvml).get_backend() == "cuda"


# ------------------------------------------------------------------------------------------- Intel


def intel_card(root: Path, card: int, bdf: str, lmem: int | None) -> None:
    device = root / f"sys/devices/pci0000:00/{bdf}"
    write(device, "vendor", "0x8086\n")
    write(device, "device", "0x56a0\n")
    if lmem is not None:
        write(device, "lmem_total_bytes", f"{lmem}\n")
    link = root / f"sys/class/drm/card{card}/device"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(device)


def test_intel_integrated_gpu_is_treated_as_cpu(root: Path) -> None:
    intel_card(root, 0, "0000:00:02.0", None)
    gpu = manager(root)
    assert gpu.get_backend() == "cpu" and gpu.get_available_memory_gb() == MEM_AVAILABLE / GIB
    assert (
        "0000:00:02.0" in probe(gpu, "intel-sysfs").detail
        and "treated as CPU" in probe(gpu, "intel-sysfs").detail
    )


def test_intel_discrete_gpu_is_listed_but_free_memory_unknown(root: Path) -> None:
    intel_card(root, 1, "0000:03:00.0", 16 * GIB)
    gpu = manager(root)
    arc = next(d for d in gpu.report().devices if d.backend == "levelzero")
    assert (arc.total_bytes, arc.usable_bytes, arc.exact) == (16 * GIB, 0, False)
    assert "MODEL_MANAGER_VRAM_GB" in arc.problem and gpu.get_backend() == "cpu"


# ------------------------------------------------------------------------------------------- Apple


def mac_runner(memsize: int, wired_mb: str | None) -> Any:
    def run(argv: Any) -> str:
        if list(argv) == ["sysctl", "-n", "hw.memsize"]:
            return f"{memsize}\n"
        if list(argv) == ["sysctl", "-n", "iogpu.wired_limit_mb"]:
            if wired_mb is None:
                raise CommandError("sysctl exited with status 1: unknown oid 'iogpu.wired_limit_mb'")
            return f"{wired_mb}\n"
        if list(argv) == ["vm_stat"]:
            return (DATA / "vm_stat.txt").read_text()
        raise CommandNotFoundError(f"{argv[0]} not found on PATH")

    return run


VM_STAT_AVAILABLE = (81920 + 262144 + 16384) * 16384


def apple(root: Path, metal: Any, memsize: int = 16 * GIB, wired_mb: str | None = "0") -> GPUManager:
    return manager(root, platform=("Darwin", "arm64"), metal=metal, run=mac_runner(memsize, wired_mb))


def test_parse_vm_stat() -> None:
    assert parse_vm_stat((DATA / "vm_stat.txt").read_text()) == VM_STAT_AVAILABLE


def test_apple_metal_working_set_bounded_by_available_ram(root: Path) -> None:
    gpu = apple(root, metal=lambda: 10 * GIB)
    [device] = gpu.get_devices()
    assert (device.backend, device.total_bytes, device.source, device.exact) == (
        "metal",
        10 * GIB,
        "metal",
        True,
    )
    assert (device.reserve_bytes, device.integrated) == (METAL_RESERVE_BYTES, True)
    assert gpu.get_available_memory_gb() == pytest.approx(usable(VM_STAT_AVAILABLE, METAL_RESERVE_BYTES))
    assert probe(gpu, "nvml").status == "skipped"


def test_apple_wired_limit_when_metal_cannot_be_asked(root: Path) -> None:
    [device] = apple(root, metal=lambda: None, wired_mb="12000").get_devices()
    assert (device.total_bytes, device.source, device.exact) == (
        12000 * MIB,
        "sysctl-iogpu.wired_limit_mb",
        True,
    )


@pytest.mark.parametrize(("memsize", "limit"), [(16 * GIB, 16 * GIB * 2 // 3), (64 * GIB, 48 * GIB)])
def test_apple_estimate_from_total_memory(root: Path, memsize: int, limit: int) -> None:
    [device] = apple(root, metal=lambda: None, memsize=memsize, wired_mb=None).get_devices()
    assert (device.total_bytes, device.exact, device.source) == (limit, False, "estimate-from-hw.memsize")


def test_apple_metal_query_that_raises_is_noted(root: Path) -> None:
    def crash() -> int:
        raise OSError("Metal framework missing")

    gpu = apple(root, metal=crash, wired_mb="8192")
    assert gpu.get_devices()[0].total_bytes == 8 * GIB
    assert "Metal query failed: OSError" in probe(gpu, "metal").detail


def test_intel_mac_is_cpu_only(root: Path) -> None:
    gpu = manager(root, platform=("Darwin", "x86_64"), run=mac_runner(16 * GIB, "0"))
    assert gpu.get_backend() == "cpu" and gpu.get_available_memory_gb() == VM_STAT_AVAILABLE / GIB
    assert probe(gpu, "metal").status == "absent"


def test_metal_query_off_macos_returns_none() -> None:
    assert metal_recommended_working_set() is None


# ---------------------------------------------------------------------------------------- override


def test_argument_override_wins_and_report_shows_detection(root: Path) -> None:
    gpu = manager(root, vram_gb=12.5, nvml=two_gpus(), env={"MODEL_MANAGER_VRAM_GB": "8"})
    assert (gpu.get_available_memory_gb(), gpu.get_total_memory_gb(), gpu.get_largest_device_gb()) == (
        12.5,
    ) * 3
    report = gpu.report()
    assert (report.override_gb, report.override_source, report.backend) == (12.5, "argument", "cuda")
    assert report.detected_available_gb == pytest.approx(usable(70 * GIB) + usable(30 * GIB))


def test_env_override_skips_probing(root: Path) -> None:
    nvml = two_gpus()
    gpu = manager(root, nvml=nvml, env={"MODEL_MANAGER_VRAM_GB": "24"})
    assert gpu.get_available_memory_gb() == 24.0
    assert nvml.inits == 0
    assert gpu.report().to_dict()["override"] == {"gb": 24.0, "source": "MODEL_MANAGER_VRAM_GB"}


@pytest.mark.parametrize("value", ["lots", "-1", "inf", "nan"])
def test_bad_override_is_refused(root: Path, value: str) -> None:
    with pytest.raises(InvalidRequestError, match="MODEL_MANAGER_VRAM_GB"):
        manager(root, env={"MODEL_MANAGER_VRAM_GB": value})


def test_blank_override_means_detect(root: Path) -> None:
    assert manager(root, env={"MODEL_MANAGER_VRAM_GB": " "}).override_gb is None


# ------------------------------------------------------------------------------- invariants, report


@pytest.mark.parametrize("free", [0, 100 * MIB, CUDA_RESERVE_BYTES, 5 * GIB, 80 * GIB, 90 * GIB])
def test_usable_never_negative_nor_above_total(root: Path, free: int) -> None:
    [device] = manager(root, nvml=FakeNvml([FakeGpu("GPU-a", total=80 * GIB, free=free)])).get_devices()
    assert 0 <= device.usable_bytes <= device.total_bytes
    assert device.free_bytes <= device.total_bytes


def test_report_is_json_and_names_every_probe(root: Path) -> None:
    data = json.loads(json.dumps(manager(root, nvml=two_gpus()).report().to_dict()))
    assert [p["probe"] for p in data["probes"]] == [
        "nvml",
        "nvidia-smi",
        "amd-sysfs",
        "amdsmi",
        "intel-sysfs",
        "metal",
        "cpu",
    ]
    assert data["backend"] == "cuda" and data["devices"][0]["accuracy"] == "exact"


def test_probe_report_script_prints_json() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MODEL_MANAGER_VRAM_GB"}
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gpu_probe_report.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    data = json.loads(done.stdout)
    assert data["report"]["available_gb"] > 0
    assert {p["probe"] for p in data["report"]["probes"]} >= {"nvml", "cpu"}


def test_nvml_reports_each_gpus_compute_capability_which_mig_instances_share(root: Path) -> None:
    # Ollama's flash-attention rule reads it (ml/device.go cudaFlashAttentionSupported).
    migs: list[FakeGpu | None] = [FakeGpu("MIG-a", total=10 * GIB, free=9 * GIB)]
    gpus = [
        FakeGpu("GPU-a", compute=(8, 6)),
        FakeGpu("GPU-b", bus="00000000:02:00.0"),
        FakeGpu("GPU-c", bus="00000000:03:00.0", compute=(9, 0), migs=migs),
    ]
    devices = [d for d in manager(root, nvml=FakeNvml(gpus)).report().devices if d.backend == "cuda"]
    assert [(d.id, d.compute_capability) for d in devices] == [
        ("GPU-a", "8.6"),
        ("GPU-b", ""),
        ("MIG-a", "9.0"),
    ]
    assert devices[0].to_dict()["compute_capability"] == "8.6"


def test_the_override_says_where_it_came_from(root: Path) -> None:
    assert manager(root, env={"MODEL_MANAGER_VRAM_GB": "12"}).override_source == "MODEL_MANAGER_VRAM_GB"
    assert manager(root, vram_gb=12).override_source == "argument"
    assert manager(root).override_source == ""
