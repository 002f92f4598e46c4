"""AMD on Linux: sysfs first (what Ollama reads, no dependencies), ``amdsmi`` only where it imports.

The KFD topology (``/sys/class/kfd/kfd/topology/nodes/<N>/properties``, decimal values, numeric node
order) gives ROCm's device list: ``gfx_target_version`` 0 is a CPU node or a masked GPU. Each GPU's
``drm_render_minor`` leads to ``/sys/class/drm/renderD<minor>/device``, whose ``mem_info_vram_total``
and ``mem_info_vram_used`` (bytes) give free memory; KFD's own ``used_memory`` ignores other VRAM users,
which is why Ollama stopped reading it. An APU (VRAM <= 4 GiB, GTT >= 8 GiB and >= 4x VRAM, no
``board_info``/``mem_info_vram_vendor``) is integrated: VRAM carve-out plus GTT, which is host RAM.

Visibility: ``ROCR_VISIBLE_DEVICES`` (indices or ``GPU-<unique_id hex>``) is applied by the ROCm
runtime first; ``HIP_VISIBLE_DEVICES`` (else ``GPU_DEVICE_ORDINAL``) then picks from what it left,
as ROCm's PyTorch notes ("the ROCR env var is processed first which then reduces the number of GPUs
that HIP can select from"). A GPU older than gfx9, or a ``/dev/kfd`` this user cannot open, is
reported as present but not usable.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import io
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..units import GIB
from .host import HostMemory
from .records import (
    ROCM_RESERVE_BYTES,
    DeviceSlot,
    ProbeResult,
    Reading,
    System,
    as_text,
    leading_int,
)

KFD_NODES = "/sys/class/kfd/kfd/topology/nodes"
AMD_VENDOR_ID = 0x1002
MIN_GFX_MAJOR = 9

HostReader = Callable[[], HostMemory]


@dataclass
class KfdGpu:
    """One GPU node of the KFD topology, joined with its DRM device directory when found."""

    node: int
    gfx: int
    device_id: int
    unique_id: int
    banks_total: int
    drm: Path | None = None
    pci_id: str = ""
    integrated: bool = False

    @property
    def uuid(self) -> str:
        return f"GPU-{self.unique_id:016x}" if self.unique_id else ""

    @property
    def gfx_name(self) -> str:
        """``gfx1100`` from 110000: major in decimal, minor and stepping in hex."""
        major, minor, step = self.gfx // 10000, (self.gfx // 100) % 100, self.gfx % 100
        return f"gfx{major}{minor:x}{step:x}"


def parse_properties(text: str) -> dict[str, int]:
    """KFD ``properties`` files: one ``key value`` pair per line, decimal."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            values[parts[0]] = int(parts[1])
    return values


def kfd_gpus(system: System) -> tuple[list[KfdGpu], list[str]] | None:
    """GPU nodes in KFD order and notes on skipped nodes, or None without a readable topology."""
    top = system.path(KFD_NODES)
    if not top.is_dir():
        return None
    gpus: list[KfdGpu] = []
    notes: list[str] = []
    for node_dir in sorted((p for p in top.iterdir() if p.name.isdigit()), key=lambda p: int(p.name)):
        props = parse_properties(system.read(node_dir / "properties") or "")
        gfx, device_id = props.get("gfx_target_version", 0), props.get("device_id", 0)
        if gfx == 0:
            if device_id:
                notes.append(f"node {node_dir.name}: GPU 0x{device_id:04x} with gfx 0.0.0 (masked), skipped")
            continue
        banks = sum(
            parse_properties(system.read(bank / "properties") or "").get("size_in_bytes", 0)
            for bank in sorted((node_dir / "mem_banks").glob("*"))
        )
        gpu = KfdGpu(int(node_dir.name), gfx, device_id, props.get("unique_id", 0), banks)
        _attach_drm(system, gpu, props.get("drm_render_minor", 0))
        gpus.append(gpu)
    return gpus, notes


def _attach_drm(system: System, gpu: KfdGpu, minor: int) -> None:
    if minor <= 0:
        return
    link = system.path(f"/sys/class/drm/renderD{minor}/device")
    if not link.exists() or system.read_int(link / "vendor") != AMD_VENDOR_ID:
        return
    gpu.drm = link.resolve()
    slot = re.search(r"^PCI_SLOT_NAME=(\S+)$", system.read(gpu.drm / "uevent") or "", re.M)
    gpu.pci_id = slot.group(1).lower() if slot else (gpu.drm.name if ":" in gpu.drm.name else "")
    vram = system.read_int(gpu.drm / "mem_info_vram_total") or 0
    gtt = system.read_int(gpu.drm / "mem_info_gtt_total") or 0
    known_discrete = (gpu.drm / "mem_info_vram_vendor").exists() or (gpu.drm / "board_info").exists()
    gpu.integrated = not known_discrete and vram <= 4 * GIB and gtt >= 8 * GIB and gtt >= 4 * vram


