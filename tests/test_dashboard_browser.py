"""The dashboard in a real browser: the system's Chromium, headless, driven by Playwright, against the REST
app served over HTTP on loopback with the Ollama double behind it.

Every test's page is guarded: a request to any host but 127.0.0.1 is aborted and fails the test, and so
does a script error or a Content-Security-Policy refusal. Each state is photographed into a folder
named at the end of the run (``MODEL_MANAGER_SCREENSHOTS=DIR`` picks it; ``=docs`` refreshes the README's
``docs/dashboard.png``, with ``-k overview`` to write that one alone).

Without Chromium or the playwright package the tests are skipped, or fail when
``MODEL_MANAGER_REQUIRE_SERVICES=1`` (CI sets it).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import httpx
import pytest

from browser import REQUIRE_ENV, LoopbackGuard, find_chromium, launch_chromium, new_context, services_required
from served import GPU_NAME, World, dashboard_world

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Playwright

SCREENSHOTS_ENV = "MODEL_MANAGER_SCREENSHOTS"
SMALL, MEDIUM, VISION = "llama3.2:1b-instruct", "llama3.1:8b-instruct", "qwen2.5vl:7b"
INSTALLED = {
    SMALL: "llama3.2:1b-instruct-q8_0",
    MEDIUM: "llama3.1:8b-instruct-q4_K_M",
    VISION: "qwen2.5vl:7b",
}
PULLED = "qwen2.5:7b"
TIMEOUT_MS = 15_000


def missing(message: str) -> NoReturn:
    if services_required():
        pytest.fail(f"{message} ({REQUIRE_ENV}=1)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if find_chromium() is None:
        missing("Chromium not found: apt-get install chromium (or set MODEL_MANAGER_CHROMIUM)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright not installed: pip install playwright (no `playwright install` needed)")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    browser = launch_chromium(playwright)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture(scope="module")
def shots(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The folder screenshots go to, named once the module has run."""
    chosen = os.environ.get(SCREENSHOTS_ENV)
    folder = Path(chosen).resolve() if chosen else tmp_path_factory.mktemp("dashboard-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    yield folder
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line("")
            reporter.write_line(
                f"dashboard screenshots: {folder} ({len(list(folder.glob('*.png')))} PNG files)"
            )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """Three models installed, the 8B one current and loaded, some of its uses recorded."""
    with dashboard_world(tmp_path / "home", pull_chunks=8, pull_delay_s=0.12) as w:
        for tag in INSTALLED.values():
            w.ollama.install(tag)
        w.manager.sync()
        w.manager.switch(MEDIUM)
        w.manager.gpu.refresh()  # read the GPU again now that the model is loaded, not a second later
        for i in range(40):
            w.manager.record_usage(MEDIUM, 0.8 + (i % 9) * 0.35, i % 8 != 0)
        yield w


class Watched:
    """A page and what it did: every URL (guarded to loopback), script errors and console errors."""

    def __init__(self, context: BrowserContext) -> None:
        self.context = context
        self.guard = LoopbackGuard(context)
        self.errors: list[str] = []
        self.expected_errors: list[str] = []
        """Parts of console errors a test expects (the token prompt's 401, a refusal it provoked)."""
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.page = context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("request", lambda r: self.requests.append((r.url, r.headers)))

    def check(self) -> None:
        self.guard.assert_only_loopback()
        unexpected = [e for e in self.errors if not any(part in e for part in self.expected_errors)]
        assert unexpected == [], unexpected


@pytest.fixture
def watched(chromium: Browser) -> Iterator[Watched]:
    context = new_context(chromium)
    seen = Watched(context)
    try:
        yield seen
        seen.check()
    finally:
        context.close()


def open_dashboard(watched: Watched, world: World) -> Page:
    page = watched.page
    page.goto(world.url + "/")
    page.wait_for_selector(f'#models-table tr[data-model="{SMALL}"]')
    page.wait_for_selector(".recs tbody tr")
    return page


def api(world: World, path: str) -> Any:
    return httpx.get(world.url + path, timeout=10).json()


def select(page: Page, name: str) -> None:
    page.click(f'#models-table tr[data-model="{name}"] button.link')
    page.wait_for_selector(f'#details-title:text-is("{name}")')


def installed_cell(page: Page, name: str) -> str:
    return page.inner_text(f'#models-table tr[data-model="{name}"] td:nth-child(4)').strip()


# --- the overview -----------------------------------------------------------------------------------


def test_overview_shows_installed_models_the_gpu_bar_and_recommendations(
    watched: Watched, world: World, shots: Path
) -> None:
    page = open_dashboard(watched, world)
    listed = api(world, "/api/model/list")["models"]
    assert page.locator("#models-table tbody tr").count() == len(listed)
    for m in listed:
        assert installed_cell(page, m["name"]) == ("yes" if m["name"] in INSTALLED else "no"), m["name"]
    current = page.locator(f'#models-table tr[data-model="{MEDIUM}"]')
    current.locator(".badge.loaded").wait_for()  # from /api/model/running, which may answer last
    assert current.locator(".badge.current").count() == 1 and current.locator(".badge.loaded").count() == 1

    [loaded] = api(world, "/api/model/running")["models"]
    device = page.locator(".device").first
    # The GPU is read at most once a second; the bar settles on the reading taken after the load.
    device.locator(".bar .seg-other").wait_for()
    assert GPU_NAME in device.locator("figcaption").inner_text()
    segment = device.locator(f'.seg[data-model="{MEDIUM}"]')
    assert f"{loaded['size_vram_bytes'] / 2**30:.2f} GiB" in (segment.get_attribute("title") or "")
    for kind in ("other", "reserve", "free"):
        assert device.locator(f".bar .seg-{kind}").count() == 1, kind
    width = device.locator(".bar").bounding_box()
    share = segment.bounding_box()
    assert (
        width
        and share
        and share["width"] / width["width"] == pytest.approx(loaded["size_vram_bytes"] / 2**30 / 24, abs=0.02)
    )
    assert page.inner_text(f'#loaded tr[data-model="{MEDIUM}"]').count("100% GPU") == 1

    for priority in ("speed", "balanced", "quality"):
        answer = httpx.post(
            world.url + "/api/model/recommend", json={"priority": priority}, timeout=10
        ).json()
        seeing = httpx.post(
            world.url + "/api/model/recommend",
            json={"priority": priority, "capability": "vision"},
            timeout=10,
        ).json()
        plain, vision = page.locator(f'.recs tr[data-priority="{priority}"] td').all_inner_texts()
        assert answer["model"] in plain and answer["reason"] in plain
        # The second column is the API's own vision answer: a model that sees, or why none fits.
        assert (seeing["model"] or "") in vision and seeing["reason"] in vision
    page.screenshot(path=str(shots / "dashboard.png"))


def test_a_model_split_between_cpu_and_gpu_shows_its_split(
    watched: Watched, world: World, shots: Path
) -> None:
    world.ollama.vram_bytes = 2 * 2**30  # the 8B model no longer fits: Ollama puts part of it on the CPU
    world.manager.switch(SMALL)
    world.manager.switch(MEDIUM)
    [loaded] = api(world, "/api/model/running")["models"]
    assert 0 < loaded["gpu_fraction"] < 1
    page = open_dashboard(watched, world)
    on_gpu = round(loaded["gpu_fraction"] * 100)
    row = page.locator(f'#loaded tr[data-model="{MEDIUM}"]')
    row.get_by_text(f"{on_gpu}% GPU / {100 - on_gpu}% CPU").wait_for()
    split = row.locator(".split-gpu").bounding_box()
    whole = row.locator(".split").bounding_box()
    assert (
        split and whole and split["width"] / whole["width"] == pytest.approx(loaded["gpu_fraction"], abs=0.03)
    )
    page.locator("#machine").screenshot(path=str(shots / "split.png"))


# --- actions ------------------------------------------------------------------------------------------


def job_item(page: Page, name: str) -> Any:
    return page.locator(f'#downloads li.job[data-model="{name}"]').first


def test_a_pull_shows_progress_to_completion(watched: Watched, world: World, shots: Path) -> None:
    page = open_dashboard(watched, world)
    select(page, PULLED)
    page.click('[data-action="pull"]')
    item = job_item(page, PULLED)
    item.wait_for()
    seen: list[float] = []
    shot = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = item.get_attribute("data-status")
        seen.append(float(item.locator("progress").get_attribute("value") or 0))
        if not shot and 0 < seen[-1] < 100:
            # The selected model's panel follows the same job.
            assert page.locator("#details-head progress").count() == 1
            page.evaluate("document.getElementById('downloads-panel').scrollIntoView()")
            page.screenshot(path=str(shots / "pull-progress.png"))
            shot = True
        if status not in ("queued", "running"):
            break
        time.sleep(0.05)
    assert item.get_attribute("data-status") == "succeeded", item.inner_text()
    between = [v for v in seen if 0 < v < 100]
    assert shot and len(set(between)) >= 2, f"the bar never moved through the pull: {seen}"
    assert seen[-1] == 100
    page.wait_for_function(
        f"""() => document.querySelector('#models-table tr[data-model="{PULLED}"] td:nth-child(4)')?.textContent === 'yes'"""
    )
    assert "qwen2.5:7b" in world.ollama.installed()
    page.screenshot(path=str(shots / "pull-done.png"))


def test_a_cancelled_pull_resumes(watched: Watched, world: World, shots: Path) -> None:
    world.ollama.pull_delay_s = 0.3
    page = open_dashboard(watched, world)
    select(page, PULLED)
    page.click('[data-action="pull"]')
    item = job_item(page, PULLED)
    page.wait_for_function(
        f"""() => Number(document.querySelector('#downloads li.job[data-model="{PULLED}"] progress')?.value) > 0"""
    )
    item.locator("button.cancel").click()
    page.wait_for_selector(f'#downloads li.job[data-model="{PULLED}"][data-status="cancelled"]')
    assert world.ollama.partial_bytes(PULLED) > 0  # Ollama keeps what was fetched
    page.screenshot(path=str(shots / "cancelled.png"))
    world.ollama.pull_delay_s = 0.02
    job_item(page, PULLED).locator("button.resume").click()
    page.wait_for_selector(
        f'#downloads li.job[data-model="{PULLED}"][data-status="succeeded"]', timeout=60_000
    )
    assert PULLED in world.ollama.installed()
    jobs = api(world, "/api/model/downloads")["jobs"]
    assert [j["status"] for j in jobs if j["model"] == PULLED] == ["succeeded", "cancelled"]


def test_a_switch_changes_the_loaded_model(watched: Watched, world: World, shots: Path) -> None:
    page = open_dashboard(watched, world)
    select(page, SMALL)
    page.click('[data-action="switch"]')
    page.wait_for_selector(f'.device .seg[data-model="{SMALL}"]')
    # A switch loads the new model before it unloads the old one, so a reading taken in between shows
    # both; once the switch has answered, the next reading shows the new one alone.
    page.wait_for_selector(f'.device .seg[data-model="{MEDIUM}"]', state="detached")
    assert page.locator(f'.device .seg[data-model="{SMALL}"]').count() == 1
    assert world.ollama.loaded() == [INSTALLED[SMALL]]
    assert api(world, "/api/model/current")["model"] == SMALL
    page.wait_for_selector(f'#models-table tr[data-model="{SMALL}"] .badge.current')
    page.screenshot(path=str(shots / "switched.png"))


def test_changes_made_elsewhere_show_without_a_reload(watched: Watched, world: World) -> None:
    page = open_dashboard(watched, world)
    world.manager.switch(VISION)  # another client (the CLI, an app) switches
    page.wait_for_selector(f'.device .seg[data-model="{VISION}"]', timeout=10_000)
    page.wait_for_selector(f'#models-table tr[data-model="{VISION}"] .badge.current', timeout=10_000)


def test_a_delete_asks_first(watched: Watched, world: World, shots: Path) -> None:
    page = open_dashboard(watched, world)
    select(page, VISION)
    page.click('[data-action="delete"]')
    dialog = page.locator("dialog#confirm")
    dialog.wait_for()
    assert VISION in dialog.inner_text() and page.evaluate("document.activeElement.id") == "confirm-cancel"
    page.screenshot(path=str(shots / "delete-confirm.png"))
    page.click("#confirm-cancel")
    dialog.wait_for(state="hidden")
    page.click('[data-action="delete"]')
    dialog.wait_for()
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    assert INSTALLED[VISION] in world.ollama.installed()
    assert not [u for u, _ in watched.requests if "/api/model/delete" in u], "deleted without asking"

    page.click('[data-action="delete"]')
    page.click("#confirm-ok")
    page.wait_for_function(
        f"""() => document.querySelector('#models-table tr[data-model="{VISION}"] td:nth-child(4)')?.textContent === 'no'"""
    )
    assert INSTALLED[VISION] not in world.ollama.installed()
    # The current model cannot be deleted: its button says why instead.
    select(page, MEDIUM)
    button = page.locator('[data-action="delete"]')
    assert button.is_disabled() and "switch" in (button.get_attribute("title") or "")


# --- usage and details -------------------------------------------------------------------------------


def test_usage_charts_and_the_memory_breakdown(watched: Watched, world: World, shots: Path) -> None:
    page = open_dashboard(watched, world)
    select(page, MEDIUM)
    for chart in ("uses", "success", "distribution"):
        page.wait_for_selector(f"#chart-{chart} canvas")
    history = api(world, f"/api/model/usage/{MEDIUM}/history")
    assert page.inner_text('[data-figure="count"]') == "40"
    assert page.inner_text('[data-figure="p50"]') == f"{history['p50_s']:.2f} s"
    assert page.inner_text('[data-figure="p95"]') == f"{history['p95_s']:.2f} s"
    assert page.inner_text('[data-figure="success"]') == f"{100 * history['success_rate']:.1f}%"
    model = api(world, f"/api/model/info/{MEDIUM}")["model"]
    speed = page.inner_text('[data-figure="tokens_per_second"]')
    assert speed == f"{model['tokens_per_second']:.1f}" and model["speed_source"] == "estimated"
    assert "Tokens/s (estimated)" in page.inner_text("#details-usage")
    info = model["memory_estimate"]
    memory = page.inner_text("#details-memory")
    assert f"{info['total_bytes'] / 2**30:.2f} GiB" in memory and "KV cache" in memory
    page.wait_for_selector("#chart-plan canvas")  # the server plans memory per context
    assert page.locator('[data-action="bench"]').count() == 1  # an installed model, and the server benchmarks
    page.locator("#details").screenshot(path=str(shots / "usage.png"))
    page.screenshot(path=str(shots / "dashboard-full.png"), full_page=True)


def test_no_request_leaves_loopback(watched: Watched, world: World) -> None:
    page = open_dashboard(watched, world)
    select(page, MEDIUM)
    page.wait_for_selector("#chart-uses canvas")
    urls = [u for u, _ in watched.requests]
    assert any("/api/gpu" in u for u in urls) and any("uPlot.iife.min.js" in u for u in urls)
    assert all(u.startswith(world.url) or u.startswith("data:") for u in urls), urls
    assert watched.guard.foreign == []
    # Neither check is vacuous. The page's own policy refuses a script's request to another host in the
    # browser, before any network access...
    refused = page.evaluate("fetch('http://example.com/from-the-page').then(() => 'sent', e => e.name)")
    assert refused == "TypeError" and watched.guard.foreign == []
    assert any("example.com/from-the-page" in e and "Content Security Policy" in e for e in watched.errors)
    watched.expected_errors.append("example.com/from-the-page")
    # ...and the guard catches what no policy covers, such as a page opened on another host.
    other = watched.context.new_page()
    with pytest.raises(Exception, match="ERR_BLOCKED_BY_CLIENT"):
        other.goto("http://example.com/elsewhere")
    assert watched.guard.foreign == ["http://example.com/elsewhere"]
    # Forgotten again, so that the fixture's own check passes.
    watched.guard.requested.clear()
    watched.guard.blocked.clear()


# --- docs, token, phone, keyboard ------------------------------------------------------------------


def test_docs_render_offline(watched: Watched, world: World, shots: Path) -> None:
    page = watched.page
    operations = sum(len(v) for v in world.app.openapi()["paths"].values())
    page.goto(world.url + "/docs")
    page.wait_for_function(f"() => document.querySelectorAll('.opblock').length >= {operations}")
    page.screenshot(path=str(shots / "docs.png"))
    page.goto(world.url + "/redoc")
    page.get_by_text("/api/model/usage/{name}/history").first.wait_for()
    assert page.locator("[data-section-id^='tag/']").count() >= 4
    page.screenshot(path=str(shots / "redoc.png"))
    # ReDoc's footer logo is its one hard-coded foreign URL: the page's policy stops it in the browser.
    logo = "cdn.redoc.ly/redoc/logo-mini.svg"
    assert all(logo in e for e in watched.errors), watched.errors
    watched.expected_errors.append(logo)


def test_a_token_is_asked_for_kept_in_the_tab_and_sent_as_a_header(
    chromium: Browser, tmp_path: Path, shots: Path
) -> None:
    token = "t0ken-for-the-dashboard"
    context = new_context(chromium)
    watched = Watched(context)
    watched.expected_errors.append("401 (Unauthorized)")  # the answer that makes the page ask
    try:
        with dashboard_world(tmp_path / "home", token=token) as world:
            world.ollama.install(INSTALLED[SMALL])
            world.manager.sync()
            page = watched.page
            page.goto(world.url + "/")
            page.wait_for_selector("dialog#token-dialog[open]")
            page.screenshot(path=str(shots / "token.png"))
            # Closed without a token, the prompt stays closed while the page polls; the Token button opens it.
            page.click("dialog#token-dialog button[value=cancel]")
            page.wait_for_timeout(2500)
            assert page.locator("dialog#token-dialog[open]").count() == 0
            page.click("#token-button")
            page.fill("dialog#token-dialog input", token)
            page.click("dialog#token-dialog button[value=ok]")
            page.wait_for_selector(f'#models-table tr[data-model="{SMALL}"]')
            assert page.evaluate("sessionStorage.getItem('model-manager-token')") == token
            sent = [h.get("authorization") for u, h in watched.requests if "/api/" in u]
            assert sent[0] is None and f"Bearer {token}" in sent  # asked after the first 401
            assert all(token not in u for u, _ in watched.requests)
            # Once given, every call carries it: no more prompts.
            before = len(watched.requests)
            page.wait_for_timeout(2500)  # a poll of the GPU and the loaded models, at least
            later = [h.get("authorization") for u, h in watched.requests[before:] if "/api/" in u]
            assert later and all(a == f"Bearer {token}" for a in later)
            assert not page.locator("dialog#token-dialog[open]").count()
        watched.check()
    finally:
        context.close()


def test_phone_width_dark_and_the_keyboard(chromium: Browser, world: World, shots: Path) -> None:
    context = new_context(chromium, viewport={"width": 390, "height": 844}, color_scheme="dark")
    watched = Watched(context)
    try:
        page = open_dashboard(watched, world)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(13, 17, 23)"
        page.screenshot(path=str(shots / "phone-dark.png"), full_page=True)

        page.focus("#filters input[name=q]")
        page.keyboard.type("qwen")
        names = page.eval_on_selector_all("#models-table tbody tr", "rows => rows.map(r => r.dataset.model)")
        fields = ("name", "family", "description", "ollama_tag")
        matching = [
            m["name"]
            for m in api(world, "/api/model/list")["models"]
            if any("qwen" in (m[f] or "").lower() for f in fields)
        ]
        every = api(world, "/api/model/list")["count"]
        assert sorted(names) == sorted(matching) and 0 < len(names) < every
        page.keyboard.press("Control+A")
        page.keyboard.press("Backspace")

        page.focus('th[data-key="size"] button')
        page.keyboard.press("Enter")
        assert page.get_attribute('th[data-key="size"]', "aria-sort") == "ascending"
        page.keyboard.press("Enter")
        assert page.get_attribute('th[data-key="size"]', "aria-sort") == "descending"
        first = page.eval_on_selector("#models-table tbody tr", "r => r.dataset.model")
        biggest = max(api(world, "/api/model/list")["models"], key=lambda m: m["parameter_count"])
        assert first == biggest["name"]  # the most parameters

        page.focus(f'#models-table tr[data-model="{SMALL}"] button.link')
        page.keyboard.press("Enter")
        page.wait_for_selector(f'#details-title:text-is("{SMALL}")')
        assert page.evaluate("document.activeElement.id") == "details-title"
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.dataset.action") == "switch"
        page.keyboard.press("Enter")
        page.wait_for_selector(f'.device .seg[data-model="{SMALL}"]')
        watched.check()
    finally:
        context.close()


def test_the_served_page_is_the_packaged_one(world: World) -> None:
    """The browser tests drive the files the package ships (not a copy)."""
    from model_manager.api.assets import STATIC_DIR

    page = httpx.get(world.url + "/", timeout=10)
    assert page.content == (STATIC_DIR / "index.html").read_bytes()
    assert json.loads(httpx.get(world.url + "/api/dashboard", timeout=10).text)["features"]["usage_history"]


def test_plan_and_bench_come_from_the_server(watched: Watched, world: World, shots: Path) -> None:
    """The plan comes from the server's own ``POST /api/model/plan``; the bench button runs a real benchmark
    job (``POST /api/model/benchmark``) against the Ollama double, whose timing says what it must show."""
    page = open_dashboard(watched, world)
    select(page, MEDIUM)
    page.wait_for_selector("#chart-plan canvas")
    planned = httpx.post(world.url + "/api/model/plan", json={"model": MEDIUM}, timeout=30).json()
    expected = [r for r in planned["rows"] if r["kv_cache_type"] == "f16" and not r["problem"]]
    cells = page.eval_on_selector_all(
        "#details-plan table.plan tbody tr", "rows => rows.map(r => r.innerText)"
    )
    assert len(cells) == len(expected) > 3
    for text, row in zip(cells, expected, strict=True):
        assert f"{row['context_length']:,}" in text and f"{row['footprint_gb']:.2f} GiB" in text
    page.click('[data-action="bench"]')
    page.get_by_text(re.compile(rf"^{re.escape(MEDIUM)}: [0-9.]+ tokens/s$")).wait_for()
    measured = world.manager.statistics(MEDIUM).to_dict()["benchmark"]["tokens_per_second"]
    assert measured == pytest.approx(world.ollama.generation_rate(INSTALLED[MEDIUM]), abs=0.06)
    page.get_by_text(f"{MEDIUM}: {measured:.1f} tokens/s").wait_for()
    # The usage panel charts each benchmark's speed once the model's figure has changed.
    page.wait_for_selector("#chart-bench canvas", timeout=20_000)
    plotted = page.evaluate("() => document.getElementById('chart-bench')._plot.data[1]")
    assert plotted == [measured]
    page.locator("#details").screenshot(path=str(shots / "plan.png"))
