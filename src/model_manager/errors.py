"""The exception tree and the error table: the one place that says what each failure is called,
what the user should do about it, and how the REST API and CLI report it.

    ModelManagerError                       base: code, message, solution, http_status
    ├── ModelNotFoundError                  "Model not found"         → Check catalog
    ├── ModelNotInstalledError              "Model not installed"     → Download first
    ├── InsufficientVramError               "Insufficient VRAM"       → Use smaller model
    ├── DownloadFailedError                 "Download failed"         → Retry or check Ollama
    ├── CannotDeleteCurrentError            "Cannot delete current"   → Switch first
    ├── OllamaUnavailableError              "Ollama unreachable"      → start Ollama / set OLLAMA_HOST
    ├── OllamaError                         any other failure Ollama reported
    ├── InvalidRequestError                 bad input (422)
    │   ├── InvalidModelNameError           "Invalid model name"
    │   └── InvalidDocumentError            an import document that does not validate
    ├── FileAccessError                     an export/import file could not be written or read
    └── StoreError                          the metadata store could not be read or written

The first five rows are the seed's "Error Codes" table, word for word; messages start with the seed's
error text (``Model not installed: llama3.1:8b-instruct``) so callers may match on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class ErrorKind:
    """One row of the error table."""

    code: str
    text: str
    cause: str
    solution: str
    http_status: int


ERROR_TABLE: dict[str, ErrorKind] = {
    kind.code: kind
    for kind in (
        ErrorKind("model_not_found", "Model not found", "Invalid model name", "Check catalog", 404),
        ErrorKind("model_not_installed", "Model not installed", "Not downloaded", "Download first", 409),
        ErrorKind("insufficient_vram", "Insufficient VRAM", "Model too large", "Use smaller model", 409),
        ErrorKind("download_failed", "Download failed", "Network/Ollama error", "Retry or check Ollama", 502),
        ErrorKind(
            "cannot_delete_current", "Cannot delete current", "Deleting active model", "Switch first", 409
        ),
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
        ErrorKind("invalid_request", "Invalid request", "Bad input", "Correct the request and retry", 422),
        ErrorKind(
            "invalid_model_name",
            "Invalid model name",
            "The name breaks Ollama's naming rules",
            "Use [host/][namespace/]model[:tag] with letters, digits, '_', '-' and '.'",
            422,
        ),
        ErrorKind(
            "file_error",
            "File error",
            "A file could not be read or written",
            "Check the path and its permissions",
            500,
        ),
        ErrorKind("store_error", "Store error", "The metadata store failed", "Check MODEL_MANAGER_HOME", 500),
        # The REST layer itself: authentication, routing, bodies.
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
            "method_not_allowed",
            "Method not allowed",
            "Wrong HTTP method",
            "See /docs for the endpoints",
            405,
        ),
        ErrorKind(
            "payload_too_large",
            "Payload too large",
            "The request body is too large",
            "Send a smaller body",
            413,
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
        ErrorKind(
            "unsafe_bind",
            "Refusing to serve beyond this machine without a token",
            "Anyone who can reach the port could delete models",
            "Set MODEL_MANAGER_API_TOKEN (clients then send 'Authorization: Bearer <token>'), or bind 127.0.0.1",
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
    )
}


class ModelManagerError(Exception):
    """Base of every error this package raises on purpose."""

    kind_code: ClassVar[str] = "invalid_request"

    def __init__(self, detail: str = "", **fields: Any) -> None:
        self.detail = detail
        self.fields = fields
        super().__init__(self.message)

    @property
    def kind(self) -> ErrorKind:
        return ERROR_TABLE[self.kind_code]

    @property
    def code(self) -> str:
        """Stable machine-readable code (the REST API's ``error`` field)."""
        return self.kind.code if self.kind_code != "invalid_model_name" else "invalid_request"

    @property
    def message(self) -> str:
        return f"{self.kind.text}: {self.detail}" if self.detail else self.kind.text

    @property
    def solution(self) -> str:
        return self.kind.solution

    @property
    def http_status(self) -> int:
        return self.kind.http_status

    def to_dict(self) -> dict[str, Any]:
        """The REST API's error envelope (without ``success``)."""
        return {"error": self.code, "message": self.message, "solution": self.solution}


class ModelNotFoundError(ModelManagerError):
    """The name is neither in the catalog nor known to Ollama (or Ollama's registry)."""

    kind_code = "model_not_found"


class ModelNotInstalledError(ModelManagerError):
    """The model is known but Ollama does not have it on disk."""

    kind_code = "model_not_installed"


class InsufficientVramError(ModelManagerError):
    """The model needs more memory than is available."""

    kind_code = "insufficient_vram"


class DownloadFailedError(ModelManagerError):
    """A pull failed: network, registry or Ollama error; its text is kept in the message."""

    kind_code = "download_failed"


class CannotDeleteCurrentError(ModelManagerError):
    """Deleting the model that is currently selected."""

    kind_code = "cannot_delete_current"


class OllamaUnavailableError(ModelManagerError):
    """Ollama did not answer (refused, unreachable, or silent past the timeout)."""

    kind_code = "ollama_unavailable"


class OllamaError(ModelManagerError):
    """Ollama answered with an error this package has no more specific class for."""

    kind_code = "ollama_error"


class InvalidRequestError(ModelManagerError):
    """Bad input from the caller; nothing was changed."""

    kind_code = "invalid_request"


class InvalidModelNameError(InvalidRequestError):
    """The model name breaks Ollama's naming rules."""

    kind_code = "invalid_model_name"


class InvalidDocumentError(InvalidRequestError):
    """An import document failed validation; ``detail`` says what and where."""


class FileAccessError(ModelManagerError):
    """An export or import file could not be written or read (the REST API never takes paths)."""

    kind_code = "file_error"


class StoreError(ModelManagerError):
    """The SQLite store could not be opened, migrated, read or written."""

    kind_code = "store_error"
