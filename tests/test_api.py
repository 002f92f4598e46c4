"""The REST API's endpoints, driven through the app against the Ollama double and a real store."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from helpers import success
from model_manager import ModelManager
from model_manager.api import create_app
from model_manager.config import load_settings
from model_manager.testing import OllamaDouble

SMALL = "llama3.2:1b-instruct"
SMALL_TAG = "llama3.2:1b-instruct-q8_0"
MEDIUM = "llama3.1:8b-instruct"
MEDIUM_TAG = "llama3.1:8b-instruct-q4_K_M"
BASE = "http://127.0.0.1:8000"


def error_of(response: Any, status: int) -> str:
    """Assert the failure envelope with ``status``; return its code."""
    body = response.json()
    assert response.status_code == status, body
    assert body["success"] is False
    assert body["message"] and body["solution"]
    return str(body["error"])


# --- list, installed, info, current --------------------------------------------------------------


def test_list_returns_every_known_model_with_quick_reference_fields(
    client: TestClient, manager: ModelManager
) -> None:
    body = success(client.get("/api/model/list"))
    assert body["count"] == len(body["models"]) == len(manager.list_available_models())
    quick_reference_fields = {"name", "size", "purpose", "description", "recommended_use", "min_vram_gb"}
    quick_reference_fields |= {
        "quantization_support",
        "download_size_mb",
        "installed",
        "last_used",
        "usage_count",
    }
    quick_reference_fields |= {"avg_inference_time", "success_rate"}
    assert all(quick_reference_fields <= m.keys() for m in body["models"])
    assert MEDIUM in {m["name"] for m in body["models"]}


def test_json_answers_are_compressed_for_clients_that_accept_gzip(
    client: TestClient, ollama: OllamaDouble
) -> None:
    ollama.install(SMALL_TAG)
    for path in ("/api/model/list", "/api/model/list", "/api/model/installed", "/api/model/statistics"):
        plain = client.get(path, headers={"Accept-Encoding": "identity"})
        packed = client.get(path, headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in plain.headers, path
        assert packed.headers["content-encoding"] == "gzip" and "Accept-Encoding" in packed.headers["vary"], (
            path
        )
        # httpx undoes the gzip: the same document either way, in fewer bytes on the wire.
        sent = int(packed.headers["content-length"])
        assert packed.json() == plain.json() and sent < len(plain.content) / (4 if "list" in path else 1), (
            path
        )
    refusing = client.get("/api/model/list", headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "content-encoding" not in refusing.headers and refusing.json()["count"] > 0  # q=0 refuses gzip
    small = client.get("/api/model/current", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers  # under 1 KB: not worth compressing
    started = success(client.post("/api/model/download", json={"model": SMALL, "wait": True}))
    with client.stream(
        "GET", f"/api/model/download/{started['job']['id']}/events", headers={"Accept-Encoding": "gzip"}
    ) as events:
        assert "content-encoding" not in events.headers  # an event stream is sent as each event comes
        assert "event: end" in "".join(events.iter_text())


def test_list_filters_as_the_quick_reference_writes_them(client: TestClient, ollama: OllamaDouble) -> None:
    ollama.install(MEDIUM_TAG)
    body = success(client.get("/api/model/list?purpose=balanced&max_vram=8.0&installed_only=true"))
    assert [m["name"] for m in body["models"]] == [MEDIUM]
    speed = success(client.get("/api/model/list", params={"purpose": "Speed", "installed_only": "0"}))
    assert speed["count"] > 0 and {m["purpose"] for m in speed["models"]} == {"speed"}
    small = success(client.get("/api/model/list", params={"max_vram": 1.5}))
    assert all(m["min_vram_gb"] is None or m["min_vram_gb"] <= 1.5 for m in small["models"])
    assert SMALL in {m["name"] for m in small["models"]} and MEDIUM not in {
        m["name"] for m in small["models"]
    }


@pytest.mark.parametrize(
    "query",
    ["purpose=fastest", "max_vram=-1", "max_vram=lots", "installed_only=maybe", "max_vram=inf"],
)
def test_list_rejects_bad_query_parameters(client: TestClient, query: str) -> None:
    assert error_of(client.get(f"/api/model/list?{query}"), 422) == "invalid_request"


def test_installed_lists_what_ollama_has(client: TestClient, ollama: OllamaDouble) -> None:
    ollama.install(SMALL_TAG)
    body = success(client.get("/api/model/installed"))
    assert [m["name"] for m in body["models"]] == [SMALL] and body["count"] == 1
    assert body["models"][0]["installed"] is True


def test_info_takes_names_with_colons_and_slashes(client: TestClient, ollama: OllamaDouble) -> None:
    ollama.install("hf.co/org/repo:Q4_K_M", size=2_000_000_000)
    assert success(client.get(f"/api/model/info/{MEDIUM}"))["model"]["name"] == MEDIUM
    info = success(client.get("/api/model/info/hf.co/org/repo:Q4_K_M"))["model"]
    assert info["name"] == "hf.co/org/repo:Q4_K_M" and info["installed"] is True


def test_info_unknown_and_invalid_names(client: TestClient) -> None:
    assert error_of(client.get("/api/model/info/nosuchmodel:1b"), 404) == "model_not_found"
    assert error_of(client.get("/api/model/info/bad name!"), 422) == "invalid_request"


def test_current_is_null_then_the_switched_model(client: TestClient, ollama: OllamaDouble) -> None:
    assert success(client.get("/api/model/current")) | {"success": True} == {
        "success": True,
        "model": None,
        "info": None,
        "loaded": False,
        "expires_at": None,
        "size_vram_gb": None,
        "processor": None,
    }
    ollama.install(SMALL_TAG)
    success(client.post("/api/model/switch", json={"model": SMALL}))
    body = success(client.get("/api/model/current"))
    assert body["model"] == SMALL and body["info"]["name"] == SMALL


def test_current_model_gone_from_ollama_is_409(client: TestClient, ollama: OllamaDouble) -> None:
    ollama.install(SMALL_TAG)
    success(client.post("/api/model/switch", json={"model": SMALL}))
    ollama.uninstall(SMALL_TAG)
    success(client.post("/api/model/sync", json={}))  # else noticed within the manager's refresh interval
    assert error_of(client.get("/api/model/current"), 409) == "model_not_installed"


# --- switch, delete -------------------------------------------------------------------------------


def test_switch_loads_the_model_in_ollama(client: TestClient, ollama: OllamaDouble) -> None:
    ollama.install(SMALL_TAG)
    body = success(client.post("/api/model/switch", json={"model": SMALL}))
    assert body["model"] == SMALL and SMALL in body["message"] and body["info"]["installed"] is True
    assert SMALL_TAG in ollama.loaded()


@pytest.mark.parametrize(
    ("model", "status", "code"),
    [
        (MEDIUM, 409, "model_not_installed"),
        ("nosuchmodel:1b", 404, "model_not_found"),
        ("", 422, "invalid_request"),
        (42, 422, "invalid_request"),
    ],
)
def test_switch_errors(client: TestClient, model: object, status: int, code: str) -> None:
    assert error_of(client.post("/api/model/switch", json={"model": model}), status) == code


def test_switch_that_ollama_cannot_fit_is_insufficient_vram(client: TestClient, ollama: OllamaDouble) -> None:
    ollama.install(MEDIUM_TAG)
    ollama.vram_bytes = ollama.ram_bytes = 1_000_000
    assert error_of(client.post("/api/model/switch", json={"model": MEDIUM}), 409) == "insufficient_vram"


def test_switch_with_ollama_down_is_503(client: TestClient, ollama: OllamaDouble) -> None:
    ollama.install(SMALL_TAG)
    success(client.post("/api/model/sync", json={}))
    ollama.down = True
    assert error_of(client.post("/api/model/switch", json={"model": SMALL}), 503) == "ollama_unavailable"


def test_delete_takes_a_json_body_or_a_query(client: TestClient, ollama: OllamaDouble) -> None:
    ollama.install(SMALL_TAG)
    ollama.install(MEDIUM_TAG)
    body = success(client.request("DELETE", "/api/model/delete", json={"model": SMALL}))
    assert body["model"] == SMALL and "Deleted" in body["message"]
    success(client.delete("/api/model/delete", params={"model": MEDIUM}))
    assert ollama.installed() == []


def test_delete_errors(client: TestClient, ollama: OllamaDouble) -> None:
    ollama.install(SMALL_TAG)
    success(client.post("/api/model/switch", json={"model": SMALL}))
    assert error_of(client.delete(f"/api/model/delete?model={SMALL}"), 409) == "cannot_delete_current"
    assert error_of(client.delete(f"/api/model/delete?model={MEDIUM}"), 409) == "model_not_installed"
    assert error_of(client.delete("/api/model/delete?model=nosuch:1b"), 404) == "model_not_found"
    assert error_of(client.delete("/api/model/delete"), 422) == "invalid_request"
    conflicting = client.request("DELETE", f"/api/model/delete?model={MEDIUM}", json={"model": SMALL})
    assert error_of(conflicting, 422) == "invalid_request"
    assert ollama.installed() == [SMALL_TAG]


# --- recommend, compatibility ----------------------------------------------------------------------


def test_recommend_as_the_quick_reference_example(client: TestClient, manager: ModelManager) -> None:
    body = success(
        client.post("/api/model/recommend", json={"available_vram_gb": 8.0, "priority": "balanced"})
    )
    expected = manager.recommend(8.0, "balanced")
    assert body["model"] == expected.model and body["reason"] == expected.reason
    assert [c["name"] for c in body["candidates"]] == [c.info.name for c in expected.candidates]
    assert body["available_vram_gb"] == 8.0


def test_recommend_with_nothing_that_fits_is_null(client: TestClient) -> None:
    body = success(
        client.post("/api/model/recommend", json={"available_vram_gb": 0.1, "priority": "quality"})
    )
    assert body["model"] is None and body["candidates"] == [] and body["reason"]


def test_recommend_detects_vram_when_left_out(
    ollama: OllamaDouble, isolated_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODEL_MANAGER_VRAM_GB", "7")
    with (
        ModelManager(host=ollama.url, data_dir=isolated_env) as mm,
        TestClient(create_app(mm), base_url=BASE) as c,
    ):
        body = success(c.post("/api/model/recommend", json={"priority": "speed"}))
        assert body["available_vram_gb"] == 7.0 and body["model"] == mm.recommend(7.0, "speed").model
        no_body = success(c.post("/api/model/recommend", headers={"Content-Type": "application/json"}))
        assert no_body["priority"] == "balanced" and no_body["available_vram_gb"] == 7.0


@pytest.mark.parametrize(
    "body", [{"priority": "fastest"}, {"available_vram_gb": -1}, {"available_vram_gb": "8"}, {"vram": 8}]
)
def test_recommend_rejects_bad_input(client: TestClient, body: dict[str, Any]) -> None:
    assert error_of(client.post("/api/model/recommend", json=body), 422) == "invalid_request"


def test_check_compatibility(client: TestClient) -> None:
    fits = success(
        client.post("/api/model/check_compatibility", json={"model": MEDIUM, "available_vram_gb": 8.0})
    )
    assert fits["compatible"] is True and fits["required_vram_gb"] == 6.0 and fits["available_vram_gb"] == 8.0
    short = success(
        client.post("/api/model/check_compatibility", json={"model": MEDIUM, "available_vram_gb": 4})
    )
    assert short["compatible"] is False and "Insufficient VRAM" in short["message"]
    missing = client.post(
        "/api/model/check_compatibility", json={"model": "nosuch:1b", "available_vram_gb": 4}
    )
    assert error_of(missing, 404) == "model_not_found"


def test_check_compatibility_detects_vram_when_left_out(client: TestClient, manager: ModelManager) -> None:
    body = success(client.post("/api/model/check_compatibility", json={"model": SMALL}))
    assert body["available_vram_gb"] == manager.available_vram_gb()


# --- usage, statistics -----------------------------------------------------------------------------


def test_usage_is_recorded_and_shows_in_statistics(client: TestClient, manager: ModelManager) -> None:
    for seconds, ok in ((2.0, True), (4.0, False)):
        body = success(
            client.post("/api/model/usage", json={"model": SMALL, "inference_time": seconds, "success": ok})
        )
        assert body["model"] == SMALL
    assert manager.store.count_events(SMALL) == 2
    one = success(client.get("/api/model/statistics", params={"model": SMALL}))["statistics"]
    assert one["usage_count"] == 2 and one["avg_inference_time"] == 3.0 and one["success_rate"] == 0.5
    every = success(client.get("/api/model/statistics"))["statistics"]
    assert every[SMALL] == one and MEDIUM in every


@pytest.mark.parametrize(
    "body",
    [
        {"model": SMALL, "inference_time": -1},
        {"model": SMALL, "inference_time": "2"},
        {"model": SMALL, "inference_time": 1, "success": "yes"},
        {"model": "bad name", "inference_time": 1},
        {"inference_time": 1},
    ],
)
def test_usage_rejects_bad_input_and_records_nothing(
    client: TestClient, manager: ModelManager, body: dict[str, Any]
) -> None:
    assert error_of(client.post("/api/model/usage", json=body), 422) == "invalid_request"
    assert manager.store.count_events() == 0


def test_statistics_of_an_unknown_model_is_404(client: TestClient) -> None:
    assert error_of(client.get("/api/model/statistics?model=nosuch:1b"), 404) == "model_not_found"


# --- sync, export, import -------------------------------------------------------------------------


def test_sync_reports_added_and_removed(client: TestClient, ollama: OllamaDouble) -> None:
    success(client.post("/api/model/sync", json={}))
    ollama.install(SMALL_TAG)
    added = success(client.post("/api/model/sync", json={}))
    assert added["added"] == [SMALL_TAG] and added["removed"] == [] and added["installed"] == [SMALL_TAG]
    ollama.uninstall(SMALL_TAG)
    assert success(client.post("/api/model/sync", headers={"Content-Type": "application/json"}))[
        "removed"
    ] == [SMALL_TAG]


def test_sync_with_ollama_down_is_503(client: TestClient, ollama: OllamaDouble) -> None:
    ollama.down = True
    assert error_of(client.post("/api/model/sync", json={}), 503) == "ollama_unavailable"


def test_export_body_imports_back(client: TestClient, manager: ModelManager) -> None:
    success(client.post("/api/model/usage", json={"model": SMALL, "inference_time": 1.5}))
    doc = client.post("/api/model/export", json={}).json()
    assert doc["format"] == "model-manager-metadata" and "success" not in doc
    assert doc["models"][SMALL]["statistics"]["usage_count"] == 1
    doc["models"][SMALL]["statistics"] = {"usage_count": 10, "success_count": 9, "total_inference_time": 20.0}
    doc["models"][SMALL]["metadata"]["description"] = "edited"
    assert "Imported" in success(client.post("/api/model/import", json=doc))["message"]
    stats = manager.statistics(SMALL).stats
    assert stats.usage_count == 10 and stats.success_rate == 0.9
    assert manager.model_info(SMALL).description == "edited"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"format": "model-manager-metadata", "version": 1, "models": {}, "models": {}}',
        b'{"format": "something-else", "version": 1, "models": {}}',
        b'"/etc/passwd"',
        b"not json",
        b"",
    ],
)
def test_import_rejects_anything_but_a_valid_document(client: TestClient, raw: bytes) -> None:
    response = client.post("/api/model/import", content=raw, headers={"Content-Type": "application/json"})
    assert error_of(response, 422) == "invalid_request"


def test_export_and_import_take_no_server_path(client: TestClient, tmp_path: Any) -> None:
    target = tmp_path / "out.json"
    assert error_of(client.post("/api/model/export", json={"path": str(target)}), 422) == "invalid_request"
    assert not target.exists()
    assert error_of(client.post("/api/model/import", json={"path": str(target)}), 422) == "invalid_request"


# --- health, metrics, envelope ---------------------------------------------------------------------


def test_health_stays_200_and_ready_is_503_while_ollama_is_down(
    client: TestClient, ollama: OllamaDouble
) -> None:
    body = success(client.get("/api/health"))
    assert body["ok"] is True and body["store"]["ok"] is True and body["ollama"]["version"]
    assert success(client.get("/api/ready"))["ollama"]["ok"] is True
    ollama.down = True
    down = success(client.get("/api/health"))
    assert down["ok"] is False and down["store"]["ok"] is True and down["ollama"]["ok"] is False
    assert "Ollama unreachable" in down["ollama"]["error"]
    not_ready = client.get("/api/ready")
    assert error_of(not_ready, 503) == "ollama_unavailable"
    assert not_ready.json()["store"]["ok"] is True and not_ready.json()["ollama"]["ok"] is False


def test_metrics_expose_usage_and_inference_time(client: TestClient, manager: ModelManager) -> None:
    manager.record_usage(MEDIUM, 3.0, success=False)  # recorded outside the API: counted from the store
    success(client.post("/api/model/usage", json={"model": SMALL, "inference_time": 0.3}))
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert f'model_manager_model_uses_total{{model="{SMALL}"}} 1.0' in text
    assert f'model_manager_model_failures_total{{model="{MEDIUM}"}} 1.0' in text
    assert f'model_manager_inference_seconds_bucket{{le="0.5",model="{SMALL}",outcome="success"}} 1.0' in text
    assert f'model_manager_inference_seconds_count{{model="{SMALL}",outcome="success"}} 1.0' in text


def test_each_app_has_its_own_registry(manager: ModelManager) -> None:
    first, second = create_app(manager), create_app(manager)
    with TestClient(first, base_url=BASE) as a, TestClient(second, base_url=BASE) as b:
        success(a.post("/api/model/usage", json={"model": SMALL, "inference_time": 0.3}))
        assert 'model_manager_inference_seconds_count{model="llama3.2:1b-instruct"' in a.get("/metrics").text
        assert "model_manager_inference_seconds_count{" not in b.get("/metrics").text


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/api/nothing", 404, "not_found"),
        ("GET", "/api/model/switch", 405, "method_not_allowed"),
        ("PUT", "/api/model/list", 405, "method_not_allowed"),
    ],
)
def test_routing_errors_use_the_envelope(
    client: TestClient, method: str, path: str, status: int, code: str
) -> None:
    kwargs: dict[str, Any] = {"json": {}} if method in ("POST", "PUT") else {}
    assert error_of(client.request(method, path, **kwargs), status) == code


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"[]", b'{"model": 5}', b'{"model": "x", "extra": 1}', b'{"model": null}'],
)
def test_bad_bodies_are_invalid_request(client: TestClient, raw: bytes) -> None:
    response = client.post("/api/model/switch", content=raw, headers={"Content-Type": "application/json"})
    assert error_of(response, 422) == "invalid_request"
    assert "Invalid request" in response.json()["message"]


def test_store_failure_is_a_500_envelope(ollama: OllamaDouble, isolated_env: Any) -> None:
    mm = ModelManager(settings=load_settings({"MODEL_MANAGER_HOME": str(isolated_env)}, host=ollama.url))
    with TestClient(create_app(mm), base_url=BASE, raise_server_exceptions=False) as c:
        mm.store.close()
        assert error_of(c.get("/api/model/statistics"), 500) == "store_error"


def test_usage_by_an_alias_is_kept_under_the_catalog_name(client: TestClient, manager: ModelManager) -> None:
    assert (
        success(client.post("/api/model/usage", json={"model": "llama3.2:1b", "inference_time": 1.0}))[
            "model"
        ]
        == SMALL
    )
    assert manager.statistics(SMALL).stats.usage_count == 1
    assert (
        f'model_manager_inference_seconds_count{{model="{SMALL}",outcome="success"}} 1.0'
        in client.get("/metrics").text
    )


def test_a_reused_listing_follows_every_change(
    client: TestClient, manager: ModelManager, ollama: OllamaDouble
) -> None:
    def usage_of(name: str) -> int:
        models = success(client.get("/api/model/list"))["models"]
        return next(m["usage_count"] for m in models if m["name"] == name)

    assert usage_of(SMALL) == 0
    client.post("/api/model/usage", json={"model": SMALL, "inference_time": 1.0, "success": True})
    assert usage_of(SMALL) == 1
    # A write by another process (its own connection to the same store) shows too.
    with ModelManager(host=ollama.url, data_dir=manager.settings.home) as other:
        other.record_usage(SMALL, 1.0)
    assert usage_of(SMALL) == 2
    ollama.install(manager.catalog.get(SMALL).ollama_tag)  # type: ignore[union-attr]
    manager.sync()
    assert next(m for m in success(client.get("/api/model/list"))["models"] if m["name"] == SMALL)[
        "installed"
    ]
