"""Request bodies (validated) and response shapes (documented in the OpenAPI schema); a fleet's hosts'
are in ``host_schemas``, and the answers of recommend, compatibility and plan in ``recommend_schemas``.

Request models are strict and forbid unknown fields, so a typo such as ``"modle"`` is a 422 rather than
a silently ignored field. Response models only document: routes return ``JSONResponse`` built from the
manager's dicts, so the list endpoint pays for no second validation pass; the schemathesis test checks
that what is sent matches what is documented.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.config import JsonDict
from pydantic.json_schema import SkipJsonSchema

from ..ollama_defaults import KV_CACHE_TYPES
from ..types import Capability, ModelPurpose, Priority
from ..units import MAX_GB
from .host_schemas import AnyHost, HostDoc, HostOrAll, HostOrAuto, host_field

_STRICT = ConfigDict(strict=True, extra="forbid")
_OPEN = ConfigDict(extra="allow")

_PART = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}"
MODEL_NAME_PATTERN = (
    f"^(?:(?:[A-Za-z0-9_][A-Za-z0-9_.:-]{{0,349}}/)?[A-Za-z0-9_][A-Za-z0-9_-]{{0,79}}/)?{_PART}(?::{_PART})?$"
)
"""Ollama's name rules (``names.parse_model_name``) as a JSON Schema pattern, for clients and schemathesis.

