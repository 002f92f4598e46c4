"""Memory: how much a model needs when Ollama runs it, and whether it fits here.

    hparams.py    the facts of a model's architecture, read from ``/api/show``'s ``model_info``
    estimator.py  the pure estimate: the footprint llama.cpp allocates (weights, KV cache, compute graph)
    fit.py        Ollama's settings for one model on one machine (``RunSettings``), the memory (``Memory``)
    verdict.py    the one fit verdict every face shows (level, figure, context); ``min_vram_gb``
    plan.py       plan mode: memory per context and KV cache type, the largest context that fits
    sizing.py     which facts size a model (``ModelSizing``): ``/api/show`` or the catalog
    planner.py    the manager's view: verdicts, estimates and plans of ``ModelInfo`` records

Only ``planner`` and ``sizing`` know the manager's records; the rest is pure.
"""

from __future__ import annotations

from .estimator import MemoryEstimate, estimate_memory, layers_on_gpu, max_context_for

__all__ = ["MemoryEstimate", "estimate_memory", "layers_on_gpu", "max_context_for"]
