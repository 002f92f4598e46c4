"""The dashboard's server side over the REST app: the page and its files (from the package, gzipped,
revalidated, nothing outside ``static/``), the read-only GPU, loaded-model and usage-history endpoints,
which optional endpoints the page may use, offline /docs and /redoc, and the token rule for the page."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import statistics
import subprocess
import sys
import time
import tomllib
import urllib.request
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatch
from pathlib import Path
from typing import Annotated

import pytest
from fastapi import APIRouter, Body, FastAPI
from starlette.testclient import TestClient

from helpers import catalog_tag, refused, success
from model_manager import ManagerCore, ModelManager
from model_manager.api import create_app
from model_manager.api.assets import STATIC_DIR, Assets
from model_manager.api.dashboard import DASHBOARD_CSP, features
from model_manager.api.docs import DOCS_CSP
from model_manager.api.machine import bucket_width, histogram, percentile, summarize
from model_manager.api.server import bind_socket, dashboard_url
from model_manager.gpu import GPUManager
from model_manager.store import utc_now
from model_manager.testing import OllamaDouble
from processes import process_env, server_process
from served import GPU_NAME, GPU_TOTAL, OTHER_USE, DoubleNvml

BASE = "http://127.0.0.1:8000"
REPO = Path(__file__).resolve().parents[1]
MODEL = "llama3.2:1b-instruct"


@pytest.fixture
def gpu_manager(ollama: OllamaDouble, isolated_env: Path) -> ManagerCore:
    """A manager whose GPU detection sees one NVIDIA GPU (the stand-in that follows /api/ps)."""
    ollama.vram_bytes = GPU_TOTAL - OTHER_USE
    detector = GPUManager(env={}, nvml=DoubleNvml(ollama.url), ttl_s=0)
    return ManagerCore(host=ollama.url, data_dir=isolated_env, gpu=detector)


# --- the page and its files ----------------------------------------------------------------------


def _referenced_files() -> set[str]:
    """Every file under static/ that index.html or a module names (src, href, import ... from)."""
    found: set[str] = set()
    page = (STATIC_DIR / "index.html").read_text()
    found |= {m.removeprefix("/static/") for m in re.findall(r'(?:src|href)="(/static/[^"]+)"', page)}
    for module in (STATIC_DIR / "js").glob("*.js"):
        text = module.read_text()
        found |= {f"js/{m}" for m in re.findall(r"from '\./([\w.]+)'", text)}
        found |= {m.removeprefix("/static/") for m in re.findall(r"'(/static/[^']+)'", text)}
    return found


def test_the_page_is_served_with_a_policy_that_allows_only_its_own_origin(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"] == DASHBOARD_CSP
    assert "script-src 'self';" in DASHBOARD_CSP and "connect-src 'self'" in DASHBOARD_CSP
    assert "<script" in page.text and not re.search(r"<script>(?!</script>)", page.text), "no inline script"
    assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", page.text), "nothing from another host"


def test_every_file_the_page_names_is_served_from_the_package(client: TestClient) -> None:
    names = _referenced_files()
    assert {"js/app.js", "dashboard.css", "vendor/uplot/uPlot.iife.min.js", "js/charts.js"} <= names
    for name in sorted(names):
        answer = client.get(f"/static/{name}")
        assert answer.status_code == 200, name
        assert answer.content == (STATIC_DIR / name).read_bytes(), name
    for module in (STATIC_DIR / "js").glob("*.js"):
        text = module.read_text()
        assert "http://" not in text and "https://" not in text, f"{module.name} names another host"


def test_files_are_gzipped_once_and_revalidated_by_etag(client: TestClient) -> None:
    raw = (STATIC_DIR / "vendor/uplot/uPlot.iife.min.js").read_bytes()
    first = client.get("/static/vendor/uplot/uPlot.iife.min.js", headers={"Accept-Encoding": "gzip"})
    assert first.headers["content-encoding"] == "gzip" and first.headers["vary"] == "Accept-Encoding"
    assert int(first.headers["content-length"]) == len(gzip.compress(raw, 9, mtime=0)) < len(raw) / 2
    assert first.content == raw  # httpx decodes it
    plain = client.get("/static/vendor/uplot/uPlot.iife.min.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and int(plain.headers["content-length"]) == len(raw)
    refused_gzip = client.get("/static/dashboard.css", headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused_gzip.headers
    again = client.get(
        "/static/vendor/uplot/uPlot.iife.min.js", headers={"If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""
    assert first.headers["cache-control"] == "no-cache"


def test_a_changed_file_is_read_again(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text("one")
    assets = Assets(tmp_path)
    first = assets.get("a.js")
    (tmp_path / "a.js").write_text("two, longer")
    second = assets.get("a.js")
    assert first is not None and second is not None
    assert second.body == b"two, longer" and second.etag != first.etag


@pytest.mark.parametrize(
    "path",
    [
        "../assets.py",
        "js/../../assets.py",
        "/etc/passwd",
        ".hidden",
        "js/.x",
        "vendor",
        "vendor\\uplot",
        "",
        "nope.js",
    ],
)
def test_nothing_outside_the_static_files_is_served(path: str) -> None:
    assert Assets().path_of(path) is None


def test_a_missing_file_is_a_404_envelope(client: TestClient) -> None:
    refused(client.get("/static/js/missing.js"), 404, "not_found")
    refused(client.get("/static/..%2Fassets.py"), 404, "not_found")


def test_the_vendored_files_are_the_ones_the_manifest_lists() -> None:
    vendor = STATIC_DIR / "vendor"
    manifest = json.loads((vendor / "MANIFEST.json").read_text())
    listed = set()
    for name, package in manifest["packages"].items():
        assert package["license"] and package["integrity"].startswith("sha512-"), name
        for file_name, facts in package["files"].items():
            data = (vendor / package["dir"] / file_name).read_bytes()
            assert hashlib.sha256(data).hexdigest() == facts["sha256"], file_name
            listed.add(f"{package['dir']}/{file_name}")
        assert f"{package['dir']}/LICENSE" in listed, f"{name} ships without its licence"
    on_disk = {str(p.relative_to(vendor)) for p in vendor.rglob("*") if p.is_file()} - {"MANIFEST.json"}
    assert on_disk == listed
    assert manifest["packages"]["redoc"]["version"].startswith("2.")  # 3.x cannot load in FastAPI's page


def test_the_package_data_ships_every_static_file() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["package-data"]["model_manager"]
    package = STATIC_DIR.parents[1]
    files = [str(p.relative_to(package)) for p in STATIC_DIR.rglob("*") if p.is_file()]
    assert files
    unshipped = [f for f in files if not any(fnmatch(f, pattern) for pattern in patterns)]
    assert unshipped == []


# --- the token ------------------------------------------------------------------------------------


def test_with_a_token_only_the_page_and_its_files_are_served_without_it(manager: ModelManager) -> None:
    with TestClient(create_app(manager, token="s3cret"), base_url=BASE) as c:
        assert c.get("/").status_code == 200
        assert c.get("/static/js/app.js").status_code == 200
        refused(c.get("/api/dashboard"), 401, "unauthorized")
        refused(c.get("/api/gpu"), 401, "unauthorized")
        refused(c.get("/docs"), 401, "unauthorized")
        refused(c.post("/static/js/app.js", json={}), 401, "unauthorized")
        assert c.get("/api/dashboard", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        # The same-origin rules still hold for the page.
        refused(c.get("/", headers={"Host": "evil.example"}), 403, "forbidden")


# --- docs -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "script"), [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")]
)
def test_docs_pages_load_only_files_of_the_package(client: TestClient, path: str, script: str) -> None:
    page = client.get(path)
    assert page.status_code == 200 and page.headers["content-security-policy"] == DOCS_CSP
    urls = re.findall(r"""(?:src|href)=["']([^"']+)""", page.text) + re.findall(r"url: '([^']+)'", page.text)
    assert urls and all(u.startswith("/") and not u.startswith("//") for u in urls), urls
    assert f"/static/vendor/{'swagger-ui' if path == '/docs' else 'redoc'}/{script}" in urls
    assert "fonts.googleapis" not in page.text and "cdn." not in page.text
    for url in urls:
        assert client.get(url).status_code == 200, url
    assert client.get("/docs/oauth2-redirect").status_code == 200


# --- which optional endpoints exist -------------------------------------------------------------


def test_the_dashboard_endpoint_says_what_this_server_has(client: TestClient) -> None:
    body = success(client.get("/api/dashboard"))
    assert body["features"] == {
        "plan": True,
        "bench": True,
        "usage_history": True,
    }
    assert body["version"] == client.app.version  # type: ignore[attr-defined]


def test_features_are_what_the_router_routes() -> None:
    router = APIRouter()

    @router.post("/api/model/plan")
    def plan(body: Annotated[dict[str, str], Body()]) -> None: ...

    @router.get("/api/model/benchmark")  # the wrong method: not the endpoint the page calls
    def bench() -> None: ...

    app = FastAPI()
    app.include_router(router)
    assert features(app) == {"plan": True, "bench": False, "usage_history": False}
    assert not any(features(FastAPI()).values())


# --- GPU and loaded models ------------------------------------------------------------------------


def test_gpu_is_the_detection_report(gpu_manager: ManagerCore, ollama: OllamaDouble) -> None:
    ollama.install(catalog_tag(gpu_manager, MODEL))
    gpu_manager.sync()
    with TestClient(create_app(gpu_manager), base_url=BASE) as c:
        idle = success(c.get("/api/gpu"))
        [gpu] = [d for d in idle["devices"] if d["backend"] == "cuda"]
        assert idle["backend"] == "cuda" and gpu["name"] == GPU_NAME and gpu["index"] == 0
        assert gpu["total_bytes"] == GPU_TOTAL and gpu["free_bytes"] == GPU_TOTAL - OTHER_USE
        assert gpu["usable_bytes"] == gpu["free_bytes"] - gpu["reserve_bytes"] > 0
        success(c.post("/api/model/switch", json={"model": MODEL}))
        [loaded] = success(c.get("/api/model/running"))["models"]
        busy = success(c.get("/api/gpu"))
    assert loaded["name"] == MODEL and loaded["size_vram_bytes"] > 0
    assert busy["devices"][0]["backend"] == "cuda"
    assert busy["devices"][0]["free_bytes"] == GPU_TOTAL - OTHER_USE - loaded["size_vram_bytes"]
    assert busy["available_gb"] < idle["available_gb"]
    assert {
        k: v for k, v in busy.items() if k != "success"
    }.keys() == gpu_manager.gpu.report().to_dict().keys()


def test_running_names_the_models_and_their_split(
    client: TestClient, ollama: OllamaDouble, manager: ModelManager
) -> None:
    assert success(client.get("/api/model/running")) == {"success": True, "models": [], "count": 0}
    tag = catalog_tag(manager, MODEL)
    ollama.install(tag)
    ollama.vram_bytes = 1 << 30  # less than the model: part of it runs on the CPU
    ollama.load(tag)
    [model] = success(client.get("/api/model/running"))["models"]
    assert model["name"] == MODEL and model["ollama_tag"] == tag
    assert 0 < model["size_vram_bytes"] < model["size_bytes"]
    assert model["gpu_fraction"] == pytest.approx(model["size_vram_bytes"] / model["size_bytes"])


def test_running_with_ollama_down_is_a_503(client: TestClient, ollama: OllamaDouble) -> None:
    ollama.down = True
    refused(client.get("/api/model/running"), 503, "ollama_unavailable")


# --- usage history ----------------------------------------------------------------------------------


def test_percentile_interpolates_between_neighbours() -> None:
    values = sorted([0.2, 3.0, 1.0, 2.0, 10.0, 0.5, 4.5])
    for q in (0.5, 0.95, 0.25):
        assert percentile(values, q) == pytest.approx(
            statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]
        )
    assert percentile([7.0], 0.95) == 7.0
    with pytest.raises(ValueError):
        percentile([], 0.5)


def test_windows_widen_with_the_span() -> None:
    assert bucket_width(0) == 60
    assert bucket_width(59 * 60) == 60
    assert bucket_width(60 * 60) == 300
    assert bucket_width(30 * 86400) == 86400
    assert bucket_width(10 * 365 * 86400) == 30 * 86400


def test_histogram_counts_every_value_once() -> None:
    values = sorted([0.5 + 0.1 * i for i in range(37)])
    found = histogram(values)
    assert sum(found["counts"]) == 37 and len(found["edges_s"]) == len(found["counts"]) + 1
    assert found["edges_s"][0] == 0.5 and found["edges_s"][-1] == values[-1]
    assert histogram([2.0, 2.0]) == {"edges_s": [2.0, 2.2], "counts": [2]}
    assert histogram([]) == {"edges_s": [], "counts": []}


def test_summary_buckets_from_the_first_use_to_now() -> None:
    now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    at = lambda minutes: (now - timedelta(minutes=minutes)).isoformat()  # noqa: E731
    events = [(at(50), 1.0, True), (at(49.5), 3.0, False), (at(10), 2.0, True), (at(0), 4.0, True)]
    body = summarize(events, now)
    assert body["count"] == 4 and body["successes"] == 3 and body["success_rate"] == 0.75
    assert body["p50_s"] == 2.5 and body["mean_s"] == 2.5 and body["max_s"] == 4.0
    buckets = body["buckets"]
    assert buckets["width_s"] == 60 and len(buckets["start"]) == 51
    assert buckets["start"][0] == (now - timedelta(minutes=50)).timestamp()
    assert buckets["uses"][0] == 2 and buckets["failures"][0] == 1 and buckets["success_rate"][0] == 0.5
    assert buckets["p50_s"][0] == 2.0 and buckets["uses"][-1] == 1 and sum(buckets["uses"]) == 4
    assert buckets["success_rate"][1] is None and buckets["p50_s"][1] is None  # a window without uses
    empty = summarize([], now)
    assert empty["count"] == 0 and empty["p50_s"] is None and empty["buckets"]["start"] == []


def test_store_usage_events_are_oldest_first_and_since_filters(manager: ModelManager) -> None:
    store = manager.store
    store.record_usage(MODEL, 2.0, True, at="2025-01-02T00:00:00.000000+00:00")
    store.record_usage(MODEL, 1.0, False, at="2025-01-01T00:00:00.000000+00:00")
    store.record_usage("other:1b", 9.0, True, at="2025-01-03T00:00:00.000000+00:00")
    assert store.usage_events(MODEL.upper()) == [
        ("2025-01-01T00:00:00.000000+00:00", 1.0, False),
        ("2025-01-02T00:00:00.000000+00:00", 2.0, True),
    ]
    assert store.usage_events(MODEL, "2025-01-01T12:00:00.000000+00:00") == [
        ("2025-01-02T00:00:00.000000+00:00", 2.0, True)
    ]


def test_history_over_http(client: TestClient, manager: ModelManager) -> None:
    for i in range(30):
        manager.record_usage(MODEL, 0.5 + 0.1 * i, i % 5 != 0)
    body = success(client.get("/api/model/usage/LLAMA3.2:1B/history", params={"events": 3}))
    assert body["model"] == MODEL and body["count"] == 30 and body["successes"] == 24
    assert body["p50_s"] == pytest.approx(1.95) and body["p95_s"] == pytest.approx(3.255)
    assert [e["seconds"] for e in body["events"]] == pytest.approx([3.2, 3.3, 3.4])
    assert sum(body["buckets"]["uses"]) == 30 and sum(body["histogram"]["counts"]) == 30
    assert success(client.get(f"/api/model/usage/{MODEL}/history?events=0"))["events"] == []
    later = success(client.get(f"/api/model/usage/{MODEL}/history", params={"since": utc_now()}))
    assert later["count"] == 0 and later["since"] is not None


def test_since_takes_any_offset_and_is_compared_in_utc(client: TestClient, manager: ModelManager) -> None:
    manager.store.record_usage(MODEL, 1.0, True, at="2025-01-01T10:00:00.000000+00:00")
    manager.store.record_usage(MODEL, 2.0, True, at="2025-01-01T12:00:00.000000+00:00")
    body = success(
        client.get(f"/api/model/usage/{MODEL}/history", params={"since": "2025-01-01T12:30:00+01:00"})
    )
    assert body["since"] == "2025-01-01T11:30:00.000000+00:00" and body["count"] == 1
    naive = success(client.get(f"/api/model/usage/{MODEL}/history", params={"since": "2025-01-01T11:59:59"}))
    assert naive["count"] == 1


def test_history_refusals(client: TestClient) -> None:
    refused(client.get("/api/model/usage/no-such-model:1b/history"), 404, "model_not_found")
    refused(client.get(f"/api/model/usage/{MODEL}/history?since=yesterday"), 422, "invalid_request")
    refused(client.get(f"/api/model/usage/{MODEL}/history?events=-1"), 422, "invalid_request")
    refused(client.get("/api/model/usage/bad%20name!/history"), 422, "invalid_request")


# --- serve --open -------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", ["model_manager", "model_manager.api.server"])
def test_serve_open_opens_the_dashboard_url(
    module: str, ollama: OllamaDouble, isolated_env: Path, tmp_path: Path
) -> None:
    """``serve --open`` hands the dashboard's URL to the user's browser; ``BROWSER`` (which the webbrowser
    module honours) points at a script that writes down what it was given instead of showing it."""
    opened = tmp_path / "opened.txt"
    recorder = tmp_path / "record-browser"
    recorder.write_text(f'#!/bin/sh\nprintf "%s" "$1" > {opened}.part && mv {opened}.part {opened}\n')
    recorder.chmod(0o755)
    env = process_env(isolated_env, ollama.url, BROWSER=f"{recorder} %s")
    command = [
        sys.executable,
        "-m",
        module,
        "serve" if module == "model_manager" else "",
        "--port",
        "0",
        "--open",
    ]
    proc = subprocess.Popen(
        [c for c in command if c], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split()[-1]
        assert proc.stdout.readline().strip() == f"Dashboard: {url}/"
        deadline = time.monotonic() + 20
        while not opened.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the browser was never started"
            time.sleep(0.05)
        assert opened.read_text() == f"{url}/"
        with urllib.request.urlopen(opened.read_text(), timeout=10) as page:
            assert b"<title>model-manager</title>" in page.read()
    finally:
        proc.kill()
        proc.communicate(timeout=15)


def test_without_open_no_browser_is_started(ollama: OllamaDouble, isolated_env: Path, tmp_path: Path) -> None:
    opened = tmp_path / "opened.txt"
    recorder = tmp_path / "record-browser"
    recorder.write_text(f'#!/bin/sh\nprintf "%s" "$1" > {opened}\n')
    recorder.chmod(0o755)
    env = process_env(isolated_env, ollama.url, BROWSER=f"{recorder} %s")
    with (
        server_process(env, tmp_path / "log") as (_, url),
        urllib.request.urlopen(f"{url}/", timeout=10) as page,
    ):
        assert page.status == 200
    assert not opened.exists()


def test_the_dashboard_url_of_a_wildcard_bind_is_loopback() -> None:
    for host, expected in (("127.0.0.1", "http://127.0.0.1:{}/"), ("0.0.0.0", "http://127.0.0.1:{}/")):
        with bind_socket(host, 0) as sock:
            assert dashboard_url(sock) == expected.format(sock.getsockname()[1])
