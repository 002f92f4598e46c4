"""Background jobs' rows (downloads and benchmarks, in the ``download_jobs`` table).

Rows are plain dicts: the job record and its rules live in ``api/jobs.py`` and ``api/job_record.py``; the
store only keeps them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..config import DEFAULT_HOST_NAME
from .schema import Tables


class JobTables(Tables):
    """The job methods of ``Store`` (which provides ``_read`` and ``_write``)."""

    JOB_COLUMNS = (
        "id",
        "model",
        "model_key",
        "status",
        "completed",
        "total",
        "detail",
        "error",
        "message",
        "owner",
        "attempts",
        "host",
        "created_at",
        "updated_at",
        "finished_at",
        "kind",
        "result",
    )

    def save_job(self, job: Mapping[str, Any]) -> None:
        """Insert or replace one job row (keys: ``JOB_COLUMNS``; missing ones take their defaults)."""
        columns = [c for c in self.JOB_COLUMNS if c in job]
        placeholders = ", ".join("?" for _ in columns)
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != "id")
        with self._write() as tx:
            tx.execute(
                f"INSERT INTO download_jobs ({', '.join(columns)}) VALUES ({placeholders}) "
                f"ON CONFLICT (id) DO UPDATE SET {updates}",
                [job[c] for c in columns],
            )

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        rows = self._read("SELECT * FROM download_jobs WHERE id = ?", (job_id,))
        return dict(rows[0]) if rows else None

    def list_jobs(self, limit: int = 100, kind: str = "download") -> list[dict[str, Any]]:
        """The newest jobs of ``kind`` first."""
        rows = self._read(
            "SELECT * FROM download_jobs WHERE kind = ? ORDER BY created_at DESC, id LIMIT ?", (kind, limit)
        )
        return [dict(r) for r in rows]

    def latest_job(
        self, model_key: str, kind: str = "download", host: str | None = DEFAULT_HOST_NAME
    ) -> dict[str, Any] | None:
        """The newest job of ``kind`` for the model on ``host`` (None: on any host)."""
        where, params = (
            ("", (model_key, kind)) if host is None else (" AND host = ?", (model_key, kind, host))
        )
        rows = self._read(
            f"SELECT * FROM download_jobs WHERE model_key = ? AND kind = ?{where} ORDER BY created_at DESC, id LIMIT 1",
            params,
        )
        return dict(rows[0]) if rows else None

    def interrupt_jobs(self, orphaned: Callable[[str], bool], at: str) -> list[str]:
        """Mark queued or running jobs whose ``owner`` is ``orphaned`` as interrupted; return their ids."""
        with self._write() as tx:
            rows = tx.execute(
                "SELECT id, owner FROM download_jobs WHERE status IN ('queued', 'running')"
            ).fetchall()
            ids = [r["id"] for r in rows if orphaned(r["owner"])]
            tx.executemany(
                "UPDATE download_jobs SET status = 'interrupted', updated_at = ? WHERE id = ?",
                [(at, i) for i in ids],
            )
        return ids

    def prune_jobs(self, keep: int) -> int:
        """Delete all but the newest ``keep`` finished jobs; return how many went."""
        with self._write() as tx:
            cursor = tx.execute(
                """DELETE FROM download_jobs WHERE status NOT IN ('queued', 'running', 'interrupted')
                   AND id NOT IN (SELECT id FROM download_jobs ORDER BY created_at DESC LIMIT ?)""",
                (keep,),
            )
            return cursor.rowcount
