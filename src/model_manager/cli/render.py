"""Human output: rich tables and the size formats of the quick reference's catalog ("4.7GB", "6GB", "26GB").

Imported only by commands that print for people, so ``--json`` runs and ``--help`` never load rich; rich
itself is imported only to draw (piped tables that need none of it are written by ``FittedTable.plain``).
Formatting helpers are pure functions so tests can pin the exact strings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

from ..config import process_environment
from ..names import stored_name_key
from .layout import Col, FittedTable

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

PIPE_WIDTH = 200
"""Console width when output is not a terminal: wide enough that table rows never wrap in a file."""


def make_console(stream: IO[str]) -> Console:
    """A console on ``stream``; not a terminal means no colour codes and no wrapping at 80 columns."""
    from rich.console import Console

    is_tty = stream.isatty()
    width = None if is_tty or process_environment().get("COLUMNS") else PIPE_WIDTH
    return Console(file=stream, width=width, highlight=False, soft_wrap=False, emoji=False)


def pipe_width() -> int:
    """The width ``make_console`` gives output that is not a terminal: ``COLUMNS`` when it is a number (as
    rich reads it), rich's 80 when it is set to anything else, else ``PIPE_WIDTH``."""
    columns = process_environment().get("COLUMNS")
    if not columns:
        return PIPE_WIDTH
    return int(columns) if columns.isdigit() else 80


# --- formats -------------------------------------------------------------------------------------


def _fixed(value: float, digits: int) -> str:
    """``value`` with ``digits`` decimals; a value that rounds to zero prints without a sign ("0.0",
    never "-0.0")."""
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def gb(value: float | None) -> str:
    """A size in GB as the quick reference's catalog writes download sizes: "1.3GB", "2.0GB", "26GB"."""
    if value is None:
        return "-"
    return f"{_fixed(value, 0)}GB" if value >= 10 else f"{_fixed(value, 1)}GB"


def download_size(mb: float | None) -> str:
    """The catalog's Download Size column from megabytes (decimal, as Ollama counts)."""
    return gb(mb / 1000) if mb else "-"


def context(tokens: int | None) -> str:
    """A context length as the tables show it: "4k", "32k", "128k"; "-" when unknown."""
    if not tokens:
        return "-"
    return f"{tokens // 1024}k" if tokens % 1024 == 0 else f"{tokens:,}"


def fit_cell(fit: Mapping[str, Any] | None) -> str:
    """A verdict in a table cell: "full at 4k", "partial at 32k (20/32 layers)", "none at 4k", "-"."""
    if not fit or fit.get("fit") is None:
        return "-"
    text = f"{fit['fit']} at {context(fit.get('context_length'))}"
    kv = fit.get("kv_cache_type")
    if kv and kv != "f16":
        text += f" {kv}"
    if fit["fit"] == "partial" and fit.get("layers_total"):
        text += f" ({fit['layers_on_gpu']}/{fit['layers_total']} layers)"
    return text


def vram(value: float | None, *, estimated: bool = False) -> str:
    """A VRAM figure as the quick reference writes Min VRAM: whole numbers bare ("6GB"), else one decimal."""
    if value is None:
        return "-"
    text = f"{_fixed(value, 0)}GB" if float(value).is_integer() else f"{_fixed(value, 1)}GB"
    return f"~{text}" if estimated else text


def size_bytes(n: int | None) -> str:
    """Bytes as GB (or MB below 1 GB, where "0.0GB" would say nothing)."""
    if not n:
        return "0B"
    if n < 1e9:
        return f"{n / 1e6:.0f}MB" if n >= 1e6 else f"{n / 1e3:.0f}kB"
    return gb(n / 1e9)


def percent(rate: float) -> str:
    return f"{rate * 100:.1f}%"


def seconds(value: float) -> str:
    return f"{_fixed(value, 2)}s"


def timestamp(value: str | None) -> str:
    """An ISO timestamp shortened to the minute ("2025-01-31 14:05"); "-" when never."""
    if not value:
        return "-"
    return value.replace("T", " ")[:16]


def until(expires_at: str | None) -> str:
    """When Ollama unloads a model, as ``ollama ps``'s UNTIL column says it: "Forever" past 20 years
    (a negative keep-alive), "Stopping..." once passed, else the time to the minute."""
    from datetime import UTC, datetime, timedelta

    try:
        moment = datetime.fromisoformat(expires_at or "")
    except ValueError:
        return timestamp(expires_at)
    now = datetime.now(moment.tzinfo or UTC)
    if moment - now > timedelta(days=20 * 365):
        return "Forever"
    return "Stopping..." if moment < now else timestamp(expires_at)


