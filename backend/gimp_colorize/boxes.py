"""Instance boxes for instance mode: from the detector, from the user's boxes, from a selection mask.

Boxes are (x, y, width, height) in image pixels. Each connected region of a selection mask (a pixel is
selected when its value is at least half of full scale, 8-connected) is one instance. The user's regions
(boxes first, then selection regions, largest first) come before detected objects (highest score first);
a detected box that mostly covers a user region (IoU >= DUPLICATE_IOU) is dropped, and so is a detected box
that repeats a better-scored one of another class (the detector suppresses duplicates per class only).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import colour

DUPLICATE_IOU = 0.7
MIN_DETECTED_SIDE = 0.02       # of the image's short side: smaller detections are too small to colour apart
MIN_SELECTION_PIXELS = 16      # selection specks smaller than this are not instances
LABEL_SIDE = 1024              # selections are labelled on a grid of at most this many cells per side
FEATHER = 0.08                 # instance layer masks fade out over this share of the box's shorter side
SOURCES = ("detector", "selection", "user")


@dataclass(frozen=True)
class Instance:
    box: tuple[int, int, int, int]   # x, y, width, height in image pixels
    source: str                      # detector | selection | user
    label: str | None = None         # the detector's class name
    score: float | None = None       # the detector's confidence

    def to_json(self) -> dict:
        return {"box": [int(v) for v in self.box], "source": self.source, "label": self.label,
                "score": None if self.score is None else round(float(self.score), 4)}


def iou(first: tuple[int, int, int, int], second: tuple[int, int, int, int]) -> float:
    ax, ay, aw, ah = first
    bx, by, bw, bh = second
    overlap_w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    overlap_h = max(0, min(ay + ah, by + bh) - max(ay, by))
    overlap = overlap_w * overlap_h
    return overlap / float(aw * ah + bw * bh - overlap) if overlap else 0.0


# ---------------------------------------------------------------------------- detections


def pixel_box(x0: float, y0: float, x1: float, y1: float, height: int, width: int) -> tuple[int, int, int, int] | None:
    """A normalised (0..1) box -> the pixels it touches, (x, y, w, h) clipped to the image; None if empty.

    Edges within 1/1000 of a pixel of a pixel boundary snap to it (float32 boxes: 0.6 * 300 = 180.00001)."""
    left, top = int(np.floor(np.clip(x0, 0, 1) * width + 1e-3)), int(np.floor(np.clip(y0, 0, 1) * height + 1e-3))
    right, bottom = int(np.ceil(np.clip(x1, 0, 1) * width - 1e-3)), int(np.ceil(np.clip(y1, 0, 1) * height - 1e-3))
    if right <= left or bottom <= top:
        return None
    return left, top, right - left, bottom - top


def detected_instances(boxes_xyxy: np.ndarray, scores: np.ndarray, labels: list[str | None], height: int, width: int,
                       threshold: float) -> list[Instance]:
    """Detections ((M, 4) normalised x0, y0, x1, y1) above the threshold, best first, without near-duplicates."""
    smallest = MIN_DETECTED_SIDE * min(height, width)
    kept: list[Instance] = []
    for index in np.argsort(-scores, kind="stable"):
        if scores[index] < threshold:
            break
        box = pixel_box(*boxes_xyxy[index], height, width)
        if box is None or min(box[2], box[3]) < smallest:
            continue
        if any(iou(box, other.box) >= DUPLICATE_IOU for other in kept):
            continue
        kept.append(Instance(box, "detector", labels[index], float(scores[index])))
    return kept


# ---------------------------------------------------------------------------- the user's regions


def user_instances(user_boxes) -> list[Instance]:
    return [Instance(tuple(int(v) for v in box), "user") for box in user_boxes]


def selected(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool: a pixel is selected when its value is at least half of full scale (GIMP's 'inside')."""
    mask = np.asarray(mask)
    if mask.ndim == 3:
        mask = mask[..., 0]
    if mask.dtype == bool:
        return mask
    return colour.to_float01(mask) >= 0.5


