"""Safe by default: Host and Origin allow-list, bearer token, JSON-only writes, body size limit, binds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from helpers import refused
from model_manager import ModelManager
from model_manager.api import create_app
from model_manager.api.server import UnsafeBindError, check_bind, serve
from model_manager.testing import OllamaDouble

BASE = "http://127.0.0.1:8000"
SMALL = "llama3.2:1b-instruct"
SMALL_TAG = "llama3.2:1b-instruct-q8_0"


# --- Host and Origin ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["127.0.0.1:8000", "localhost:8000", "[::1]:8000", "app.localhost", "127.1.2.3"]
)
def test_loopback_hosts_are_served(client: TestClient, host: str) -> None:
    assert client.get("/api/model/list", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8000", "192.168.1.20:8000", "localhost.evil.example"]
)
def test_other_hosts_are_refused_so_dns_rebinding_fails(client: TestClient, host: str) -> None:
    refused(client.get("/api/model/list", headers={"Host": host}), 403, "forbidden")


def test_a_refused_host_changes_nothing(client: TestClient, ollama: OllamaDouble) -> None:
    ollama.install(SMALL_TAG)
    response = client.request(
        "DELETE", "/api/model/delete", json={"model": SMALL}, headers={"Host": "evil.example"}
    )
    refused(response, 403, "forbidden")
    assert ollama.installed() == [SMALL_TAG]


def test_extra_allowed_hosts(manager: ModelManager) -> None:
    with TestClient(create_app(manager, allowed_hosts=["models.lan"]), base_url=BASE) as c:
        assert c.get("/api/model/list", headers={"Host": "models.lan:8000"}).status_code == 200
        refused(c.get("/api/model/list", headers={"Host": "other.lan"}), 403, "forbidden")


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "null", "http://127.0.0.1:9999", "https://127.0.0.1:8000"]
)
def test_foreign_origins_are_refused(client: TestClient, origin: str) -> None:
    refused(client.post("/api/model/sync", json={}, headers={"Origin": origin}), 403, "forbidden")


def test_the_servers_own_origin_and_allowed_origins_are_served(manager: ModelManager) -> None:
    with TestClient(create_app(manager, allowed_origins=["http://localhost:3000/"]), base_url=BASE) as c:
        assert c.post("/api/model/sync", json={}, headers={"Origin": BASE}).status_code == 200
        assert (
            c.post("/api/model/sync", json={}, headers={"Origin": "http://localhost:3000"}).status_code == 200
        )
        refused(
            c.post("/api/model/sync", json={}, headers={"Origin": "http://localhost:3001"}), 403, "forbidden"
        )


def test_cross_site_fetch_without_origin_is_refused(client: TestClient) -> None:
    refused(client.get("/api/model/list", headers={"Sec-Fetch-Site": "cross-site"}), 403, "forbidden")
    assert client.get("/api/model/list", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200


def test_no_cors_headers_are_sent(client: TestClient) -> None:
    response = client.options(
        "/api/model/switch", headers={"Origin": BASE, "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in response.headers


# --- bearer token ---------------------------------------------------------------------------------


def test_a_token_is_required_on_every_request_when_set(manager: ModelManager) -> None:
    with TestClient(create_app(manager, token="s3cret-token"), base_url=BASE) as c:
        for path in ("/api/model/list", "/api/health", "/metrics", "/openapi.json"):
            response = c.get(path)
            refused(response, 401, "unauthorized")
            assert response.headers["www-authenticate"] == "Bearer"
        refused(c.get("/api/model/list", headers={"Authorization": "Bearer wrong"}), 401, "unauthorized")
        refused(
            c.get("/api/model/list", headers={"Authorization": "Basic s3cret-token"}), 401, "unauthorized"
        )
        assert c.get("/api/model/list", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
        assert c.get("/openapi.json", headers={"Authorization": "bearer s3cret-token"}).json()["security"]


def test_the_token_comes_from_the_environment(
    ollama: OllamaDouble, isolated_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODEL_MANAGER_API_TOKEN", "from-env")
    with (
        ModelManager(host=ollama.url, data_dir=isolated_env) as mm,
        TestClient(create_app(mm), base_url=BASE) as c,
    ):
        refused(c.get("/api/model/list"), 401, "unauthorized")
        assert c.get("/api/model/list", headers={"Authorization": "Bearer from-env"}).status_code == 200


def test_without_a_token_the_schema_declares_no_security(client: TestClient) -> None:
    assert "security" not in client.get("/openapi.json").json()


# --- JSON-only writes and body size ---------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
def test_state_changing_requests_need_json(
    client: TestClient, ollama: OllamaDouble, content_type: str | None
) -> None:
    ollama.install(SMALL_TAG)
    headers = {"Content-Type": content_type} if content_type else {}
    body = b'{"model": "llama3.2:1b-instruct"}'
    refused(client.post("/api/model/switch", content=body, headers=headers), 415, "unsupported_media_type")
    refused(
        client.request("DELETE", "/api/model/delete", content=body, headers=headers),
        415,
        "unsupported_media_type",
    )
    assert ollama.loaded() == [] and ollama.installed() == [SMALL_TAG]


def test_json_with_a_charset_and_delete_by_query_are_accepted(
    client: TestClient, ollama: OllamaDouble
) -> None:
    ollama.install(SMALL_TAG)
    headers = {"Content-Type": "application/json; charset=utf-8"}
    assert client.post(
        "/api/model/switch", content=b'{"model": "llama3.2:1b-instruct"}', headers=headers
    ).json()["success"]
    assert client.post("/api/model/sync", headers={"Content-Type": "application/json"}).status_code == 200
    assert (
        client.delete("/api/model/delete?model=llama3.2:1b-instruct").json()["error"]
        == "cannot_delete_current"
    )


def test_bodies_over_the_limit_are_413(manager: ModelManager) -> None:
    with TestClient(create_app(manager, max_body_bytes=1024), base_url=BASE) as c:
        big = {"model": "x" * 2000}
        refused(c.post("/api/model/switch", json=big), 413, "payload_too_large")
        refused(c.post("/api/model/import", json={"models": {"m": "y" * 2000}}), 413, "payload_too_large")
        assert (
            c.post(
                "/api/model/check_compatibility", json={"model": SMALL, "available_vram_gb": 8}
            ).status_code
            == 200
        )


def test_a_chunked_body_over_the_limit_is_413(manager: ModelManager) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"model": "'
        for _ in range(10):
            yield b"x" * 200
        yield b'"}'

    with TestClient(create_app(manager, max_body_bytes=1024), base_url=BASE) as c:
        response = c.post("/api/model/switch", content=chunks(), headers={"Content-Type": "application/json"})
        refused(response, 413, "payload_too_large")


# --- binding --------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "example.lan"])
def test_serving_beyond_loopback_needs_a_token(host: str) -> None:
    with pytest.raises(UnsafeBindError) as caught:
        check_bind(host, None)
    assert "MODEL_MANAGER_API_TOKEN" in caught.value.solution
    check_bind(host, "token")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_binds_need_no_token(host: str) -> None:
    check_bind(host, None)


def test_serve_refuses_before_binding(manager: ModelManager) -> None:
    with pytest.raises(UnsafeBindError):
        serve("0.0.0.0", 0, manager=manager)
