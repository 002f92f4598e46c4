"""GPUManager: how much memory a model can use on this machine now.

Probes run in the order of the design note (docs/gpu.md): on macOS arm64 the Metal probe; elsewhere
NVML (nvidia-smi if NVML cannot load), AMD sysfs (amdsmi if sysfs has no topology), Intel sysfs; and
always the CPU record. Each runs inside its own ``try`` so one that raises is recorded, never fatal.

The answer comes from one group of devices, never a mix: devices are grouped by backend and by
integrated/discrete, a discrete group beats an integrated one, and within that the group with the most
usable memory wins (ties go to cuda, rocm, levelzero, metal). Only when no visible, usable GPU exists is
the CPU record (available RAM, cgroup-bounded) used. Per device, usable = free - reserve; a device
with less than ``MIN_DEVICE_BYTES`` usable cannot hold layers and adds nothing, as in Ollama.

Enumeration is cached until ``refresh()``; free memory is re-read when older than ``ttl_s``.
"""

from __future__ import annotations

import math
import os
import platform
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from ..config import parse_gb, process_environment
from ..ollama_defaults import runtime_settings
from ..units import GIB
from . import amd, apple, intel, nvidia
from .host import HostMemory, host_memory
from .records import (
    BACKENDS,
    DeviceSlot,
    GpuDevice,
    ProbeOutcome,
    ProbeResult,
    Reading,
    Runner,
    System,
    make_runner,
)

VRAM_ENV = "MODEL_MANAGER_VRAM_GB"
OVERHEAD_ENV = "OLLAMA_GPU_OVERHEAD"
MIN_DEVICE_BYTES = GIB


@dataclass(frozen=True)
class DetectionReport:
    """What each probe saw and why its devices were used or not, plus the resulting numbers (GiB)."""

    backend: str
    available_gb: float
    total_gb: float
    largest_device_gb: float
    detected_available_gb: float
    override_gb: float | None
    override_source: str
    platform: str
    probes: tuple[ProbeOutcome, ...]
    devices: tuple[GpuDevice, ...]
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "available_gb": round(self.available_gb, 3),
            "total_gb": round(self.total_gb, 3),
            "largest_device_gb": round(self.largest_device_gb, 3),
            "detected_available_gb": round(self.detected_available_gb, 3),
            "override": None
            if self.override_gb is None
            else {"gb": self.override_gb, "source": self.override_source},
            "platform": self.platform,
            "probes": [p.to_dict() for p in self.probes],
            "devices": [d.to_dict() for d in self.devices],
            "notes": list(self.notes),
        }


