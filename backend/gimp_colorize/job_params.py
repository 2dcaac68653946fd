"""Query parameters of POST /v1/jobs and POST /v1/inputs, parsed into the engine's ColorizeOptions.

Numbers go through options.check_number (the CLI's rules), so both front ends refuse the same values with
the same sentence. Guidance and selections arrive as uploaded inputs named by id (inputs.py); colour
points may also come inline as JSON text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from fastapi import Query

from . import imageio
from . import options as opts
from .contract import MODES
from .errors import BadRequest, UnknownMode

ID_PATTERN = "^[A-Za-z0-9_-]{1,64}$"
NUMBER_TEXT = 32  # characters: a number written longer than this is not one
# The HTTP parser takes URLs up to 64 KiB. Every text parameter has a length limit such that all of them
# at their longest, percent-encoded at 12 bytes a character, stay under it; longer point lists are
# uploaded as a JSON input (POST /v1/inputs) and named by id.
INLINE_POINTS_TEXT = 2048
BOXES_TEXT = 1024
ID_TEXT = 64


@dataclass(frozen=True)
class JobParams:
    """What the job asks for and how its body is encoded."""

    mode: str = "full"
    model: str | None = None
    temperature: float | None = None
    vibrancy: float = 1.0
    samples: int = 1
    seed: int | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None


@dataclass(frozen=True)
class JobInputs:
    """Uploaded inputs a job names by id, and the options that go with them."""

    image: str | None = None
    hints: str | None = None
    reference: str | None = None
    points: str | None = None          # an input id, or inline JSON text
    reference_strength: float = 1.0
    boxes: str = "auto"
    user_boxes: tuple = ()
    selection: str | None = None
    score_threshold: float = opts.DEFAULT_SCORE_THRESHOLD
    max_instances: int = opts.DEFAULT_MAX_INSTANCES
    instance_layers: bool = False


def _number(name: str, text: str | None, bounds: tuple, default, integer: bool = False):
    return opts.check_number(name, text, bounds, integer) if text not in (None, "") else default


async def job_params(
    mode: str = Query("full", json_schema_extra={"enum": list(MODES)}),
    model: str | None = None,
    temperature: str | None = Query(None, max_length=NUMBER_TEXT, description=f"expert: annealed-mean temperature, {opts.TEMPERATURE[0]}-{opts.TEMPERATURE[1]}"),
    vibrancy: str | None = Query(None, max_length=NUMBER_TEXT, description=f"colour strength {opts.VIBRANCY[0]}-{opts.VIBRANCY[1]}; 1 (default) = the model's own colours"),
    samples: str | None = Query(None, max_length=NUMBER_TEXT, description=f"diverse mode: layers, {opts.SAMPLES[0]}-{opts.SAMPLES[1]}"),
    seed: str | None = Query(None, max_length=NUMBER_TEXT, description="random seed (diverse mode: sample i uses seed + i - 1)"),
    width: int | None = Query(None, ge=1, le=1 << 20),
    height: int | None = Query(None, ge=1, le=1 << 20),
    format: str | None = Query(None, json_schema_extra={"enum": list(imageio.RAW_FORMATS)}),
) -> JobParams:
    return JobParams(
        mode, model or None,
        temperature=_number("temperature", temperature, opts.TEMPERATURE, None),
        vibrancy=_number("vibrancy", vibrancy, opts.VIBRANCY, 1.0),
        samples=_number("samples", samples, opts.SAMPLES, 1, integer=True),
        seed=_number("seed", seed, opts.SEED, None, integer=True),
        width=width, height=height, format=format,
    )


async def input_params(
    width: int | None = Query(None, ge=1, le=1 << 20),
    height: int | None = Query(None, ge=1, le=1 << 20),
    format: str | None = Query(None, json_schema_extra={"enum": list(imageio.RAW_FORMATS)}),
) -> JobParams:
    """POST /v1/inputs: only how the body is encoded."""
    return JobParams(width=width, height=height, format=format)


async def job_inputs(
    image: str | None = Query(None, max_length=ID_TEXT, pattern=ID_PATTERN, description="an uploaded input to colorize (then send no body)"),
    hints: str | None = Query(None, max_length=ID_TEXT, pattern=ID_PATTERN, description="uploaded RGBA hint image of the image's size: alpha > 0 marks hints, their chroma is wanted"),
    reference: str | None = Query(None, max_length=ID_TEXT, pattern=ID_PATTERN, description="uploaded colour photo whose colours to follow"),
    points: str | None = Query(None, max_length=INLINE_POINTS_TEXT, description='colour points: an uploaded JSON input, or inline JSON [{"x","y","r","g","b","size"}]'),
    reference_strength: str | None = Query(None, max_length=NUMBER_TEXT, description="0-1, default 1"),
    boxes: str = Query("auto", json_schema_extra={"enum": list(opts.BOX_SOURCES)}, description="instance mode: where object boxes come from"),
    user_boxes: str | None = Query(None, max_length=BOXES_TEXT, description="instance mode: x,y,w,h;x,y,w,h in image pixels (boxes=selection or both)"),
    selection: str | None = Query(None, max_length=ID_TEXT, pattern=ID_PATTERN, description="instance mode: uploaded gray mask of the image's size; each region is an instance"),
    score_threshold: str | None = Query(None, max_length=NUMBER_TEXT, description=f"instance mode: detector confidence {opts.SCORE_THRESHOLD[0]}-{opts.SCORE_THRESHOLD[1]}"),
    max_instances: str | None = Query(None, max_length=NUMBER_TEXT, description=f"instance mode: at most this many objects, {opts.MAX_INSTANCES[0]}-{opts.MAX_INSTANCES[1]}"),
    instance_layers: bool = Query(False, description="instance mode: also return each object's own colorization"),
) -> JobInputs:
    return JobInputs(
        image=image, hints=hints, reference=reference, points=points or None,
        reference_strength=_number("reference_strength", reference_strength, opts.REFERENCE_STRENGTH, 1.0),
        boxes=boxes, user_boxes=opts.parse_boxes(user_boxes) if user_boxes else (), selection=selection,
        score_threshold=_number("score_threshold", score_threshold, opts.SCORE_THRESHOLD, opts.DEFAULT_SCORE_THRESHOLD),
        max_instances=_number("max_instances", max_instances, opts.MAX_INSTANCES, opts.DEFAULT_MAX_INSTANCES, integer=True),
        instance_layers=instance_layers,
    )


def colorize_options(params: JobParams, inputs: JobInputs, store) -> opts.ColorizeOptions:
    """The engine's options, with the uploaded inputs fetched from `store` (404 for an unknown or expired id)."""
    if params.mode not in MODES:
        raise UnknownMode(f"unknown mode '{params.mode}'; use one of {', '.join(MODES)}")
    guidance = opts.Guidance(
        hint_image=_rgba(store.get(inputs.hints, "hints")) if inputs.hints else None,
        points=_points(inputs.points, store) if inputs.points else (),
        reference=_colour(store.get(inputs.reference, "reference")) if inputs.reference else None,
        reference_strength=inputs.reference_strength,
    )
    instance = opts.InstanceOptions(
        boxes=inputs.boxes, user_boxes=inputs.user_boxes,
        selection=_mask(store.get(inputs.selection, "selection")) if inputs.selection else None,
        score_threshold=inputs.score_threshold, max_instances=inputs.max_instances,
        instance_layers=inputs.instance_layers,
    )
    return opts.ColorizeOptions(mode=params.mode, model=params.model, temperature=params.temperature,
                                vibrancy=params.vibrancy, samples=params.samples, seed=params.seed,
                                guidance=guidance, instance=instance)


def _points(value: str, store) -> tuple:
    if value.lstrip().startswith("["):
        try:
            return opts.parse_points(json.loads(value))
        except ValueError as exc:
            raise BadRequest(f"points is not valid JSON ({exc}).") from None
    stored = store.get(value, "points")
    if not isinstance(stored, tuple):
        raise BadRequest("the input named by points is an image; upload the points as application/json.")
    return stored


def _rgba(image) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 4:
        raise BadRequest("the hints input must be an RGBA image: its alpha marks where the hints are.")
    return image


def _colour(image) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] not in (3, 4):
        raise BadRequest("the reference must be a colour (RGB) photo.")
    return image


def _mask(image) -> np.ndarray:
    """A gray mask (gray, or gray + alpha whose gray counts) -> (H, W)."""
    if not isinstance(image, np.ndarray) or (image.ndim == 3 and image.shape[2] not in (1, 2)):
        raise BadRequest("the selection must be a gray mask (gray8, gray16 or a grayscale PNG).")
    return image if image.ndim == 2 else image[:, :, 0]
