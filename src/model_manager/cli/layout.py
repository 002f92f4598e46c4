"""Tables that fit the terminal: columns chosen and wrapped by the width they are printed in.

Figures never wrap and are never left out; names and notes wrap at sensible characters; optional columns
go first when even short headers and wrapping leave a table too wide; below any workable width each row
becomes a block of "Header  value" lines.

rich draws the tables. Output that is not a terminal, where no cell wraps, gets the same lines from
``FittedTable.plain`` without importing rich (a fifth of a command's start-up); a test holds the two equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult
    from rich.table import Table

GAP = 3
"""Columns of a SIMPLE_HEAD table without edges are set apart by three cells (padding, rule, padding)."""
RULE = "─"
"""What the SIMPLE_HEAD box draws under the header, across the whole table."""


def cell_len(text: str) -> int:
    """Terminal cells ``text`` takes: its length when it is ASCII, else as rich counts them."""
    if text.isascii():
        return len(text)
    from rich.cells import cell_len as cells

    return cells(text)


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

    def plain(self, width: int) -> list[str] | None:
        """The lines rich draws for ``width`` cells, trailing spaces left out, where every cell is plain ASCII
        text that fits its column (nothing wraps, nothing could be read as markup, no outer spaces); else None."""
        planned = layout(self.columns, self.rows, width)
        if planned is None:
            return None
        keep, headers, widths = planned
        if not keep or not all(widths[i] for i in keep):
            return None  # rich gives an empty column a cell of its own

        def plain(text: str, i: int) -> bool:
            # rich trims a cell's outer spaces when it justifies it, and reads "[" as markup
            trimmed = text.strip()
            return (
                text.isascii()
                and text in (trimmed, " " * len(text))
                and "[" not in text
                and len(text) <= widths[i]
            )

        if not all(plain(headers[i], i) and all(plain(row[i], i) for row in self.rows) for i in keep):
            return None

        def line(cells: Sequence[str]) -> str:
            padded = (
                cells[i].rjust(widths[i]) if self.columns[i].right else cells[i].ljust(widths[i])
                for i in keep
            )
            return (" " * GAP).join(padded).rstrip()

        ruled = RULE * (sum(widths[i] for i in keep) + GAP * (len(keep) - 1))
        return [line(headers), ruled, *(line(row) for row in self.rows)]

    def table(self, width: int) -> Table:
        """The table for ``width`` cells; too narrow for any table, one "Header  value" block per row."""
        from rich import box
        from rich.table import Table

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
        from rich.table import Table

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
