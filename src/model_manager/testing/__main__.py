"""Run the Ollama double in the foreground: ``python -m model_manager.testing [--port 0]``.

Prints ``listening on http://HOST:PORT`` once ready (flushed), so a test that starts it as a
subprocess can read the URL from the first line; serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from ..errors import InvalidModelNameError
from .double import OllamaDouble


def _library_model(text: str) -> tuple[str, int]:
    name, sep, size = text.rpartition("=")
    if not sep or not name or not size.isdigit():
        raise argparse.ArgumentTypeError(f"expected NAME=BYTES, got {text!r}")
    return name, int(size)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m model_manager.testing", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default)")
    parser.add_argument(
        "--install",
        nargs="+",
        action="extend",
        default=[],
        metavar="NAME",
        help="install these library models before serving",
    )
    parser.add_argument(
        "--library-model",
        type=_library_model,
        action="append",
        default=[],
        metavar="NAME=BYTES",
        help="add a pullable model of this size",
    )
    parser.add_argument("--no-catalog", action="store_true", help="start with an empty library")
    parser.add_argument("--vram-bytes", type=int, default=None, help="GPU memory budget")
    parser.add_argument("--ram-bytes", type=int, default=None, help="system memory budget")
    parser.add_argument("--pull-chunks", type=int, default=4, help="steps a model blob takes")
    parser.add_argument("--pull-delay-s", type=float, default=0.0, help="pause per pull step")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    double = OllamaDouble(
        host=args.host,
        port=args.port,
        catalog=not args.no_catalog,
        vram_bytes=args.vram_bytes,
        ram_bytes=args.ram_bytes,
        pull_chunks=args.pull_chunks,
        pull_delay_s=args.pull_delay_s,
    )
    try:
        for name, size in args.library_model:
            double.add_library_model(name, size=size)
        for name in args.install:
            if double.library_model(name) is None:
                print(f"error: {name} is not in the library; add it with --library-model", file=sys.stderr)
                return 2
            double.install(name)
    except (InvalidModelNameError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stopped = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with double:
        print(f"listening on {double.url}", flush=True)
        while not stopped.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
