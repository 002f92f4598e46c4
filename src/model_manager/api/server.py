"""Run the REST API under uvicorn, safe by default.

* The default bind is 127.0.0.1. Any other address (``0.0.0.0``, a LAN address, a host name) is refused
  unless ``MODEL_MANAGER_API_TOKEN`` is set; with a token set, every request must carry it.
* The socket is bound here, before uvicorn starts, so ``--port 0`` works: the line printed on start
  names the port the kernel chose (``model-manager API listening on http://127.0.0.1:PORT``).
* The dashboard is at ``/``; ``--open`` opens it in the user's browser (the ``webbrowser`` module, which
  honours ``BROWSER``) once the socket listens.
* While it serves, the manager publishes its host's GPU report to the store every
  ``MODEL_MANAGER_HEARTBEAT_S`` seconds (``hosts.Heartbeat``), under ``MODEL_MANAGER_HOST_NAME``, so the
  other managers of a fleet know this host's memory.

The CLI's ``serve`` command calls :func:`run_from_args` with its parsed options and settings;
``python -m model_manager.api.server`` runs :func:`main` directly.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import threading
import webbrowser
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

from ..config import Settings, load_settings
from ..errors import ModelManagerError, UnsafeBindError
from ..hosts import Heartbeat
from ..manager import ManagerCore
from .guard import is_loopback

if TYPE_CHECKING:
    import uvicorn

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def check_bind(host: str, token: str | None) -> None:
    """Raises UnsafeBindError when ``host`` is not loopback and no token is set."""
    if not is_loopback(host) and not token:
        raise UnsafeBindError(f"--host {host} without MODEL_MANAGER_API_TOKEN")


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@contextmanager
def _graceful_stop(server: uvicorn.Server) -> Iterator[None]:
    """SIGTERM and SIGHUP are the ordinary ways to stop a server (systemd, docker stop, a closed
    terminal), so they stop it gracefully and ``serve`` returns: its manager is closed, which releases the
    switch lease a request in flight may hold, and the process exits 0.

    While uvicorn runs, its own SIGTERM handler shuts down gracefully; once done, it raises the signal
    again for the handler it found, which would kill the process by the signal. The handler found is
    this one: it only asks the server to exit (also when a signal comes before uvicorn has started).
    uvicorn does not handle SIGHUP, so this handler stops it directly."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers; uvicorn does not listen to signals elsewhere
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        server.should_exit = True

    stopping = [signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])]
    previous = {sig: signal.signal(sig, stop) for sig in stopping}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def dashboard_url(sock: socket.socket) -> str:
    """Where a browser on this machine finds the dashboard: a wildcard bind is reached on loopback."""
    host, port = sock.getsockname()[:2]
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def open_in_browser(url: str) -> threading.Thread:
    """Open ``url`` in the user's browser from a thread: a console browser would block until it exits."""

    def run() -> None:
        if not webbrowser.open(url):
            print(f"Could not start a web browser; open {url}", file=sys.stderr, flush=True)

    thread = threading.Thread(target=run, name="open-dashboard", daemon=True)
    thread.start()
    return thread


def serve(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    manager: ManagerCore | None = None,
    settings: Settings | None = None,
    allowed_origins: Collection[str] = (),
    log_level: str = "info",
    access_log: bool = True,
    open_browser: bool = False,
) -> None:
    """Serve the API until interrupted (SIGINT, SIGTERM and SIGHUP stop it gracefully; running downloads
    then show as "interrupted" and resume when started again, and the switch lease is released). After
    SIGTERM or SIGHUP it returns normally.

    Raises UnsafeBindError (see :func:`check_bind`), OSError when the address cannot be bound.
    """
    import uvicorn

    from . import create_app

    settings = manager.settings if manager is not None else settings or load_settings()
    check_bind(host, settings.api_token)
    sock = bind_socket(host, port)
    owned = manager is None
    manager = manager or ManagerCore(settings=settings)
    core = manager
    # The fleet reads this host's memory from the store: publish it while serving.
    heartbeat = Heartbeat(core.hosts, lambda: core.gpu).start()
    try:
        app = create_app(
            manager,
            token=settings.api_token,
            allowed_hosts=() if is_loopback(host) else ("*",),
            allowed_origins=allowed_origins,
        )
        config = uvicorn.Config(
            app, log_level=log_level, access_log=access_log, timeout_graceful_shutdown=5, server_header=False
        )
        server = uvicorn.Server(config)
        with _graceful_stop(server):
            print(f"model-manager API listening on {_url(sock)}", flush=True)
            print(f"Dashboard: {dashboard_url(sock)}", flush=True)
            if open_browser:
                open_in_browser(dashboard_url(sock))
            server.run(sockets=[sock])
    finally:
        heartbeat.stop()
        sock.close()
        if owned:
            manager.close()


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The ``serve`` options (the CLI may pass its own subparser to have them added)."""
    parser = parser or argparse.ArgumentParser(prog="model-manager serve", description="Serve the REST API.")
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port (default 8000; 0 picks a free one)"
    )
    parser.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="a browser origin allowed to call the API, e.g. http://localhost:3000 (repeatable)",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    parser.add_argument("--no-access-log", action="store_true", help="do not log each request")
    parser.add_argument("--open", action="store_true", help="open the dashboard in your web browser")
    return parser


def run_from_args(args: argparse.Namespace, settings: Settings | None = None) -> int:
    """Serve with parsed ``serve`` options; print refusals with their solution and return 1."""
    try:
        serve(
            args.host,
            args.port,
            settings=settings,
            allowed_origins=args.allow_origin,
            log_level=args.log_level,
            access_log=not args.no_access_log,
            open_browser=getattr(args, "open", False),
        )
    except ModelManagerError as exc:
        print(f"{exc.message}\nSolution: {exc.solution}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m model_manager.api.server [--host H] [--port P] ...``."""
    return run_from_args(build_parser().parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