def yes_no(value: bool) -> str:
    return "yes" if value else "no"


def installed(value: bool, view: str = "known") -> str:
    """An installed flag; ``view`` "unknown" (Ollama never read) shows "unknown", not "no"."""
    return "unknown" if view == "unknown" else yes_no(value)


# --- tables --------------------------------------------------------------------------------------


def _key_values(rows: Iterable[tuple[str, str]]) -> Table:
    from rich.table import Table

    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in rows:
        table.add_row(key, value)
    return table


def models_table(
    models: Sequence[Mapping[str, Any]], *, current: str | None, view: str = "known"
) -> FittedTable:
    """The quick reference's catalog table plus how each model fits here, installed state, usage and the
    current-model marker. "~" marks a Min VRAM computed by the estimate (4,096 context plus the margin).

    ``view``: "known", "last seen" (Ollama did not answer now) or "unknown" (never read)."""
    installed_header = "Installed (last seen)" if view == "last seen" else "Installed"
    fit_header = f"Fit ({models[0]['fit']['memory']['available_gb']:.1f} GB)" if models else "Fit"
    columns = [
        Col(" ", label="Current"),
        Col("Model", wrap=True, min_width=14),
        Col("Size"),
        Col("Purpose"),
        Col("Min VRAM", "VRAM", right=True),
        Col("Download Size", "Download", right=True),
        Col(installed_header, "Inst."),
        Col("Uses", right=True, optional=True),
        # On a narrow terminal the fit goes first: ``check`` and ``info`` say it in full.
        Col(fit_header, "Fit", optional=True),
    ]
    current_key = stored_name_key(current) if current else None
    rows = [
        (
            "*" if current_key is not None and stored_name_key(m["name"]) == current_key else "",
            m["name"],
            m["size"] or "-",
            m["purpose"].capitalize(),
            vram(m["min_vram_gb"], estimated=m["min_vram_source"] != "catalog"),
            download_size(m["download_size_mb"]),
            installed(m["installed"], view),
            str(m["usage_count"]),
            fit_cell(m["fit"]),
        )
        for m in models
    ]
    return FittedTable(columns, rows)


def model_details(meta: Mapping[str, Any], *, view: str = "known") -> Table:
    """``info``: every field of a model's metadata, one per line."""
    estimated = meta["min_vram_source"] != "catalog"
    fit = meta["fit"]
    at = f" at {fit['context_length']:,} context" if fit.get("context_length") else ""
    estimate = f"{meta['estimated_vram_gb']:.1f}GB{at}" if meta["estimated_vram_gb"] is not None else "-"
    rows = [
        ("Model", meta["name"]),
        ("Ollama tag", meta["ollama_tag"]),
        ("Size", meta["size"] or "-"),
        ("Purpose", meta["purpose"].capitalize()),
        ("Description", meta["description"] or "-"),
        ("Recommended use", meta["recommended_use"] or "-"),
        ("Min VRAM", vram(meta["min_vram_gb"], estimated=estimated) + (" (estimated)" if estimated else "")),
        ("Estimate", estimate),
        ("Fit here", fit["summary"]),
        ("Quality", _quality_text(meta)),
        ("Speed here", _speed_text(meta)),
        ("Download size", download_size(meta["download_size_mb"])),
        ("Quantization", meta.get("quantization") or "-"),
        ("Quantizations", ", ".join(meta["quantization_support"]) or "-"),
        ("Capabilities", ", ".join(meta.get("capabilities") or []) or "-"),
        ("Installed", installed(meta["installed"], view)),
        *_usage_rows(meta),
        ("Source", meta.get("source") or "-"),
    ]
    return _key_values(rows)


def _quality_text(meta: Mapping[str, Any]) -> str:
    if meta.get("quality_score") is None:
        return "-"
    estimate = ", an estimate" if (meta.get("quality_source") or "").startswith("estimate") else ""
    return f"{meta['quality_score']:g} ({meta['quality_benchmark']}{estimate})"


def _speed_text(meta: Mapping[str, Any]) -> str:
    tps = meta.get("tokens_per_second")
    return "-" if tps is None else f"{tps:.1f} tok/s, {meta['speed_source']}"


def _usage_rows(stats: Mapping[str, Any]) -> list[tuple[str, str]]:
    used = bool(stats["usage_count"])
    return [
        ("Uses", str(stats["usage_count"])),
        ("Success rate", percent(stats["success_rate"]) if used else "-"),
        ("Avg inference", seconds(stats["avg_inference_time"]) if used else "-"),
        ("Last used", timestamp(stats["last_used"])),
    ]


