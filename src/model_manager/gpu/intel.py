"""Intel, best effort: sysfs lists the GPUs; memory use is not readable without Level Zero.

An integrated GPU shares host RAM, so it is left to the CPU path. A discrete card (i915 exposes
``lmem_total_bytes``) is listed with its size, but its free memory cannot be read from sysfs, so it is
reported as not usable (set ``MODEL_MANAGER_VRAM_GB`` to use it), as Ollama kept Intel behind an opt-in.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .records import CUDA_RESERVE_BYTES, DeviceSlot, ProbeResult, Reading, System

INTEL_VENDOR_ID = 0x8086
UNKNOWN_FREE = "free memory unknown without Level Zero; set MODEL_MANAGER_VRAM_GB to use this GPU"


def _constant(reading: Reading) -> Callable[[], Reading]:
    return lambda: reading


def probe_intel(system: System) -> ProbeResult:
    """Intel GPUs from ``/sys/class/drm/card*/device``."""
    if system.system != "Linux":
        return ProbeResult("skipped", f"reads Linux sysfs; this is {system.system}")
    drm = system.path("/sys/class/drm")
    cards = sorted(p for p in drm.glob("card*") if re.fullmatch(r"card\d+", p.name)) if drm.is_dir() else []
    seen: set[str] = set()
    slots: list[DeviceSlot] = []
    integrated: list[str] = []
    for card in cards:
        device = card / "device"
        if system.read_int(device / "vendor") != INTEL_VENDOR_ID:
            continue
        pci_id = device.resolve().name
        if pci_id in seen:
            continue
        seen.add(pci_id)
        driver = (device / "driver").resolve().name if (device / "driver").exists() else "unknown driver"
        model = system.read_int(device / "device") or 0
        lmem = system.read_int(device / "lmem_total_bytes")
        if not lmem:
            integrated.append(f"{pci_id} ({driver})")
            continue
        reading = Reading(lmem, 0, False, "sysfs-lmem_total_bytes", False, UNKNOWN_FREE)
        slots.append(
            DeviceSlot(
                "levelzero",
                pci_id,
                f"Intel GPU 0x{model:04x}",
                CUDA_RESERVE_BYTES,
                _constant(reading),
                pci_id=pci_id,
                problem=UNKNOWN_FREE,
            )
        )
    if not slots and not integrated:
        return ProbeResult("absent", "no Intel GPU in /sys/class/drm")
    parts = [f"{len(slots)} discrete GPU(s), free memory unknown"] if slots else []
    if integrated:
        parts.append(f"integrated GPU {', '.join(integrated)} shares host RAM: treated as CPU")
    return ProbeResult("found" if slots else "absent", "; ".join(parts), slots)
