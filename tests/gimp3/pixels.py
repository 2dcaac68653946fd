"""Host-side reading of the raw dumps written by the batch scripts, plus the test photos.

Photos come from scikit-image's bundled data (camera.png is a gray photo, astronaut.png a colour photo
made gray here): real photographs that are not part of any training set of this project.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image

from gimp_colorize import colour

DTYPES = {8: np.uint8, 16: np.dtype("<u2"), 32: np.dtype("<f4")}


def skimage_photo(name: str) -> Path:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("scikit-image is not installed (pip install -e .[dev]); its photos are the test images")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / name


def gray_photo() -> np.ndarray:
    """(H, W) float in [0, 1]: the astronaut photo's sRGB lightness as gray."""
    rgb = np.asarray(Image.open(skimage_photo("astronaut.png")).convert("RGB"))
    return colour.lightness_to_gray(colour.rgb_to_lightness(colour.to_float01(rgb)))


def write_test_photos(folder: Path) -> dict[str, Path]:
    """8-bit gray, 16-bit gray and RGB-that-is-gray PNGs of two different real photos."""
    camera = np.asarray(Image.open(skimage_photo("camera.png")).convert("L"))
    astronaut = gray_photo()
    photos = {"gray8": folder / "gray8.png", "gray16": folder / "gray16.png", "rgbgray": folder / "rgbgray.png"}
    Image.fromarray(camera).save(photos["gray8"])
    Image.fromarray(colour.from_float01(astronaut, np.uint16)).save(photos["gray16"])
    as_rgb = colour.from_float01(np.repeat(astronaut[..., None], 3, axis=2), np.uint8)
    Image.fromarray(as_rgb).save(photos["rgbgray"])
    return photos


def write_large_photo(path: Path, size=(4000, 3000)) -> Path:
    """A 12-megapixel 8-bit gray photo (the camera photo scaled up) for the timing run."""
    Image.open(skimage_photo("camera.png")).convert("L").resize(size, Image.BICUBIC).save(path, compress_level=1)
    return path


def load_dump(description: dict) -> np.ndarray:
    """A dumped layer as (H, W, C) in its own dtype."""
    raw = np.fromfile(description["file"], dtype=DTYPES[description.get("bits", 8)])
    return raw.reshape(description["height"], description["width"], -1)


def load_rgba01(description: dict) -> np.ndarray:
    """A dumped RGBA layer as float (H, W, 4) in [0, 1]."""
    return colour.to_float01(load_dump(description))


def lab_of(rgba01: np.ndarray) -> np.ndarray:
    return colour.rgb_to_lab(np.ascontiguousarray(rgba01[..., :3]))


def chroma(rgba01: np.ndarray) -> np.ndarray:
    lab = lab_of(rgba01)
    return np.hypot(lab[..., 1], lab[..., 2])


def lightness(rgba01: np.ndarray) -> np.ndarray:
    return lab_of(rgba01)[..., 0]


def ellipse_mask(height: int, width: int, x: int, y: int, w: int, h: int, margin: float = 0.0) -> np.ndarray:
    """True inside the ellipse inscribed in (x, y, w, h), shrunk (margin > 0) or grown (< 0) by `margin` pixels."""
    rows, cols = np.mgrid[0:height, 0:width] + 0.5
    rx, ry = w / 2 - margin, h / 2 - margin
    return ((cols - x - w / 2) / rx) ** 2 + ((rows - y - h / 2) / ry) ** 2 <= 1.0


def load_png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))
