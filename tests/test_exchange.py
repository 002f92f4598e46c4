"""Export/import documents: strict validation, nothing applied on error, stable round trips."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model_manager import InvalidDocumentError, ModelManager
from model_manager.exchange import build_document, loads_document, parse_document
from model_manager.types import ModelStats


@pytest.fixture
def offline(down_url: str, tmp_path: Path) -> ModelManager:
    return ModelManager(host=down_url, data_dir=tmp_path / "a")


def _doc(**models: Any) -> dict[str, Any]:
    return {
        "format": "model-manager-metadata",
        "version": 1,
        "exported_at": "2026-01-01T00:00:00+00:00",
        "current_model": None,
        "models": models,
    }


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("not json", "not valid JSON"),
        ("[]", "$: expected a JSON object"),
        ('{"format": "x", "version": 1, "models": {}}', "$.format"),
        ('{"format": "model-manager-metadata", "version": 2, "models": {}}', "$.version"),
        ('{"format": "model-manager-metadata", "version": true, "models": {}}', "$.version"),
        ('{"format": "model-manager-metadata", "version": 1, "models": []}', "$.models"),
        ('{"format": "model-manager-metadata", "version": 1, "models": {}, "extra": 1}', "unknown field"),
        ('{"format": "model-manager-metadata", "format": "x", "version": 1, "models": {}}', "duplicate key"),
        ('{"format": "model-manager-metadata", "version": 1, "models": {"../x": {}}}', "$.models['../x']"),
        (
            '{"format": "model-manager-metadata", "version": 1, "models": {"a": {"statistics": {"usage_count": -1}}}}',
            "usage_count",
        ),
        (
            '{"format": "model-manager-metadata", "version": 1, "models": {"a": {"statistics": {"usage_count": 1, '
            '"success_count": 2}}}}',
            "success_count",
        ),
        (
            '{"format": "model-manager-metadata", "version": 1, "models": {"a": {"statistics": {"usage_count": 1, '
            '"total_inference_time": NaN}}}}',
            "NaN",
        ),
        (
            '{"format": "model-manager-metadata", "version": 1, "models": {"a": {"metadata": {"purpose": "fast"}}}}',
            "purpose",
        ),
        (
            '{"format": "model-manager-metadata", "version": 1, "models": {"a": {"metadata": {"min_vram_gb": "8"}}}}',
            "min_vram_gb",
        ),
        ('{"format": "model-manager-metadata", "version": 1, "models": {"a": {}, "A": {}}}', "appears twice"),
        (
            '{"format": "model-manager-metadata", "version": 1, "models": {"a": {"statistics": {"usage_count": 1, '
            '"last_used": "yesterday"}}}}',
            "last_used",
        ),
    ],
)
def test_bad_documents_are_rejected_and_change_nothing(
    offline: ModelManager, tmp_path: Path, text: str, where: str
) -> None:
    offline.record_usage("a", 1.0)
    before = offline.export_data()
    path = tmp_path / "bad.json"
    path.write_text(text)
    success, msg = offline.import_metadata(path)
    assert success is False
    assert msg.startswith("Invalid request: ") and where in msg, msg
    after = offline.export_data()
    assert {k: v for k, v in after.items() if k != "exported_at"} == {
        k: v for k, v in before.items() if k != "exported_at"
    }


def test_huge_document_is_refused() -> None:
    with pytest.raises(InvalidDocumentError, match="larger than"):
        loads_document(" " * (64 * 1024 * 1024 + 1))


def test_import_keeps_a_backup_of_what_it_replaces(offline: ModelManager, tmp_path: Path) -> None:
    offline.record_usage("llama3.1:8b-instruct", 2.0)
    path = tmp_path / "in.json"
    path.write_text(json.dumps(_doc(**{"llama3.1:8b-instruct": {"statistics": {"usage_count": 5}}})))
    success, msg = offline.import_metadata(path)
    assert success, msg
    backups = list((offline.settings.home / "backups").glob("before-import-*.json"))
    assert len(backups) == 1
    saved = json.loads(backups[0].read_text())
    assert saved["models"]["llama3.1:8b-instruct"]["statistics"]["usage_count"] == 1
    assert offline.get_model_statistics("llama3.1:8b-instruct")["usage_count"] == 5  # type: ignore[index]
    assert offline.store.count_events("llama3.1:8b-instruct") == 1


def test_import_accepts_the_quick_reference_statistics_fields(offline: ModelManager, tmp_path: Path) -> None:
    stats = {"usage_count": 4, "success_rate": 0.75, "avg_inference_time": 2.0, "last_used": None}
    path = tmp_path / "in.json"
    path.write_text(json.dumps(_doc(**{"custom:7b": {"statistics": stats}})))
    assert offline.import_metadata(path)[0]
    got = offline.get_model_statistics("custom:7b")
    assert got is not None and (got["usage_count"], got["success_rate"], got["avg_inference_time"]) == (
        4,
        0.75,
        2.0,
    )


def test_metadata_overrides_travel(offline: ModelManager, tmp_path: Path, down_url: str) -> None:
    path = tmp_path / "in.json"
    path.write_text(json.dumps(_doc(**{"llama3.2:1b-instruct": {"metadata": {"description": "our tagger"}}})))
    assert offline.import_metadata(path)[0]
    assert offline.get_model_info("llama3.2:1b-instruct")["description"] == "our tagger"  # type: ignore[index]
    offline.export_metadata(tmp_path / "out.json")
    with ModelManager(host=down_url, data_dir=tmp_path / "b") as other:
        assert other.import_metadata(tmp_path / "out.json")[0]
        assert other.get_model_info("llama3.2:1b-instruct")["description"] == "our tagger"  # type: ignore[index]


_names = st.sampled_from(
    ["llama3.2:1b-instruct", "llama3.1:8b-instruct", "custom:7b", "hf.co/org/repo:Q4_K_M"]
)
_stats = st.builds(
    lambda n, u, s, t: ModelStats(n, u, min(s, u), t, "2026-03-04T05:06:07.000008+00:00" if u else None),
    _names,
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.floats(0, 1e6, allow_nan=False),
)


@given(
    st.lists(_stats, max_size=4, unique_by=lambda s: s.name), st.dictionaries(_names, st.text(max_size=30))
)
def test_document_round_trip_is_stable(stats: list[ModelStats], descriptions: dict[str, str]) -> None:
    doc = build_document(
        exported_at="2026-01-01T00:00:00+00:00",
        current_model=None,
        stats={s.name: s for s in stats},
        metadata={n: {"description": d} for n, d in descriptions.items()},
    )
    plan = parse_document(loads_document(json.dumps(doc)))
    again = build_document(
        exported_at=plan.exported_at,
        current_model=plan.current_model,
        stats={s.name: s for s in plan.stats},
        metadata=plan.metadata,
    )
    assert again == doc


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(_names, st.floats(0, 100, allow_nan=False), st.booleans()), max_size=8))
def test_export_import_export_gives_the_same_document(
    down_url: str, events: list[tuple[str, float, bool]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp, ModelManager(host=down_url, data_dir=Path(tmp) / "a") as a:
        for name, seconds, ok in events:
            a.record_usage(name, seconds, success=ok)
        first = a.export_data()
        with ModelManager(host=down_url, data_dir=Path(tmp) / "b") as b:
            b.import_data(json.loads(json.dumps(first)))
            second = b.export_data()
    first.pop("exported_at")
    second.pop("exported_at")
    first.pop("current_model")
    second.pop("current_model")
    assert second == first


def test_two_names_of_one_model_in_a_document_are_refused(offline: ModelManager, tmp_path: Path) -> None:
    before = offline.export_data()
    doc = {
        "format": "model-manager-metadata",
        "version": 1,
        "models": {
            "llama3.2:1b-instruct": {"statistics": {"usage_count": 1}},
            "llama3.2:1b": {"statistics": {"usage_count": 5}},
        },
    }
    with pytest.raises(InvalidDocumentError, match="are the same model"):
        offline.import_data(doc)
    same_key = {"format": "model-manager-metadata", "version": 1, "models": {"mine": {}, "MINE:latest": {}}}
    with pytest.raises(InvalidDocumentError, match="appears twice"):
        offline.import_data(same_key)
    after = offline.export_data()
    assert {k: v for k, v in after.items() if k != "exported_at"} == {
        k: v for k, v in before.items() if k != "exported_at"
    }
