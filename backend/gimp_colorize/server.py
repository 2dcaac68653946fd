"""HTTP API v1 (docs/DESIGN.md): a thin FastAPI layer over JobManager and Engine.

Handlers only parse, validate and hand work to the job manager; every error leaves as the one JSON
envelope {"error": {"code", "message"}}. /openapi.json is public (it holds no secrets and lets clients
be generated); the interactive /docs page is off because it loads its scripts from a CDN.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import __version__, imageio
from . import options as opts
from .contract import MODES
from .options import ColorizeOptions
from .errors import BadRequest, BodyTooLarge, ColorizeError, ImageTooLarge, InvalidImage, Unauthorized, UnknownMode

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class JobParams:
    """Query parameters of POST /v1/jobs."""

    mode: str = "full"
    model: str | None = None
    temperature: float | None = None
    vibrancy: float = 1.0
    samples: int = 1
    seed: int | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None


def create_app(settings, engine, jobs) -> FastAPI:
    app = FastAPI(title="gimp-colorize", version=__version__, docs_url=None, redoc_url=None)
    _install_error_handlers(app)
    auth = Depends(_token_checker(settings))

    @app.get("/v1/health")
    def health():
        return {
            "status": "ok",
            "version": __version__,
            "providers": engine.providers(),
            "models_loaded": engine.loaded_models(),
            "models_available": len(_registry(engine).models()),
        }

    @app.get("/v1/models", dependencies=[auth])
    def models():
        registry = _registry(engine)
        registry.refresh()  # a model dropped into the user folder shows up without a restart
        return _model_listing(registry)

    @app.post("/v1/jobs", dependencies=[auth], status_code=202)
    async def submit(request: Request, params: JobParams = Depends(_job_params)):
        options = _options(engine, params)
        body = await read_body(request, settings.max_body_bytes, _expected_length(request, params, settings))
        image = await run_in_threadpool(_decode, request, body, params, settings.max_pixels)
        del body  # raw input is a view of the body; the image keeps what it needs
        view = jobs.submit(image, options)
        return {"id": view.id, "state": view.state}

    @app.get("/v1/jobs/{job_id}", dependencies=[auth])
    def job_status(job_id: str):
        return _job_json(jobs.get(job_id))

    @app.delete("/v1/jobs/{job_id}", dependencies=[auth])
    def cancel(job_id: str):
        view = jobs.cancel(job_id)
        return {"id": view.id, "state": view.state}

    @app.get("/v1/jobs/{job_id}/layers/{index}", dependencies=[auth])
    def layer(job_id: str, index: int, encoding: str = Query("raw", pattern="^(raw|png)$")):
        pixels = jobs.layer(job_id, index).pixels
        height, width = pixels.shape[:2]
        headers = {"X-Width": str(width), "X-Height": str(height), "X-Format": imageio.raw_format_for(pixels)}
        if encoding == "png":
            return Response(imageio.encode_png(pixels), media_type="image/png", headers=headers)
        return Response(imageio.encode_raw(pixels), media_type="application/octet-stream", headers=headers)

    return app


# -- authentication


def _token_checker(settings):
    from .config import ensure_token

    expected = ensure_token(settings.token_file).encode()

    def check(request: Request) -> None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise Unauthorized(
                "missing 'Authorization: Bearer <token>' header; the token is in " + str(settings.token_file)
            )
        if not hmac.compare_digest(given.strip().encode(), expected):
            raise Unauthorized("wrong token; the daemon's token is in " + str(settings.token_file))

    return check


# -- request parsing


def _job_params(
    mode: str = "full",
    model: str | None = None,
    temperature: str | None = Query(None, description=f"annealed-mean temperature, {opts.TEMPERATURE[0]}-{opts.TEMPERATURE[1]}"),
    vibrancy: str | None = Query(None, description=f"colour strength {opts.VIBRANCY[0]}-{opts.VIBRANCY[1]}, default 1"),
    samples: str | None = Query(None, description=f"diverse mode: layers, {opts.SAMPLES[0]}-{opts.SAMPLES[1]}"),
    seed: str | None = Query(None, description="diverse mode: random seed (sample i uses seed + i - 1)"),
    width: int | None = Query(None, ge=1, le=1 << 20),
    height: int | None = Query(None, ge=1, le=1 << 20),
    format: str | None = None,
) -> JobParams:
    # numbers are parsed by options.check_number, the CLI's rules, so both refuse the same values the same way
    return JobParams(
        mode, model or None,
        temperature=opts.check_number("temperature", temperature, opts.TEMPERATURE) if temperature else None,
        vibrancy=opts.check_number("vibrancy", vibrancy, opts.VIBRANCY) if vibrancy else 1.0,
        samples=opts.check_number("samples", samples, opts.SAMPLES, integer=True) if samples else 1,
        seed=opts.check_number("seed", seed, opts.SEED, integer=True) if seed else None,
        width=width, height=height, format=format,
    )


def _options(engine, params: JobParams) -> ColorizeOptions:
    if params.mode not in MODES:
        raise UnknownMode(f"unknown mode '{params.mode}'; use one of {', '.join(MODES)}")
    options = ColorizeOptions(mode=params.mode, model=params.model, temperature=params.temperature,
                              vibrancy=params.vibrancy, samples=params.samples, seed=params.seed)
    engine.resolve(options)  # bad options, unknown model, no model installed -> 4xx now
    return options


def _is_raw(request: Request) -> bool:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/octet-stream":
        return True
    if content_type in imageio.FILE_CONTENT_TYPES:
        return False
    raise InvalidImage(
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


async def read_body(request: Request, limit: int, expected: int | None) -> bytearray:
    """Read the body into one preallocated buffer, refusing it as soon as it is known to be too large."""
    declared = request.headers.get("content-length")
    declared = int(declared) if declared and declared.isdigit() else None
    if declared is not None and declared > limit:
        raise BodyTooLarge(f"the request body is {declared} bytes; the limit is {limit}")
    if expected is not None and declared is not None and declared != expected:
        raise InvalidImage(f"raw data for these width/height/format must be {expected} bytes, got {declared}")
    buffer = bytearray(declared or 0)  # one allocation, no copy when the body is complete
    filled = 0
    try:
        async for chunk in request.stream():
            end = filled + len(chunk)
            if end > limit:
                raise BodyTooLarge(f"the request body is larger than the limit of {limit} bytes")
            if end <= len(buffer):
                buffer[filled:end] = chunk
            else:  # chunked upload without Content-Length
                buffer[filled:] = chunk
            filled = end
    except ClientDisconnect:  # nobody is left to answer; not worth a traceback in the log
        raise BadRequest("the client disconnected during the upload") from None
    del buffer[filled:]
    return buffer


def _decode(request: Request, body: bytearray, params: JobParams, max_pixels: int):
    if not body:
        raise InvalidImage("the request body is empty; send the image")
    if _is_raw(request):
        return imageio.decode_raw(body, params.width, params.height, params.format)
    return imageio.decode_file(body, max_pixels)


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
        "error": _envelope(view.error) if view.error is not None else None,
        "layers": [
            {
                "index": i,
                "name": layer.name,
                "width": layer.pixels.shape[1],
                "height": layer.pixels.shape[0],
                "format": imageio.raw_format_for(layer.pixels),
            }
            for i, layer in enumerate(view.layers)
        ],
        "timings": {stage: round(seconds, 4) for stage, seconds in view.timings.items()},
        "clipped_pixels": view.clipped_pixels,
    }


def _envelope(error: ColorizeError) -> dict:
    return {"error": {"code": error.code, "message": error.message}}


def _error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ColorizeError)
    async def colorize_error(request: Request, exc: ColorizeError):
        return _error_response(exc.http_status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'request'}: {e['msg']}" for e in exc.errors())
        return _error_response(400, BadRequest.code, f"malformed parameters: {problems}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error_response(500, ColorizeError.code, "internal error; the daemon's log has the details")
