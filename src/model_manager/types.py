"""Plain records shared by the layers. No I/O here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ModelPurpose(StrEnum):
    """What a model is for (the seed's "Model Purposes" table)."""

    SPEED = "speed"
    BALANCED = "balanced"
    QUALITY = "quality"
    SPECIALIZED = "specialized"

    @classmethod
    def parse(cls, value: ModelPurpose | str) -> ModelPurpose:
        """Accept a member or its value in any case ("Balanced", "balanced").

        Raises ValueError for anything else.
        """
        if isinstance(value, ModelPurpose):
            return value
        if isinstance(value, str):
            try:
                return cls(value.strip().lower())
            except ValueError:
                pass
        choices = ", ".join(p.value for p in cls)
        raise ValueError(f"unknown purpose {value!r}; expected one of: {choices}")


CAPABILITIES = ("completion", "vision", "tools", "embedding", "thinking", "insert")


@dataclass(frozen=True)
class CatalogEntry:
    """One known model: the seed's metadata plus the facts the memory estimator needs.

    ``name`` is what users call it (the seed's name); ``ollama_tag`` is what Ollama pulls and runs.
    ``model_info`` has the shape of Ollama's ``/api/show`` ``model_info`` (GGUF keys prefixed by the
    architecture), so catalog facts and installed-model facts feed the same code.
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
class RunningModel:
    """A model Ollama has loaded (one ``/api/ps`` entry)."""

    name: str
    size_bytes: int
    size_vram_bytes: int
    expires_at: str = ""
    context_length: int = 0


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
