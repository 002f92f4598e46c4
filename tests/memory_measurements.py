"""Published measurements of real models' llama.cpp buffers, with their sources, for the estimate to be held to.

Each row is one load that someone published (an Ollama or llama.cpp issue, pull request or discussion), the
buffer sizes its log printed (MiB), and the settings and model facts of that load, each with where it comes
from. ``counts`` names the estimate's parts that the measured figure is compared with — only what the log
shows and what is comparable with the footprint (model, KV cache and compute buffers):

* ``total``: the GPU footprint (model + KV + compute buffers on the GPU) — what ``ollama ps`` reports as SIZE
  with every layer on the GPU;
* ``gpu_weights`` / ``weights``: the model buffers on the GPU / in all;
* ``kv_cache`` and ``graph`` (the GPU's compute buffer): single buffers, where the rest of the log is not
  published or not comparable (an older build's KV cache layout, a partial offload's compute buffer).

Left out, and why: loads of models the log does not name (their facts would be guesses), multi-GPU loads
with pipeline-parallel copies, and old builds' KV caches for encoders and windowed models, which current
llama.cpp does not allocate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MIB = 1 << 20


@dataclass(frozen=True)
class Measurement:
    id: str
    model: str
    runner: str
    source: str
    quote: str
    counts: tuple[str, ...]
    measured_mib: float
    what: str
    model_info: dict[str, Any]
    weights_bytes: int
    weights_source: str
    settings: dict[str, Any] = field(default_factory=dict)


LLAMA32_3B = {
    "general.architecture": "llama",
    "general.parameter_count": 3212749888,
    "llama.block_count": 28,
    "llama.embedding_length": 3072,
    "llama.feed_forward_length": 8192,
    "llama.attention.head_count": 24,
    "llama.attention.head_count_kv": 8,
    "llama.attention.key_length": 128,
    "llama.attention.value_length": 128,
    "llama.vocab_size": 128256,
    "llama.context_length": 131072,
    "tokenizer.ggml.model": "gpt2",
}
LLAMA31_8B = {
    "general.architecture": "llama",
    "general.parameter_count": 8030261248,
    "llama.block_count": 32,
    "llama.embedding_length": 4096,
    "llama.feed_forward_length": 14336,
    "llama.attention.head_count": 32,
    "llama.attention.head_count_kv": 8,
    "llama.vocab_size": 128256,
    "llama.context_length": 131072,
    "tokenizer.ggml.model": "gpt2",
}
MIXTRAL_8X7B = {
    "general.architecture": "llama",
    "general.parameter_count": 46702792704,
    "llama.block_count": 32,
    "llama.embedding_length": 4096,
    "llama.feed_forward_length": 14336,
    "llama.attention.head_count": 32,
    "llama.attention.head_count_kv": 8,
    "llama.attention.key_length": 128,
    "llama.expert_count": 8,
    "llama.expert_used_count": 2,
    "llama.vocab_size": 32000,
    "llama.context_length": 32768,
    "tokenizer.ggml.model": "llama",
}
GPT_OSS_20B = {
    "general.architecture": "gpt-oss",
    "general.parameter_count": 20910000000,
    "gpt-oss.block_count": 24,
    "gpt-oss.embedding_length": 2880,
    "gpt-oss.feed_forward_length": 2880,
    "gpt-oss.attention.head_count": 64,
    "gpt-oss.attention.head_count_kv": 8,
    "gpt-oss.attention.key_length": 64,
    "gpt-oss.attention.value_length": 64,
    "gpt-oss.attention.sliding_window": 128,
    "gpt-oss.expert_count": 32,
    "gpt-oss.expert_used_count": 4,
    "gpt-oss.expert_feed_forward_length": 2880,
    "gpt-oss.vocab_size": 201088,
    "gpt-oss.context_length": 131072,
}
GEMMA3_4B = {
    "general.architecture": "gemma3",
    "general.parameter_count": 4299915632,
    "gemma3.block_count": 34,
    "gemma3.embedding_length": 2560,
    "gemma3.feed_forward_length": 10240,
    "gemma3.attention.head_count": 8,
    "gemma3.attention.head_count_kv": 4,
    "gemma3.attention.key_length": 256,
    "gemma3.attention.value_length": 256,
    "gemma3.attention.sliding_window": 1024,
    "gemma3.vocab_size": 262144,
    "gemma3.context_length": 131072,
}
COMMAND_R = {
    "general.architecture": "command-r",
    "command-r.block_count": 40,
    "command-r.embedding_length": 8192,
    "command-r.feed_forward_length": 22528,
    "command-r.attention.head_count": 64,
    "command-r.attention.head_count_kv": 64,
    "command-r.vocab_size": 256000,
    "command-r.context_length": 131072,
    "tokenizer.ggml.model": "gpt2",
}
NOMIC_EMBED = {
    "general.architecture": "nomic-bert",
    "nomic-bert.block_count": 12,
    "nomic-bert.embedding_length": 768,
    "nomic-bert.feed_forward_length": 3072,
    "nomic-bert.attention.head_count": 12,
    "nomic-bert.vocab_size": 30522,
    "nomic-bert.context_length": 2048,
    "tokenizer.ggml.model": "bert",
}

MEASUREMENTS: tuple[Measurement, ...] = (
    Measurement(
        id="llama3.2-3b-q4km-2048",
        model="llama3.2:3b (Q4_K_M), Ollama v0.5, CUDA, 29/29 layers on the GPU",
        runner="Ollama v0.5 (llama.cpp engine), 2,048 context, flash attention off, batch 512",
        source="https://github.com/ollama/ollama/issues/8310",
        quote="CUDA0 model buffer size = 1918.35 MiB / CUDA0 KV buffer size = 224.00 MiB / "
        "CUDA0 compute buffer size = 256.50 MiB",
        counts=("total",),
        measured_mib=1918.35 + 224.00 + 256.50,
        what="GPU footprint: CUDA0 model + KV + compute (the host's 308.23 MiB embedding and 10.01 MiB "
        "compute are not in it)",
        model_info=LLAMA32_3B,
        weights_bytes=2019377376,
        weights_source="the size of Ollama's llama3.2:3b (Q4_K_M) model file, as the catalog records it; facts "
        "from the llama3.2:3b metadata dump in https://github.com/ollama/ollama/issues/7673",
        settings={"context_length": 2048, "flash_attention": False, "num_batch": 512},
    ),
    Measurement(
        id="llama3.1-8b-q4_0-16384-vulkan",
        model="Meta Llama 3.1 8B Instruct (Q4_0), llama.cpp b5781, Vulkan, RTX 4080, 33/33 layers",
        runner="llama.cpp llama-sweep-bench, 16,384 context, flash attention on, batch 1,024",
        source="https://github.com/ikawrakow/ik_llama.cpp/discussions/562",
        quote="Vulkan0 model buffer size = 4155.99 MiB / CPU_Mapped model buffer size = 281.81 MiB / "
        "Vulkan0 KV buffer size = 2048.00 MiB / Vulkan0 compute buffer size = 613.01 MiB",
        counts=("total",),
        measured_mib=4155.99 + 2048.00 + 613.01,
        what="GPU footprint: Vulkan0 model + KV + compute",
        model_info=LLAMA31_8B,
        weights_bytes=round((4155.99 + 281.81) * MIB),
        weights_source="the file size is not published: the log's tensors (4,155.99 + 281.81 MiB) are "
        "taken as the file; facts from the same log's metadata dump",
        settings={"context_length": 16384, "flash_attention": True, "num_batch": 1024},
    ),
    Measurement(
        id="mixtral-8x7b-q4km-2048",
        model="Mixtral 8x7B v0.1 (Q4_K_M), llama.cpp via llama-cpp-python, CUDA, 33/33 layers",
        runner="llama.cpp (December 2023), 2,048 context",
        source="https://github.com/abetlen/llama-cpp-python/issues/1014",
        quote="model params = 46.70 B / mem required = 70.71 MiB / offloaded 33/33 layers to GPU / "
        "VRAM used: 25145.55 MiB / KV self size = 256.00 MiB",
        counts=("gpu_weights", "kv_cache"),
        measured_mib=25145.55 + 256.00,
        what="model on the GPU (every expert resident) + KV cache; the compute buffer is not in the log",
        model_info=MIXTRAL_8X7B,
        weights_bytes=26441533376,
        weights_source="the Q4_K_M file's size from `ls -l` in https://github.com/ggml-org/llama.cpp/pull/4406; "
        "facts from the metadata dump in https://github.com/abetlen/llama-cpp-python/issues/1226",
        settings={"context_length": 2048, "flash_attention": False, "num_batch": 512},
    ),
    Measurement(
        id="gpt-oss-20b-4096-metal",
        model="gpt-oss-20b, llama.cpp, Metal",
        runner="llama.cpp (late 2025), 4,096 context, flash attention auto → enabled, batch 512",
        source="https://github.com/ggml-org/llama.cpp/pull/17609",
        quote="creating SWA KV cache, size = 768 cells / Flash Attention was auto, set to enabled / "
        "Metal compute buffer size = 404.00 MiB",
        counts=("graph",),
        measured_mib=404.00,
        what="the GPU's compute buffer (logits of a 201,088-token vocabulary, 512 at a time)",
        model_info=GPT_OSS_20B,
        weights_bytes=0,
        weights_source="not needed for the compute buffer; facts from gpt-oss-20b's print_info in "
        "https://github.com/ikawrakow/ik_llama.cpp/issues/822",
        settings={"context_length": 4096, "flash_attention": True, "num_batch": 512},
    ),
    Measurement(
        id="gemma3-4b-4096-metal",
        model="Gemma 3 4B, llama.cpp, Metal (projector on the CPU)",
        runner="llama.cpp (April 2025), 4,096 context, flash attention off, batch 512",
        source="https://github.com/ggml-org/llama.cpp/pull/12907",
        quote="CPU output buffer size = 1.00 MiB / Metal KV buffer size = 544.00 MiB / "
        "Metal compute buffer size = 517.00 MiB",
        counts=("graph",),
        measured_mib=517.00,
        what="the GPU's compute buffer; the KV line predates windowed caches (every layer held 4,096 "
        "cells), so it is left out",
        model_info=GEMMA3_4B,
        weights_bytes=0,
        weights_source="not needed for the compute buffer; facts from Ollama's /api/show of gemma3:4b "
        "(the 1.00 MiB output buffer is its 262,144-token vocabulary × 4 B)",
        settings={"context_length": 4096, "flash_attention": False, "num_batch": 512},
    ),
    Measurement(
        id="command-r-35b-q8_0-kv-8192",
        model="command-r 35B, Ollama v0.4, CUDA, 33/41 layers on the GPU",
        runner="Ollama v0.4 (llama.cpp engine), 8,192 context, flash attention on, q8_0 KV cache",
        source="https://github.com/ollama/ollama/issues/7609",
        quote="CUDA_Host KV buffer size = 952.00 MiB / CUDA0 KV buffer size = 4488.00 MiB / "
        "KV self size = 5440.00 MiB, K (q8_0): 2720.00 MiB, V (q8_0): 2720.00 MiB",
        counts=("kv_cache",),
        measured_mib=5440.00,
        what="the q8_0 KV cache (host + GPU); the compute buffer of a partial offload is not comparable",
        model_info=COMMAND_R,
        weights_bytes=0,
        weights_source="not needed for the KV cache; facts from llama.cpp's models/ggml-vocab-command-r.gguf "
        "metadata (40 blocks, 64 KV heads, width 8,192)",
        settings={"context_length": 8192, "flash_attention": True, "kv_cache_type": "q8_0", "num_batch": 512},
    ),
    Measurement(
        id="nomic-embed-text-model",
        model="nomic-embed-text (F16), Ollama (ipex-llm build), Vulkan, 13/13 layers",
        runner="Ollama with the llama.cpp engine, early 2025",
        source="https://github.com/intel/ipex-llm/issues/12914",
        quote="Vulkan0 model buffer size = 216.14 MiB / CPU_Mapped model buffer size = 44.72 MiB",
        counts=("weights",),
        measured_mib=216.14 + 44.72,
        what="model buffers (GPU + host); that build also gave the encoder a KV cache, which current "
        "llama.cpp does not",
        model_info=NOMIC_EMBED,
        weights_bytes=274290656,
        weights_source="the size of Ollama's nomic-embed-text:latest model file, as the catalog records it; "
        "facts from the nomic-embed-text v1.5 print_info in https://github.com/gpustack/gpustack/issues/1616",
        settings={"context_length": 2048},
    ),
)
