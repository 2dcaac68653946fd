"""The user's guidance at the model's working size: colour points -> hint_ab/hint_mask, a reference -> histogram.

Local hints are given at the image's full size (a hint image whose alpha marks hints, and/or points).
A working-size cell is hinted when any full-size pixel inside it is (the mask is max-pooled), and its
hint chroma is the mean chroma over the hinted pixels inside it only. The hint's lightness is ignored:
only its chroma is wanted. A reference photo becomes the distribution of its chroma over the model's bins
(colour.ab_histogram, the same function training uses).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from . import colour
from .contract import ModelInfo
from .errors import BadRequest
from .options import Guidance, HintPoint

REFERENCE_SIDE = 64        # a reference is shrunk to this long side before its histogram is taken
MIN_REFERENCE_CHROMA = 2.0  # ab units: below this (99th percentile) a reference has no colour to give
ROW_CHUNK = 512


def check_model_takes(info: ModelInfo, guidance: Guidance) -> None:
    if guidance.has_local_hints and not info.takes_local_hints:
        raise BadRequest(f"model '{info.name}' does not take colour hints; choose a guided model "
                         "(see 'gimp-colorize models') or remove the hints.")
    if guidance.has_reference and not info.takes_reference:
        raise BadRequest(f"model '{info.name}' does not take a reference photo; choose a guided model "
                         "(see 'gimp-colorize models') or remove the reference.")


def guidance_roles(info: ModelInfo, guidance: Guidance, image_shape: tuple[int, int],
                   working_shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """{role: array} for the guidance the user gave (roles left out are fed neutral values)."""
    roles = {}
    if guidance.has_local_hints:
        roles["hint_ab"], roles["hint_mask"] = local_hints(guidance, info.colour_space, image_shape, working_shape)
    if guidance.has_reference:
        roles["reference_hist"] = reference_histogram(guidance.reference, info)[None]
        roles["reference_flag"] = np.ones((1, 1), dtype=np.float32)
    return roles


def crop(guidance: Guidance, box: tuple[int, int, int, int]) -> Guidance:
    """The local hints inside box (x, y, width, height), in the box's own pixel coordinates (no reference).
    A colour point belongs to the box when its centre does."""
    x, y, width, height = box
    hint_image = None if guidance.hint_image is None else guidance.hint_image[y:y + height, x:x + width]
    points = tuple(HintPoint(p.x - x, p.y - y, p.rgb, p.size) for p in guidance.points
                   if x <= p.x < x + width and y <= p.y < y + height)
    return Guidance(hint_image=hint_image, points=points)


class _CellSums:
    """Per working-size cell: how many hinted full-size pixels overlap it, and the sum of their chroma.

    A pixel counts in every cell it overlaps: one cell when the image is larger than the working size,
    several when it is smaller (so an upscaled hint has no holes).
    """

    def __init__(self, image_shape: tuple[int, int], working_shape: tuple[int, int]):
        self.rows = _cell_spans(image_shape[0], working_shape[0])
        self.cols = _cell_spans(image_shape[1], working_shape[1])
        self.shape = working_shape
        self.count = np.zeros(working_shape[0] * working_shape[1], dtype=np.float64)
        self.chroma = np.zeros((2, working_shape[0] * working_shape[1]), dtype=np.float64)

    def add_pixels(self, ys: np.ndarray, xs: np.ndarray, chroma: np.ndarray) -> None:
        """Hinted pixels at (ys, xs) with their (n, 2) chroma."""
        which, cell_rows = _expand(ys, *self.rows)
        which_x, cell_cols = _expand(xs[which], *self.cols)
        which = which[which_x]
        cells = cell_rows[which_x] * self.shape[1] + cell_cols
        self.count += np.bincount(cells, minlength=self.count.size)
        for channel in range(2):
            self.chroma[channel] += np.bincount(cells, weights=chroma[which, channel], minlength=self.count.size)

    def add_square(self, point: HintPoint, chroma: np.ndarray) -> None:
        ys = _square_range(point.y, point.size, len(self.rows[0]))
        xs = _square_range(point.x, point.size, len(self.cols[0]))
        grid_y, grid_x = np.meshgrid(ys, xs, indexing="ij")
        self.add_pixels(grid_y.ravel(), grid_x.ravel(), np.broadcast_to(chroma, (grid_y.size, 2)))

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        mask = self.count > 0
        ab = np.where(mask, self.chroma / np.maximum(self.count, 1), 0.0).reshape(2, *self.shape)
        return ab[None].astype(np.float32), mask.reshape(1, 1, *self.shape).astype(np.float32)


def _cell_spans(size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray]:
    """For each pixel along an axis: the first working cell it overlaps and how many it overlaps."""
    pixels = np.arange(size_in, dtype=np.int64)
    first = pixels * size_out // size_in
    stop = -((-(pixels + 1) * size_out) // size_in)  # ceil((p + 1) * out / in)
    return first, np.maximum(stop - first, 1)


def _expand(coordinates: np.ndarray, first: np.ndarray, span: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index into coordinates, cell) for every (pixel, overlapped cell) pair."""
    repeats = span[coordinates]
    which = np.repeat(np.arange(len(coordinates)), repeats)
    offsets = np.arange(len(which)) - np.repeat(np.cumsum(repeats) - repeats, repeats)
    return which, first[coordinates][which] + offsets


