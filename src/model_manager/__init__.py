"""model-manager: manage local LLMs served by Ollama.

``ModelManager`` (the quick-reference API over the raising core), ``ManagerCore`` and ``GPUManager`` are
imported on first use, so that ``import model_manager`` (and the CLI's start-up) stays light.
"""

from __future__ import annotations

from .errors import (
    CannotDeleteCurrentError,
    DownloadFailedError,
    FileAccessError,
    InsufficientVramError,
    InvalidDocumentError,
    InvalidModelNameError,
    InvalidRequestError,
    InvalidSettingError,
    LoadTimedOutError,
    ModelManagerError,
    ModelNotFoundError,
    ModelNotInstalledError,
    OllamaError,
    OllamaUnavailableError,
    StoreError,
)
from .types import ModelInfo, ModelPurpose, Priority

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .gpu import GPUManager
    from .manager import ManagerCore
    from .quick_reference import ModelManager

_LAZY = {"ModelManager": "quick_reference", "ManagerCore": "manager", "GPUManager": "gpu"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CannotDeleteCurrentError",
    "DownloadFailedError",
    "FileAccessError",
    "GPUManager",
    "InsufficientVramError",
    "InvalidDocumentError",
    "InvalidModelNameError",
    "InvalidRequestError",
    "InvalidSettingError",
    "LoadTimedOutError",
    "ManagerCore",
    "ModelInfo",
    "ModelManager",
    "ModelManagerError",
    "ModelNotFoundError",
    "ModelNotInstalledError",
    "ModelPurpose",
    "OllamaError",
    "OllamaUnavailableError",
    "Priority",
    "StoreError",
]
