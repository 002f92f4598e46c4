"""The store on its two backends, side by side: record_usage throughput (one thread, and several
processes at once) and statistics reads over a large store, with usage spread over ``--hosts`` hosts of
a fleet (each event names its host; a model's totals are the sum of its hosts' aggregates).

    PYTHONPATH=src python bench/bench_store.py [--events 1000000] [--models 50] [--calls 10000]
                                               [--writers 4] [--hosts 3] [--database-url postgresql://...]

Without ``--database-url`` it starts two throwaway PostgreSQL servers on loopback with the tests' helper
(``tests/pg_server.py``; PostgreSQL's binaries must be installed): one with ``fsync = off``, which is as
durable as the SQLite default (a committed event survives the process being killed, not a power loss),
and one with PostgreSQL's defaults, where every commit waits for its WAL to reach the disk. SQLite runs
in a temporary directory. Each backend gets the same calls through ``ManagerCore.record_usage`` and the
quick reference's statistics methods (the totals, and with ``host="all"`` each host's share); ratios
are against SQLite in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from model_manager import ModelManager

ROOT = Path(__file__).resolve().parents[1]
WRITER = """
import sys, time
from model_manager import ManagerCore
manager = ManagerCore(host="http://127.0.0.1:9", data_dir=sys.argv[1], database_url=sys.argv[2] or None)
hosts = [None, *sys.argv[4:]]
print("ready", flush=True)
sys.stdin.readline()
for i in range(int(sys.argv[3])):
    manager.record_usage(f"bench-model-{i % 50}:7b", 1.25, success=True, host=hosts[i % len(hosts)])
"""


def _timed_ms(fn: Callable[[], object], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def _fill(manager: ModelManager, names: list[str], hosts: list[str], events: int) -> None:
    """Add ``events`` usage events, 500 rows a statement and 5,000 a transaction, each through the
    aggregate trigger as every recorded event is (short transactions: an aggregate updated thousands of
    times in one transaction keeps every version of its row until the commit)."""
    rows_per_insert, per_transaction, done = 500, 5_000, 0
    insert = "INSERT INTO usage_events (model, at, seconds, success, host) VALUES " + ", ".join(
        ["(?, ?, ?, ?, ?)"] * rows_per_insert
    )
    while done < events:
        with manager.store.atomic() as tx:
            for _ in range(per_transaction // rows_per_insert):
                if events - done < rows_per_insert:
                    break
                params = []
                for i in range(done, done + rows_per_insert):
                    params += [
                        names[i % len(names)],
                        f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}+00:00",
                        1.0,
                        1,
                        hosts[i % len(hosts)],
                    ]
                tx.execute(insert, params)
                done += rows_per_insert
        if 0 < events - done < rows_per_insert:
            for i in range(done, events):
                manager.store.record_usage(names[i % len(names)], 1.0, True, host=hosts[i % len(hosts)])
            done = events


def _parallel(home: Path, url: str | None, writers: int, calls: int, hosts: list[str]) -> float:
    """Events per second of ``writers`` processes recording ``calls`` events each at the same moment."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(home), url or "", str(calls), *hosts[1:]],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(writers)
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    start = time.perf_counter()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        assert proc.wait(600) == 0
    return writers * calls / (time.perf_counter() - start)


class Backend:
    """One backend's manager, in a home of its own, and what was measured on it."""

    def __init__(self, label: str, url: str | None, home: Path, models: int, hosts: int) -> None:
        self.label, self.url, self.home = label, url, home
        # Port 9 (discard) refuses connections: the manager runs as it does with Ollama down.
        self.manager = ModelManager(host="http://127.0.0.1:9", data_dir=home, database_url=url)
        self.names = [f"bench-model-{i}:7b" for i in range(models)]
        self.hosts = ["local", *(f"bench-host-{i}" for i in range(2, hosts + 1))]
        for host in self.hosts[1:]:
            self.manager.add_host(host, "http://127.0.0.1:9")
        self.one: list[float] = []
        self.many: list[float] = []
        self.stat: list[float] = []
        self.all: list[float] = []
        self.shares: list[float] = []
        for name in self.names[:5]:
            self.manager.record_usage(name, 1.0)  # warm: statements prepared, pages cached

    def record(self, calls: int) -> None:
        start = time.perf_counter()
        hosts = [None, *self.hosts[1:]]
        for i in range(calls):
            name, host = self.names[i % len(self.names)], hosts[i % len(hosts)]
            self.manager.record_usage(name, 1.25, success=i % 10 != 0, host=host)
        self.one.append(calls / (time.perf_counter() - start))

    def reads(self) -> None:
        self.stat += _timed_ms(lambda: self.manager.get_model_statistics(self.names[7]), 40)
        self.all += _timed_ms(self.manager.get_all_statistics, 10)
        self.shares += _timed_ms(lambda: self.manager.get_all_statistics(host="all"), 10)

    def line(self, base: Backend | None, writers: int) -> str:
        one, many = statistics.median(self.one), statistics.median(self.many)
        stat, every = statistics.median(self.stat), statistics.median(self.all)
        shares = statistics.median(self.shares)
        text = (
            f"{self.label:<28} record_usage {one:>7,.0f}/s (1 thread) {many:>7,.0f}/s ({writers} processes); "
            f"statistics: one model {stat:.2f} ms, all {every:.2f} ms, all with each host's share "
            f"{shares:.2f} ms (medians)"
        )
        if base is not None:
            text += (
                f"\n{'':<28} vs SQLite: record_usage ×{one / statistics.median(base.one):.2f}, "
                f"×{many / statistics.median(base.many):.2f}; statistics ×{stat / statistics.median(base.stat):.1f}, "
                f"×{every / statistics.median(base.all):.1f}, ×{shares / statistics.median(base.shares):.1f}"
            )
        return text


