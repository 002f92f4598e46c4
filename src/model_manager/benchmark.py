"""Benchmarks on this machine, and the generation speed they and everyday use measure.

``Benchmarks.run`` sends a fixed prompt through Ollama's ``/api/generate`` (not streamed, with fixed options;
a vision model also gets the bundled test photo, ``data/bench_photo.png``, drawn by
``scripts/make_bench_photo.py``) and keeps what Ollama's own timing fields say (ollama/ollama api/types.go
``Metrics``): the load (``load_duration``), the prompt (``prompt_eval_count`` over ``prompt_eval_duration``),
the generation (``eval_count`` over ``eval_duration``), and time to first token, approximated as the load
plus the prompt's evaluation. Figures are kept per model and per Ollama host (its name in the fleet: ``local``
for the configured one); every benchmark's and every recorded use's generation timing is pooled into one
measured figure, which replaces the bandwidth estimate (``speed_of``).
"""

from __future__ import annotations

import base64
import functools
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .config import DEFAULT_HOST_NAME, parse_count, parse_seconds
from .errors import InvalidRequestError, ModelNotInstalledError, OllamaError
from .names import name_key, stored_name_key
from .speed import Speed
from .store import utc_now
from .types import ModelInfo, ProgressCallback

if TYPE_CHECKING:
    from .measured import BenchmarkRun, MeasuredSpeed
    from .ollama_client import OllamaClient
    from .store import Store

TEXT_PROMPT = "In three sentences, say what makes a photograph well composed."
PHOTO_PROMPT = "Describe this photo in two sentences, then rate its composition from 1 to 10."
OPTIONS = {"temperature": 0, "top_k": 1, "num_predict": 128}
"""Greedy decoding and a fixed answer length, so that runs of one model compare."""
PHOTO_PATH = Path(__file__).parent / "data" / "bench_photo.png"
MEASURED_TTL_S = 1.0
"""How long measured speeds read from the store are reused before the store is asked whether anything
changed (this process's own writes are seen at once)."""


@functools.cache
def photo_base64() -> str:
    """The bundled test photo as Ollama's ``images`` take it."""
    return base64.b64encode(PHOTO_PATH.read_bytes()).decode("ascii")


class Benchmarks:
    """Benchmarks and measured speeds on one Ollama host, kept in the store."""

    def __init__(
        self, store: Store, ollama: Callable[[], OllamaClient], host: str = DEFAULT_HOST_NAME
    ) -> None:
        self.store, self._ollama, self.host = store, ollama, host
        self._lock = threading.Lock()
        self._measured: dict[str, MeasuredSpeed] | None = None
        self._marker: tuple[int, int] | None = None
        self._checked = -math.inf

    @staticmethod
    def check(info: ModelInfo) -> None:
        """Whether ``info`` can be benchmarked. Raises ModelNotInstalledError, InvalidRequestError."""
        if not info.installed:
            raise ModelNotInstalledError(info.name)
        if "completion" not in info.capabilities:
            raise InvalidRequestError(
                f"{info.name} generates no text (it embeds), so there is nothing to time"
            )

    def run(self, info: ModelInfo, progress: ProgressCallback | None = None) -> BenchmarkRun:
        """Benchmark the installed model ``info`` and keep the result. Raises ModelNotInstalledError,
        InvalidRequestError (a model that generates no text), OllamaError (an answer without timing), and
        what a load raises."""
        from .measured import BenchmarkRun

        self.check(info)
        ollama, tag = self._ollama(), info.ollama_tag
        seeing = "vision" in info.capabilities
        cold = name_key(tag) not in {stored_name_key(r.name) for r in ollama.running()}
        if progress is not None:
            progress("loading and generating" if cold else "generating", 0, 0)
        images = (photo_base64(),) if seeing else ()
        done = ollama.generate(tag, PHOTO_PROMPT if seeing else TEXT_PROMPT, images=images, options=OPTIONS)
        if done.eval_count <= 0 or done.eval_duration_ns <= 0:
            raise OllamaError(
                f"{tag}: Ollama's answer has no generation timing (eval_count {done.eval_count}, "
                f"eval_duration {done.eval_duration_ns})"
            )
        result = BenchmarkRun(
            model=info.name,
            host=self.host,
            ollama_tag=tag,
            at=utc_now(),
            with_image=seeing,
            cold=cold,
            load_s=done.load_duration_ns / 1e9,
            prompt_tokens=done.prompt_eval_count,
            prompt_s=done.prompt_eval_duration_ns / 1e9,
            eval_tokens=done.eval_count,
            eval_s=done.eval_duration_ns / 1e9,
        )
        if progress is not None:
            progress("keeping the figures", 0, 0)  # the last point where a cancelled job keeps nothing
        self.store.save_benchmark(result)
        self.invalidate()
        return result

    def record(
        self,
        name: str,
        seconds: float,
        success: bool,
        eval_count: object,
        eval_s: object,
        host: str | None = None,
    ) -> None:
        """Record one use of ``name`` (its canonical name) on ``host`` (default: this one) with its generation
        timing (Ollama's ``eval_count`` and ``eval_duration`` in seconds), pooled; a use that generated
        nothing is recorded without it. Raises InvalidRequestError for a bad figure, or only one of the two
        (nothing is recorded)."""
        if eval_count is None or eval_s is None:
            raise InvalidRequestError("eval_count and eval_duration_s are given together or not at all")
        tokens, duration = parse_count(eval_count, "eval_count"), parse_seconds(eval_s, "eval_duration_s")
        where = host or self.host
        if not tokens or not duration:
            self.store.record_usage(name, seconds, success, host=where)
            return
        self.store.record_usage_timing(
            name, seconds, success, host=where, eval_tokens=tokens, eval_s=duration
        )
        self.invalidate()

    def invalidate(self) -> None:
        with self._lock:
            self._measured = None

    def measured(self) -> dict[str, MeasuredSpeed]:
        """What this host has measured, by name key; reread when the store has changed."""
        with self._lock:
            now = time.monotonic()
            if self._measured is not None and now - self._checked < MEASURED_TTL_S:
                return self._measured
            marker = self.store.change_marker()
            if self._measured is None or marker != self._marker:
                found = self.store.measured_speeds(self.host)
                self._measured = {stored_name_key(k): v for k, v in found.items()}
            self._marker, self._checked = marker, now
            return self._measured

    def measured_of(self, name: str) -> MeasuredSpeed | None:
        return self.measured().get(stored_name_key(name))

    def speed_of(self, info: ModelInfo) -> Speed | None:
        """The measured speed of ``info`` on this host, where anything has timed it."""
        found = self.measured().get(stored_name_key(info.name))
        if found is None or found.tokens_per_second is None:
            return None
        latest = (
            f"; latest benchmark {found.benchmark.at[:16].replace('T', ' ')} UTC" if found.benchmark else ""
        )
        basis = (
            f"measured on Ollama host {self.host}: {found.eval_tokens:,} tokens generated in "
            f"{found.eval_s:.2f} s over {found.samples} run(s){latest}"
        )
        return Speed.measured(found.eval_tokens, round(found.eval_s * 1e9), basis)
