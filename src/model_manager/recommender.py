"""Recommendations on this machine: which catalog models are candidates for a priority, what each is known to
be worth here, and the ranked answer (the rules themselves are pure, in ``recommend``).

A candidate is a catalog model of the priority's purpose, with the capability asked for, that
``compatibility`` calls compatible in the memory; it carries the same verdict ``check`` gives it there, its
generation speed here (measured, else estimated: ``SpeedPlanner.speed``) and its quality standing
(``quality.Standings``, over the catalog's scores).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .quality import Standings
from .recommend import Candidate, Recommendation, nothing_reason, rank, reason
from .types import Capability, Priority

if TYPE_CHECKING:
    from .inventory import Inventory, Snapshot
    from .memory.fit import Memory
    from .memory.planner import MemoryPlanner
    from .speed_planner import SpeedPlanner


class Recommender:
    """Candidates and ranked answers over one inventory, memory planner and speed planner."""

    def __init__(self, inventory: Inventory, planner: MemoryPlanner, speeds: SpeedPlanner) -> None:
        self.inventory, self.planner, self.speeds = inventory, planner, speeds
        self._standings: Standings | None = None

    @property
    def standings(self) -> Standings:
        if self._standings is None:
            self._standings = Standings(self.inventory.catalog)
        return self._standings

    def candidates(
        self, memory: Memory, priority: Priority, capability: Capability | None, snapshot: Snapshot
    ) -> list[Candidate]:
        """The catalog models of ``priority``'s purpose, with ``capability``, that are compatible in ``memory``."""
        found = []
        for info in snapshot:
            if info.purpose is not priority.purpose or not info.in_catalog:
                continue
            if capability is not None and capability.value not in info.capabilities:
                continue
            if self.planner.requirement(info).gb > round(memory.available_gb, 2):
                continue
            verdict = self.planner.verdict(info, memory, detail=True)
            found.append(
                Candidate(
                    info,
                    verdict.requirement.gb,
                    verdict.max_context,
                    verdict,
                    self.speeds.speed(info, verdict),
                    self.standings.of(info.quality_score, info.quality_benchmark),
                )
            )
        return found

    def recommend(
        self,
        memory: Memory,
        priority: Priority,
        capability: Capability | None = None,
        snapshot: Snapshot | None = None,
    ) -> Recommendation:
        """The best candidate first, with why; no candidate: ``model`` is None (call again with another
        priority, as the quick reference's fallback pattern does)."""
        candidates = self.candidates(memory, priority, capability, snapshot or self.inventory.snapshot())
        ranked = tuple(rank(candidates, priority))
        if not ranked:
            why = nothing_reason(priority, capability, memory.available_gb)
            return Recommendation(None, why, memory=memory, priority=priority, capability=capability)
        sets = {c.info.quality_benchmark for c in ranked if c.info.quality_score is not None}
        best = ranked[0]
        passed_over = priority is Priority.SPEED and any(
            c.fits_at_default == best.fits_at_default
            and not c.usable_for_speed
            and (c.tokens_per_second or 0.0) > (best.tokens_per_second or 0.0)
            for c in ranked[1:]
        )
        why = reason(
            best, priority, memory.available_gb, capability, mixed=len(sets) > 1, passed_over=passed_over
        )
        return Recommendation(ranked[0].info.name, why, ranked, memory, priority, capability)

    def recommend_all(
        self, memory: Memory, capability: Capability | None = None
    ) -> tuple[Recommendation, ...]:
        """The best model of each priority in ``memory``, from one snapshot."""
        snapshot = self.inventory.snapshot()
        return tuple(self.recommend(memory, p, capability, snapshot) for p in Priority)
