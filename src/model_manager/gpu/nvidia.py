"""NVIDIA: NVML through nvidia-ml-py (import name ``pynvml``), ``nvidia-smi`` when NVML cannot load.

Memory comes from the v2 query's ``free`` field (v1's ``used`` includes driver-reserved memory since
R510, so total - used is wrong); any NVML error from v2 falls back to v1, because old drivers lack the
symbol and WSL has answered v2 with "Unknown". A GPU whose memory query is not supported, or that
reports a total of 0, is a unified-memory part (DGX Spark/GB10, Jetson): it is reported from host RAM
and flagged integrated, as Ollama's ``mem_nvml.cpp`` does.

NVML ignores ``CUDA_VISIBLE_DEVICES``, so it is applied here with CUDA's parsing rules (as PyTorch's
``_parse_visible_devices`` mirrors them): numbers read like ``strtoul``, the first invalid or negative
entry ends the list, a repeated entry empties it, ``GPU-``/``MIG-`` entries are UUID prefixes. Numbers
are NVML (PCI-bus) indices; CUDA orders fastest-first unless ``CUDA_DEVICE_ORDER=PCI_BUS_ID``, so on a
box with different GPU models the mapping is marked as an estimate. MIG instances are devices of their
own, and a CUDA process sees at most one of them (nvitop keeps the first), so only the first visible
instance counts.
"""

from __future__ import annotations

import contextlib
import csv
import importlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..units import MIB
from .host import HostMemory
from .records import (
    CUDA_RESERVE_BYTES,
    CommandError,
    CommandNotFoundError,
    DeviceSlot,
    ProbeResult,
    Reading,
    System,
    as_text,
    leading_int,
)

NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18

SMI_QUERY = (
    "nvidia-smi",
    "--query-gpu=index,uuid,name,memory.total,memory.free,pci.bus_id",
    "--format=csv,noheader,nounits",
)

UNIFIED_NOTE = "memory query not supported: unified memory, reported from host RAM"

HostReader = Callable[[], HostMemory]


@dataclass
class _Unit:
    """Something CUDA can address: a whole GPU, or one MIG instance."""

    uuid: str
    name: str
    pci_id: str
    handle: Any = None
    mig: bool = False
    compute: str = ""


@dataclass
class _Gpu:
    """A physical GPU in NVML (PCI-bus) order; ``migs`` is None when MIG mode is off."""

    index: int
    unit: _Unit
    migs: list[_Unit] | None = None
    notes: list[str] = field(default_factory=list)

    def units(self) -> list[_Unit]:
        return [self.unit] if self.migs is None else self.migs


def parse_cuda_visible_devices(value: str | None) -> list[str] | None:
    """CUDA's reading of ``CUDA_VISIBLE_DEVICES``: None means all devices, ``[]`` none.

    Numeric entries come back as decimal strings, UUID entries unchanged.
    """
    if value is None:
        return None
    items = [item.strip() for item in value.split(",")]
    prefix = next((p for p in ("GPU-", "MIG-") if items[0].startswith(p)), None)
    entries: list[str] = []
    for item in items:
        if prefix is not None:
            if not item.startswith(prefix):
                break
            key = item
        else:
            number = leading_int(item)
            if number < 0:
                break
            key = str(number)
        if key in entries:
            return []
        entries.append(key)
    return entries


def _resolve(entry: str, gpus: list[_Gpu]) -> list[_Unit] | None:
    """The units one entry names, or None when it names nothing (or more than one thing)."""
    if entry.isdigit():
        gpu = next((g for g in gpus if g.index == int(entry)), None)
        return None if gpu is None else gpu.units()
    wanted = entry.lower()
    matches: list[list[_Unit]] = [g.units() for g in gpus if g.unit.uuid.lower().startswith(wanted)]
    matches += [[m] for g in gpus for m in g.migs or [] if m.uuid.lower().startswith(wanted)]
    return matches[0] if len(matches) == 1 else None


