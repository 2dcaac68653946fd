"""Instance mode (Su et al., "Instance-aware Image Colorization", CVPR 2020) with three ONNX models.

1. boxes: the user's (a box list, the regions of a selection mask) and/or the detector's (boxes.py, detector.py);
2. the instance model colours each box's crop, all K crops in one batch, and returns its decoder features;
3. the fusion model runs the full-image network and, at each decoder level, blends the instance features pasted
   into their boxes with the full-image features by learned weight maps; its chroma is the result.
With no box at all, the fusion model gets one blank instance marked invalid: its output is then the full-image
network's own. Optionally each instance's own colourisation is a layer too (group "Instances", a feathered
mask of its box). The boxes used are reported in the result's details.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import boxes as boxes_module
from .. import guidance as guidance_module
from ..boxes import Instance
from ..contract import ModelInfo
from ..detector import detect
from ..errors import BadRequest
from ..inference import decode_chroma, neutral_feeds
from ..options import ColorizeOptions, Guidance
from ..recombine import BilinearUpsampler
from ..source import resize_plane
from . import LayerPlan, ModeContext

PLAN = {"preprocess": 0.0, "detect": 0.05, "inference": 0.15, "upsample_recombine": 0.55, "done": 1.0}
GROUP = "Instances"
CANVAS_SIDE = 512  # instance layers: chroma canvas long side (an instance's crop is finer than the fused grid)


@dataclass(frozen=True)
class Companions:
    fusion: ModelInfo
    detector: ModelInfo | None  # None when the boxes come only from the user


def companions(registry, info: ModelInfo, options: ColorizeOptions) -> Companions:
    """The fusion model paired with the instance model, and the detector when boxes=auto or both."""
    fusion = registry.fusion_for(info)
    guidance_module.check_model_takes(fusion, options.guidance)
    detector = registry.default_for("detector") if options.instance.boxes in ("auto", "both") else None
    return Companions(fusion, detector)


def check(registry, info: ModelInfo, options: ColorizeOptions) -> None:
    """Engine.resolve: a missing fusion model or detector is reported before the job starts."""
    companions(registry, info, options)


def find_instances(context: ModeContext, detector: ModelInfo | None) -> list[Instance]:
    options, source = context.options.instance, context.source
    context.stages.enter("detect")
    user = []
    if options.boxes != "auto":
        user = boxes_module.user_instances(options.user_boxes)
        if options.selection is not None:
            user += boxes_module.selection_instances(options.selection)
        if options.boxes == "selection" and not user:
            raise BadRequest("the selection is empty: select the objects to colour one by one, or ask for boxes=auto.")
    detected = []
    if detector is not None:
        detected = detect(context.sessions.get(detector), detector, source, options.score_threshold)
    return boxes_module.choose(user, detected, options.max_instances)


def run(context: ModeContext) -> list[LayerPlan]:
    info, options = context.info, context.options
    models = companions(context.registry, info, options)
    instances = find_instances(context, models.detector)
    context.details.update(instances=[i.to_json() for i in instances], fusion=models.fusion.name,
                           detector=models.detector.name if models.detector is not None else None)
    context.stages.enter("inference")
    fused, own = predict(context, models.fusion, instances)
    plans = [LayerPlan(f"Colorized ({info.name})", fused, details={"instances": len(instances)})]
    if options.instance.instance_layers:
        plans += instance_layers(context, instances, fused, own)
    return plans


# ---------------------------------------------------------------------------- the two networks


def predict(context: ModeContext, fusion: ModelInfo, instances: list[Instance]) -> tuple[np.ndarray, list[np.ndarray]]:
    """(fused chroma (2, h, w) at the fusion's working size, [each instance's own chroma (2, s, s)])."""
    guidance = context.options.guidance
    fused, own = _predict_once(context, fusion, instances, guidance)
    strength = guidance.reference_strength
    if guidance.has_reference and strength < 1.0:
        # a partial reference, as in full mode: blend the runs with and without it
        without = Guidance(guidance.hint_image, guidance.points)
        fused_without, own_without = _predict_once(context, fusion, instances, without)
        fused = strength * fused + (1.0 - strength) * fused_without
        own = [strength * a + (1.0 - strength) * b for a, b in zip(own, own_without)]
    return fused, own


def _predict_once(context: ModeContext, fusion: ModelInfo, instances: list[Instance], guidance: Guidance):
    info, source, options = context.info, context.source, context.options
    rng = np.random.default_rng(options.seed)
    logits, features = _instance_outputs(context, instances, guidance, rng)
    context.stages.within(0.5)
    model_input = source.working_lightness(fusion)
    feeds = {fusion.input_name: model_input}
    roles = {**neutral_feeds(fusion, model_input, rng),
             **guidance_module.guidance_roles(fusion, guidance, (source.height, source.width), model_input.shape[2:])}
    feeds.update({fusion.optional_inputs[role]: value for role, value in roles.items()})
    feeds.update(dict(zip(fusion.instance_inputs["features"], features)))
    feeds[fusion.instance_inputs["boxes"]], feeds[fusion.instance_inputs["box_valid"]] = _box_inputs(source, instances)
    output = context.sessions.get(fusion).run(feeds)
    fused = decode_chroma(fusion, output, options.temperature, options.vibrancy)[0]
    own = []
    if instances and options.instance.instance_layers:  # decoding K crops' bins costs tens of ms: only when shown
        own = decode_chroma(info, logits, options.temperature, options.vibrancy, batch=len(logits))
    return fused, own


def _instance_outputs(context: ModeContext, instances: list[Instance], guidance: Guidance, rng):
    """The instance model on all crops at once: (its chroma output, [features per level]).
    Without instances it runs on one blank crop, whose features the fusion model then ignores (box_valid 0)."""
    info, source = context.info, context.source
    side = info.working_size
    if instances:
        crops = np.stack([source.crop_lightness(i.box, info) for i in instances])  # (K, 1, S, S)
    else:
        crops = np.zeros((1, 1, side, side), dtype=np.float32)
    roles = {**neutral_feeds(info, crops, rng), **_instance_guidance(info, guidance, instances, (side, side))}
    feeds = {info.input_name: crops, **{info.optional_inputs[role]: value for role, value in roles.items()}}
    outputs = context.sessions.get(info).run_outputs(feeds, [info.output_name, *info.feature_outputs])
    return outputs[0], outputs[1:]


def _instance_guidance(info: ModelInfo, guidance: Guidance, instances: list[Instance], shape) -> dict[str, np.ndarray]:
    """Each crop gets the colour points inside its box, and every crop the same reference."""
    roles = {}
    if guidance.has_local_hints and instances:
        pairs = [guidance_module.local_hints(guidance_module.crop(guidance, i.box), info.colour_space,
                                             (i.box[3], i.box[2]), shape) for i in instances]
        roles["hint_ab"] = np.concatenate([ab for ab, _ in pairs])
        roles["hint_mask"] = np.concatenate([mask for _, mask in pairs])
    if guidance.has_reference:
        histogram = guidance_module.reference_histogram(guidance.reference, info)
        count = max(1, len(instances))
        roles["reference_hist"] = np.repeat(histogram[None], count, axis=0).astype(np.float32)
        roles["reference_flag"] = np.ones((count, 1), dtype=np.float32)
    return roles


def _box_inputs(source, instances: list[Instance]) -> tuple[np.ndarray, np.ndarray]:
    """boxes (K, 4) as x0, y0, x1, y1 normalised to the image, box_valid (K, 1); one invalid row without instances."""
    if not instances:
        return np.array([[0.0, 0.0, 1.0, 1.0]], np.float32), np.zeros((1, 1), np.float32)
    rows = [(x / source.width, y / source.height, (x + w) / source.width, (y + h) / source.height)
            for x, y, w, h in (i.box for i in instances)]
    return np.asarray(rows, np.float32), np.ones((len(instances), 1), np.float32)


# ---------------------------------------------------------------------------- instance layers


def instance_layers(context: ModeContext, instances: list[Instance], fused: np.ndarray,
                    own: list[np.ndarray]) -> list[LayerPlan]:
    """One layer per instance: its own chroma inside its box (the fused chroma around it), masked by its box."""
    source = context.source
    scale = min(1.0, CANVAS_SIDE / max(source.height, source.width))
    canvas_h, canvas_w = max(1, round(source.height * scale)), max(1, round(source.width * scale))
    base = BilinearUpsampler(fused, canvas_h, canvas_w).rows(0, canvas_h)
    plans = []
    for number, (item, chroma) in enumerate(zip(instances, own), 1):
        canvas = base.copy()
        _paste(canvas, chroma, item.box, canvas_w / source.width, canvas_h / source.height)
        mask = boxes_module.feathered_mask(item.box, source.height, source.width)
        plans.append(LayerPlan(_layer_name(number, item), canvas, GROUP, mask, details=item.to_json()))
    return plans


def _paste(canvas: np.ndarray, chroma: np.ndarray, box, scale_x: float, scale_y: float) -> None:
    x, y, width, height = box
    left, top = int(round(x * scale_x)), int(round(y * scale_y))
    right = max(left + 1, int(round((x + width) * scale_x)))
    bottom = max(top + 1, int(round((y + height) * scale_y)))
    for channel in range(2):
        canvas[channel, top:bottom, left:right] = resize_plane(chroma[channel], right - left, bottom - top)


def _layer_name(number: int, item: Instance) -> str:
    what = item.label if item.label else {"selection": "selection", "user": "box"}.get(item.source, item.source)
    return f"Instance {number}: {what}"
