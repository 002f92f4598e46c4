"""``recommend`` (one priority, or ``--all``) and ``bench``: which model this machine should run, and how fast
one runs here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import EXIT_FAILED, EXIT_OK, NoRecommendationError
from .context import Context, source_note

if TYPE_CHECKING:
    from ..recommend import Recommendation


def cmd_recommend(ctx: Context) -> int:
    a, m = ctx.args, ctx.manager
    if a.all:
        return _recommend_all(ctx, m.recommend_all(a.vram, capability=a.capability))
    rec = m.recommend(a.vram, a.priority, capability=a.capability)
    assert rec.memory is not None
    vram, source = rec.memory.available_gb, rec.memory.source
    known = ctx.installed_state()
    if ctx.json:
        ctx.emit({**rec.to_dict(), "vram_source": source, "installed_state_known": known})
        return EXIT_OK if rec.model else EXIT_FAILED
    if rec.best is None:
        return ctx.fail_with(NoRecommendationError(rec.reason), _fallback_hint(vram, a.capability))
    from .render import SCORE_LEGEND, candidates_table

    ctx.say(f"Recommended: {rec.model}")
    ctx.say(f"Why: {rec.reason}" + source_note(rec.memory.label))
    ctx.show(candidates_table([c.to_dict() for c in rec.candidates], rec.model, view=ctx.installed_view))
    ctx.say(SCORE_LEGEND)
    action = "use" if rec.best.info.installed else "pull"
    ctx.say(f"Next: model-manager {action} {rec.model}")
    return EXIT_OK


def _fallback_hint(vram: float, capability: str | None) -> str:
    with_cap = f" --capability {capability}" if capability else ""
    return (
        f"Use smaller model (try another priority, e.g. `model-manager recommend {vram:g} speed{with_cap}`)"
    )


def _recommend_all(ctx: Context, recs: tuple[Recommendation, ...]) -> int:
    memory = recs[0].memory
    assert memory is not None
    answers: list[dict[str, Any]] = [r.to_dict() for r in recs]
    known = ctx.installed_state()
    found = any(r.model for r in recs)
    if ctx.json:
        ctx.emit(
            {
                "recommendations": answers,
                "capability": recs[0].capability.value if recs[0].capability else None,
                "available_vram_gb": round(memory.available_gb, 2),
                "vram_source": memory.source,
                "installed_state_known": known,
            }
        )
        return EXIT_OK if found else EXIT_FAILED
    if not found:
        return ctx.fail_with(
            NoRecommendationError(recs[-1].reason), _fallback_hint(memory.available_gb, None)
        )
    from .render import SCORE_LEGEND, recommendations_table

    seeing = f", {recs[0].capability.value}" if recs[0].capability else ""
    ctx.say(f"Best here for {memory.available_gb:.1f} GB{seeing}{source_note(memory.label)}:")
    ctx.show(recommendations_table(answers, view=ctx.installed_view))
    for r in recs:
        ctx.say(f"{r.priority.value}: {r.reason}")
    ctx.say(SCORE_LEGEND)
    return EXIT_OK


def cmd_bench(ctx: Context) -> int:
    m, name = ctx.manager, ctx.args.model
    if ctx.json or not ctx.err.isatty():
        run = m.benchmark(name)
    else:
        from .render import make_console

        with make_console(ctx.err).status(f"Benchmarking {name} through Ollama…"):
            run = m.benchmark(name)
    doc = run.to_dict()
    message = f"Benchmarked {run.model}: {doc['tokens_per_second']:.1f} tok/s on Ollama host {run.host}"
    if ctx.json:
        ctx.emit({"success": True, "benchmark": doc, "message": message})
        return EXIT_OK
    from .render import benchmark_details

    ctx.say(message)
    ctx.show(benchmark_details(doc))
    ctx.say("Kept as the speed measured here: listings and `recommend` use it instead of the estimate.")
    return EXIT_OK
