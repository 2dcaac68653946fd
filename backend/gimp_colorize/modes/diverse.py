"""Diverse mode: several colourings of one photo from a model with a `noise` input, one layer each."""

from __future__ import annotations

import numpy as np

from .. import guidance as guidance_module
from ..inference import decode_chroma, neutral_feeds, run_model
from ..progress import FULL_PLAN
from . import LayerPlan, ModeContext

PLAN = FULL_PLAN


def run(context: ModeContext) -> list[LayerPlan]:
    info, source, options = context.info, context.source, context.options
    model_input = source.working_lightness(info)
    guided = guidance_module.guidance_roles(info, options.guidance, (source.height, source.width),
                                            model_input.shape[2:])
    context.stages.enter("inference")
    session = context.sessions.get(info)
    count = options.samples if info.has_noise else 1
    rng = np.random.default_rng(options.seed)
    plans = []
    for number in range(1, count + 1):
        context.stages.check_cancelled()
        roles = {**neutral_feeds(info, model_input, rng), **guided}
        output = run_model(session, info, model_input, roles)
        chroma = decode_chroma(info, output, options.temperature, options.vibrancy)[0]
        name = f"Colorized ({info.name})" if count == 1 else f"Colorized ({info.name}) {number}/{count}"
        plans.append(LayerPlan(name, chroma))
    return plans
