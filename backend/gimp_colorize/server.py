"""HTTP API v1 (docs/DESIGN.md): a thin FastAPI layer over JobManager and Engine.

Handlers only parse, validate and hand work to the job manager; every error leaves as the one JSON
envelope {"error": {"code", "message"}}. /openapi.json is public (it holds no secrets and lets clients
be generated); the interactive /docs page is off because it loads its scripts from a CDN.

Whoever can open a socket to the daemon is treated as hostile until the token proves otherwise, and even
then uploads are bounded: a submission takes its place in the queue before its body is read (a full
queue answers 503 at once), the body grows as bytes arrive (never preallocated from Content-Length),
all bodies in progress share one byte budget, and a body that stalls is dropped. A Host header that does
not name the daemon's own address is refused, so a web page cannot reach it through DNS rebinding.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import threading
from dataclasses import dataclass

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from . import __version__, api_schema, imageio
from .config import resolve_host
from .inputs import InputStore
from .job_params import JobInputs, JobParams, colorize_options, input_params, job_inputs, job_params
from .options import check_fits_image, parse_points
from .errors import (
    BadRequest,
    BodyTooLarge,
    ColorizeError,
    ForbiddenHost,
    ImageTooLarge,
    InvalidImage,
    JobNotFound,
    QueueFull,
    RequestTimeout,
    Unauthorized,
    UnsupportedMediaType,
)

log = logging.getLogger(__name__)

MAX_WAIT_S = 30.0  # longest long-poll of GET /v1/jobs/{id}?wait=
MAX_JSON_BYTES = 1 << 20  # colour points uploaded as JSON


def create_app(settings, engine, jobs) -> FastAPI:
    app = FastAPI(title="gimp-colorize", version=__version__, docs_url=None, redoc_url=None)
    _install_error_handlers(app)
    if not settings.allow_remote:
        app.add_middleware(HostCheck, names=allowed_host_names(settings.host), port=settings.port)
    auth = Depends(_token_checker(settings))
    # a body the limit allows must always fit when nothing else is being uploaded
    uploads = UploadBudget(max(settings.upload_budget_bytes, settings.max_body_bytes), jobs)
    store = InputStore()

    @app.get("/v1/health", **api_schema.HEALTH)
    def health():
        return {
            "status": "ok",
            "version": __version__,
            "pid": os.getpid(),
            "providers": engine.providers(),
            "models_loaded": engine.loaded_models(),
            "models_available": len(_registry(engine).models()),
        }

    @app.get("/v1/models", dependencies=[auth], **api_schema.MODELS)
    def models():
        registry = _registry(engine)
        registry.refresh()  # a model dropped into the user folder shows up without a restart
        return _model_listing(registry)

    @app.post("/v1/inputs", dependencies=[auth], status_code=201, **api_schema.UPLOAD_INPUT)
    async def upload_input(request: Request, params: JobParams = Depends(input_params)):
        value = await _receive(request, params, settings, uploads, allow_json=True)
        item = store.add(value, getattr(value, "nbytes", 0))
        return _input_json(item, store)

    @app.post("/v1/jobs", dependencies=[auth], status_code=202, **api_schema.SUBMIT)
    async def submit(request: Request, params: JobParams = Depends(job_params), inputs: JobInputs = Depends(job_inputs)):
        options = colorize_options(params, inputs, store)
        engine.resolve(options)  # bad options, unknown model, no model installed -> 4xx before the body
        with jobs.reserve() as place:  # a full queue answers 503 before any byte of the body is read
            image = (_stored_image(request, inputs, store) if inputs.image
                     else await _receive(request, params, settings, uploads))
            check_fits_image(options, *image.shape[:2])
            view = place.submit(image, options)
        return {"id": view.id, "state": view.state}

    @app.get("/v1/jobs/{job_id}", dependencies=[auth], **api_schema.JOB_STATUS)
    async def job_status(
        job_id: str,
        wait: float | None = Query(None, gt=0, le=MAX_WAIT_S, description="long-poll: seconds to wait for a change"),
        since: int | None = Query(None, ge=0, lt=2**63, description="long-poll: the version the client has seen"),
    ):
        if wait is None or since is None:
            return _job_json(jobs.get(job_id))
        return _job_json(await wait_for_change(jobs, job_id, since, wait))

    @app.delete("/v1/jobs/{job_id}", dependencies=[auth], **api_schema.CANCEL)
    def cancel(job_id: str):
        view = jobs.cancel(job_id)
        return {"id": view.id, "state": view.state}

    @app.get("/v1/jobs/{job_id}/layers/{index}", dependencies=[auth], **api_schema.LAYER)
    def layer(job_id: str, index: int = Path(ge=0, lt=2**31), encoding: str = Query("raw", pattern="^(raw|png)$")):
        return _pixels_response(jobs.layer(job_id, index).pixels, encoding)

    @app.get("/v1/jobs/{job_id}/layers/{index}/mask", dependencies=[auth], **api_schema.LAYER_MASK)
    def layer_mask(job_id: str, index: int = Path(ge=0, lt=2**31), encoding: str = Query("raw", pattern="^(raw|png)$")):
        mask = jobs.layer(job_id, index).mask
        if mask is None:
            raise JobNotFound(f"layer {index} of job {job_id} has no mask.")
        return _pixels_response(mask, encoding)

    api_schema.install(app)
    return app


# -- Host header (DNS rebinding)


def allowed_host_names(host: str) -> frozenset[str]:
    """The names a Host header may carry: the --host value, the addresses it stands for, and "localhost".

    "localhost" cannot be a rebinding vector: browsers resolve it to loopback themselves, so a page that
    sends it is served from this machine's loopback already.
    """
    return frozenset({host.strip("[]").lower(), *resolve_host(host), "localhost"})


class HostCheck:
    """ASGI middleware: refuse any request whose Host header does not name this daemon's address and port.

    A web page can make a browser send requests to 127.0.0.1 through a DNS name it controls; the browser
    then sends that name as Host. Only loopback daemons (no --allow-remote) apply this check.
    """

    def __init__(self, app, names: frozenset[str], port: int):
        self.app = app
        self.names = names
        self.port = port

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and not self._allowed(_header(scope, b"host")):
            target = next(iter(sorted(self.names)))
            response = _error_response(
                ForbiddenHost.http_status,
                ForbiddenHost.code,
                f"This daemon only answers requests addressed to {_host_port(target, self.port)} "
                "(the Host header names another address).",
                {"Connection": "close"},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _allowed(self, value: str | None) -> bool:
        parsed = split_host_header(value or "")
        if parsed is None:
            return False
        name, port = parsed
        return name in self.names and (port is None or port == self.port)


def split_host_header(value: str) -> tuple[str, int | None] | None:
    """'Name:port' or '[v6]:port' -> (name, port or None); None when it is not a Host header value."""
    value = value.strip().lower()
    if value.startswith("["):
        name, bracket, rest = value[1:].partition("]")
        if not bracket:
            return None
    else:
        name, colon, port_text = value.partition(":")
        rest = colon + port_text
    if not name:
        return None
    if not rest:
        return name, None
    if not (rest.startswith(":") and rest[1:].isdigit()):
        return None
    return name, int(rest[1:])


def _host_port(name: str, port: int) -> str:
    return f"[{name}]:{port}" if ":" in name else f"{name}:{port}"


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


# -- authentication


def _token_checker(settings):
    from .config import ensure_token

    expected = ensure_token(settings.token_file).encode()
    # Answers to unauthenticated requests name no local path (user name, home folder): anyone may read them.
    where = "the daemon's token file ('gimp-colorize status' shows where)"

    async def check(request: Request) -> None:  # async: FastAPI would run a plain def in a worker thread
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise Unauthorized(f"Missing 'Authorization: Bearer <token>' header; the token is in {where}.")
        if not hmac.compare_digest(given.strip().encode(), expected):
            raise Unauthorized(f"Wrong token; use the one in {where}.")

    return check


# -- request parsing


def _is_raw(request: Request) -> bool:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/octet-stream":
        return True
    if content_type in imageio.FILE_CONTENT_TYPES:
        return False
    raise UnsupportedMediaType(
        f"unsupported Content-Type '{content_type}'; send application/octet-stream raw pixels "
        f"or one of {', '.join(imageio.FILE_CONTENT_TYPES)}"
    )


def _expected_length(request: Request, params: JobParams, settings) -> int | None:
    """For raw uploads the exact body length is known from the parameters: check it before reading."""
    if not _is_raw(request):
        return None
    if params.width is None or params.height is None or params.format is None:
        raise BadRequest("raw uploads need the width, height and format query parameters")
    if params.width * params.height > settings.max_pixels:
        raise ImageTooLarge(
            f"{params.width} x {params.height} is more than the limit of {settings.max_pixels / 1e6:.1f} megapixels"
        )
    return imageio.raw_byte_length(params.width, params.height, params.format)


def _body_limit(expected: int | None, settings) -> int:
    return settings.max_body_bytes if expected is None else min(expected, settings.max_body_bytes)


class UploadBudget:
    """Bytes of request bodies held in memory by all uploads in progress together."""

    def __init__(self, limit: int, jobs=None):
        self.limit = limit
        self.in_use = 0
        self._jobs = jobs
        self._lock = threading.Lock()

    def take(self, size: int) -> None:
        """Count `size` more bytes, or raise QueueFull when the budget is spent."""
        with self._lock:
            if self.in_use + size <= self.limit:
                self.in_use += size
                return
            in_use = self.in_use
        ahead, retry = (self._jobs.jobs_ahead(), self._jobs.retry_after_s()) if self._jobs is not None else (0, 1)
        raise QueueFull(
            f"the daemon is receiving other uploads ({in_use / 1e6:.0f} MB in progress); try again in a moment",
            jobs_ahead=ahead,
            retry_after_s=retry,
        )

    def give_back(self, size: int) -> None:
        with self._lock:
            self.in_use -= size


async def read_body(request: Request, limit: int, expected: int | None, budget: UploadBudget, timeout_s: float) -> bytearray:
    """Read the body into a buffer that grows as data arrives, refusing it as soon as it is known to be too large.

    The bytes read count against `budget` until the caller gives them back; on any error they are given
    back here. A body that sends nothing for `timeout_s` seconds is dropped.
    """
    declared = request.headers.get("content-length")
    declared = int(declared) if declared and declared.isdigit() else None
    if expected is not None and declared is not None and declared != expected:
        raise InvalidImage(f"raw data for these width/height/format must be {expected} bytes, got {declared}")
    if declared is not None and declared > limit:
        raise BodyTooLarge(f"the request body is {declared} bytes; the limit is {limit}")
    buffer = bytearray()
    try:
        async for chunk in _chunks(request, timeout_s):
            if len(buffer) + len(chunk) > limit:
                raise _too_long(expected, limit)
            budget.take(len(chunk))
            buffer += chunk
    except BaseException:  # cancelled or refused: these bytes are dropped with the buffer
        budget.give_back(len(buffer))
        raise
    return buffer


async def _chunks(request: Request, timeout_s: float):
    stream = request.stream().__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), timeout_s)
        except StopAsyncIteration:
            return
        except asyncio.TimeoutError:
            raise RequestTimeout(
                f"the upload stalled: nothing arrived for {timeout_s:g} s; send the whole body without pausing"
            ) from None
        except ClientDisconnect:  # nobody is left to answer; not worth a traceback in the log
            raise BadRequest("the client disconnected during the upload") from None
        if chunk:
            yield chunk


def _too_long(expected: int | None, limit: int) -> ColorizeError:
    if expected is not None and expected <= limit:
        return InvalidImage(f"raw data for these width/height/format must be {expected} bytes; more arrived")
    return BodyTooLarge(f"the request body is larger than the limit of {limit} bytes")


def _decode(request: Request, body: bytearray, params: JobParams, max_pixels: int):
    if not body:
        raise InvalidImage("the request body is empty; send the image")
    if _is_raw(request):
        return imageio.decode_raw(body, params.width, params.height, params.format)
    return imageio.decode_file(body, max_pixels)


async def _receive(request: Request, params: JobParams, settings, uploads, allow_json: bool = False):
    """The request body as a decoded image (or, for application/json inputs, colour points), within the limits."""
    if allow_json and _content_type(request) == "application/json":
        body = await read_body(request, MAX_JSON_BYTES, None, uploads, settings.body_timeout_s)
        uploads.give_back(len(body))
        return _json_points(body)
    expected = _expected_length(request, params, settings)
    body = await read_body(request, _body_limit(expected, settings), expected, uploads, settings.body_timeout_s)
    try:
        return await run_in_threadpool(_decode, request, body, params, settings.max_pixels)
    finally:
        uploads.give_back(len(body))  # from here on the job queue's (or the input store's) bounds apply


def _json_points(body: bytearray) -> tuple:
    import json

    try:
        return parse_points(json.loads(bytes(body).decode("utf-8")))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"the colour points are not valid JSON ({exc}).") from None


def _stored_image(request: Request, inputs: JobInputs, store):
    if request.headers.get("content-length", "0") not in ("", "0") or "transfer-encoding" in request.headers:
        raise BadRequest("send either the image as the body or image=<input id>, not both.")
    image = store.get(inputs.image, "image")
    if not hasattr(image, "shape"):
        raise BadRequest("the input named by image= holds colour points, not an image.")
    return image


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _input_json(item, store) -> dict:
    shape = getattr(item.value, "shape", None)
    return {"id": item.id, "kind": item.kind, "width": shape[1] if shape else None,
            "height": shape[0] if shape else None, "points": None if shape else len(item.value),
            "expires_in_s": int(store.ttl_s)}


def _pixels_response(pixels, encoding: str) -> Response:
    height, width = pixels.shape[:2]
    headers = {"X-Width": str(width), "X-Height": str(height), "X-Format": imageio.raw_format_for(pixels)}
    if encoding == "png":
        return Response(imageio.encode_png(pixels), media_type="image/png", headers=headers)
    return Response(imageio.encode_raw(pixels), media_type="application/octet-stream", headers=headers)


# -- long-poll


async def wait_for_change(jobs, job_id: str, since: int, timeout_s: float):
    """The job's view once its version exceeds `since`, or after `timeout_s`; no thread waits meanwhile."""
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()

    def wake() -> None:  # called by worker threads, under the job manager's lock
        with contextlib.suppress(RuntimeError):  # the loop is closing: nobody waits any more
            loop.call_soon_threadsafe(changed.set)

    view, unwatch = jobs.watch(job_id, since, wake)
    if unwatch is None:
        return view
    try:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout_s)
    finally:
        unwatch()
    return jobs.get(job_id)


