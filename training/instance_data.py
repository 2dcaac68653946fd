"""Object crops for the instance network (Su et al. 2020): what instance mode feeds it, with true colours.

Two kinds of item, like the pool offers them:
- pseudo-box crops: a box the detector found on a pool photo (`images[].boxes` of the manifest, written by
  `python -m training detect-boxes`), jittered (grown by up to `grow` of its size on each side, shifted a
  little; clipped to the photo) and resized to crop_size x crop_size, ignoring the aspect ratio exactly as
  the engine resizes an instance's box;
- cut-out composites: a Tux Paint cut-out (an RGBA photo of one object) pasted at a random size and place
  onto a random square of a random training photo; the crop is the cut-out's own bounding box (exact, so
  the object's true colours fill it), jittered the same way.
Validation items are the val photos' boxes without jitter plus seeded composites on val photos.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from training.data import ColourCrops, CropSettings, DataError, MANIFEST_NAME, manifest_entries

GROW = 0.15            # training jitter: each side moves outwards by up to this share of the box's side
SHIFT = 0.05           # and the box shifts by up to this share
MIN_BOX_SIDE = 8       # pseudo-boxes smaller than this (stored pixels) are too blurry to learn from
COMPOSITE_SCALE = (0.35, 0.9)  # the cut-out's long side, as a share of the photo square it is pasted on


def pseudo_boxes(root: Path, split: str, min_score: float = 0.0) -> list[tuple[Path, tuple[int, int, int, int]]]:
    """(photo file, box) for every manifest box of the split; DataError when the manifest has none recorded."""
    manifest = Path(root) / MANIFEST_NAME
    if not manifest.is_file():
        raise DataError(f"instance crops need a pool manifest with boxes: {manifest} does not exist")
    entries = manifest_entries(manifest)
    if not any("boxes" in entry for entry in entries):
        raise DataError(f"{manifest} has no boxes: run python -m training detect-boxes --data {root}")
    found = []
    for entry in entries:
        if entry.get("split", "train") != split:
            continue
        for record in entry.get("boxes", []):
            box = tuple(int(v) for v in record["box"])
            if min(box[2], box[3]) >= MIN_BOX_SIDE and (record.get("score") or 1.0) >= min_score:
                found.append((manifest.parent / entry["file"], box))
    return found


def jittered(box: tuple[int, int, int, int], width: int, height: int, rng: random.Random | None):
    """(left, top, right, bottom) of the crop for a box: the box itself without rng, else grown and shifted."""
    x, y, w, h = box
    left, top, right, bottom = float(x), float(y), float(x + w), float(y + h)
    if rng is not None:
        left -= rng.uniform(0, GROW) * w
        right += rng.uniform(0, GROW) * w
        top -= rng.uniform(0, GROW) * h
        bottom += rng.uniform(0, GROW) * h
        dx, dy = rng.uniform(-SHIFT, SHIFT) * w, rng.uniform(-SHIFT, SHIFT) * h
        left, right, top, bottom = left + dx, right + dx, top + dy, bottom + dy
    left, top = max(0.0, left), max(0.0, top)
    right, bottom = min(float(width), right), min(float(height), bottom)
    if right - left < 1 or bottom - top < 1:
        return x, y, x + w, y + h
    return left, top, right, bottom


class InstanceCrops(ColourCrops):
    """Items 0..B-1: pseudo-box crops; B..B+C-1: cut-out composites (C = `composites`). Same outputs as ColourCrops."""

    def __init__(self, files: list[Path], boxes: list[tuple[Path, tuple[int, int, int, int]]], space: str,
                 crops: CropSettings, train: bool, composites: int, seed: int = 0, cutouts: list[Path] | None = None):
        super().__init__(files, space, crops, train, samples_per_image=1, seed=seed, cutouts=cutouts)
        index = {path: number for number, path in enumerate(self.files)}
        missing = [str(path) for path, _ in boxes if path not in index]
        if missing:
            raise DataError(f"boxes name photos outside the split: {missing[:3]}")
        self.boxes = [(index[path], box) for path, box in boxes]
        self.composites = composites if self.cutouts else 0
        if not self.boxes and not self.composites:
            raise DataError("no instance crops: the split has no boxes and there are no cut-outs")

    def __len__(self) -> int:
        return len(self.boxes) + self.composites

    def __getitem__(self, item: int) -> tuple[torch.Tensor, ...]:
        rng = random.Random(hash((self.seed, self.epoch, item)) if self.train else hash((self.seed, -1, item)))
        if item < len(self.boxes):
            image_index, box = self.boxes[item]
            img = self.image(image_index)
            scale = img.width / self._stored_width(image_index)  # the cache may hold the photo downscaled
            box = tuple(round(v * scale) for v in box)
        else:
            img, box = self.composite(rng)
            image_index = None
        crop = img.resize((self.crops.crop_size,) * 2, Image.BILINEAR,
                          box=jittered(box, img.width, img.height, rng if self.train else None), reducing_gap=2.0)
        if self.train and self.crops.hflip and rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return self.sample_of(img, crop, rng)

    def _stored_width(self, image_index: int) -> int:
        """Width of the file as stored (the boxes' pixels), read once per worker."""
        cache = self.__dict__.setdefault("_widths", {})
        if image_index not in cache:
            with Image.open(self.files[image_index]) as img:
                cache[image_index] = img.width
        return cache[image_index]

    def composite(self, rng: random.Random) -> tuple[Image.Image, tuple[int, int, int, int]]:
        """A cut-out pasted onto a square of a random photo of the split; returns (square, the cut-out's box)."""
        img = self.image(rng.randrange(len(self.files)))
        side = max(1, min(img.width, img.height, round(min(img.width, img.height) * rng.uniform(0.5, 1.0))))
        left, top = rng.randint(0, img.width - side), rng.randint(0, img.height - side)
        square = img.crop((left, top, left + side, top + side))
        obj = self.cutout(rng.randrange(len(self.cutouts)))
        box = paste_object(square, obj, rng) if obj is not None else None
        return square, box or (0, 0, side, side)


def paste_object(canvas: Image.Image, obj: Image.Image, rng: random.Random,
                 scale: tuple[float, float] = COMPOSITE_SCALE) -> tuple[int, int, int, int] | None:
    """Paste an RGBA cut-out onto `canvas` (in place) at a random size and place, maybe mirrored; returns the
    bounding box of its opaque pixels (x, y, w, h), or None if it has none."""
    size = rng.uniform(*scale) * min(canvas.size) / max(obj.size)
    obj = obj.resize((max(1, min(canvas.width, round(obj.width * size))), max(1, min(canvas.height, round(obj.height * size)))),
                     Image.BILINEAR)
    if rng.random() < 0.5:
        obj = obj.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    x, y = rng.randint(0, canvas.width - obj.width), rng.randint(0, canvas.height - obj.height)
    canvas.paste(obj, (x, y), obj)
    alpha = np.asarray(obj)[..., 3] >= 128
    rows, cols = np.flatnonzero(alpha.any(axis=1)), np.flatnonzero(alpha.any(axis=0))
    if not len(rows):
        return None
    return x + int(cols[0]), y + int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)
