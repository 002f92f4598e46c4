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

Each class names its row of ``ERROR_TABLE`` (its ``kind_key``); the rows, the exit codes and
``http_status_for`` live in ``table.py`` and are imported from here. The first five rows are the quick
reference's "Error Codes" table, word for word; messages start with its error text
(``Model not installed: llama3.1:8b-instruct``) so callers may match on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from .table import ERROR_TABLE as ERROR_TABLE
from .table import EXIT_FAILED as EXIT_FAILED
from .table import EXIT_INTERRUPTED as EXIT_INTERRUPTED
from .table import EXIT_OK as EXIT_OK
from .table import EXIT_USAGE as EXIT_USAGE
from .table import ErrorKind as ErrorKind
from .table import http_status_for as http_status_for


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
