"""The dashboard's page weight and first render in headless Chromium, against the Ollama double.

Serves the REST app under uvicorn on loopback (the test suite's ``served.dashboard_world``: an Ollama double
with three models installed, one loaded, a GPU stand-in) and loads ``/`` cold (a fresh browser context each
time: no cache) ``--runs`` times, measuring:

* bytes transferred (response bodies as sent, gzipped where they are, plus headers) until the page has
  drawn the GPU bar, the models table and the recommendations; and the same bodies uncompressed;
* first contentful paint (the browser's own paint timing) and "drawn": when the GPU bar, every model row
  and the recommendations are on screen, both from navigation start.

The baseline, measured in the same run, is a plain text file served by the same server: what the browser,
the server and the machine cost for any page at all. Targets: under 300 KB, first render under 500 ms.
Run::

    PYTHONPATH=src .venv/bin/python bench/bench_dashboard.py [--runs 7] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from browser import TransferMeter, launch_chromium, new_context, paint_timings  # noqa: E402
from served import dashboard_world  # noqa: E402

INSTALLED = ("llama3.2:1b-instruct-q8_0", "llama3.1:8b-instruct-q4_K_M", "qwen2.5vl:7b")
BASELINE = "/static/vendor/uplot/LICENSE"
WEIGHT_TARGET = 300_000
RENDER_TARGET_MS = 500.0

DRAWN_JS = """() => new Promise(resolve => {
  const drawn = () => document.querySelector('.device .bar .seg')
      && document.querySelectorAll('#models-table tbody tr').length > 0
      && document.querySelector('.recs tbody tr');
  const check = () => drawn() ? resolve(performance.now()) : requestAnimationFrame(check);
  check();
})"""


def load_once(browser: Any, url: str) -> dict[str, Any]:
    context = new_context(browser)
    meter = TransferMeter(context)
    page = context.new_page()
    page.goto(url)
    drawn_ms = float(page.evaluate(DRAWN_JS))
    paints = paint_timings(page)
    page.wait_for_load_state("networkidle")
    decoded = page.evaluate(
        """() => performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation'))
              .reduce((sum, e) => sum + e.decodedBodySize, 0)"""
    )
    context.close()
    return {
        "bytes": meter.total_bytes,
        "decoded_bytes": int(decoded),
        "requests": len(meter.responses),
        "fcp_ms": paints.get("first-contentful-paint"),
        "drawn_ms": drawn_ms,
        "by_type": _by_type(meter.responses),
    }


def baseline_once(browser: Any, url: str) -> float | None:
    context = new_context(browser)
    page = context.new_page()
    page.goto(url)
    fcp = paint_timings(page).get("first-contentful-paint")
    context.close()
    return fcp


def _by_type(responses: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in responses:
        out[r["type"]] = out.get(r["type"], 0) + int(r["body"]) + int(r["headers"])
    return out


def _cpu() -> str:
    """The processor's model name and how many there are (Linux), else the architecture."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.machine()
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return f"{len(names)} × {names[0]}" if names else platform.machine()


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON document")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as home, dashboard_world(Path(home)) as world:
        for tag in INSTALLED:
            world.ollama.install(tag)
        world.manager.sync()
        world.manager.switch("llama3.1:8b-instruct")
        for i in range(200):
            world.manager.record_usage("llama3.1:8b-instruct", 0.5 + (i % 13) * 0.2, i % 17 != 0)
        listed = len(world.manager.models())
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            load_once(
                browser, world.url + "/"
            )  # the server's first answers (gzip of each file) are not timed
            baseline_once(browser, world.url + BASELINE)
            runs = [load_once(browser, world.url + "/") for _ in range(args.runs)]
            baselines = [baseline_once(browser, world.url + BASELINE) for _ in range(args.runs)]
            browser.close()

    fcp = [r["fcp_ms"] for r in runs if r["fcp_ms"] is not None]
    drawn = [r["drawn_ms"] for r in runs]
    base = [b for b in baselines if b is not None]
    result = {
        "runs": args.runs,
        "models_listed": listed,
        "bytes_median": median([r["bytes"] for r in runs]),
        "decoded_bytes_median": median([r["decoded_bytes"] for r in runs]),
        "requests": runs[-1]["requests"],
        "bytes_by_type": runs[-1]["by_type"],
        "fcp_ms_median": median(fcp),
        "fcp_ms_max": max(fcp),
        "drawn_ms_median": median(drawn),
        "drawn_ms_max": max(drawn),
        "baseline_fcp_ms_median": median(base),
        "fcp_over_baseline": median(fcp) / median(base),
        "machine": f"{_cpu()}, {platform.system()} {platform.release()}, Python {platform.python_version()}",
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    kb = result["bytes_median"] / 1000
    print(f"dashboard, {args.runs} cold loads in headless Chromium ({result['models_listed']} models listed)")
    print(
        f"  transferred      {kb:8.1f} KB median ({result['decoded_bytes_median'] / 1000:.1f} KB uncompressed, "
        f"{result['requests']} requests)  target < {WEIGHT_TARGET / 1000:.0f} KB"
    )
    for kind, size in sorted(result["bytes_by_type"].items(), key=lambda kv: -kv[1]):
        print(f"    {kind:14} {size / 1000:8.1f} KB")
    print(
        f"  first paint      {result['fcp_ms_median']:8.0f} ms median (max {result['fcp_ms_max']:.0f})"
        f"  target < {RENDER_TARGET_MS:.0f} ms"
    )
    print(f"  drawn            {result['drawn_ms_median']:8.0f} ms median (max {result['drawn_ms_max']:.0f})")
    print(
        f"  baseline         {result['baseline_fcp_ms_median']:8.0f} ms median first paint of a text file "
        f"(dashboard ×{result['fcp_over_baseline']:.2f})"
    )
    print(f"  machine          {result['machine']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
