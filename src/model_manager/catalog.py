"""The model catalog: the built-in data file, merged with the user's own file, and lookups by name.

Pure apart from reading the two JSON files. The built-in file (``data/catalog.json``) is the one place
that holds model facts; the user's file (``<home>/catalog.json``) has the same shape, and its entries
replace or extend the built-in ones field by field, so a user can add a model or correct a figure
without touching code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import InvalidDocumentError, InvalidModelNameError
from .names import name_key
from .types import CAPABILITIES, CatalogEntry, ModelPurpose

CATALOG_FORMAT = "model-manager-catalog"

_REQUIRED = ("name", "ollama_tag", "size", "purpose", "min_vram_gb", "download_size_mb")
_TUPLE_FIELDS = ("quantization_support", "capabilities", "aliases")
_KNOWN_FIELDS = {f.name for f in fields(CatalogEntry)} - {"source"}


def _entry_from_dict(raw: Mapping[str, Any], where: str, source: str) -> CatalogEntry:
    """Validate one JSON object and build an entry. Raises InvalidDocumentError naming ``where``."""
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise InvalidDocumentError(f"{where}: missing field(s) {', '.join(missing)}")
    unknown = sorted(set(raw) - _KNOWN_FIELDS)
    if unknown:
        raise InvalidDocumentError(f"{where}: unknown field(s) {', '.join(unknown)}")
    values: dict[str, Any] = dict(raw)
    try:
        values["purpose"] = ModelPurpose.parse(raw["purpose"])
    except ValueError as exc:
        raise InvalidDocumentError(f"{where}.purpose: {exc}") from None
    for key in _TUPLE_FIELDS:
        if key in values:
            seq = values[key]
            if not isinstance(seq, list) or not all(isinstance(x, str) for x in seq):
                raise InvalidDocumentError(f"{where}.{key}: expected a list of strings")
            values[key] = tuple(seq)
    bad_caps = set(values.get("capabilities", ())) - set(CAPABILITIES)
    if bad_caps:
        raise InvalidDocumentError(f"{where}.capabilities: unknown {sorted(bad_caps)}")
    vram = values["min_vram_gb"]
    if vram is not None and (isinstance(vram, bool) or not isinstance(vram, int | float) or vram < 0):
        raise InvalidDocumentError(f"{where}.min_vram_gb: expected a number ≥ 0 or null")
    for key in ("download_size_mb", "file_size_bytes", "projector_bytes"):
        v = values.get(key, 0)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise InvalidDocumentError(f"{where}.{key}: expected a whole number ≥ 0")
    strings = ("name", "ollama_tag", "size", "description", "recommended_use", "family", "quantization")
    for key in (*strings, "quality_source", "quality_benchmark"):
        if key in values and not isinstance(values[key], str):
            raise InvalidDocumentError(f"{where}.{key}: expected a string")
    _check_quality(values, where)
    if not isinstance(values.get("model_info", {}), dict):
        raise InvalidDocumentError(f"{where}.model_info: expected an object")
    values.setdefault("description", "")
    values.setdefault("recommended_use", "")
    try:
        for n in (values["name"], values["ollama_tag"], *values.get("aliases", ())):
            name_key(n)
    except InvalidModelNameError as exc:
        raise InvalidDocumentError(f"{where}: {exc.message}") from None
    return CatalogEntry(**values, source=source)


def _check_quality(values: dict[str, Any], where: str) -> None:
    """A score is a number from 0 to 100 that names its benchmark set and its source (else null)."""
    score = values.get("quality_score")
    if score is None:
        return
    if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 100:
        raise InvalidDocumentError(f"{where}.quality_score: expected a number from 0 to 100 or null")
    if not values.get("quality_source", "").strip() or not values.get("quality_benchmark", "").strip():
        raise InvalidDocumentError(f"{where}: a quality_score needs a quality_source and a quality_benchmark")
    values["quality_score"] = float(score)


def _read_entries(text: str, origin: str, source: str) -> list[dict[str, Any]]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidDocumentError(f"{origin}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("models"), list):
        raise InvalidDocumentError(f"{origin}: expected an object with a 'models' list")
    if doc.get("format", CATALOG_FORMAT) != CATALOG_FORMAT:
        raise InvalidDocumentError(f"{origin}: format must be {CATALOG_FORMAT!r}")
    out = []
    for i, item in enumerate(doc["models"]):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InvalidDocumentError(f"{origin}: models[{i}] must be an object with a 'name'")
        out.append(item)
    return out


@dataclass
class Catalog:
    """An ordered set of entries with case-insensitive lookup by any of their names."""

    entries: list[CatalogEntry] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._index: dict[str, CatalogEntry] = {}
        for entry in self.entries:
            for n in entry.all_names():
                self._index.setdefault(name_key(n), entry)

    def __iter__(self) -> Iterator[CatalogEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, name: str) -> CatalogEntry | None:
        """The entry called ``name`` (its catalog name, Ollama tag or an alias, any case), or None; an
        invalid name is in no catalog, so it is None too."""
        try:
            return self._index.get(name_key(name))
        except InvalidModelNameError:
            return None

    def by_key(self, key: str) -> CatalogEntry | None:
        """The entry whose name key (``names.name_key``) is ``key``, or None."""
        return self._index.get(key)


def _merge(base: list[dict[str, Any]], overlay: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Overlay entries replace fields of the base entry with the same name, or are appended."""
    merged = {item["name"].lower(): dict(item) for item in base}
    sources = {item["name"].lower(): "builtin" for item in base}
    for item in overlay:
        key = item["name"].lower()
        if key in merged:
            # The built-in spelling of the name stays: users call it that way already.
            merged[key].update({k: v for k, v in item.items() if k != "name"})
        else:
            merged[key] = dict(item)
        sources[key] = "user"
    for key, item in merged.items():
        item["__source"] = sources[key]
    return list(merged.values())


