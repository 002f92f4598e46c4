"""Core benchmarks: record_usage throughput, and statistics reads over a large store.

    python bench/bench_core.py [--events 1000000] [--models 50]

Targets: record_usage ≥ 10,000 calls/s on one thread; get_model_statistics ≤ 5 ms and
get_all_statistics ≤ 50 ms over 1,000,000 usage events across 50 models. Ollama is not needed
(the manager answers from the store and the catalog when it is down); the store is a real SQLite
file in a temporary directory. ``bench_store.py`` measures the same on PostgreSQL beside SQLite.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from model_manager import ModelManager
from model_manager.store import utc_now


def _median_ms(fn, runs: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--calls", type=int, default=20_000, help="record_usage calls to time")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        # Port 9 (discard) refuses connections: the manager runs as it does with Ollama down.
        manager = ModelManager(host="http://127.0.0.1:9", data_dir=home)
        names = [f"bench-model-{i}:7b" for i in range(args.models)]

        start = time.perf_counter()
        for i in range(args.calls):
            manager.record_usage(names[i % len(names)], 1.25, success=i % 10 != 0)
        elapsed = time.perf_counter() - start
        print(f"record_usage: {args.calls / elapsed:,.0f} calls/s on one thread ({args.calls:,} calls)")

        # Fill the store to the target size in large transactions; the aggregate trigger counts each event.
        remaining = args.events - args.calls
        rng = random.Random(1)
        batch = 50_000
        while remaining > 0:
            n = min(batch, remaining)
            with manager.store.atomic() as tx:
                for _ in range(n):
                    tx.execute(
                        "INSERT INTO usage_events (model, at, seconds, success) VALUES (?, ?, ?, ?)",
                        (names[rng.randrange(len(names))], utc_now(), 1.0, 1),
                    )
            remaining -= n
        total = manager.store.count_events()
        assert sum(s.usage_count for s in manager.store.all_stats().values()) == total  # each counted once
        size_mb = os.path.getsize(home / "model_manager.db") / 1e6
        print(f"store: {total:,} events across {len(names)} models ({size_mb:.0f} MB)")

        one_med, one_max = _median_ms(lambda: manager.get_model_statistics(names[7]), 200)
        all_med, all_max = _median_ms(manager.get_all_statistics, 50)
        print(f"get_model_statistics: median {one_med:.2f} ms, max {one_max:.2f} ms")
        print(f"get_all_statistics:   median {all_med:.2f} ms, max {all_max:.2f} ms")
        manager.close()


if __name__ == "__main__":
    main()
