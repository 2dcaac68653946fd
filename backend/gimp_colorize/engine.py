"""The colorize pipeline (docs/DESIGN.md "Engine API"): resolve the model, run the mode, recombine.

image -> SourceImage (source.py) -> the mode's module (modes/) plans layers of chroma at the model's
working size -> each is upsampled and recombined with the ORIGINAL full-resolution lightness
(recombine.py) -> RGB clipped to the gamut, in the input's dtype.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import guidance as guidance_module
from .contract import ModelInfo
from .inference import neutral_feeds, run_model
from .modes import LayerPlan, ModeContext, diverse, full, instance
from .options import ColorizeOptions, Guidance, HintPoint, InstanceOptions, check_fits_image  # noqa: F401 (API)
from .progress import Cancelled, Progress, Stages
from .recombine import recombine
from .sessions import DEFAULT_IDLE_S, DEFAULT_SPINNING, SessionCache
from .source import SourceImage

MODE_RUNNERS = {"full": full, "instance": instance, "diverse": diverse}


@dataclass
class Layer:
    name: str
    pixels: np.ndarray                 # (H, W, 3), same dtype as the input image
    group: str | None = None           # the layer group it belongs in (diverse samples, instance layers)
    mask: np.ndarray | None = None     # (H, W) uint8 layer mask, 255 = visible
    visible: bool = True
    details: dict = field(default_factory=dict)


@dataclass
class ColorizeResult:
    layers: list[Layer]
    model: str
    mode: str
    clipped_pixels: int  # pixels whose lightness moved > 1 level because of gamut clipping
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    details: dict = field(default_factory=dict)  # mode-specific facts, e.g. the instance boxes used


class Engine:
    def __init__(self, registry, providers: list[str] | None = None, threads: int | None = None,
                 session_idle_s: float = DEFAULT_IDLE_S, spinning: bool = DEFAULT_SPINNING):
        self.registry = registry
        self._sessions = SessionCache(providers, threads, idle_s=session_idle_s, spinning=spinning)

    def providers(self) -> list[str]:
        return self._sessions.providers()

    def loaded_models(self) -> list[str]:
        return self._sessions.loaded()

    def preload(self, mode: str = "full") -> ModelInfo:
        """Load the mode's default model and run it once at its working size, so the first job does not wait for
        either (session creation and onnxruntime's first-run allocations). Raises NoModelInstalled if none."""
        info = self.registry.resolve(mode)
        session = self._sessions.get(info)
        size = info.working_size
        model_input = np.full((1, 1, size, size), 50.0 if info.colour_space == "lab" else 0.5, dtype=np.float32)
        run_model(session, info, model_input, neutral_feeds(info, model_input, np.random.default_rng(0)))
        return info

    def resolve(self, options: ColorizeOptions) -> ModelInfo:
        """The model a request would run (the guided default when the request carries guidance)."""
        options.validate()
        info = self.registry.resolve(options.mode, options.model, guided=options.guidance.given)
        guidance_module.check_model_takes(info, options.guidance)
        check = getattr(MODE_RUNNERS[options.mode], "check", None)
        if check is not None:  # a mode with companion models says what is missing before any work
            check(self.registry, info, options)
        return info

    def colorize(self, image, options: ColorizeOptions = ColorizeOptions(), progress: Progress | None = None,
                 cancelled: Cancelled | None = None) -> ColorizeResult:
        """image: (H, W) | (H, W, 1..4) uint8/uint16/float; alpha is ignored. Raises JobCancelled when cancelled."""
        info = self.resolve(options)
        mode = MODE_RUNNERS[options.mode]
        stages = Stages(progress, cancelled, mode.PLAN)
        stages.enter("preprocess")
        source = SourceImage(image)
        check_fits_image(options, source.height, source.width)
        context = ModeContext(info, source, options, stages, self._sessions, self.registry)
        plans = mode.run(context)
        stages.enter("upsample_recombine")
        layers, clipped = [], 0
        for number, plan in enumerate(plans, 1):
            pixels, moved = recombine(source, plan.chroma, info.colour_space, stages.chunk_reporter(number, len(plans)))
            layers.append(_layer(plan, pixels))
            clipped += moved
        stages.enter("done")
        return ColorizeResult(layers, info.name, options.mode, clipped, stages.timings, context.details)


def _layer(plan: LayerPlan, pixels: np.ndarray) -> Layer:
    return Layer(plan.name, pixels, plan.group, plan.mask, plan.visible, plan.details)