Only documented: the server checks names itself, so an invalid one gets a message that says which part
is wrong instead of a regular expression.
"""
MODEL_NAME_SCHEMA: JsonDict = {"pattern": MODEL_NAME_PATTERN}
MODEL_DESCRIPTION = "Model name: a catalog name or any Ollama name, [host/][namespace/]model[:tag]"
MODEL_FIELD = Field(
    description=MODEL_DESCRIPTION, examples=["llama3.1:8b-instruct"], json_schema_extra=MODEL_NAME_SCHEMA
)
VRAM_FIELD = Field(
    default=None,
    ge=0,
    le=MAX_GB,
    description="GB of GPU memory to plan for; left out, the server detects what is available",
    examples=[8.0],
)


# --- requests ---------------------------------------------------------------------------------


class ModelRequest(BaseModel):
    model_config = _STRICT
    model: str = MODEL_FIELD


class HostModelRequest(ModelRequest):
    host: AnyHost | None = host_field()


class SwitchRequest(ModelRequest):
    host: HostOrAuto | None = host_field("auto: where placement puts it among the hosts that have it")


class DownloadRequest(BaseModel):
    model_config = _STRICT
    model: str = MODEL_FIELD
    wait: bool = Field(default=False, description="Block until the download ends instead of answering 202")
    host: HostOrAuto | None = host_field("auto: where placement puts it")


class SyncRequest(BaseModel):
    model_config = _STRICT
    host: HostOrAll | None = host_field("all")


CAPABILITY_FIELD = Field(
    default=None,
    description=f"Only models that can do this, in Ollama's words: {', '.join(Capability.words())} (any case)",
    examples=["vision"],
    json_schema_extra={"enum": list(Capability.words())},
)


class RecommendRequest(BaseModel):
    model_config = _STRICT
    host: HostOrAll | None = host_field("all: each host's answer")
    available_vram_gb: float | None = VRAM_FIELD
    priority: str = Field(
        default="balanced",
        description=f"{', '.join(Priority.words())} (any case)",
        examples=["balanced"],
        json_schema_extra={"enum": list(Priority.words())},
    )
    capability: str | None = CAPABILITY_FIELD


class RecommendAllRequest(BaseModel):
    model_config = _STRICT
    host: AnyHost | None = host_field()
    available_vram_gb: float | None = VRAM_FIELD
    capability: str | None = CAPABILITY_FIELD


class CompatibilityRequest(BaseModel):
    model_config = _STRICT
    model: str = MODEL_FIELD
    host: AnyHost | None = host_field()
    available_vram_gb: float | None = VRAM_FIELD


class PlanRequest(BaseModel):
    model_config = _STRICT
    model: str = MODEL_FIELD
    host: AnyHost | None = host_field()
    available_vram_gb: float | None = VRAM_FIELD
    # Not strict: JSON's 4096.0 is the integer 4096, as the schema says.
    context_length: int | None = Field(
        default=None,
        ge=1,
        le=1 << 24,
        strict=False,
        description="Also plan this context (tokens per request)",
    )
    kv_cache_type: str | None = Field(
        default=None,
        description="Only this KV cache type (else f16, q8_0 and q4_0)",
        json_schema_extra={"enum": list(KV_CACHE_TYPES)},
    )
    num_parallel: int | None = Field(
        default=None, ge=1, le=256, strict=False, description="Parallel requests"
    )


class UsageTiming(BaseModel):
    """Ollama's timing of the use's generation (its answer's ``eval_count`` and ``eval_duration``)."""

    model_config = _STRICT
    eval_count: int = Field(ge=0, le=10**12, description="Tokens generated", examples=[120])
    eval_duration_s: float = Field(ge=0, le=1e9, description="Seconds generating them", examples=[2.0])

    @field_validator("eval_count", mode="before")
    @classmethod
    def _whole(cls, value: Any) -> Any:
        """JSON's 120.0 is the integer 120, as the schema says (true and false stay refused)."""
        return int(value) if isinstance(value, float) and value.is_integer() else value


class UsageRequest(BaseModel):
    model_config = _STRICT
    model: str = MODEL_FIELD
    host: AnyHost | None = host_field()
    inference_time: float = Field(ge=0, le=1e9, description="Seconds the inference took", examples=[2.5])
    success: bool = True
    timing: UsageTiming | None = Field(
        default=None, description="Adds the use to the generation speed measured here"
    )


class EmptyRequest(BaseModel):
    """No fields: the endpoint takes an empty JSON object (or no body)."""

    model_config = _STRICT


# --- the export document (request body of import, response body of export) ----------------------


_Text = Annotated[str, Field(max_length=10_000)]
_Count = Annotated[int, Field(ge=0, le=2**62)]
_Seconds = Annotated[float, Field(ge=0)]


class ExportedMetadata(BaseModel):
    """Editable metadata; a field left out keeps the catalog's value."""

    model_config = ConfigDict(extra="forbid")
    description: _Text | SkipJsonSchema[None] = None
    recommended_use: _Text | SkipJsonSchema[None] = None
    size: _Text | SkipJsonSchema[None] = None
    purpose: ModelPurpose | SkipJsonSchema[None] = None
    min_vram_gb: float | None = Field(default=None, ge=0, le=MAX_GB)
    quantization_support: list[str] | SkipJsonSchema[None] = None


class ExportedStatistics(BaseModel):
    model_config = ConfigDict(extra="forbid")
    usage_count: _Count
    success_count: _Count | SkipJsonSchema[None] = Field(default=None, description="At most usage_count")
    total_inference_time: _Seconds | SkipJsonSchema[None] = None
    last_used: str | None = Field(default=None, json_schema_extra={"format": "date-time"})


class ExportedModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metadata: ExportedMetadata | SkipJsonSchema[None] = None
    statistics: ExportedStatistics | SkipJsonSchema[None] = None


class ExportDocument(BaseModel):
    """The export/import document (``format`` "model-manager-metadata", ``version`` 1)."""

    model_config = ConfigDict(extra="forbid")
    format: Literal["model-manager-metadata"]
    version: Literal[1]
    exported_at: str | None = Field(default=None, json_schema_extra={"format": "date-time"})
    current_model: str | None = Field(default=None, json_schema_extra=MODEL_NAME_SCHEMA)
    models: dict[str, ExportedModel] = Field(
        description="Keyed by model name (names differ in more than case)",
        json_schema_extra={"propertyNames": MODEL_NAME_SCHEMA},
    )


# --- responses ----------------------------------------------------------------------------------


class ErrorResponse(BaseModel):
    """Every failure: a stable code, what happened and what to do."""

    model_config = _OPEN
    success: Literal[False]
    error: str = Field(examples=["model_not_found"])
    message: str = Field(examples=["Model not found: llama9:1b"])
    solution: str = Field(examples=["Check catalog"])


class ModelMetadata(BaseModel):
    """The quick reference's metadata fields, plus what the catalog and Ollama know."""

    model_config = _OPEN
    name: str
    size: str
    purpose: str
    description: str
    recommended_use: str
    min_vram_gb: float | None
    quantization_support: list[str]
    download_size_mb: int
    installed: bool
    last_used: str | None
    usage_count: int
    avg_inference_time: float
    success_rate: float
    ollama_tag: str
    capabilities: list[str]
    family: str
    quantization: str
    parameter_count: int
    source: str
    quality_score: float | None = Field(
        default=None,
        description="0-100 on the benchmark set quality_benchmark names (comparable within one set only)",
    )
    quality_source: str = Field(
        default="",
        description="Where the score comes from: 'measured: ...', 'published: ...' or 'estimate: ...'",
    )
    quality_benchmark: str = Field(
        default="", description="OpenVLM avg, Open LLM Leaderboard v2 avg or MTEB en avg (docs/catalog.md)"
    )
    tokens_per_second: float | None = Field(
        default=None, description="Generation speed on this machine; null for embedding models"
    )
    speed_source: Literal["estimated", "measured"] | None = Field(
        default=None, description="'measured' by a benchmark here, else 'estimated' from memory bandwidth"
    )
    speed_basis: str | None = Field(default=None, description="How tokens_per_second was had, in one line")


class BenchmarkResult(BaseModel):
    """One benchmark on one Ollama host, from Ollama's own timing fields."""

    model_config = _OPEN
    model: str
    host: str = Field(description="The Ollama host's name ('local': the configured one)")
    ollama_tag: str
    benchmarked_at: str
    with_image: bool = Field(description="A vision model is sent the bundled test photo")
    cold: bool = Field(description="The model was not loaded before, so load_s is a real load")
    load_s: float = Field(description="load_duration")
    first_token_s: float = Field(description="Approximated as load_duration + prompt_eval_duration")
    prompt_tokens: int
    prompt_tokens_per_second: float | None
    eval_tokens: int
    tokens_per_second: float | None = Field(description="eval_count / eval_duration")


class ModelStatistics(BaseModel):
    model_config = _OPEN
    name: str
    usage_count: int
    last_used: str | None
    avg_inference_time: float
    success_rate: float
    installed: bool
    measured_tokens_per_second: float | None = Field(
        default=None, description="Generation speed measured on this Ollama host (benchmarks and timed uses)"
    )
    speed_samples: int = Field(
        default=0, description="The benchmarks and timed uses measured_tokens_per_second pools"
    )
    benchmark: BenchmarkResult | None = Field(default=None, description="The latest benchmark here")


class ModelListResponse(BaseModel):
    model_config = _OPEN
    success: Literal[True]
    models: list[ModelMetadata]
    count: int
    installed_state_known: bool = Field(
        description="Whether Ollama answered, so `installed` is current (false: as last seen, or never)"
    )
    hosts: list[HostDoc] | None = Field(
        default=None,
        description="With ?host=all: each host and whether it answered; each model then has installed_on, "
        "loaded_on and hosts (per host: installed, loaded, fit)",
    )


class CurrentModelResponse(BaseModel):
    success: Literal[True]
    model: str | None
    info: ModelMetadata | None
    loaded: bool | None = Field(
        description="Whether Ollama has the model loaded now (it unloads an idle model after its "
        "keep-alive and loads it again on first use); null when Ollama did not say"
    )
    expires_at: str | None = Field(description="When Ollama unloads it (RFC 3339), while loaded")
    size_vram_gb: float | None = Field(description="GiB of it in GPU memory, while loaded")
    processor: str | None = Field(
        description="Where it runs, as `ollama ps` says: 100% GPU, 100% CPU, 48%/52% CPU/GPU",
        examples=["100% GPU"],
    )


class ModelInfoResponse(BaseModel):
    success: Literal[True]
    model: ModelMetadata


class SwitchResponse(BaseModel):
    success: Literal[True]
    model: str
    message: str
    info: ModelMetadata


class ModelMessageResponse(BaseModel):
    success: Literal[True]
    model: str
    message: str


class JobError(BaseModel):
    model_config = _OPEN
    error: str
    message: str
    solution: str


class DownloadJob(BaseModel):
    """A download job. ``interrupted``: the server stopped during the pull; starting it again resumes."""

    id: str
    model: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled", "interrupted"]
    completed: int = Field(description="Bytes fetched over the layers seen so far")
    total: int = Field(description="Bytes of the layers seen so far")
    percent: float
    detail: str = Field(description="Ollama's last status line")
    error: JobError | None
    message: str | None
    attempts: int
    host: str = Field(description="The host it pulls on (local: this server's own)")
    created_at: str
    updated_at: str
    finished_at: str | None
    result: dict[str, Any] | None = Field(default=None, description="Always null for a download")


class JobResponse(BaseModel):
    model_config = _OPEN
    success: Literal[True]
    job: DownloadJob


class StartedJobResponse(JobResponse):
    started: bool = Field(description="False when the model's running job was joined")


class JobListResponse(BaseModel):
    success: Literal[True]
    jobs: list[DownloadJob]
    count: int


class StatisticsResponse(BaseModel):
    success: Literal[True]
    statistics: dict[str, ModelStatistics] | ModelStatistics = Field(
        description="{name: statistics} for every model, or one model's with ?model="
    )


class SyncResponse(BaseModel):
    success: Literal[True]
    added: list[str]
    removed: list[str]
    installed: list[str]


class MessageResponse(BaseModel):
    success: Literal[True]
    message: str


class UsageResponse(BaseModel):
    model_config = _OPEN
    success: Literal[True]
    model: str


class HealthResponse(BaseModel):
    model_config = _OPEN
    success: Literal[True]
    ok: bool
    store: dict[str, Any]
    ollama: dict[str, Any]