def _measured_rows(stats: Mapping[str, Any]) -> list[tuple[str, str]]:
    tps, bench = stats.get("measured_tokens_per_second"), stats.get("benchmark")
    rows = [("Measured speed", f"{tps:.1f} tok/s over {stats['speed_samples']} run(s)" if tps else "-")]
    if bench:
        rows.append(
            (
                "Benchmark",
                f"load {bench['load_s']:.2f}s, first token ~{bench['first_token_s']:.2f}s, "
                f"{bench['tokens_per_second']:.1f} tok/s ({timestamp(bench['benchmarked_at'])})",
            )
        )
    return rows


def stats_details(stats: Mapping[str, Any], *, view: str = "known") -> Table:
    """``stats MODEL``: the quick reference's statistics fields, then the speed measured here."""
    return _key_values(
        [
            ("Model", stats["name"]),
            *_usage_rows(stats),
            ("Installed", installed(stats["installed"], view)),
            *_measured_rows(stats),
        ]
    )


def stats_table(rows: Sequence[Mapping[str, Any]], *, view: str = "known") -> FittedTable:
    """``stats``: one line per model, most used first."""
    columns = [
        Col("Model", wrap=True, min_width=14),
        Col("Uses", right=True),
        Col("Success", right=True),
        Col("Avg time", right=True),
        Col("Last used"),
        Col("Installed", "Inst."),
    ]
    lines = []
    for s in rows:
        used = bool(s["usage_count"])
        lines.append(
            (
                s["name"],
                str(s["usage_count"]),
                percent(s["success_rate"]) if used else "-",
                seconds(s["avg_inference_time"]) if used else "-",
                timestamp(s["last_used"]),
                installed(s["installed"], view),
            )
        )
    return FittedTable(columns, lines)


def score_cell(row: Mapping[str, Any]) -> str:
    """A quality score with its set's short name: "62.8 VLM", "41.3* LLM" (``*``: an estimate), "-"."""
    from ..quality import SHORT_NAMES

    score = row.get("quality_score")
    if score is None:
        return "-"
    mark = "*" if row.get("quality_estimated") else ""
    return f"{score:g}{mark} {SHORT_NAMES.get(row.get('quality_benchmark') or '', '?')}"


def speed_cell(row: Mapping[str, Any]) -> str:
    """Tokens per second: "~42.1" estimated, "38.4" measured here, "-" unknown."""
    tps = row.get("tokens_per_second")
    if tps is None:
        return "-"
    return f"{'' if row.get('speed_source') == 'measured' else '~'}{tps:.1f}"


SCORE_LEGEND = (
    "Score: VLM = OpenVLM avg, LLM = Open LLM Leaderboard v2 avg; * an estimate.\n"
    "A score compares within its set only. tok/s: ~ estimated, else measured here."
)


def candidates_table(
    candidates: Sequence[Mapping[str, Any]], chosen: str | None, *, view: str = "known"
) -> FittedTable:
    """``recommend``: every model that fits, best first, with its score, its speed here, its verdict and
    the largest context that fits fully (the same verdict ``check`` gives)."""
    columns = [
        Col(" ", label="Chosen"),
        Col("Candidate", wrap=True, min_width=14),
        Col("Score", right=True),
        Col("tok/s", right=True),
        Col("Fit", wrap=True, min_width=10),
        Col("Fits fully to", "Max ctx", right=True),
        Col("Needs VRAM", "VRAM", right=True, optional=True, drop=1),
        Col("Installed", "Inst."),
        Col("Uses", right=True, optional=True),
    ]
    rows = [
        (
            "*" if c["name"] == chosen else "",
            c["name"],
            score_cell(c),
            speed_cell(c),
            fit_cell(c),
            context(c["max_context"]),
            vram(c["required_vram_gb"]),
            installed(c["installed"], view),
            str(c["usage_count"]),
        )
        for c in candidates
    ]
    return FittedTable(columns, rows)


def recommendations_table(answers: Sequence[Mapping[str, Any]], *, view: str = "known") -> FittedTable:
    """``recommend --all``: the best model of each priority, with its score, speed and fit."""
    columns = [
        Col("Priority"),
        Col("Model", wrap=True, min_width=14),
        Col("Score", right=True),
        Col("tok/s", right=True),
        Col("Fit", wrap=True, min_width=10),
        Col("Fits fully to", "Max ctx", right=True),
        Col("Installed", "Inst.", optional=True),
    ]
    rows = []
    for a in answers:
        best = a["candidates"][0] if a["candidates"] else None
        if best is None:
            rows.append((a["priority"], "none fits", "-", "-", "-", "-", "-"))
            continue
        cells = (score_cell(best), speed_cell(best), fit_cell(best), context(best["max_context"]))
        rows.append((a["priority"], best["name"], *cells, installed(best["installed"], view)))
    return FittedTable(columns, rows)


