"""The REST API's OpenAPI document, as the app serves it, for the schema-driven tests."""

from __future__ import annotations

import tempfile
from typing import Any

from model_manager import ModelManager
from model_manager.api import create_app


def openapi_document() -> dict[str, Any]:
    """The schema as the app serves it (it does not depend on the manager's state)."""
    with tempfile.TemporaryDirectory() as home, ModelManager(host="127.0.0.1:1", data_dir=home) as mm:
        app = create_app(mm)
        try:
            return app.openapi()
        finally:
            app.state.jobs.close()
