"""Read-only endpoints the dashboard draws from: the GPU report, what Ollama has loaded, and one model's
usage history with the figures its charts plot (uses over time, inference-time percentiles and
distribution, success rate).

The history's figures are computed here, over every event in the window, so that a chart of a model
used a million times sends sixty buckets, not a million events.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ..errors import InvalidRequestError
from . import host_schemas as hs
from . import schemas as s
from .common import ORIGIN_ERRORS, Manager, doc, ok
from .hosts import FleetDep, fleet_running, host_query, is_all, on_host

router = APIRouter()

BUCKET_WIDTHS_S = (60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400)
MAX_BUCKETS = 60
HISTOGRAM_BINS = 20
DEFAULT_EVENTS = 200
MAX_EVENTS = 10_000

Event = tuple[str, float, bool]
"""(at, seconds, success) as the store keeps one use."""


# --- response shapes ------------------------------------------------------------------------------


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class GpuDeviceDoc(_Open):
    backend: str
    index: int | None
    name: str
    total_bytes: int
    free_bytes: int
    reserve_bytes: int
    usable_bytes: int
    visible: bool
    problem: str


class GpuResponse(_Open):
    """``GPUManager.report()``: the devices, the memory models can use (GiB) and what each probe saw."""

    success: Literal[True]
    backend: str
    available_gb: float
    total_gb: float
    detected_available_gb: float
    override: dict[str, Any] | None
    devices: list[GpuDeviceDoc]
    probes: list[dict[str, Any]]
    notes: list[str]


class LoadedModelDoc(BaseModel):
    name: str = Field(description="The name the model is known by here")
    ollama_tag: str
    size_bytes: int
    size_vram_bytes: int = Field(description="Of size_bytes, how much is in GPU memory")
    gpu_fraction: float
    expires_at: str
    context_length: int


class RunningResponse(BaseModel):
    model_config = ConfigDict(extra="allow")
    success: Literal[True]
    models: list[LoadedModelDoc] = Field(description="With ?host=all, each names its host")
    count: int
    hosts: list[hs.HostDoc] | None = Field(
        default=None, description="With ?host=all: each host and whether it answered"
    )


class UsageEventDoc(BaseModel):
    at: str = Field(json_schema_extra={"format": "date-time"})
    seconds: float
    success: bool


class UsageBuckets(BaseModel):
    """Consecutive windows of ``width_s`` seconds from the first use to now; ``start`` in Unix seconds.
    A window without uses has null rate and percentiles."""

    width_s: int
    start: list[float]
    uses: list[int]
    failures: list[int]
    success_rate: list[float | None]
    p50_s: list[float | None]
    p95_s: list[float | None]


class UsageHistogram(BaseModel):
    """Inference times in equal bins: ``counts[i]`` between ``edges_s[i]`` and ``edges_s[i + 1]``."""

    edges_s: list[float]
    counts: list[int]


class UsageHistoryResponse(BaseModel):
    success: Literal[True]
    model: str
    since: str | None
    count: int
    successes: int
    success_rate: float | None
    mean_s: float | None
    p50_s: float | None
    p95_s: float | None
    max_s: float | None
    first_at: str | None
    last_at: str | None
    buckets: UsageBuckets
    histogram: UsageHistogram
    events: list[UsageEventDoc] = Field(description="The newest uses, oldest first (at most ?events=)")


# --- routes ---------------------------------------------------------------------------------------


@router.get("/api/gpu", tags=["machine"], responses=doc(GpuResponse, *ORIGIN_ERRORS, 404))
def gpu(
    manager: Manager, fleet: FleetDep, host: Annotated[hs.AnyHost | None, host_query()] = None
) -> JSONResponse:
    """The GPU detection report: each device's total, free, reserve and usable memory, and the probes
    (another host's: what its report or ``--vram`` says)."""
    return ok(**on_host(manager, fleet, host).gpu.report().to_dict())


@router.get(
    "/api/model/running", tags=["machine"], responses=doc(RunningResponse, *ORIGIN_ERRORS, 404, 502, 503)
)
def running(
    manager: Manager, fleet: FleetDep, host: Annotated[hs.HostOrAll | None, host_query("all")] = None
) -> JSONResponse:
    """What Ollama has loaded now (``/api/ps``), with how much of each model is in GPU memory."""
    if is_all(host):
        return fleet_running(fleet)
    models = [loaded.to_dict() for loaded in on_host(manager, fleet, host).running_models()]
    return ok(models=models, count=len(models))


@router.get(
    "/api/model/usage/{name:path}/history",
    tags=["models"],
    responses=doc(UsageHistoryResponse, *ORIGIN_ERRORS, 404),
)
def usage_history(
    manager: Manager,
    name: Annotated[str, Path(description=s.MODEL_DESCRIPTION, json_schema_extra=s.MODEL_NAME_SCHEMA)],
    since: Annotated[
        str | None,
        Query(
            description="Only uses at or after this ISO 8601 time", json_schema_extra={"format": "date-time"}
        ),
    ] = None,
    events: Annotated[int, Query(ge=0, le=MAX_EVENTS, description="How many of the newest uses to list")] = (
        DEFAULT_EVENTS
    ),
) -> JSONResponse:
    """One model's recorded uses: counts over time, success rate, inference-time percentiles and
    distribution. 404 when nothing is known of the model."""
    stats = manager.statistics(name)
    start = _utc_text(since) if since is not None else None
    found = manager.store.usage_events(stats.name, start)
    body = summarize(found, datetime.now(UTC))
    listed = found[len(found) - events :] if events else []
    return ok(
        model=stats.name,
        since=start,
        **body,
        events=[{"at": at, "seconds": sec, "success": good} for at, sec, good in listed],
    )


def _utc_text(value: str) -> str:
    """``value`` (ISO 8601; no offset means UTC) in the store's timestamp format. Raises InvalidRequestError."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidRequestError(f"since must be an ISO 8601 time, got {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


# --- the figures ------------------------------------------------------------------------------------


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of sorted values, interpolating between neighbours (numpy's default)."""
    if not ordered:
        raise ValueError("no values")
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def bucket_width(span_s: float) -> int:
    """The narrowest window that covers ``span_s`` in at most ``MAX_BUCKETS`` windows."""
    for width in BUCKET_WIDTHS_S:
        if span_s < width * MAX_BUCKETS:
            return width
    return BUCKET_WIDTHS_S[-1]


def _epoch(at: str) -> float | None:
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def summarize(events: Sequence[Event], now: datetime) -> dict[str, Any]:
    """The history's figures over ``events`` (oldest first), with windows up to ``now``."""
    times = sorted(sec for _, sec, _ in events)
    successes = sum(1 for _, _, good in events if good)
    n = len(events)
    return {
        "count": n,
        "successes": successes,
        "success_rate": successes / n if n else None,
        "mean_s": sum(times) / n if n else None,
        "p50_s": percentile(times, 0.5) if n else None,
        "p95_s": percentile(times, 0.95) if n else None,
        "max_s": times[-1] if n else None,
        "first_at": events[0][0] if n else None,
        "last_at": events[-1][0] if n else None,
        "buckets": buckets(events, now.timestamp()),
        "histogram": histogram(times),
    }


def buckets(events: Sequence[Event], now_s: float) -> dict[str, Any]:
    """Uses, failures, success rate and percentiles per window, from the first use's window to now's."""
    dated = [(t, sec, good) for at, sec, good in events if (t := _epoch(at)) is not None]
    if not dated:
        return {"width_s": BUCKET_WIDTHS_S[0], "start": [], "uses": [], "failures": [], **_empty_rates()}
    first = min(t for t, _, _ in dated)
    last = max(now_s, max(t for t, _, _ in dated))
    width = bucket_width(last - first)
    origin = math.floor(first / width) * width
    count = int((last - origin) // width) + 1
    seconds: list[list[float]] = [[] for _ in range(count)]
    failures = [0] * count
    for t, sec, good in dated:
        i = min(count - 1, int((t - origin) // width))
        seconds[i].append(sec)
        failures[i] += 0 if good else 1
    uses = [len(x) for x in seconds]
    ordered = [sorted(x) for x in seconds]
    return {
        "width_s": width,
        "start": [float(origin + i * width) for i in range(count)],
        "uses": uses,
        "failures": failures,
        "success_rate": [(u - f) / u if u else None for u, f in zip(uses, failures, strict=True)],
        "p50_s": [percentile(x, 0.5) if x else None for x in ordered],
        "p95_s": [percentile(x, 0.95) if x else None for x in ordered],
    }


def _empty_rates() -> dict[str, list[float | None]]:
    return {"success_rate": [], "p50_s": [], "p95_s": []}


def histogram(ordered: Sequence[float], bins: int = HISTOGRAM_BINS) -> dict[str, list[Any]]:
    """Counts of sorted inference times in ``bins`` equal bins from the least to the greatest (one bin
    when they are all equal); the last bin includes its upper edge."""
    if not ordered:
        return {"edges_s": [], "counts": []}
    low, high = ordered[0], ordered[-1]
    if high == low:
        return {"edges_s": [low, low + max(abs(low) * 0.1, 0.001)], "counts": [len(ordered)]}
    step = (high - low) / bins
    counts = [0] * bins
    for value in ordered:
        counts[min(bins - 1, int((value - low) / step))] += 1
    return {"edges_s": [low + i * step for i in range(bins)] + [high], "counts": counts}
