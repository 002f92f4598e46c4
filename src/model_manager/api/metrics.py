"""Prometheus metrics of one app, in its own registry (several apps may live in one process).

Two sources, named apart:

* ``model_manager_model_*``: read from the store at scrape time, so they count usage recorded by every
  process (the Python API, the CLI, this server) and survive restarts. An import replaces a model's
  aggregates, which a scraper sees as a counter reset.
* everything else: observed by this server process (usage reported through ``POST /api/model/usage``,
  download jobs run here).

Model names come from clients (usage reports, download requests), so a name is a label only when the
manager knows the model: a catalog model (under its catalog name, whatever alias was used) or an
installed one (as the store last saw Ollama's list). Every other name is counted under ``"other"``, so
the output grows with the catalog and the installed models, never with what clients send.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from ..errors import InvalidModelNameError
from ..names import name_key, stored_name_key

if TYPE_CHECKING:
    from ..manager import ManagerCore

OTHER = "other"
INFERENCE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class KnownModels:
    """The label of a model name: its own for catalog and installed models, else ``OTHER``."""

    def __init__(self, manager: ManagerCore) -> None:
        self.manager = manager
        self._lock = threading.Lock()
        self._marker: tuple[int, int] | None = None
        self._installed: dict[str, str] = {}

    def _installed_names(self) -> dict[str, str]:
        """Installed models by name key, re-read from the store only after it changed."""
        store = self.manager.store
        marker = store.change_marker()
        with self._lock:
            if marker != self._marker:
                records = store.list_models(installed_only=True, host=self.manager.settings.host_name)
                self._installed = {stored_name_key(r.name): r.name for r in records}
                self._marker = marker
            return self._installed

    def label(self, model: str) -> str:
        try:
            key = name_key(model)
        except InvalidModelNameError:
            return OTHER
        entry = self.manager.catalog.by_key(key)
        if entry is not None:
            return entry.name
        return self._installed_names().get(key, OTHER)


class _StoreCollector(Collector):
    """Usage aggregates from the store, per known model (the rest summed under ``OTHER``)."""

    def __init__(self, manager: ManagerCore, known: KnownModels) -> None:
        self.manager = manager
        self.known = known

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
        totals: dict[str, list[float]] = {}
        for name, s in self.manager.store.all_stats().items():
            total = totals.setdefault(self.known.label(name), [0, 0, 0.0])
            total[0] += s.usage_count
            total[1] += s.usage_count - s.success_count
            total[2] += s.total_time
        for label, (count, failed, spent) in sorted(totals.items()):
            uses.add_metric([label], count)
            failures.add_metric([label], failed)
            seconds.add_metric([label], spent)
        yield from (uses, failures, seconds)


class ApiMetrics:
    """The registry and the series this server observes."""

    def __init__(self, manager: ManagerCore) -> None:
        self.registry = CollectorRegistry()
        self.known = KnownModels(manager)
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
        self.registry.register(_StoreCollector(manager, self.known))

    def label(self, model: str) -> str:
        """``model`` as a label value (``OTHER`` for a model the manager does not know)."""
        return self.known.label(model)

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
