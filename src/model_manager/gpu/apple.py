"""Apple Silicon: one Metal device whose limit is Metal's recommended working set.

Neither Ollama nor llama.cpp applies a fixed fraction; both ask Metal
(``recommendedMaxWorkingSetSize``), which follows ``iogpu.wired_limit_mb``. Without PyObjC the query
is made through ctypes. If it cannot be made, a non-zero ``iogpu.wired_limit_mb`` (MiB) is used, and
failing that an estimate of 2/3 of RAM up to 32 GiB and 3/4 above, marked as an estimate. Memory is
unified, so free is also bounded by the RAM available now (``vm_stat``). Intel Macs are CPU-only, as
in Ollama.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

from ..units import GIB, MIB
from .host import HostMemory
from .records import METAL_RESERVE_BYTES, CommandError, DeviceSlot, ProbeResult, Reading, System

MetalQuery = Callable[[], "int | None"]
HostReader = Callable[[], HostMemory]


def metal_recommended_working_set() -> int | None:
    """``MTLCreateSystemDefaultDevice().recommendedMaxWorkingSetSize`` in bytes, or None off macOS.

    ``objc_msgSend`` is variadic; on arm64 it must be called through an explicit prototype or the
    result is garbage.
    """
    try:
        metal = ctypes.CDLL("/System/Library/Frameworks/Metal.framework/Metal")
        objc = ctypes.CDLL("/usr/lib/libobjc.A.dylib")
    except OSError:
        return None
    create = metal.MTLCreateSystemDefaultDevice
    create.restype, create.argtypes = ctypes.c_void_p, []
    selector = objc.sel_registerName
    selector.restype, selector.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
    address = ctypes.cast(objc.objc_msgSend, ctypes.c_void_p).value
    if address is None:
        return None
    send_u64 = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p, ctypes.c_void_p)(address)
    send_void = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)(address)
    device = create()
    if not device:
        return None
    try:
        return int(send_u64(device, selector(b"recommendedMaxWorkingSetSize")))
    finally:
        send_void(device, selector(b"release"))


def estimate_limit(memsize: int) -> int:
    """macOS's default GPU limit as observed: 2/3 of RAM up to 32 GiB, 3/4 above."""
    return memsize * 2 // 3 if memsize <= 32 * GIB else memsize * 3 // 4


def _limit(system: System, metal: MetalQuery) -> tuple[int, str, bool, list[str]]:
    """``(limit bytes, source, exact, notes)``; raises CommandError when even hw.memsize is unreadable."""
    notes: list[str] = []
    try:
        value = metal()
    except Exception as exc:  # a crashing query must not hide the sysctl fallback
        value = None
        notes.append(f"Metal query failed: {type(exc).__name__}: {exc}")
    if value:
        return value, "metal", True, notes
    notes.append("Metal query unavailable")
    memsize = int(system.run(["sysctl", "-n", "hw.memsize"]).strip())
    try:
        wired_mib = int(system.run(["sysctl", "-n", "iogpu.wired_limit_mb"]).strip() or "0")
    except (CommandError, ValueError) as exc:
        wired_mib = 0
        notes.append(f"iogpu.wired_limit_mb unreadable ({exc})")
    if wired_mib > 0:
        return min(wired_mib * MIB, memsize), "sysctl-iogpu.wired_limit_mb", True, notes
    return estimate_limit(memsize), "estimate-from-hw.memsize", False, notes


def chip_name(system: System) -> str:
    """The chip ("Apple M2 Pro", from ``machdep.cpu.brand_string``) that names the device, so that its
    memory bandwidth can be looked up; "" when sysctl cannot tell."""
    try:
        brand = system.run(["sysctl", "-n", "machdep.cpu.brand_string"]).strip()
    except CommandError:
        return ""
    return brand if brand.startswith("Apple") else ""


def probe_apple(system: System, metal: MetalQuery, host: HostReader) -> ProbeResult:
    """The Metal device on Apple Silicon."""
    if system.system != "Darwin":
        return ProbeResult("skipped", f"macOS only; this is {system.system}")
    if system.machine not in ("arm64", "aarch64"):
        return ProbeResult("absent", f"Intel Mac ({system.machine}): Metal is not used for models; CPU only")
    limit, source, exact, notes = _limit(system, metal)

    def read() -> Reading:
        try:
            available = host().available
        except (OSError, ValueError, CommandError) as exc:
            return Reading(
                limit, limit, False, source, True, f"available RAM unreadable ({exc}); free = limit"
            )
        return Reading(limit, min(limit, available), exact, source, True, "free bounded by available RAM")

    name = f"{chip_name(system) or 'Apple'} GPU (Metal)"
    slot = DeviceSlot("metal", "metal:0", name, METAL_RESERVE_BYTES, read, integrated=True)
    detail = "; ".join([f"GPU limit {limit / GIB:.2f} GB from {source}", *notes])
    return ProbeResult("found", detail, [slot])
