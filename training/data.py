"""Training data: a folder of colour photos -> (lightness, chroma) crops, decoded and augmented in DataLoader workers.

A folder is either a dataset-builder output (DIR/manifest.json listing each image's `file` relative to
DIR and its `split`, train or val) or any folder of images (ImageNet layout class/xxx.JPEG, COCO layout
train2017/xxx.jpg, or flat). Without a manifest, a stable hash of the relative path puts about
`val_fraction` of the images into the validation split, so the split never changes between runs.
"""

from __future__ import annotations

import hashlib
import json
import random
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import Dataset

from gimp_colorize import colour
from training.degrade import degrade_gray
from training.losses import chroma_bins, rgb_to_model_space

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
MANIFEST_NAME = "manifest.json"


class DataError(ValueError):
    """The training folder cannot be used (message says why)."""


# ---------------------------------------------------------------------------- listing images


def list_images(root: Path, split: str, val_fraction: float = 0.05) -> list[Path]:
    """Image files of one split ("train" or "val") under root, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"training data folder {root} does not exist")
    manifest = root / MANIFEST_NAME
    files = _from_manifest(manifest, split) if manifest.is_file() else _from_folder(root, split, val_fraction)
    if not files:
        raise DataError(f"no {split} images found in {root}")
    return files


def manifest_entries(manifest_path: Path) -> list[dict]:
    data = json.loads(Path(manifest_path).read_text())
    entries = data.get("images", data.get("entries")) if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise DataError(f"{manifest_path}: expected a list of images (or {{'images': [...]}})")
    return entries


def _from_manifest(manifest: Path, split: str) -> list[Path]:
    files = []
    for entry in manifest_entries(manifest):
        if entry.get("split", "train") == split:
            files.append(manifest.parent / (entry.get("file") or entry["path"]))
    return sorted(files)


def list_cutouts(root: Path) -> list[Path]:
    """RGBA object cut-outs listed by a builder manifest (`cutouts[].file`), for compositing; [] for plain folders."""
    manifest = Path(root) / MANIFEST_NAME
    if not manifest.is_file():
        return []
    data = json.loads(manifest.read_text())
    entries = data.get("cutouts", []) if isinstance(data, dict) else []
    return sorted(manifest.parent / e["file"] for e in entries if e.get("file"))


def _from_folder(root: Path, split: str, val_fraction: float) -> list[Path]:
    files = [p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    return sorted(p for p in files if hash_split(p.relative_to(root).as_posix(), val_fraction) == split)


def hash_split(relative_path: str, val_fraction: float) -> str:
    digest = hashlib.sha256(relative_path.encode()).digest()
    return "val" if int.from_bytes(digest[:4], "big") / 2**32 < val_fraction else "train"


# ---------------------------------------------------------------------------- decoding and augmentation


def load_rgb(path: Path, max_short_side: int) -> Image.Image:
    """Decode to RGB (EXIF orientation applied), downscaled so the short side is at most max_short_side."""
    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img)
        img = img.convert("RGB")
    short = min(img.size)
    if short > max_short_side:
        scale = max_short_side / short
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.BILINEAR,
                         reducing_gap=2.0)
    return img


def random_crop_box(width: int, height: int, rng: random.Random, min_fraction: float) -> tuple[int, int, int, int]:
    """Square box whose side is a random fraction [min_fraction, 1] of the short side (scale jitter), random place."""
    side = max(1, round(min(width, height) * rng.uniform(min_fraction, 1.0)))
    left = rng.randint(0, width - side)
    top = rng.randint(0, height - side)
    return left, top, left + side, top + side


def centre_crop_box(width: int, height: int) -> tuple[int, int, int, int]:
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def to_tensors(rgb: np.ndarray, space: str) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (H, W, 3) -> lightness (1, H, W), chroma (2, H, W), in the model's units (see losses.rgb_to_model_space)."""
    converted = rgb_to_model_space(colour.to_float01(rgb), space)
    tensor = torch.from_numpy(np.ascontiguousarray(converted.transpose(2, 0, 1)))
    return tensor[:1].clone(), tensor[1:].clone()


