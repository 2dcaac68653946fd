"""Chroma at the working size -> full-size RGB with the source's ORIGINAL lightness, in row chunks on threads.

Chroma is upsampled with half-pixel-centred bilinear interpolation and recombined with the full-resolution
lightness; RGB is clipped to the gamut and written in the source's dtype.

This is the per-pixel hot loop at full resolution (benchmarks/bench_recombine.py times it): each chunk works
in place on the arrays it owns, 8/16-bit gray sources take their lightness terms from per-level tables, and the
gamut statistic looks only at the clipped pixels, with float64 tables instead of a second Lab conversion.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np

from . import colour

# "Moved by more than one level", on the 8-bit gray scale whatever the input depth. The 1e-6 level of slack
# makes an output exactly one level away (e.g. clipped to white from level 254) "not moved" whatever the
# float64 round-off; without it that tie would be decided by the last bit of a sum.
MOVED_LEVELS = 1.0 + 1e-6
_LEVEL = 255.0
# Y of an sRGB colour; normalised so that a gray (g, g, g) has exactly the luminance of the gray level g
_LUMINANCE_WEIGHTS = colour.RGB_TO_XYZ[1] / colour.RGB_TO_XYZ[1].sum()
# Full-resolution chunks are spread over this many threads: numpy releases the GIL in its loops, so
# the per-pixel work (a few dozen array passes) scales with cores. Each thread holds one chunk's temporaries.
PIXEL_THREADS = min(4, os.cpu_count() or 1)
# Recombination chunks are half the usual size: as fast (bench_recombine.py), and each thread's ChunkBuffers
# (about 48 bytes per pixel of a chunk) stay at 6 MB
RECOMBINE_CHUNK_DIVISOR = 2


class BilinearUpsampler:
    """Bilinear resize of (C, h, w) to (C, H, W), produced a band of output rows at a time.

    Pixel centres are aligned (half-pixel convention, like Pillow and torch's align_corners=False),
    edges are clamped. The horizontal pass is done once at (C, h, W), which is small; rows are
    interpolated on demand.
    """

    def __init__(self, chroma: np.ndarray, height: int, width: int):
        x0, x1, fx = _source_coordinates(chroma.shape[2], width)
        # (C, h, W), C-contiguous: the fancy index leaves W as the slowest axis, and taking rows from such an
        # array copies all of it first (0.4 ms per chunk at 12 MP)
        self._wide = np.ascontiguousarray(chroma[:, :, x0] * (1 - fx) + chroma[:, :, x1] * fx)
        self._y0, y1, self._fy = _source_coordinates(chroma.shape[1], height)
        # row i's step to the row below it (clamped at the bottom edge); y1 is always min(y0 + 1, h - 1)
        self._step = self._wide[:, np.minimum(np.arange(chroma.shape[1]) + 1, chroma.shape[1] - 1)] - self._wide

    def rows(self, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
        """(C, stop - start, W) float32 (into `out` if given): wide[y0] + (wide[y1] - wide[y0]) * fy, per output row."""
        if out is None:
            out = np.empty((self._wide.shape[0], stop - start, self._wide.shape[2]), dtype=np.float32)
        y0, fy = self._y0[start:stop], self._fy[start:stop, None]
        # consecutive output rows between the same two source rows: one broadcast multiply-add per run
        edges = [0, *(np.flatnonzero(np.diff(y0)) + 1).tolist(), len(y0)]
        for first, last in zip(edges[:-1], edges[1:]):
            row = y0[first]
            band = out[:, first:last]
            np.multiply(self._step[:, row, None, :], fy[first:last], out=band)
            band += self._wide[:, row, None, :]
        return out


def _source_coordinates(size_in: int, size_out: int):
    position = (np.arange(size_out, dtype=np.float64) + 0.5) * (size_in / size_out) - 0.5
    position = np.clip(position, 0, size_in - 1)
    low = np.floor(position).astype(np.intp)
    high = np.minimum(low + 1, size_in - 1)
    return low, high, (position - low).astype(np.float32)


def recombine(source: SourceImage, chroma: np.ndarray, space: str, report=None) -> tuple[np.ndarray, int]:
    """Full-size RGB in the source's dtype from the source's own lightness and upsampled chroma.

    Returns (pixels, moved): moved counts the pixels where gamut clipping changed the lightness by more
    than one 8-bit level (lightness_moved). report(fraction done) is called after each chunk (and may raise
    JobCancelled).
    """
    upsampler = BilinearUpsampler(chroma, source.height, source.width)
    out = np.empty((source.height, source.width, 3), dtype=source.dtype)
    step = max(1, colour.CHUNK_PIXELS // RECOMBINE_CHUNK_DIVISOR // source.width)
    chunks = [(start, min(source.height, start + step)) for start in range(0, source.height, step)]
    lock = threading.Lock()
    done = [0]
    per_thread = threading.local()

    def one_chunk(rows: tuple[int, int]) -> int:
        start, stop = rows
        if not hasattr(per_thread, "buffers"):
            per_thread.buffers = ChunkBuffers(step, source.width)
        buffers = per_thread.buffers.rows(stop - start)
        planes, clipped = _to_rgb_planes(source, start, stop, upsampler.rows(start, stop, buffers.chroma), space,
                                         buffers)
        codes = [_encode(plane, space, source.dtype, buffers, channel) for channel, plane in enumerate(planes)]
        for channel, plane in enumerate(codes):
            out[start:stop, :, channel] = plane
        moved = lightness_moved(source, start, stop, codes, clipped) if clipped.any() else 0
        if report is not None:
            with lock:  # chunks finish out of order: report the rows done so far, which only grows
                done[0] += stop - start
                fraction = done[0] / source.height
            report(fraction)
        return moved

    return out, sum(for_each_chunk(one_chunk, chunks))


class ChunkBuffers:
    """One thread's working planes for chunks of up to `rows` x `width` pixels, reused chunk after chunk.

    Fresh temporaries for every chunk cost about a quarter of the recombination's time at 12 MP, in page
    faults on memory the allocator has just handed back to the system.
    """

    def __init__(self, rows: int, width: int):
        shape = (rows, width)
        self.chroma = np.empty((2,) + shape, np.float32)
        self.planes = np.empty((3,) + shape, np.float32)
        self.fy, self.y, self.scratch, self.linear = (np.empty(shape, np.float32) for _ in range(4))
        self.low, self.clipped = np.empty(shape, bool), np.empty(shape, bool)
        self.index = np.empty(shape, np.intp)  # np.take converts any other index type to intp in a temporary
        self.codes = np.empty((3,) + shape, np.uint8)

    def rows(self, count: int) -> "ChunkBuffers":
        """The same buffers cut to `count` rows (the last chunk is shorter)."""
        view = object.__new__(ChunkBuffers)
        view.__dict__.update({name: array[..., :count, :] for name, array in self.__dict__.items()})
        return view


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


def _to_rgb_planes(source, start: int, stop: int, chroma: np.ndarray, space: str,
                   buffers: ChunkBuffers) -> tuple[np.ndarray, np.ndarray]:
    """The source's rows + (2, rows, W) chroma (overwritten) -> ((3, rows, W) RGB clipped to [0, 1], clipped mask).

    For lab the planes are linear light (encoded by _encode); for yuv/ycbcr they are already sRGB-encoded.
    """
    planes, scale = buffers.planes, _plane_scale(space, source.dtype)
    if space == "lab":
        fy, y = _lab_lightness_terms(source, start, stop, buffers)
        colour.fy_ab_to_linear_planes(fy, y, chroma[0], chroma[1], planes, buffers.scratch, buffers.low, scale,
                                      buffers.linear)
    else:  # ycbcr models predict Cb - 0.5 and Cr - 0.5, the same centred chroma as U and V
        lightness = source.lightness_rows(start, stop, space)
        matrix = colour.YUV_TO_RGB if space == "yuv" else colour.YCBCR_TO_RGB
        for channel, row in enumerate(matrix):
            colour.weighted_sum(row, (lightness, chroma[0], chroma[1]), planes[channel], buffers.scratch)
    clipped = colour.outside_gamut(planes, buffers.clipped, buffers.scratch, scale)
    np.clip(planes, 0.0, scale, out=planes)
    return planes, clipped


def _plane_scale(space: str, dtype: np.dtype) -> float:
    """What the RGB planes are multiplied by: 8-bit output of a lab model is encoded from premultiplied planes."""
    return colour.SRGB8_PREMULTIPLIER if space == "lab" and dtype == np.uint8 else 1.0


def _lab_lightness_terms(source, start: int, stop: int, buffers: ChunkBuffers) -> tuple[np.ndarray, np.ndarray]:
    """fy = f(Y / Yn) and the luminance Y of the source's rows, as colour.lab_to_linear_planes computes them."""
    if source.integer_gray:
        fy_table, y_table = _gray_lab_tables(source.dtype.str)
        levels = buffers.index
        np.copyto(levels, source.pixels[start:stop])
        # mode="clip" never clips here (the tables have every level) but lets np.take write into the buffers
        return (np.take(fy_table, levels, out=buffers.fy, mode="clip"),
                np.take(y_table, levels, out=buffers.y, mode="clip"))
    fy = colour.lightness_to_fy(source.lightness_rows(start, stop, "lab"))
    return fy, colour._lab_f_inv(fy)


@lru_cache(maxsize=2)
def _gray_lab_tables(dtype: str) -> tuple[np.ndarray, np.ndarray]:
    levels = np.arange(256 if np.dtype(dtype) == np.uint8 else 65536).astype(dtype)
    fy = colour.lightness_to_fy(colour.gray_to_lightness(levels))  # the same float32 steps as per pixel
    y = colour._lab_f_inv(fy)
    fy.setflags(write=False)
    y.setflags(write=False)
    return fy, y


def _encode(plane: np.ndarray, space: str, dtype: np.dtype, buffers: ChunkBuffers, channel: int) -> np.ndarray:
    """A clipped plane (overwritten; premultiplied as _plane_scale says) in the output's dtype."""
    if space != "lab":
        return colour.from_float01(plane, dtype)
    if dtype == np.uint8:
        return colour.premultiplied_linear_to_srgb8(plane, buffers.index, buffers.codes[channel])
    return colour.from_float01(colour.linear_to_srgb(plane), dtype)


def lightness_moved(source, start: int, stop: int, codes: list[np.ndarray], clipped: np.ndarray) -> int:
    """How many clipped pixels of rows start..stop ended more than one 8-bit gray level from the source's lightness.

    Exactly: the output's luminance Y (float64, from its codes) lies outside [Y(g - d), Y(g + d)], where g is the
    sRGB gray level with the source pixel's luminance and d = MOVED_LEVELS / 255. Gray levels grow with Y, so this
    is |gray(output) - g| > d without converting either side back to a gray level; for 8/16-bit gray sources
    both bounds come from per-level tables.
    """
    luminance = _luminance64([plane[clipped] for plane in codes])
    if source.integer_gray:
        low, high = _moved_bounds(source.dtype.str)
        levels = source.pixels[start:stop][clipped]
        low, high = np.take(low, levels), np.take(high, levels)
    else:
        gray = colour.linear_to_srgb(_source_luminance64(source.pixels[start:stop][clipped]), np.float64)
        low = colour.srgb_to_linear(gray - MOVED_LEVELS / _LEVEL, np.float64)
        high = colour.srgb_to_linear(gray + MOVED_LEVELS / _LEVEL, np.float64)
    return int(np.count_nonzero((luminance < low) | (luminance > high)))


def _luminance64(channels: list[np.ndarray]) -> np.ndarray:
    """Y of [R, G, B] samples (uint8, uint16 or float sRGB-encoded), float64."""
    luminance = np.zeros(channels[0].shape, dtype=np.float64)
    for weight, samples in zip(_LUMINANCE_WEIGHTS, channels, strict=True):
        luminance += weight * _linear64(samples)
    return luminance


def _source_luminance64(pixels: np.ndarray) -> np.ndarray:
    """Y of the source's own (n,) gray or (n, 3) RGB samples, float64."""
    if pixels.ndim == 1:
        return _linear64(pixels)
    return _luminance64([pixels[:, channel] for channel in range(3)])


def _linear64(samples: np.ndarray) -> np.ndarray:
    if samples.dtype in (np.uint8, np.uint16):
        return np.take(_linear64_table(samples.dtype.str), samples)
    return colour.srgb_to_linear(np.clip(samples, 0.0, 1.0), np.float64)


@lru_cache(maxsize=2)
def _linear64_table(dtype: str) -> np.ndarray:
    levels = np.arange(256 if np.dtype(dtype) == np.uint8 else 65536)
    table = colour.srgb_to_linear(levels / float(levels[-1]), np.float64)
    table.setflags(write=False)
    return table


@lru_cache(maxsize=2)
def _moved_bounds(dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """Per source gray level: the luminances of the gray levels MOVED_LEVELS below and above it."""
    levels = np.arange(256 if np.dtype(dtype) == np.uint8 else 65536)
    gray = levels / float(levels[-1])
    low = colour.srgb_to_linear(gray - MOVED_LEVELS / _LEVEL, np.float64)
    high = colour.srgb_to_linear(gray + MOVED_LEVELS / _LEVEL, np.float64)
    for table in (low, high):
        table.setflags(write=False)
    return low, high
