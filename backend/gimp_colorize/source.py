"""The validated input image: gray or RGB pixels, their lightness per row chunk, and the model's input.

A SourceImage never copies the caller's array whole: the full-resolution lightness is recomputed per
chunk of rows (a table lookup for 8/16-bit gray), so only small working-size arrays stay alive.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

from . import colour
from .contract import ModelInfo
from .errors import InvalidImage
from .recombine import for_each_chunk

_FLOAT_GRAY_TOLERANCE = 1e-6


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

    @property
    def integer_gray(self) -> bool:
        """8- or 16-bit gray: every per-pixel quantity of the lightness is a lookup in a per-level table."""
        return self.is_gray and self.dtype in (np.uint8, np.uint16)

    def row_chunks(self):
        for start in range(0, self.height, self.step):
            yield start, min(self.height, start + self.step)

    def lightness_rows(self, start: int, stop: int, space: str) -> np.ndarray:
        """(rows, W) float32 lightness in model units: Lab L* in [0, 100], or YUV/YCbCr luma Y in [0, 1]."""
        part = self.pixels[start:stop]
        if self.integer_gray:
            return np.take(_gray_table(self.dtype.str, space), part)
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
            narrow[start:stop] = resize_plane(self.lightness_rows(start, stop, info.colour_space), width, stop - start)

        for_each_chunk(shrink, list(self.row_chunks()))
        small = resize_plane(narrow, width, height)
        return small[None, None]

    def crop_lightness(self, box: tuple[int, int, int, int], info: ModelInfo) -> np.ndarray:
        """(1, h, w) float32 lightness of the box (x, y, width, height) resized to the model's working shape
        (square models: both sides to the working size, whatever the box's aspect ratio)."""
        x, y, box_width, box_height = box
        height, width = info.working_shape(box_height, box_width)
        narrow = np.empty((box_height, width), dtype=np.float32)
        for start in range(y, y + box_height, self.step):
            stop = min(y + box_height, start + self.step)
            rows = self.lightness_rows(start, stop, info.colour_space)[:, x:x + box_width]
            narrow[start - y:stop - y] = resize_plane(rows, width, stop - start)
        return resize_plane(narrow, width, height)[None]

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


def resize_plane(plane: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear (antialiased when shrinking) resize of a float32 plane with Pillow's 'F' mode."""
    if plane.shape == (height, width):
        return np.ascontiguousarray(plane, dtype=np.float32)
    image = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32))
    return np.asarray(image.resize((width, height), Image.BILINEAR), dtype=np.float32)
