"""Small helpers shared by the test files (fixtures live in conftest.py)."""

from __future__ import annotations

from typing import Any

from model_manager import ManagerCore


def catalog_tag(manager: ManagerCore, name: str) -> str:
    """The Ollama tag the catalog maps ``name`` to."""
    entry = manager.catalog.get(name)
    assert entry is not None, name
    return entry.ollama_tag


def success(response: Any, status: int = 200) -> dict[str, Any]:
    """The body of a success envelope answered with ``status``."""
    body = response.json()
    assert response.status_code == status, body
    assert body["success"] is True, body
    return dict(body)


def refused(response: Any, status: int, code: str) -> dict[str, Any]:
    """The body of a failure envelope answered with ``status`` and error ``code``."""
    body = response.json()
    assert response.status_code == status, (status, body)
    assert body["success"] is False and body["error"] == code and body["message"] and body["solution"], body
    return dict(body)
