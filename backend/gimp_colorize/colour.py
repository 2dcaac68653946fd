"""Colour science shared by the backend and training: numpy only, float32, chunked for big images.

Conventions (docs/DESIGN.md "Colour conventions"):
- float images are sRGB-encoded in [0, 1], shape (H, W) gray or (..., 3) RGB;
- Lab is CIE L*a*b* relative to the D65 white, L in [0, 100];
- YUV is BT.601 analog, YCbCr is BT.601 full range (JPEG) with Cb/Cr centred at 0.5;
- ab bins are the grid-10 cells that some in-gamut 8-bit sRGB colour falls into: 261 of them. Zhang et al.'s
  published 313 also holds cells no sRGB colour reaches, so it is not reproducible from this definition.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import InvalidImage

# Pixels per chunk in the chunked conversions: a float32 RGB temporary of this many pixels is 3 MB,
# so a 12 MP image never needs a full-size float64 (or even float32) copy per intermediate step.
CHUNK_PIXELS = 1 << 18

# sRGB primaries -> CIE XYZ with the D65 white (IEC 61966-2-1, Lindbloom's 7-digit matrix).
RGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ],
    dtype=np.float64,
)
XYZ_TO_RGB = np.linalg.inv(RGB_TO_XYZ)
D65_WHITE = RGB_TO_XYZ.sum(axis=1)  # (0.95047, 1.0, 1.08883): the XYZ of RGB (1, 1, 1)

# BT.601 luma weights. YUV scales B-Y and R-Y so that U peaks at 0.436 and V at 0.615 (analog PAL/NTSC);
# YCbCr scales them to +-0.5 (JPEG full range).
_KR, _KG, _KB = 0.299, 0.587, 0.114
_WU, _WV = 0.436 / (1 - _KB), 0.615 / (1 - _KR)
RGB_TO_YUV = np.array(
    [
        [_KR, _KG, _KB],
        [-_WU * _KR, -_WU * _KG, _WU * (1 - _KB)],
        [_WV * (1 - _KR), -_WV * _KG, -_WV * _KB],
    ],
    dtype=np.float64,
)
YUV_TO_RGB = np.linalg.inv(RGB_TO_YUV)
RGB_TO_YCBCR = np.array(
    [
        [_KR, _KG, _KB],
        [-_KR / 1.772, -_KG / 1.772, (1 - _KB) / 1.772],
        [(1 - _KR) / 1.402, -_KG / 1.402, -_KB / 1.402],
    ],
    dtype=np.float64,
)
YCBCR_TO_RGB = np.linalg.inv(RGB_TO_YCBCR)
CHROMA_OFFSET_YCBCR = 0.5

# CIE constants for f(t) = cbrt(t) above (6/29)^3, linear below.
_DELTA = 6.0 / 29.0
_GAMUT_TOLERANCE = 1e-4  # float32 round-off; a channel beyond this is really out of gamut

AB_GRID = 10
# Chroma units per unit of each colour space's own chroma: Lab ab as they are; U/V and Cb/Cr (centred) x 200,
# which gives them a range like Lab's, so the same bin grid and soft-encoding sigma apply to every space.
CHROMA_UNITS = {"lab": 1.0, "yuv": 200.0, "ycbcr": 200.0}
AB_BINS_FILE = Path(__file__).with_name("ab_bins_grid10.json")


# ---------------------------------------------------------------------------- dtypes and chunks


def to_float01(img: np.ndarray) -> np.ndarray:
    """uint8 / uint16 / float -> float32 in [0, 1] (floats are passed through, not clipped)."""
    img = np.asarray(img)
    if img.dtype == np.uint8:
        return img.astype(np.float32) * np.float32(1.0 / 255.0)
    if img.dtype == np.uint16:
        return img.astype(np.float32) * np.float32(1.0 / 65535.0)
    if img.dtype in (np.float32, np.float64, np.float16):
        return img.astype(np.float32, copy=False)
    raise InvalidImage(f"unsupported pixel type {img.dtype}: use 8-bit, 16-bit or float pixels")


def from_float01(x: np.ndarray, dtype) -> np.ndarray:
    """float in [0, 1] -> dtype (uint8 / uint16 rounded, floats clipped)."""
    dtype = np.dtype(dtype)
    if dtype == np.uint8 or dtype == np.uint16:
        scaled = np.clip(x, 0.0, 1.0) * np.float32(255.0 if dtype == np.uint8 else 65535.0)
        scaled += np.float32(0.5)  # round half up: faster than np.rint, and ties are rare and harmless
        return scaled.astype(dtype)
    if dtype.kind == "f":
        return np.clip(x, 0.0, 1.0).astype(dtype, copy=False)
    raise InvalidImage(f"unsupported pixel type {dtype}: use 8-bit, 16-bit or float pixels")


def chunk_rows(shape: tuple[int, ...]) -> int:
    """How many leading-axis rows of a channel-last (..., C) array make one chunk of about CHUNK_PIXELS pixels."""
    per_row = int(np.prod(shape[1:-1])) if len(shape) > 2 else 1
    return max(1, CHUNK_PIXELS // max(1, per_row))


def map_chunks(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, out_shape, out_dtype=np.float32) -> np.ndarray:
    """Apply fn to leading-axis slices of x, writing into one preallocated output (bounded temporaries)."""
    out = np.empty(out_shape, dtype=out_dtype)
    if x.ndim == 0 or x.shape[0] == 0:
        out[...] = fn(x)
        return out
    step = chunk_rows(x.shape)
    for start in range(0, x.shape[0], step):
        out[start : start + step] = fn(x[start : start + step])
    return out


def _rgb_shape(x: np.ndarray, what: str) -> None:
    if x.ndim < 1 or x.shape[-1] != 3:
        raise InvalidImage(f"{what} needs (..., 3) pixels, got shape {x.shape}")


# ---------------------------------------------------------------------------- sRGB transfer


def srgb_to_linear(x: np.ndarray, dtype=np.float32) -> np.ndarray:
    """sRGB-encoded [0, 1] -> linear light (IEC 61966-2-1), float32 (or `dtype`, e.g. float64)."""
    f = np.dtype(dtype).type
    x = np.asarray(x, dtype=f)
    low = x * f(1.0 / 12.92)
    high = np.power((np.maximum(x, f(0.04045)) + f(0.055)) * f(1.0 / 1.055), f(2.4))
    return np.where(x <= f(0.04045), low, high)


def linear_to_srgb(x: np.ndarray, dtype=np.float32) -> np.ndarray:
    """Linear light -> sRGB-encoded [0, 1] (inverse of srgb_to_linear), float32 (or `dtype`)."""
    f = np.dtype(dtype).type
    x = np.asarray(x, dtype=f)
    low = x * f(12.92)
    high = f(1.055) * np.power(np.maximum(x, f(0.0031308)), f(1.0 / 2.4)) - f(0.055)
    return np.where(x <= f(0.0031308), low, high)


# ---------------------------------------------------------------------------- Lab


@lru_cache(maxsize=2)
def _linear_table(dtype: str) -> np.ndarray:
    levels = np.arange(256 if np.dtype(dtype) == np.uint8 else 65536).astype(dtype)
    table = srgb_to_linear(to_float01(levels))
    table.setflags(write=False)
    return table


def to_linear(img: np.ndarray) -> np.ndarray:
    """uint8 / uint16 / float sRGB-encoded -> linear light float32 (table lookup for integer pixels)."""
    img = np.asarray(img)
    if img.dtype == np.uint8 or img.dtype == np.uint16:
        return _linear_table(img.dtype.str)[img]
    return srgb_to_linear(to_float01(img))


def _lab_f(t: np.ndarray) -> np.ndarray:
    return np.where(t > _DELTA**3, np.cbrt(np.maximum(t, 0)), t / np.float32(3 * _DELTA**2) + np.float32(4.0 / 29.0))


def _lab_f_inv(f: np.ndarray) -> np.ndarray:
    return np.where(f > _DELTA, f * f * f, np.float32(3 * _DELTA**2) * (f - np.float32(4.0 / 29.0)))


def _lab_f_inv_inplace(f: np.ndarray, scratch: np.ndarray | None = None, low: np.ndarray | None = None,
                       linear: np.ndarray | None = None) -> np.ndarray:
    """_lab_f_inv(f) written over the float32 array f, with the same values, in fewer passes than np.where: the cube
    everywhere, then the linear piece where it applies (the darkest pixels). `scratch` and `linear` (float32) and
    `low` (bool), shaped like f, spare allocations."""
    low = np.less_equal(f, _DELTA, out=low)
    count = np.count_nonzero(low)
    if count * _SPARSE_PATCH_FRACTION < f.size:  # few: patch just those (a scattered boolean index is slow)
        patch = np.float32(3 * _DELTA**2) * (f[low] - np.float32(4.0 / 29.0)) if count else None
    else:
        patch = np.multiply(np.subtract(f, np.float32(4.0 / 29.0), out=linear), np.float32(3 * _DELTA**2), out=linear)
    np.multiply(np.multiply(f, f, out=scratch), f, out=f)
    if patch is not None and patch.shape == f.shape:
        np.copyto(f, patch, where=low)
    elif patch is not None:
        f[low] = patch
    return f


_SPARSE_PATCH_FRACTION = 128  # patch by boolean index below 1/128 of the pixels, by a masked copy above


def _rgb_to_lab_chunk(rgb: np.ndarray) -> np.ndarray:
    lin = to_linear(rgb)
    xyz = lin @ (RGB_TO_XYZ / D65_WHITE[:, None]).T.astype(np.float32)  # normalised by the white
    f = _lab_f(xyz)
    lab = np.empty_like(f)
    lab[..., 0] = 116.0 * f[..., 1] - 16.0
    lab[..., 1] = 500.0 * (f[..., 0] - f[..., 1])
    lab[..., 2] = 200.0 * (f[..., 1] - f[..., 2])
    return lab


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (..., 3) uint8 / uint16 / float in [0, 1] -> float32 Lab (..., 3), processed in chunks."""
    rgb = np.asarray(rgb)
    _rgb_shape(rgb, "rgb_to_lab")
    return map_chunks(_rgb_to_lab_chunk, rgb, rgb.shape)