# -- responses


def _registry(engine):
    return engine.registry


def _model_listing(registry) -> dict:
    return {
        "models": [model.to_json() for model in registry.models()],
        "rejected": [rejection.to_json() for rejection in registry.rejected()],
    }


def _job_json(view) -> dict:
    return {
        "id": view.id,
        "state": view.state,
        "stage": view.stage,
        "progress": round(view.progress, 4),
        "version": view.version,
        "queue_position": view.queue_position,
        "error": _envelope(view.error) if view.error is not None else None,
        "layers": [_layer_json(i, layer) for i, layer in enumerate(view.layers)],
        "timings": {stage: round(seconds, 4) for stage, seconds in view.timings.items()},
        "clipped_pixels": view.clipped_pixels,
        "model": view.model,
        "details": view.details,
    }


def _layer_json(index: int, layer) -> dict:
    return {
        "index": index,
        "name": layer.name,
        "width": layer.pixels.shape[1],
        "height": layer.pixels.shape[0],
        "format": imageio.raw_format_for(layer.pixels),
        "group": getattr(layer, "group", None),
        "visible": getattr(layer, "visible", True),
        "mask": getattr(layer, "mask", None) is not None,
        "details": getattr(layer, "details", None) or {},
    }


def _envelope(error: ColorizeError) -> dict:
    return {"error": {"code": error.code, "message": error.message, **error.envelope_fields()}}


