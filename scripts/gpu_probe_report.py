#!/usr/bin/env python3
"""Print GPUManager's diagnostic report as JSON, for bug reports and one-off checks on a GPU machine.

    python scripts/gpu_probe_report.py            # from a checkout (src/ is added to the path)
    python scripts/gpu_probe_report.py --pretty

Alongside the report it times the probing and, when ``nvidia-smi`` is on PATH, prints nvidia-smi's own
view of the same GPUs so the two can be compared.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from model_manager.gpu import GPUManager
from model_manager.gpu.nvidia import SMI_QUERY


def nvidia_smi_view() -> dict[str, Any] | None:
    """nvidia-smi's answer to the fallback query, verbatim, or None where it is not installed."""
    if shutil.which(SMI_QUERY[0]) is None:
        return None
    try:
        done = subprocess.run(list(SMI_QUERY), capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"returncode": done.returncode, "stdout": done.stdout, "stderr": done.stderr}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretty", action="store_true", help="indent the JSON")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with GPUManager() as gpu:
        report = gpu.report()
        probe_s = time.perf_counter() - started
        started = time.perf_counter()
        refreshed = gpu.get_available_memory_gb()
        refresh_s = time.perf_counter() - started
    output = {
        "report": report.to_dict(),
        "timing_s": {"first_report": round(probe_s, 4), "cached_query": round(refresh_s, 4)},
        "available_gb_second_read": round(refreshed, 3),
        "nvidia_smi": nvidia_smi_view(),
        "python": sys.version.split()[0],
    }
    print(json.dumps(output, indent=2 if args.pretty else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