def lab_to_linear_planes(lightness: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Lab planes -> (3, ...) R, G, B linear-light float32 planes, not clipped.

    Works plane by plane (a few multiply-adds per pixel) rather than on (..., 3) arrays with a matmul:
    this is the hot loop of the recombination at full resolution (which calls fy_ab_to_linear_planes).
    """
    fy = lightness_to_fy(lightness)
    return fy_ab_to_linear_planes(fy, _lab_f_inv(fy), np.array(a, dtype=np.float32), np.array(b, dtype=np.float32))


def lightness_to_fy(lightness: np.ndarray) -> np.ndarray:
    """L* -> f(Y / Yn), the lightness term of the inverse Lab transform, float32."""
    return (np.asarray(lightness, dtype=np.float32) + np.float32(16.0)) * np.float32(1.0 / 116.0)


def fy_ab_to_linear_planes(fy: np.ndarray, y: np.ndarray, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None,
                           scratch: np.ndarray | None = None, low: np.ndarray | None = None,
                           scale: float = 1.0, linear: np.ndarray | None = None) -> np.ndarray:
    """The lightness as fy = lightness_to_fy(L) and y = its luminance Y, and the float32 chroma planes a and b,
    which are OVERWRITTEN (they become X and Z) -> (3, ...) R, G, B linear planes, the values of lab_to_linear_planes
    times `scale` (a power of two, so exactly).

    The recombination feeds fy and y from per-level tables for 8/16-bit gray sources, owns a and b, and passes
    its own `out` (3, ...) and `scratch`/`low`/`linear` planes: at 12 MP, fresh temporaries cost a quarter of the
    time in page faults.
    """
    a *= np.float32(1 / 500.0)
    a += fy
    x = _lab_f_inv_inplace(a, scratch, low, linear)
    x *= np.float32(D65_WHITE[0])
    b *= np.float32(1 / 200.0)
    z = _lab_f_inv_inplace(np.subtract(fy, b, out=b), scratch, low, linear)
    z *= np.float32(D65_WHITE[2])
    out = np.empty((3,) + np.shape(fy), dtype=np.float32) if out is None else out
    for channel, row in enumerate(XYZ_TO_RGB):
        weighted_sum(row * scale, (x, y, z), out=out[channel], scratch=scratch)
    return out


def weighted_sum(weights, planes, out: np.ndarray | None = None, scratch: np.ndarray | None = None) -> np.ndarray:
    """sum(weight * plane) in float32 (`out`, and `scratch` for the products, when given: the same values)."""
    out = np.multiply(planes[0], np.float32(weights[0]), out=out)
    for weight, plane in zip(weights[1:], planes[1:]):
        out += np.multiply(plane, np.float32(weight), out=scratch)
    return out


def outside_gamut(planes, out: np.ndarray | None = None, work: np.ndarray | None = None,
                  scale: float = 1.0) -> np.ndarray:
    """Mask of pixels with any channel outside [0, 1] (beyond float32 round-off), of planes multiplied by `scale`
    (a power of two); `out` (bool) and `work` (float32) spare allocations."""
    low = np.float32(-_GAMUT_TOLERANCE) * np.float32(scale)  # exact: the thresholds of unscaled planes, scaled
    high = np.float32(1 + _GAMUT_TOLERANCE) * np.float32(scale)
    extreme = np.minimum(planes[0], planes[1], out=work)
    outside = np.less(np.minimum(extreme, planes[2], out=extreme), low, out=out)
    extreme = np.maximum(planes[0], planes[1], out=extreme)
    outside |= np.maximum(extreme, planes[2], out=extreme) > high
    return outside


def lab_to_rgb(lab: np.ndarray, return_clipped: bool = False):
    """Lab (..., 3) -> sRGB float32 in [0, 1], clipped to the gamut.

    With return_clipped=True returns (rgb, clipped) where clipped (...) is True for every pixel
    that had a channel outside [0, 1] before clipping (its colour, and maybe lightness, changed).
    """
    lab = np.asarray(lab)
    _rgb_shape(lab, "lab_to_rgb")
    one_pixel = lab.ndim == 1
    if one_pixel:
        lab = lab[None]
    rgb = np.empty(lab.shape, dtype=np.float32)
    clipped = np.empty(lab.shape[:-1], dtype=bool)
    step = chunk_rows(lab.shape)
    for start in range(0, lab.shape[0], step):
        part = lab[start : start + step]
        linear = lab_to_linear_planes(part[..., 0], part[..., 1], part[..., 2])
        clipped[start : start + step] = outside_gamut(linear)
        for channel, plane in enumerate(linear):
            rgb[start : start + step, ..., channel] = linear_to_srgb(np.clip(plane, 0.0, 1.0, out=plane))
    if one_pixel:
        rgb, clipped = rgb[0], clipped[0]
    return (rgb, clipped) if return_clipped else rgb


# Linear light -> 8-bit sRGB code by table lookup instead of a power per pixel. The table is indexed by
# sqrt(linear), where the sRGB curve's slope is bounded (<= 1.5), so 2^14 steps keep every code within
# 0.03 of a level of exact rounding, and the 16 KB table stays in the CPU cache.
_ENCODE8_STEPS = 1 << 14


@lru_cache(maxsize=1)
def _encode8_table() -> np.ndarray:
    linear = (np.arange(_ENCODE8_STEPS + 1, dtype=np.float64) / _ENCODE8_STEPS) ** 2
    encoded = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(linear, 1 / 2.4) - 0.055)
    table = np.floor(encoded * 255 + 0.5).astype(np.uint8)
    table.setflags(write=False)
    return table


def linear_to_srgb8(linear: np.ndarray) -> np.ndarray:
    """Linear light (clipped to [0, 1] here) -> 8-bit sRGB codes, via a lookup table."""
    index = np.sqrt(np.clip(linear, 0.0, 1.0))
    index *= np.float32(_ENCODE8_STEPS)
    index += np.float32(0.5)
    return _encode8_table()[index.astype(np.int32)]


# The recombination computes its linear planes premultiplied by 2^30 (exact: a power of two) for the 8-bit
# encoding: sqrt(v * 2^30) is exactly sqrt(v) * 2^15, so truncating it indexes a table of twice the steps,
# which folds in linear_to_srgb8's "* steps" and "+ 0.5". A check of every float32 in [0, 1] found the codes
# of linear_to_srgb8 for all of them (tests/test_colour.py checks a sample).
SRGB8_PREMULTIPLIER = float(2**30)


@lru_cache(maxsize=1)
def _encode8_half_step_table() -> np.ndarray:
    table = _encode8_table()[(np.arange(2 * _ENCODE8_STEPS + 1) + 1) // 2]  # floor((j + 1) / 2) = round(j / 2)
    table.setflags(write=False)
    return table


def premultiplied_linear_to_srgb8(scaled: np.ndarray, index: np.ndarray | None = None,
                                  out: np.ndarray | None = None) -> np.ndarray:
    """linear_to_srgb8(v) from float32 v * SRGB8_PREMULTIPLIER, already clipped to [0, SRGB8_PREMULTIPLIER]; `scaled`
    is OVERWRITTEN. `index` (intp) and `out` (uint8) shaped like it spare allocations (np.take turns other index
    types into intp in a temporary, and mode="clip", a no-op here, lets it write into `out` without a buffer)."""
    root = np.sqrt(scaled, out=scaled)
    if index is None:
        index = root.astype(np.intp)
    else:
        np.copyto(index, root, casting="unsafe")  # truncation, like astype
    return np.take(_encode8_half_step_table(), index, out=out, mode="clip")


def gray_to_lightness(gray: np.ndarray) -> np.ndarray:
    """sRGB-encoded gray (uint8 / uint16 / float) -> L* of the colour (g, g, g), float32."""
    y = to_linear(gray)
    return np.float32(116.0) * _lab_f(y) - np.float32(16.0)


def lightness_to_gray(lightness: np.ndarray) -> np.ndarray:
    """L* -> the sRGB-encoded gray in [0, 1] with that lightness (inverse of gray_to_lightness)."""
    f = (np.asarray(lightness, dtype=np.float32) + np.float32(16.0)) * np.float32(1.0 / 116.0)
    return linear_to_srgb(_lab_f_inv(f))


def rgb_to_lightness(rgb: np.ndarray) -> np.ndarray:
    """sRGB (..., 3) -> L* only (..., ), cheaper than a full Lab conversion; chunked."""
    rgb = np.asarray(rgb)
    _rgb_shape(rgb, "rgb_to_lightness")
    return map_chunks(_rgb_to_lightness_chunk, rgb, rgb.shape[:-1])


def _rgb_to_lightness_chunk(rgb: np.ndarray) -> np.ndarray:
    luminance = weighted_sum(RGB_TO_XYZ[1], [to_linear(rgb[..., channel]) for channel in range(3)])  # Y, white = 1
    return np.float32(116.0) * _lab_f(luminance) - np.float32(16.0)


# ---------------------------------------------------------------------------- YUV / YCbCr


def _matrix_chunks(x: np.ndarray, matrix: np.ndarray, offset: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x)
    _rgb_shape(x, what)
    m = matrix.T.astype(np.float32)
    off = offset.astype(np.float32)
    return map_chunks(lambda part: to_float01(part) @ m + off, x, x.shape)


def rgb_to_yuv(rgb: np.ndarray) -> np.ndarray:
    """sRGB-encoded (..., 3) -> BT.601 analog YUV float32 (Y in [0, 1], U +-0.436, V +-0.615)."""
    return _matrix_chunks(rgb, RGB_TO_YUV, np.zeros(3), "rgb_to_yuv")


def yuv_to_rgb(yuv: np.ndarray) -> np.ndarray:
    """BT.601 YUV -> sRGB-encoded float32 (not clipped: out-of-gamut YUV gives values outside [0, 1])."""
    yuv = np.asarray(yuv, dtype=np.float32)
    return _matrix_chunks(yuv, YUV_TO_RGB, np.zeros(3), "yuv_to_rgb")


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """sRGB-encoded (..., 3) -> BT.601 full-range YCbCr float32 in [0, 1] (Cb/Cr centred at 0.5)."""
    return _matrix_chunks(rgb, RGB_TO_YCBCR, np.array([0.0, CHROMA_OFFSET_YCBCR, CHROMA_OFFSET_YCBCR]), "rgb_to_ycbcr")


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """BT.601 full-range YCbCr -> sRGB-encoded float32 (not clipped)."""
    ycbcr = np.asarray(ycbcr, dtype=np.float32)
    offset = -(YCBCR_TO_RGB @ np.array([0.0, CHROMA_OFFSET_YCBCR, CHROMA_OFFSET_YCBCR]))
    return _matrix_chunks(ycbcr, YCBCR_TO_RGB, offset, "ycbcr_to_rgb")


def rgb_to_luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma Y' of sRGB-encoded (..., 3) -> float32 (...,); the Y of both YUV and YCbCr."""
    rgb = np.asarray(rgb)
    _rgb_shape(rgb, "rgb_to_luma")
    weights = np.array([_KR, _KG, _KB], dtype=np.float32)
    return map_chunks(lambda part: to_float01(part) @ weights, rgb, rgb.shape[:-1])


# ---------------------------------------------------------------------------- ab bins


def ab_bin_index(a: np.ndarray, b: np.ndarray, grid: int = AB_GRID) -> tuple[np.ndarray, np.ndarray]:
    """Grid cell (integer multiples of grid) that each (a, b) falls into: cell c covers [c - grid/2, c + grid/2)."""
    return (
        np.floor(np.asarray(a) / grid + 0.5).astype(np.int32),
        np.floor(np.asarray(b) / grid + 0.5).astype(np.int32),
    )


def compute_ab_bins(grid: int = AB_GRID, levels: int = 256) -> np.ndarray:
    """Recompute the in-gamut ab bins from scratch by converting every levels^3 sRGB colour to Lab.

    Returns (Q, 2) float32 bin centres sorted by a, then b (the order of ab_bins()). With the
    default 8-bit sampling this gives 261 bins (see the module docstring). Takes a few seconds.
    """
    values = np.arange(levels, dtype=np.float32) / np.float32(levels - 1)
    span = 256 // grid + 2  # cells per axis on each side of zero, generous
    seen = np.zeros((2 * span + 1, 2 * span + 1), dtype=bool)
    green, blue = np.meshgrid(values, values, indexing="ij")
    for red in values:  # one (levels x levels) slab at a time keeps memory small
        rgb = np.stack([np.full_like(green, red), green, blue], axis=-1)
        lab = _rgb_to_lab_chunk(rgb)
        ia, ib = ab_bin_index(lab[..., 1], lab[..., 2], grid)
        seen[ia.ravel() + span, ib.ravel() + span] = True
    ia, ib = np.nonzero(seen)  # row-major: sorted by a, then b
    return np.stack([(ia - span) * grid, (ib - span) * grid], axis=-1).astype(np.float32)


def write_ab_bins_file(path: Path = AB_BINS_FILE) -> None:
    """Regenerate the committed bin table: python -c 'from gimp_colorize.colour import *; write_ab_bins_file()'."""
    bins = compute_ab_bins()
    payload = {
        "grid": AB_GRID,
        "definition": "grid cells (centres at multiples of 10) that some 8-bit sRGB colour falls into, "
        "sorted by a then b; see gimp_colorize.colour.compute_ab_bins",
        "bins": bins.astype(int).tolist(),
    }
    path.write_text(json.dumps(payload, separators=(",", ":")) + "\n")


@lru_cache(maxsize=1)
def _cached_ab_bins() -> np.ndarray:
    bins = np.array(json.loads(AB_BINS_FILE.read_text())["bins"], dtype=np.float32)
    bins.setflags(write=False)
    return bins


def ab_bins() -> np.ndarray:
    """The (Q, 2) float32 in-gamut ab bin centres (Q = 261), sorted by a then b (read-only array)."""
    return _cached_ab_bins()


def soft_encode(ab: np.ndarray, bins: np.ndarray | None = None, k: int = 5, sigma: float = 5.0) -> np.ndarray:
    """ab values (..., 2) -> soft bin targets (..., Q) float32: Gaussian weights on the k nearest bins, rows sum to 1."""
    bins = ab_bins() if bins is None else np.asarray(bins, dtype=np.float32)
    ab = np.asarray(ab, dtype=np.float32)
    if ab.shape[-1] != 2:
        raise ValueError(f"soft_encode needs (..., 2) ab values, got shape {ab.shape}")
    k = min(k, len(bins))
    flat = ab.reshape(-1, 2)
    out = np.zeros((flat.shape[0], len(bins)), dtype=np.float32)
    step = max(1, CHUNK_PIXELS // len(bins))  # the distance matrix is the big temporary
    for start in range(0, flat.shape[0], step):
        out[start : start + step] = _soft_encode_chunk(flat[start : start + step], bins, k, sigma)
    return out.reshape(ab.shape[:-1] + (len(bins),))


def _soft_encode_chunk(ab: np.ndarray, bins: np.ndarray, k: int, sigma: float) -> np.ndarray:
    # |x - c|^2 = |x|^2 - 2 x.c + |c|^2, as one matmul instead of an (N, Q, 2) difference array
    dist2 = (ab * ab).sum(-1, keepdims=True) - 2.0 * (ab @ bins.T) + (bins * bins).sum(-1)[None, :]
    nearest = np.argpartition(dist2, k - 1, axis=1)[:, :k]
    near_d2 = np.maximum(np.take_along_axis(dist2, nearest, axis=1), 0.0)
    # subtracting the row minimum keeps exp() from underflowing to all zeros for far-away ab values
    weights = np.exp(-(near_d2 - near_d2.min(axis=1, keepdims=True)) / np.float32(2.0 * sigma * sigma))
    weights /= weights.sum(axis=1, keepdims=True)
    out = np.zeros((ab.shape[0], bins.shape[0]), dtype=np.float32)
    np.put_along_axis(out, nearest, weights.astype(np.float32), axis=1)
    return out


def ab_histogram(ab: np.ndarray, bins: np.ndarray | None = None) -> np.ndarray:
    """ab values (..., 2) -> (Q,) float32 distribution over the bins: the mean of their soft encodings.

    This is the "global hint" of guided models (a reference photo's colour distribution); training and
    the engine both compute it here, so a reference at inference means what it meant in training.
    """
    flat = np.asarray(ab, dtype=np.float32).reshape(-1, 2)
    if flat.shape[0] == 0:
        raise ValueError("ab_histogram needs at least one ab value")
    histogram = soft_encode(flat, bins).mean(axis=0)
    return (histogram / histogram.sum()).astype(np.float32)


def annealed_mean(logits: np.ndarray, bins: np.ndarray, temperature: float = 0.38, axis: int = -1) -> np.ndarray:
    """Decode bin logits to ab: mean of the bins under softmax(logits / T) along `axis`.

    The returned array has the bin axis replaced by a length-2 (a, b) axis: (N, Q, h, w) with
    axis=1 gives (N, 2, h, w). T = 1 is the plain mean, T -> 0 the mode (T = 0 is exactly the mode).
    """
    logits = np.moveaxis(np.asarray(logits, dtype=np.float32), axis, -1)
    bins = np.asarray(bins, dtype=np.float32)
    if logits.shape[-1] != bins.shape[0]:
        raise ValueError(f"{logits.shape[-1]} logits along axis {axis} but {bins.shape[0]} bins")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        ab = bins[np.argmax(logits, axis=-1)]
    else:
        scaled = logits * np.float32(1.0 / temperature)
        scaled -= scaled.max(axis=-1, keepdims=True)  # softmax is shift-invariant; this avoids overflow
        np.exp(scaled, out=scaled)
        scaled /= scaled.sum(axis=-1, keepdims=True)
        ab = scaled @ bins
    return np.moveaxis(ab, -1, axis)
