"""A served dashboard for the browser tests and the bench: the REST app under uvicorn on a loopback port
(in a thread), over an Ollama double, with a GPU whose memory follows what the double has loaded.

The GPU is an NVML stand-in (the machines that run the tests have no NVIDIA GPU): one device whose used
memory is a fixed amount of other use plus the VRAM of every model the double reports in ``/api/ps``,
read over HTTP like any client would. The double's VRAM budget is what the GPU has free, so a model
that does not fit spills to the CPU as it would in Ollama.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pynvml
import uvicorn
from fastapi import FastAPI

from model_manager import ManagerCore
from model_manager.api import create_app
from model_manager.api.server import bind_socket
from model_manager.gpu import GPUManager
from model_manager.testing import OllamaDouble

GIB = 2**30
GPU_NAME = "NVIDIA GeForce RTX 4090"
GPU_TOTAL = 24 * GIB
OTHER_USE = 3 * GIB // 4
"""What the desktop and other programs hold on the GPU."""


class DoubleNvml:
    """Stands in for the pynvml module (the functions GPU detection calls, nvidia-ml-py's exceptions)."""

    NVMLError = pynvml.NVMLError

    def __init__(self, ollama_url: str, total: int = GPU_TOTAL, other: int = OTHER_USE) -> None:
        self.ollama_url, self.total, self.other = ollama_url, total, other

    def nvmlInit(self) -> None:
        pass

    def nvmlShutdown(self) -> None:
        pass

    def nvmlDeviceGetCount(self) -> int:
        return 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetUUID(self, handle: int) -> str:
        return "GPU-5e1f0c2a-0000-4000-8000-000000000001"

    def nvmlDeviceGetName(self, handle: int) -> str:
        return GPU_NAME

    def nvmlDeviceGetPciInfo(self, handle: int) -> Any:
        return SimpleNamespace(busId=b"00000000:01:00.0")

    def nvmlDeviceGetMigMode(self, handle: int) -> list[int]:
        raise pynvml.NVMLError_NotSupported()

    def nvmlDeviceGetMemoryInfo(self, handle: int, version: int | None = None) -> Any:
        used = self.other + self.loaded_vram()
        return SimpleNamespace(total=self.total, free=max(0, self.total - used), used=used)

    def loaded_vram(self) -> int:
        with urllib.request.urlopen(f"{self.ollama_url}/api/ps", timeout=5) as answer:
            return sum(int(m.get("size_vram", 0)) for m in json.load(answer)["models"])


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """``app`` under uvicorn on 127.0.0.1 (a free port) for the block; yields its URL."""
    sock = bind_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="dashboard-server", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


@dataclass
class World:
    url: str
    ollama: OllamaDouble
    manager: ManagerCore
    app: FastAPI


@contextmanager
def dashboard_world(
    home: Path, *, token: str | None = None, gpu: bool = True, **double: Any
) -> Iterator[World]:
    """An Ollama double, a manager over it (with the GPU stand-in unless ``gpu`` is false) and the app
    served; ``double`` arguments go to ``OllamaDouble``."""
    with OllamaDouble(**double) as ollama:
        nvml = DoubleNvml(ollama.url)
        if gpu:
            ollama.vram_bytes = GPU_TOTAL - OTHER_USE
        detector = GPUManager(env={}, nvml=nvml) if gpu else None
        with ManagerCore(host=ollama.url, data_dir=home, gpu=detector) as manager:
            app = create_app(manager, token=token)
            with serving(app) as url:
                yield World(url, ollama, manager, app)
