"""Hosts: the Ollama endpoints of a fleet, what is known of each one's memory, and the heartbeat that
publishes it.

A host is one Ollama endpoint with a name, kept in the store so that every manager sharing the database
sees the same fleet. A manager's own host is the Ollama beside it (``OLLAMA_HOST``), named by
``MODEL_MANAGER_HOST_NAME`` (default ``local``; ``--host local`` always means it). Its memory is detected
here; another host's comes from the GPU report its serving manager publishes every heartbeat
(``Heartbeat``), else from the ``--vram`` it was added with. A report older than three heartbeats is
stale: used only when the host has no ``--vram``, and said to be. ``HostGPU`` turns what is known into
the figures GPU detection gives, so a host's records are judged by the one fit verdict.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .config import DEFAULT_HOST_NAME, Settings, ollama_base_url, parse_gb, parse_host_name, parse_host_url
from .errors import InvalidRequestError, ModelManagerError, UnknownHostError
from .gpu import DetectionReport, GpuDevice, GPUManager
from .liveness import process_token
from .store import Store, utc_now
from .units import GIB, gib_bytes

log = logging.getLogger(__name__)

STALE_AFTER_BEATS = 3
REPORTED, VRAM, STALE, UNKNOWN, DETECTED = "reported", "vram", "stale", "unknown", "detected"
KNOWN = (DETECTED, REPORTED, VRAM)
"""Memory statuses placement trusts; a stale report and no figure at all come after them."""
VRAM_SOURCE = "hosts add --vram"
_DEVICE_FIELDS = ("backend", "index", "id", "name", "total_bytes", "free_bytes", "reserve_bytes")


def _age_s(at: str, now: datetime | None = None) -> float:
    then = datetime.fromisoformat(at)
    return max(0.0, ((now or datetime.now(then.tzinfo)) - then).total_seconds())


def _words(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass(frozen=True)
class HostReport:
    """The GPU figures a serving manager published for its host (bytes), and when."""

    backend: str
    available_bytes: int
    total_bytes: int
    largest_bytes: int
    host_available_bytes: int
    override_gb: float | None
    override_source: str
    devices: tuple[GpuDevice, ...]
    reported_at: str
    heartbeat_s: float
    reporter: str = ""

    @staticmethod
    def payload(gpu: GPUManager) -> dict[str, Any]:
        """What ``gpu`` reads now, as the JSON a report keeps."""
        return {
            "backend": gpu.get_backend(),
            "available_bytes": gib_bytes(gpu.get_available_memory_gb()),
            "total_bytes": gib_bytes(gpu.get_total_memory_gb()),
            "largest_bytes": gib_bytes(gpu.get_largest_device_gb()),
            "host_available_bytes": gib_bytes(gpu.get_host_available_gb()),
            "override_gb": gpu.override_gb,
            "override_source": gpu.override_source,
            "devices": [
                {**{k: getattr(d, k) for k in _DEVICE_FIELDS}, "compute_capability": d.compute_capability}
                for d in gpu.get_devices()
            ],
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> HostReport | None:
        """The report a store row keeps; None (logged) when it does not parse."""
        try:
            doc = json.loads(row["report"])
            devices = tuple(
                GpuDevice(
                    **{k: d[k] for k in _DEVICE_FIELDS},
                    integrated=False,
                    source="report",
                    exact=True,
                    compute_capability=str(d.get("compute_capability") or ""),
                )
                for d in doc["devices"]
            )
            override = doc.get("override_gb")
            return cls(
                str(doc["backend"]),
                int(doc["available_bytes"]),
                int(doc["total_bytes"]),
                int(doc["largest_bytes"]),
                int(doc["host_available_bytes"]),
                None if override is None else float(override),
                str(doc.get("override_source") or ""),
                devices,
                str(row["reported_at"]),
                float(row["heartbeat_s"]),
                str(row.get("reporter") or ""),
            )
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("the GPU report of %s does not parse: %s", row.get("host"), exc)
            return None

    def age_s(self) -> float:
        return _age_s(self.reported_at)

    @property
    def stale(self) -> bool:
        return self.age_s() > STALE_AFTER_BEATS * self.heartbeat_s

    @property
    def available_gb(self) -> float:
        return self.available_bytes / GIB


@dataclass(frozen=True)
class Host:
    """One host of the fleet as this manager sees it."""

    name: str
    url: str
    vram_gb: float | None = None
    added_at: str | None = None
    own: bool = False
    """The host this manager runs beside: reached at ``OLLAMA_HOST``, its memory detected here."""
    report: HostReport | None = None

    @property
    def memory_status(self) -> str:
        """``detected`` (own host), ``reported``, ``vram`` (the figure it was added with), ``stale``
        (a report older than three heartbeats, used only without ``--vram``) or ``unknown``."""
        if self.own:
            return DETECTED
        if self.report is not None and not self.report.stale:
            return REPORTED
        if self.vram_gb is not None:
            return VRAM
        return STALE if self.report is not None else UNKNOWN

    @property
    def memory_known(self) -> bool:
        return self.memory_status in KNOWN

    def describe_memory(self) -> str:
        """Where the host's memory figure comes from, in words."""
        status, report = self.memory_status, self.report
        if status == DETECTED:
            return "detected here"
        if status == REPORTED and report is not None:
            return f"{report.available_gb:.1f} GB, reported {_words(report.age_s())} ago"
        if status == VRAM:
            stale = f"; its report is stale ({_words(report.age_s())} old)" if report is not None else ""
            return f"{self.vram_gb:g} GB, as added (--vram; its free RAM unknown){stale}"
        if status == STALE and report is not None:
            beats = STALE_AFTER_BEATS * report.heartbeat_s
            return (
                f"{report.available_gb:.1f} GB, stale: reported {_words(report.age_s())} ago "
                f"(older than {STALE_AFTER_BEATS} heartbeats, {beats:g} s)"
            )
        return "unknown: no report and no --vram"

    def to_dict(self) -> dict[str, Any]:
        report = self.report
        return {
            "name": self.name,
            "url": self.url,
            "own": self.own,
            "vram_gb": self.vram_gb,
            "added_at": self.added_at,
            "memory": {
                "status": self.memory_status,
                "known": self.memory_known,
                "description": self.describe_memory(),
                "reported_at": report.reported_at if report else None,
                "age_s": round(report.age_s(), 1) if report else None,
                "heartbeat_s": report.heartbeat_s if report else None,
                "available_gb": round(report.available_gb, 3) if report else None,
            },
        }