def sysfs_reading(system: System, gpu: KfdGpu, host: HostReader) -> Reading:
    """Live memory of one KFD GPU. Raises OSError when sysfs has no size for it at all."""
    drm = gpu.drm
    total = system.read_int(drm / "mem_info_vram_total") if drm else None
    if drm is None or total is None:
        if not gpu.banks_total:
            raise OSError(f"no VRAM size in sysfs for KFD node {gpu.node}")
        note = "no DRM memory files: size from KFD mem_banks, free assumed equal to total"
        return Reading(gpu.banks_total, gpu.banks_total, False, "kfd", note=note)
    used = system.read_int(drm / "mem_info_vram_used")
    if used is None:
        return Reading(
            total, total, False, "sysfs", note="mem_info_vram_used missing: free assumed equal to total"
        )
    free = max(0, total - used)
    if not gpu.integrated:
        return Reading(total, free, True, "sysfs")
    gtt_total = system.read_int(drm / "mem_info_gtt_total") or 0
    gtt_free = max(0, gtt_total - (system.read_int(drm / "mem_info_gtt_used") or 0))
    gtt_free = min(gtt_free, host().available)
    note = "integrated: VRAM carve-out plus GTT (host RAM, bounded by available RAM)"
    return Reading(total + gtt_total, free + gtt_free, True, "sysfs+gtt", True, note)


def kfd_problem(exc: OSError) -> str:
    """Why ROCm cannot use the GPUs when ``/dev/kfd`` does not open read-write."""
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "no permission to open /dev/kfd: add the user to the 'render' and 'video' groups"
    if exc.errno == errno.ENOENT:
        return "/dev/kfd is missing: in a container pass --device /dev/kfd --device /dev/dri"
    return f"/dev/kfd cannot be opened: {exc.strerror or exc}"


def kfd_access_problem(system: System) -> str:
    try:
        fd = os.open(system.path("/dev/kfd"), os.O_RDWR)
    except OSError as exc:
        return kfd_problem(exc)
    os.close(fd)
    return ""


def select_visible(uuids: list[str], env: Mapping[str, str]) -> tuple[list[int], dict[int, str]]:
    """Positions (into ``uuids``) left visible by the ROCm variables, in order, and why others are hidden."""
    order = list(range(len(uuids)))
    hidden: dict[int, str] = {}
    second = "HIP_VISIBLE_DEVICES" if "HIP_VISIBLE_DEVICES" in env else "GPU_DEVICE_ORDINAL"
    for name in ("ROCR_VISIBLE_DEVICES", second):
        if name not in env:
            continue
        kept = _pick(order, env[name], uuids)
        hidden.update({pos: f"hidden by {name}={env[name]}" for pos in order if pos not in kept})
        order = kept
    return order, hidden


def _pick(candidates: list[int], value: str, uuids: list[str]) -> list[int]:
    """Entries are indices into ``candidates`` or GPU UUIDs; the first that names nothing ends the list."""
    picked: list[int] = []
    for raw in value.split(","):
        item = raw.strip()
        if item.upper().startswith("GPU-"):
            found = next(
                (pos for pos in candidates if uuids[pos] and uuids[pos].lower() == item.lower()), None
            )
        else:
            number = leading_int(item)
            found = candidates[number] if 0 <= number < len(candidates) else None
        if found is None:
            break
        if found not in picked:
            picked.append(found)
    return picked


def _slots(
    names: list[tuple[str, str, str]],
    readers: list[Callable[[], Reading]],
    env: Mapping[str, str],
    problems: list[str],
) -> list[DeviceSlot]:
    """``names``: (id, name, pci id) per GPU in runtime order; visible ones come first."""
    visible, hidden = select_visible([uuid for uuid, _, _ in names], env)
    order = visible + [pos for pos in range(len(names)) if pos not in visible]
    return [
        DeviceSlot(
            backend="rocm",
            id=names[pos][0],
            name=names[pos][1],
            reserve=ROCM_RESERVE_BYTES,
            read=readers[pos],
            pci_id=names[pos][2],
            visible=pos in visible,
            problem=problems[pos],
            note=hidden.get(pos, ""),
        )
        for pos in order
    ]


