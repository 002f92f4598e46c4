"""Whether the process behind an owner token still runs.

A token is ``<pid>:<start>`` where ``start`` is when that process started, so a pid reused by a later
process is not mistaken for the first one. On Linux the start time is field 22 of ``/proc/<pid>/stat``
(clock ticks since boot); elsewhere it is unknown (empty) and the pid alone decides. A process that has
exited but was not yet collected by its parent (a zombie) is dead.
"""

from __future__ import annotations

import os


def _stat(pid: int) -> list[str]:
    """Fields 3 onwards of ``/proc/<pid>/stat`` (state, ppid, …), or [] where there is none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
    except OSError:
        return []
    # The command name (field 2) is in parentheses and may contain spaces: count from its end.
    return stat[stat.rfind(")") + 2 :].split()


def _start_time(pid: int) -> str:
    fields = _stat(pid)
    return fields[19] if len(fields) > 19 else ""


def process_token(pid: int | None = None) -> str:
    """The token of process ``pid`` (this one by default)."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{_start_time(pid)}"


def is_alive(token: str) -> bool:
    """Whether the process that made ``token`` still runs. A malformed token is a dead owner."""
    pid_text, _, start = token.partition(":")
    if not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return start in ("", _start_time(pid))
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by someone else
    fields = _stat(pid)
    if fields and fields[0] in ("Z", "X"):
        return False  # it has exited; only its parent has not collected it yet
    current = fields[19] if len(fields) > 19 else ""
    return not start or not current or current == start
