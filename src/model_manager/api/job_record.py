"""A job as clients see it and as the store keeps it, and what tells one kind of job from another."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..config import DEFAULT_HOST_NAME
from ..errors import (
    DownloadCancelledError,
    DownloadInterruptedError,
    JobConflictError,
    JobNotFoundError,
    ModelManagerError,
)


@dataclass(frozen=True)
class JobKind:
    """What tells one kind of job from another: its rows' ``kind`` and the errors it reports."""

    name: str
    not_found: type[ModelManagerError]
    conflict: type[ModelManagerError]
    cancelled: type[ModelManagerError]
    interrupted: type[ModelManagerError]


DOWNLOAD = JobKind(
    "download", JobNotFoundError, JobConflictError, DownloadCancelledError, DownloadInterruptedError
)


@dataclass
class Job:
    """One job as clients see it (``completed``/``total`` count bytes for a download)."""

    id: str
    model: str
    key: str
    status: str = "queued"
    completed: int = 0
    total: int = 0
    detail: str = ""
    """Ollama's last status line ("pulling manifest", "pulling 6a0746a1ec1a", "success")."""
    error: dict[str, str] | None = None
    message: str | None = None
    attempts: int = 1
    host: str = DEFAULT_HOST_NAME
    created_at: str = ""
    updated_at: str = ""
    finished_at: str | None = None
    kind: str = DOWNLOAD.name
    result: dict[str, Any] | None = None
    """What the job produced besides its message (a benchmark's figures); None for a download."""

    @property
    def percent(self) -> float:
        if self.status == "succeeded":
            return 100.0
        return round(min(100.0, 100.0 * self.completed / self.total), 1) if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "status": self.status,
            "completed": self.completed,
            "total": self.total,
            "percent": self.percent,
            "detail": self.detail,
            "error": self.error,
            "message": self.message,
            "attempts": self.attempts,
            "host": self.host,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "finished_at": self.finished_at,
            "result": self.result,
        }

    def to_row(self, owner: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "model_key": self.key,
            "status": self.status,
            "completed": self.completed,
            "total": self.total,
            "detail": self.detail,
            "error": json.dumps(self.error) if self.error else None,
            "message": self.message,
            "owner": owner,
            "attempts": self.attempts,
            "host": self.host,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "finished_at": self.finished_at,
            "kind": self.kind,
            "result": json.dumps(self.result) if self.result is not None else None,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Job:
        return cls(
            id=row["id"],
            model=row["model"],
            key=row["model_key"],
            status=row["status"],
            completed=row["completed"],
            total=row["total"],
            detail=row["detail"],
            error=json.loads(row["error"]) if row["error"] else None,
            message=row["message"],
            attempts=row["attempts"],
            host=row.get("host") or DEFAULT_HOST_NAME,
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            finished_at=row["finished_at"],
            kind=row["kind"],
            result=json.loads(row["result"]) if row["result"] else None,
        )