def probe_amd_sysfs(system: System, host: HostReader) -> ProbeResult:
    """AMD GPUs from the KFD topology and DRM sysfs files."""
    if system.system != "Linux":
        return ProbeResult("skipped", f"reads Linux sysfs; this is {system.system}")
    if not system.path("/sys/module/amdgpu").exists():
        return ProbeResult("absent", "amdgpu kernel module not loaded")
    found = kfd_gpus(system)
    if found is None:
        return ProbeResult("absent", f"amdgpu loaded but {KFD_NODES} is not readable")
    gpus, notes = found
    if not gpus:
        return ProbeResult("absent", "; ".join(["KFD topology lists no GPU node", *notes]))
    access = kfd_access_problem(system)
    problems = [access or _gfx_problem(gpu) for gpu in gpus]
    names = [
        (gpu.uuid or gpu.pci_id or f"kfd-node-{gpu.node}", _name(system, gpu), gpu.pci_id) for gpu in gpus
    ]
    readers = [_bind(system, gpu, host) for gpu in gpus]
    detail = "; ".join([f"KFD: {len(gpus)} GPU(s) ({', '.join(g.gfx_name for g in gpus)})", *notes])
    return ProbeResult("found", detail, _slots(names, readers, system.env, problems))


def _bind(system: System, gpu: KfdGpu, host: HostReader) -> Callable[[], Reading]:
    return lambda: sysfs_reading(system, gpu, host)


def _gfx_problem(gpu: KfdGpu) -> str:
    if gpu.gfx // 10000 < MIN_GFX_MAJOR:
        return f"{gpu.gfx_name} is older than gfx900: ROCm does not support it"
    return ""


def _name(system: System, gpu: KfdGpu) -> str:
    product = (system.read(gpu.drm / "product_name") or "").strip() if gpu.drm else ""
    return product or f"AMD {gpu.gfx_name} (0x{gpu.device_id:04x})"


# -------------------------------------------------------------------------------------------- amdsmi


def load_amdsmi() -> tuple[Any | None, str]:
    """The amdsmi module, or ``(None, why not)``.

    Without ``libamd_smi.so`` the import prints to stdout and raises KeyError, not ImportError, so
    stdout is captured and any exception is caught.
    """
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return importlib.import_module("amdsmi"), ""
    except Exception as exc:  # KeyError('libamd_smi.so') among others
        return None, f"amdsmi not importable ({type(exc).__name__}: {exc})"


def probe_amdsmi(system: System, amdsmi: Any | None) -> ProbeResult:
    """AMD GPUs through amdsmi, for hosts whose sysfs topology cannot be read."""
    sm, why = (amdsmi, "") if amdsmi is not None else load_amdsmi()
    if sm is None:
        return ProbeResult("absent", why)
    sm.amdsmi_init(sm.AmdSmiInitFlags.INIT_AMD_GPUS)
    handles = list(sm.amdsmi_get_processor_handles())
    if not handles:
        sm.amdsmi_shut_down()
        return ProbeResult("absent", "amdsmi lists no GPU")
    names = [_smi_identity(sm, handle) for handle in handles]
    readers = [_smi_reader(sm, handle) for handle in handles]
    problems = [kfd_access_problem(system)] * len(handles)
    slots = _slots(names, readers, system.env, problems)
    return ProbeResult("found", f"amdsmi: {len(handles)} GPU(s)", slots, close=sm.amdsmi_shut_down)


def _smi_identity(sm: Any, handle: Any) -> tuple[str, str, str]:
    def ask(call: Callable[[], Any]) -> Any:
        try:
            return call()
        except Exception:  # identity is cosmetic; a failing call must not drop the device
            return ""

    bdf = as_text(ask(lambda: sm.amdsmi_get_gpu_device_bdf(handle))).lower()
    uuid = as_text(ask(lambda: sm.amdsmi_get_gpu_device_uuid(handle)))
    info = ask(lambda: sm.amdsmi_get_gpu_asic_info(handle))
    name = as_text(info.get("market_name", "")) if isinstance(info, dict) else ""
    return uuid or bdf, name or "AMD GPU", bdf


def _smi_reader(sm: Any, handle: Any) -> Callable[[], Reading]:
    def read() -> Reading:
        total = int(sm.amdsmi_get_gpu_memory_total(handle, sm.AmdSmiMemoryType.VRAM))
        used = int(sm.amdsmi_get_gpu_memory_usage(handle, sm.AmdSmiMemoryType.VRAM))
        return Reading(total, max(0, total - used), True, "amdsmi")

    return read
