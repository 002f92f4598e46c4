"""The fleet on the command line: ``hosts``, and what ``--host`` chooses.

``--host NAME`` runs a command against that host's manager (the same command, the same output, with
``host`` in its JSON); ``--host all`` asks every host at once (``list``, ``ps``, ``stats``, ``sync``,
``recommend``); ``--host auto`` lets placement choose (``pull``, ``use``). A URL given to ``--host`` is
still read as Ollama's address, with a note that ``--ollama-host`` is its name now.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..config import parse_host_name
from ..errors import EXIT_FAILED, EXIT_OK, InvalidRequestError
from .context import ALIASES, Context
from .operations import cmd_gpu, cmd_pull, cmd_use

if TYPE_CHECKING:
    from ..fleet import Answer

WORDS: dict[str, frozenset[str]] = {
    "all": frozenset({"list", "ps", "stats", "sync", "recommend"}),
    "auto": frozenset({"pull", "use"}),
}
NO_HOST = {
    "export": "export and import cover the whole store, every host's usage with it",
    "import": "export and import cover the whole store, every host's usage with it",
    "hosts": "hosts manages the fleet itself",
    "serve": "serve runs beside this machine's Ollama (its host's name is MODEL_MANAGER_HOST_NAME); "
    "`serve --host ADDRESS` is the address it binds",
}


def choose_host(ctx: Context) -> None:
    """Read ``--host`` into ``ctx.host`` (or, for a URL, ``ctx.url_from_host``). Raises
    InvalidRequestError for a host word the command does not take or a name that is not one."""
    raw = getattr(ctx.args, "host", None)
    if raw is None:
        return
    text, command = raw.strip(), ALIASES.get(ctx.args.command, ctx.args.command)
    if "://" in text or ":" in text:
        if ctx.args.ollama_host:
            raise InvalidRequestError(
                f"--host {text} and --ollama-host both give Ollama's address: --host names a fleet host now"
            )
        ctx.note(
            f"Note: --host {text} is read as Ollama's address, as before; --host names a fleet host now "
            f"(NAME, all or auto), so write --ollama-host {text}"
        )
        ctx.url_from_host = text
        return
    if command in NO_HOST:
        raise InvalidRequestError(f"{command} does not take --host: {NO_HOST[command]}")
    word = text.lower()
    if word in WORDS:
        if command not in WORDS[word]:
            takes = ", ".join(sorted(WORDS[word]))
            raise InvalidRequestError(f"--host {word} goes with {takes}; {command} takes one host's name")
        ctx.host = word
        return
    ctx.host = parse_host_name(text, "--host")
    ctx.extra["host"] = ctx.manager.settings.host_name  # raises UnknownHostError for a name not in the store


def fleet_command(ctx: Context, command: str) -> Callable[[Context], int] | None:
    """The fleet's own handler of ``command`` with the ``--host`` given, or None for the usual one."""
    if command == "hosts":
        return cmd_hosts
    if ctx.host in WORDS:
        return FLEET_COMMANDS[(command, ctx.host)]
    if ctx.host is not None and command in ("stats", "gpu"):
        return cmd_stats_host if command == "stats" else cmd_gpu_host
    return None


# --- hosts ---------------------------------------------------------------------------------------


def cmd_hosts(ctx: Context) -> int:
    a, fleet = ctx.args, ctx.fleet
    if a.hosts_command == "add":
        host, new = fleet.add_host(a.name, a.url, a.vram)
        message = f"{'Added' if new else 'Updated'} host {host.name} at {host.url}; memory: {host.describe_memory()}"
        return _done(ctx, message, host=host.to_dict(), added=new)
    if a.hosts_command in ("rm", "remove"):
        host = fleet.remove_host(a.name)
        return _done(ctx, f"Removed host {host.name} ({host.url}); its recorded usage and jobs are kept")
    answers = fleet.check()
    if ctx.json:
        hosts = [{**x.host_dict(), "version": x.value} for x in answers]
        ctx.emit({"hosts": hosts, "count": len(hosts)})
        return EXIT_OK
    from .layout import Col, FittedTable

    columns = [
        Col("Host", wrap=True, min_width=8),
        Col("URL", wrap=True, min_width=14),
        Col("Memory", wrap=True, min_width=16),
        Col("Ollama", wrap=True, min_width=12),
    ]
    rows = [
        (
            x.host.name + (" (here)" if x.host.own else ""),
            x.host.url,
            x.host.describe_memory(),
            f"answers, version {x.value}" if x.ok else "unreachable",
        )
        for x in answers
    ]
    ctx.show(FittedTable(columns, rows))
    _notes(ctx, answers)
    return EXIT_OK


