"""Command-line interface: ``model-manager`` and ``python -m model_manager``.

Start-up is kept light on purpose: this module imports ``argparse`` and the package's plain lower layers
(settings validators, the error table, the words of ``types``), so ``--help`` and usage errors never pay
for the manager, httpx or rich. Each command's module imports what it needs when it runs, and rich is
imported only for human output.

Exit codes (the error table's ``exit_code``): 0 success, 1 a failed operation (the manager raised, or the answer is "no": ``check`` finds
the model does not fit, ``recommend`` finds nothing that fits, ``rm`` is not confirmed), 2 bad usage
(argparse's own errors, bad figures, refusing to ask for confirmation without a terminal),
130 interrupted by Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ..config import parse_gb
from ..errors import EXIT_FAILED, EXIT_INTERRUPTED, InvalidRequestError
from ..ollama_defaults import KV_CACHE_TYPES
from ..types import Capability, ModelPurpose, Priority

PRIORITIES = Priority.words()
PURPOSES = ModelPurpose.words()
CAPABILITIES = Capability.words()


def vram_figure(text: str) -> float:
    """argparse type for a VRAM figure in GB (``config.parse_gb``'s rule)."""
    try:
        return parse_gb(text, "VRAM")
    except InvalidRequestError as exc:
        raise argparse.ArgumentTypeError(exc.detail) from None


def _positive(text: str) -> int:
    """argparse type for a whole number ≥ 1 (a context length, a number of parallel requests)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _port_or_zero(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return value


def _common_options(parser: argparse.ArgumentParser, *, top: bool, fleet: bool = True) -> None:
    """Options accepted before and after the command name (``fleet``: with ``--host``, which ``serve``
    keeps for the address it binds).

    Below the top level they default to SUPPRESS, so ``model-manager --json list`` is not undone by
    the subcommand's own default.
    """
    default: dict[str, Any] = {} if top else {"default": argparse.SUPPRESS}
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document and nothing else",
        **default,
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="where the metadata store lives (default: $MODEL_MANAGER_HOME or the user data dir)",
        **default,
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        help="log what the library does to stderr (-vv for debug detail)",
        **({"default": 0} if top else default),
    )
    parser.add_argument(
        "--ollama-host",
        dest="ollama_host",
        metavar="URL",
        help="Ollama's address (default: $OLLAMA_HOST or 127.0.0.1:11434)",
        **default,
    )
    if fleet:
        parser.add_argument(
            "--host",
            dest="host",
            metavar="NAME",
            help="the fleet host to act on: a name from `hosts list`, all, or auto (pull, use); "
            "default local, this machine's Ollama",
            **default,
        )


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree (argparse only, so building it costs nothing worth measuring)."""
    parser = argparse.ArgumentParser(
        prog="model-manager",
        description="Manage local LLMs served by Ollama: catalog, fit, recommendations, downloads, "
        "switching and usage statistics.",
        epilog="Exit codes: 0 success, 1 failed operation, 2 bad usage, 130 interrupted.",
    )
    _common_options(parser, top=True)
    common = argparse.ArgumentParser(add_help=False)
    _common_options(common, top=False)
    local = argparse.ArgumentParser(add_help=False)
    _common_options(local, top=False, fleet=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(
        name: str, help_text: str, aliases: Sequence[str] = (), *, fleet: bool = True
    ) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            aliases=list(aliases),
            help=help_text,
            description=help_text,
            parents=[common if fleet else local],
        )

    p = add("list", "list catalog and installed models")
    p.add_argument("--installed", action="store_true", help="only models Ollama has installed")
    p.add_argument("--purpose", type=str.lower, choices=PURPOSES, help="only models of this purpose")
    p.add_argument("--max-vram", type=vram_figure, metavar="GB", help="only models that fit in GB of VRAM")

    add("current", "show the current model")

    p = add("recommend", "recommend a model for the available VRAM and a priority")
    p.add_argument("first", nargs="?", metavar="VRAM", help="GB of VRAM (detected when left out)")
    p.add_argument(
        "second", nargs="?", metavar="PRIORITY", help=f"one of {', '.join(PRIORITIES)} (default balanced)"
    )
    p.add_argument(
        "--capability",
        type=str.lower,
        choices=CAPABILITIES,
        metavar="C",
        help=f"only models that can do this: {', '.join(CAPABILITIES)}",
    )
    p.add_argument("--all", action="store_true", help="the best model of each priority")

    p = add("bench", "time a fixed prompt on an installed model through Ollama and keep its speed here")
    p.add_argument("model", metavar="MODEL")

    p = add("stats", "usage statistics of every model, or of one")
    p.add_argument("model", nargs="?", metavar="MODEL")
    p.add_argument("--all", action="store_true", help="list models without recorded usage too")

    p = add("info", "everything known about a model")
    p.add_argument("model", metavar="MODEL")

    p = add("check", "check whether a model fits in the available VRAM")
    p.add_argument("model", metavar="MODEL")
    p.add_argument(
        "vram", nargs="?", type=vram_figure, metavar="VRAM", help="GB of VRAM (detected when left out)"
    )

    p = add("plan", "memory at each context and KV cache type, and the largest context that fits")
    p.add_argument("model", metavar="MODEL")
    p.add_argument(
        "vram", nargs="?", type=vram_figure, metavar="VRAM", help="GB of VRAM (detected when left out)"
    )
    p.add_argument(
        "--context", type=_positive, metavar="N", help="also show this context (tokens per request)"
    )
    p.add_argument(
        "--kv-cache-type", type=str.lower, choices=KV_CACHE_TYPES, metavar="T", help="only this KV cache type"
    )
    p.add_argument("--parallel", type=_positive, metavar="P", help="parallel requests (OLLAMA_NUM_PARALLEL)")

    p = add("pull", "download a model through Ollama (resumes an interrupted download)", ["download"])
    p.add_argument("model", metavar="MODEL")

    p = add("rm", "delete a model from Ollama", ["delete"])
    p.add_argument("model", metavar="MODEL")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")

    p = add("use", "load a model in Ollama and make it the current model", ["switch"])
    p.add_argument("model", metavar="MODEL")

    add("ps", "models Ollama has loaded, with memory and how much is on the GPU")
    add("gpu", "GPU devices, memory usable by models, and what each probe saw")
    add("sync", "read the installed models from Ollama into the store")

    p = add("export", "write statistics and metadata to a JSON file", fleet=False)
    p.add_argument("file", metavar="FILE")

    p = add("import", "read statistics and metadata from a JSON file written by export", fleet=False)
    p.add_argument("file", metavar="FILE")

    p = add("hosts", "the fleet's Ollama hosts, shared by every manager on the same store", fleet=False)
    actions = p.add_subparsers(dest="hosts_command", metavar="ACTION", required=True)
    h = actions.add_parser("add", help="add a host (or change its URL and --vram)", parents=[local])
    h.add_argument("name", metavar="NAME")
    h.add_argument("url", metavar="URL", help="where its Ollama listens, as OLLAMA_HOST takes it")
    h.add_argument(
        "--vram", type=vram_figure, metavar="GB", help="its GPU memory, used while its manager publishes none"
    )
    actions.add_parser("list", help="every host, its memory and whether it answers", parents=[local])
    h = actions.add_parser("rm", aliases=["remove"], help="remove a host (its usage stays)", parents=[local])
    h.add_argument("name", metavar="NAME")

    p = add("serve", "run the REST API server (Ctrl-C stops it)", fleet=False)
    # The server's own options (model_manager.api.server.build_parser), declared here so that --help does
    # not import the server; a test keeps the two lists equal.
    p.add_argument(
        "--host",
        dest="bind_host",
        default="127.0.0.1",
        metavar="ADDRESS",
        help="address to bind (default 127.0.0.1; others need MODEL_MANAGER_API_TOKEN)",
    )
    p.add_argument("--port", type=_port_or_zero, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="a browser origin allowed to call the API (repeatable)",
    )
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--no-access-log", action="store_true", help="do not log each request")
    p.add_argument("--open", action="store_true", help="open the dashboard in your web browser")
    return parser


def parse_recommend_args(parser: argparse.ArgumentParser, tokens: Sequence[str]) -> tuple[float | None, str]:
    """``recommend [VRAM] [PRIORITY]``: a number is the VRAM, a priority word the priority, any order."""
    vram: float | None = None
    priority: str | None = None
    for token in tokens:
        word = token.strip().lower()
        if word in PRIORITIES and priority is None:
            priority = word
            continue
        if vram is None and word not in PRIORITIES:
            try:
                vram = vram_figure(token)
            except argparse.ArgumentTypeError as exc:
                parser.error(
                    f"recommend: {exc}; expected [VRAM] [PRIORITY] with PRIORITY one of "
                    f"{', '.join(PRIORITIES)}"
                )
            continue
        parser.error(f"recommend: unexpected {token!r}; expected [VRAM] [PRIORITY]")
    return vram, priority or "balanced"


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _stop_on_signals() -> Callable[[], None]:
    """SIGTERM and SIGHUP end the command the way an exception would, so that what it holds (the switch
    lease, an open transaction) is released on the way out; exit code 128 + the signal's number, as the
    shell reports a process the signal ended. Returns what restores the previous handlers."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # only the main thread may set handlers (a command run from a thread)
    wanted = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]
    previous = {sig: signal.signal(sig, _exit_on_signal) for sig in wanted}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (the console script passes it to ``sys.exit``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "recommend":
        tokens = [t for t in (args.first, args.second) if t is not None]
        args.vram, args.priority = parse_recommend_args(parser, tokens)
        if args.all and any(t.strip().lower() in PRIORITIES for t in tokens):
            parser.error("recommend --all answers for every priority; leave PRIORITY out")
    restore = _stop_on_signals()
    try:
        from .commands import run

        return run(args)
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, and keep Python from complaining at exit.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
    finally:
        restore()
