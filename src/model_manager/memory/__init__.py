"""Memory: how much a model needs when Ollama runs it, and whether it fits here.

    estimator.py  the pure estimate (weights, KV cache, compute graph, overhead), as llama.cpp allocates
    fit.py        Ollama's settings for one model (``RunSettings``), fit levels against free memory
    sizing.py     which facts size a model (``ModelSizing``): ``/api/show`` or the catalog
    planner.py    the manager's view: estimates and fits of ``ModelInfo`` records, cached per GPU size

Only ``planner`` knows the manager's records; the other three are pure.
"""

from __future__ import annotations

from .estimator import MemoryEstimate, estimate_memory, layers_on_gpu, max_context_for

__all__ = ["MemoryEstimate", "estimate_memory", "layers_on_gpu", "max_context_for"]
