"""The error table: one ``ErrorKind`` row per failure (text, cause, solution, REST status, CLI exit code)."""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class ErrorKind:
    """One row of the error table. ``code`` is the REST API's ``error`` field (several rows may share
    one, as the name and document rows share ``invalid_request``)."""

    key: str
    text: str
    cause: str
    solution: str
    http_status: int
    exit_code: int = EXIT_FAILED
    code: str = ""

    @property
    def public_code(self) -> str:
        return self.code or self.key


_ROWS = (
    # The quick reference's own table.
    ErrorKind("model_not_found", "Model not found", "Invalid model name", "Check catalog", 404),
    ErrorKind("model_not_installed", "Model not installed", "Not downloaded", "Download first", 409),
    ErrorKind("insufficient_vram", "Insufficient VRAM", "Model too large", "Use smaller model", 409),
    ErrorKind("download_failed", "Download failed", "Network/Ollama error", "Retry or check Ollama", 502),
    ErrorKind("cannot_delete_current", "Cannot delete current", "Deleting active model", "Switch first", 409),
    # Ollama and the store.
    ErrorKind(
        "ollama_unavailable",
        "Ollama unreachable",
        "Ollama is not running or OLLAMA_HOST points elsewhere",
        "Start Ollama (`ollama serve`) or set OLLAMA_HOST to where it listens",
        503,
    ),
    ErrorKind(
        "ollama_error", "Ollama error", "Ollama refused the request", "Check the Ollama server log", 502
    ),
    ErrorKind(
        "load_timed_out",
        "Load timed out",
        "Ollama did not finish loading the model within MODEL_MANAGER_LOAD_TIMEOUT",
        "Raise MODEL_MANAGER_LOAD_TIMEOUT for large models or slow disks, and check the Ollama server log",
        504,
    ),
    ErrorKind(
        "store_error",
        "Store error",
        "The metadata store failed",
        "Check MODEL_MANAGER_HOME, or the database server MODEL_MANAGER_DATABASE_URL names",
        500,
    ),
    ErrorKind(
        "file_error",
        "File error",
        "A file could not be read or written",
        "Check the path and its permissions",
        500,
    ),
    ErrorKind(
        "switch_in_progress",
        "Another switch is in progress",
        "Switches and deletes run one at a time, and another one holds the turn",
        "Retry when it has finished",
        409,
    ),
    # Bad input.
    ErrorKind(
        "invalid_request", "Invalid request", "Bad input", "Correct the request and retry", 422, EXIT_USAGE
    ),
    ErrorKind(
        "invalid_model_name",
        "Invalid model name",
        "The name breaks Ollama's naming rules",
        "Use [host/][namespace/]model[:tag] with letters, digits, '_', '-' and '.'",
        422,
        EXIT_USAGE,
        code="invalid_request",
    ),
    ErrorKind(
        "invalid_document",
        "Invalid request",
        "The document does not validate",
        "Correct the request and retry",
        422,
        EXIT_FAILED,
        code="invalid_request",
    ),
    ErrorKind(
        "invalid_setting",
        "Invalid setting",
        "An environment variable or setting does not parse",
        "Correct or unset the variable named in the message",
        500,
        EXIT_USAGE,
    ),
    # The command line's own outcomes.
    ErrorKind(
        "no_recommendation",
        "No recommendation",
        "No model of that priority fits",
        "Use smaller model (or try another priority)",
        404,
    ),
    ErrorKind(
        "confirmation_required",
        "Confirmation required",
        "Nobody can be asked to confirm",
        "Pass -y to go ahead without confirmation",
        409,
        EXIT_USAGE,
    ),
    ErrorKind("cancelled", "Not confirmed", "The answer was not yes", "Answer y to go ahead", 409),
    ErrorKind(
        "interrupted",
        "Interrupted",
        "Stopped by Ctrl-C",
        "Run the command again; a pull resumes from the bytes already fetched",
        499,
        EXIT_INTERRUPTED,
    ),
    # The REST server.
    ErrorKind(
        "unsafe_bind",
        "Refusing to serve beyond this machine without a token",
        "Anyone who can reach the port could delete models",
        "Set MODEL_MANAGER_API_TOKEN (clients then send 'Authorization: Bearer <token>'), or bind 127.0.0.1",
        500,
    ),
    ErrorKind(
        "unauthorized",
        "Unauthorized",
        "The request has no valid API token",
        "Send 'Authorization: Bearer <token>' with the token in the server's MODEL_MANAGER_API_TOKEN",
        401,
    ),
    ErrorKind(
        "forbidden",
        "Forbidden",
        "The request's Host or Origin is not this server's (a web page may not drive this API)",
        "Call the API directly from this machine, or start the server with --allow-origin for that origin",
        403,
    ),
    ErrorKind("not_found", "Not found", "No such endpoint", "See /docs for the endpoints", 404),
    ErrorKind(
        "method_not_allowed", "Method not allowed", "Wrong HTTP method", "See /docs for the endpoints", 405
    ),
    ErrorKind(
        "payload_too_large", "Payload too large", "The request body is too large", "Send a smaller body", 413
    ),
    ErrorKind(
        "unsupported_media_type",
        "Unsupported media type",
        "Requests that change state must send JSON",
        "Send the body as JSON with 'Content-Type: application/json' (an empty body is allowed where no field is required)",
        415,
    ),
    ErrorKind("bad_request", "Bad request", "The request is malformed", "Correct the request", 400),
    ErrorKind(
        "internal_error",
        "Internal server error",
        "A bug or an unexpected failure",
        "Check the server log",
        500,
    ),
    # Download jobs of the REST API.
    ErrorKind(
        "job_not_found",
        "Download job not found",
        "Unknown job id",
        "List the jobs with GET /api/model/downloads",
        404,
    ),
    ErrorKind(
        "job_conflict",
        "Download job cannot be cancelled",
        "The job has ended or belongs to another process",
        "Check the job's status with GET /api/model/download/{id}",
        409,
    ),
    ErrorKind(
        "download_cancelled",
        "Download cancelled",
        "The job was cancelled",
        "Start the download again; Ollama resumes from the bytes already fetched",
        409,
    ),
    ErrorKind(
        "download_interrupted",
        "Download interrupted",
        "The server stopped while the model was being pulled",
        "Start the download again to resume it",
        503,
    ),
    # Benchmark jobs of the REST API.
    ErrorKind(
        "benchmark_job_not_found",
        "Benchmark job not found",
        "Unknown job id",
        "List the jobs with GET /api/model/benchmarks",
        404,
    ),
    ErrorKind(
        "benchmark_job_conflict",
        "Benchmark job cannot be cancelled",
        "The job has ended or belongs to another process",
        "Check the job's status with GET /api/model/benchmark/{id}",
        409,
    ),
    ErrorKind(
        "benchmark_cancelled",
        "Benchmark cancelled",
        "The job was cancelled",
        "Start the benchmark again",
        409,
    ),
    ErrorKind(
        "benchmark_interrupted",
        "Benchmark interrupted",
        "The server stopped while the model was being benchmarked",
        "Start the benchmark again",
        503,
    ),
    # Hosts of a fleet sharing the store.
    ErrorKind(
        "unknown_host",
        "Unknown host",
        "No host of that name is in the store",
        "List the hosts with `model-manager hosts list`, or add one with `model-manager hosts add NAME URL`",
        404,
    ),
    ErrorKind(
        "host_unreachable",
        "No host answered",
        "Every host asked is down or answers garbage",
        "Start Ollama on the hosts, or check their URLs with `model-manager hosts list`",
        503,
    ),
)

ERROR_TABLE: dict[str, ErrorKind] = {kind.key: kind for kind in _ROWS}


def http_status_for(code: str) -> int:
    """The HTTP status of an error code (the envelope's ``error``), 500 if unknown."""
    for kind in _ROWS:
        if kind.public_code == code:
            return kind.http_status
    return 500
