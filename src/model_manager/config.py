"""Settings and their validators. The only module that reads ``os.environ``.

Order everywhere: an explicit argument, then an environment variable, then the default.
``OLLAMA_HOST`` and the other ``OLLAMA_*`` variables are honoured as Ollama reads them; our own
variables start with ``MODEL_MANAGER_``. Every figure a user gives (a setting, a CLI argument, a Python
argument) is checked by the validators here, so each rule and its message exist once.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InvalidRequestError, InvalidSettingError
from .units import MAX_GB

APP_NAME = "model-manager"
DB_FILENAME = "model_manager.db"
USER_CATALOG_FILENAME = "catalog.json"

DEFAULT_REQUEST_TIMEOUT_S = 30.0
"""Seconds a quick Ollama call (tags, show, ps, delete) may take."""
DEFAULT_LOAD_TIMEOUT_S = 330.0
"""Seconds a model load may take: Ollama's own stall limit (5 minutes) plus a margin."""
DEFAULT_PULL_SILENCE_S = 120.0
"""Seconds of silence after which a pull is abandoned."""
DEFAULT_SWITCH_WAIT_S = 60.0
"""Seconds a switch or delete from the Python API or the CLI waits while another one runs (REST: none)."""
DATABASE_URL_SCHEMES = ("postgresql", "postgres")


def process_environment() -> Mapping[str, str]:
    """The process environment (read here and nowhere else)."""
    return os.environ


