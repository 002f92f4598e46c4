"""Human output: rich tables and the size formats of the quick reference's catalog ("4.7GB", "6GB", "26GB").

Imported only by commands that print for people, so ``--json`` runs and ``--help`` never load rich.
Formatting helpers are pure functions so tests can pin the exact strings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table

from ..config import process_environment
from ..names import stored_name_key

PIPE_WIDTH = 200
"""Console width when output is not a terminal: wide enough that table rows never wrap in a file."""


def make_console(stream: IO[str]) -> Console:
    """A console on ``stream``; not a terminal means no colour codes and no wrapping at 80 columns."""
    is_tty = stream.isatty()
    width = None if is_tty or process_environment().get("COLUMNS") else PIPE_WIDTH
    return Console(file=stream, width=width, highlight=False, soft_wrap=False, emoji=False)


# --- formats -------------------------------------------------------------------------------------


def gb(value: float | None) -> str:
    """A size in GB as the quick reference's catalog writes download sizes: "1.3GB", "2.0GB", "26GB"."""
    if value is None:
        return "-"
    return f"{value:.0f}GB" if value >= 10 else f"{value:.1f}GB"


def download_size(mb: float | None) -> str:
    """The catalog's Download Size column from megabytes (decimal, as Ollama counts)."""
    return gb(mb / 1000) if mb else "-"


def vram(value: float | None, *, estimated: bool = False) -> str:
    """A VRAM figure as the quick reference writes Min VRAM: whole numbers bare ("6GB"), else one decimal."""
    if value is None:
        return "-"
    text = f"{value:.0f}GB" if float(value).is_integer() else f"{value:.1f}GB"
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
    return f"{value:.2f}s"


def timestamp(value: str | None) -> str:
    """An ISO timestamp shortened to the minute ("2025-01-31 14:05"); "-" when never."""
    if not value:
        return "-"
    return value.replace("T", " ")[:16]


def processor(fraction_on_gpu: float) -> str:
    """Where a loaded model runs, as ``ollama ps`` says it: "100% GPU", "100% CPU", "48%/52% CPU/GPU"."""
    on_gpu = round(fraction_on_gpu * 100)
    if on_gpu >= 100:
        return "100% GPU"
    if on_gpu <= 0:
        return "100% CPU"
    return f"{100 - on_gpu}%/{on_gpu}% CPU/GPU"


def yes_no(value: bool) -> str:
    return "yes" if value else "no"


# --- tables --------------------------------------------------------------------------------------

GAP = 3
"""Columns of a SIMPLE_HEAD table without edges are set apart by three cells (padding, rule, padding)."""
BREAKS = ":-/_. "
"""Where a long name may wrap: after these characters, so "llama3.1:8b-" / "instruct", not mid-word."""


@dataclass(frozen=True)
class Col:
    """One column of a table that fits the terminal.

    Figures never wrap and are never left out; ``wrap`` columns (names, notes) wrap onto more lines down
    to ``min_width``; ``optional`` columns (ranked by ``drop``: lower goes first) are left out only when
    the short headers and wrapping still leave the table too wide.
    """

    header: str
    short: str = ""
    right: bool = False
    wrap: bool = False
    min_width: int = 10
    optional: bool = False
    drop: int = 0
    label: str = ""
    """What a row says in the one-block-per-row form when ``header`` is blank (a marker column)."""


class FittedTable:
    """A table laid out at render time for the width it is printed in (``COLUMNS``, the terminal)."""

    def __init__(self, columns: Sequence[Col], rows: Iterable[Sequence[str]]) -> None:
        self.columns = list(columns)
        self.rows = [list(r) for r in rows]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.table(options.max_width)

    def table(self, width: int) -> Table:
        """The table for ``width`` cells; too narrow for any table, one "Header  value" block per row."""
        planned = layout(self.columns, self.rows, width)
        if planned is None:
            return self.stacked()
        keep, headers, widths = planned
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        for i in keep:
            col = self.columns[i]
            table.add_column(
                headers[i],
                justify="right" if col.right else "left",
                width=widths[i],
                no_wrap=not col.wrap,
                overflow="fold" if col.wrap else "ellipsis",
            )
        for row in self.rows:
            table.add_row(*(_broken(row[i], widths[i]) if self.columns[i].wrap else row[i] for i in keep))
        return table

    def stacked(self) -> Table:
        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        for n, row in enumerate(self.rows):
            if n:
                table.add_row("", "")
            for col, cell in zip(self.columns, row, strict=True):
                if cell or col.header.strip():
                    table.add_row(col.header.strip() or col.label, cell)
        return table


def layout(
    columns: Sequence[Col], rows: Sequence[Sequence[str]], width: int
) -> tuple[list[int], list[str], list[int]] | None:
    """(indexes of the columns shown, header of each column, width of each column) for ``width`` cells,
    or None when no table fits without cutting a figure."""
    keep = list(range(len(columns)))
    cells = [max((cell_len(r[i]) for r in rows), default=0) for i in keep]

    def widths_for(headers: Sequence[str]) -> list[int]:
        return [max(cells[i], cell_len(headers[i])) for i in range(len(columns))]

    def total(widths: Sequence[int], shown: Sequence[int]) -> int:
        return sum(widths[i] for i in shown) + GAP * (len(shown) - 1)

    full = [c.header for c in columns]
    natural = widths_for(full)
    if total(natural, keep) <= width:
        return keep, full, natural
    short = [c.short or c.header for c in columns]
    natural = widths_for(short)
    optional = sorted((i for i, c in enumerate(columns) if c.optional), key=lambda i: (columns[i].drop, -i))
    while True:
        shrunk = _shrink(columns, natural, keep, width - GAP * (len(keep) - 1))
        if shrunk is not None:
            return keep, short, shrunk
        if not optional:
            # Narrower than the columns' minimums: wrapping columns give way further, figures never do.
            room = width - GAP * (len(keep) - 1)
            narrowest = _shrink(columns, natural, keep, room, floor=WRAP_FLOOR)
            return None if narrowest is None else (keep, short, narrowest)
        keep.remove(optional.pop(0))


