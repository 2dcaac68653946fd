"""Typed errors raised by the library; turned into HTTP statuses or exit codes only at the edge."""


class ColorizeError(Exception):
    """Base class. `code` is a stable machine-readable kind, `http_status` the status the server maps it to."""

    code = "internal_error"
    http_status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def envelope_fields(self) -> dict:
        """Extra machine-readable fields of this error's JSON envelope, beside code and message."""
        return {}

    def headers(self) -> dict[str, str]:
        """HTTP headers the error's answer carries (e.g. Retry-After)."""
        return {}


class BadRequest(ColorizeError):
    code = "bad_request"
    http_status = 400


class InvalidImage(BadRequest):
    """Corrupt or undecodable file, wrong raw byte length, unsupported pixel format."""

    code = "invalid_image"


class UnsupportedMediaType(ColorizeError):
    """A request body whose Content-Type the route does not accept."""

    code = "unsupported_media_type"
    http_status = 415


class RequestTimeout(ColorizeError):
    """The client stopped sending the request body."""

    code = "request_timeout"
    http_status = 408


class ForbiddenHost(ColorizeError):
    """A Host header that does not name the daemon's own address (DNS rebinding protection)."""

    code = "forbidden_host"
    http_status = 403


class ImageTooLarge(ColorizeError):
    code = "image_too_large"
    http_status = 413


class BodyTooLarge(ColorizeError):
    code = "body_too_large"
    http_status = 413


class UnknownMode(BadRequest):
    code = "unknown_mode"


class Unauthorized(ColorizeError):
    code = "unauthorized"
    http_status = 401


class UnknownModel(ColorizeError):
    code = "unknown_model"
    http_status = 404


class NoModelInstalled(ColorizeError):
    """No trained model is installed for the requested mode."""

    code = "no_model_installed"
    http_status = 409


class ModelLoadError(ColorizeError):
    code = "model_load_failed"
    http_status = 500


class InvalidModel(ColorizeError):
    """A model file violates the contract (missing metadata, wrong hash, truncated...)."""

    code = "invalid_model"
    http_status = 500


class JobNotFound(ColorizeError):
    code = "job_not_found"
    http_status = 404


class JobNotFinished(ColorizeError):
    code = "job_not_finished"
    http_status = 409


class JobCancelled(ColorizeError):
    code = "job_cancelled"
    http_status = 409


class QueueFull(ColorizeError):
    """The daemon cannot take the job now; `jobs_ahead` and `retry_after_s` tell the client when to retry."""

    code = "busy"
    http_status = 503

    def __init__(self, message: str, jobs_ahead: int = 0, retry_after_s: int = 1):
        super().__init__(message)
        self.jobs_ahead = jobs_ahead
        self.retry_after_s = retry_after_s

    def envelope_fields(self) -> dict:
        return {"jobs_ahead": self.jobs_ahead}

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class RuntimeMissing(ColorizeError):
    """Neither onnxruntime nor onnxruntime-gpu is importable."""

    code = "runtime_missing"
    http_status = 500
