"""Settings, read once from the environment. The only module that reads ``os.environ``.

Order everywhere: an explicit argument, then an environment variable, then the default.
``OLLAMA_HOST`` is honoured as Ollama itself reads it; our own variables start with ``MODEL_MANAGER_``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InvalidRequestError

APP_NAME = "model-manager"
DB_FILENAME = "model_manager.db"
USER_CATALOG_FILENAME = "catalog.json"


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with defaults a local install wants."""

    home: Path
    ollama_host: str | None = None
    request_timeout_s: float = 30.0
    load_timeout_s: float = 330.0
    pull_silence_timeout_s: float = 120.0
    keep_alive: str | None = None
    vram_gb: float | None = None
    api_token: str | None = None
    #: The ``OLLAMA_*`` variables, read as Ollama reads them by ``ollama_defaults.runtime_settings``.
    ollama_env: Mapping[str, str] = field(default_factory=dict)

    @property
    def db_path(self) -> Path:
        return self.home / DB_FILENAME

    @property
    def user_catalog_path(self) -> Path:
        return self.home / USER_CATALOG_FILENAME


def _float(env: Mapping[str, str], key: str, default: float | None) -> float | None:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidRequestError(f"{key}={raw!r} is not a number") from None
    if not (value >= 0 and value != float("inf")):
        raise InvalidRequestError(f"{key}={raw!r} must be a finite number ≥ 0")
    return value


def default_home(env: Mapping[str, str]) -> Path:
    """``$MODEL_MANAGER_HOME``, else the platform's user data dir."""
    raw = env.get("MODEL_MANAGER_HOME", "").strip()
    if raw:
        return Path(raw).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME))


def load_settings(
    env: Mapping[str, str] | None = None,
    *,
    host: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> Settings:
    """Build settings from ``env`` (default: the process environment) and explicit overrides."""
    env = os.environ if env is None else env
    return Settings(
        home=Path(data_dir).expanduser() if data_dir is not None else default_home(env),
        ollama_host=host if host is not None else (env.get("OLLAMA_HOST") or None),
        request_timeout_s=_float(env, "MODEL_MANAGER_TIMEOUT", 30.0) or 30.0,
        load_timeout_s=_float(env, "MODEL_MANAGER_LOAD_TIMEOUT", 330.0) or 330.0,
        pull_silence_timeout_s=_float(env, "MODEL_MANAGER_PULL_TIMEOUT", 120.0) or 120.0,
        keep_alive=env.get("MODEL_MANAGER_KEEP_ALIVE") or None,
        vram_gb=_float(env, "MODEL_MANAGER_VRAM_GB", None),
        api_token=env.get("MODEL_MANAGER_API_TOKEN") or None,
        ollama_env={k: v for k, v in env.items() if k.startswith("OLLAMA_")},
    )
