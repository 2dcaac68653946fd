"""Chroma at the working size -> full-size RGB with the source's ORIGINAL lightness, in row chunks on threads.

Chroma is upsampled with half-pixel-centred bilinear interpolation and recombined with the full-resolution
lightness; RGB is clipped to the gamut and written in the source's dtype.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import colour

_LEVEL = 255.0  # "within 1 level" is measured on the 8-bit gray scale, whatever the input depth
# Full-resolution chunks are spread over this many threads: numpy releases the GIL in its loops, so
# the per-pixel work (a few dozen array passes) scales with cores. Each thread holds one chunk's temporaries.
PIXEL_THREADS = min(4, os.cpu_count() or 1)


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
