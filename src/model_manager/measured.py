"""What a generation took, as Ollama times it: one answer's timing, one benchmark's figures, and what a host
has measured of a model over benchmarks and timed uses. Plain records (apart from ``types`` so that the
command line's start-up does not build them: only benchmarks and measured speeds need them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Generation:
    """One ``/api/generate`` answer's text and Ollama's own timing of it (``api.Metrics``: nanoseconds and
    token counts; Ollama leaves a zero field out, so absent reads as 0)."""

    response: str
    total_duration_ns: int
    load_duration_ns: int
    prompt_eval_count: int
    prompt_eval_duration_ns: int
    eval_count: int
    eval_duration_ns: int

    @classmethod
    def from_answer(cls, doc: Mapping[str, Any]) -> Generation:
        """The record of a non-streamed generate answer. Raises ValueError for a field of the wrong type."""

        def number(key: str) -> int:
            value = doc.get(key) or 0  # ollama/ollama api/types.go ``Metrics``: a zero field is left out
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{key!r} is {type(value).__name__}, expected a whole number")
            return value

        text = doc.get("response") or ""
        if not isinstance(text, str):
            raise ValueError(f"'response' is {type(text).__name__}, expected a string")
        return cls(
            text,
            number("total_duration"),
            number("load_duration"),
            number("prompt_eval_count"),
            number("prompt_eval_duration"),
            number("eval_count"),
            number("eval_duration"),
        )


@dataclass(frozen=True)
class BenchmarkRun:
    """One benchmark of a model on one Ollama host, in seconds and tokens from Ollama's timing fields.

    ``cold``: the model was not loaded when the run began, so ``load_s`` is a real load. Time to first token
    is approximated as the load plus the prompt's evaluation (Ollama reports no first-token time)."""

    model: str
    host: str
    ollama_tag: str
    at: str
    with_image: bool
    cold: bool
    load_s: float
    prompt_tokens: int
    prompt_s: float
    eval_tokens: int
    eval_s: float

    @property
    def first_token_s(self) -> float:
        return self.load_s + self.prompt_s

    @property
    def prompt_tokens_per_second(self) -> float | None:
        return (
            round(self.prompt_tokens / self.prompt_s, 1) if self.prompt_s > 0 and self.prompt_tokens else None
        )

    @property
    def tokens_per_second(self) -> float | None:
        return round(self.eval_tokens / self.eval_s, 1) if self.eval_s > 0 and self.eval_tokens else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "host": self.host,
            "ollama_tag": self.ollama_tag,
            "benchmarked_at": self.at,
            "with_image": self.with_image,
            "cold": self.cold,
            "load_s": round(self.load_s, 3),
            "first_token_s": round(self.first_token_s, 3),
            "prompt_tokens": self.prompt_tokens,
            "prompt_tokens_per_second": self.prompt_tokens_per_second,
            "eval_tokens": self.eval_tokens,
            "tokens_per_second": self.tokens_per_second,
        }


@dataclass(frozen=True)
class MeasuredSpeed:
    """What this host has measured of a model's generation: every benchmark's and every recorded use's
    ``eval_count`` and ``eval_duration`` pooled (``samples`` of them), and the latest benchmark."""

    model: str
    host: str
    eval_tokens: int
    eval_s: float
    samples: int
    benchmark: BenchmarkRun | None = None

    @property
    def tokens_per_second(self) -> float | None:
        return round(self.eval_tokens / self.eval_s, 1) if self.eval_s > 0 and self.eval_tokens else None