def select_visible(gpus: list[_Gpu], env: Mapping[str, str]) -> tuple[list[_Unit], dict[str, str], bool]:
    """Apply ``CUDA_VISIBLE_DEVICES``: ``(visible units in CUDA order, {hidden uuid: why}, approximate)``."""
    raw = env.get("CUDA_VISIBLE_DEVICES")
    spec = parse_cuda_visible_devices(raw)
    everything = [unit for gpu in gpus for unit in gpu.units()]
    chosen: list[_Unit] = []
    if spec is None:
        chosen = list(everything)
    else:
        for entry in spec:
            units = _resolve(entry, gpus)
            if units is None:
                break
            if any(unit in chosen for unit in units):
                chosen = []
                break
            chosen.extend(units)
    hidden = {u.uuid: f"hidden by CUDA_VISIBLE_DEVICES={raw}" for u in everything if u not in chosen}
    visible: list[_Unit] = []
    for unit in chosen:
        if unit.mig and any(v.mig for v in visible):
            hidden[unit.uuid] = "a CUDA process sees only one MIG instance; another one is used"
        else:
            visible.append(unit)
    numeric = bool(spec) and any(entry.isdigit() for entry in spec or [])
    mixed = len({gpu.unit.name for gpu in gpus}) > 1
    approximate = numeric and mixed and env.get("CUDA_DEVICE_ORDER", "") != "PCI_BUS_ID"
    return visible, hidden, approximate


def build_slots(
    gpus: list[_Gpu], env: Mapping[str, str], reader: Callable[[_Unit], Callable[[], Reading]]
) -> list[DeviceSlot]:
    """Visible devices first, in CUDA order, then the hidden ones."""
    visible, hidden, approximate = select_visible(gpus, env)
    order = visible + [u for gpu in gpus for u in gpu.units() if u not in visible]
    note = (
        "CUDA_DEVICE_ORDER is not PCI_BUS_ID: index-to-GPU mapping assumes PCI order" if approximate else ""
    )
    return [
        DeviceSlot(
            backend="cuda",
            id=unit.uuid,
            name=unit.name,
            reserve=CUDA_RESERVE_BYTES,
            read=reader(unit),
            pci_id=unit.pci_id,
            visible=unit in visible,
            note=hidden.get(unit.uuid, note if unit in visible else ""),
            approximate=approximate and unit in visible,
            compute_capability=unit.compute,
        )
        for unit in order
    ]


# ---------------------------------------------------------------------------------------------- NVML


def load_pynvml() -> tuple[Any | None, str]:
    """The nvidia-ml-py module, or ``(None, why not)``."""
    try:
        module = importlib.import_module("pynvml")
    except Exception as exc:  # an import can fail in many ways; none may hide the other probes
        return None, f"pynvml not importable ({type(exc).__name__}: {exc}); install nvidia-ml-py"
    if not hasattr(module, "_nvmlGetFunctionPointer"):
        return None, "the installed pynvml is not NVIDIA's nvidia-ml-py; install nvidia-ml-py"
    return module, ""


def _init_failure(exc: BaseException) -> ProbeResult:
    code = getattr(exc, "value", None)
    if code == NVML_ERROR_LIBRARY_NOT_FOUND:
        return ProbeResult("absent", "NVML library (libnvidia-ml) not found: no NVIDIA driver")
    if code == NVML_ERROR_DRIVER_NOT_LOADED:
        return ProbeResult("absent", "NVIDIA kernel driver not loaded")
    if code == NVML_ERROR_LIB_RM_VERSION_MISMATCH:
        return ProbeResult(
            "unusable", "NVIDIA driver/library version mismatch: reboot after the driver upgrade"
        )
    return ProbeResult("unusable", f"nvmlInit failed: {type(exc).__name__}: {exc}")