def _done(ctx: Context, message: str, **extra: Any) -> int:
    if ctx.json:
        ctx.emit({"success": True, "message": message, **extra})
    else:
        ctx.say(message)
    return EXIT_OK


def _notes(ctx: Context, answers: list[Answer[Any]], then: str = "") -> None:
    """A note on stderr for each host that did not answer."""
    for x in answers:
        if x.error is not None:
            ctx.note(f"Note: host {x.host.name} ({x.host.url}) is unreachable: {x.error.message}{then}")


# --- every host ----------------------------------------------------------------------------------


def cmd_list_all(ctx: Context) -> int:
    from ..fleet import fleet_models_dicts

    a = ctx.args
    models, answers = ctx.fleet.listing("all", a.installed, a.purpose, a.max_vram)
    rows = fleet_models_dicts(models)
    if ctx.json:
        ctx.emit({"models": rows, "count": len(rows), "hosts": [x.host_dict() for x in answers]})
        return EXIT_OK
    _notes(ctx, answers, "; its models are shown as last seen")
    if not rows:
        ctx.say("No models match.")
        return EXIT_OK
    from .layout import Col, FittedTable
    from .render import download_size, vram

    columns = [
        Col("Model", wrap=True, min_width=14),
        Col("Purpose"),
        Col("Min VRAM", "VRAM", right=True),
        Col("Download Size", "Download", right=True, optional=True),
        Col("Installed on", "Installed", wrap=True, min_width=9),
        Col("Loaded on", "Loaded", wrap=True, min_width=7),
        Col("Fits fully on", "Fits", wrap=True, min_width=8, optional=True, drop=1),
    ]
    lines = [
        (
            m["name"],
            m["purpose"].capitalize(),
            vram(m["min_vram_gb"], estimated=m["min_vram_source"] != "catalog"),
            download_size(m["download_size_mb"]),
            ", ".join(m["installed_on"]) or "-",
            ", ".join(m["loaded_on"]) or "-",
            ", ".join(h for h, v in m["hosts"].items() if v["fit"] == "full") or "-",
        )
        for m in rows
    ]
    ctx.show(FittedTable(columns, lines))
    return EXIT_OK


def cmd_ps_all(ctx: Context) -> int:
    answers = ctx.fleet.running("all")
    rows = [{**m.to_dict(), "host": x.host.name} for x in answers for m in x.value or []]
    if ctx.json:
        ctx.emit({"models": rows, "hosts": [x.host_dict() for x in answers]})
        return EXIT_OK
    _notes(ctx, answers)
    if not rows:
        ctx.say("No models loaded.")
        return EXIT_OK
    from .layout import Col, FittedTable
    from .render import size_bytes, until

    columns = [
        Col("Host", wrap=True, min_width=8),
        Col("Model", wrap=True, min_width=14),
        Col("Size", right=True),
        Col("On GPU", right=True),
        Col("Processor"),
        Col("Until", optional=True),
    ]
    lines = [
        (
            r["host"],
            r["name"],
            size_bytes(r["size_bytes"]),
            size_bytes(r["size_vram_bytes"]),
            r["processor"],
            until(r["expires_at"]),
        )
        for r in rows
    ]
    ctx.show(FittedTable(columns, lines))
    return EXIT_OK


def cmd_stats_all(ctx: Context) -> int:
    a = ctx.args
    every = ctx.fleet.all_statistics(a.model)
    if ctx.json:
        ctx.emit({"statistics": every})
        return EXIT_OK
    rows = sorted(every.values(), key=lambda s: (-s["usage_count"], s["name"]))
    shown = rows if a.all or a.model else [s for s in rows if s["usage_count"]]
    if not shown:
        ctx.say("No usage recorded yet.")
        return EXIT_OK
    from .layout import Col, FittedTable
    from .render import percent, seconds

    columns = [
        Col("Model", wrap=True, min_width=14),
        Col("Uses", right=True),
        Col("Per host", wrap=True, min_width=12),
        Col("Success", right=True),
        Col("Avg time", right=True),
    ]
    lines = [
        (
            s["name"],
            str(s["usage_count"]),
            ", ".join(f"{h} {v['usage_count']}" for h, v in s["hosts"].items()) or "-",
            percent(s["success_rate"]) if s["usage_count"] else "-",
            seconds(s["avg_inference_time"]) if s["usage_count"] else "-",
        )
        for s in shown
    ]
    ctx.show(FittedTable(columns, lines))
    return EXIT_OK