def _stats_table_kb(b: Backend) -> int | None:
    if not b.url:
        return None
    rows = b.manager.store._read("SELECT pg_relation_size('model_stats') AS size")
    return int(rows[0]["size"]) // 1024


def run(backends: list[Backend], args: argparse.Namespace, rounds: int = 5) -> None:
    """Each measurement in rounds, the backends taking turns, so that load on the machine falls on all of
    them alike; the figures are medians over the rounds."""
    for _ in range(rounds):
        for b in backends:
            b.record(args.calls // rounds)
    for _ in range(3):
        for b in backends:
            b.many.append(_parallel(b.home, b.url, args.writers, args.calls // 6, b.hosts))
    for b in backends:
        recorded = _stats_table_kb(b)
        start = time.perf_counter()
        _fill(b.manager, b.names, b.hosts, args.events - b.manager.store.count_events())
        stats = b.manager.store.all_stats()
        total = b.manager.store.count_events()
        assert sum(s.usage_count for s in stats.values()) == total  # every event counted once
        for host, models in b.manager.store.stats_by_host().items():  # and under its own host
            assert sum(s.usage_count for s in models.values()) == b.manager.store.count_events(host=host)
        print(f"{b.label}: {total:,} events, filled in {time.perf_counter() - start:.0f} s")
        if b.url:
            # The fill updates each aggregate row thousands of times per transaction, which leaves
            # model_stats tens of megabytes of mostly free pages, and every full read of it then scans
            # them all. Events recorded one call at a time keep it one page (PostgreSQL updates the row
            # in place, on its own page), so the reads are timed on the table as that leaves it.
            import psycopg

            print(
                f"  model_stats: {recorded} kB after the calls one at a time, {_stats_table_kb(b)} kB after the fill"
            )
            with psycopg.connect(b.url, autocommit=True) as conn:
                conn.execute("VACUUM FULL model_stats")
                conn.execute("VACUUM ANALYZE")
    for _ in range(rounds):
        for b in backends:
            b.reads()
    for b in backends:
        print(b.line(backends[0] if b is not backends[0] else None, args.writers))
        b.manager.close()


@contextlib.contextmanager
def _servers(args: argparse.Namespace) -> Iterator[list[tuple[str, str]]]:
    if args.database_url:
        yield [("PostgreSQL (given URL)", args.database_url)]
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from pg_server import PostgresServer

    # The durable one on disk, as SQLite's file is: fsync on a memory file system would cost nothing.
    with PostgresServer() as fast, PostgresServer(durable=True, base_dir=tempfile.gettempdir()) as durable:
        yield [("PostgreSQL, fsync off", fast.url), ("PostgreSQL, durable on disk", durable.url)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--calls", type=int, default=10_000, help="record_usage calls to time on one thread")
    parser.add_argument("--writers", type=int, default=4, help="processes recording at once")
    parser.add_argument("--hosts", type=int, default=3, help="hosts the usage is spread over")
    parser.add_argument(
        "--database-url", help="measure this PostgreSQL database instead of throwaway servers"
    )
    args = parser.parse_args()
    print(f"{platform.machine()} {platform.processor() or ''} Python {platform.python_version()}".strip())
    print(f"usage spread over {args.hosts} hosts")
    with tempfile.TemporaryDirectory() as tmp, _servers(args) as servers:
        labelled = [("SQLite (the default)", None), *servers]
        backends = [
            Backend(label, url, Path(tmp) / str(i), args.models, args.hosts)
            for i, (label, url) in enumerate(labelled)
        ]
        run(backends, args)


if __name__ == "__main__":
    main()
