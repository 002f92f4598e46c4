"""Plain records shared by the layers, and the words they use. No I/O here.

``ModelInfo`` is the one record of a model that the manager, the memory planner, the recommender and
the faces pass around: built once per request by the inventory (``inventory.Inventory.snapshot``) from
the catalog entry, the store's record of what Ollama has, the user's overrides and the usage figures.
Dicts exist only at the faces (``views``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import ModelManagerError
from .units import GIB

if TYPE_CHECKING:
    from .measured import MeasuredSpeed

_E = TypeVar("_E", bound="_Words")


class _Words(StrEnum):
    """A closed set of lower-case words, parsed in any case."""

    @classmethod
    def parse(cls: type[_E], value: object) -> _E:
        """Accept a member or its value in any case ("Balanced", "balanced").

        Raises ValueError for anything else.
        """
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            try:
                return cls(value.strip().lower())
            except ValueError:
                pass
        raise ValueError(f"unknown {cls.label()} {value!r}; expected one of: {', '.join(cls.words())}")

    @classmethod
    def words(cls) -> tuple[str, ...]:
        return tuple(m.value for m in cls)

    @classmethod
    def label(cls) -> str:
        return cls.__name__.removeprefix("Model").lower()


class ModelPurpose(_Words):
    """What a model is for (the quick reference's "Model Purposes" table)."""

    SPEED = "speed"
    BALANCED = "balanced"
    QUALITY = "quality"
    SPECIALIZED = "specialized"


class Priority(_Words):
    """What a recommendation optimises for (the quick reference's "Priority Options"): each selects the
    models of the purpose with the same name."""

    SPEED = "speed"
    BALANCED = "balanced"
    QUALITY = "quality"

    @property
    def purpose(self) -> ModelPurpose:
        return ModelPurpose(self.value)


CAPABILITIES = ("completion", "vision", "tools", "embedding", "thinking", "insert")
"""Ollama's capability words (``/api/show`` ``capabilities``)."""

ProgressCallback = Callable[[str, int, int], None]
"""``progress(status, completed, total)``, called for each line of a pull."""


@dataclass(frozen=True)
class CatalogEntry:
    """One known model: the quick reference's metadata plus the facts the memory estimator needs.

    ``name`` is what users call it (the quick reference's name); ``ollama_tag`` is what Ollama pulls and
    runs. ``model_info`` has the shape of Ollama's ``/api/show`` ``model_info`` (GGUF keys prefixed by
    the architecture), so catalog facts and installed-model facts feed the same code.
    """

    name: str
    ollama_tag: str
    size: str
    purpose: ModelPurpose
    description: str
    recommended_use: str
    min_vram_gb: float | None
    download_size_mb: int
    quantization_support: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ("completion",)
    family: str = ""
    quantization: str = ""
    file_size_bytes: int = 0
    projector_bytes: int = 0
    aliases: tuple[str, ...] = ()
    model_info: Mapping[str, Any] = field(default_factory=dict)
    quality_score: float | None = None
    """0–100 on the benchmark set ``quality_benchmark`` names; comparable within one set only."""
    quality_source: str = ""
    """Where the score comes from: ``measured: …``, ``published: …`` (the maker's figure) or ``estimate: …``."""
    quality_benchmark: str = ""
    source: str = "builtin"

    @property
    def parameter_count(self) -> int:
        return int(self.model_info.get("general.parameter_count") or 0)

    def all_names(self) -> tuple[str, ...]:
        """Every name that refers to this entry."""
        return (self.name, self.ollama_tag, *self.aliases)


@dataclass(frozen=True)
class InstalledModel:
    """A model Ollama has on disk (one ``/api/tags`` entry)."""

    name: str
    size_bytes: int
    digest: str
    modified_at: str
    family: str = ""
    parameter_size: str = ""
    quantization_level: str = ""


@dataclass(frozen=True)
class ModelFacts:
    """What ``/api/show`` says about an installed model."""

    name: str
    model_info: Mapping[str, Any]
    capabilities: tuple[str, ...]
    family: str = ""
    parameter_size: str = ""
    quantization_level: str = ""
    projector_info: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelRecord:
    """What the store knows of one model Ollama has (or had): its ``/api/tags`` entry and, once read,
    its ``/api/show`` facts."""

    name: str
    installed: bool
    size_bytes: int
    digest: str
    modified_at: str
    facts: Mapping[str, Any] | None
    updated_at: str


@dataclass(frozen=True)
class RunningModel:
    """A model Ollama has loaded (one ``/api/ps`` entry)."""

    name: str
    size_bytes: int
    size_vram_bytes: int
    expires_at: str = ""
    context_length: int = 0

    @property
    def gpu_fraction(self) -> float:
        return self.size_vram_bytes / self.size_bytes if self.size_bytes else 0.0

    @property
    def processor(self) -> str:
        """Where it runs, in ``ollama ps``'s words (ollama/ollama cmd/cmd.go ``ListRunningHandler``):
        ``100% GPU``, ``100% CPU``, ``48%/52% CPU/GPU`` (the CPU share rounded half away from zero, as
        Go's ``math.Round``), or ``Unknown``."""
        size, vram = self.size_bytes, self.size_vram_bytes
        if vram == 0:
            return "100% CPU"
        if vram == size:
            return "100% GPU"
        if vram > size or size == 0:
            return "Unknown"
        share = float(size - vram) / float(size) * 100
        cpu = math.floor(share) + (1 if share - math.floor(share) >= 0.5 else 0)
        return f"{cpu}%/{100 - cpu}% CPU/GPU"


@dataclass(frozen=True)
class PullProgress:
    """One line of a pull stream."""

    status: str
    digest: str = ""
    total: int = 0
    completed: int = 0


@dataclass(frozen=True)
class ModelStats:
    """Aggregated usage of one model, kept up to date on every recorded event."""

    name: str
    usage_count: int = 0
    success_count: int = 0
    total_time: float = 0.0
    last_used: str | None = None

    @property
    def avg_inference_time(self) -> float:
        return self.total_time / self.usage_count if self.usage_count else 0.0

    @property
    def success_rate(self) -> float:
        return self.success_count / self.usage_count if self.usage_count else 0.0


@dataclass(frozen=True)
class ModelInfo:
    """Everything known of one model: the quick reference's metadata fields, what Ollama has of it, and
    its usage here.

    ``entry`` is its catalog entry (None for an installed model the catalog lacks); ``record`` is the
    store's record of it while Ollama has it installed. ``key`` is the one name key (``names.name_key``)
    that every lookup, statistic and override uses.
    """

    name: str
    key: str
    ollama_tag: str
    size: str
    purpose: ModelPurpose
    description: str
    recommended_use: str
    min_vram_gb: float | None
    quantization_support: tuple[str, ...]
    download_size_mb: int
    installed: bool
    capabilities: tuple[str, ...]
    family: str
    quantization: str
    parameter_count: int
    source: str
    """``catalog``, ``user_catalog`` or ``ollama`` (installed, not in the catalog)."""
    stats: ModelStats
    quality_score: float | None = None
    """The catalog's score, or for a model the catalog lacks an estimate (``quality.estimate_quality``)."""
    quality_source: str = ""
    quality_benchmark: str = ""
    entry: CatalogEntry | None = field(default=None, repr=False, compare=False)
    record: ModelRecord | None = field(default=None, repr=False, compare=False)

    @property
    def in_catalog(self) -> bool:
        return self.entry is not None


@dataclass(frozen=True)
class Statistics:
    """One model's usage as the quick reference's "Statistics Fields" describe it."""

    name: str
    stats: ModelStats
    installed: bool
    measured: MeasuredSpeed | None = None
    """Generation speed measured on this Ollama host (benchmarks and uses recorded with token counts)."""

    def to_dict(self) -> dict[str, Any]:
        m = self.measured
        return {
            "name": self.name,
            "usage_count": self.stats.usage_count,
            "last_used": self.stats.last_used,
            "avg_inference_time": self.stats.avg_inference_time,
            "success_rate": self.stats.success_rate,
            "installed": self.installed,
            "measured_tokens_per_second": m.tokens_per_second if m else None,
            "speed_samples": m.samples if m else 0,
            "benchmark": m.benchmark.to_dict() if m and m.benchmark else None,
        }


@dataclass(frozen=True)
class LoadedModel:
    """A model Ollama has loaded, under the name users know it by."""

    name: str
    running: RunningModel

    def to_dict(self) -> dict[str, Any]:
        r = self.running
        return {
            "name": self.name,
            "ollama_tag": r.name,
            "size_bytes": r.size_bytes,
            "size_vram_bytes": r.size_vram_bytes,
            "gpu_fraction": r.gpu_fraction,
            "processor": r.processor,
            "expires_at": r.expires_at,
            "context_length": r.context_length,
        }


@dataclass(frozen=True)
class CurrentModel:
    """The current model (the quick reference's: the one the app chose, while Ollama has it installed)
    beside what Ollama has loaded (``/api/ps``). Ollama has no current model: it unloads an idle model
    after its keep-alive and evicts one to make room for another, and loads it again on first use.

    ``running`` is its ``/api/ps`` entry when loaded; ``loaded_known`` is False when ``/api/ps`` did
    not answer (``loaded`` is then unknown and reported as None).
    """

    name: str | None
    running: RunningModel | None = None
    loaded_known: bool = True

    @property
    def loaded(self) -> bool | None:
        if self.name is None:
            return False
        return self.running is not None if self.loaded_known else None

    def to_dict(self) -> dict[str, Any]:
        r = self.running
        return {
            "current_model": self.name,
            "loaded": self.loaded,
            "expires_at": r.expires_at if r else None,
            "size_vram_gb": round(r.size_vram_bytes / GIB, 2) if r else None,
            "processor": r.processor if r else None,
        }


@dataclass(frozen=True)
class Health:
    """Whether the store and Ollama answer, with Ollama's version or why one of them does not."""

    store_path: str
    ollama_host: str
    ollama_version: str | None = None
    store_failure: ModelManagerError | None = None
    ollama_failure: ModelManagerError | None = None

    @property
    def store_ok(self) -> bool:
        return self.store_failure is None

    @property
    def ollama_ok(self) -> bool:
        return self.ollama_failure is None

    @property
    def ok(self) -> bool:
        return self.store_ok and self.ollama_ok

    @property
    def failure(self) -> ModelManagerError | None:
        """What is wrong, the store first."""
        return self.store_failure or self.ollama_failure

    def to_dict(self) -> dict[str, Any]:
        store: dict[str, Any] = {"ok": self.store_ok, "path": self.store_path}
        if self.store_failure is not None:
            store["error"] = self.store_failure.message
        ollama: dict[str, Any] = {"host": self.ollama_host, "ok": self.ollama_ok}
        if self.ollama_version is not None:
            ollama["version"] = self.ollama_version
        if self.ollama_failure is not None:
            ollama["error"] = self.ollama_failure.message
        return {"store": store, "ollama": ollama, "ok": self.ok}


class Capability(_Words):
    """What a recommendation may ask a model to do: Ollama's capability words (``/api/show``
    ``capabilities``) that say what a model can be used for."""

    COMPLETION = "completion"
    VISION = "vision"
    TOOLS = "tools"
    THINKING = "thinking"
    EMBEDDING = "embedding"
