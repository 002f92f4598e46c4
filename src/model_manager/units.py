"""Units of memory, in one place. Sizes are kept in bytes inside; GiB appear at the edges.

GPU tools (nvidia-smi, NVML, ROCm, Ollama's logs) count binary units, so every "GB" of memory this
package prints or accepts is a GiB (2**30 bytes). Download sizes are the exception: Ollama's library
and ``ollama list`` count them in decimal megabytes, and so does the catalog's ``download_size_mb``.
"""

from __future__ import annotations

MIB = 1 << 20
GIB = 1 << 30
MB = 1_000_000
"""A decimal megabyte (download sizes)."""

MAX_GB = 1_000_000.0
"""The largest memory figure accepted anywhere (a sanity bound, far above any machine)."""


def gib(n_bytes: float) -> float:
    """Bytes as GiB."""
    return n_bytes / GIB


def gib_bytes(gb: float) -> int:
    """GiB as whole bytes."""
    return int(gb * GIB)
