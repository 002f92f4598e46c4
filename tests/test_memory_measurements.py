"""The estimate against published measurements of real models (tests/memory_measurements.py has each row,
what it counts and its source): median |error| at most 3 %, worst at most 8 %. docs/memory.md prints the
table (``bench/bench_memory.py --measurements`` writes it)."""

from __future__ import annotations

import statistics

import pytest

from memory_measurements import MEASUREMENTS, MIB, Measurement
from model_manager.memory import MemoryEstimate, estimate_memory

MEDIAN_LIMIT = 0.03
WORST_LIMIT = 0.08


def estimate_of(row: Measurement) -> MemoryEstimate:
    return estimate_memory(row.model_info, weights_bytes=row.weights_bytes, **row.settings)


def estimated_mib(row: Measurement) -> float:
    """The estimate's parts that ``row`` counts, in MiB."""
    e = estimate_of(row)
    parts = {
        "total": e.total_bytes,
        "gpu_weights": e.gpu_weights_bytes,
        "weights": e.weights_bytes,
        "kv_cache": e.kv_cache_bytes,
        "graph": e.graph_bytes,
    }
    return sum(parts[name] for name in row.counts) / MIB


def error(row: Measurement) -> float:
    return estimated_mib(row) / row.measured_mib - 1


@pytest.mark.parametrize("row", MEASUREMENTS, ids=lambda r: r.id)
def test_each_published_measurement_is_within_the_worst_case_bound(row: Measurement) -> None:
    assert row.source.startswith("https://github.com/") and row.quote and row.what
    assert abs(error(row)) <= WORST_LIMIT, f"{row.id}: {estimated_mib(row):.2f} vs {row.measured_mib:.2f} MiB"


def test_the_median_error_over_the_published_measurements_is_at_most_three_percent() -> None:
    errors = [abs(error(row)) for row in MEASUREMENTS]
    assert statistics.median(errors) <= MEDIAN_LIMIT, errors
    assert max(errors) <= WORST_LIMIT, errors


def test_the_table_compares_footprints_not_just_single_buffers() -> None:
    # At least two rows hold the whole GPU footprint (what `ollama ps` shows as SIZE) to the bounds.
    assert sum(row.counts == ("total",) for row in MEASUREMENTS) >= 2
    assert len({row.source for row in MEASUREMENTS}) == len(MEASUREMENTS)