def parse_override(value: float | str | None, source: str) -> float | None:
    """A VRAM override in GiB (``config.parse_gb``'s rule), or None when unset.

    Raises InvalidRequestError naming ``source`` for anything else.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return parse_gb(value, source)


class GPUManager:
    """Detects GPUs (NVIDIA, AMD, Apple, Intel) or falls back to RAM, and reports usable memory in GiB.

    Every outside dependency can be injected: ``env`` (visibility variables and the override),
    ``root`` (a filesystem root for /proc and /sys), ``nvml`` and ``amdsmi`` (module objects), ``run``
    (command runner), ``platform`` (``(system, machine)``) and ``metal`` (Metal query). ``vram_gb``
    and then ``MODEL_MANAGER_VRAM_GB`` override detection.

    Raises InvalidRequestError when the override is not a finite number >= 0.
    """

    def __init__(
        self,
        vram_gb: float | None = None,
        *,
        env: Mapping[str, str] | None = None,
        root: str | os.PathLike[str] = "/",
        nvml: Any | None = None,
        amdsmi: Any | None = None,
        run: Runner | None = None,
        platform: tuple[str, str] | None = None,
        metal: Callable[[], int | None] | None = None,
        ttl_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        env = process_environment() if env is None else env
        self._override, self._override_source = self._read_override(vram_gb, env)
        system, machine = platform if platform is not None else _this_platform()
        self._system = System(Path(root), env, run or make_runner(env), system, machine)
        self._nvml, self._amdsmi = nvml, amdsmi
        self._metal = metal or apple.metal_recommended_working_set
        self._ttl_s, self._clock = ttl_s, clock
        self._lock = threading.RLock()
        self._slots: list[DeviceSlot] | None = None
        self._results: list[tuple[str, ProbeResult]] = []
        self._readings: list[Reading | BaseException] = []
        self._read_at = -math.inf
        self._notes: list[str] = []

    @staticmethod
    def _read_override(vram_gb: float | None, env: Mapping[str, str]) -> tuple[float | None, str]:
        if vram_gb is not None:
            return parse_override(vram_gb, "vram_gb"), "argument"
        value = parse_override(env.get(VRAM_ENV), VRAM_ENV)
        return value, VRAM_ENV if value is not None else ""

    # ------------------------------------------------------------------------------------ public API

    @property
    def override_gb(self) -> float | None:
        """The override in force (argument, else ``MODEL_MANAGER_VRAM_GB``), or None."""
        return self._override

    @property
    def override_source(self) -> str:
        """Where the override came from: ``argument`` or ``MODEL_MANAGER_VRAM_GB``; empty without one."""
        return self._override_source

    def get_available_memory_gb(self) -> float:
        """GiB a model can use now: the override, else the sum of usable memory in the chosen group."""
        return self._override if self._override is not None else self._summary().available / GIB

    def get_total_memory_gb(self) -> float:
        """GiB of total memory in the chosen group (the override when one is set)."""
        return self._override if self._override is not None else self._summary().total / GIB

    def get_largest_device_gb(self) -> float:
        """Usable GiB of the best single device, for runtimes that cannot split a model."""
        return self._override if self._override is not None else self._summary().largest / GIB

    def get_host_available_gb(self) -> float:
        """GiB of host RAM available now (bounded by the container's cgroup), where layers that do not
        fit on the GPU run; independent of the override, which speaks of GPU memory only."""
        return self._host().available / GIB

    def get_backend(self) -> str:
        """The backend the numbers come from: cuda, rocm, levelzero, metal or cpu."""
        return self._summary().backend

    def get_devices(self) -> list[GpuDevice]:
        """Visible devices of every backend in runtime order, plus the CPU record when it is the answer."""
        with self._lock:
            devices = self._devices()
            backend = _summarize(devices).backend
            return [d for d in devices if d.visible and (d.backend != "cpu" or backend == "cpu")]

    def report(self) -> DetectionReport:
        """What each probe saw and why it was used or skipped (for diagnostics and bug reports)."""
        with self._lock:
            devices = self._devices()
            found = _summarize(devices)
            override = self._override
            return DetectionReport(
                backend=found.backend,
                available_gb=override if override is not None else found.available / GIB,
                total_gb=override if override is not None else found.total / GIB,
                largest_device_gb=override if override is not None else found.largest / GIB,
                detected_available_gb=found.available / GIB,
                override_gb=override,
                override_source=self._override_source,
                platform=f"{self._system.system} {self._system.machine}",
                probes=tuple(_outcome(name, result, found.backend) for name, result in self._results),
                devices=tuple(devices),
                notes=tuple(self._notes),
            )

    def refresh(self) -> None:
        """Forget the cached enumeration and probe again (after a driver load, a hot-plug, a MIG change)."""
        with self._lock:
            self._close_probes()
            self._slots = None
            self._discover()

    def close(self) -> None:
        """Release driver handles (NVML, amdsmi). The manager re-probes if it is used again."""
        with self._lock:
            self._close_probes()
            self._slots = None

    def __enter__(self) -> GPUManager:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------------------------- internals

    def _summary(self) -> _Summary:
        with self._lock:
            return _summarize(self._devices())

    def _devices(self) -> list[GpuDevice]:
        if self._slots is None:
            self._discover()
        assert self._slots is not None
        if self._clock() - self._read_at >= self._ttl_s:
            self._readings = [self._read(slot) for slot in self._slots]
            self._read_at = self._clock()
        counters: dict[str, int] = {}
        devices: list[GpuDevice] = []
        for slot, reading in zip(self._slots, self._readings, strict=True):
            index = None
            if slot.visible:
                index = counters.get(slot.backend, 0)
                counters[slot.backend] = index + 1
            devices.append(_device(slot, reading, index))
        return devices

    @staticmethod
    def _read(slot: DeviceSlot) -> Reading | BaseException:
        try:
            return slot.read()
        except Exception as exc:  # one device failing (GpuIsLost, a vanished file) must not hide the rest
            return exc

    def _discover(self) -> None:
        self._results, self._notes = [], []
        overhead = self._overhead()
        for name, probe in self._plan():
            try:
                result = probe()
            except Exception as exc:  # a probe that throws is recorded, never fatal
                result = ProbeResult("failed", f"{type(exc).__name__}: {exc}")
            for slot in result.slots:
                if slot.backend != "cpu":
                    slot.reserve += overhead
            self._results.append((name, result))
        self._slots = [slot for _, result in self._results for slot in result.slots]
        self._read_at = -math.inf

    def _plan(self) -> list[tuple[str, Callable[[], ProbeResult]]]:
        """The probes for this platform, in order; one that does not apply reports ``skipped``."""
        system, host = self._system, self._host
        if system.system == "Darwin":
            why = "macOS: Ollama uses Metal (Apple Silicon) or the CPU"
            plan = [
                (name, _skip(why)) for name in ("nvml", "nvidia-smi", "amd-sysfs", "amdsmi", "intel-sysfs")
            ]
            return [
                *plan,
                ("metal", lambda: apple.probe_apple(system, self._metal, host)),
                ("cpu", self._cpu_probe),
            ]
        plan = [
            ("nvml", lambda: nvidia.probe_nvml(system, self._nvml, host)),
            ("nvidia-smi", self._nvidia_smi),
        ]
        if system.system == "Linux":
            plan += [
                ("amd-sysfs", lambda: amd.probe_amd_sysfs(system, host)),
                ("amdsmi", self._amdsmi_probe),
                ("intel-sysfs", lambda: intel.probe_intel(system)),
            ]
        else:
            plan += [
                (name, _skip(f"Linux only; this is {system.system}"))
                for name in ("amd-sysfs", "amdsmi", "intel-sysfs")
            ]
        return [*plan, ("metal", _skip("Apple Silicon only")), ("cpu", self._cpu_probe)]

    def _answered(self, name: str) -> bool:
        return any(probe == name and result.slots for probe, result in self._results)

    def _nvidia_smi(self) -> ProbeResult:
        if self._answered("nvml"):
            return ProbeResult("skipped", "NVML answered")
        return nvidia.probe_nvidia_smi(self._system, self._host)

    def _amdsmi_probe(self) -> ProbeResult:
        """amdsmi only where sysfs could not answer and an AMD driver (or an injected module) is there."""
        if self._answered("amd-sysfs"):
            return ProbeResult("skipped", "sysfs answered")
        if self._amdsmi is None and not self._system.path("/sys/module/amdgpu").exists():
            return ProbeResult("skipped", "amdgpu kernel module not loaded")
        return amd.probe_amdsmi(self._system, self._amdsmi)

    def _host(self) -> HostMemory:
        return host_memory(self._system)

    def _cpu_probe(self) -> ProbeResult:
        first = self._host()

        def read() -> Reading:
            memory = self._host()
            return Reading(memory.total, memory.available, memory.exact, memory.source, False, memory.detail)

        return ProbeResult("found", first.detail, [DeviceSlot("cpu", "cpu", "System RAM", 0, read)])

    def _overhead(self) -> int:
        """Ollama's ``OLLAMA_GPU_OVERHEAD`` (bytes kept free per GPU, parsed as Ollama parses it)."""
        raw = self._system.env.get(OVERHEAD_ENV, "").strip()
        if not raw:
            return 0
        value = runtime_settings(self._system.env).gpu_overhead_bytes
        self._notes.append(f"{OVERHEAD_ENV}={raw!r}: {value} bytes added to every GPU's reserve")
        return value

    def _close_probes(self) -> None:
        for name, result in self._results:
            if result.close is not None:
                try:
                    result.close()
                except Exception as exc:  # shutting a driver down must not raise into the caller
                    self._notes.append(f"{name}: close failed: {type(exc).__name__}: {exc}")
        self._results = []


def _this_platform() -> tuple[str, str]:
    return platform.system(), platform.machine()


def _skip(why: str) -> Callable[[], ProbeResult]:
    return lambda: ProbeResult("skipped", why)


@dataclass(frozen=True)
class _Summary:
    """The chosen group's numbers, in bytes."""

    backend: str
    available: int
    total: int
    largest: int


def _summarize(devices: list[GpuDevice]) -> _Summary:
    """Pick one group (see the module docstring) and add up its devices."""
    groups: dict[tuple[str, bool], list[GpuDevice]] = {}
    for device in devices:
        if device.backend != "cpu" and device.visible and not device.problem:
            groups.setdefault((device.backend, device.integrated), []).append(device)
    if not groups:
        groups[("cpu", False)] = [d for d in devices if d.backend == "cpu"]

    def counted(key: tuple[str, bool]) -> list[int]:
        return [d.usable_bytes for d in groups[key] if d.usable_bytes >= MIN_DEVICE_BYTES or key[0] == "cpu"]

    def rank(key: tuple[str, bool]) -> tuple[bool, int, int]:
        return (not key[1], sum(counted(key)), -BACKENDS.index(key[0]))

    best = max(groups, key=rank)
    usable = counted(best)
    return _Summary(best[0], sum(usable), sum(d.total_bytes for d in groups[best]), max(usable, default=0))


def _outcome(name: str, result: ProbeResult, backend: str) -> ProbeOutcome:
    status = result.status
    if status == "found" and result.slots:
        status = "used" if any(slot.backend == backend for slot in result.slots) else "found"
    return ProbeOutcome(name, status, result.detail, tuple(slot.id for slot in result.slots))


def _device(slot: DeviceSlot, reading: Reading | BaseException, index: int | None) -> GpuDevice:
    if isinstance(reading, BaseException):
        failed = f"memory read failed: {type(reading).__name__}: {reading}"
        return GpuDevice(
            slot.backend,
            index,
            slot.id,
            slot.name,
            0,
            0,
            slot.reserve,
            slot.integrated,
            "",
            False,
            slot.pci_id,
            slot.visible,
            slot.problem or failed,
            slot.note,
            slot.compute_capability,
        )
    notes = "; ".join(n for n in (slot.note, reading.note) if n)
    integrated = slot.integrated if reading.integrated is None else reading.integrated
    return GpuDevice(
        backend=slot.backend,
        index=index,
        id=slot.id,
        name=slot.name,
        total_bytes=max(0, reading.total),
        free_bytes=max(0, min(reading.free, reading.total)),
        reserve_bytes=slot.reserve,
        integrated=integrated,
        source=reading.source,
        exact=reading.exact and not slot.approximate,
        pci_id=slot.pci_id,
        visible=slot.visible,
        problem=slot.problem,
        note=notes,
        compute_capability=slot.compute_capability,
    )