def probe_nvml(system: System, nvml: Any | None, host: HostReader) -> ProbeResult:
    """Enumerate NVIDIA GPUs and MIG instances through NVML."""
    nv, why = (nvml, "") if nvml is not None else load_pynvml()
    if nv is None:
        return ProbeResult("absent", why)
    error: type[BaseException] = nv.NVMLError
    try:
        nv.nvmlInit()
    except error as exc:
        return _init_failure(exc)
    try:
        gpus, problems = _enumerate(nv, error)
    except BaseException:
        _shutdown(nv, error)
        raise
    if not gpus:
        _shutdown(nv, error)
        return ProbeResult("absent", "; ".join(["NVML loaded but reports no usable GPU", *problems]))

    def reader(unit: _Unit) -> Callable[[], Reading]:
        return lambda: nvml_memory(nv, unit.handle, host)

    slots = build_slots(gpus, system.env, reader)
    detail = (
        f"NVML: {len(gpus)} GPU(s)"
        + "".join(f"; {n}" for g in gpus for n in g.notes)
        + "".join(f"; {p}" for p in problems)
    )
    return ProbeResult("found", detail, slots, close=lambda: _shutdown(nv, error))


def _shutdown(nv: Any, error: type[BaseException]) -> None:
    with contextlib.suppress(error):
        nv.nvmlShutdown()


def _enumerate(nv: Any, error: type[BaseException]) -> tuple[list[_Gpu], list[str]]:
    """Physical GPUs in NVML order; a GPU that fails (GpuIsLost, Unknown) is skipped and named."""
    gpus: list[_Gpu] = []
    problems: list[str] = []
    for index in range(int(nv.nvmlDeviceGetCount())):
        try:
            handle = nv.nvmlDeviceGetHandleByIndex(index)
            unit = _Unit(
                as_text(nv.nvmlDeviceGetUUID(handle)), as_text(nv.nvmlDeviceGetName(handle)), "", handle
            )
        except error as exc:
            problems.append(f"GPU {index} skipped: {type(exc).__name__}")
            continue
        unit.pci_id = _pci_id(nv, handle, error)
        unit.compute = _compute_capability(nv, handle, error)
        gpu = _Gpu(index, unit)
        if _mig_enabled(nv, handle, error):
            gpu.migs = _mig_units(nv, handle, unit.pci_id, error)
            for mig in gpu.migs:
                mig.compute = unit.compute
            gpu.notes.append(f"GPU {index} in MIG mode with {len(gpu.migs)} instance(s)")
        gpus.append(gpu)
    return gpus, problems


def _pci_id(nv: Any, handle: Any, error: type[BaseException]) -> str:
    try:
        bus_id = as_text(nv.nvmlDeviceGetPciInfo(handle).busId).lower()
    except (error, AttributeError):
        return ""
    # NVML writes an 8-digit domain (00000000:18:00.0); sysfs and lspci use 4 digits.
    domain, _, rest = bus_id.partition(":")
    return f"{domain[-4:]}:{rest}" if rest else bus_id


def _compute_capability(nv: Any, handle: Any, error: type[BaseException]) -> str:
    """ "major.minor" (Ollama's flash-attention rule reads it), or "" when NVML cannot say."""
    try:
        major, minor = nv.nvmlDeviceGetCudaComputeCapability(handle)
    except (error, AttributeError, TypeError, ValueError):  # old drivers lack the call
        return ""
    return f"{int(major)}.{int(minor)}"


def _mig_enabled(nv: Any, handle: Any, error: type[BaseException]) -> bool:
    try:
        current = nv.nvmlDeviceGetMigMode(handle)[0]
    except (error, AttributeError):  # NotSupported on GPUs without MIG, FunctionNotFound on old drivers
        return False
    return bool(current == getattr(nv, "NVML_DEVICE_MIG_ENABLE", 1))


def _mig_units(nv: Any, handle: Any, pci_id: str, error: type[BaseException]) -> list[_Unit]:
    units: list[_Unit] = []
    for slot in range(int(nv.nvmlDeviceGetMaxMigDeviceCount(handle))):
        try:
            mig = nv.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)
        except error:  # an empty slot answers NotFound
            continue
        units.append(
            _Unit(as_text(nv.nvmlDeviceGetUUID(mig)), as_text(nv.nvmlDeviceGetName(mig)), pci_id, mig, True)
        )
    return units


