"""One small module per mode: each turns (model, source image, options) into planned layers of chroma.

What every mode shares lives outside: input handling (source.py), model runs and decoding (inference.py,
guidance.py), and recombination with the original lightness (recombine.py, called by the engine).
A mode module has PLAN (its progress stages, progress.Stages) and run(context) -> list[LayerPlan].
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..contract import ModelInfo
from ..options import ColorizeOptions
from ..progress import Stages
from ..source import SourceImage


@dataclass
class LayerPlan:
    """A result layer before recombination: chroma at working size, plus how the layer is presented."""

    name: str
    chroma: np.ndarray                 # (2, h, w) in the model's colour space units
    group: str | None = None           # layer group the plug-in puts it into
    mask: np.ndarray | None = None     # (H, W) uint8 layer mask at the image's size (255 = visible)
    visible: bool = True
    details: dict = field(default_factory=dict)  # e.g. {"seed": 7}, reported with the layer


@dataclass
class ModeContext:
    info: ModelInfo                    # the model that serves the mode
    source: SourceImage
    options: ColorizeOptions
    stages: Stages
    sessions: object                   # sessions.SessionCache
    registry: object                   # registry.Registry (modes that need companion models, e.g. a detector)
    details: dict = field(default_factory=dict)  # facts the mode reports with the result (e.g. boxes used)
