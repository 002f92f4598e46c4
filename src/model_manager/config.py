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
from typing import TYPE_CHECKING

from .errors import InvalidRequestError, InvalidSettingError
from .units import MAX_GB

if TYPE_CHECKING:
    import ipaddress

APP_NAME = "model-manager"
DB_FILENAME = "model_manager.db"
USER_CATALOG_FILENAME = "catalog.json"

DEFAULT_REQUEST_TIMEOUT_S = 30.0
"""Seconds a quick Ollama call (tags, show, ps, delete) may take."""
DEFAULT_LOAD_TIMEOUT_S = 330.0
"""Seconds a model load may take: Ollama's own stall limit (5 minutes) plus a margin."""
DEFAULT_PULL_SILENCE_S = 120.0
"""Seconds of silence after which a pull is abandoned."""
DEFAULT_BACKUPS_KEEP = 10
"""Backups of the state before an import kept in ``<home>/backups/`` (the newest ones)."""

DEFAULT_VERIFY_MB_S = 50.0
"""MB/s the slowest disk is assumed to re-read a download at: Ollama hashes every fetched blob after the
download and says nothing meanwhile, so that phase's silence limit grows with the bytes (a 40 GB model:
800 s on top of the pull's silence limit)."""
KEEP_ALIVE_ENV = "MODEL_MANAGER_KEEP_ALIVE"
MAX_DURATION_NS = 2**63 - 1
"""Go's largest ``time.Duration``."""
DEFAULT_SWITCH_WAIT_S = 60.0
"""Seconds a switch or delete from the Python API or the CLI waits while another one runs (REST: none)."""
DATABASE_URL_SCHEMES = ("postgresql", "postgres")
DEFAULT_HOST_NAME = "local"
"""The name of the host a manager runs beside (its ``OLLAMA_HOST``) unless ``MODEL_MANAGER_HOST_NAME`` says otherwise."""
FLEET_WORDS = ("all", "auto")
"""What ``--host`` and ``host`` take besides a host's name: every host, or the one placement chooses."""
DEFAULT_HEARTBEAT_S = 10.0
"""Seconds between the GPU reports a serving manager publishes; a report older than three is stale."""
HOST_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}"
"""A host's name (any case; kept in lower case)."""
HOST_URL_PATTERN = r"(?:https?://)?[A-Za-z0-9.\[\]:_-]+(?:/(?:[A-Za-z0-9._~-][A-Za-z0-9._~/-]*)?)?"
"""An Ollama address as a host's URL: ``OLLAMA_HOST``'s forms without a user, query, fragment or spaces."""


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
    return number + 0.0  # -0.0 becomes 0.0, so no message says "-0.0 GB"


def parse_seconds(value: object, what: str) -> float:
    """A finite number of seconds ≥ 0. Raises InvalidRequestError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequestError(f"{what} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise InvalidRequestError(f"{what} must be a finite number ≥ 0, got {value!r}")
    return float(value)


def parse_count(value: object, what: str) -> int:
    """A whole number from 0 to 2⁶² (a token count). Raises InvalidRequestError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2**62:
        raise InvalidRequestError(f"{what} must be a whole number ≥ 0, got {value!r}")
    return value


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


def parse_host_name(value: object, what: str = "host name") -> str:
    """A host's name in lower case: a letter or digit, then up to 62 letters, digits, ``_``, ``.`` or ``-``;
    ``all`` and ``auto`` are taken by ``--host``. Raises InvalidRequestError naming ``what``."""
    if not isinstance(value, str):
        raise InvalidRequestError(f"{what} must be a string, got {type(value).__name__}")
    name = value.lower()
    if name in FLEET_WORDS:
        raise InvalidRequestError(f"{what} {value!r} is taken: --host {name} means {_word(name)}")
    if not re.fullmatch(HOST_NAME_PATTERN, value):
        hint = " (an Ollama address goes in the URL, not the name)" if ":" in name or "/" in name else ""
        raise InvalidRequestError(
            f"{what} {value!r} is not a host name: use 1-63 letters, digits, '_', '.' or '-', "
            f"starting with a letter or digit{hint}"
        )
    return name


def _word(word: str) -> str:
    return "every host" if word == "all" else "the host placement chooses"