class HostGPU(GPUManager):
    """GPU detection's answers for another host, from what is known of it (``Host.memory_status``):
    its report's figures, the ``--vram`` it was added with, or nothing (0 GB). Re-reads the host from
    the store at most every ``ttl_s``, so each heartbeat shows."""

    def __init__(self, host: Callable[[], Host], ttl_s: float = 1.0) -> None:
        super().__init__(None, env={})
        self._read_host, self._host_ttl_s = host, ttl_s
        self._record: Host | None = None
        self._host_at = -float("inf")

    @property
    def host(self) -> Host:
        if self._record is None or time.monotonic() - self._host_at > self._host_ttl_s:
            self._record, self._host_at = self._read_host(), time.monotonic()
        return self._record

    def _figure(self) -> HostReport | None:
        """The report in use, when the host's memory comes from one."""
        host = self.host
        return host.report if host.memory_status in (REPORTED, STALE) else None

    @property
    def override_gb(self) -> float | None:
        report, host = self._figure(), self.host
        if report is not None:
            return report.override_gb
        return host.vram_gb if host.memory_status == VRAM else 0.0

    @property
    def override_source(self) -> str:
        report, host = self._figure(), self.host
        if report is not None:
            return f"{report.override_source} on {host.name}" if report.override_gb is not None else ""
        return VRAM_SOURCE if host.memory_status == VRAM else "no report and no --vram"

    def _gb(self, field: str) -> float:
        report, override = self._figure(), self.override_gb
        if override is not None:
            return override
        assert report is not None
        return int(getattr(report, field)) / GIB

    def get_available_memory_gb(self) -> float:
        return self._gb("available_bytes")

    def get_total_memory_gb(self) -> float:
        return self._gb("total_bytes")

    def get_largest_device_gb(self) -> float:
        return self._gb("largest_bytes")

    def get_host_available_gb(self) -> float:
        report = self._figure()
        return report.host_available_bytes / GIB if report is not None else 0.0

    def get_backend(self) -> str:
        report = self._figure()
        return report.backend if report is not None else "gpu"

    def get_devices(self) -> list[GpuDevice]:
        report = self._figure()
        return list(report.devices) if report is not None else []

    def report(self) -> DetectionReport:
        host, report = self.host, self._figure()
        available = self.get_available_memory_gb()
        return DetectionReport(
            backend=self.get_backend(),
            available_gb=available,
            total_gb=self.get_total_memory_gb(),
            largest_device_gb=self.get_largest_device_gb(),
            detected_available_gb=report.available_gb if report is not None else available,
            override_gb=self.override_gb,
            override_source=self.override_source,
            platform=f"host {host.name} ({host.url})",
            probes=(),
            devices=tuple(self.get_devices()),
            notes=(f"memory of {host.name}: {host.describe_memory()}",),
        )

    def refresh(self) -> None:
        self._record = None

    def close(self) -> None:
        pass


