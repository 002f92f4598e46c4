"""Prometheus metrics of one app, in its own registry (several apps may live in one process).

Two sources, named apart:

* ``model_manager_model_*``: read from the store at scrape time, so they count usage recorded by every
  process (the Python API, the CLI, this server) and survive restarts. An import replaces a model's
  aggregates, which a scraper sees as a counter reset.
* everything else: observed by this server process (usage reported through ``POST /api/model/usage``,
  download jobs run here).

Model names come from clients, so the per-model labels of observed series are capped: past
``MAX_MODEL_LABELS`` distinct names, further ones are counted under ``"other"``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from ..manager import ManagerCore

MAX_MODEL_LABELS = 200
INFERENCE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class _StoreCollector(Collector):
    """Usage aggregates from the store, per model."""

    def __init__(self, manager: ManagerCore) -> None:
        self.manager = manager

    def collect(self) -> Iterator[Metric]:
        uses = CounterMetricFamily(
            "model_manager_model_uses",
            "Uses recorded per model (all processes, from the store)",
            labels=["model"],
        )
        failures = CounterMetricFamily(
            "model_manager_model_failures",
            "Failed uses recorded per model (from the store)",
            labels=["model"],
        )
        seconds = CounterMetricFamily(
            "model_manager_model_inference_seconds",
            "Inference time recorded per model (from the store)",
            labels=["model"],
        )
        for name, s in self.manager.store.all_stats().items():
            uses.add_metric([name], s.usage_count)
            failures.add_metric([name], s.usage_count - s.success_count)
            seconds.add_metric([name], s.total_time)
        yield from (uses, failures, seconds)


class ApiMetrics:
    """The registry and the series this server observes."""

    def __init__(self, manager: ManagerCore) -> None:
        self.registry = CollectorRegistry()
        self._labels: set[str] = set()
        self._lock = threading.Lock()
        self.inference = Histogram(
            "model_manager_inference_seconds",
            "Inference time reported through POST /api/model/usage",
            ["model", "outcome"],
            buckets=INFERENCE_BUCKETS,
            registry=self.registry,
        )
        self.download_bytes = Counter(
            "model_manager_download_bytes",
            "Bytes pulled by download jobs of this server",
            ["model"],
            registry=self.registry,
        )
        self.download_failures = Counter(
            "model_manager_download_failures",
            "Download jobs that failed, by error code",
            ["model", "error"],
            registry=self.registry,
        )
        self.downloads = Counter(
            "model_manager_downloads",
            "Download jobs ended, by final status",
            ["status"],
            registry=self.registry,
        )
        self.active_downloads = Gauge(
            "model_manager_downloads_active", "Download jobs queued or running", registry=self.registry
        )
        self.registry.register(_StoreCollector(manager))

    def label(self, model: str) -> str:
        """``model`` as a label value, or "other" once the cap is reached."""
        with self._lock:
            if model in self._labels:
                return model
            if len(self._labels) < MAX_MODEL_LABELS:
                self._labels.add(model)
                return model
        return "other"

    def usage(self, model: str, seconds: float, success: bool) -> None:
        self.inference.labels(self.label(model), "success" if success else "failure").observe(seconds)

    def downloaded(self, model: str, nbytes: int) -> None:
        self.download_bytes.labels(self.label(model)).inc(nbytes)

    def count_active_with(self, count: Callable[[], int]) -> None:
        """Read the number of active download jobs from ``count`` at each scrape."""
        self.active_downloads.set_function(lambda: float(count()))

    def job_finished(self, job: dict[str, Any]) -> None:
        self.downloads.labels(job["status"]).inc()
        if job["status"] == "failed" and job["error"]:
            self.download_failures.labels(self.label(job["model"]), job["error"]["error"]).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
