"""One command-line run: its options, streams, settings and lazily built manager, and how it reports.

Output rules:

* ``--json``: exactly one JSON document on stdout, for failures too (``{"success": false, "error":
  code, "message", "solution"}``, the REST API's envelope); the human error text still goes to stderr.
* Human: rich tables on stdout; notes, prompts, progress and errors on stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import TYPE_CHECKING, Any

from ..errors import (
    ModelManagerError,
    ModelNotInstalledError,
)

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from ..config import Settings
    from ..fleet import Fleet
    from ..manager import ManagerCore
    from ..types import ModelInfo

ALIASES = {"download": "pull", "delete": "rm", "switch": "use"}

# A next step the CLI can name for an error, after the error table's generic solution.
#: Statistics and recommendations answer from the store and the catalog: installed state is read as the
#: last sync (of any process) stored it, so they never wait on Ollama.
STORED_STATE_COMMANDS = frozenset({"stats", "recommend"})

HINTS = {
    "model_not_found": "`model-manager list` shows the catalog",
    "model_not_installed": "`model-manager pull MODEL` downloads it",
    "cannot_delete_current": "`model-manager use OTHER-MODEL` switches first",
    "insufficient_vram": "`model-manager recommend` picks one that fits",
    "switch_in_progress": "MODEL_MANAGER_SWITCH_WAIT sets how many seconds `use` and `rm` wait for it",
    "unknown_host": "Ollama's address itself goes in --ollama-host URL",
}


class Context:
    """One run's options, streams, settings and lazily built manager."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.json: bool = bool(getattr(args, "json", False))
        self.out = sys.stdout
        self.err = sys.stderr
        self._settings: Settings | None = None
        self._manager: ManagerCore | None = None
        self._fleet: Fleet | None = None
        self._console: Console | None = None
        #: The fleet host chosen by ``--host``: a host's name, ``all``, ``auto``, or None for the own host
        #: (set by ``fleet.choose_host`` before the command runs).
        self.host: str | None = None
        #: An Ollama address given to ``--host`` the way it used to be (``fleet.choose_host``).
        self.url_from_host: str | None = None
        #: Fields every JSON document of this run carries (the host, a placement), set by ``--host``.
        self.extra: dict[str, Any] = {}
        #: How installed flags are shown: "known", "last seen" or "unknown" (never read from Ollama).
        self.installed_view = "known"

    @property
    def settings(self) -> Settings:
        """Settings from the environment and the command line (raises InvalidSettingError)."""
        if self._settings is None:
            from ..config import load_settings

            host = self.args.ollama_host or self.url_from_host
            self._settings = load_settings(host=host, data_dir=self.args.data_dir)
        return self._settings

    @property
    def base(self) -> ManagerCore:
        """The manager of this machine's own host (``OLLAMA_HOST``)."""
        if self._manager is None:
            from ..inventory import INSTALLED_TTL_S
            from ..manager import ManagerCore

            max_age = math.inf if self.stored_state else INSTALLED_TTL_S
            self._manager = ManagerCore(settings=self.settings, installed_max_age_s=max_age)
        return self._manager

    @property
    def manager(self) -> ManagerCore:
        """The manager of the host ``--host`` names (the own host without it, or for all and auto)."""
        if self.host is None or self.host in ("all", "auto"):
            return self.base
        return self.fleet.manager(self.host)

    @property
    def fleet(self) -> Fleet:
        if self._fleet is None:
            from ..fleet import Fleet

            self._fleet = Fleet(self.base)
        return self._fleet

    @property
    def console(self) -> Console:
        if self._console is None:
            from .render import make_console

            self._console = make_console(self.out)
        return self._console

    def close(self) -> None:
        if self._fleet is not None:
            self._fleet.close()
        if self._manager is not None:
            self._manager.close()

    # --- output -----------------------------------------------------------------------------

    def emit(self, doc: Any) -> None:
        """The one JSON document of a ``--json`` run (with ``extra``'s fields)."""
        if isinstance(doc, dict) and self.extra:
            doc = {**doc, **self.extra}
        self.out.write(json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n")
        self.out.flush()

    def show(self, table: RenderableType) -> None:
        if self.out.isatty():
            self.console.print(table)
            return
        from .layout import FittedTable

        if isinstance(table, FittedTable):
            from .render import pipe_width

            lines = table.plain(pipe_width())
            if lines is not None:  # the lines rich would draw, without importing it
                self.out.write("".join(line + "\n" for line in lines))
                return
        # In a file or pipe, drop the padding rich adds after the last column, for diff and awk.
        with self.console.capture() as captured:
            self.console.print(table)
        self.out.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))

    def say(self, text: str) -> None:
        """A line of human output on stdout (plain text, never rich markup)."""
        self.out.write(text + "\n")

    def note(self, text: str) -> None:
        """A remark for people, on stderr so it never mixes with output meant for a pipe."""
        self.err.write(text + "\n")
        self.err.flush()

    def fail_with(self, exc: ModelManagerError, solution: str | None = None) -> int:
        """Report ``exc`` with its solution, or with ``solution`` where the command knows the exact next
        step, and return its exit code."""
        if solution is None:
            hint = HINTS.get(exc.kind_key)
            solution = f"{exc.solution} ({hint})" if hint else exc.solution
        if (
            isinstance(exc, ModelNotInstalledError)
            and self._manager is not None
            and self.host not in ("all", "auto")
        ):
            # "Not installed" may only mean "not seen": say so when Ollama did not answer.
            self.installed_state()
        if self.json:
            self.emit({"success": False, **exc.to_dict(), "solution": solution})
        self.note(f"{exc.message}\nSolution: {solution}")
        return exc.exit_code

    @property
    def stored_state(self) -> bool:
        """Commands that read installed state as the last sync stored it, without asking Ollama."""
        return getattr(self.args, "command", None) in STORED_STATE_COMMANDS

    def installed_state(self) -> bool:
        """Whether installed flags are current; when they are not, say so (human output only).

        Stored-state commands count any earlier sync as known. Installed state never read from Ollama is
        shown as unknown, not as "no"."""
        seen = self.manager.installed_as_of() is not None
        known = seen if self.stored_state else self.manager.installed_state_known()
        self.installed_view = "known" if known else "last seen" if seen else "unknown"
        if not known and not self.json:
            detail = "showing what was last seen" if seen else "Ollama has not been read yet"
            self.note(
                f"Note: Ollama at {self.manager.ollama.host} gave no usable answer; installed state is "
                f"unknown ({detail})."
            )
        return known


def current_or_none(manager: ManagerCore) -> str | None:
    try:
        return manager.current_model()
    except ModelManagerError:
        return None


def described(
    manager: ManagerCore, info: ModelInfo, vram_gb: float | None = None, **extra: Any
) -> dict[str, Any]:
    # The metadata dict with its verdict in vram_gb (detected when None), as every face shows it.
    return manager.metadata(info, vram_gb, **extra)


def source_note(label: str) -> str:
    """ " (VRAM detected)", " (VRAM override (MODEL_MANAGER_VRAM_GB))", or nothing for an argument."""
    return f" ({label})" if label else ""
