"""The commands: each parses nothing (argparse did), makes one manager call, renders, returns an exit code.

Imported by :func:`model_manager.cli.main` only once a command is known, so the manager's imports are
paid by commands that need them, never by ``--help``. Output rules:

* ``--json``: exactly one JSON document on stdout, for failures too (``{"success": false, "error":
  code, "message", "solution"}``, the REST API's envelope); the human error text still goes to stderr.
* Human: rich tables on stdout; notes, prompts, progress and errors on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import (
    EXIT_FAILED,
    EXIT_OK,
    ConfirmationRequiredError,
    DownloadFailedError,
    InvalidRequestError,
    ModelManagerError,
    ModelNotInstalledError,
    NoRecommendationError,
    NotConfirmedError,
    OllamaUnavailableError,
    OperationInterruptedError,
)
from ..names import stored_name_key

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from ..config import Settings
    from ..manager import ManagerCore
    from ..types import CurrentModel, ModelInfo

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
        self._console: Console | None = None
        #: How installed flags are shown: "known", "last seen" or "unknown" (never read from Ollama).
        self.installed_view = "known"

    @property
    def settings(self) -> Settings:
        """Settings from the environment and the command line (raises InvalidSettingError)."""
        if self._settings is None:
            from ..config import load_settings

            self._settings = load_settings(host=self.args.ollama_host, data_dir=self.args.data_dir)
        return self._settings

    @property
    def manager(self) -> ManagerCore:
        if self._manager is None:
            from ..inventory import INSTALLED_TTL_S
            from ..manager import ManagerCore

            max_age = math.inf if self.stored_state else INSTALLED_TTL_S
            self._manager = ManagerCore(settings=self.settings, installed_max_age_s=max_age)
        return self._manager

    @property
    def console(self) -> Console:
        if self._console is None:
            from .render import make_console

            self._console = make_console(self.out)
        return self._console

    def close(self) -> None:
        if self._manager is not None:
            self._manager.close()

    # --- output -----------------------------------------------------------------------------

    def emit(self, doc: Any) -> None:
        """The one JSON document of a ``--json`` run."""
        self.out.write(json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n")
        self.out.flush()

    def show(self, table: RenderableType) -> None:
        if self.out.isatty():
            self.console.print(table)
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
        if isinstance(exc, ModelNotInstalledError) and self._manager is not None:
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


def _current_or_none(manager: ManagerCore) -> str | None:
    try:
        return manager.current_model()
    except ModelManagerError:
        return None


def _described(
    manager: ManagerCore, info: ModelInfo, vram_gb: float | None = None, **extra: Any
) -> dict[str, Any]:
    # The metadata dict with its verdict in vram_gb (detected when None), as every face shows it.
    return manager.metadata(info, vram_gb, **extra)


def _source_note(label: str) -> str:
    """ " (VRAM detected)", " (VRAM override (MODEL_MANAGER_VRAM_GB))", or nothing for an argument."""
    return f" ({label})" if label else ""


# --- catalog commands (work while Ollama is down) ---------------------------------------------------


def cmd_list(ctx: Context) -> int:
    a, m = ctx.args, ctx.manager
    memory = m.memory(a.max_vram)
    models = [m.metadata(info, memory=memory) for info in m.models(a.installed, a.purpose, a.max_vram)]
    known = ctx.installed_state()
    current = _current_or_none(m)
    if ctx.json:
        ctx.emit(
            {"models": models, "count": len(models), "current_model": current, "installed_state_known": known}
        )
        return EXIT_OK
    if not models:
        ctx.say("No models match.")
        return EXIT_OK
    from .render import models_table

    ctx.show(models_table(models, current=current, view=ctx.installed_view))
    if current is not None and any(
        stored_name_key(meta["name"]) == stored_name_key(current) for meta in models
    ):
        ctx.say("* current model")
    return EXIT_OK


NOT_LOADED = "not loaded: Ollama unloaded it after its keep-alive; it loads again on first use"


def cmd_current(ctx: Context) -> int:
    state = ctx.manager.current_state()
    known = ctx.installed_state()
    if ctx.json:
        ctx.emit({**state.to_dict(), "installed_state_known": known})
    elif state.name is None:
        ctx.say("No current model. Choose one with: model-manager use MODEL")
    else:
        ctx.say(f"Current model: {state.name}")
        ctx.say(_loaded_line(state))
    return EXIT_OK


def _loaded_line(state: CurrentModel) -> str:
    """Whether Ollama has the current model loaded, in words (it has no "current model" of its own)."""
    r = state.running
    if r is not None:
        from .render import size_bytes, until

        return f"Loaded: {r.processor}, {size_bytes(r.size_vram_bytes)} in VRAM, until {until(r.expires_at)}"
    if state.loaded is None:
        return "Loaded: unknown (Ollama did not say what it has loaded)"
    return NOT_LOADED[0].upper() + NOT_LOADED[1:]


def cmd_recommend(ctx: Context) -> int:
    a, m = ctx.args, ctx.manager
    rec = m.recommend(a.vram, a.priority)
    assert rec.memory is not None
    vram, source = rec.memory.available_gb, rec.memory.source
    known = ctx.installed_state()
    if ctx.json:
        ctx.emit(
            {
                **rec.to_dict(),
                "priority": a.priority,
                "vram_source": source,
                "installed_state_known": known,
            }
        )
        return EXIT_OK if rec.model else EXIT_FAILED
    if rec.best is None:
        return ctx.fail_with(
            NoRecommendationError(rec.reason),
            f"Use smaller model (try another priority, e.g. `model-manager recommend {vram:g} speed`)",
        )
    from .render import candidates_table

    ctx.say(f"Recommended: {rec.model}")
    ctx.say(f"Why: {rec.reason}" + _source_note(rec.memory.label))
    ctx.show(candidates_table([c.to_dict() for c in rec.candidates], rec.model, view=ctx.installed_view))
    action = "use" if rec.best.info.installed else "pull"
    ctx.say(f"Next: model-manager {action} {rec.model}")
    return EXIT_OK


def cmd_stats(ctx: Context) -> int:
    a, m = ctx.args, ctx.manager
    if a.model:
        one = m.statistics(a.model).to_dict()
        known = ctx.installed_state()
        if ctx.json:
            ctx.emit({"statistics": one, "installed_state_known": known})
        else:
            from .render import stats_details

            ctx.show(stats_details(one, view=ctx.installed_view))
        return EXIT_OK
    every = {name: s.to_dict() for name, s in m.all_statistics().items()}
    known = ctx.installed_state()
    if ctx.json:
        ctx.emit({"statistics": every, "installed_state_known": known})
        return EXIT_OK
    rows = sorted(every.values(), key=lambda s: (-s["usage_count"], s["name"]))
    shown = rows if a.all else [s for s in rows if s["usage_count"]]
    if not shown:
        ctx.say("No usage recorded yet.")
        return EXIT_OK
    from .render import stats_table

    ctx.show(stats_table(shown, view=ctx.installed_view))
    if len(shown) < len(rows):
        ctx.say(f"{len(rows) - len(shown)} more models without recorded usage (--all shows them).")
    return EXIT_OK


def cmd_info(ctx: Context) -> int:
    m = ctx.manager
    meta = _described(m, m.model_info(ctx.args.model))
    known = ctx.installed_state()
    if ctx.json:
        ctx.emit({"model": meta, "installed_state_known": known})
        return EXIT_OK
    from .render import model_details

    ctx.show(model_details(meta, view=ctx.installed_view))
    return EXIT_OK


def cmd_check(ctx: Context) -> int:
    result = ctx.manager.compatibility(ctx.args.model, ctx.args.vram)
    assert result.fit is not None
    memory = result.fit.memory
    code = EXIT_OK if result.compatible else EXIT_FAILED
    if ctx.json:
        ctx.emit({**result.to_dict(), "vram_source": memory.source})
        return code
    ctx.say(result.message + _source_note(memory.label))
    if not result.compatible:
        ctx.note(f"Solution: Use smaller model ({HINTS['insufficient_vram']})")
    return code


# --- operations ----------------------------------------------------------------------------------


def cmd_pull(ctx: Context) -> int:
    from .progress import PullDisplay, make_display

    name = ctx.args.model
    display: PullDisplay | None = None if ctx.json else make_display(ctx.err)
    try:
        message = ctx.manager.download(name, display.update if display else None)
    except DownloadFailedError as exc:
        if not isinstance(exc.__cause__, OllamaUnavailableError):
            raise
        # Ollama itself did not answer: say so as use, sync and ps do, not "Download failed … Retry".
        if display is not None:
            display.close()
            display = None
        unreachable = exc.__cause__
        return ctx.fail_with(
            unreachable, f"{unreachable.solution}; then `model-manager pull {name}` resumes the download"
        )
    except KeyboardInterrupt:
        if display is not None:
            display.close()
            display = None
        return ctx.fail_with(
            OperationInterruptedError(f"pull of {name}"),
            f"Run `model-manager pull {name}` again to resume: the downloaded part is kept",
        )
    finally:
        if display is not None:
            display.close()
    if ctx.json:
        ctx.emit({"success": True, "model": name, "message": message})
    else:
        ctx.say(message)
    return EXIT_OK


def cmd_rm(ctx: Context) -> int:
    m, name = ctx.manager, ctx.args.model
    m.canonical_name(name)  # an invalid name is refused as such, whatever Ollama's state
    if not m.installed_state_known():
        # Without Ollama's answer "not installed" would only mean "not seen".
        raise OllamaUnavailableError(
            f"Ollama at {m.ollama.host} did not answer, so {name.strip()} cannot be deleted"
        )
    info = m.model_info(name)
    if not info.installed:
        raise ModelNotInstalledError(info.name)
    if not ctx.args.yes:
        if not sys.stdin.isatty():
            raise ConfirmationRequiredError(f"not deleting {info.name}: stdin is not a terminal")
        if not _confirm(ctx, f"Delete {info.name} ({info.ollama_tag}, {_size(info)}) from Ollama? [y/N] "):
            raise NotConfirmedError(f"{info.name} was not deleted")
    message = m.delete(name)
    if ctx.json:
        ctx.emit({"success": True, "model": info.name, "message": message})
    else:
        ctx.say(message)
    return EXIT_OK


def _size(info: ModelInfo) -> str:
    from .render import download_size

    return download_size(info.download_size_mb)


def _confirm(ctx: Context, prompt: str) -> bool:
    ctx.err.write(prompt)
    ctx.err.flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def cmd_use(ctx: Context) -> int:
    name = ctx.args.model
    if ctx.json or not ctx.err.isatty():
        result = ctx.manager.switch(name)
    else:
        from .render import make_console

        with make_console(ctx.err).status(f"Loading {name} in Ollama…"):
            result = ctx.manager.switch(name)
    message = f"Switched to {result.info.name}"
    if ctx.json:
        fit = result.fit.to_dict() if result.fit else None
        ctx.emit(
            {"success": True, "model": _described(ctx.manager, result.info, fit=fit), "message": message}
        )
        return EXIT_OK
    ctx.say(message)
    if result.fit is not None and result.fit.level == "partial":
        ctx.note(f"Note: {result.info.name} {result.fit.describe()}")
    return EXIT_OK


def cmd_plan(ctx: Context) -> int:
    a = ctx.args
    plan = ctx.manager.plan(a.model, a.vram, a.context, a.kv_cache_type, a.parallel)
    doc = plan.to_dict()
    if ctx.json:
        ctx.emit({**doc, "vram_source": plan.memory.source})
        return EXIT_OK
    from .render import plan_table

    memory = plan.memory
    ctx.say(f"{plan.model} in {memory.available_gb:.1f} GB {memory.word}{_source_note(memory.label)}")
    ctx.say(f"Ollama's settings: {plan.verdict.describe()}")
    if plan.rows:
        ctx.show(plan_table(doc))
    ctx.say(plan.summary())
    return EXIT_OK


def cmd_ps(ctx: Context) -> int:
    rows = [loaded.to_dict() for loaded in ctx.manager.running_models()]
    if ctx.json:
        ctx.emit({"models": rows})
        return EXIT_OK
    if not rows:
        ctx.say("No models loaded.")
        return EXIT_OK
    from .render import running_table

    ctx.show(running_table(rows))
    return EXIT_OK


def cmd_gpu(ctx: Context) -> int:
    from ..gpu import GPUManager

    # Built without the manager: detection needs no store, and it reads MODEL_MANAGER_VRAM_GB itself,
    # so the report names that variable as the override's source.
    with GPUManager() as gpu:
        report = gpu.report().to_dict()
    if ctx.json:
        ctx.emit(report)
        return EXIT_OK
    from .render import devices_table, gb, probes_table

    summary = f"Memory available for models: {gb(report['available_gb'])} ({report['backend']})"
    override = report["override"]
    if override is not None:
        summary += f"; set by {override['source']}, detected {gb(report['detected_available_gb'])}"
    ctx.say(summary)
    if report["devices"]:
        ctx.show(devices_table(report["devices"]))
    if report["probes"]:
        ctx.show(probes_table(report["probes"]))
    for line in report["notes"]:
        ctx.say(f"Note: {line}")
    return EXIT_OK


def cmd_sync(ctx: Context) -> int:
    result = ctx.manager.sync().to_dict()
    if ctx.json:
        ctx.emit(result)
        return EXIT_OK
    ctx.say(f"Ollama at {ctx.manager.ollama.host} has {len(result['installed'])} models installed.")
    for key in ("added", "removed"):
        if result[key]:
            ctx.say(f"{key.capitalize()}: {', '.join(result[key])}")
    return EXIT_OK


def cmd_export(ctx: Context) -> int:
    path = ctx.args.file
    return _done(ctx, ctx.manager.export_document(path), path=os.path.abspath(path))


def cmd_import(ctx: Context) -> int:
    return _done(ctx, ctx.manager.import_document(ctx.args.file), path=os.path.abspath(ctx.args.file))


def _done(ctx: Context, message: str, **extra: Any) -> int:
    if ctx.json:
        ctx.emit({"success": True, "message": message, **extra})
    else:
        ctx.say(message)
    return EXIT_OK


def cmd_serve(ctx: Context) -> int:
    a = ctx.args
    if ctx.json:
        return ctx.fail_with(
            InvalidRequestError("serve runs until stopped and prints a log, not one JSON document"),
            "Leave out --json",
        )
    from ..api.server import run_from_args

    options = argparse.Namespace(
        host=a.bind_host,
        port=a.port,
        allow_origin=a.allow_origin,
        log_level=a.log_level,
        no_access_log=a.no_access_log,
        open=a.open,
    )
    return run_from_args(options, ctx.settings)


COMMANDS: dict[str, Callable[[Context], int]] = {
    "list": cmd_list,
    "current": cmd_current,
    "recommend": cmd_recommend,
    "stats": cmd_stats,
    "info": cmd_info,
    "check": cmd_check,
    "plan": cmd_plan,
    "pull": cmd_pull,
    "rm": cmd_rm,
    "use": cmd_use,
    "ps": cmd_ps,
    "gpu": cmd_gpu,
    "sync": cmd_sync,
    "export": cmd_export,
    "import": cmd_import,
    "serve": cmd_serve,
}


def run(args: argparse.Namespace) -> int:
    """Run the parsed command; expected failures become a message and an exit code, never a traceback."""
    quiet = logging.NullHandler()
    library_log = logging.getLogger("model_manager")
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG if args.verbose > 1 else logging.INFO, stream=sys.stderr)
    else:
        # The CLI reports failures itself; without a handler, Python would print the library's
        # warnings on stderr a second time, without a solution.
        library_log.addHandler(quiet)
    ctx = Context(args)
    try:
        return COMMANDS[ALIASES.get(args.command, args.command)](ctx)
    except ModelManagerError as exc:
        return ctx.fail_with(exc)
    finally:
        ctx.close()
        library_log.removeHandler(quiet)