def benchmark_details(run: Mapping[str, Any]) -> Table:
    """``bench``: one benchmark's figures."""
    prompt_rate = run["prompt_tokens_per_second"]
    prompt = f"{run['prompt_tokens']} tokens" + (f" at {prompt_rate:.1f} tok/s" if prompt_rate else "")
    rows = [
        ("Model", f"{run['model']} ({run['ollama_tag']})"),
        ("Ollama host", run["host"]),
        ("Prompt", "the test photo and a question" if run["with_image"] else "a text question"),
        ("Load", f"{run['load_s']:.2f}s" + ("" if run["cold"] else " (it was loaded already)")),
        ("First token", f"~{run['first_token_s']:.2f}s (load + prompt)"),
        ("Prompt eval", prompt),
        ("Generation", f"{run['eval_tokens']} tokens at {run['tokens_per_second']:.1f} tok/s"),
        ("When", timestamp(run["benchmarked_at"])),
    ]
    return _key_values(rows)


def running_table(rows: Sequence[Mapping[str, Any]]) -> FittedTable:
    """``ps``: what Ollama has loaded, as ``ollama ps`` shows it."""
    columns = [
        Col("Model", wrap=True, min_width=14),
        Col("Ollama tag", "Tag", wrap=True, min_width=12, optional=True, drop=0),
        Col("Size", right=True),
        Col("On GPU", right=True),
        Col("Processor"),
        Col("Context", right=True),
        Col("Until", optional=True, drop=1),
    ]
    lines = [
        (
            r["name"],
            r["ollama_tag"],
            size_bytes(r["size_bytes"]),
            size_bytes(r["size_vram_bytes"]),
            r["processor"],
            str(r["context_length"] or "-"),
            until(r["expires_at"]),
        )
        for r in rows
    ]
    return FittedTable(columns, lines)


def devices_table(devices: Sequence[Mapping[str, Any]]) -> FittedTable:
    """``gpu``: each device the probes found (GpuDevice.to_dict rows)."""
    columns = [
        Col("#", right=True),
        Col("Backend"),
        Col("Name", wrap=True, min_width=10),
        Col("Total", right=True),
        Col("Free", right=True),
        Col("Usable", right=True),
        Col("Source", wrap=True, min_width=7),
        Col("Note", wrap=True, min_width=12),
    ]
    rows = []
    for d in devices:
        note = d.get("problem") or d.get("note") or ("hidden" if not d.get("visible", True) else "")
        # Estimated figures carry "~", as estimated VRAM does in ``list``.
        mark = "" if d["accuracy"] == "exact" else "~"
        rows.append(
            (
                "-" if d["index"] is None else str(d["index"]),
                d["backend"],
                d["name"],
                mark + gb(d["total_bytes"] / 2**30),
                mark + gb(d["free_bytes"] / 2**30),
                mark + gb(d["usable_bytes"] / 2**30),
                d["source"],
                note,
            )
        )
    return FittedTable(columns, rows)


def probes_table(probes: Sequence[Mapping[str, Any]]) -> FittedTable:
    """``gpu``: what each probe saw and whether its answer was used."""
    columns = [Col("Probe"), Col("Status"), Col("Detail", wrap=True, min_width=16)]
    return FittedTable(columns, [(p["probe"], p["status"], p["detail"]) for p in probes])


def plan_table(plan: Mapping[str, Any]) -> FittedTable:
    """``plan``: memory at each context (rows) for each KV cache type (columns), with the fit level."""
    kinds = plan["kv_cache_types"]
    columns = [Col("Context", right=True), *(Col(kind, wrap=True, min_width=8) for kind in kinds)]
    cells = {(r["context_length"], r["kv_cache_type"]): r for r in plan["rows"]}
    rows = []
    for tokens in plan["contexts"]:
        row = [f"{tokens:,}"]
        for kind in kinds:
            r = cells.get((tokens, kind))
            row.append(_plan_cell(r) if r else "-")
        rows.append(row)
    return FittedTable(columns, rows)


def _plan_cell(row: Mapping[str, Any]) -> str:
    if row["problem"]:
        return "cannot load"
    text = f"{row['footprint_gb']:.1f}GB {row['fit']}"
    if row["fit"] == "partial" and row.get("layers_total"):
        text += f" {row['layers_on_gpu']}/{row['layers_total']}"
    return text
