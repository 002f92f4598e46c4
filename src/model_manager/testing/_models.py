"""What the double knows about one model: its facts, its blobs and the ``/api/show`` document.

A model is described once (``LibraryModel``) and everything Ollama derives from it follows: the
manifest's layers (a big GGUF blob, then small template/license/params blobs, the config blob last),
a stable 64-hex manifest digest, the ``details`` object, and the ``/api/show`` fields. When the
facts are incomplete (a catalog entry with empty ``model_info``) a plausible GGUF-style
``model_info`` is built from the parameter count, so memory maths and ``show`` still work.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..catalog import parameters_from_size
from ..types import CatalogEntry
from ._go import human_number
from ._names import display, fold_key, parse_name_bare

MODEL_MEDIA = "application/vnd.ollama.image.model"
TEMPLATE_MEDIA = "application/vnd.ollama.image.template"
LICENSE_MEDIA = "application/vnd.ollama.image.license"
PARAMS_MEDIA = "application/vnd.ollama.image.params"
PROJECTOR_MEDIA = "application/vnd.ollama.image.projector"
CONFIG_MEDIA = "application/vnd.docker.container.image.v1+json"
SINGLE_BLOB_BELOW = 16 * 1024
"""Models smaller than this get one blob only, so tiny test models keep their exact size."""

_BITS_PER_WEIGHT = {
    "F32": 32.0,
    "F16": 16.0,
    "BF16": 16.0,
    "Q8_0": 8.5,
    "Q6_K": 6.56,
    "Q5_K_M": 5.7,
    "Q5_K_S": 5.5,
    "Q5_0": 5.5,
    "Q4_K_M": 4.85,
    "Q4_K_S": 4.58,
    "Q4_0": 4.5,
    "Q3_K_M": 3.91,
    "Q2_K": 3.35,
}
_FILE_TYPE = {"F32": 0, "F16": 1, "Q4_0": 2, "Q8_0": 7, "Q5_0": 8, "Q2_K": 10, "Q3_K_M": 12}
_FILE_TYPE |= {"Q4_K_S": 14, "Q4_K_M": 15, "Q5_K_S": 16, "Q5_K_M": 17, "Q6_K": 18, "BF16": 32}
_QUANT_IN_TAG = re.compile(r"(?:^|[-_])((?:q\d_k_[sml])|(?:q\d_[01k])|(?:q\d_k)|f16|f32|bf16)$", re.I)
# (max parameters, block_count, embedding_length, head_count, head_count_kv)
_SHAPES = (
    (100e6, 2, 128, 2, 1),
    (0.5e9, 12, 768, 12, 12),
    (1.6e9, 16, 2048, 32, 8),
    (4.5e9, 28, 3072, 24, 8),
    (10e9, 32, 4096, 32, 8),
    (16e9, 40, 5120, 40, 8),
    (40e9, 64, 5120, 40, 8),
    (80e9, 80, 8192, 64, 8),
    (float("inf"), 126, 16384, 128, 8),
)


@dataclass(frozen=True)
class Layer:
    """One blob of a manifest."""

    media_type: str
    digest: str
    """``sha256:<64 hex>``."""
    size: int

    @property
    def short(self) -> str:
        """The 12 hex characters Ollama shows in ``pulling <short>``."""
        return self.digest.removeprefix("sha256:")[:12]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def quantization_from_tag(tag: str, default: str = "Q4_K_M") -> str:
    """ "1b-instruct-q8_0" → "Q8_0"; a tag without a quantization suffix gives ``default``."""
    match = _QUANT_IN_TAG.search(tag)
    return match.group(1).upper() if match else default


def family_from_name(name: str) -> str:
    """A family guess from the model part: "llama3.2" → "llama", "nomic-embed-text" → "nomic"."""
    model = parse_name_bare(name).model.lower()
    match = re.match(r"[a-z]+", model)
    return match.group() if match else "llama"


def synthesize_model_info(
    family: str, parameter_count: int, quantization: str, capabilities: Iterable[str]
) -> dict[str, Any]:
    """A GGUF-style ``model_info`` for a model of this size, shaped like common architectures."""
    _, blocks, embedding, heads, kv_heads = next(shape for shape in _SHAPES if parameter_count <= shape[0])
    embedding_model = "embedding" in set(capabilities)
    info: dict[str, Any] = {
        "general.architecture": family,
        "general.parameter_count": parameter_count,
        "general.file_type": _FILE_TYPE.get(quantization.upper(), 15),
        "general.quantization_version": 2,
        f"{family}.block_count": blocks,
        f"{family}.context_length": 2048 if embedding_model else 131072,
        f"{family}.embedding_length": embedding,
        f"{family}.feed_forward_length": embedding * 4,
        f"{family}.attention.head_count": heads,
        f"{family}.attention.head_count_kv": kv_heads,
        "tokenizer.ggml.model": "bert" if embedding_model else "gpt2",
        "tokenizer.ggml.tokens": ["<s>", "</s>", "<unk>", "a", "b", "c"],
        "tokenizer.ggml.token_type": [3, 3, 2, 1, 1, 1],
    }
    if embedding_model:
        info[f"{family}.pooling_type"] = 1
    else:
        info["tokenizer.ggml.merges"] = ["a b", "b c"]
    return info


def _template(capabilities: tuple[str, ...]) -> str:
    if "completion" not in capabilities:
        return "{{ .Prompt }}"
    parts = ["{{- if .System }}<|system|>{{ .System }}{{ end }}"]
    if "tools" in capabilities:
        parts.append("{{- if .Tools }}<|tools|>{{ range .Tools }}{{ . }}{{ end }}{{ end }}")
    if "insert" in capabilities:
        parts.append("{{- if .Suffix }}<|fim_suffix|>{{ .Suffix }}{{ end }}")
    if "thinking" in capabilities:
        parts.append("{{- if .Think }}<think>{{ end }}")
    parts.append("<|user|>{{ .Prompt }}<|assistant|>{{ .Response }}")
    return "".join(parts)


@dataclass(frozen=True)
class LibraryModel:
    """A pullable (or installed) model and everything ``/api/tags``, ``show`` and ``pull`` report."""

    name: str
    """Display form, e.g. ``llama3.2:1b``."""
    size: int
    """Bytes on disk: the sum of all blobs, as ``/api/tags`` reports it."""
    model_info: Mapping[str, Any] = field(default_factory=dict)
    capabilities: tuple[str, ...] = ("completion",)
    family: str = ""
    quantization: str = "Q4_K_M"
    parameter_size: str = ""
    license: str = ""
    origin: str = ""
    """What the GGUF blob's digest is derived from: the name it was first published under (a copy keeps it)."""
    projector_bytes: int = 0
    """A separate vision projector blob (part of ``size``); 0 when there is none."""

    @classmethod
    def build(
        cls,
        name: str,
        *,
        size: int,
        model_info: Mapping[str, Any] | None = None,
        capabilities: Iterable[str] = ("completion",),
        family: str = "",
        quantization: str = "",
        parameter_count: int = 0,
        projector_bytes: int = 0,
    ) -> LibraryModel:
        """Fill in what was left out: family, quantization, parameter count and ``model_info``.

        Raises ValueError for a bad name (``_names.NameError_``) or a size below 1.
        """
        if size < 1:
            raise ValueError(f"size must be at least 1 byte, got {size}")
        shown = display(name)
        caps = tuple(capabilities)
        info = dict(model_info or {})
        family = family or str(info.get("general.architecture") or "") or family_from_name(shown)
        quant = (quantization or quantization_from_tag(parse_name_bare(name).tag)).upper()
        count = int(info.get("general.parameter_count") or parameter_count)
        if not count:
            count = int(size * 8 / _BITS_PER_WEIGHT.get(quant, 4.85))
        if info:
            info.setdefault("general.architecture", family)
            info.setdefault("general.parameter_count", count)
        else:
            info = synthesize_model_info(family, count, quant, caps)
        return cls(
            name=shown,
            size=size,
            model_info=info,
            capabilities=caps,
            family=family,
            quantization=quant,
            parameter_size=human_number(count),
            license=f"{family} community license: synthetic text served by the Ollama double.",
            origin=shown.lower(),
            projector_bytes=projector_bytes if size > projector_bytes + SINGLE_BLOB_BELOW else 0,
        )

    @classmethod
    def from_catalog(cls, entry: CatalogEntry) -> LibraryModel:
        """The catalog entry's ``ollama_tag`` with its size, facts and capabilities. The catalog's file
        size leaves a separate projector out; Ollama's ``size`` counts every blob."""
        if entry.file_size_bytes:
            size = entry.file_size_bytes + entry.projector_bytes
        else:
            size = entry.download_size_mb * 1_000_000
        return cls.build(
            entry.ollama_tag,
            size=size,
            model_info=entry.model_info,
            capabilities=entry.capabilities,
            family=entry.family,
            quantization=entry.quantization,
            parameter_count=entry.parameter_count or int(parameters_from_size(entry.size)),
            projector_bytes=entry.projector_bytes,
        )

    def renamed(self, name: str) -> LibraryModel:
        """The same model under another name (``/api/copy``)."""
        return replace(self, name=display(name))

    @property
    def key(self) -> tuple[str, str, str, str]:
        """The name's parts case-folded: Ollama finds models with ``Name.EqualFold``."""
        return fold_key(self.name)

    @property
    def template(self) -> str:
        return _template(self.capabilities)

    @property
    def parameters(self) -> dict[str, list[str]]:
        if "completion" not in self.capabilities:
            return {}
        return {"stop": ["<|user|>", "<|assistant|>"]}

    def details(self, *, lengths: bool = False) -> dict[str, Any]:
        """``api.ModelDetails``. ``/api/tags`` adds ``context_length``/``embedding_length`` (v0.30+,
        server/model_list_cache.go ``buildModelListSummary``); ``/api/ps`` and ``/api/show`` leave them out."""
        out: dict[str, Any] = {
            "parent_model": "",
            "format": "gguf",
            "family": self.family,
            # append([]string(nil), …) of an empty list marshals as null.
            "families": [self.family] if self.family else None,
            "parameter_size": self.parameter_size,
            "quantization_level": self.quantization,
        }
        if lengths:
            out |= {"context_length": self.context_length, "embedding_length": self.embedding_length}
        return out

    def tags_capabilities(self) -> list[str]:
        """The order ``buildModelListSummary`` appends them in: the GGUF's own (completion or embedding,
        vision), then from the template (tools, insert, thinking), then vision for a projector."""
        order = ("completion", "embedding", "vision", "audio", "tools", "insert", "thinking")
        caps = [c for c in order if c in self.capabilities and not (c == "vision" and self.projector_bytes)]
        if self.projector_bytes and "vision" in self.capabilities:
            caps.append("vision")
        return caps + [c for c in self.capabilities if c not in caps]

    def _config_text(self) -> str:
        return json.dumps(
            {
                "model_format": "gguf",
                "model_family": self.family,
                "model_families": [self.family],
                "model_type": self.parameter_size,
                "file_type": self.quantization,
                "architecture": "amd64",
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": []},
            },
            separators=(",", ":"),
        )

    def layers(self) -> list[Layer]:
        """Manifest order: model blob, projector (if any), template, license, params, then the config blob.

        A copy shares the GGUF blob (same ``origin``); small blobs with the same content share a
        digest across models, as they do on a real disk.
        """
        weights = f"model:{self.origin}:{self.quantization}:{self.size}"
        if self.size < SINGLE_BLOB_BELOW:
            return [Layer(MODEL_MEDIA, "sha256:" + _sha(weights), self.size)]
        small = [(TEMPLATE_MEDIA, self.template), (LICENSE_MEDIA, self.license)]
        if self.parameters:
            small.append((PARAMS_MEDIA, json.dumps(self.parameters, separators=(",", ":"))))
        small.append((CONFIG_MEDIA, self._config_text()))
        tail = [Layer(media, "sha256:" + _sha(text), len(text.encode())) for media, text in small]
        if self.projector_bytes:
            projector = f"projector:{self.origin}:{self.projector_bytes}"
            tail.insert(0, Layer(PROJECTOR_MEDIA, "sha256:" + _sha(projector), self.projector_bytes))
        big = Layer(MODEL_MEDIA, "sha256:" + _sha(weights), self.size - sum(x.size for x in tail))
        return [big, *tail]

    @property
    def digest(self) -> str:
        """64 hex, no prefix: the sha256 of the manifest document, as ``/api/tags`` reports."""
        layers = [{"mediaType": x.media_type, "digest": x.digest, "size": x.size} for x in self.layers()]
        return _sha(json.dumps({"schemaVersion": 2, "layers": layers}, sort_keys=True))

    @property
    def architecture(self) -> str:
        return str(self.model_info.get("general.architecture") or self.family)

    def _arch_value(self, key: str, default: int) -> int:
        value = self.model_info.get(f"{self.architecture}.{key}")
        if isinstance(value, list):
            value = max(value) if value else None
        return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else default

    @property
    def context_length(self) -> int:
        """The trained context length (``<arch>.context_length``)."""
        return self._arch_value("context_length", 8192)

    @property
    def embedding_length(self) -> int:
        return self._arch_value("embedding_length", 384)

    @property
    def vocab_size(self) -> int:
        """The vocabulary: the facts' ``<arch>.vocab_size``, else the token list's length."""
        tokens = self.model_info.get("tokenizer.ggml.tokens")
        return self._arch_value(
            "vocab_size", len(tokens) if isinstance(tokens, list) and len(tokens) > 100 else 32000
        )

    def kv_cache_bytes(self, context: int) -> int:
        """f16 K and V for every layer: 2 · L · C · Hkv · head_dim · 2 bytes."""
        blocks = self._arch_value("block_count", 32)
        heads = max(1, self._arch_value("attention.head_count", 32))
        kv_heads = self._arch_value("attention.head_count_kv", 1)
        head_dim = self._arch_value("attention.key_length", self.embedding_length // heads)
        return 2 * blocks * context * kv_heads * head_dim * 2

    def show(self, *, verbose: bool, modified_at: str) -> dict[str, Any]:
        """The ``/api/show`` document (server/routes.go ``GetModelInfo``, api/types.go ``ShowResponse``).

        ``model_info`` is the GGUF's key-value map: arrays are ``null`` unless ``verbose`` (the decoder
        keeps no array values at ``maxArraySize`` 0), and the vocabulary is not a key of its own but the
        token-embedding tensor's second dimension. ``projector_info`` is the projector GGUF's map.
        """
        info = {
            k: (v if verbose or not isinstance(v, list) else None)
            for k, v in self.model_info.items()
            if k != f"{self.architecture}.vocab_size"
        }
        blob = self.layers()[0].digest.replace(":", "-")
        params = "\n".join(f"{k:<30} {json.dumps(v)}" for k, vs in self.parameters.items() for v in vs)
        modelfile_params = "".join(
            f"PARAMETER {k} {json.dumps(v)}\n" for k, vs in self.parameters.items() for v in vs
        )
        modelfile = (
            '# Modelfile generated by "ollama show"\n'
            "# To build a new Modelfile based on this, replace FROM with:\n"
            f"# FROM {self.name}\n\n"
            f"FROM /root/.ollama/models/blobs/{blob}\n"
            f'TEMPLATE """{self.template}"""\n'
            f"{modelfile_params}"
            f'LICENSE """{self.license}"""\n'
        )
        doc: dict[str, Any] = {
            "license": self.license,
            "modelfile": modelfile,
            "parameters": params,
            "template": self.template,
            "details": self.details(),
            "model_info": info,
            "projector_info": self._projector_info(verbose),
            "tensors": self._tensors(),
            "capabilities": list(self.capabilities),
            "modified_at": modified_at,
        }
        # Go's omitempty: empty strings and an empty projector map are left out; model_info never is.
        return {k: v for k, v in doc.items() if v != "" and not (k == "projector_info" and not v)}

    def _projector_info(self, verbose: bool) -> dict[str, Any]:
        """A CLIP projector's keys (a ViT-L/14 at 336 px, as llava's), or {} without a projector."""
        if not self.projector_bytes:
            return {}
        mean, std = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
        return {
            "general.architecture": "clip",
            "general.name": f"{self.family} vision projector",
            "general.file_type": 1,
            "general.parameter_count": self.projector_bytes // 2,
            "clip.has_text_encoder": False,
            "clip.has_vision_encoder": True,
            "clip.has_llava_projector": True,
            "clip.projector_type": "mlp",
            "clip.vision.block_count": 23,
            "clip.vision.embedding_length": 1024,
            "clip.vision.feed_forward_length": 4096,
            "clip.vision.attention.head_count": 16,
            "clip.vision.image_size": 336,
            "clip.vision.patch_size": 14,
            "clip.vision.projection_dim": 768,
            "clip.vision.image_mean": mean if verbose else None,
            "clip.vision.image_std": std if verbose else None,
        }

    def _tensors(self) -> list[dict[str, Any]]:
        embedding = self.embedding_length
        qtype = self.quantization.removesuffix("_M").removesuffix("_S")
        return [
            {"name": "token_embd.weight", "type": qtype, "shape": [embedding, self.vocab_size]},
            {"name": "blk.0.attn_q.weight", "type": qtype, "shape": [embedding, embedding]},
            {"name": "output_norm.weight", "type": "F32", "shape": [embedding]},
        ]
