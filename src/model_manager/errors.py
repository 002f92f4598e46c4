"""The exception tree and the error table: the one place that says what each failure is called, what
the user should do about it, and how the REST API (status) and the CLI (exit code) report it.

    ModelManagerError                       base: code, message, solution, http_status, exit_code
    ├── ModelNotFoundError                  "Model not found"         → Check catalog
    ├── ModelNotInstalledError              "Model not installed"     → Download first
    ├── InsufficientVramError               "Insufficient VRAM"       → Use smaller model
    ├── DownloadFailedError                 "Download failed"         → Retry or check Ollama
    ├── CannotDeleteCurrentError            "Cannot delete current"   → Switch first
    ├── OllamaUnavailableError              "Ollama unreachable"      → start Ollama / set OLLAMA_HOST
    ├── OllamaError                         any other failure Ollama reported
    ├── LoadTimedOutError                   "Load timed out": a load said nothing past the load timeout
    ├── InvalidRequestError                 bad input (422; CLI exit 2)
    │   ├── InvalidModelNameError           "Invalid model name"
    │   ├── InvalidDocumentError            an import document or catalog file that does not validate
    │   └── InvalidSettingError             an environment variable or setting that does not parse
    ├── FileAccessError                     an export/import file could not be written or read
    ├── StoreError                          the metadata store could not be read or written
    ├── SwitchInProgressError               another switch or delete holds the turn (409)
    ├── NoRecommendationError               nothing of the priority fits (CLI only; the API answers null)
    ├── ConfirmationRequiredError           a destructive command without a terminal to ask on
    ├── NotConfirmedError                   the user answered no
    ├── OperationInterruptedError           Ctrl-C
    ├── UnsafeBindError                     serving beyond loopback without a token
    ├── JobNotFoundError, JobConflictError, DownloadCancelledError, DownloadInterruptedError
    ├── BenchmarkJobNotFoundError, BenchmarkJobConflictError, BenchmarkCancelledError, BenchmarkInterruptedError
    ├── UnknownHostError, HostUnreachableError    hosts of a fleet
    └── ApiError                            the HTTP layer's own refusals
        ├── UnauthorizedError (401), ForbiddenError (403), EndpointNotFoundError (404),
        ├── MethodNotAllowedError (405), PayloadTooLargeError (413), UnsupportedMediaTypeError (415)
        └── BadRequestError (400), InternalError (500)

The first five rows are the quick reference's "Error Codes" table, word for word; messages start with its
error text (``Model not installed: llama3.1:8b-instruct``) so callers may match on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

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


class ModelManagerError(Exception):
    """Base of every error this package raises on purpose."""

    kind_key: ClassVar[str] = "invalid_request"

    def __init__(self, detail: str = "", **fields: Any) -> None:
        self.detail = detail
        self.fields = fields
        super().__init__(self.message)

    @property
    def kind(self) -> ErrorKind:
        return ERROR_TABLE[self.kind_key]

    @property
    def code(self) -> str:
        """Stable machine-readable code (the REST API's ``error`` field)."""
        return self.kind.public_code

    @property
    def message(self) -> str:
        return f"{self.kind.text}: {self.detail}" if self.detail else self.kind.text

    @property
    def solution(self) -> str:
        return self.kind.solution

    @property
    def http_status(self) -> int:
        return self.kind.http_status

    @property
    def exit_code(self) -> int:
        return self.kind.exit_code

    def to_dict(self) -> dict[str, Any]:
        """The error envelope of the REST API and the CLI's ``--json`` (without ``success``)."""
        return {"error": self.code, "message": self.message, "solution": self.solution}


class ModelNotFoundError(ModelManagerError):
    """The name is neither in the catalog nor known to Ollama (or Ollama's registry)."""

    kind_key = "model_not_found"


class ModelNotInstalledError(ModelManagerError):
    """The model is known but Ollama does not have it on disk."""

    kind_key = "model_not_installed"


class InsufficientVramError(ModelManagerError):
    """The model needs more memory than is available."""

    kind_key = "insufficient_vram"


class DownloadFailedError(ModelManagerError):
    """A pull failed: network, registry or Ollama error; its text is kept in the message."""

    kind_key = "download_failed"


class CannotDeleteCurrentError(ModelManagerError):
    """Deleting the model that is currently selected."""

    kind_key = "cannot_delete_current"


class OllamaUnavailableError(ModelManagerError):
    """Ollama did not answer (refused, unreachable, or silent past the timeout)."""

    kind_key = "ollama_unavailable"


class OllamaError(ModelManagerError):
    """Ollama answered with an error this package has no more specific class for."""

    kind_key = "ollama_error"


class LoadTimedOutError(ModelManagerError):
    """A model load sent no answer within the load timeout (Ollama aborts a load whose client hangs up)."""

    kind_key = "load_timed_out"


class InvalidRequestError(ModelManagerError):
    """Bad input from the caller; nothing was changed."""

    kind_key = "invalid_request"


class InvalidModelNameError(InvalidRequestError):
    """The model name breaks Ollama's naming rules."""

    kind_key = "invalid_model_name"


class InvalidDocumentError(InvalidRequestError):
    """An import document or catalog file failed validation; ``detail`` says what and where."""

    kind_key = "invalid_document"


class InvalidSettingError(InvalidRequestError):
    """An environment variable or setting does not parse; the message names it."""

    kind_key = "invalid_setting"


class FileAccessError(ModelManagerError):
    """An export or import file could not be written or read (the REST API never takes paths)."""

    kind_key = "file_error"


class StoreError(ModelManagerError):
    """The metadata store could not be opened, migrated, read or written."""

    kind_key = "store_error"


class SwitchInProgressError(ModelManagerError):
    """Another switch or delete (this process or another sharing the store) is running; the message says
    who holds the turn and how long this call waited."""

    kind_key = "switch_in_progress"


class NoRecommendationError(ModelManagerError):
    """No model of the priority fits (the CLI's answer; the APIs answer None / null)."""

    kind_key = "no_recommendation"


class ConfirmationRequiredError(ModelManagerError):
    """A destructive command was asked to run where nobody can confirm it."""

    kind_key = "confirmation_required"


class NotConfirmedError(ModelManagerError):
    """The user did not confirm a destructive command."""

    kind_key = "cancelled"


class OperationInterruptedError(ModelManagerError):
    """The user interrupted the command (Ctrl-C)."""

    kind_key = "interrupted"


class UnsafeBindError(ModelManagerError):
    """Serving the API beyond loopback without an API token."""

    kind_key = "unsafe_bind"


class JobNotFoundError(ModelManagerError):
    """No download job has this id."""

    kind_key = "job_not_found"


class JobConflictError(ModelManagerError):
    """The job cannot be cancelled: it has ended, or another server process runs it."""

    kind_key = "job_conflict"


class DownloadCancelledError(ModelManagerError):
    """The download job was cancelled."""

    kind_key = "download_cancelled"


class DownloadInterruptedError(ModelManagerError):
    """The server stopped while the job was pulling."""

    kind_key = "download_interrupted"


class BenchmarkJobNotFoundError(ModelManagerError):
    """No benchmark job has this id."""

    kind_key = "benchmark_job_not_found"


class BenchmarkJobConflictError(ModelManagerError):
    """The benchmark job cannot be cancelled: it has ended, or another server process runs it."""

    kind_key = "benchmark_job_conflict"


class BenchmarkCancelledError(ModelManagerError):
    """The benchmark job was cancelled."""

    kind_key = "benchmark_cancelled"


class BenchmarkInterruptedError(ModelManagerError):
    """The server stopped while the job was benchmarking."""

    kind_key = "benchmark_interrupted"


class UnknownHostError(ModelManagerError):
    """``--host`` or ``host`` names a host that is not in the store."""

    kind_key = "unknown_host"


class HostUnreachableError(ModelManagerError):
    """A fleet-wide operation found no host that answers; the message names each host and why."""

    kind_key = "host_unreachable"


class ApiError(ModelManagerError):
    """A refusal of the HTTP layer, with the response headers it needs (``WWW-Authenticate``, ``Allow``)."""

    def __init__(self, detail: str = "", headers: Mapping[str, str] | None = None) -> None:
        self.headers = dict(headers or {})
        super().__init__(detail)


class UnauthorizedError(ApiError):
    kind_key = "unauthorized"


class ForbiddenError(ApiError):
    kind_key = "forbidden"


class EndpointNotFoundError(ApiError):
    kind_key = "not_found"


class MethodNotAllowedError(ApiError):
    kind_key = "method_not_allowed"


class PayloadTooLargeError(ApiError):
    kind_key = "payload_too_large"


class UnsupportedMediaTypeError(ApiError):
    kind_key = "unsupported_media_type"


class BadRequestError(ApiError):
    kind_key = "bad_request"


class InternalError(ApiError):
    kind_key = "internal_error"
