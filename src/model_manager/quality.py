"""Quality scores: the benchmark sets the catalog's figures come from, and an estimate for a model the
catalog lacks.

Scores are comparable within one benchmark set only (docs/catalog.md names each set and where its
figures come from). A model the catalog lacks gets a score placed on its set's scale by parameter count,
from the catalog's models of the same set: interpolated in log(parameters) between the nearest smaller
and larger model of the same architecture, else the mean of the three nearest in size of any
architecture; never extrapolated past the largest or smallest known model. Peers that think (the
``thinking`` capability) place a thinking model, and the others the rest, where both exist. Pure.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .types import CatalogEntry

VISION_BENCHMARK = "OpenVLM avg"
"""OpenCompass OpenVLM leaderboard: the mean of its eight benchmarks."""
TEXT_BENCHMARK = "Open LLM Leaderboard v2 avg"
"""Hugging Face Open LLM Leaderboard v2: the normalised mean of its six benchmarks."""
EMBEDDING_BENCHMARK = "MTEB en avg"
"""MTEB English: the mean over tasks (v1, or v2 where the entry says so)."""
SHORT_NAMES = {VISION_BENCHMARK: "VLM", TEXT_BENCHMARK: "LLM", EMBEDDING_BENCHMARK: "MTEB"}
"""How a table names each set in a narrow column."""
SOURCE_KINDS = ("measured", "published", "estimate")
"""How a ``quality_source`` begins: an independent leaderboard, the model's makers, or a placement."""


def benchmark_for(capabilities: Iterable[str]) -> str:
    """The benchmark set a model is scored on: vision models on a vision set, embedding models on an
    embedding set, every other model on a text set."""
    caps = set(capabilities)
    if "embedding" in caps:
        return EMBEDDING_BENCHMARK
    if "vision" in caps:
        return VISION_BENCHMARK
    return TEXT_BENCHMARK


def is_estimate(source: str) -> bool:
    return source.startswith("estimate")


@dataclass(frozen=True)
class QualityEstimate:
    score: float
    source: str
    benchmark: str


def _peers(entries: Iterable[CatalogEntry], benchmark: str) -> list[CatalogEntry]:
    return [
        e
        for e in entries
        if e.quality_score is not None and e.quality_benchmark == benchmark and e.parameter_count > 0
    ]


def _label(entry: CatalogEntry) -> str:
    return f"{entry.name} ({entry.quality_score:g})"


def _interpolate(peers: Sequence[CatalogEntry], params: float) -> tuple[float, str]:
    """Linear in log(parameters) between the nearest smaller and larger peer; the nearest end outside."""
    ordered = sorted(peers, key=lambda e: (e.parameter_count, e.name))
    below = [e for e in ordered if e.parameter_count <= params]
    above = [e for e in ordered if e.parameter_count > params]
    if not below or not above:
        end = below[-1] if below else above[0]
        return float(end.quality_score or 0.0), f"set equal to {_label(end)}, the nearest in size"
    low, high = below[-1], above[0]
    lo_s, hi_s = float(low.quality_score or 0.0), float(high.quality_score or 0.0)
    span = math.log(high.parameter_count) - math.log(low.parameter_count)
    t = (math.log(params) - math.log(low.parameter_count)) / span if span else 0.0
    return lo_s + t * (hi_s - lo_s), f"interpolated between {_label(low)} and {_label(high)}"


def _nearest(peers: Sequence[CatalogEntry], params: float, k: int = 3) -> tuple[float, str]:
    near = sorted(peers, key=lambda e: (abs(math.log(e.parameter_count / params)), e.name))[:k]
    score = sum(float(e.quality_score or 0.0) for e in near) / len(near)
    return score, "the mean of the nearest in size, " + ", ".join(_label(e) for e in near)


def estimate_quality(
    entries: Iterable[CatalogEntry], family: str, parameter_count: float, capabilities: Sequence[str]
) -> QualityEstimate | None:
    """A score for a model the catalog lacks, marked as an estimate; None when its size is unknown or the
    catalog has no scored model of its benchmark set."""
    benchmark = benchmark_for(capabilities)
    peers = _peers(entries, benchmark)
    if parameter_count <= 0 or not peers:
        return None
    # Reasoning models score low on the text set's harness (docs/catalog.md), so a model is placed among
    # peers that think as it does, where there are any.
    thinking = "thinking" in set(capabilities)
    alike = [e for e in peers if ("thinking" in e.capabilities) == thinking]
    peers = alike or peers
    same = [e for e in peers if family and e.family == family]
    if same:
        score, how = _interpolate(same, parameter_count)
        basis = f"same architecture ({family})"
    else:
        score, how = _nearest(peers, parameter_count)
        basis = "no scored model of its architecture"
    source = (
        f"estimate: by parameter count ({parameter_count / 1e9:.2f}B), {basis}: {how}; "
        f"on the {benchmark} scale, not measured"
    )
    return QualityEstimate(round(min(100.0, max(0.0, score)), 2), source, benchmark)


class Standings:
    """Where a score stands in its benchmark set: the share of the catalog's scored models on the same set
    that score lower (a tie counts half), 0–1.

    Scores of two sets say nothing of each other, so a ranking over models of different sets compares their
    standings instead; within one set the standing orders models as their scores do."""

    def __init__(self, entries: Iterable[CatalogEntry]) -> None:
        scores: dict[str, list[float]] = {}
        for e in entries:
            if e.quality_score is not None and e.quality_benchmark:
                scores.setdefault(e.quality_benchmark, []).append(float(e.quality_score))
        self._scores = {benchmark: sorted(found) for benchmark, found in scores.items()}

    def of(self, score: float | None, benchmark: str) -> float | None:
        """The standing of ``score`` on ``benchmark``; None without a score or a set to place it in."""
        scores = self._scores.get(benchmark)
        if score is None or not scores:
            return None
        below = bisect_left(scores, score)
        ties = bisect_right(scores, score) - below
        return (below + ties / 2) / len(scores)
