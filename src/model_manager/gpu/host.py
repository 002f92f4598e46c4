"""Host RAM available to this process: the CPU fallback, and the memory behind unified-memory GPUs.

Linux: ``/proc/meminfo`` ``MemAvailable`` (kB), else ``MemFree + Buffers + Cached`` as Ollama's
``GetCPUMem`` does, bounded by the tightest cgroup limit on the path from this process's cgroup up to
the mount root. Headroom at each level is ``limit - (usage - inactive_file)``: page cache that the
kernel can drop is not counted as used (coder/clistat does the same). cgroup v1 reports "no limit" as
a huge page-aligned sentinel, treated like v2's ``max``.

macOS: ``hw.memsize`` and ``vm_stat`` (free + inactive + speculative pages). Windows:
``GlobalMemoryStatusEx``.
"""

from __future__ import annotations

import ctypes
import re
from dataclasses import dataclass
from pathlib import Path

from .records import System, format_gib

UNLIMITED = 1 << 62
"""At or above this a cgroup limit means "none" (v1 writes 9223372036854771712)."""


@dataclass(frozen=True)
class CgroupLimit:
    """The tightest memory limit found on the way up from this process's cgroup."""

    version: int
    path: str
    limit: int
    headroom: int


@dataclass(frozen=True)
class HostMemory:
    """Total and available host RAM, already bounded by any cgroup limit."""

    total: int
    available: int
    source: str
    exact: bool
    detail: str


def parse_meminfo(text: str) -> tuple[int, int, bool]:
    """``(total, available, exact)`` in bytes from ``/proc/meminfo`` text.

    Without ``MemAvailable`` (kernels before 3.14) available is ``MemFree + Buffers + Cached`` and
    ``exact`` is False. Raises ValueError when ``MemTotal`` is missing.
    """
    fields: dict[str, int] = {}
    for line in text.splitlines():
        match = re.match(r"^(\w+):\s+(\d+)(?:\s+kB)?\s*$", line)
        if match:
            fields[match.group(1)] = int(match.group(2)) * 1024
    if "MemTotal" not in fields:
        raise ValueError("no MemTotal line in /proc/meminfo")
    if "MemAvailable" in fields:
        return fields["MemTotal"], fields["MemAvailable"], True
    fallback = sum(fields.get(key, 0) for key in ("MemFree", "Buffers", "Cached"))
    return fields["MemTotal"], fallback, False


def parse_vm_stat(text: str) -> int:
    """Bytes available from macOS ``vm_stat``: free + inactive + speculative pages.

    Raises ValueError when the page size or the free-page count is missing.
    """
    size = re.search(r"page size of (\d+) bytes", text)
    pages = {
        m.group(1).lower(): int(m.group(2)) for m in re.finditer(r"^Pages ([\w ]+?):\s+(\d+)\.?$", text, re.M)
    }
    if size is None or "free" not in pages:
        raise ValueError("unrecognised vm_stat output")
    return int(size.group(1)) * sum(pages.get(key, 0) for key in ("free", "inactive", "speculative"))


def host_memory(system: System) -> HostMemory:
    """Host RAM for this platform. Raises OSError/ValueError/CommandError when it cannot be read."""
    if system.system == "Darwin":
        return _darwin_memory(system)
    if system.system == "Windows":
        return _windows_memory()
    text = system.read("/proc/meminfo")
    if text is None:
        raise OSError("/proc/meminfo is not readable")
    total, available, exact = parse_meminfo(text)
    detail = f"/proc/meminfo: {format_gib(available)} available of {format_gib(total)}"
    source = "meminfo"
    limit = cgroup_limit(system)
    if limit is not None:
        detail += f"; cgroup v{limit.version} {limit.path}: limit {format_gib(limit.limit)}"
        detail += f", headroom {format_gib(limit.headroom)}"
        total, available = min(total, limit.limit), min(available, limit.headroom)
        source = f"meminfo+cgroup-v{limit.version}"
    else:
        detail += "; no cgroup memory limit"
    return HostMemory(total, max(0, available), source, exact, detail)


def _darwin_memory(system: System) -> HostMemory:
    total = int(system.run(["sysctl", "-n", "hw.memsize"]).strip())
    available = parse_vm_stat(system.run(["vm_stat"]))
    return HostMemory(
        total, min(total, available), "vm_stat", False, f"vm_stat: {format_gib(available)} available"
    )


class _MemoryStatusEx(ctypes.Structure):
    _fields_ = [
        ("dwLength", ctypes.c_ulong),
        ("dwMemoryLoad", ctypes.c_ulong),
        ("ullTotalPhys", ctypes.c_ulonglong),
        ("ullAvailPhys", ctypes.c_ulonglong),
        ("ullTotalPageFile", ctypes.c_ulonglong),
        ("ullAvailPageFile", ctypes.c_ulonglong),
        ("ullTotalVirtual", ctypes.c_ulonglong),
        ("ullAvailVirtual", ctypes.c_ulonglong),
        ("ullAvailExtendedVirtual", ctypes.c_ulonglong),
    ]


