"""Object detection for instance mode: a `detector` model (docs/DESIGN.md "Detector models") run on the photo.

The detector sees what the user has: the black-and-white photo (its lightness as sRGB gray, repeated into
three channels), resized to the model's square working size; its boxes are normalised, so they map back
onto the full-size image whatever the resize did.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from . import colour
from .boxes import Instance, detected_instances
from .contract import ModelInfo
from .errors import ModelLoadError
from .source import SourceImage


def detector_input(source: SourceImage, info: ModelInfo) -> np.ndarray:
    """(1, S, S, 3) uint8 gray RGB at the detector's working size."""
    side = info.working_size
    if source.is_gray and source.dtype == np.uint8:
        # an 8-bit gray photo is already the sRGB gray of its lightness: resize it as it is (a few ms at 12 MP,
        # where the float lightness path takes tens)
        small = Image.fromarray(np.ascontiguousarray(source.pixels)).resize((side, side), Image.BILINEAR, reducing_gap=2.0)
        gray = np.asarray(small)
    else:
        lightness = source.working_lightness(info.replace(colour_space="lab", resize="square"))[0, 0]
        gray = colour.from_float01(np.clip(colour.lightness_to_gray(lightness), 0.0, 1.0), np.uint8)
    return np.ascontiguousarray(np.repeat(gray[None, :, :, None], 3, axis=3))


def run_detector(session, info: ModelInfo, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first image's detections: (M, 4) boxes as normalised x0, y0, x1, y1, (M,) scores, (M,) class ids."""
    roles = [role for role in ("boxes", "scores", "classes", "count") if role in info.detector_outputs]
    outputs = dict(zip(roles, session.run_outputs({info.input_name: image}, [info.detector_outputs[r] for r in roles])))
    boxes = np.asarray(outputs["boxes"], dtype=np.float64)
    scores = np.asarray(outputs["scores"], dtype=np.float64)
    classes = np.asarray(outputs["classes"])
    if boxes.ndim != 3 or boxes.shape[2] != 4 or scores.shape != boxes.shape[:2] or classes.shape != scores.shape:
        raise ModelLoadError(f"detector '{info.name}' returned boxes {boxes.shape}, scores {scores.shape} and classes "
                             f"{classes.shape}; its contract says (N, M, 4), (N, M) and (N, M)")
    count = int(np.asarray(outputs["count"]).ravel()[0]) if "count" in outputs else boxes.shape[1]
    boxes, scores, classes = boxes[0, :count], scores[0, :count], classes[0, :count]
    if info.box_format == "yxyx_normalised":
        boxes = boxes[:, [1, 0, 3, 2]]
    return boxes, scores, np.rint(classes).astype(np.int64)


def detect(session, info: ModelInfo, source: SourceImage, threshold: float) -> list[Instance]:
    """Objects found in the photo with a score of at least `threshold`, best first (image pixel boxes)."""
    boxes, scores, classes = run_detector(session, info, detector_input(source, info))
    labels = [info.labels.get(int(number), f"class {int(number)}") for number in classes]
    return detected_instances(boxes, scores, labels, source.height, source.width, threshold)