def _square_range(centre: float, size: int, image_size: int) -> np.ndarray:
    start = max(0, int(round(centre - size / 2)))
    return np.arange(start, min(image_size, start + size))


def local_hints(guidance: Guidance, space: str, image_shape: tuple[int, int], working_shape: tuple[int, int]):
    """(hint_ab (1, 2, h, w), hint_mask (1, 1, h, w)) float32 at the working size."""
    sums = _CellSums(image_shape, working_shape)
    if guidance.hint_image is not None:
        _add_hint_image(sums, guidance.hint_image, space)
    for point in guidance.points:
        rgb = np.asarray(point.rgb, dtype=np.float32)[None] / 255.0
        sums.add_square(point, chroma_of(rgb, space)[0])
    return sums.result()


def _add_hint_image(sums: _CellSums, hint_image: np.ndarray, space: str) -> None:
    for start in range(0, hint_image.shape[0], ROW_CHUNK):
        rows = hint_image[start:start + ROW_CHUNK]
        ys, xs = np.nonzero(rows[:, :, 3] > 0)
        if len(ys):
            rgb = np.clip(colour.to_float01(rows[ys, xs, :3]), 0.0, 1.0)
            sums.add_pixels(ys + start, xs, chroma_of(rgb, space))


def chroma_of(rgb: np.ndarray, space: str) -> np.ndarray:
    """(n, 3) sRGB in [0, 1] -> (n, 2) chroma in the model's colour space units."""
    if space == "lab":
        return colour.rgb_to_lab(rgb)[:, 1:]
    if space == "yuv":
        return colour.rgb_to_yuv(rgb)[:, 1:]
    return colour.rgb_to_ycbcr(rgb)[:, 1:] - colour.CHROMA_OFFSET_YCBCR


def reference_histogram(reference: np.ndarray, info: ModelInfo) -> np.ndarray:
    """(Q,) distribution of the reference photo's chroma over the model's bins."""
    rgb = _reference_rgb(reference)
    flat = rgb.reshape(-1, 3)
    ab = colour.rgb_to_lab(flat)[:, 1:]
    if float(np.percentile(np.hypot(ab[:, 0], ab[:, 1]), 99)) < MIN_REFERENCE_CHROMA:
        raise BadRequest("the reference photo has no colour (it is gray); choose a colour photo as the reference.")
    units = colour.CHROMA_UNITS[info.colour_space]  # the soft encoding's sigma is in Lab-like units
    bins = np.asarray(info.ab_bins, dtype=np.float32) * units
    return colour.ab_histogram(chroma_of(flat, info.colour_space) * units, bins)


def _reference_rgb(reference: np.ndarray) -> np.ndarray:
    """Any decoded photo -> (h, w, 3) float32 sRGB, long side at most REFERENCE_SIDE."""
    pixels = np.asarray(reference)
    if pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
        raise BadRequest("the reference must be a colour (RGB) photo.")
    rgb8 = colour.from_float01(np.clip(colour.to_float01(pixels[:, :, :3]), 0.0, 1.0), np.uint8)
    image = Image.fromarray(np.ascontiguousarray(rgb8))
    image.thumbnail((REFERENCE_SIDE, REFERENCE_SIDE), Image.BILINEAR)
    return colour.to_float01(np.asarray(image))
