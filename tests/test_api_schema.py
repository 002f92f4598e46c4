"""Property-based checks of the whole API against its own OpenAPI schema (schemathesis).

Every operation gets generated requests, valid and invalid, with a bounded number of examples so the
file runs in well under a minute. The checks are schemathesis's defaults: no 5xx, and status codes,
content types, headers and bodies as documented; invalid requests refused, valid ones accepted.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from model_manager import ModelManager
from model_manager.api import create_app
from model_manager.testing import OllamaDouble
from openapi_doc import openapi_document

MAX_EXAMPLES = 12

# Rules JSON Schema cannot state, so a request it calls valid may rightly be refused (422):
UNSTATED_RULES = {
    "DELETE /api/model/delete": "the model comes from the body or ?model=, and both must agree",
    "POST /api/model/import": "success_count <= usage_count, names unique ignoring case, ISO timestamps",
}


schema = schemathesis.openapi.from_dict(openapi_document())
schema.config.generation.update(
    max_examples=MAX_EXAMPLES, modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], deterministic=True
)


@pytest.fixture
def app(manager: ModelManager, ollama: OllamaDouble) -> Iterator[FastAPI]:
    ollama.install("llama3.2:1b-instruct-q8_0")
    # schemathesis's ASGI client sends Host: testserver, which a loopback-only server would refuse.
    app = create_app(manager, allowed_hosts=["testserver"])
    yield app
    app.state.jobs.close()


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms_to_its_schema(case: schemathesis.Case, app: FastAPI) -> None:
    unstated = f"{case.method.upper()} {case.path}" in UNSTATED_RULES
    case.call_and_validate(app=app, excluded_checks=[positive_data_acceptance] if unstated else [])
