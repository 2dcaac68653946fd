"""Diverse mode: several coherent colourings of one photo from a model with a `noise` input, one layer each.

Sample i (1-based) draws its noise from its own seed, seed + i - 1, so a sample can be rerun alone by its
seed (samples = 1, seed = that seed) and the same seed always gives the same layers. All samples go to the
model in one run: its lightness input has batch 1 and its noise batch S, so the part that does not depend
on the noise (the encoder) runs once; a model that cannot batch its noise is run once per sample instead.
"""

from __future__ import annotations

import secrets

import numpy as np

from .. import guidance as guidance_module
from ..inference import decode_chroma, neutral_feeds, run_model
from . import LayerPlan, ModeContext

# recombining N full-size layers is most of the work
PLAN = {"preprocess": 0.0, "inference": 0.05, "upsample_recombine": 0.25, "done": 1.0}


def sample_seeds(seed: int | None, count: int) -> list[int]:
    base = secrets.randbits(31) if seed is None else seed
    return [base + number for number in range(count)]


def sample_noise(seeds: list[int], noise_dim: int) -> np.ndarray:
    """(S, Z) float32: row i is N(0, 1) noise from seed i alone."""
    return np.stack([np.random.default_rng(seed).standard_normal(noise_dim) for seed in seeds]).astype(np.float32)


def group_name(model: str) -> str:
    return f"Colorize: diverse ({model})"


def run(context: ModeContext) -> list[LayerPlan]:
    info, source, options = context.info, context.source, context.options
    model_input = source.working_lightness(info)
    roles = neutral_feeds(info, model_input, np.random.default_rng(0))
    roles.update(guidance_module.guidance_roles(info, options.guidance, (source.height, source.width),
                                                model_input.shape[2:]))
    count = options.samples if info.has_noise else 1
    seeds = sample_seeds(options.seed, count)
    context.stages.enter("inference")
    session = context.sessions.get(info)
    chromas = _predict(context, session, model_input, roles, seeds)
    context.details["seeds"] = seeds
    return [LayerPlan(f"sample {number} (seed {seed})", chroma, group=group_name(info.name), visible=number == 1,
                      details={"seed": seed, "sample": number})
            for number, (seed, chroma) in enumerate(zip(seeds, chromas), 1)]


def _predict(context: ModeContext, session, model_input: np.ndarray, roles: dict, seeds: list[int]) -> list:
    info, options = context.info, context.options
    if not info.has_noise:
        output = run_model(session, info, model_input, roles)
        return decode_chroma(info, output, options.temperature, options.vibrancy)
    output = run_model(session, info, model_input, {**roles, "noise": sample_noise(seeds, info.noise_dim)})
    if output.shape[0] == len(seeds):
        return decode_chroma(info, output, options.temperature, options.vibrancy, batch=len(seeds))
    chromas = []  # a model whose output batch follows the lightness only: one run per sample
    for seed in seeds:
        context.stages.check_cancelled()
        output = run_model(session, info, model_input, {**roles, "noise": sample_noise([seed], info.noise_dim)})
        chromas += decode_chroma(info, output, options.temperature, options.vibrancy)
    return chromas