def parse_gb(value: object, what: str = "available VRAM") -> float:
    """A finite number of GB from 0 to ``MAX_GB``; accepts numbers and numeric strings.

    Raises InvalidRequestError naming ``what`` for anything else.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidRequestError(f"{what} must be a number of GB, got {type(value).__name__}")
    try:
        number = float(value)
    except ValueError:
        raise InvalidRequestError(f"{what} must be a number of GB, got {value!r}") from None
    if not math.isfinite(number) or number < 0 or number > MAX_GB:
        raise InvalidRequestError(
            f"{what} must be a finite number of GB from 0 to {MAX_GB:,.0f}, got {value!r}"
        )
    return number


def parse_seconds(value: object, what: str) -> float:
    """A finite number of seconds ≥ 0. Raises InvalidRequestError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequestError(f"{what} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise InvalidRequestError(f"{what} must be a finite number ≥ 0, got {value!r}")
    return float(value)


def _url_credentials(url: str) -> tuple[str, str, str] | None:
    """(``scheme://``, the user part before ``@``, the rest) of a URL; the user part is taken up to the
    last ``@`` before the query, so a password holding ``/`` or ``@`` is still all in it."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return None
    at = rest.partition("?")[0].rfind("@")
    return scheme + sep, rest[:at] if at >= 0 else "", rest[at + 1 :] if at >= 0 else rest


def redact_database_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (in the user part and in a ``password=`` parameter),
    for every message, log line and answer that names the database."""
    parts = _url_credentials(url)
    if parts is None:
        return url
    scheme, user, rest = parts
    if ":" in user:
        user = user.partition(":")[0] + ":***"
    rest = re.sub(r"(?i)([?&]password=)[^&]*", r"\1***", rest)
    return f"{scheme}{user}@{rest}" if user else f"{scheme}{rest}"


def database_password(url: str) -> str | None:
    """The password in ``url`` (user part or ``password=`` parameter), decoded; None when there is none."""
    from urllib.parse import parse_qs, unquote

    parts = _url_credentials(url)
    if parts is None:
        return None
    user, rest = parts[1], parts[2]
    if ":" in user:
        return unquote(user.partition(":")[2])
    found = parse_qs(rest.partition("?")[2]).get("password")
    return found[-1] if found else None


def parse_database_url(value: object, what: str = "database_url") -> str:
    """A ``postgresql://`` (or ``postgres://``) URL as libpq reads it. Raises InvalidSettingError naming
    ``what``, with the URL's password left out."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidSettingError(f"{what} must be a postgresql:// URL, got {type(value).__name__}")
    url = value.strip()
    scheme = url.partition("://")[0].lower()
    if "://" not in url or scheme not in DATABASE_URL_SCHEMES:
        raise InvalidSettingError(
            f"{what}={redact_database_url(url)!r} is not a postgresql:// URL "
            "(leave it unset for the SQLite store in the data directory)"
        )
    return url


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with defaults a local install wants."""

    home: Path
    ollama_host: str | None = None
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
    load_timeout_s: float = DEFAULT_LOAD_TIMEOUT_S
    pull_silence_timeout_s: float = DEFAULT_PULL_SILENCE_S
    keep_alive: str | None = None
    vram_gb: float | None = None
    api_token: str | None = None
    #: Seconds a switch or delete waits for another one to finish (the REST API never waits).
    switch_wait_s: float = DEFAULT_SWITCH_WAIT_S
    #: A PostgreSQL URL for the store instead of the SQLite file in ``home``; kept out of ``repr``, as
    #: it may hold a password.
    database_url: str | None = field(default=None, repr=False)
    #: The ``OLLAMA_*`` variables, read as Ollama reads them by ``ollama_defaults.runtime_settings``.
    ollama_env: Mapping[str, str] = field(default_factory=dict)
    #: The environment GPU detection reads (device visibility variables, ``PATH`` for its helpers).
    env: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def db_path(self) -> Path:
        return self.home / DB_FILENAME

    @property
    def store_location(self) -> str | Path:
        """Where the store lives: the PostgreSQL URL when one is set, else the SQLite file."""
        return self.database_url or self.db_path

    @property
    def user_catalog_path(self) -> Path:
        return self.home / USER_CATALOG_FILENAME


def _env_gb(env: Mapping[str, str], key: str) -> float | None:
    raw = env.get(key, "").strip()
    if not raw:
        return None
    try:
        return parse_gb(raw, key)
    except InvalidRequestError as exc:
        raise InvalidSettingError(f"{key}={raw!r}: {exc.detail}") from None


def _env_seconds(env: Mapping[str, str], key: str, default: float, *, zero_ok: bool = False) -> float:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidSettingError(f"{key}={raw!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        bound = "≥ 0" if zero_ok else "> 0"
        raise InvalidSettingError(f"{key}={raw!r} must be a finite number of seconds {bound}")
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
    database_url: str | None = None,
) -> Settings:
    """Build settings from ``env`` (default: the process environment) and explicit overrides.

    Raises InvalidSettingError naming the variable that does not parse.
    """
    env = dict(process_environment() if env is None else env)
    if database_url is not None:
        database_url = parse_database_url(database_url)
    elif env.get("MODEL_MANAGER_DATABASE_URL", "").strip():
        database_url = parse_database_url(env["MODEL_MANAGER_DATABASE_URL"], "MODEL_MANAGER_DATABASE_URL")
    return Settings(
        home=Path(data_dir).expanduser() if data_dir is not None else default_home(env),
        ollama_host=host if host is not None else (env.get("OLLAMA_HOST") or None),
        request_timeout_s=_env_seconds(env, "MODEL_MANAGER_TIMEOUT", DEFAULT_REQUEST_TIMEOUT_S),
        load_timeout_s=_env_seconds(env, "MODEL_MANAGER_LOAD_TIMEOUT", DEFAULT_LOAD_TIMEOUT_S),
        pull_silence_timeout_s=_env_seconds(env, "MODEL_MANAGER_PULL_TIMEOUT", DEFAULT_PULL_SILENCE_S),
        keep_alive=env.get("MODEL_MANAGER_KEEP_ALIVE") or None,
        vram_gb=_env_gb(env, "MODEL_MANAGER_VRAM_GB"),
        api_token=env.get("MODEL_MANAGER_API_TOKEN") or None,
        switch_wait_s=_env_seconds(env, "MODEL_MANAGER_SWITCH_WAIT", DEFAULT_SWITCH_WAIT_S, zero_ok=True),
        database_url=database_url,
        ollama_env={k: v for k, v in env.items() if k.startswith("OLLAMA_")},
        env=env,
    )