def _windows_memory() -> HostMemory:
    status = _MemoryStatusEx()
    status.dwLength = ctypes.sizeof(_MemoryStatusEx)
    windll = getattr(ctypes, "windll", None)
    if windll is None or not windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):
        raise OSError("GlobalMemoryStatusEx failed")
    total, available = int(status.ullTotalPhys), int(status.ullAvailPhys)
    return HostMemory(total, available, "GlobalMemoryStatusEx", True, f"{format_gib(available)} available")


def cgroup_limit(system: System) -> CgroupLimit | None:
    """The tightest memory limit on this process's cgroup path (v1 memory controller or v2), or None."""
    text = system.read("/proc/self/cgroup")
    if text is None:
        return None
    v1_path = v2_path = None
    for line in text.splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            v2_path = parts[2]
        elif "memory" in parts[1].split(","):
            v1_path = parts[2]
    mounts = _cgroup_mounts(system)
    # With a v1 memory line the memory controller lives in v1 (hybrid hosts also show a "0::" line).
    if v1_path is not None:
        mount_root, mount_point = mounts.get("v1", ("/", "/sys/fs/cgroup/memory"))
        return _walk(system, 1, _join(mount_root, mount_point, v1_path), system.path(mount_point))
    if v2_path is not None:
        mount_root, mount_point = mounts.get("v2", ("/", "/sys/fs/cgroup"))
        return _walk(system, 2, _join(mount_root, mount_point, v2_path), system.path(mount_point))
    return None


def _cgroup_mounts(system: System) -> dict[str, tuple[str, str]]:
    """``{"v1"|"v2": (mount root, mount point)}`` from ``/proc/self/mountinfo``."""
    found: dict[str, tuple[str, str]] = {}
    for line in (system.read("/proc/self/mountinfo") or "").splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        if tail[0] == "cgroup2":
            found.setdefault("v2", (fields[3], fields[4]))
        elif tail[0] == "cgroup" and "memory" in tail[2].split(","):
            found.setdefault("v1", (fields[3], fields[4]))
    return found


def _join(mount_root: str, mount_point: str, cgroup_path: str) -> str:
    """The directory of ``cgroup_path`` (as ``/proc/self/cgroup`` names it) under the mount point."""
    root = mount_root.rstrip("/")
    if root and (cgroup_path == root or cgroup_path.startswith(root + "/")):
        cgroup_path = cgroup_path[len(root) :]
    return mount_point.rstrip("/") + "/" + cgroup_path.strip("/")


def _walk(system: System, version: int, leaf: str, top: Path) -> CgroupLimit | None:
    """Check every level from the leaf up to the mount point; a parent's limit binds its children."""
    directory = system.path(leaf)
    if not directory.is_dir():
        directory = top
    levels: list[tuple[int, int, Path]] = []
    while True:
        level = _level(system, version, directory)
        if level is not None:
            levels.append((level[0], level[1], directory))
        if directory == top or top not in directory.parents:
            break
        directory = directory.parent
    if not levels:
        return None
    _, headroom, where = min(levels, key=lambda level: level[1])
    shown = "/" + where.relative_to(top).as_posix() if where != top else "/"
    return CgroupLimit(version, shown, min(level[0] for level in levels), headroom)


def _level(system: System, version: int, directory: Path) -> tuple[int, int] | None:
    """``(limit, headroom)`` at one cgroup directory, or None when it sets no limit."""
    names = (
        ("memory.max", "memory.current")
        if version == 2
        else ("memory.limit_in_bytes", "memory.usage_in_bytes")
    )
    limit_text = (system.read(directory / names[0]) or "").strip()
    if not limit_text or limit_text == "max":
        return None
    try:
        limit = int(limit_text)
    except ValueError:
        return None
    if limit >= UNLIMITED:
        return None
    usage = system.read_int(directory / names[1]) or 0
    inactive = _stat_value(system.read(directory / "memory.stat") or "", version)
    return limit, max(0, limit - max(0, usage - inactive))


def _stat_value(text: str, version: int) -> int:
    """``inactive_file`` from memory.stat (v1 hierarchical: ``total_inactive_file``)."""
    wanted = ("total_inactive_file", "inactive_file") if version == 1 else ("inactive_file",)
    values = dict(line.split(None, 1) for line in text.splitlines() if len(line.split()) == 2)
    for key in wanted:
        if key in values:
            try:
                return int(values[key])
            except ValueError:
                return 0
    return 0
