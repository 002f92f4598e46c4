"""The export/import document: building it, and validating one completely before anything is applied.

Format (``version`` 1)::

    {"format": "model-manager-metadata", "version": 1, "exported_at": "<ISO 8601>",
     "current_model": "<name>" | null,
     "models": {"<name>": {"metadata": {<editable metadata fields>},
                           "statistics": {"usage_count": int, "success_count": int,
                                          "total_inference_time": float, "last_used": "<ISO>" | null}}}}

Only the user-editable metadata fields travel; installed state and usage figures are facts of a machine
and are recomputed there. Parsing rejects duplicate keys, unknown fields and wrong types, naming the
JSON path of the first problem.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .errors import InvalidDocumentError
from .names import name_key, parse_model_name
from .types import ModelPurpose, ModelStats

FORMAT = "model-manager-metadata"
VERSION = 1
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024

#: Metadata fields an export carries and an import may change (``_metadata`` below checks each one).
EDITABLE_FIELDS = ("description", "recommended_use", "purpose", "min_vram_gb", "size", "quantization_support")


@dataclass(frozen=True)
class ImportPlan:
    """A validated document, ready to apply."""

    stats: list[ModelStats]
    metadata: dict[str, dict[str, Any]]
    current_model: str | None
    exported_at: str


def build_document(
    *,
    exported_at: str,
    current_model: str | None,
    stats: Mapping[str, ModelStats],
    metadata: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """The export document for the given statistics and editable metadata (sorted for stable output)."""
    models: dict[str, Any] = {}
    for name in sorted(set(stats) | set(metadata), key=str.lower):
        s = stats.get(name) or ModelStats(name)
        models[name] = {
            "metadata": {
                k: metadata.get(name, {})[k] for k in EDITABLE_FIELDS if k in metadata.get(name, {})
            },
            "statistics": {
                "usage_count": s.usage_count,
                "success_count": s.success_count,
                "total_inference_time": s.total_time,
                "last_used": s.last_used,
            },
        }
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": exported_at,
        "current_model": current_model,
        "models": models,
    }


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise InvalidDocumentError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _reject_constant(token: str) -> float:
    raise InvalidDocumentError(f"{token} is not a valid JSON number")


def _too_large() -> InvalidDocumentError:
    return InvalidDocumentError(f"the document is larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB")


def loads_document(text: str | bytes) -> dict[str, Any]:
    """Parse JSON strictly (no duplicate keys, no NaN/Infinity, size-limited, nesting-limited)."""
    if len(text) > MAX_DOCUMENT_BYTES:
        raise _too_large()
    try:
        doc = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidDocumentError(f"not valid JSON: {exc}") from None
    except RecursionError:
        # The parser recurses per level; the format itself is five levels deep.
        raise InvalidDocumentError("not valid JSON: arrays or objects nested too deeply") from None
    if not isinstance(doc, dict):
        raise InvalidDocumentError("$: expected a JSON object")
    return doc


def _expect_keys(obj: Mapping[str, Any], path: str, required: set[str], optional: set[str]) -> None:
    missing = sorted(required - obj.keys())
    if missing:
        raise InvalidDocumentError(f"{path}: missing {', '.join(missing)}")
    unknown = sorted(obj.keys() - required - optional)
    if unknown:
        raise InvalidDocumentError(f"{path}: unknown field(s) {', '.join(unknown)}")


def _timestamp(value: Any, path: str, nullable: bool) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise InvalidDocumentError(f"{path}: expected an ISO 8601 timestamp string")
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise InvalidDocumentError(f"{path}: {value!r} is not an ISO 8601 timestamp") from None
    return value


def _count(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > 2**62:
        raise InvalidDocumentError(f"{path}: expected a whole number ≥ 0")
    return value


def _seconds(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise InvalidDocumentError(f"{path}: expected a finite number of seconds ≥ 0")
    return float(value)


def _metadata(raw: Any, path: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidDocumentError(f"{path}: expected an object")
    _expect_keys(raw, path, set(), set(EDITABLE_FIELDS))
    out: dict[str, Any] = {}
    for key, value in raw.items():
        where = f"{path}.{key}"
        if key in ("description", "recommended_use", "size"):
            if not isinstance(value, str) or len(value) > 10_000:
                raise InvalidDocumentError(f"{where}: expected a string (at most 10,000 characters)")
        elif key == "purpose":
            try:
                value = ModelPurpose.parse(value).value
            except ValueError as exc:
                raise InvalidDocumentError(f"{where}: {exc}") from None
        elif key == "min_vram_gb":
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1e6
            ):
                raise InvalidDocumentError(f"{where}: expected a number of GB from 0 to 1,000,000, or null")
        elif key == "quantization_support" and (
            not isinstance(value, list) or not all(isinstance(q, str) for q in value)
        ):
            raise InvalidDocumentError(f"{where}: expected a list of strings")
        out[key] = value
    return out


def _statistics(name: str, raw: Any, path: str) -> ModelStats:
    if not isinstance(raw, dict):
        raise InvalidDocumentError(f"{path}: expected an object")
    _expect_keys(
        raw,
        path,
        {"usage_count"},
        {"success_count", "total_inference_time", "last_used", "success_rate", "avg_inference_time"},
    )
    usage = _count(raw["usage_count"], f"{path}.usage_count")
    if "success_count" in raw:
        success = _count(raw["success_count"], f"{path}.success_count")
    else:
        rate = _seconds(raw.get("success_rate", 1.0 if usage else 0.0), f"{path}.success_rate")
        if rate > 1:
            raise InvalidDocumentError(f"{path}.success_rate: expected a number from 0.0 to 1.0")
        success = round(rate * usage)
    if success > usage:
        raise InvalidDocumentError(f"{path}.success_count: larger than usage_count")
    if "total_inference_time" in raw:
        total = _seconds(raw["total_inference_time"], f"{path}.total_inference_time")
    else:
        total = _seconds(raw.get("avg_inference_time", 0.0), f"{path}.avg_inference_time") * usage
    last_used = _timestamp(raw.get("last_used"), f"{path}.last_used", nullable=True)
    return ModelStats(name, usage, success, total, last_used)


def parse_document(doc: Mapping[str, Any]) -> ImportPlan:
    """Validate a whole document. Raises InvalidDocumentError naming the first problem's JSON path."""
    _expect_keys(doc, "$", {"format", "version", "models"}, {"exported_at", "current_model"})
    if doc["format"] != FORMAT:
        raise InvalidDocumentError(f"$.format: expected {FORMAT!r}, got {doc['format']!r}")
    if isinstance(doc["version"], bool) or doc["version"] != VERSION:
        raise InvalidDocumentError(f"$.version: this version reads version {VERSION}, got {doc['version']!r}")
    exported_at = (
        _timestamp(doc.get("exported_at", ""), "$.exported_at", nullable=False)
        if doc.get("exported_at") is not None
        else ""
    )
    current = doc.get("current_model")
    if current is not None:
        _name(current, "$.current_model")
    models = doc["models"]
    if not isinstance(models, dict):
        raise InvalidDocumentError("$.models: expected an object keyed by model name")
    stats, metadata, seen = [], {}, set()
    for name, entry in models.items():
        path = f"$.models[{name!r}]"
        _name(name, path)
        if name_key(name) in seen:
            raise InvalidDocumentError(f"{path}: the same model appears twice (as Ollama compares names)")
        seen.add(name_key(name))
        if not isinstance(entry, dict):
            raise InvalidDocumentError(f"{path}: expected an object")
        _expect_keys(entry, path, set(), {"metadata", "statistics"})
        if "metadata" in entry:
            metadata[name] = _metadata(entry["metadata"], f"{path}.metadata")
        if "statistics" in entry:
            stats.append(_statistics(name, entry["statistics"], f"{path}.statistics"))
    return ImportPlan(stats=stats, metadata=metadata, current_model=current, exported_at=exported_at or "")


def _name(value: Any, path: str) -> None:
    try:
        parse_model_name(value)
    except InvalidDocumentError:
        raise
    except Exception as exc:
        raise InvalidDocumentError(f"{path}: {exc}") from None


def read_document(path: Path) -> bytes:
    """The bytes of the file at ``path``, reading no more than the size limit allows.

    Raises InvalidDocumentError past the limit (a device such as /dev/zero never ends), OSError.
    """
    with path.open("rb") as fh:
        if os.fstat(fh.fileno()).st_size > MAX_DOCUMENT_BYTES:
            raise _too_large()
        raw = fh.read(MAX_DOCUMENT_BYTES + 1)
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise _too_large()
    return raw


def write_atomically(target: Path, text: str) -> None:
    """Write ``text`` to ``target`` so that readers see the old file or the new one, never half."""
    target.parent.mkdir(parents=True, exist_ok=True)
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
