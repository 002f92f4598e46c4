"""Fleet-wide answers over 1, 4 and 16 hosts: every host is asked from a thread of its own, so an answer
takes as long as the slowest host, not the sum.

    PYTHONPATH=src python bench/bench_fleet.py [--latency-ms 50] [--rounds 9] [--hosts 1,4,16]

Each host is an Ollama double on a loopback port of its own that waits ``--latency-ms`` before every
answer (the network and a busy Ollama). Timed: the listing of every model on every host (``list --host
all``, ``GET /api/model/list?host=all``: each host's ``/api/tags`` and ``/api/ps``, installed state read
afresh each time), and asking every host whether it answers (``hosts list``: ``/api/version``). The same
listing asked one host after another is the baseline in the same run; figures are medians over the
rounds, and ratios are against one host.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from model_manager import ManagerCore
from model_manager.fleet import Fleet, _host_listing
from model_manager.testing import OllamaDouble

INSTALLED = ("llama3.2:1b-instruct-q8_0", "llama3.1:8b-instruct-q4_K_M")


def _median_ms(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def measure(hosts: int, latency_s: float, rounds: int, home: Path) -> tuple[float, float, float]:
    """(listing at once, listing one host after another, check at once) in ms, over ``hosts`` hosts."""
    with ExitStack() as stack:
        doubles = [stack.enter_context(OllamaDouble()) for _ in range(hosts)]
        for double in doubles:
            for tag in INSTALLED:
                double.install(tag)
        # Installed state is read from every host on every listing (no reuse between calls).
        core = stack.enter_context(ManagerCore(host=doubles[0].url, data_dir=home, installed_max_age_s=0.0))
        fleet = Fleet(core)
        stack.callback(fleet.close)
        for i, double in enumerate(doubles[1:], start=2):
            fleet.add_host(f"host-{i}", double.url, vram_gb=24)
        models, answers = fleet.listing("all")  # warm: facts read once, connections open
        assert all(a.ok for a in answers) and len(answers) == hosts, [a.error for a in answers if a.error]
        assert {h for m in models for h, v in m.on.items() if v["installed"]} == {
            a.host.name for a in answers
        }
        for double in doubles:
            double.faults.slow_s = latency_s
        managers = [fleet.context(h) for h in fleet.hosts()]
        at_once = _median_ms(lambda: fleet.listing("all"), rounds)
        one_by_one = _median_ms(lambda: [_host_listing(m, None, None) for m in managers], rounds)
        check = _median_ms(fleet.check, rounds)
        return at_once, one_by_one, check


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-ms", type=float, default=50.0, help="each host's delay before answering")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--hosts", default="1,4,16", help="fleet sizes, comma-separated")
    args = parser.parse_args()
    sizes = [int(n) for n in args.hosts.split(",")]
    print(f"{platform.machine()} {platform.processor() or ''} Python {platform.python_version()}".strip())
    print(f"each host answers after {args.latency_ms:g} ms; medians of {args.rounds} rounds")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            results[n] = measure(n, args.latency_ms / 1000, args.rounds, Path(tmp) / str(n))
    base = results[sizes[0]]
    for n in sizes:
        at_once, one_by_one, check = results[n]
        print(
            f"{n:>3} hosts: list --host all {at_once:6.1f} ms (×{at_once / base[0]:.2f} of one host's; "
            f"one host after another {one_by_one:6.1f} ms, ×{one_by_one / at_once:.1f}); "
            f"hosts list {check:6.1f} ms (×{check / base[2]:.2f})"
        )


if __name__ == "__main__":
    main()
