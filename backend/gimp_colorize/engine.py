"""The colorize pipeline (docs/DESIGN.md "Engine API").

image -> lightness at the model's working size -> model -> chroma (annealed mean for ab_bins) ->
bilinear upsample to full size -> recombined with the ORIGINAL full-resolution lightness -> RGB
clipped to the gamut -> the input's dtype.

Memory: the full-resolution work happens in row chunks of about colour.CHUNK_PIXELS pixels, and the
full-resolution lightness is recomputed per chunk (a table lookup for 8/16-bit gray) instead of being
kept, so besides the input and the output layers only the small working-size arrays stay alive.
"""

from __future__ import annotations

import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import numpy as np
from PIL import Image

from . import colour
from .contract import ModelInfo
from .errors import BadRequest, InvalidImage, JobCancelled, ModelLoadError
from .sessions import SessionCache

Progress = Callable[[str, float], None]
Cancelled = Callable[[], bool]

# share of the overall progress at which each stage starts
_STAGE_START = {"preprocess": 0.0, "inference": 0.1, "upsample_recombine": 0.5, "done": 1.0}
_LEVEL = 255.0  # "within 1 level" is measured on the 8-bit gray scale, whatever the input depth
_FLOAT_GRAY_TOLERANCE = 1e-6
# Full-resolution chunks are spread over this many threads: numpy releases the GIL in its loops, so
# the per-pixel work (a few dozen array passes) scales with cores. Each thread holds one chunk's temporaries.
PIXEL_THREADS = min(4, os.cpu_count() or 1)


@dataclass(frozen=True)
class ColorizeOptions:
    mode: str = "full"  # full | instance | diverse
    model: str | None = None  # None: the registry's default for the mode
    temperature: float | None = None  # None: model default (ab_bins models)
    samples: int = 1  # diverse mode: number of layers
    seed: int | None = None


@dataclass
class Layer:
    name: str
    pixels: np.ndarray  # (H, W, 3), same dtype as the input image


@dataclass
class ColorizeResult:
    layers: list[Layer]
    model: str
    mode: str
    clipped_pixels: int  # pixels whose lightness moved > 1 level because of gamut clipping
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage


class Engine:
    def __init__(self, registry, providers: list[str] | None = None, threads: int | None = None):
        self.registry = registry
        self._sessions = SessionCache(providers, threads)

    def providers(self) -> list[str]:
        return self._sessions.providers()

    def loaded_models(self) -> list[str]:
        return self._sessions.loaded()

    def colorize(self, image, options: ColorizeOptions = ColorizeOptions(), progress: Progress | None = None,
                 cancelled: Cancelled | None = None) -> ColorizeResult:
        """image: (H, W) | (H, W, 1..4) uint8/uint16/float; alpha is ignored. Raises JobCancelled when cancelled."""
        stages = _Stages(progress, cancelled)
        info = self.registry.resolve(options.mode, options.model)
        _check_options(options)
        stages.enter("preprocess")
        source = SourceImage(image)
        model_input = source.working_lightness(info)
        stages.enter("inference")
        chromas = self._predict_all(info, model_input, options, stages)
        stages.enter("upsample_recombine")
        layers, clipped = [], 0
        for number, chroma in enumerate(chromas, 1):
            pixels, moved = recombine(source, chroma, info.colour_space, stages.chunk_reporter(number, len(chromas)))
            layers.append(Layer(_layer_name(info, number, len(chromas)), pixels))
            clipped += moved
        stages.enter("done")
        return ColorizeResult(layers, info.name, options.mode, clipped, stages.timings)

    def _predict_all(self, info: ModelInfo, model_input: np.ndarray, options: ColorizeOptions, stages) -> list:
        session = self._sessions.get(info)
        temperature = options.temperature if options.temperature is not None else info.default_temperature
        count = options.samples if info.has_noise else 1
        rng = np.random.default_rng(options.seed)
        chromas = []
        for _ in range(count):
            stages.check_cancelled()
            feeds = _model_feeds(info, model_input, rng)
            chromas.append(decode_chroma(info, session.run(feeds), temperature))
        return chromas


# ---------------------------------------------------------------------------- input


