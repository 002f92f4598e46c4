"""Command-line interface (``model-manager`` / ``python -m model_manager``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="model-manager", description="Manage local LLMs served by Ollama.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list models")
    args = parser.parse_args(argv)
    from .errors import ModelManagerError
    from .manager import ModelManager

    try:
        with ModelManager() as manager:
            if args.command == "list":
                for m in manager.list_available_models():
                    flag = "installed" if m["installed"] else "-"
                    print(f"{m['name']}\t{m['size']}\t{m['purpose']}\t{m['min_vram_gb']}\t{flag}")
    except ModelManagerError as exc:
        print(f"{exc.message}\nSolution: {exc.solution}", file=sys.stderr)
        return 1
    return 0