class HostRegistry:
    """The fleet's hosts in one store, as the manager with ``settings`` sees them."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store, self.settings = store, settings
        self._names: frozenset[str] = frozenset()

    def known(self, text: object) -> str:
        """The stored name ``text`` stands for, when it is a host of the fleet (the names are read again
        only when one is not among those last read: recording usage on a host must stay cheap). Raises
        InvalidRequestError, UnknownHostError."""
        name = self.name(text)
        if name == self.own_name or name in self._names:
            return name
        self._names = frozenset(r["name"] for r in self.store.list_hosts())
        if name not in self._names:
            raise UnknownHostError(
                f"{name} (the hosts are {', '.join([self.own_name, *sorted(self._names)])})"
            )
        return name

    @property
    def own_name(self) -> str:
        return self.settings.host_name

    def name(self, text: object, what: str = "host") -> str:
        """The stored name ``text`` stands for: ``local`` is this manager's own host. Raises
        InvalidRequestError for a name that is not one."""
        name = parse_host_name(text, what)
        return self.own_name if name == DEFAULT_HOST_NAME else name

    def own(self) -> Host:
        row = self.store.get_host(self.own_name)
        return Host(
            self.own_name,
            ollama_base_url(self.settings.ollama_host),
            _gb(row),
            row["added_at"] if row else None,
            own=True,
        )

    def get(self, text: str) -> Host:
        """The host named ``text``. Raises InvalidRequestError, UnknownHostError."""
        name = self.name(text)
        if name == self.own_name:
            return self.own()
        row = self.store.get_host(name)
        if row is None:
            known = ", ".join(h.name for h in self.all())
            raise UnknownHostError(f"{name} (the hosts are {known})")
        return self._host(row, self.store.host_report(name))

    def all(self) -> list[Host]:
        """This manager's own host first, then every host in the store by name."""
        reports = {r["host"]: r for r in self.store.host_reports()}
        others = [self._host(r, reports.get(r["name"])) for r in self.store.list_hosts()]
        return [self.own(), *(h for h in others if h.name != self.own_name)]

    @staticmethod
    def _host(row: dict[str, Any], report: dict[str, Any] | None) -> Host:
        return Host(
            row["name"],
            row["url"],
            _gb(row),
            row["added_at"],
            report=HostReport.from_row(report) if report is not None else None,
        )

    def add(self, name: object, url: object, vram_gb: object = None) -> tuple[Host, bool]:
        """Add a host (or change its URL and ``--vram``); returns it and whether it is new. Raises
        InvalidRequestError (nothing stored) for a bad name, URL or figure."""
        text = parse_host_name(name)
        if text == DEFAULT_HOST_NAME:
            raise InvalidRequestError(
                "local names each manager's own Ollama (OLLAMA_HOST): give the machine a name of its own, "
                "and set MODEL_MANAGER_HOST_NAME to it where its manager serves"
            )
        base = parse_host_url(url)
        figure = None if vram_gb is None else parse_gb(vram_gb, "--vram")
        new = self.store.save_host(text, base, None if figure is None else gib_bytes(figure), utc_now())
        return self.get(text), new

    def remove(self, text: str) -> Host:
        """Remove a host from the store (its usage and jobs stay recorded). Raises UnknownHostError."""
        name = self.name(text)
        found = self.store.get_host(name)
        if found is None:
            why = "this manager's own host, which is not in the store" if name == self.own_name else name
            raise UnknownHostError(why)
        self.store.delete_host(name)
        self._names = frozenset()
        return self._host(found, None)

    def publish(self, gpu: GPUManager) -> None:
        """Publish what ``gpu`` reads now as the own host's report. Raises StoreError."""
        self.store.publish_report(
            self.own_name,
            json.dumps(HostReport.payload(gpu)),
            self.settings.heartbeat_s,
            process_token(),
            utc_now(),
        )


def _gb(row: dict[str, Any] | None) -> float | None:
    bytes_ = row["vram_bytes"] if row else None
    return None if bytes_ is None else round(int(bytes_) / GIB, 3)


class Heartbeat:
    """Publishes the own host's GPU report every ``settings.heartbeat_s`` from a thread, while a manager
    serves. A failed beat (the database away) is logged and the next one tries again."""

    def __init__(self, registry: HostRegistry, gpu: Callable[[], GPUManager]) -> None:
        self.registry, self._gpu = registry, gpu
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.beats = 0

    def beat(self) -> bool:
        try:
            self.registry.publish(self._gpu())
        except ModelManagerError as exc:
            log.warning("could not publish the GPU report of %s: %s", self.registry.own_name, exc.message)
            return False
        self.beats += 1
        return True

    def start(self) -> Heartbeat:
        self.beat()  # the first report before the server answers anything
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.registry.settings.heartbeat_s):
            self.beat()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