@dataclass(frozen=True)
class CropSettings:
    crop_size: int = 176
    min_crop_fraction: float = 0.35   # scale jitter: crop side as a fraction of the image's short side
    hflip: bool = True
    cache_short_side: int = 440       # images are kept decoded at this size in each worker
    cutout_probability: float = 0.0   # chance of pasting one RGBA cut-out object onto a training crop
    degrade_probability: float = 0.0  # chance of old-photo degradations of the gray input (training/degrade.py)
    reference_fraction: float = -1.0  # < 0: no reference histograms; else the share of crops that get one


@dataclass(frozen=True)
class Guidance:
    """What a guided crop carries besides (lightness, chroma): the global hint (reference histogram + flag)."""

    histogram_side: int = 32          # the reference crop is shrunk to this before its histogram is taken
    same_crop_share: float = 0.3      # the rest of the references are another random crop of the same photo
    gamma_range: tuple[float, float] = (0.8, 1.25)  # histogram ** gamma: references are never exact


class ColourCrops(Dataset):
    """Each item: a random (train) or centre (val) square crop -> (lightness (1,S,S), chroma (2,S,S)) float32.

    `samples_per_image` repeats every image per epoch so an epoch is long enough for DataLoader workers to pay off.
    Decoded images are cached per worker: the pool is a few hundred photos.
    """

    def __init__(self, files: list[Path], space: str, crops: CropSettings, train: bool, samples_per_image: int = 1,
                 seed: int = 0, cutouts: list[Path] | None = None):
        self.files = list(files)
        self.cutouts = list(cutouts or [])
        self.space = space
        self.crops = crops
        self.train = train
        self.samples_per_image = samples_per_image if train else 1
        self.seed = seed
        self.epoch = 0
        self._cache: dict[int, Image.Image] = {}
        self._broken: set[int] = set()

    def __len__(self) -> int:
        return len(self.files) * self.samples_per_image

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def image(self, index: int) -> Image.Image:
        """Decoded image `index`, or (if that file is unreadable) the next readable one: a long run must not die
        because one file of a pool that is being rebuilt went missing."""
        for offset in range(len(self.files)):
            candidate = (index + offset) % len(self.files)
            if candidate in self._broken:
                continue
            if candidate not in self._cache:
                try:
                    self._cache[candidate] = load_rgb(self.files[candidate], self.crops.cache_short_side)
                except (OSError, ValueError) as exc:
                    self._broken.add(candidate)
                    warnings.warn(f"skipping unreadable training image {self.files[candidate]}: {exc}")
                    continue
            return self._cache[candidate]
        raise DataError("none of the training images can be read")

    def __getitem__(self, item: int) -> tuple[torch.Tensor, ...]:
        """(lightness, chroma), plus (reference_hist (Q,), reference_flag (1,)) when references are on."""
        index = item % len(self.files)
        img = self.image(index)
        size = self.crops.crop_size
        # validation items are random too, but the same at every validation (seeded by the item only)
        rng = random.Random(hash((self.seed, self.epoch, item)) if self.train else hash((self.seed, -1, item)))
        if self.train:
            box = random_crop_box(img.width, img.height, rng, self.crops.min_crop_fraction)
            crop = img.resize((size, size), Image.BILINEAR, box=box, reducing_gap=2.0)
            if self.crops.hflip and rng.random() < 0.5:
                crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            if self.cutouts and rng.random() < self.crops.cutout_probability:
                crop = self.paste_cutout(crop, rng)
        else:
            crop = img.resize((size, size), Image.BILINEAR, box=centre_crop_box(img.width, img.height), reducing_gap=2.0)
        return self.sample_of(img, crop, rng)

    def sample_of(self, img: Image.Image, crop: Image.Image, rng: random.Random) -> tuple[torch.Tensor, ...]:
        """A crop as (lightness, chroma[, reference histogram, flag]), its lightness degraded on a share of crops."""
        lightness, chroma = to_tensors(np.asarray(crop), self.space)
        if rng.random() < self.crops.degrade_probability:
            lightness = degrade_lightness(lightness, self.space, rng)
        if self.crops.reference_fraction < 0:
            return lightness, chroma
        return (lightness, chroma, *self.reference(img, crop, rng))

    def reference(self, img: Image.Image, crop: Image.Image, rng: random.Random) -> tuple[torch.Tensor, torch.Tensor]:
        """The global hint of a crop: a colour histogram of (another crop of) the same photo, on a share of crops."""
        bins = chroma_bins(self.space)
        if rng.random() >= self.crops.reference_fraction:
            return torch.zeros(len(bins)), torch.zeros(1)
        guidance = Guidance()
        source = crop
        if self.train and rng.random() >= guidance.same_crop_share:
            box = random_crop_box(img.width, img.height, rng, self.crops.min_crop_fraction)
            source = img.crop(box)
        side = guidance.histogram_side
        small = np.asarray(source.resize((side, side), Image.BILINEAR, reducing_gap=2.0))
        chroma = rgb_to_model_space(colour.to_float01(small), self.space)[..., 1:]
        histogram = colour.ab_histogram(chroma, bins)
        if self.train:
            histogram = histogram ** rng.uniform(*guidance.gamma_range)
            histogram /= histogram.sum()
        return torch.from_numpy(histogram.astype(np.float32)), torch.ones(1)


    def cutout(self, index: int) -> Image.Image | None:
        key = -1 - index  # cut-outs share the cache with photos, under negative keys
        if key not in self._cache and key not in self._broken:
            try:
                self._cache[key] = load_rgba(self.cutouts[index], self.crops.crop_size)
            except (OSError, ValueError) as exc:
                self._broken.add(key)
                warnings.warn(f"skipping unreadable cut-out {self.cutouts[index]}: {exc}")
        return self._cache.get(key)

    def paste_cutout(self, crop: Image.Image, rng: random.Random) -> Image.Image:
        """Composite a random cut-out (scaled to 30-70% of the crop, random place, random flip) onto the crop."""
        obj = self.cutout(rng.randrange(len(self.cutouts)))
        if obj is None:
            return crop
        scale = rng.uniform(0.3, 0.7) * crop.width / max(obj.size)
        obj = obj.resize((max(1, round(obj.width * scale)), max(1, round(obj.height * scale))), Image.BILINEAR)
        if rng.random() < 0.5:
            obj = obj.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        out = crop.copy()
        out.paste(obj, (rng.randint(0, crop.width - obj.width), rng.randint(0, crop.height - obj.height)), obj)
        return out


