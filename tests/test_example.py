"""The runnable usage example runs, end to end, against the bundled Ollama double."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "example_model_management_usage.py"


def test_usage_example_runs_in_demo_mode(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "MODEL_MANAGER_"))}
    env["MODEL_MANAGER_HOME"] = str(tmp_path / "unused")  # --demo keeps its data in a temporary directory
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--demo"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Recommended for 8.0 GB, balanced: " in out
    assert "Download: True (Downloaded " in out
    assert "Switch: True; current model: " in out
    assert "3 uses, 66.7% success, 2.50s average" in out
    assert "(False, 'Cannot delete current: " in out
    assert "(False, 'Model not found: no-such-model')" in out
    assert not (tmp_path / "unused").exists()
