"""The Ollama endpoints: request checks in Ollama's order, answers in Ollama's shapes and words.

Checks that Ollama makes before a stream opens (body, name, model lookup, capabilities, loading)
answer with a real status; failures after the first line are ``{"error": ...}`` lines on a 200.
Each body's fields are in ``_bodies``.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Callable
from typing import Any

from ._bodies import CHAT, COPY, DELETE, EMBED, EMBEDDINGS, GENERATE, PULL, SHOW
from ._faults import Faults
from ._go import (
    GoError,
    go_quote,
    go_time,
    parse_keep_alive,
    utc_now,
)
from ._models import LibraryModel
from ._names import (
    SOURCE_CLOUD,
    ModelRef,
    NameError_,
    parse_and_validate,
    parse_normalize_pull,
    plain_name,
)
from ._server import ClientGone, Exchange, HttpError, Routes, StreamCut
from ._state import OOM_MESSAGES, Installed, LoadError, PullFailed, PullSettings, Runner, State

Responder = Callable[[str, str], str]
"""(model display name, prompt or last user message) → reply text."""


def default_responder(model: str, prompt: str) -> str:
    return f"{model} heard: {prompt}"


def embedding_vector(text: str, dimensions: int, *, normalise: bool = True) -> list[float]:
    """A deterministic pseudo-embedding of ``text``; unit length when ``normalise``."""
    values: list[float] = []
    block = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(f"{block}:{text}".encode()).digest()
        values.extend((byte - 127.5) / 127.5 for byte in digest)
        block += 1
    values = values[:dimensions]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values] if normalise else values


def _ref(raw: str, fallback: HttpError, *, pull: bool = False) -> ModelRef:
    """The request's model parsed as the endpoint parses it; a failure answers as
    server/routes.go ``writeModelRefParseError`` does (``fallback`` for a missing name)."""
    try:
        return (parse_normalize_pull if pull else parse_and_validate)(raw)
    except NameError_ as exc:
        if exc.kind == "required":
            raise fallback from None
        raise HttpError(400, str(exc)) from None


def _offline_cloud(path: str) -> HttpError:
    """A ``:cloud`` model is proxied to ollama.com (server/cloud_proxy.go ``proxyCloudRequestWithPath``);
    the double has no network, so it answers as Ollama does when that request cannot be made."""
    return HttpError(502, f'Post "https://ollama.com:443{path}": dial tcp: lookup ollama.com: no such host')


class Api:
    """Endpoint handlers over one ``State``; settings are plain attributes, changeable at any time."""

    def __init__(self, state: State, faults: Faults, *, version: str, responder: Responder | None) -> None:
        self.state = state
        self.faults = faults
        self.version = version
        self.responder: Responder = responder or default_responder
        self.pull_chunks = 4
        self.pull_delay_s = 0.0
        self.token_delay_s = 0.0
        self.load_delay_s = 0.0
        self.verify_delay_s = 0.0
        self.memory_bandwidth_gbps = 100.0
        self.prompt_speedup = 20.0

    def routes(self) -> Routes:
        return {
            "/": {"GET": self.root, "HEAD": self.root},
            "/api/version": {"GET": self.get_version, "HEAD": self.get_version},
            "/api/tags": {"GET": self.tags, "HEAD": self.tags},
            "/api/ps": {"GET": self.ps},
            "/api/show": {"POST": self.show},
            "/api/pull": {"POST": self.pull},
            "/api/delete": {"DELETE": self.delete},
            "/api/copy": {"POST": self.copy},
            "/api/generate": {"POST": self.generate},
            "/api/chat": {"POST": self.chat},
            "/api/embed": {"POST": self.embed},
            "/api/embeddings": {"POST": self.embeddings},
        }

    # -- simple reads -----------------------------------------------------------------------------

    def root(self, ex: Exchange) -> None:
        ex.text(200, "Ollama is running", "text/plain; charset=utf-8")

    def get_version(self, ex: Exchange) -> None:
        ex.json(200, {"version": self.version})

    def tags(self, ex: Exchange) -> None:
        ex.json(200, {"models": [m | self.faults.model_fields for m in self.state.tags()]})

    def ps(self, ex: Exchange) -> None:
        ex.json(200, {"models": [m | self.faults.model_fields for m in self.state.ps()]})

    def _lookup(self, ref: ModelRef) -> Installed | None:
        return self.state.find_key(self.state.existing_name(ref.name).fold())

    def show(self, ex: Exchange) -> None:
        """server/routes.go ``ShowHandler``."""
        body = ex.body("ShowRequest", SHOW)
        raw = body.get("model") or body.get("name") or ""
        if not raw:
            raise HttpError(400, "model is required")
        ref = _ref(raw, HttpError(400, "model is required"))
        if ref.source == SOURCE_CLOUD:
            raise _offline_cloud(ex.path)
        name = self.state.existing_name(ref.name)
        installed = self.state.find_key(name.fold())
        if installed is None:
            # The 404 names the model as looked up: trimmed, marker off, stored spelling per part.
            raise HttpError(404, f"model '{name.display_shortest()}' not found")
        doc = installed.model.show(
            verbose=bool(body.get("verbose")), modified_at=go_time(installed.modified_at)
        )
        ex.json(200, doc)

    # -- model files ------------------------------------------------------------------------------

    def delete(self, ex: Exchange) -> None:
        """server/routes.go ``DeleteHandler``: the raw name in its messages; a cloud marker means its stub."""
        body = ex.body("DeleteRequest", DELETE)
        raw = body.get("model") or body.get("name") or ""
        try:
            ref = parse_normalize_pull(raw)
        except NameError_ as exc:
            invalid = exc.kind == "unqualified"
            raise HttpError(400, f"name {go_quote(raw)} is invalid" if invalid else str(exc)) from None
        installed = self._lookup(ref)
        if installed is None or not self.state.uninstall(installed.model.key):
            raise HttpError(404, f"model '{raw}' not found")
        ex.empty(200)

    def copy(self, ex: Exchange) -> None:
        """server/routes.go ``CopyHandler``: plain ``ParseName``, no trimming and no markers."""
        body = ex.body("CopyRequest", COPY)
        source, destination = body.get("source") or "", body.get("destination") or ""
        for role, value in (("source", source), ("destination", destination)):
            if plain_name(value) is None:
                raise HttpError(400, f"{role} {go_quote(value)} is invalid")
        installed = self.state.find(source)
        if installed is None:
            raise HttpError(404, f"model {go_quote(source)} not found")
        self.state.copy(installed, destination)
        ex.empty(200)

    def pull(self, ex: Exchange) -> None:
        """server/routes.go ``PullHandler``: markers normalised (``:cloud`` pulls the stub)."""
        body = ex.body("PullRequest", PULL)
        raw = body.get("model") or body.get("name") or ""
        ref = _ref(raw, HttpError(400, "invalid model name"), pull=True)
        name = self.state.existing_name(ref.name)
        settings = PullSettings(
            self.pull_chunks,
            self.pull_delay_s,
            self.faults.pull_error,
            verify_delay_s=self.verify_delay_s,
            missing_blob=self.faults.missing_blob,
        )
        cut_after = self.faults.cut_pull_after
        written = 0

        def counted() -> None:
            nonlocal written
            written += 1
            if cut_after is not None and written >= cut_after:
                raise StreamCut()

        if cut_after == 0:
            raise StreamCut()
        if body.get("stream") is False:
            try:
                self.state.pull(name, lambda _line: counted(), settings)
            except PullFailed as exc:
                raise HttpError(500, str(exc)) from None
            ex.json(200, {"status": "success"})
            return
        stream = ex.stream()
        malformed = self.faults.malformed_text()

        def emit(line: dict[str, Any]) -> None:
            stream.line(line)
            if written == 0 and malformed is not None:
                stream.raw(malformed.encode() + b"\n")
            counted()

        try:
            self.state.pull(name, emit, settings)
        except PullFailed as exc:
            stream.line({"error": str(exc)})
        stream.end()

    # -- running models ---------------------------------------------------------------------------

    def _keep_alive(self, body: dict[str, Any]) -> int | None:
        try:
            return parse_keep_alive(body.get("keep_alive"))
        except GoError as exc:
            raise HttpError(400, str(exc)) from None

    def _load(
        self, ex: Exchange, model: LibraryModel, keep_alive: int | None, body: dict[str, Any]
    ) -> tuple[Runner, int]:
        """Load through the scheduler; returns the runner and the load time in ns.

        A cold load takes ``load_delay_s`` and sends nothing meanwhile; a client that hangs up during it
        aborts the load (the runner is gone, what was evicted for it stays evicted; Ollama logs 499).
        """
        message = self.faults.take_fail_next_load()
        if message:
            raise HttpError(500, message)
        options = body.get("options") or {}
        num_ctx = options.get("num_ctx")
        started = time.perf_counter_ns()
        oom = self.faults.take_oom_next_load(OOM_MESSAGES[0])
        try:
            runner, cold = self.state.load(
                model, keep_alive, num_ctx if isinstance(num_ctx, int) else None, oom=oom
            )
        except LoadError as exc:
            raise HttpError(exc.status, exc.message) from None
        if cold and self.load_delay_s > 0 and not ex.wait_connected(self.load_delay_s, self.state.closing):
            self.state.abort(runner)
            raise ClientGone("client connection closed before llama-server finished loading, aborting load")
        self.state.loaded(runner)
        return runner, max(1, time.perf_counter_ns() - started)

    def _check_capabilities(
        self, ref: ModelRef, model: LibraryModel, body: dict[str, Any], chat: bool
    ) -> None:
        """server/routes.go ``GenerateHandler``/``ChatHandler``: the raw name for completion and thinking,
        the model's full name for the rest (server/images.go ``CheckCapabilities``)."""
        caps, raw = model.capabilities, ref.original
        if "completion" not in caps:
            raise HttpError(400, f"{go_quote(raw)} does not support {'chat' if chat else 'generate'}")
        if chat and body.get("tools") and "tools" not in caps:
            name = self.state.existing_name(ref.name)
            full = f"{name.host}/{name.namespace}/{name.model}:{name.tag}"
            raise HttpError(400, f"{full} does not support tools")
        if body.get("think") not in (None, False, "") and "thinking" not in caps:
            raise HttpError(400, f"{go_quote(raw)} does not support thinking")

    def generate(self, ex: Exchange) -> None:
        self._complete(ex, chat=False)

    def chat(self, ex: Exchange) -> None:
        self._complete(ex, chat=True)

    def _complete(self, ex: Exchange, *, chat: bool) -> None:
        started = time.perf_counter_ns()
        body = ex.body("ChatRequest" if chat else "GenerateRequest", CHAT if chat else GENERATE)
        keep_alive = self._keep_alive(body)
        if (
            not chat
            and body.get("raw")
            and (body.get("template") or body.get("system") or body.get("context"))
        ):
            raise HttpError(400, "raw mode does not support template, system, or context")
        top = body.get("top_logprobs")
        if top is not None and not 0 <= top <= 20:
            raise HttpError(400, "top_logprobs must be between 0 and 20")
        raw = body.get("model") or ""
        missing = HttpError(404, f"model '{raw}' not found")
        ref = _ref(raw, HttpError(400, "model is required") if chat else missing)
        if ref.source == SOURCE_CLOUD:
            raise _offline_cloud(ex.path)
        installed = self._lookup(ref)
        if installed is None:
            raise missing
        model = installed.model
        messages = body.get("messages") or []
        empty = not messages if chat else not body.get("prompt")
        if empty and keep_alive == 0:
            self.state.unload(model)
            ex.json(200, self._done(raw, chat, "unload"))
            return
        self._check_capabilities(ref, model, body, chat)
        runner, load_ns = self._load(ex, model, keep_alive, body)
        try:
            if empty:
                ex.json(200, self._done(raw, chat, "load"))
            else:
                self._reply(ex, raw, model, body, chat, started, load_ns)
        finally:
            self.state.finish(runner, keep_alive)

    def _done(self, raw: str, chat: bool, reason: str) -> dict[str, Any]:
        out: dict[str, Any] = {"model": raw, "created_at": go_time(utc_now())}
        if chat:
            out["message"] = {"role": "assistant", "content": ""}
        else:
            out["response"] = ""
        return out | {"done": True, "done_reason": reason}

    def _chunk(self, raw: str, chat: bool, text: str, done: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"model": raw, "created_at": go_time(utc_now())}
        if chat:
            out["message"] = {"role": "assistant", "content": text}
        else:
            out["response"] = text
        out["done"] = done
        return out

    def _reply(
        self,
        ex: Exchange,
        raw: str,
        model: LibraryModel,
        body: dict[str, Any],
        chat: bool,
        started: int,
        load_ns: int,
    ) -> None:
        if chat:
            messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
            prompt_text = " ".join(str(m.get("content") or "") for m in messages)
            users = [str(m.get("content") or "") for m in messages if m.get("role") == "user"]
            question = users[-1] if users else prompt_text
        else:
            prompt_text = question = str(body.get("prompt") or "")
        tokens = re.findall(r"\S+\s*", self.responder(model.name, question)) or [""]
        reason = "stop"
        limit = (body.get("options") or {}).get("num_predict")
        if isinstance(limit, int) and 0 <= limit < len(tokens):
            tokens, reason = tokens[:limit], "length"
        prompt_count = max(1, len(prompt_text.split()))
        stream = ex.stream() if body.get("stream") is not False else None
        if stream is not None:
            for token in tokens:
                stream.line(self._chunk(raw, chat, token, False))
                if self.token_delay_s > 0:
                    self.state.closing.wait(self.token_delay_s)
        final = self._chunk(raw, chat, "" if stream else "".join(tokens), True)
        final["done_reason"] = reason
        if not chat:
            final["context"] = list(range(1, prompt_count + len(tokens) + 1))
        final |= self._metrics(started, load_ns, prompt_count, len(tokens), model)
        if stream is not None:
            stream.line(final)
            stream.end()
        else:
            ex.json(200, final)

    def generation_rate(self, model: LibraryModel) -> float:
        """Tokens per second the double reports for ``model``: each token reads its weights (the file
        without a separate projector) once at ``memory_bandwidth_gbps``, so larger models are slower."""
        return self.memory_bandwidth_gbps * 1e9 / max(1, model.size - model.projector_bytes)

    def _metrics(
        self, started: int, load_ns: int, prompt_count: int, eval_count: int, model: LibraryModel
    ) -> dict[str, int]:
        """Ollama's six timing fields (ns and token counts): generation at ``generation_rate``, the prompt
        ``prompt_speedup`` times faster (it is evaluated in batches), the load as it happened."""
        rate = self.generation_rate(model)
        eval_ns = max(1, round(eval_count / rate * 1e9))
        prompt_ns = max(1, round(prompt_count / (rate * self.prompt_speedup) * 1e9))
        elapsed = time.perf_counter_ns() - started
        return {
            "total_duration": max(elapsed, load_ns) + prompt_ns + eval_ns,
            "load_duration": load_ns,
            "prompt_eval_count": prompt_count,
            "prompt_eval_duration": prompt_ns,
            "eval_count": eval_count,
            "eval_duration": eval_ns,
        }

    # -- embeddings -------------------------------------------------------------------------------

    def _embedding_model(self, ex: Exchange, raw: str, fallback: HttpError) -> LibraryModel:
        """server/routes.go ``EmbedHandler``: a missing model is handleScheduleError's 404."""
        ref = _ref(raw, fallback)
        if ref.source == SOURCE_CLOUD:
            raise _offline_cloud(ex.path)
        installed = self._lookup(ref)
        if installed is None:
            raise HttpError(404, f"model {go_quote(raw)} not found, try pulling it first")
        return installed.model

    def embed(self, ex: Exchange) -> None:
        """``/api/embed``: no capability check, so it loads any model; no input is a load."""
        started = time.perf_counter_ns()
        body = ex.body("EmbedRequest", EMBED)
        keep_alive = self._keep_alive(body)
        raw = body.get("model") or ""
        missing = HttpError(404, f"model '{raw}' not found")
        if _ref(raw, missing).source == SOURCE_CLOUD:  # the name is checked before the input
            raise _offline_cloud(ex.path)
        value = body.get("input")
        if isinstance(value, str):
            inputs = [value] if value else []
        elif value is None:
            inputs = []
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            inputs = list(value)
        else:
            raise HttpError(400, "invalid input type")
        model = self._embedding_model(ex, raw, missing)
        runner, load_ns = self._load(ex, model, keep_alive, body)
        try:
            if not inputs:
                ex.json(200, {"model": raw, "embeddings": []})
                return
            dimensions = body.get("dimensions") or model.embedding_length
            dimensions = max(1, min(int(dimensions), model.embedding_length))
            vectors = [embedding_vector(text, dimensions) for text in inputs]
            ex.json(
                200,
                {
                    "model": raw,
                    "embeddings": vectors,
                    "total_duration": max(1, time.perf_counter_ns() - started),
                    "load_duration": load_ns,
                    "prompt_eval_count": sum(max(1, len(t.split())) for t in inputs),
                },
            )
        finally:
            self.state.finish(runner, keep_alive)

    def embeddings(self, ex: Exchange) -> None:
        body = ex.body("EmbeddingsRequest", EMBEDDINGS)
        keep_alive = self._keep_alive(body)
        model = self._embedding_model(ex, body.get("model") or "", HttpError(400, "model is required"))
        runner, _ = self._load(ex, model, keep_alive, body)
        try:
            prompt = body.get("prompt") or ""
            vector = embedding_vector(prompt, model.embedding_length, normalise=False) if prompt else []
            ex.json(200, {"embedding": vector})
        finally:
            self.state.finish(runner, keep_alive)
