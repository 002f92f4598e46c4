"""The response shapes of which model to pick and whether it fits: recommend, recommend all, compatibility
and plan (documented only, as every response model in ``schemas``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from .schemas import _OPEN


class Candidate(BaseModel):
    model_config = _OPEN
    name: str
    required_vram_gb: float
    installed: bool
    fit: str | None = Field(default=None, description="full, partial or none at context_length")
    context_length: int | None = Field(default=None, description="The context the fit is judged at")
    max_context: int | None = Field(default=None, description="The largest context that fits fully")
    fits_at_default: bool | None = Field(default=None, description="Fits fully at Ollama's default context")
    quality_score: float | None = Field(default=None, description="0-100 on quality_benchmark")
    quality_benchmark: str = ""
    quality_estimated: bool = Field(default=False, description="The score is an estimate, not a measurement")
    quality_standing: float | None = Field(
        default=None, description="Share of the catalog's models on the same benchmark that score lower (0-1)"
    )
    tokens_per_second: float | None = Field(default=None, description="Generation speed here")
    speed_source: Literal["estimated", "measured"] | None = None


class RecommendResponse(BaseModel):
    model_config = _OPEN
    success: Literal[True]
    model: str | None
    reason: str
    capability: str | None = Field(description="The capability asked for (null: any)")
    fits_fully: bool | None = Field(
        description="Whether the pick fits fully at Ollama's default context (false: nothing does)"
    )
    candidates: list[Candidate] = Field(description="Best first")
    available_vram_gb: float
    memory_source: str = Field(description="detected, override or argument")
    priority: str
    host: str | None = Field(default=None, description="The host whose memory was asked (with host)")


class PriorityRecommendation(BaseModel):
    model_config = _OPEN
    priority: str
    model: str | None
    reason: str
    fits_fully: bool | None
    candidates: list[Candidate]


class RecommendAllResponse(BaseModel):
    model_config = _OPEN
    success: Literal[True]
    capability: str | None
    available_vram_gb: float
    memory_source: str = Field(description="detected, override or argument")
    recommendations: list[PriorityRecommendation] = Field(
        description="speed, balanced and quality, in that order"
    )
    host: str | None = Field(default=None, description="The host whose memory was asked (with host)")


class CompatibilityResponse(BaseModel):
    model_config = _OPEN
    success: Literal[True]
    model: str
    compatible: bool
    message: str
    required_vram_gb: float
    available_vram_gb: float
    memory_source: str = Field(description="detected, override or argument")
    fit: str | None = Field(description="full, partial or none at context_length (null: no facts)")
    context_length: int | None
    kv_cache_type: str | None


class PlanRow(BaseModel):
    model_config = _OPEN
    context_length: int
    kv_cache_type: str
    footprint_gb: float
    fit: str | None
    layers_on_gpu: int | None
    layers_total: int | None


class PlanResponse(BaseModel):
    model_config = _OPEN
    success: Literal[True]
    model: str
    available_vram_gb: float
    memory_source: str
    kv_cache_types: list[str]
    contexts: list[int]
    largest_context: dict[str, int] = Field(
        description="Per KV cache type, the largest context that fits fully"
    )
    rows: list[PlanRow]
    summary: str
