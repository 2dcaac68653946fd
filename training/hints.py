"""Simulated user guidance for training guided colorizers (Zhang et al. 2017, section 3.3).

Local hints: a crop gets no points with probability `none_fraction`, otherwise 1 + Geometric(p) points
(capped), placed around the centre (Gaussian, sigma = `position_sigma` of the side), each a square patch
of 1..`max_patch` pixels whose value is the mean ground-truth chroma inside it. A neutral patch gives a
gray hint (ab close to 0, mask 1): the network learns that it means "keep this neutral".

Global hints (the reference's colour distribution) are made in the data workers (training/data.py),
from another crop of the same photo, so that the network learns a palette, not a layout.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class HintSettings:
    none_fraction: float = 0.4   # share of crops without any local hint
    geometric_p: float = 0.125   # points per hinted crop: 1 + Geometric(p), mean 1/p
    max_points: int = 100
    max_patch: int = 9           # patch side in pixels, uniform in 1..max_patch
    position_sigma: float = 0.25  # Gaussian spread of positions around the centre, fraction of the side


def point_count(rng: random.Random, settings: HintSettings) -> int:
    if rng.random() < settings.none_fraction:
        return 0
    count = 1
    while count < settings.max_points and rng.random() >= settings.geometric_p:
        count += 1
    return count


def patch_box(rng: random.Random, height: int, width: int, settings: HintSettings) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of one square patch, inside the crop."""
    side = rng.randint(1, min(settings.max_patch, height, width))
    cy = rng.gauss(height / 2, settings.position_sigma * height)
    cx = rng.gauss(width / 2, settings.position_sigma * width)
    top = min(max(0, round(cy - side / 2)), height - side)
    left = min(max(0, round(cx - side / 2)), width - side)
    return top, left, top + side, left + side


def simulate_local_hints(chroma: torch.Tensor, rng: random.Random, settings: HintSettings = HintSettings()
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 2, H, W) ground-truth chroma -> hint_ab (N, 2, H, W) and hint_mask (N, 1, H, W), zeros where no hint."""
    n, _, height, width = chroma.shape
    hint_ab = torch.zeros_like(chroma)
    hint_mask = torch.zeros(n, 1, height, width, dtype=chroma.dtype, device=chroma.device)
    for item in range(n):
        for _ in range(point_count(rng, settings)):
            top, left, bottom, right = patch_box(rng, height, width, settings)
            mean = chroma[item, :, top:bottom, left:right].mean(dim=(1, 2))
            hint_ab[item, :, top:bottom, left:right] = mean[:, None, None]
            hint_mask[item, :, top:bottom, left:right] = 1.0
    return hint_ab, hint_mask

