"""Records and the system context shared by the GPU probes.

Everything is kept in bytes; GiB (2**30) appears only at the public edge. A probe enumerates once and
returns ``DeviceSlot`` objects whose ``read`` callable is re-run to refresh free memory, so that the
cached enumeration and the live numbers stay separate.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..ollama_defaults import GPU_MINIMUM_MEMORY
from ..units import GIB

BACKENDS = ("cuda", "rocm", "levelzero", "metal", "cpu")
"""Backends in order of preference when two groups offer the same memory."""

Runner = Callable[[Sequence[str]], str]
"""Runs a command and returns its stdout; raises ``CommandError`` when it cannot run or fails."""


class CommandError(Exception):
    """A helper command timed out, could not start or exited non-zero."""


class CommandNotFoundError(CommandError):
    """The helper command is not installed (not on PATH)."""


@dataclass(frozen=True)
class Reading:
    """One memory reading of one device, in bytes."""

    total: int
    free: int
    exact: bool
    source: str
    integrated: bool | None = None
    note: str = ""


@dataclass
class DeviceSlot:
    """One enumerated device: identity (cached) plus ``read`` (re-run on refresh)."""

    backend: str
    id: str
    name: str
    reserve: int
    read: Callable[[], Reading]
    integrated: bool = False
    pci_id: str = ""
    visible: bool = True
    problem: str = ""
    note: str = ""
    approximate: bool = False
    compute_capability: str = ""


@dataclass
class ProbeResult:
    """What one probe saw: ``status`` is absent, found, unusable or skipped."""

    status: str
    detail: str
    slots: list[DeviceSlot] = field(default_factory=list)
    close: Callable[[], None] | None = None


@dataclass(frozen=True)
class ProbeOutcome:
    """One line of the diagnostic report.

    ``status``: used (its devices give the answer), found (devices, but another backend won), absent,
    unusable (present but cannot be used), skipped (not tried, and why) or failed (it raised).
    """

    probe: str
    status: str
    detail: str
    devices: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "probe": self.probe,
            "status": self.status,
            "detail": self.detail,
            "devices": list(self.devices),
        }


@dataclass(frozen=True)
class GpuDevice:
    """One device as the caller sees it. Sizes in bytes; ``*_gb`` properties in GiB.

    ``usable_bytes`` is ``max(0, free - reserve)``, and 0 when the device is hidden by a visibility
    variable or has a ``problem`` (present but not usable: unsupported, no access, free memory unknown).
    """

    backend: str
    index: int | None
    id: str
    name: str
    total_bytes: int
    free_bytes: int
    reserve_bytes: int
    integrated: bool
    source: str
    exact: bool
    pci_id: str = ""
    visible: bool = True
    problem: str = ""
    note: str = ""
    compute_capability: str = ""
    """CUDA compute capability ("8.6"), which decides flash attention in Ollama; empty when unknown."""

    @property
    def usable_bytes(self) -> int:
        if not self.visible or self.problem:
            return 0
        return max(0, self.free_bytes - self.reserve_bytes)

    @property
    def total_gb(self) -> float:
        return self.total_bytes / GIB

    @property
    def free_gb(self) -> float:
        return self.free_bytes / GIB

    @property
    def usable_gb(self) -> float:
        return self.usable_bytes / GIB

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "index": self.index,
            "id": self.id,
            "name": self.name,
            "pci_id": self.pci_id,
            "total_bytes": self.total_bytes,
            "free_bytes": self.free_bytes,
            "reserve_bytes": self.reserve_bytes,
            "usable_bytes": self.usable_bytes,
            "total_gb": round(self.total_gb, 3),
            "usable_gb": round(self.usable_gb, 3),
            "integrated": self.integrated,
            "source": self.source,
            "accuracy": "exact" if self.exact else "estimate",
            "visible": self.visible,
            "problem": self.problem,
            "note": self.note,
            "compute_capability": self.compute_capability,
        }


@dataclass(frozen=True)
class System:
    """The outside world a probe may look at: a filesystem root, an environment, a command runner and
    the platform. Tests point ``root`` at a temp dir and pass a dict as ``env``."""

    root: Path
    env: Mapping[str, str]
    run: Runner
    system: str
    machine: str

    def path(self, relative: str) -> Path:
        """``relative`` (an absolute system path such as ``/proc/meminfo``) under ``root``."""
        return self.root / relative.lstrip("/")

    def read(self, relative: str | Path) -> str | None:
        """The file's text, or None when it is missing or unreadable."""
        path = relative if isinstance(relative, Path) else self.path(relative)
        try:
            return path.read_text(encoding="utf-8", errors="replace")
        except (OSError, ValueError):
            return None

    def read_int(self, relative: str | Path) -> int | None:
        """The file's first token as an integer (decimal, or hex with ``0x``), or None."""
        text = self.read(relative)
        if text is None or not text.split():
            return None
        try:
            return int(text.split()[0], 0)
        except ValueError:
            return None


def make_runner(env: Mapping[str, str], timeout_s: float = 10.0) -> Runner:
    """The default runner: finds the program on ``env['PATH']`` and runs it with a timeout."""

    def run(argv: Sequence[str]) -> str:
        program = shutil.which(argv[0], path=env.get("PATH", os.defpath))
        if program is None:
            raise CommandNotFoundError(f"{argv[0]} not found on PATH")
        try:
            done = subprocess.run(
                [program, *argv[1:]], capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired:
            raise CommandError(f"{argv[0]} did not finish within {timeout_s:g} s") from None
        except OSError as exc:
            raise CommandError(f"{argv[0]} could not run: {exc}") from None
        if done.returncode != 0:
            message = (done.stderr.strip() or done.stdout.strip()).splitlines()
            first = message[0] if message else ""
            raise CommandError(f"{argv[0]} exited with status {done.returncode}: {first}".rstrip(": "))
        return done.stdout

    return run


def as_text(value: object) -> str:
    """NVML and amdsmi return ``bytes`` in old versions and ``str`` in new ones."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def leading_int(text: str) -> int:
    """The leading integer of ``text`` as C's ``strtoul`` reads it (``1gpu2`` is 1), or -1 if none."""
    end = 0
    while end < len(text) and (text[end].isdigit() or (end == 0 and text[end] in "+-")):
        end += 1
    try:
        return int(text[:end])
    except ValueError:
        return -1


def format_gib(n_bytes: int) -> str:
    """GiB as every output labels them: "GB" (the README says once that GB means GiB)."""
    return f"{n_bytes / GIB:.2f} GB"


# Ollama's per-GPU floor (ml/device.go MinimumMemory), kept with Ollama's other defaults. Level Zero
# has no Ollama value of its own and reuses the CUDA one.
CUDA_RESERVE_BYTES = GPU_MINIMUM_MEMORY["cuda"]
ROCM_RESERVE_BYTES = GPU_MINIMUM_MEMORY["rocm"]
METAL_RESERVE_BYTES = GPU_MINIMUM_MEMORY["metal"]
