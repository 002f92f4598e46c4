"""The commands that act: pull, rm, use, plan, ps, gpu, sync, export, import and serve."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from ..errors import (
    EXIT_OK,
    ConfirmationRequiredError,
    DownloadFailedError,
    InvalidRequestError,
    ModelNotInstalledError,
    NotConfirmedError,
    OllamaUnavailableError,
    OperationInterruptedError,
)

if TYPE_CHECKING:
    from ..types import ModelInfo

from .context import Context, described, source_note

# --- operations ----------------------------------------------------------------------------------


def cmd_pull(ctx: Context) -> int:
    from .progress import PullDisplay, make_display

    name = ctx.args.model
    again = f"model-manager pull {name}" + (f" --host {ctx.host}" if ctx.host else "")
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
        return ctx.fail_with(unreachable, f"{unreachable.solution}; then `{again}` resumes the download")
    except KeyboardInterrupt:
        if display is not None:
            display.close()
            display = None
        return ctx.fail_with(
            OperationInterruptedError(f"pull of {name}"),
            f"Run `{again}` again to resume: the downloaded part is kept",
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
        ctx.emit({"success": True, "model": described(ctx.manager, result.info, fit=fit), "message": message})
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
    ctx.say(f"{plan.model} in {memory.available_gb:.1f} GB {memory.word}{source_note(memory.label)}")
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