def parse_host_url(value: object, what: str = "host URL") -> str:
    """The base URL of a host's Ollama (``HOST_URL_PATTERN``), read as ``OLLAMA_HOST`` is
    (``ollama_base_url``). Raises InvalidRequestError."""
    if not isinstance(value, str) or not re.fullmatch(HOST_URL_PATTERN, value):
        scheme = value.partition("://")[0] if isinstance(value, str) and "://" in value else ""
        why = (
            f"Ollama speaks http or https, not {scheme}"
            if scheme not in ("", "http", "https")
            else ("use [http[s]://]host[:port][/path], without a user, query, fragment or spaces")
        )
        raise InvalidRequestError(
            f"{what} {value!r} is not an Ollama address: {why} (e.g. http://gpu1.lan:11434)"
        )
    return ollama_base_url(value)


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with defaults a local install wants."""

    home: Path
    ollama_host: str | None = None
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
    load_timeout_s: float = DEFAULT_LOAD_TIMEOUT_S
    pull_silence_timeout_s: float = DEFAULT_PULL_SILENCE_S
    verify_mb_s: float = DEFAULT_VERIFY_MB_S
    keep_alive: int | str | None = None
    """The ``keep_alive`` every load sends, in a form Ollama's JSON decoder takes exactly (see
    ``parse_keep_alive``); None leaves it to Ollama (``OLLAMA_KEEP_ALIVE``, else 5 minutes)."""
    vram_gb: float | None = None
    api_token: str | None = None
    backups_keep: int = DEFAULT_BACKUPS_KEEP
    #: Seconds a switch or delete waits for another one to finish (the REST API never waits).
    switch_wait_s: float = DEFAULT_SWITCH_WAIT_S
    #: A PostgreSQL URL for the store instead of the SQLite file in ``home``; kept out of ``repr``, as
    #: it may hold a password.
    database_url: str | None = field(default=None, repr=False)
    #: The name of the host this manager runs beside (``OLLAMA_HOST``) in a fleet sharing the store.
    host_name: str = DEFAULT_HOST_NAME
    #: Seconds between the GPU reports ``model-manager serve`` publishes to the store.
    heartbeat_s: float = DEFAULT_HEARTBEAT_S
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


def _env_seconds(
    env: Mapping[str, str], key: str, default: float, unit: str = "seconds", *, zero_ok: bool = False
) -> float:
    """A positive number of ``unit`` (or zero, where ``zero_ok``)."""
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidSettingError(f"{key}={raw!r} is not a number of {unit}") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        bound = "≥ 0" if zero_ok else "> 0"
        raise InvalidSettingError(f"{key}={raw!r} must be a finite number of {unit} {bound}")
    return value


def _env_host_name(env: Mapping[str, str]) -> str:
    raw = env.get("MODEL_MANAGER_HOST_NAME", "").strip()
    if not raw:
        return DEFAULT_HOST_NAME
    try:
        return parse_host_name(raw, "MODEL_MANAGER_HOST_NAME")
    except InvalidRequestError as exc:
        raise InvalidSettingError(exc.detail) from None


def _env_count(env: Mapping[str, str], key: str, default: int) -> int:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise InvalidSettingError(f"{key}={raw!r} must be a whole number ≥ 1")
    return int(raw)


# --- keep-alive: what Ollama's OLLAMA_KEEP_ALIVE accepts -------------------------------------------

_GO_UNITS_NS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9}
_GO_UNITS_NS["h"] = 3600 * 10**9
_GO_GROUP = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]*)")
_GO_INTEGER = re.compile(r"[+-]?\d+")


def go_duration_ns(text: str) -> int | None:
    """Nanoseconds of a Go duration (golang/go src/time/format.go ``ParseDuration``: ``10m``,
    ``1h30m``, ``-1.5s``, ``0``), or None when Go would refuse it."""
    rest, sign = text, 1
    if rest[:1] in "+-" and rest:
        sign, rest = (-1 if rest[0] == "-" else 1), rest[1:]
    if rest == "0":
        return 0
    total = 0
    while rest:
        group = _GO_GROUP.match(rest)
        assert group is not None
        whole, frac, unit = group.groups()
        if not (whole or frac) or unit not in _GO_UNITS_NS:
            return None
        scale = _GO_UNITS_NS[unit]
        total += int(whole or 0) * scale + (int(frac) * scale // 10 ** len(frac) if frac else 0)
        if total > MAX_DURATION_NS:
            return None
        rest = rest[group.end() :]
    return sign * total if text not in ("", "+", "-") else None


def parse_keep_alive(raw: str | None, what: str = KEEP_ALIVE_ENV) -> int | str | None:
    """``raw`` read as ollama/ollama envconfig/config.go ``KeepAlive`` reads ``OLLAMA_KEEP_ALIVE`` (after
    ``Var``'s trimming of white space and quotes): a Go duration first, else whole seconds; negative
    keeps the model loaded. Returns it in the form the JSON field takes exactly (api/types.go
    ``Duration.UnmarshalJSON``: a number is seconds and negative is forever, a string is a Go duration):
    whole seconds as a number, -1 for "keep loaded", otherwise ``"<n>ns"``. None when unset.

    Raises InvalidSettingError naming ``what`` for 0 (a load with keep-alive 0 is Ollama's unload) and
    for anything Ollama would not read (it falls back to 5 minutes without a word).
    """
    text = (raw or "").strip().strip("\"'")
    if not text:
        return None
    ns = go_duration_ns(text)
    if ns is None and _GO_INTEGER.fullmatch(text):
        ns = int(text) * 10**9
    if ns is None or abs(ns) > MAX_DURATION_NS:
        raise InvalidSettingError(
            f"{what}={raw!r} is not a keep-alive: use a Go duration (10m, 1h30m, -1m) or whole seconds "
            "(300); negative keeps the model loaded"
        )
    if ns == 0:
        raise InvalidSettingError(
            f"{what}={raw!r}: 0 would unload each model as soon as it is loaded; use a duration such "
            "as 10m, or -1 to keep it loaded"
        )
    if ns < 0:
        return -1
    return ns // 10**9 if ns % 10**9 == 0 else f"{ns}ns"


# --- OLLAMA_HOST: where Ollama listens, read as Ollama's own CLI reads it --------------------------

DEFAULT_OLLAMA_PORT = 11434


def ollama_base_url(value: str | None) -> str:
    """The base URL a client dials for ``value`` (``OLLAMA_HOST``), as ollama/ollama envconfig/config.go
    reads it: ``Var`` (white space and surrounding quotes trimmed), ``Host`` (default scheme http and
    port 11434, 80/443 for an explicit http/https, ``ollama.com`` alone meaning https on 443, a path
    kept, an invalid port replaced by the default), then ``ConnectableHost`` (an unspecified address,
    ``0.0.0.0`` or ``::``, dialled as 127.0.0.1 or ::1). An empty host (``:8080``) is dialled as
    127.0.0.1, where Go's dialer assumes the local system. Never raises: Ollama refuses no value.
    """
    text = (value or "").strip().strip("\"'").strip()
    scheme, sep, hostport = text.partition("://")
    default_port = str(DEFAULT_OLLAMA_PORT)
    if not sep:
        scheme, hostport = "http", text
        if text == "ollama.com":
            scheme, hostport = "https", "ollama.com:443"
    elif scheme in ("http", "https"):
        default_port = "80" if scheme == "http" else "443"
    hostport, _, path = hostport.partition("/")
    split = _split_host_port(hostport)
    if split is None:
        host, port = "127.0.0.1", default_port
        ip = _go_ip(hostport.strip("[]"))
        if ip is not None:
            host = str(ip)
        elif hostport:
            host = hostport
    else:
        host, port = split
    port = _port(port, default_port)
    ip = _go_ip(host)
    if ip is not None and ip.is_unspecified:
        host = "127.0.0.1" if ip.version == 4 else "::1"
    host = f"[{host}]" if ":" in host else host or "127.0.0.1"
    return f"{scheme}://{host}:{port}" + (f"/{path}" if path else "")


def _split_host_port(hostport: str) -> tuple[str, str] | None:
    """Go's ``net.SplitHostPort``; None where it returns an error."""
    colon = hostport.rfind(":")
    if colon < 0:
        return None
    start = 0
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0 or end + 1 != colon:
            return None
        host, start = hostport[1:end], end + 1
    else:
        host = hostport[:colon]
        if ":" in host:
            return None
    if "[" in hostport[1 if start else 0 :] or "]" in hostport[start:]:
        return None
    return host, hostport[colon + 1 :]


def _go_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Go's ``net.ParseIP`` as ``String()`` prints it (an IPv4-mapped address as IPv4; no zones)."""
    import ipaddress  # here: the command line's start-up does not pay for it

    if "%" in text:
        return None
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _port(port: str, default: str) -> str:
    """``strconv.ParseInt(port, 10, 32)`` within 0–65535, else the default (Ollama logs "invalid port,
    using default"); written as a plain number."""
    if re.fullmatch(r"[+-]?\d{1,10}", port) and 0 <= int(port) <= 65535:
        return str(int(port))
    import logging

    logging.getLogger(__name__).warning("OLLAMA_HOST: invalid port %r, using %s", port, default)
    return default


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
        verify_mb_s=_env_seconds(env, "MODEL_MANAGER_VERIFY_MB_S", DEFAULT_VERIFY_MB_S, "MB/s"),
        keep_alive=parse_keep_alive(env.get(KEEP_ALIVE_ENV)),
        vram_gb=_env_gb(env, "MODEL_MANAGER_VRAM_GB"),
        api_token=env.get("MODEL_MANAGER_API_TOKEN") or None,
        backups_keep=_env_count(env, "MODEL_MANAGER_BACKUPS_KEEP", DEFAULT_BACKUPS_KEEP),
        switch_wait_s=_env_seconds(env, "MODEL_MANAGER_SWITCH_WAIT", DEFAULT_SWITCH_WAIT_S, zero_ok=True),
        database_url=database_url,
        host_name=_env_host_name(env),
        heartbeat_s=_env_seconds(env, "MODEL_MANAGER_HEARTBEAT_S", DEFAULT_HEARTBEAT_S),
        ollama_env={k: v for k, v in env.items() if k.startswith("OLLAMA_")},
        env=env,
    )