def cmd_stats_host(ctx: Context) -> int:
    a = ctx.args
    found = {name: s.to_dict() for name, s in ctx.fleet.statistics(ctx.host or "local", a.model).items()}
    if a.model:
        one = next(iter(found.values()))
        if ctx.json:
            ctx.emit({"statistics": one})
        else:
            from .render import stats_details

            ctx.show(stats_details(one))
        return EXIT_OK
    if ctx.json:
        ctx.emit({"statistics": found})
        return EXIT_OK
    shown = sorted(
        (s for s in found.values() if s["usage_count"]), key=lambda s: (-s["usage_count"], s["name"])
    )
    if not shown:
        ctx.say(f"No usage recorded on {ctx.extra.get('host')} yet.")
        return EXIT_OK
    from .render import stats_table

    ctx.show(stats_table(shown))
    return EXIT_OK


def cmd_sync_all(ctx: Context) -> int:
    answers = ctx.fleet.sync("all")
    if ctx.json:
        hosts = [{**x.host_dict(), "sync": x.value.to_dict() if x.value else None} for x in answers]
        ctx.emit({"success": all(x.ok for x in answers), "hosts": hosts})
    else:
        for x in answers:
            if x.value is None:
                continue
            ctx.say(f"{x.host.name} ({x.host.url}) has {len(x.value.installed)} models installed.")
            for key in ("added", "removed"):
                names = getattr(x.value, key)
                if names:
                    ctx.say(f"  {key.capitalize()}: {', '.join(names)}")
        _notes(ctx, answers)
    return EXIT_OK if all(x.ok for x in answers) else EXIT_FAILED


def cmd_recommend_all(ctx: Context) -> int:
    a = ctx.args
    if a.all:
        return _every_priority_on_every_host(ctx)
    answers = ctx.fleet.recommend("all", a.vram, a.priority, capability=a.capability)
    if ctx.json:
        hosts = [{**x.host_dict(), "recommendation": x.value.to_dict() if x.value else None} for x in answers]
        ctx.emit({"priority": a.priority, "hosts": hosts})
    else:
        for x in answers:
            if x.value is not None:
                ctx.say(f"{x.host.name}: {x.value.model or 'nothing'} ({x.value.reason})")
        _notes(ctx, answers)
    return EXIT_OK if any(x.value and x.value.model for x in answers) else EXIT_FAILED


def _every_priority_on_every_host(ctx: Context) -> int:
    """``recommend --all --host all``: each host's best model of each priority, in its own memory."""
    a = ctx.args
    answers = ctx.fleet.ask(ctx.fleet.hosts(), lambda m: m.recommend_all(a.vram, capability=a.capability))
    if ctx.json:
        hosts = [
            {**x.host_dict(), "recommendations": None if x.value is None else [r.to_dict() for r in x.value]}
            for x in answers
        ]
        ctx.emit({"capability": a.capability, "hosts": hosts})
    else:
        for x in answers:
            for r in x.value or ():
                ctx.say(f"{x.host.name}: {r.priority.value}: {r.model or 'nothing'} ({r.reason})")
        _notes(ctx, answers)
    return EXIT_OK if any(r.model for x in answers for r in x.value or ()) else EXIT_FAILED


def _placed(ctx: Context, installed_only: bool) -> None:
    from ..placement import place

    chosen = place(ctx.fleet, ctx.args.model, installed_only=installed_only)
    ctx.note(f"Host: {chosen.host.name} ({chosen.host.url}): {chosen.model} {chosen.reason}")
    ctx.host = chosen.host.name
    ctx.extra.update(host=chosen.host.name, placement=chosen.to_dict())


def cmd_pull_auto(ctx: Context) -> int:
    _placed(ctx, installed_only=False)
    return cmd_pull(ctx)


def cmd_use_auto(ctx: Context) -> int:
    _placed(ctx, installed_only=True)
    return cmd_use(ctx)


def cmd_gpu_host(ctx: Context) -> int:
    manager = ctx.manager
    if manager is ctx.base:
        return cmd_gpu(ctx)
    report = manager.gpu.report().to_dict()
    if ctx.json:
        ctx.emit(report)
        return EXIT_OK
    from .render import devices_table, gb

    ctx.say(f"Memory available for models on {ctx.host}: {gb(report['available_gb'])} ({report['platform']})")
    if report["devices"]:
        ctx.show(devices_table(report["devices"]))
    for line in report["notes"]:
        ctx.say(f"Note: {line}")
    return EXIT_OK


FLEET_COMMANDS: dict[tuple[str, str], Callable[[Context], int]] = {
    ("list", "all"): cmd_list_all,
    ("ps", "all"): cmd_ps_all,
    ("stats", "all"): cmd_stats_all,
    ("sync", "all"): cmd_sync_all,
    ("recommend", "all"): cmd_recommend_all,
    ("pull", "auto"): cmd_pull_auto,
    ("use", "auto"): cmd_use_auto,
}