def selection_instances(mask: np.ndarray) -> list[Instance]:
    """One instance per connected region of the selection, largest first."""
    inside = selected(mask)
    factor = max(1, -(-max(inside.shape) // LABEL_SIDE))
    coarse = _any_pooled(inside, factor)
    regions = []
    for (top, left, bottom, right), count in connected_regions(coarse):
        box = _tight_box(inside, top * factor, left * factor, bottom * factor, right * factor)
        if box is not None and count * factor * factor >= MIN_SELECTION_PIXELS and box[2] * box[3] >= MIN_SELECTION_PIXELS:
            regions.append((count, box))
    regions.sort(key=lambda item: -item[0])
    return [Instance(box, "selection") for _, box in regions]


def _any_pooled(mask: np.ndarray, factor: int) -> np.ndarray:
    """Max-pool a bool mask by `factor` (a cell is set if any of its pixels is): bounds the labelling work."""
    if factor == 1:
        return mask
    height, width = mask.shape
    padded = np.zeros((-(-height // factor) * factor, -(-width // factor) * factor), dtype=bool)
    padded[:height, :width] = mask
    return padded.reshape(padded.shape[0] // factor, factor, padded.shape[1] // factor, factor).any(axis=(1, 3))


def _tight_box(mask: np.ndarray, top: int, left: int, bottom: int, right: int):
    """The bounding box of the selected pixels inside the given area (a region found on the coarse grid)."""
    area = mask[top:bottom, left:right]
    rows, cols = np.flatnonzero(area.any(axis=1)), np.flatnonzero(area.any(axis=0))
    if not len(rows):
        return None
    return left + int(cols[0]), top + int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)


def connected_regions(mask: np.ndarray) -> list[tuple[tuple[int, int, int, int], int]]:
    """8-connected regions of a bool mask: [((top, left, bottom, right) exclusive, pixel count), ...].

    Works on runs of set pixels per row: runs of neighbouring rows that touch (diagonals included) are
    joined with a union-find, so the work grows with the number of runs, not of pixels.
    """
    height, width = mask.shape
    padded = np.zeros((height, width + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    steps = np.diff(padded, axis=1)
    rows, starts = np.nonzero(steps == 1)
    _, ends = np.nonzero(steps == -1)  # exclusive; nonzero is row-major, so starts and ends pair up
    if not len(rows):
        return []
    stride = width + 2
    start_keys, end_keys = rows * stride + starts, rows * stride + ends
    # the runs of the next row that touch run i form one index range [low, high)
    low = np.searchsorted(end_keys, (rows + 1) * stride + starts, side="left")
    high = np.searchsorted(start_keys, (rows + 1) * stride + ends, side="right")
    parent = list(range(len(rows)))
    for run, (first, last) in enumerate(zip(low.tolist(), high.tolist())):
        for other in range(first, last):
            _union(parent, run, other)
    roots = np.array([_find(parent, run) for run in range(len(rows))])
    return _region_boxes(roots, rows, starts, ends)


def _find(parent: list[int], node: int) -> int:
    while parent[node] != node:
        parent[node] = parent[parent[node]]  # path halving
        node = parent[node]
    return node


def _union(parent: list[int], first: int, second: int) -> None:
    a, b = _find(parent, first), _find(parent, second)
    if a != b:
        parent[max(a, b)] = min(a, b)


def _region_boxes(roots, rows, starts, ends):
    labels, index = np.unique(roots, return_inverse=True)
    count = len(labels)
    top = np.full(count, np.iinfo(np.int64).max)
    left = np.full(count, np.iinfo(np.int64).max)
    bottom = np.zeros(count, dtype=np.int64)
    right = np.zeros(count, dtype=np.int64)
    np.minimum.at(top, index, rows)
    np.minimum.at(left, index, starts)
    np.maximum.at(bottom, index, rows + 1)
    np.maximum.at(right, index, ends)
    pixels = np.bincount(index, weights=ends - starts, minlength=count)
    return [((int(t), int(l), int(b), int(r)), int(p)) for t, l, b, r, p in zip(top, left, bottom, right, pixels)]


# ---------------------------------------------------------------------------- choosing and presenting


def choose(user: list[Instance], detected: list[Instance], limit: int) -> list[Instance]:
    """The user's regions first, then detections that do not repeat one of them; at most `limit`."""
    fresh = [d for d in detected if all(iou(d.box, u.box) < DUPLICATE_IOU for u in user)]
    return (user + fresh)[:limit]


def feathered_mask(box: tuple[int, int, int, int], height: int, width: int) -> np.ndarray:
    """(H, W) uint8 layer mask: 255 inside the box, fading linearly to 0 at its border; 0 outside."""
    x, y, box_width, box_height = box
    feather = max(1.0, FEATHER * min(box_width, box_height))
    mask = np.zeros((height, width), dtype=np.uint8)
    ramp_y = _ramp(box_height, feather)
    ramp_x = _ramp(box_width, feather)
    mask[y:y + box_height, x:x + box_width] = np.round(np.minimum.outer(ramp_y, ramp_x) * 255).astype(np.uint8)
    return mask


def _ramp(size: int, feather: float) -> np.ndarray:
    """0..1 along a box side: distance of each pixel centre to the nearer edge, over the feather width."""
    centres = np.arange(size, dtype=np.float64) + 0.5
    return np.clip(np.minimum(centres, size - centres) / feather, 0.0, 1.0)