WRAP_FLOOR = 4


def _shrink(
    columns: Sequence[Col], natural: Sequence[int], keep: Sequence[int], room: int, floor: int | None = None
) -> list[int] | None:
    """Widths that fit ``room`` by narrowing the wrapping columns (widest first) down to their
    ``min_width`` (or ``floor``), or None if they cannot."""
    widths = list(natural)
    excess = sum(widths[i] for i in keep) - room
    wrapping = [i for i in keep if columns[i].wrap]
    while excess > 0:
        slack = [i for i in wrapping if widths[i] > min(natural[i], floor or columns[i].min_width)]
        if not slack:
            return None
        widest = max(slack, key=lambda i: widths[i])
        widths[widest] -= 1
        excess -= 1
    return widths


def _broken(text: str, width: int) -> str:
    """``text`` with line breaks after ``BREAKS`` characters so that no line is longer than ``width``
    where a break exists (rich folds what is left)."""
    lines: list[str] = []
    rest = text
    while cell_len(rest) > width:
        cut = max((rest.rfind(ch, 0, width) for ch in BREAKS), default=-1)
        if cut <= 0:
            break
        keep_space = rest[cut] == " "
        lines.append(rest[: cut if keep_space else cut + 1])
        rest = rest[cut + 1 :]
    return "\n".join([*lines, rest])


def _key_values(rows: Iterable[tuple[str, str]]) -> Table:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in rows:
        table.add_row(key, value)
    return table


def models_table(models: Sequence[Mapping[str, Any]], *, current: str | None, known: bool) -> FittedTable:
    """The quick reference's catalog table plus installed state, usage and the current-model marker."""
    installed_header = "Installed" if known else "Installed (last seen)"
    columns = [
        Col(" ", label="Current"),
        Col("Model", wrap=True, min_width=14),
        Col("Size"),
        Col("Purpose"),
        Col("Min VRAM", "VRAM", right=True),
        Col("Download Size", "Download", right=True),
        Col(installed_header, "Inst."),
        Col("Uses", right=True, optional=True),
    ]
    current_key = stored_name_key(current) if current else None
    rows = [
        (
            "*" if current_key is not None and stored_name_key(m["name"]) == current_key else "",
            m["name"],
            m["size"] or "-",
            m["purpose"].capitalize(),
            vram(m["required_vram_gb"], estimated=m["min_vram_gb"] is None),
            download_size(m["download_size_mb"]),
            yes_no(m["installed"]),
            str(m["usage_count"]),
        )
        for m in models
    ]
    return FittedTable(columns, rows)


def model_details(meta: Mapping[str, Any], required_vram_gb: float) -> Table:
    """``info``: every field of a model's metadata, one per line."""
    estimated = meta["min_vram_gb"] is None
    rows = [
        ("Model", meta["name"]),
        ("Ollama tag", meta["ollama_tag"]),
        ("Size", meta["size"] or "-"),
        ("Purpose", meta["purpose"].capitalize()),
        ("Description", meta["description"] or "-"),
        ("Recommended use", meta["recommended_use"] or "-"),
        ("Min VRAM", vram(required_vram_gb, estimated=estimated) + (" (estimated)" if estimated else "")),
        ("Download size", download_size(meta["download_size_mb"])),
        ("Quantization", meta.get("quantization") or "-"),
        ("Quantizations", ", ".join(meta["quantization_support"]) or "-"),
        ("Capabilities", ", ".join(meta.get("capabilities") or []) or "-"),
        ("Installed", yes_no(meta["installed"])),
        *_usage_rows(meta),
        ("Source", meta.get("source") or "-"),
    ]
    return _key_values(rows)


def _usage_rows(stats: Mapping[str, Any]) -> list[tuple[str, str]]:
    used = bool(stats["usage_count"])
    return [
        ("Uses", str(stats["usage_count"])),
        ("Success rate", percent(stats["success_rate"]) if used else "-"),
        ("Avg inference", seconds(stats["avg_inference_time"]) if used else "-"),
        ("Last used", timestamp(stats["last_used"])),
    ]


def stats_details(stats: Mapping[str, Any]) -> Table:
    """``stats MODEL``: the quick reference's statistics fields."""
    return _key_values(
        [("Model", stats["name"]), *_usage_rows(stats), ("Installed", yes_no(stats["installed"]))]
    )


def stats_table(rows: Sequence[Mapping[str, Any]]) -> FittedTable:
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
                yes_no(s["installed"]),
            )
        )
    return FittedTable(columns, lines)


def candidates_table(candidates: Sequence[Mapping[str, Any]], chosen: str | None) -> FittedTable:
    """``recommend``: every model that fits, best first."""
    columns = [
        Col(" ", label="Chosen"),
        Col("Candidate", wrap=True, min_width=14),
        Col("Needs VRAM", "VRAM", right=True),
        Col("Installed", "Inst."),
        Col("Uses", right=True),
        Col("Avg time", right=True),
    ]
    rows = [
        (
            "*" if c["name"] == chosen else "",
            c["name"],
            vram(c["required_vram_gb"]),
            yes_no(c["installed"]),
            str(c["usage_count"]),
            seconds(c["avg_inference_time"]) if c["usage_count"] else "-",
        )
        for c in candidates
    ]
    return FittedTable(columns, rows)


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
            processor(r["gpu_fraction"]),
            str(r["context_length"] or "-"),
            timestamp(r["expires_at"]),
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
