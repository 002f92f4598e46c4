"""Pull progress: a live rich bar per layer on a terminal, plain lines otherwise.

Ollama streams one line per step: ``pulling manifest``, then ``pulling <digest>`` with ``total`` and
``completed`` bytes for each layer (the layers download one after another), then ``verifying sha256
digest``, ``writing manifest``, ``success``. The terminal display keeps a bar per layer, as ``ollama
pull`` does; the plain display prints each status once and a layer's progress at every tenth, so a log
file stays short however fast the stream is.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import IO, TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

LAYER_PREFIX = "pulling "
PLAIN_STEPS = 10


def _is_layer(status: str, total: int) -> bool:
    return status.startswith(LAYER_PREFIX) and total > 0


class PullDisplay(Protocol):
    """Receives the manager's progress callback and is closed when the pull ends, however it ends."""

    def update(self, status: str, completed: int, total: int) -> None: ...

    def close(self) -> None: ...


class PlainDisplay:
    """Progress as lines of text, for logs and pipes."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._last_status = ""
        self._steps: dict[str, int] = {}
        self._started: dict[str, tuple[float, int]] = {}

    def update(self, status: str, completed: int, total: int) -> None:
        if not _is_layer(status, total):
            if status != self._last_status:
                self._write(status)
            self._last_status = status
            return
        now = time.monotonic()
        start = self._started.setdefault(status, (now, completed))
        step = completed * PLAIN_STEPS // total
        if status == self._last_status and step <= self._steps.get(status, -1):
            return
        self._last_status = status
        self._steps[status] = step
        line = f"{status}: {_bytes(completed)}/{_bytes(total)} ({completed * 100 // total}%)"
        elapsed = now - start[0]
        if elapsed > 0 and completed > start[1]:
            line += f" {_bytes(int((completed - start[1]) / elapsed))}/s"
        self._write(line)

    def _write(self, line: str) -> None:
        self._stream.write(line + "\n")
        self._stream.flush()

    def close(self) -> None:
        self._stream.flush()


class RichDisplay:
    """A live bar per layer with bytes, rate and time left; other statuses print as lines above."""

    def __init__(self, stream: IO[str]) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._progress: Progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(file=stream, highlight=False),
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._last_status = ""
        self._progress.start()

    def update(self, status: str, completed: int, total: int) -> None:
        if not _is_layer(status, total):
            if status != self._last_status:
                self._progress.console.print(status, highlight=False, markup=False)
            self._last_status = status
            return
        self._last_status = status
        task = self._tasks.get(status)
        if task is None:
            task = self._tasks[status] = self._progress.add_task(status, total=total)
        self._progress.update(task, completed=completed, total=total)

    def close(self) -> None:
        self._progress.stop()

    def __enter__(self) -> RichDisplay:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _bytes(n: int) -> str:
    """Decimal units, as Ollama reports sizes."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n}B"


def make_display(stream: IO[str]) -> PullDisplay:
    """The rich display on a terminal, plain lines anywhere else."""
    return RichDisplay(stream) if stream.isatty() else PlainDisplay(stream)
