"""Fuzzing the whole API over real HTTP: schemathesis against a served ``model_manager.api.server`` process.

tests/test_api_schema.py runs a small, fast pass in-process (12 examples per operation). This file
goes further: ``MAX_EXAMPLES`` (60 by default, ``MODEL_MANAGER_FUZZ_EXAMPLES`` raises it) positive and
negative cases per operation, sent over a real socket to a real server process that shares one data
dir and one Ollama double for the whole run, so the state the cases leave behind (downloads, deletes,
switches, imports) feeds the next ones. Every response must pass schemathesis's checks: no 5xx, and
status, content type, headers and body as documented; invalid requests refused, valid ones accepted.

The OpenAPI document declares no links. schemathesis infers them from the schema (a download job's
``id`` in the start, list, get and cancel answers feeds the ``{job_id}`` of the job routes), and
``test_download_job_workflows`` runs those inferred sequences as a state machine, each scenario
against a fresh server.

The cases sent are counted and the total printed once the file has run (``fuzz cases run: ...``);
with ``MODEL_MANAGER_FUZZ_REPORT=<path>`` the counts per operation and mode are also written there.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from model_manager import ModelManager
from model_manager.api import create_app
from model_manager.api.server import bind_socket
from model_manager.testing import OllamaDouble
from openapi_doc import openapi_document
from processes import process_env, server_process

MAX_EXAMPLES = max(60, int(os.environ.get("MODEL_MANAGER_FUZZ_EXAMPLES", "60")))
STATEFUL_EXAMPLES = max(30, MAX_EXAMPLES // 2)

# Rules JSON Schema cannot state, so a request it calls valid may rightly be refused (422):
UNSTATED_RULES = {
    "DELETE /api/model/delete": "the model comes from the body or ?model=, and both must agree",
    "POST /api/model/import": "success_count <= usage_count, names unique ignoring case, ISO timestamps",
}

CASES: Counter[str] = Counter()
"""Cases sent, by operation and generation mode (``"POST /api/model/usage positive"``)."""
OLLAMA_URLS: dict[str, str] = {}
"""The Ollama double behind each server under test, by the server's URL."""


schema = schemathesis.openapi.from_dict(openapi_document())
schema.config.generation.update(
    max_examples=MAX_EXAMPLES, modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], deterministic=True
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ``python -m model_manager.api.server --port 0`` process over an Ollama double, for the whole file."""
    home = tmp_path_factory.mktemp("fuzz-home")
    log = home / "server.log"
    with OllamaDouble() as ollama:
        ollama.install("llama3.2:1b-instruct-q8_0")
        ollama.install("llama3.2:3b-instruct-q4_K_M")
        env = process_env(home, ollama.url, MODEL_MANAGER_VRAM_GB="24")
        with server_process(env, log, "--no-access-log", graceful=True) as (proc, url):
            OLLAMA_URLS[url] = ollama.url
            yield url
            assert proc.poll() is None, f"the server died during the fuzz run:\n{log.read_text()}"
    text = log.read_text()
    assert "Traceback" not in text and "unhandled error" not in text, text


@pytest.fixture(scope="module", autouse=True)
def report_case_count(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print (and optionally record) how many cases the file ran."""
    started = time.monotonic()
    yield
    total = sum(CASES.values())
    by_mode = Counter(key.rsplit(" ", 1)[1] for key in CASES.elements())
    line = (
        f"fuzz cases run: {total} ({by_mode['positive']} positive, {by_mode['negative']} negative, "
        f"{by_mode['stateful']} in stateful steps) over {len({k.rsplit(' ', 1)[0] for k in CASES})} "
        f"operations in {time.monotonic() - started:.1f} s, {MAX_EXAMPLES} examples per operation"
    )
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():  # shown without -s, as the run's own figure
            reporter.write_line("")
            reporter.write_line(line)
    target = os.environ.get("MODEL_MANAGER_FUZZ_REPORT")
    if target:
        Path(target).write_text(json.dumps({"total": total, "max_examples": MAX_EXAMPLES, **CASES}, indent=2))


def _count(case: schemathesis.Case[Any], mode: str) -> None:
    CASES[f"{case.operation.label} {mode}"] += 1