class SourceImage:
    """The validated input: a gray plane or an RGB view of the caller's array (never copied whole)."""

    def __init__(self, image):
        pixels = np.asarray(image)
        if pixels.ndim == 3 and pixels.shape[2] in (1, 2):
            pixels = pixels[:, :, 0]  # gray (+ alpha)
        elif pixels.ndim == 3 and pixels.shape[2] in (3, 4):
            pixels = pixels[:, :, :3]  # RGB (+ alpha)
        elif pixels.ndim != 2:
            raise InvalidImage(f"expected an (H, W) or (H, W, 1..4) image, got shape {pixels.shape}")
        if pixels.shape[0] < 1 or pixels.shape[1] < 1:
            raise InvalidImage(f"the image is empty ({pixels.shape[1]} x {pixels.shape[0]})")
        if pixels.dtype not in (np.uint8, np.uint16, np.float16, np.float32, np.float64):
            raise InvalidImage(f"unsupported pixel type {pixels.dtype}: use 8-bit, 16-bit or float pixels")
        self.dtype = pixels.dtype
        self.height, self.width = pixels.shape[:2]
        self.step = max(1, colour.CHUNK_PIXELS // self.width)
        self.pixels = pixels
        self._check_finite()
        if pixels.ndim == 3 and self._rgb_is_gray():
            self.pixels = pixels[:, :, 0]  # RGB that is really gray: treat exactly like gray

    @property
    def is_gray(self) -> bool:
        return self.pixels.ndim == 2

    def row_chunks(self):
        for start in range(0, self.height, self.step):
            yield start, min(self.height, start + self.step)

    def lightness_rows(self, start: int, stop: int, space: str) -> np.ndarray:
        """(rows, W) float32 lightness in model units: Lab L* in [0, 100], or YUV/YCbCr luma Y in [0, 1]."""
        part = self.pixels[start:stop]
        if self.is_gray and self.dtype in (np.uint8, np.uint16):
            return _gray_table(self.dtype.str, space)[part]
        values = np.clip(colour.to_float01(part), 0.0, 1.0)
        if space == "lab":
            return colour.gray_to_lightness(values) if self.is_gray else colour.rgb_to_lightness(values)
        return values if self.is_gray else colour.rgb_to_luma(values)

    def working_lightness(self, info: ModelInfo) -> np.ndarray:
        """(1, 1, h, w) float32 model input: full-res lightness resized to the model's working shape."""
        height, width = info.working_shape(self.height, self.width)
        # separable resize: each chunk's rows shrink horizontally first (Pillow resamples width and
        # height in two passes anyway), so no full-resolution float plane is ever allocated
        narrow = np.empty((self.height, width), dtype=np.float32)

        def shrink(rows: tuple[int, int]) -> None:
            start, stop = rows
            narrow[start:stop] = _resize_plane(self.lightness_rows(start, stop, info.colour_space), width, stop - start)

        for_each_chunk(shrink, list(self.row_chunks()))
        small = _resize_plane(narrow, width, height)
        return small[None, None]

    def _check_finite(self) -> None:
        if self.dtype.kind != "f":
            return
        for start, stop in self.row_chunks():
            if not np.isfinite(self.pixels[start:stop]).all():
                raise InvalidImage("the image contains NaN or infinite values")

    def _rgb_is_gray(self) -> bool:
        for start, stop in self.row_chunks():
            part = self.pixels[start:stop]
            if self.dtype.kind == "f":
                same = (np.abs(part[..., 0] - part[..., 1]) <= _FLOAT_GRAY_TOLERANCE).all() and (
                    np.abs(part[..., 1] - part[..., 2]) <= _FLOAT_GRAY_TOLERANCE).all()
            else:
                same = (part[..., 0] == part[..., 1]).all() and (part[..., 1] == part[..., 2]).all()
            if not same:
                return False
        return True


@lru_cache(maxsize=8)
def _gray_table(dtype: str, space: str) -> np.ndarray:
    """Lightness of every 8- or 16-bit gray level: a lookup replaces per-pixel powers."""
    levels = np.arange(256 if np.dtype(dtype) == np.uint8 else 65536).astype(dtype)
    table = colour.gray_to_lightness(levels) if space == "lab" else colour.to_float01(levels)
    table.setflags(write=False)
    return table


def _resize_plane(plane: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear (antialiased when shrinking) resize of a float32 plane with Pillow's 'F' mode."""
    if plane.shape == (height, width):
        return np.ascontiguousarray(plane, dtype=np.float32)
    image = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32))
    return np.asarray(image.resize((width, height), Image.BILINEAR), dtype=np.float32)


# ---------------------------------------------------------------------------- model