def degrade_lightness(lightness: torch.Tensor, space: str, rng: random.Random) -> torch.Tensor:
    """(1, H, W) model-unit lightness -> the same after old-photo degradations of the gray image it shows."""
    values = lightness[0].numpy()
    gray = colour.lightness_to_gray(values) if space == "lab" else values  # yuv/ycbcr: Y is the gray
    degraded = colour.to_float01(degrade_gray(colour.from_float01(gray, np.uint8), rng))
    out = colour.gray_to_lightness(degraded) if space == "lab" else degraded
    return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32))[None]


def load_rgba(path: Path, max_side: int) -> Image.Image:
    with Image.open(path) as img:
        img = img.convert("RGBA")
    img.thumbnail((max_side, max_side), Image.BILINEAR)
    return img


def chroma_samples(files: list[Path], space: str, max_images: int = 400, side: int = 128, stride: int = 2) -> np.ndarray:
    """(P, 2) chroma values from (up to max_images of) the training images, for the class-rebalancing prior."""
    step = max(1, len(files) // max_images)
    chunks = []
    for path in files[::step]:
        try:
            img = load_rgb(path, side)
        except (OSError, ValueError):
            continue  # the crop dataset warns about (and skips) the same file
        rgb = colour.to_float01(np.asarray(img)[::stride, ::stride])
        chunks.append(rgb_to_model_space(rgb, space)[..., 1:].reshape(-1, 2))
    if not chunks:
        raise DataError("none of the training images can be read")
    return np.concatenate(chunks)