def _excluded(case: schemathesis.Case[Any], response: Any) -> list[Any]:
    """Checks that cannot hold for this operation and answer (see UNSTATED_RULES and SSE_DOC_ISSUE)."""
    excluded: list[Any] = []
    if case.operation.label in UNSTATED_RULES:
        excluded.append(positive_data_acceptance)
    return excluded


def _hosts_answer(case: schemathesis.Case[Any], base_url: str) -> None:
    """A host a valid case adds is the server's own Ollama double under another name, so that the
    cases after it, which may name it, find an Ollama that answers (a URL with nothing behind it would
    make them 503 by design; URLs themselves are fuzzed in tests/test_api_schema.py)."""
    body = case.body
    positive = case.meta is None or case.meta.generation.mode == GenerationMode.POSITIVE
    if case.operation.label == "POST /api/hosts" and positive and isinstance(body, dict) and "url" in body:
        body["url"] = OLLAMA_URLS[base_url]


def _call_and_validate(case: schemathesis.Case[Any], base_url: str) -> None:
    _hosts_answer(case, base_url)
    response = case.call(base_url=base_url, timeout=30)
    case.validate_response(response, excluded_checks=_excluded(case, response))


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms_over_http(case: schemathesis.Case[Any], served: str) -> None:
    _count(case, case.meta.generation.mode.value if case.meta else "unknown")
    _call_and_validate(case, served)


class _Scenario:
    """A fresh world for one stateful scenario: Ollama double, store and uvicorn server on a loopback port.

    Each scenario starts from the same empty state, so the answers (and with them the links
    schemathesis follows) depend only on the requests, which Hypothesis needs to replay and shrink.
    """

    def __init__(self) -> None:
        self.home = tempfile.TemporaryDirectory()
        self.ollama = OllamaDouble().start()
        self.manager = ModelManager(host=self.ollama.url, data_dir=self.home.name)
        self.sock = bind_socket("127.0.0.1", 0)
        config = uvicorn.Config(create_app(self.manager), log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        OLLAMA_URLS[self.url] = self.ollama.url

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()
        self.manager.close()
        self.ollama.stop()
        self.home.cleanup()


def test_download_job_workflows() -> None:
    machine = schema.as_state_machine()
    transitions = sorted(name for name in dir(machine) if "__" in name and name.split("_")[0].isupper())
    assert any("GET_api_model_download_job_id" in t for t in transitions), transitions

    class Workflow(machine):  # type: ignore[valid-type, misc]
        scenario: _Scenario

        def setup(self) -> None:
            self.scenario = _Scenario()

        def teardown(self) -> None:
            self.scenario.close()

        def before_call(self, case: schemathesis.Case[Any]) -> None:
            # Whether a cancel finds a job still running, or already ended, depends on timing, and
            # Hypothesis cannot replay answers that vary from run to run. Starting each download with
            # "wait": true makes every job end before the next step, so each answer is a function of
            # the requests alone. (Cancelling running jobs is covered by test_api_jobs.py.)
            body = case.body
            starts_a_download = case.operation.label == "POST /api/model/download"
            if starts_a_download and isinstance(body, dict) and body.get("wait", False) is False:
                body["wait"] = True
            _hosts_answer(case, self.scenario.url)

        def get_call_kwargs(self, case: schemathesis.Case[Any]) -> dict[str, Any]:
            _count(case, "stateful")
            return {"base_url": self.scenario.url, "timeout": 30}

        def validate_response(self, response: Any, case: schemathesis.Case[Any], **kwargs: Any) -> None:
            case.validate_response(response, excluded_checks=_excluded(case, response))

    before = sum(v for k, v in CASES.items() if k.endswith(" stateful"))
    Workflow.run(
        settings=settings(
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        )
    )
    assert sum(v for k, v in CASES.items() if k.endswith(" stateful")) > before


def test_event_stream_matches_its_documented_schema(served: str) -> None:
    started = httpx.post(
        f"{served}/api/model/download", json={"model": "moondream:1.8b", "wait": True}, timeout=60
    ).json()
    assert started["job"]["status"] == "succeeded", started
    case = schema["/api/model/download/{job_id}/events"]["GET"].Case(
        path_parameters={"job_id": started["job"]["id"]}
    )
    response = case.call(base_url=served, timeout=30)
    assert response.status_code == 200 and response.headers["content-type"][0].startswith("text/event-stream")
    case.validate_response(response)  # each event against the documented event schema and DownloadJob
