"""The commands that answer from the catalog and the store (they work while Ollama is down), and the
dispatcher. Each parses nothing (argparse did), makes one manager call, renders, returns an exit code.

Imported by :func:`model_manager.cli.main` only once a command is known, so the manager's imports are
paid by commands that need them, never by ``--help``. The commands that act on Ollama are in
``operations``; a run's context and its output rules are in ``context``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import (
    EXIT_FAILED,
    EXIT_OK,
    ModelManagerError,
)
from ..names import stored_name_key

if TYPE_CHECKING:
    from ..types import CurrentModel

from .context import ALIASES, HINTS, Context, current_or_none, described, source_note
from .fleet import choose_host, fleet_command
from .operations import (
    cmd_export,
    cmd_gpu,
    cmd_import,
    cmd_plan,
    cmd_ps,
    cmd_pull,
    cmd_rm,
    cmd_serve,
    cmd_sync,
    cmd_use,
)
from .recommending import cmd_bench, cmd_recommend

# --- catalog commands (work while Ollama is down) ---------------------------------------------------


def cmd_list(ctx: Context) -> int:
    a, m = ctx.args, ctx.manager
    memory = m.memory(a.max_vram)
    models = [m.metadata(info, memory=memory) for info in m.models(a.installed, a.purpose, a.max_vram)]
    known = ctx.installed_state()
    current = current_or_none(m)
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
    meta = described(m, m.model_info(ctx.args.model))
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
    ctx.say(result.message + source_note(memory.label))
    if not result.compatible:
        ctx.note(f"Solution: Use smaller model ({HINTS['insufficient_vram']})")
    return code


COMMANDS: dict[str, Callable[[Context], int]] = {
    "list": cmd_list,
    "current": cmd_current,
    "recommend": cmd_recommend,
    "stats": cmd_stats,
    "info": cmd_info,
    "check": cmd_check,
    "plan": cmd_plan,
    "bench": cmd_bench,
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
        command = ALIASES.get(args.command, args.command)
        choose_host(ctx)
        return (fleet_command(ctx, command) or COMMANDS[command])(ctx)
    except ModelManagerError as exc:
        return ctx.fail_with(exc)
    finally:
        ctx.close()
        library_log.removeHandler(quiet)
