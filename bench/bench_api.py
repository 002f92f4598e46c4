"""Load test of the served REST API over real HTTP: 32 concurrent keep-alive clients.

Starts the Ollama double (``python -m model_manager.testing``) and ``python -m model_manager.api.server``
as two processes, as Ollama and the server would run, then measures, for a fixed time each:

* ``GET /api/model/list``: requests/s and latency percentiles;
* ``POST /api/model/usage``: requests/s (each one a durable SQLite write).

The clients are a minimal asyncio HTTP/1.1 client (one connection each), so that the load generator
costs little next to the server on a small machine. Run::

    PYTHONPATH=src .venv/bin/python bench/bench_api.py [--clients 32] [--seconds 10] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

# A FastAPI app with one plain ``def`` route answering a constant under the same uvicorn settings: what
# the framework alone achieves on this machine, to read the figures against.
BASELINE_APP = """
import socket, sys, uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
app = FastAPI()
@app.get("/ping")
def ping() -> JSONResponse:
    return JSONResponse({"success": True})
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen(2048)
print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
uvicorn.Server(uvicorn.Config(app, access_log=False, log_level="warning")).run(sockets=[sock])
"""

INSTALLED = ("llama3.2:1b-instruct-q8_0", "llama3.2:3b-instruct-q4_K_M", "llama3.1:8b-instruct-q4_K_M")


@dataclass
class Result:
    name: str
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0

    def summary(self) -> dict[str, float | int | str]:
        lat = sorted(self.latencies)
        pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")  # noqa: E731
        return {
            "endpoint": self.name,
            "requests": len(lat),
            "errors": self.errors,
            "requests_per_s": round(len(lat) / self.seconds, 1),
            "p50_ms": round(pick(0.50), 2),
            "p99_ms": round(pick(0.99), 2),
            "max_ms": round(lat[-1] * 1000, 2) if lat else float("nan"),
            "mean_ms": round(statistics.fmean(lat) * 1000, 2) if lat else float("nan"),
        }


def _request(method: str, path: str, port: int, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    if body or method == "POST":
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return (head + "\r\n").encode() + body


async def _client(port: int, request: bytes, stop_at: float, record_from: float, result: Result) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            started = time.perf_counter()
            if started >= stop_at:
                return
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            if started < record_from:
                continue
            if status >= 300:
                result.errors += 1
            else:
                result.latencies.append(time.perf_counter() - started)
    finally:
        writer.close()


async def _run(name: str, port: int, request: bytes, clients: int, seconds: float, warmup: float) -> Result:
    now = time.perf_counter()
    result = Result(name, seconds)
    record_from = now + warmup
    stop_at = record_from + seconds
    await asyncio.gather(*(_client(port, request, stop_at, record_from, result) for _ in range(clients)))
    return result


def _start(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    """Start ``python <args>``; return it and the port from its "listening on" line."""
    proc = subprocess.Popen([sys.executable, *args], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        raise SystemExit(f"{args[0]} did not start: {line!r}")
    return proc, int(line.strip().rsplit(":", 1)[1])


def _stop(*procs: subprocess.Popen[str]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--baseline", action="store_true", help="also measure a one-route FastAPI app")
    args = parser.parse_args()
    src = Path(__file__).resolve().parents[1] / "src"
    with tempfile.TemporaryDirectory() as home:
        env = {k: v for k, v in os.environ.items() if k != "MODEL_MANAGER_API_TOKEN"}
        env |= {"PYTHONPATH": str(src), "MODEL_MANAGER_HOME": home, "MODEL_MANAGER_VRAM_GB": "12"}
        ollama, ollama_port = _start(
            ["-m", "model_manager.testing", "--port", "0", "--install", *INSTALLED], env
        )
        env["OLLAMA_HOST"] = f"http://127.0.0.1:{ollama_port}"
        server, port = _start(
            ["-m", "model_manager.api.server", "--port", "0", "--no-access-log", "--log-level", "warning"],
            env,
        )
        try:
            usage = json.dumps(
                {"model": "llama3.2:1b-instruct", "inference_time": 1.25, "success": True}
            ).encode()
            runs = [
                ("GET /api/model/list", _request("GET", "/api/model/list", port)),
                ("POST /api/model/usage", _request("POST", "/api/model/usage", port, usage)),
            ]
            results = [
                asyncio.run(_run(name, port, req, args.clients, args.seconds, args.warmup)).summary()
                for name, req in runs
            ]
        finally:
            _stop(server, ollama)
        if args.baseline:
            baseline, port = _start(["-c", BASELINE_APP], env)
            try:
                request = _request("GET", "/ping", port)
                run = _run("baseline GET /ping", port, request, args.clients, args.seconds, args.warmup)
                results.append(asyncio.run(run).summary())
            finally:
                _stop(baseline)
    machine = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "clients": args.clients,
        "seconds": args.seconds,
    }
    if args.json:
        print(json.dumps({"machine": machine, "results": results}, indent=2))
        return
    print(f"machine: {machine}")
    for r in results:
        print(
            f"{r['endpoint']:<24} {r['requests_per_s']:>8} req/s  p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms"
            f"  max {r['max_ms']} ms  errors {r['errors']}  ({r['requests']} requests)"
        )


if __name__ == "__main__":
    main()
