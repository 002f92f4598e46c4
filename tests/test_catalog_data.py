"""The built-in catalog's data: the quick reference's rows, valid Ollama names, self-consistent model facts."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from model_manager.catalog import Catalog, infer_purpose, load_catalog, parameters_from_size
from model_manager.errors import InvalidDocumentError
from model_manager.names import name_key, parse_model_name
from model_manager.quality import SOURCE_KINDS, benchmark_for, is_estimate
from model_manager.types import CatalogEntry, ModelPurpose

# The quick reference's "Model Catalog" table, written exactly as the quick reference writes it.
QUICK_REFERENCE_ROWS = [
    ("llama3.2:1b-instruct", "1B", "Speed", "1GB", "1.3GB"),
    ("llama3.2:3b-instruct", "3B", "Speed", "2GB", "2.0GB"),
    ("llama3.1:8b-instruct", "8B", "Balanced", "6GB", "4.7GB"),
    ("llama3.1:13b-instruct", "13B", "Quality", "8GB", "7.4GB"),
    ("mixtral:8x7b-instruct", "8x7B", "Quality", "24GB", "26GB"),
    ("llama3.1:70b-instruct", "70B", "Quality", "40GB", "40GB"),
]

# Every vision family at every size Ollama's library serves, which the catalog must cover.
REQUIRED_VISION_MODELS = [
    "moondream:1.8b",
    "granite3.2-vision:2b",
    *(f"qwen2.5vl:{size}" for size in ("3b", "7b", "32b", "72b")),
    *(f"gemma3:{size}" for size in ("4b", "12b", "27b")),
    "llama3.2-vision:11b",
    "llama3.2-vision:90b",
    "minicpm-v:8b",
    *(f"llava:{size}" for size in ("7b", "13b", "34b")),
    "mistral-small3.1:24b",
    "mistral-small3.2:24b",
]

# Vision models whose vision-tower keys are not in the catalog (docs/catalog.md says why).
VISION_KEYS_UNCONFIRMED = {"qwen3.5:4b"}

# Whole-file bits per weight of each quantization (llama.cpp's block sizes; Q4_K_M is a mixed recipe;
# MXFP4 is 32 four-bit values sharing one 8-bit scale).
BITS_PER_WEIGHT = {"Q4_0": 4.5, "Q4_K_M": 4.85, "Q8_0": 8.5, "F16": 16.0, "BF16": 16.0, "MXFP4": 4.25}


def _gb(text: str) -> float:
    assert text.endswith("GB"), text
    return float(text.removesuffix("GB"))


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def _entries() -> list[CatalogEntry]:
    return list(load_catalog())


def _ids(entries: list[CatalogEntry]) -> list[str]:
    return [e.name for e in entries]


@pytest.mark.parametrize(("name", "size", "purpose", "min_vram", "download"), QUICK_REFERENCE_ROWS)
def test_quick_reference_row_is_kept_exactly(
    catalog: Catalog, name: str, size: str, purpose: str, min_vram: str, download: str
) -> None:
    entry = catalog.get(name)
    assert entry is not None and entry.name == name
    assert entry.size == size
    assert entry.purpose is ModelPurpose.parse(purpose)
    assert entry.min_vram_gb == _gb(min_vram)
    assert entry.download_size_mb == round(_gb(download) * 1000)
    assert entry.source == "builtin"


def test_quick_reference_rows_come_first_in_quick_reference_order(catalog: Catalog) -> None:
    assert [e.name for e in catalog][: len(QUICK_REFERENCE_ROWS)] == [row[0] for row in QUICK_REFERENCE_ROWS]


def test_quick_reference_13b_name_maps_to_llama2_13b_chat(catalog: Catalog) -> None:
    entry = catalog.get("llama3.1:13b-instruct")
    assert entry is not None
    assert entry.ollama_tag == "llama2:13b-chat"
    assert "llama2:13b-chat" in entry.description
    assert catalog.get("llama2:13b") is entry


@pytest.mark.parametrize("entry", _entries(), ids=_ids(_entries()))
def test_every_name_tag_and_alias_is_a_valid_ollama_name(entry: CatalogEntry) -> None:
    for raw in entry.all_names():
        parsed = parse_model_name(raw)
        assert parsed.model and raw == raw.strip()
    assert parse_model_name(entry.ollama_tag).tag, "the Ollama tag names an explicit tag"


def test_names_are_unique_case_insensitively(catalog: Catalog) -> None:
    owner: dict[str, str] = {}
    for entry in catalog:
        for raw in entry.all_names():
            key = name_key(raw)
            assert owner.setdefault(key, entry.name) == entry.name, f"{raw} is claimed twice"
    assert len({name_key(e.name) for e in catalog}) == len(catalog)


def test_every_name_resolves_to_its_own_entry(catalog: Catalog) -> None:
    for entry in catalog:
        for raw in entry.all_names():
            assert catalog.get(raw.upper()) is entry


@pytest.mark.parametrize("entry", _entries(), ids=_ids(_entries()))
def test_model_info_keys_carry_the_architecture_prefix(entry: CatalogEntry) -> None:
    info = entry.model_info
    arch = info["general.architecture"]
    assert arch == entry.family
    for key in info:
        assert key.startswith(("general.", f"{arch}.")), key
    for suffix in ("block_count", "context_length", "embedding_length", "attention.head_count"):
        assert isinstance(info[f"{arch}.{suffix}"], int) and info[f"{arch}.{suffix}"] > 0


@pytest.mark.parametrize("entry", _entries(), ids=_ids(_entries()))
def test_kv_heads_divide_heads(entry: CatalogEntry) -> None:
    arch = entry.model_info["general.architecture"]
    heads = entry.model_info[f"{arch}.attention.head_count"]
    kv_heads = entry.model_info.get(f"{arch}.attention.head_count_kv", heads)
    # Ollama writes one figure per layer for models whose layers differ (gemma4's sliding and global layers).
    for kv in kv_heads if isinstance(kv_heads, list) else [kv_heads]:
        assert 0 < kv <= heads and heads % kv == 0


_SIZED = [e for e in _entries() if e.file_size_bytes and e.parameter_count]


def test_most_entries_record_file_size_and_parameters() -> None:
    assert len(_SIZED) >= len(_entries()) // 2


@pytest.mark.parametrize("entry", _SIZED, ids=_ids(_SIZED))
def test_parameter_count_matches_file_size(entry: CatalogEntry) -> None:
    bits = entry.file_size_bytes * 8 / entry.parameter_count
    # Generous: embeddings and output layers are kept at higher precision, and single-file
    # vision models carry an F16 vision tower in the same blob.
    assert 0.8 <= bits / BITS_PER_WEIGHT[entry.quantization] <= 1.5, f"{bits:.2f} bits per weight"


@pytest.mark.parametrize("entry", _entries(), ids=_ids(_entries()))
def test_quantization_is_one_the_library_publishes(entry: CatalogEntry) -> None:
    tag_form = "fp16" if entry.quantization == "F16" else entry.quantization.lower()
    assert tag_form in [q.lower() for q in entry.quantization_support]


@pytest.mark.parametrize("entry", _entries(), ids=_ids(_entries()))
def test_purpose_follows_the_size_rule(entry: CatalogEntry) -> None:
    expected = infer_purpose(parameters_from_size(entry.size), entry.capabilities)
    assert entry.purpose is expected


@pytest.mark.parametrize("name", REQUIRED_VISION_MODELS)
def test_vision_models_have_the_vision_capability(catalog: Catalog, name: str) -> None:
    entry = catalog.get(name)
    assert entry is not None
    assert "vision" in entry.capabilities and "completion" in entry.capabilities


def test_vision_capability_goes_with_vision_facts(catalog: Catalog) -> None:
    """A vision model carries a projector or vision-tower keys, and only vision models do."""
    for entry in catalog:
        arch = entry.model_info["general.architecture"]
        has_vision_facts = entry.projector_bytes > 0 or f"{arch}.vision.block_count" in entry.model_info
        if entry.name in VISION_KEYS_UNCONFIRMED:
            assert "vision" in entry.capabilities and not has_vision_facts, entry.name
        else:
            assert has_vision_facts == ("vision" in entry.capabilities), entry.name


def test_embedding_model_is_specialized_and_cannot_chat(catalog: Catalog) -> None:
    entry = catalog.get("nomic-embed-text")
    assert entry is not None
    assert entry.capabilities == ("embedding",)
    assert entry.purpose is ModelPurpose.SPECIALIZED


@pytest.mark.parametrize("name", ["gemma3:4b", "gemma3:12b"])
def test_gemma3_sliding_window_pattern_leaves_every_sixth_layer_global(catalog: Catalog, name: str) -> None:
    entry = catalog.get(name)
    assert entry is not None
    info = entry.model_info
    pattern = info["gemma3.attention.sliding_window_pattern"]
    assert len(pattern) == info["gemma3.block_count"]
    assert [i for i, sliding in enumerate(pattern) if not sliding] == list(range(5, len(pattern), 6))
    assert info["gemma3.attention.sliding_window"] == 1024


def test_mixtral_records_its_experts(catalog: Catalog) -> None:
    entry = catalog.get("mixtral:8x7b")
    assert entry is not None
    assert (entry.model_info["llama.expert_count"], entry.model_info["llama.expert_used_count"]) == (8, 2)


def test_user_catalog_merges_over_the_builtin_one(tmp_path: Path) -> None:
    user = tmp_path / "catalog.json"
    new = {
        "name": "my-tagger:latest",
        "ollama_tag": "my-tagger:latest",
        "size": "2B",
        "purpose": "speed",
        "min_vram_gb": None,
        "download_size_mb": 1500,
        "aliases": ["my-tagger:v2"],
    }
    override = {"name": "LLAMA3.1:8B-INSTRUCT", "min_vram_gb": 5.5}
    user.write_text(json.dumps({"format": "model-manager-catalog", "models": [override, new]}))
    builtin, merged = load_catalog(), load_catalog(user)
    assert len(merged) == len(builtin) + 1
    before, changed = builtin.get("llama3.1:8b"), merged.get("llama3.1:8b")
    assert before is not None and changed is not None
    assert changed.min_vram_gb == 5.5 and changed.source == "user"
    assert changed.file_size_bytes == before.file_size_bytes and changed.model_info == before.model_info
    added = merged.get("my-tagger:v2")
    assert added is not None and added.source == "user" and added.purpose is ModelPurpose.SPEED


def test_missing_user_catalog_leaves_the_builtin_one(tmp_path: Path) -> None:
    assert [e.name for e in load_catalog(tmp_path / "absent.json")] == [e.name for e in load_catalog()]


# --------------------------------------------------------------------------------------- quality

_MEASURED_FIGURE = re.compile(r"^(?:measured|published): [^;]*?(?:average|mean over tasks) (\d+\.\d+)")


def test_catalog_covers_the_field(catalog: Catalog) -> None:
    entries = list(catalog)
    assert len(entries) >= 60
    vision = [e for e in entries if "vision" in e.capabilities]
    assert {e.purpose for e in vision} >= {ModelPurpose.SPEED, ModelPurpose.BALANCED, ModelPurpose.QUALITY}
    assert len([e for e in entries if "embedding" in e.capabilities]) >= 5


@pytest.mark.parametrize("entry", _entries(), ids=_ids(_entries()))
def test_every_entry_has_a_score_on_its_benchmark_set_and_a_source(entry: CatalogEntry) -> None:
    assert entry.quality_score is not None and 0 <= entry.quality_score <= 100
    assert entry.quality_benchmark == benchmark_for(entry.capabilities)
    kind, _, text = entry.quality_source.partition(": ")
    assert kind in SOURCE_KINDS and len(text) > 20, entry.quality_source


@pytest.mark.parametrize("entry", _entries(), ids=_ids(_entries()))
def test_a_quoted_figure_is_the_score(entry: CatalogEntry) -> None:
    """Measured and published sources quote the average they come from; it is the score."""
    match = _MEASURED_FIGURE.match(entry.quality_source)
    if is_estimate(entry.quality_source):
        assert match is None
    else:
        assert match is not None, entry.quality_source
        assert float(match.group(1)) == entry.quality_score


def test_entries_beyond_the_quick_reference_leave_min_vram_to_the_estimator(catalog: Catalog) -> None:
    assert all(e.min_vram_gb is None for e in list(catalog)[len(QUICK_REFERENCE_ROWS) :])


def _user_catalog(tmp_path: Path, **fields: Any) -> Path:
    entry = {"name": "my-tagger:latest", "ollama_tag": "my-tagger:latest", "size": "2B", "purpose": "speed"}
    entry |= {"min_vram_gb": None, "download_size_mb": 1500, **fields}
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps({"format": "model-manager-catalog", "models": [entry]}))
    return path


def test_user_catalog_may_score_its_models(tmp_path: Path) -> None:
    path = _user_catalog(
        tmp_path, quality_score=61, quality_source="estimate: mine", quality_benchmark="OpenVLM avg"
    )
    entry = load_catalog(path).get("my-tagger")
    assert entry is not None and entry.quality_score == 61.0 and isinstance(entry.quality_score, float)


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"quality_score": 101, "quality_source": "x", "quality_benchmark": "y"}, "quality_score"),
        ({"quality_score": -1, "quality_source": "x", "quality_benchmark": "y"}, "quality_score"),
        ({"quality_score": "high", "quality_source": "x", "quality_benchmark": "y"}, "quality_score"),
        ({"quality_score": True, "quality_source": "x", "quality_benchmark": "y"}, "quality_score"),
        ({"quality_score": float("nan"), "quality_source": "x", "quality_benchmark": "y"}, "quality_score"),
        ({"quality_score": 50}, "needs a quality_source"),
        ({"quality_score": 50, "quality_source": " ", "quality_benchmark": "y"}, "needs a quality_source"),
        ({"quality_score": 50, "quality_source": "x", "quality_benchmark": 3}, "quality_benchmark"),
    ],
)
def test_bad_quality_fields_are_refused_with_the_entry_named(
    tmp_path: Path, fields: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(InvalidDocumentError, match="my-tagger") as caught:
        load_catalog(_user_catalog(tmp_path, **fields))
    assert complaint in caught.value.message


def test_the_double_serves_every_entry_as_the_catalog_describes_it() -> None:
    """The Ollama double takes its registry from the catalog: every tag installs and shows its facts."""
    from model_manager.ollama_client import OllamaClient
    from model_manager.testing import OllamaDouble

    entries = _entries()
    with OllamaDouble() as double:
        client = OllamaClient(double.url)
        try:
            for entry in entries:
                double.install(entry.ollama_tag)
                facts = client.show(entry.ollama_tag)
                assert set(facts.capabilities) == set(entry.capabilities), entry.name
                assert facts.model_info["general.architecture"] == entry.family, entry.name
            assert len(client.list_models()) == len(entries)
        finally:
            client.close()
