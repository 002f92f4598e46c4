"""GPU detection: ``GPUManager().get_available_memory_gb()`` and the records behind it.

See docs/gpu.md for what each probe reads and in which order.
"""

from __future__ import annotations

from ..units import GIB
from .host import CgroupLimit, HostMemory, host_memory, parse_meminfo, parse_vm_stat
from .manager import VRAM_ENV, DetectionReport, GPUManager, parse_override
from .nvidia import SmiRow, parse_cuda_visible_devices, parse_nvidia_smi
from .records import (
    CUDA_RESERVE_BYTES,
    METAL_RESERVE_BYTES,
    ROCM_RESERVE_BYTES,
    CommandError,
    CommandNotFoundError,
    GpuDevice,
    ProbeOutcome,
)

__all__ = [
    "CUDA_RESERVE_BYTES",
    "GIB",
    "METAL_RESERVE_BYTES",
    "ROCM_RESERVE_BYTES",
    "VRAM_ENV",
    "CgroupLimit",
    "CommandError",
    "CommandNotFoundError",
    "DetectionReport",
    "GPUManager",
    "GpuDevice",
    "HostMemory",
    "ProbeOutcome",
    "SmiRow",
    "host_memory",
    "parse_cuda_visible_devices",
    "parse_meminfo",
    "parse_nvidia_smi",
    "parse_override",
    "parse_vm_stat",
]