def _check_options(options: ColorizeOptions) -> None:
    if not isinstance(options.samples, int) or options.samples < 1:
        raise BadRequest(f"samples must be a whole number >= 1, got {options.samples!r}")
    t = options.temperature
    if t is not None and not (isinstance(t, (int, float)) and math.isfinite(t) and t >= 0):
        raise BadRequest(f"temperature must be a number >= 0, got {t!r}")


def _model_feeds(info: ModelInfo, model_input: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The lightness input plus neutral optional inputs: no hints yet, fresh noise per sample."""
    _, _, height, width = model_input.shape
    feeds = {info.input_name: model_input}
    roles = info.optional_inputs
    if "hint_ab" in roles:
        feeds[roles["hint_ab"]] = np.zeros((1, 2, height, width), dtype=np.float32)
    if "hint_mask" in roles:
        feeds[roles["hint_mask"]] = np.zeros((1, 1, height, width), dtype=np.float32)
    if "noise" in roles:
        feeds[roles["noise"]] = rng.standard_normal((1, info.noise_dim)).astype(np.float32)
    return feeds


def decode_chroma(info: ModelInfo, output: np.ndarray, temperature: float | None) -> np.ndarray:
    """Model output (1, 2 | Q, h, w) -> chroma (2, h, w) float32 in the model's colour space units."""
    channels = 2 if info.output_kind == "ab" else len(info.ab_bins)
    if output.ndim != 4 or output.shape[0] != 1 or output.shape[1] != channels or min(output.shape[2:]) < 1:
        raise ModelLoadError(f"model '{info.name}' returned shape {tuple(output.shape)}; its contract says "
                             f"(1, {channels}, h, w) for output kind {info.output_kind}")
    if info.output_kind == "ab_bins":
        bins = np.asarray(info.ab_bins, dtype=np.float32)
        chroma = colour.annealed_mean(output[0], bins, temperature if temperature is not None else 0.38, axis=0)
    else:
        chroma = output[0].astype(np.float32, copy=False)
    return np.nan_to_num(chroma, nan=0.0, posinf=0.0, neginf=0.0)  # a broken pixel turns gray, not black


def _layer_name(info: ModelInfo, number: int, count: int) -> str:
    return f"Colorized ({info.name})" if count == 1 else f"Colorized ({info.name}) {number}/{count}"


# ---------------------------------------------------------------------------- upsample + recombine


class BilinearUpsampler:
    """Bilinear resize of (C, h, w) to (C, H, W), produced a band of output rows at a time.

    Pixel centres are aligned (half-pixel convention, like Pillow and torch's align_corners=False),
    edges are clamped. The horizontal pass is done once at (C, h, W), which is small; rows are
    interpolated on demand.
    """

    def __init__(self, chroma: np.ndarray, height: int, width: int):
        x0, x1, fx = _source_coordinates(chroma.shape[2], width)
        self._wide = chroma[:, :, x0] * (1 - fx) + chroma[:, :, x1] * fx  # (C, h, W)
        self._y0, self._y1, self._fy = _source_coordinates(chroma.shape[1], height)

    def rows(self, start: int, stop: int) -> np.ndarray:
        low = np.take(self._wide, self._y0[start:stop], axis=1)  # whole-row copies; faster than [:, index]
        high = np.take(self._wide, self._y1[start:stop], axis=1)
        high -= low  # low + (high - low) * fy, in place: this runs on every full-resolution pixel
        high *= self._fy[start:stop, None]
        low += high
        return low


def _source_coordinates(size_in: int, size_out: int):
    position = (np.arange(size_out, dtype=np.float64) + 0.5) * (size_in / size_out) - 0.5
    position = np.clip(position, 0, size_in - 1)
    low = np.floor(position).astype(np.intp)
    high = np.minimum(low + 1, size_in - 1)
    return low, high, (position - low).astype(np.float32)


def recombine(source: SourceImage, chroma: np.ndarray, space: str, report=None) -> tuple[np.ndarray, int]:
    """Full-size RGB in the source's dtype from the source's own lightness and upsampled chroma.

    Returns (pixels, moved): moved counts the pixels where gamut clipping changed the lightness by more
    than one 8-bit level. report(fraction done) is called after each chunk (and may raise JobCancelled).
    """
    upsampler = BilinearUpsampler(chroma, source.height, source.width)
    out = np.empty((source.height, source.width, 3), dtype=source.dtype)
    lock = threading.Lock()
    done = [0]

    def one_chunk(rows: tuple[int, int]) -> int:
        start, stop = rows
        lightness = source.lightness_rows(start, stop, space)
        planes, clipped = _to_rgb_planes(lightness, upsampler.rows(start, stop), space)
        for channel, plane in enumerate(planes):
            out[start:stop, :, channel] = _encode(plane, space, source.dtype)
        moved = _lightness_moved(source, start, stop, space, lightness, out[start:stop], clipped) if clipped.any() else 0
        if report is not None:
            with lock:  # chunks finish out of order: report the rows done so far, which only grows
                done[0] += stop - start
                fraction = done[0] / source.height
            report(fraction)
        return moved

    return out, sum(for_each_chunk(one_chunk, list(source.row_chunks())))


def for_each_chunk(fn, chunks: list, threads: int | None = None) -> list:
    """fn over chunks, in order, on PIXEL_THREADS threads; the first exception (e.g. JobCancelled) propagates."""
    threads = PIXEL_THREADS if threads is None else threads
    if threads <= 1 or len(chunks) < 2:
        return [fn(chunk) for chunk in chunks]
    with ThreadPoolExecutor(max_workers=min(threads, len(chunks)), thread_name_prefix="colorize") as pool:
        futures = [pool.submit(fn, chunk) for chunk in chunks]
        try:
            return [future.result() for future in futures]
        finally:
            for future in futures:  # after a failure, do not start the chunks still queued
                future.cancel()


def _to_rgb_planes(lightness: np.ndarray, chroma: np.ndarray, space: str) -> tuple[list, np.ndarray]:
    """(rows, W) lightness + (2, rows, W) chroma -> ([R, G, B] clipped to [0, 1], clipped mask).

    For lab the planes are linear light (encoded by _encode); for yuv/ycbcr they are already sRGB-encoded.
    """
    if space == "lab":
        planes = colour.lab_to_linear_planes(lightness, chroma[0], chroma[1])
    else:  # ycbcr models predict Cb - 0.5 and Cr - 0.5, the same centred chroma as U and V
        matrix = colour.YUV_TO_RGB if space == "yuv" else colour.YCBCR_TO_RGB
        planes = [colour.weighted_sum(row, (lightness, chroma[0], chroma[1])) for row in matrix]
    clipped = colour.outside_gamut(planes)
    for plane in planes:
        np.clip(plane, 0.0, 1.0, out=plane)
    return planes, clipped


def _encode(plane: np.ndarray, space: str, dtype: np.dtype) -> np.ndarray:
    if space != "lab":
        return colour.from_float01(plane, dtype)
    if dtype == np.uint8:
        return colour.linear_to_srgb8(plane)
    return colour.from_float01(colour.linear_to_srgb(plane), dtype)


def _lightness_moved(source, start, stop, space, lightness, out_rows, clipped) -> int:
    """How many clipped pixels ended more than one 8-bit level away from their input lightness."""
    wanted = lightness[clipped] if space == "lab" else source.lightness_rows(start, stop, "lab")[clipped]
    got = colour.rgb_to_lightness(out_rows[clipped])
    delta = (colour.lightness_to_gray(got) - colour.lightness_to_gray(wanted)) * _LEVEL
    return int(np.count_nonzero(np.abs(delta) > 1.0))


# ---------------------------------------------------------------------------- progress, cancel, timings


class _Stages:
    def __init__(self, progress: Progress | None, cancelled: Cancelled | None):
        self._progress = progress
        self._cancelled = cancelled
        self.timings: dict[str, float] = {}
        self._stage: str | None = None
        self._started = time.perf_counter()

    def enter(self, stage: str) -> None:
        now = time.perf_counter()
        if self._stage is not None:
            self.timings[self._stage] = now - self._started
        self._stage, self._started = stage, now
        if stage != "done":
            self.check_cancelled()
        self._report(stage, _STAGE_START[stage])

    def check_cancelled(self) -> None:
        if self._cancelled is not None and self._cancelled():
            raise JobCancelled("the job was cancelled")

    def chunk_reporter(self, number: int, count: int):
        """Progress within upsample_recombine for layer `number` of `count`; also a cancel point per chunk."""
        begin, end = _STAGE_START["upsample_recombine"], _STAGE_START["done"]
        share = (end - begin) / count

        def report(fraction: float) -> None:
            self.check_cancelled()
            self._report("upsample_recombine", begin + share * (number - 1 + fraction))

        return report

    def _report(self, stage: str, fraction: float) -> None:
        if self._progress is not None:
            self._progress(stage, min(1.0, fraction))
