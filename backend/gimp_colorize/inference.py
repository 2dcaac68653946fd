"""One model run: the contract's inputs (lightness + optional roles) in, decoded chroma out.

Roles the caller does not give are fed their neutral values: no hints (zeros), no reference (zeros,
flag 0), fresh N(0, 1) noise. Decoding is the annealed mean for ab_bins models, then the vibrancy
(a chroma scale in the model's colour space: 1 = the model's own colours).
"""

from __future__ import annotations

import numpy as np

from . import colour
from .contract import ModelInfo
from .errors import ModelLoadError


def neutral_feeds(info: ModelInfo, model_input: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """{role: array} for every optional input of the model, at the batch size and working size of model_input."""
    n, _, height, width = model_input.shape
    shapes = {"hint_ab": (n, 2, height, width), "hint_mask": (n, 1, height, width),
              "reference_hist": (n, len(info.ab_bins)), "reference_flag": (n, 1)}
    feeds = {role: np.zeros(shapes[role], dtype=np.float32) for role in info.optional_inputs if role in shapes}
    if "noise" in info.optional_inputs:
        feeds["noise"] = rng.standard_normal((n, info.noise_dim)).astype(np.float32)
    return feeds


def run_model(session, info: ModelInfo, model_input: np.ndarray, roles: dict[str, np.ndarray]) -> np.ndarray:
    """session.run with the lightness and {role: array} mapped to the graph's input names."""
    feeds = {info.input_name: model_input}
    feeds.update({info.optional_inputs[role]: value for role, value in roles.items()})
    return session.run(feeds)


def decode_chroma(info: ModelInfo, output: np.ndarray, temperature: float | None, vibrancy: float = 1.0,
                  batch: int = 1) -> list[np.ndarray]:
    """Model output (batch, 2 | Q, h, w) -> one chroma (2, h, w) float32 per item, in the model's colour space units."""
    channels = 2 if info.output_kind == "ab" else len(info.ab_bins)
    if output.ndim != 4 or output.shape[0] != batch or output.shape[1] != channels or min(output.shape[2:]) < 1:
        raise ModelLoadError(f"model '{info.name}' returned shape {tuple(output.shape)}; its contract says "
                             f"({batch}, {channels}, h, w) for output kind {info.output_kind}")
    chromas = []
    for item in output:
        if info.output_kind == "ab_bins":
            bins = np.asarray(info.ab_bins, dtype=np.float32)
            t = temperature if temperature is not None else (info.default_temperature or 0.38)
            chroma = colour.annealed_mean(item, bins, t, axis=0)
        else:
            chroma = item.astype(np.float32, copy=True)
        if vibrancy != 1.0:
            chroma *= np.float32(vibrancy)
        chromas.append(np.nan_to_num(chroma, nan=0.0, posinf=0.0, neginf=0.0))  # a broken pixel turns gray, not black
    return chromas