def nvml_memory(nv: Any, handle: Any, host: HostReader) -> Reading:
    """Free and total memory of one handle: v2, then v1, then host RAM for unified-memory parts.

    Raises the module's NVMLError when the device fails (GpuIsLost, Unknown).
    """
    error: type[BaseException] = nv.NVMLError
    info, source = None, "nvml"
    version = getattr(nv, "nvmlMemory_v2", None)
    if version is not None:
        try:
            info, source = nv.nvmlDeviceGetMemoryInfo(handle, version=version), "nvml-v2"
        except (error, TypeError):  # FunctionNotFound on old drivers, Unknown under WSL
            info = None
    if info is None:
        try:
            info, source = nv.nvmlDeviceGetMemoryInfo(handle), "nvml-v1"
        except error as exc:
            if getattr(exc, "value", None) != NVML_ERROR_NOT_SUPPORTED:
                raise
    if info is None or int(info.total) == 0:
        return unified_reading(host(), "nvml")
    return Reading(int(info.total), int(info.free), True, source)


def unified_reading(memory: HostMemory, via: str) -> Reading:
    return Reading(memory.total, memory.available, memory.exact, f"{via}+{memory.source}", True, UNIFIED_NOTE)


# ---------------------------------------------------------------------------------------- nvidia-smi


@dataclass(frozen=True)
class SmiRow:
    """One line of the nvidia-smi query; memory in MiB, None when nvidia-smi prints [N/A]."""

    index: int
    uuid: str
    name: str
    total_mib: int | None
    free_mib: int | None
    pci_id: str


def parse_nvidia_smi(text: str) -> list[SmiRow]:
    """Rows of ``nvidia-smi --query-gpu=index,uuid,name,memory.total,memory.free,pci.bus_id
    --format=csv,noheader,nounits``. Lines that do not have six fields are skipped."""
    rows: list[SmiRow] = []
    for fields in csv.reader(text.splitlines(), skipinitialspace=True):
        if len(fields) != 6 or not fields[0].strip().isdigit():
            continue
        index, uuid, name, total, free, bus = (f.strip() for f in fields)
        domain, _, rest = bus.lower().partition(":")
        rows.append(
            SmiRow(int(index), uuid, name, _mib(total), _mib(free), f"{domain[-4:]}:{rest}" if rest else bus)
        )
    return rows


def _mib(text: str) -> int | None:
    try:
        return int(float(text))
    except ValueError:
        return None  # "[N/A]", "[Not Supported]"


class _SmiSnapshot:
    """One nvidia-smi run serves every device's refresh (reruns after ``max_age_s``)."""

    def __init__(self, system: System, rows: list[SmiRow], max_age_s: float = 0.5) -> None:
        self._system, self._max_age_s = system, max_age_s
        self._rows, self._at = {r.uuid: r for r in rows}, time.monotonic()

    def row(self, uuid: str) -> SmiRow:
        if time.monotonic() - self._at > self._max_age_s:
            self._rows = {r.uuid: r for r in parse_nvidia_smi(self._system.run(SMI_QUERY))}
            self._at = time.monotonic()
        if uuid not in self._rows:
            raise CommandError(f"nvidia-smi no longer lists {uuid}")
        return self._rows[uuid]


def probe_nvidia_smi(system: System, host: HostReader) -> ProbeResult:
    """The fallback when NVML cannot load: one ``nvidia-smi`` query (MIG instances are not listed)."""
    try:
        text = system.run(SMI_QUERY)
    except CommandNotFoundError as exc:
        return ProbeResult("absent", str(exc))
    except CommandError as exc:
        return ProbeResult("unusable", str(exc))
    rows = parse_nvidia_smi(text)
    if not rows:
        return ProbeResult("absent", "nvidia-smi listed no GPU")
    snapshot = _SmiSnapshot(system, rows)

    def reader(unit: _Unit) -> Callable[[], Reading]:
        return lambda: _smi_reading(snapshot.row(unit.uuid), host)

    gpus = [_Gpu(r.index, _Unit(r.uuid, r.name, r.pci_id)) for r in rows]
    return ProbeResult("found", f"nvidia-smi: {len(rows)} GPU(s)", build_slots(gpus, system.env, reader))


def _smi_reading(row: SmiRow, host: HostReader) -> Reading:
    if row.total_mib is None or row.free_mib is None or row.total_mib == 0:
        return unified_reading(host(), "nvidia-smi")
    return Reading(row.total_mib * MIB, row.free_mib * MIB, True, "nvidia-smi")
