"""Full-image mode: one run of the model over the whole image, with the user's guidance if any."""

from __future__ import annotations

import numpy as np

from .. import guidance as guidance_module
from ..inference import decode_chroma, neutral_feeds, run_model
from ..progress import FULL_PLAN
from . import LayerPlan, ModeContext

PLAN = FULL_PLAN


def predict(context: ModeContext) -> np.ndarray:
    """(2, h, w) chroma of the whole image at the working size, guided as the options say."""
    info, source, options = context.info, context.source, context.options
    model_input = source.working_lightness(info)
    working_shape = model_input.shape[2:]
    roles = neutral_feeds(info, model_input, np.random.default_rng(options.seed))
    guided = guidance_module.guidance_roles(info, options.guidance, (source.height, source.width), working_shape)
    context.stages.enter("inference")
    session = context.sessions.get(info)

    def chroma_with(extra: dict) -> np.ndarray:
        output = run_model(session, info, model_input, {**roles, **extra})
        return decode_chroma(info, output, options.temperature, options.vibrancy)[0]

    chroma = chroma_with(guided)
    strength = options.guidance.reference_strength
    if options.guidance.has_reference and strength < 1.0:
        # a partial reference: blend the chroma with and without it (two runs; the model knows only 0 or 1)
        without = {role: value for role, value in guided.items() if not role.startswith("reference")}
        chroma = strength * chroma + (1.0 - strength) * chroma_with(without)
    return chroma


def layer_name(context: ModeContext) -> str:
    return f"Colorized ({context.info.name})"


def run(context: ModeContext) -> list[LayerPlan]:
    return [LayerPlan(layer_name(context), predict(context))]