def _error_response(status: int, code: str, message: str, headers: dict | None = None, **fields) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **fields}}, status_code=status, headers=headers)


def _closing(request: Request, headers: dict | None = None) -> dict:
    """An error answer to an upload may leave part of its body unread: close the connection after it."""
    headers = dict(headers or {})
    if request.method == "POST":
        headers["Connection"] = "close"
    return headers


def _methods_for_path(app: FastAPI, scope) -> list[str]:
    from starlette.routing import Match

    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches({**scope, "method": "NO-SUCH-METHOD"})  # every path match is then partial
        if match is Match.PARTIAL and getattr(route, "methods", None):
            methods |= route.methods
    return sorted(methods)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ColorizeError)
    async def colorize_error(request: Request, exc: ColorizeError):
        return _error_response(
            exc.http_status, exc.code, exc.message, _closing(request, exc.headers()), **exc.envelope_fields()
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'request'}: {e['msg']}" for e in exc.errors())
        return _error_response(400, BadRequest.code, f"malformed parameters: {problems}", _closing(request))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # Starlette names only the first route of the path; GET and DELETE share one
            headers["Allow"] = ", ".join(_methods_for_path(app, request.scope))
        return _error_response(exc.status_code, code, str(exc.detail), _closing(request, headers))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error_response(
            500, ColorizeError.code, "internal error; the daemon's log has the details", _closing(request)
        )
