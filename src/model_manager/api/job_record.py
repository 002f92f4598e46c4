"""One download job as clients see it and as the store keeps it (its rules are in ``jobs``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..config import DEFAULT_HOST_NAME


@dataclass
class Job:
    """One download job as clients see it."""

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
        )