def builtin_catalog_text() -> str:
    return (Path(__file__).parent / "data" / "catalog.json").read_text(encoding="utf-8")


def load_catalog(user_path: Path | None = None) -> Catalog:
    """The built-in catalog merged with the user's file at ``user_path`` when it exists.

    Raises InvalidDocumentError when either file is malformed, naming the file and the entry.
    """
    base = _read_entries(builtin_catalog_text(), "built-in catalog", "builtin")
    overlay: list[dict[str, Any]] = []
    if user_path is not None and user_path.is_file():
        overlay = _read_entries(user_path.read_text(encoding="utf-8"), str(user_path), "user")
    entries = []
    for i, item in enumerate(_merge(base, overlay)):
        source = item.pop("__source")
        entries.append(_entry_from_dict(item, f"catalog models[{i}] ({item['name']})", source))
    return Catalog(entries)


_PARAM_SIZE = re.compile(r"^\s*(?:(\d+)x)?(\d+(?:\.\d+)?)\s*([KMBT])?", re.IGNORECASE)
_SCALE = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}


def parameters_from_size(text: str) -> float:
    """Parameter count from a human size: "8B", "7.6B", "137M", "8x7B" → 8e9, 7.6e9, 1.37e8, 5.6e10.

    Returns 0.0 when the text has no number.
    """
    match = _PARAM_SIZE.match(text or "")
    if not match:
        return 0.0
    experts, number, unit = match.groups()
    value = float(number) * _SCALE.get((unit or "B").upper(), 1e9)
    return value * int(experts) if experts else value


def infer_purpose(parameter_count: float, capabilities: Iterable[str]) -> ModelPurpose:
    """Purpose of a model the catalog lacks: ≤4B speed, ≤10B balanced, larger quality;
    embedding models and vision-only models are specialized."""
    caps = set(capabilities)
    if "embedding" in caps or (caps and "vision" in caps and "completion" not in caps):
        return ModelPurpose.SPECIALIZED
    if parameter_count <= 4.05e9:
        return ModelPurpose.SPEED
    if parameter_count <= 10.5e9:
        return ModelPurpose.BALANCED
    return ModelPurpose.QUALITY
