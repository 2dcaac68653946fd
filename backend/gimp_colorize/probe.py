"""A trial run of a user model before it is offered: load it, run it once on a small gradient, look at the output.

The metadata check (contract.py) cannot see a graph onnxruntime will not load (an unknown operator) or
weights that produce NaN or one constant colour; without this run such a model is listed as usable and
fails, or returns a gray "result", only when someone uses it. The registry runs the probe once per file
version and caches the verdict; shipped models are covered by their sha256 and are not probed.
"""

from __future__ import annotations

import numpy as np

from .contract import ModelInfo
from .errors import ColorizeError

PROBE_SIZE = (48, 64)  # (height, width) of the pretend image whose working-size lightness is fed
# Models whose inputs come from a companion model (a fusion model's instance features) or are not lightness
# (a detector's RGB image) are only loaded: a graph onnxruntime refuses is still caught before use.
LOAD_ONLY_TASKS = ("detector", "fusion")


def probe_model(info: ModelInfo) -> str | None:
    """Why the model is unusable (a sentence), or None when its trial run looks like a colorizer's."""
    from .inference import decode_chroma, neutral_feeds, run_model
    from .sessions import CPU, ModelSession

    try:
        session = ModelSession(info, [CPU], threads=1)  # CPU only: the probe must not start a GPU
        if info.task in LOAD_ONLY_TASKS:
            return None
        ramp = _probe_lightness(info)
        output = np.asarray(run_model(session, info, ramp, neutral_feeds(info, ramp, np.random.default_rng(0))))
        chroma = decode_chroma(info, output, info.default_temperature, batch=output.shape[0])[0]
    except ColorizeError as exc:
        return exc.message
    except MemoryError:
        return "its trial run ran out of memory"
    except Exception as exc:  # whatever a strange file makes onnxruntime or numpy raise: the model is unusable
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        return f"its trial run failed ({detail})"
    return _output_problem(output) or _output_problem(chroma) or _constant_colour(chroma)


def _probe_lightness(info: ModelInfo) -> np.ndarray:
    """A smooth lightness ramp at the model's working shape (optional inputs get their neutral values)."""
    height, width = info.working_shape(*PROBE_SIZE)
    top = 100.0 if info.colour_space == "lab" else 1.0
    return np.linspace(0.0, top, height * width, dtype=np.float32).reshape(1, 1, height, width)


def _output_problem(values: np.ndarray) -> str | None:
    if values.size == 0:
        return "its trial run returned an empty output"
    if not np.isfinite(values).all():
        return "its trial run returned NaN or infinite values (broken weights?)"
    return None


def _constant_colour(chroma: np.ndarray) -> str | None:
    """(2, h, w) chroma that is the same at every pixel of a lightness ramp: one flat tint (or gray) for any photo."""
    if chroma.shape[1] * chroma.shape[2] < 2:
        return None
    flat = chroma.reshape(chroma.shape[0], -1)
    if np.all(flat.max(axis=1) == flat.min(axis=1)):
        return "its trial run gave every pixel of a lightness ramp the same colour (untrained or broken weights?)"
    return None
