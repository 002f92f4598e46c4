"""Placement: which host of the fleet a model goes to (``pull``/``use`` with ``--host auto``).

Every host is asked at once (``Fleet.ask``) for its record of the model and judged by the one fit verdict
(``MemoryPlanner.verdict``) in that host's memory: the host where it is installed and fits fully, else
the one where it fits fully with the most free memory, else the best partial fit (the most layers on the
GPU). A host whose memory is known (detected here, reported within three heartbeats, or the ``--vram`` it
was added with) comes before one with a stale report or no figure at all, among those where the model
runs. A switch goes only where the model is installed. The answer names the host and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import (
    InsufficientVramError,
    ModelNotInstalledError,
)
from .fleet import Answer, Fleet
from .hosts import Host
from .manager import ManagerCore
from .memory.verdict import FULL, PARTIAL, Verdict
from .switching import SwitchResult
from .types import ModelInfo, ProgressCallback

TIERS = {"installed": 0, FULL: 1, PARTIAL: 2}
NOWHERE = 3


@dataclass(frozen=True)
class Option:
    """One host's case for taking the model."""

    host: Host
    info: ModelInfo
    verdict: Verdict

    @property
    def level(self) -> str:
        """The verdict's level; without architecture facts, the catalog's Min VRAM decides."""
        level = self.verdict.level
        if level is None:
            return FULL if self.verdict.compatible else "none"
        return level

    @property
    def tier(self) -> int:
        # "Fits fully" is fully on a GPU: a host without one runs the model on its CPU, as a partial fit does.
        level = PARTIAL if self.level == FULL and self.verdict.memory.cpu_only else self.level
        if level == FULL and self.info.installed:
            return TIERS["installed"]
        return TIERS.get(level, NOWHERE)

    def rank(self) -> tuple[int, int, int, float, int, str]:
        """Runs at all, memory known, tier, share of layers on the GPU (partial fits), free memory, name."""
        runs = self.tier < NOWHERE
        v = self.verdict
        partial = self.tier == TIERS[PARTIAL] and v.layers_total
        share = (v.layers_on_gpu or 0) / v.layers_total if partial and v.layers_total else 0.0
        return (
            0 if runs else 1,
            0 if self.host.memory_known or not runs else 1,
            self.tier,
            -share,
            -v.memory.available_bytes,
            self.host.name,
        )

    def why(self, passed_over: list[Option]) -> str:
        """Why this host, given the hosts where the model would do better but whose memory is not known."""
        where, known = f"on {self.host.name}", " whose memory is known" if passed_over else ""
        if self.tier == TIERS["installed"]:
            head = f"installed {where} and fits fully there"
        elif self.tier == TIERS[FULL]:
            head = f"fits fully {where}, with the most free memory of the hosts{known} where it does"
        else:
            head = f"fits fully on no host{known}; {self.host.name} runs it best"
        text = f"{head}: {self.verdict.describe()} (memory {self.host.describe_memory()})"
        if passed_over:
            names = ", ".join(o.host.name for o in passed_over)
            text += f"; passed over for memory that is stale or unknown: {names}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host.name,
            "installed": self.info.installed,
            "fit": self.level,
            "available_gb": round(self.verdict.memory.available_gb, 2),
            "memory": self.host.describe_memory(),
            "memory_known": self.host.memory_known,
            "verdict": self.verdict.describe(),
        }


@dataclass(frozen=True)
class Placement:
    """The host chosen for a model, why, and every host's case (best first; unreachable ones apart)."""

    model: str
    host: Host
    reason: str
    options: tuple[Option, ...]
    unreachable: tuple[Answer[tuple[ModelInfo, Verdict]], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "host": self.host.name,
            "reason": self.reason,
            "options": [o.to_dict() for o in self.options],
            "unreachable": [a.host_dict() for a in self.unreachable],
        }


def _case(manager: ManagerCore, name: str) -> tuple[ModelInfo, Verdict]:
    """The model's record on ``manager``'s host, its installed state read from that host's Ollama now
    (a host fault makes the host unreachable), and its verdict in the host's memory."""
    manager.sync()
    info = manager.resolve(name)
    return info, manager.planner.verdict(info, manager.memory(), detail=True)


def place(fleet: Fleet, name: str, *, installed_only: bool = False) -> Placement:
    """The host ``name`` should go to (``installed_only``: among those that have it, for a switch).

    Raises InvalidModelNameError, ModelNotFoundError, HostUnreachableError (no host answers),
    ModelNotInstalledError (``installed_only`` and no host has it), InsufficientVramError (it runs on no
    host), naming each host's verdict.
    """
    fleet.core.resolve(name)  # an unknown or invalid name fails before any host is asked
    answers = fleet.ask(fleet.hosts(), lambda m: _case(m, name))
    options = [Option(a.host, *a.value) for a in fleet.reachable(answers) if a.value]
    down = tuple(a for a in answers if not a.ok)
    if installed_only:
        options = [o for o in options if o.info.installed]
        if not options:
            raise ModelNotInstalledError(
                f"{name.strip()} on any host that answers (pull it with --host auto)"
            )
    options.sort(key=Option.rank)
    best = options[0]
    if best.tier == NOWHERE:
        cases = "; ".join(f"{o.host.name}: {o.verdict.describe()}" for o in options)
        raise InsufficientVramError(f"{best.info.name} runs on no host: {cases}")
    # The hosts that would have been chosen, were their memory known.
    passed_over = [o for o in options if not o.host.memory_known and _unranked(o) < _unranked(best)]
    return Placement(best.info.name, best.host, best.why(passed_over), tuple(options), down)


def _unranked(option: Option) -> tuple[Any, ...]:
    """The option's rank with whether its host's memory is known left out."""
    rank = option.rank()
    return rank[:1] + rank[2:]


def download(
    fleet: Fleet, name: str, host: str | None, progress: ProgressCallback | None = None
) -> tuple[str, Placement | None]:
    """Pull ``name`` on ``host`` (``auto``: where placement puts it); returns the message and the
    placement when one was made."""
    placement = place(fleet, name) if _auto(host) else None
    manager = fleet.context(placement.host) if placement else fleet.manager(host)
    return manager.download(name, progress), placement


def switch(
    fleet: Fleet, name: str, host: str | None, *, wait_s: float | None = None
) -> tuple[SwitchResult, str, Placement | None]:
    """Make ``name`` the current model of ``host`` (``auto``: the host placement picks among those that
    have it); returns the result, the host's name and the placement when one was made."""
    placement = place(fleet, name, installed_only=True) if _auto(host) else None
    manager = fleet.context(placement.host) if placement else fleet.manager(host)
    return manager.switch(name, wait_s=wait_s), manager.settings.host_name, placement


def _auto(host: str | None) -> bool:
    return host is not None and host.strip().lower() == "auto"
