"""The OpenAPI description of HTTP API v1: response models, status codes, headers, security, request body.

FastAPI derives the paths and query parameters from the routes in server.py; this module adds what it
cannot see (the raw/file request body, the bearer token, the error statuses the handlers raise, the
binary layer downloads) and removes what is not true (FastAPI's 422, which this server answers as 400).
A bounded schemathesis run (tests/test_openapi_schemathesis.py) holds the document to the server.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

SECURITY_SCHEME = "bearerToken"
BINARY = {"schema": {"type": "string", "format": "binary"}}
UPLOAD_TYPES = ("application/octet-stream", "image/png", "image/jpeg", "image/tiff")
INPUT_TYPES = UPLOAD_TYPES + ("application/json",)
LAYER_TYPES = ("application/octet-stream", "image/png")


class ErrorBody(BaseModel):
    code: str = Field(description="stable machine-readable kind, e.g. invalid_image, busy")
    message: str = Field(description="a sentence a user can act on")
    jobs_ahead: int | None = Field(None, ge=0, description="busy only: jobs running, queued or uploading")


class ErrorEnvelope(BaseModel):
    error: ErrorBody


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    pid: int = Field(description="the daemon's process id (gimp-colorize stop checks it)")
    providers: list[str]
    models_loaded: list[str]
    models_available: int = Field(ge=0)


class ModelEntry(BaseModel):
    name: str
    task: str
    version: str
    verified: bool
    default: bool
    guided_default: bool = Field(description="the model runs with hints or a reference use when they name none")
    description: str
    colour_space: str
    output_kind: str
    working_size: int
    resize: str
    default_temperature: float | None
    optional_inputs: list[str]
    noise_dim: int | None
    training_data: str
    licence: str
    provenance: str
    created: str
    sha256: str
    source: str
    file: str


class RejectedFile(BaseModel):
    file: str
    reason: str


class ModelListing(BaseModel):
    models: list[ModelEntry]
    rejected: list[RejectedFile]


JobState = Literal["queued", "running", "done", "failed", "cancelled"]


class JobRef(BaseModel):
    id: str
    state: JobState


class LayerInfo(BaseModel):
    index: int = Field(ge=0)
    name: str
    width: int = Field(ge=1)
    height: int = Field(ge=1)
    format: Literal["rgb8", "rgb16", "rgbf32"]
    group: str | None = Field(description="the layer group it belongs in (diverse samples, instance layers)")
    visible: bool
    mask: bool = Field(description="GET .../layers/{index}/mask has a gray8 layer mask (255 = visible)")
    details: dict = Field(description="e.g. {\"seed\": 7} for a diverse sample")


class InputRef(BaseModel):
    id: str = Field(description="name it in POST /v1/jobs: image=, hints=, reference=, selection= or points=")
    kind: Literal["image", "points"]
    width: int | None
    height: int | None
    points: int | None
    expires_in_s: int = Field(description="kept this long after its last use")


class JobStatus(BaseModel):
    id: str
    state: JobState
    stage: str
    progress: float = Field(ge=0, le=1)
    version: int = Field(ge=1, description="increases on every change of state, stage, progress or queue_position")
    queue_position: int = Field(ge=0, description="jobs ahead of this one; 0 once it runs or has finished")
    error: ErrorEnvelope | None
    layers: list[LayerInfo]
    timings: dict[str, float]
    clipped_pixels: int = Field(ge=0)
    model: str | None = Field(description="the model that ran (when done)")
    details: dict = Field(description="mode-specific facts of the result, e.g. the instance boxes used (when done)")


def _errors(*statuses: int) -> dict:
    descriptions = {
        400: "malformed parameters, invalid image, unknown mode, wrong raw length",
        401: "missing or wrong bearer token",
        404: "unknown model or job",
        408: "the upload stalled",
        409: "no model installed for the mode, or the job has no result (yet)",
        413: "too many pixels or too large a body",
        415: "unsupported Content-Type",
        503: "busy: the queue is full or too many uploads are in progress; retry after Retry-After seconds",
    }
    return {status: {"model": ErrorEnvelope, "description": descriptions[status]} for status in statuses}


_AUTH = {"security": [{SECURITY_SCHEME: []}]}

HEALTH = {"responses": {200: {"model": Health, "description": "the daemon answers"}}}
MODELS = {
    "responses": {200: {"model": ModelListing, "description": "installed and rejected models"}, **_errors(401)},
    "openapi_extra": _AUTH,
}
SUBMIT = {
    "responses": {202: {"model": JobRef, "description": "queued"}, **_errors(400, 401, 404, 408, 409, 413, 415, 503)},
    "openapi_extra": {
        **_AUTH,
        "requestBody": {
            "required": False,
            "description": "raw pixels (application/octet-stream with width, height and format) or a PNG, JPEG "
            "or TIFF file; no body when image= names an uploaded input",
            "content": {content_type: BINARY for content_type in UPLOAD_TYPES},
        },
    },
}
UPLOAD_INPUT = {
    "responses": {201: {"model": InputRef, "description": "stored; name it in a job"},
                  **_errors(400, 401, 408, 413, 415, 503)},
    "openapi_extra": {
        **_AUTH,
        "requestBody": {
            "required": True,
            "description": "an image like a job's body (raw pixels or a PNG, JPEG or TIFF file), or colour points as "
            'application/json [{"x", "y", "r", "g", "b", "size"}]',
            "content": {content_type: ({"schema": {"type": "array", "items": {"type": "object"}}}
                                       if content_type == "application/json" else BINARY)
                        for content_type in INPUT_TYPES},
        },
    },
}
JOB_STATUS = {
    "responses": {200: {"model": JobStatus, "description": "the job now, or after a change (long-poll)"},
                  **_errors(400, 401, 404)},
    "openapi_extra": _AUTH,
}
CANCEL = {"responses": {200: {"model": JobRef, "description": "cancelled"}, **_errors(401, 404)}, "openapi_extra": _AUTH}
LAYER = {
    "responses": {200: {"description": "the layer's pixels"}, **_errors(400, 401, 404, 409)},
    "openapi_extra": _AUTH,
}
LAYER_MASK = {
    "responses": {200: {"description": "the layer's mask, gray8 (255 = visible)"}, **_errors(400, 401, 404, 409)},
    "openapi_extra": _AUTH,
}

_RETRY_AFTER = {"description": "seconds to wait before retrying", "required": True,
                "schema": {"type": "integer", "minimum": 1}}
_LAYER_HEADERS = {
    "X-Width": {"required": True, "schema": {"type": "integer", "minimum": 1}},
    "X-Height": {"required": True, "schema": {"type": "integer", "minimum": 1}},
    "X-Format": {"required": True, "schema": {"type": "string", "enum": ["rgb8", "rgb16", "rgbf32", "gray8"]}},
}
_FORBIDDEN_HOST = {
    "description": "the Host header does not name the daemon's address (DNS rebinding protection)",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
}


def install(app) -> None:
    """Make app.openapi() return the corrected document (built once, like FastAPI's own)."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = _correct(build())
        return app.openapi_schema

    app.openapi = openapi


def _correct(doc: dict) -> dict:
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            _correct_operation(path, method, operation)
    components = doc.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SECURITY_SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "description": "the token in the daemon's token file (gimp-colorize status shows where)",
    }
    schemas = components.get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    return doc


def _correct_operation(path: str, method: str, operation: dict) -> None:
    responses = operation["responses"]
    responses.pop("422", None)  # FastAPI's validation answer; this server sends 400 with the error envelope
    responses["403"] = _FORBIDDEN_HOST
    if "503" in responses:
        responses["503"]["headers"] = {"Retry-After": _RETRY_AFTER}
    if (path.endswith("/layers/{index}") or path.endswith("/layers/{index}/mask")) and method == "get":
        responses["200"]["content"] = {content_type: BINARY for content_type in LAYER_TYPES}
        responses["200"]["headers"] = _LAYER_HEADERS
