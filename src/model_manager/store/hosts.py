"""The fleet's tables: the hosts every manager sharing the store sees, and the GPU report each serving
manager publishes for its own host with a heartbeat.

Rows are plain dicts, as download jobs' are: the host record and its rules (names, URLs, when a report
is stale) live in ``model_manager.hosts``; the store only keeps them.
"""

from __future__ import annotations

from typing import Any

from .schema import Tables


class HostTables(Tables):
    """The host methods of ``Store`` (which provides ``_read`` and ``_write``)."""

    def save_host(self, name: str, url: str, vram_bytes: int | None, at: str) -> bool:
        """Add host ``name``, or change its URL and memory figure; True when it is new."""
        with self._write() as tx:
            found = tx.execute("SELECT name FROM hosts WHERE name = ?", (name,)).fetchone()
            tx.execute(
                """INSERT INTO hosts (name, url, vram_bytes, added_at) VALUES (?, ?, ?, ?)
                   ON CONFLICT (name) DO UPDATE SET url = excluded.url, vram_bytes = excluded.vram_bytes""",
                (name, url, vram_bytes, at),
            )
        return found is None

    def delete_host(self, name: str) -> bool:
        """Remove host ``name`` with its report and installed state (its usage and jobs stay recorded);
        False when there was none."""
        with self._write() as tx:
            gone = tx.execute("DELETE FROM hosts WHERE name = ?", (name,)).rowcount
            tx.execute("DELETE FROM host_reports WHERE host = ?", (name,))
            tx.execute("DELETE FROM models WHERE host = ?", (name,))
        return gone > 0

    def get_host(self, name: str) -> dict[str, Any] | None:
        rows = self._read("SELECT * FROM hosts WHERE name = ?", (name,))
        return dict(rows[0]) if rows else None

    def list_hosts(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._read("SELECT * FROM hosts ORDER BY name")]

    def publish_report(self, host: str, report: str, heartbeat_s: float, reporter: str, at: str) -> None:
        """Keep ``report`` (JSON) as ``host``'s newest, published at ``at`` by ``reporter``."""
        with self._write() as tx:
            tx.execute(
                """INSERT INTO host_reports (host, report, heartbeat_s, reporter, reported_at)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (host) DO UPDATE SET report = excluded.report,
                     heartbeat_s = excluded.heartbeat_s, reporter = excluded.reporter,
                     reported_at = excluded.reported_at""",
                (host, report, heartbeat_s, reporter, at),
            )

    def host_report(self, host: str) -> dict[str, Any] | None:
        rows = self._read("SELECT * FROM host_reports WHERE host = ?", (host,))
        return dict(rows[0]) if rows else None

    def host_reports(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._read("SELECT * FROM host_reports ORDER BY host")]
