"""Measured speeds and job kinds in the store, on both backends (a SQLite file, a real PostgreSQL server):
migration 4 on an older database, benchmarks and timed uses pooled per model and Ollama host, names
compared as Ollama compares them."""

from __future__ import annotations

from dataclasses import replace

import pytest

from model_manager.measured import BenchmarkRun
from model_manager.store import MIGRATIONS, Store

RUN = BenchmarkRun(
    model="MyModel:latest",
    host="local",
    ollama_tag="mymodel:latest",
    at="2026-01-01T00:00:00.000000+00:00",
    with_image=True,
    cold=True,
    load_s=1.5,
    prompt_tokens=40,
    prompt_s=0.25,
    eval_tokens=100,
    eval_s=2.0,
)


def test_benchmarks_and_timed_uses_pool_per_model_and_host(store_location: str) -> None:
    store = Store(store_location)
    store.save_benchmark(RUN)
    later = replace(
        RUN, model="mymodel:LATEST", at="2026-01-02T00:00:00.000000+00:00", cold=False, eval_s=3.0
    )
    store.save_benchmark(later)
    store.record_usage_timing("MYMODEL:latest", 4.0, True, host="local", eval_tokens=300, eval_s=5.0)
    store.save_benchmark(replace(RUN, host="gpu-box", eval_tokens=50, eval_s=0.5))
    [(name, here)] = store.measured_speeds("local").items()
    assert name == "MyModel:latest" and (here.eval_tokens, here.eval_s, here.samples) == (500, 10.0, 3)
    assert here.tokens_per_second == 50.0
    assert here.benchmark == replace(later, model="MyModel:latest")
    assert here.benchmark.first_token_s == pytest.approx(1.75) and here.benchmark.tokens_per_second == 33.3
    other = store.measured_speed("mymodel:latest", "gpu-box")
    assert other is not None and (other.tokens_per_second, other.samples) == (100.0, 1)
    assert store.measured_speed("mymodel:latest", "nowhere") is None
    # The timed use is a use like any other.
    stats = store.get_stats("mymodel:latest")
    assert stats is not None and (stats.usage_count, stats.total_time) == (1, 4.0)
    store.close()


def test_a_timed_use_without_a_benchmark_has_no_benchmark(store_location: str) -> None:
    store = Store(store_location)
    store.record_usage_timing("m:1b", 1.0, False, host="local", eval_tokens=30, eval_s=1.5)
    found = store.measured_speed("M:1B", "local")
    assert found is not None and found.benchmark is None and found.tokens_per_second == 20.0
    assert store.count_events("m:1b") == 1
    store.close()


def test_migration_4_keeps_download_jobs_and_sets_benchmark_jobs_apart(store_location: str) -> None:
    old = Store(store_location, migrations=MIGRATIONS[:3])
    old.save_job(
        {
            "id": "d1",
            "model": "m",
            "model_key": "m:latest",
            "status": "succeeded",
            "created_at": "1",
            "updated_at": "1",
        }
    )
    old.close()
    store = Store(store_location)
    assert store.schema_version() == len(MIGRATIONS) == 5
    [download] = store.list_jobs()
    assert (download["id"], download["kind"], download["result"]) == ("d1", "download", None)
    store.save_job(
        {
            "id": "b1",
            "model": "m",
            "model_key": "m:latest",
            "status": "succeeded",
            "created_at": "2",
            "updated_at": "2",
        }
        | {"kind": "benchmark", "result": '{"tokens_per_second": 9.5}'}
    )
    assert [j["id"] for j in store.list_jobs()] == ["d1"]
    assert [j["id"] for j in store.list_jobs(kind="benchmark")] == ["b1"]
    assert (store.latest_job("m:latest") or {})["id"] == "d1"
    assert (store.latest_job("m:latest", "benchmark") or {})["result"] == '{"tokens_per_second": 9.5}'
    assert store.integrity_check() == "ok"
    store.close()
