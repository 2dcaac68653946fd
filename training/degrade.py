"""Old-photo degradations of a gray image: what a scanned print does to the lightness a colorizer sees.

Training applies a random subset to the gray INPUT only (the chroma target stays the clean photo's), so
an old scan is not a new kind of input to the network; `python -m training evaluate --degrade` applies
the same function with a fixed seed to measure it. Each step is one plain operation on an 8-bit gray image.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter


@dataclass(frozen=True)
class Degradation:
    """Chance of each step (applied in this order) and its parameter range."""

    tone_curve: float = 0.5      # gamma in [0.65, 1.5]
    fade: float = 0.5            # black level up to 0.25, white level down to 0.75 (low contrast)
    blur: float = 0.4            # Gaussian, radius 0.3-1.5 px
    grain: float = 0.5           # Gaussian noise, sigma 1-6 % of the range, slightly clumped
    jpeg: float = 0.3            # JPEG quality 15-60


def degrade_gray(gray: np.ndarray, rng: random.Random, steps: Degradation = Degradation()) -> np.ndarray:
    """(H, W) uint8 gray -> (H, W) uint8 gray with a random subset of the degradations."""
    values = gray.astype(np.float32) / 255.0
    if rng.random() < steps.tone_curve:
        values = values ** rng.uniform(0.65, 1.5)
    if rng.random() < steps.fade:
        black, white = rng.uniform(0.0, 0.25), rng.uniform(0.75, 1.0)
        values = black + (white - black) * values
    image = Image.fromarray(_to_uint8(values))
    if rng.random() < steps.blur:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5)))
    if rng.random() < steps.grain:
        image = _add_grain(image, rng)
    if rng.random() < steps.jpeg:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=rng.randint(15, 60))
        buffer.seek(0)
        image = Image.open(buffer).convert("L")
    return np.asarray(image, dtype=np.uint8)


def _add_grain(image: Image.Image, rng: random.Random) -> Image.Image:
    noise_rng = np.random.default_rng(rng.getrandbits(63))
    noise = noise_rng.normal(0.0, rng.uniform(0.01, 0.06) * 255.0, size=(image.height, image.width))
    # film grain is clumped, not per-pixel white noise: a slight blur of the noise field
    clumped = Image.fromarray(np.clip(noise + 128.0, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.5))
    grain = np.asarray(clumped, dtype=np.float32) - 128.0
    return Image.fromarray(_to_uint8(np.asarray(image, dtype=np.float32) / 255.0 + grain / 255.0))


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.round(values * 255.0), 0, 255).astype(np.uint8)
