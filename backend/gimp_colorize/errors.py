"""Typed errors raised by the library; turned into HTTP statuses or exit codes only at the edge."""


class ColorizeError(Exception):
    """Base class. `code` is a stable machine-readable kind, `http_status` the status the server maps it to."""

    code = "internal_error"
    http_status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BadRequest(ColorizeError):
    code = "bad_request"
    http_status = 400


class InvalidImage(BadRequest):
    """Corrupt or undecodable file, wrong raw byte length, unsupported pixel format."""

    code = "invalid_image"


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
    code = "busy"
    http_status = 503


class RuntimeMissing(ColorizeError):
    """Neither onnxruntime nor onnxruntime-gpu is importable."""

    code = "runtime_missing"
    http_status = 500
