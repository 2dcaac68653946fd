"""`python -m training train-fusion --data POOL --full FULL.pt --instance INSTANCE.pt --out RUN`: the fusion module.

Su et al.'s last stage: the full-image and the instance networks stay frozen, only the fusion's weight networks
(training/fusion.py) learn. Each item is a square of a pool photo (resized to --crop-size) with up to
--max-instances boxes in it: the detector's pseudo-boxes (`python -m training detect-boxes`) that lie mostly
inside the square and, with --composite-probability (always on a square without boxes), a cut-out pasted
onto it with its exact box first. Each instance's crop comes from the square at its own resolution, resized to
--instance-size, as the engine does. Guided full networks get simulated colour points on the whole square (the
full network's hint settings); each instance gets the points inside its box, cut and resized. The loss is the
full network's (rebalanced soft cross-entropy with its rebalancing weights).

RUN gets best.pt / last.pt / final.pt (fusion weights plus both frozen networks, so export needs nothing else),
config.json and log.jsonl; every validation logs the val loss of the fused model and, once, of the full-image
network alone on the same items (`val_full_only`), the number fusion must beat.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader

from gimp_colorize.contract import file_sha256
from training import data as data_module
from training.config import add_arguments, config_from_args
from training.data import ColourCrops, CropSettings, to_tensors
from training.fusion import FusionColorizer
from training.hints import HintSettings, simulate_local_hints
from training.instance_data import paste_object
from training.losses import make_loss
from training.train import atomic_save, get_lr, load_checkpoint, seed_everything, training_progress

FUSION_FORMAT = 1
KEEP_INSIDE = 0.6     # a pseudo-box is used when at least this share of it lies inside the square
MIN_SIDE = 6          # ... and its part inside is at least this many pixels on each side (cached photo pixels)
PASTE_SCALE = (0.3, 0.7)


@dataclass
class FusionConfig:
    data: str = ""
    out: str = "runs/fusion"
    full: str = ""                      # full-image network checkpoint (frozen)
    instance: str = ""                  # instance network checkpoint (frozen)
    crop_size: int = 224                # the full image's square
    instance_size: int = 160            # each instance crop (the instance model's working size)
    max_instances: int = 4
    min_crop_fraction: float = 0.6
    composite_probability: float = 0.5
    samples_per_image: int = 4
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.03
    max_steps: int = 0
    max_minutes: float = 0.0
    val_every_steps: int = 100
    patience: int = 0
    workers: int = 1
    threads: int = 0
    seed: int = 0
    log_every_steps: int = 10

    def validate(self) -> None:
        if not self.full or not self.instance:
            raise ValueError("give --full and --instance checkpoints")
        if self.max_steps <= 0 and self.max_minutes <= 0:
            raise ValueError("give --max-steps and/or --max-minutes, otherwise training never ends")
        if self.crop_size % 32 or self.instance_size % 32:
            raise ValueError("--crop-size and --instance-size must be multiples of 32")
        if not 1 <= self.max_instances <= 16:
            raise ValueError("--max-instances must be 1 to 16")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "FusionConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


# ---------------------------------------------------------------------------- data


def boxes_by_file(root: Path, split: str) -> dict[Path, list[tuple[int, int, int, int]]]:
    from training.instance_data import pseudo_boxes

    found: dict[Path, list] = {}
    for path, box in pseudo_boxes(root, split):
        found.setdefault(path, []).append(box)
    return found


def boxes_in_square(boxes, scale: float, left: int, top: int, side: int) -> list[tuple[int, int, int, int]]:
    """Photo boxes (stored pixels) -> boxes in the square's pixels, kept when mostly inside it."""
    kept = []
    for x, y, w, h in boxes:
        x0, y0, x1, y1 = x * scale - left, y * scale - top, (x + w) * scale - left, (y + h) * scale - top
        cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(side, x1), min(side, y1)
        if min(cx1 - cx0, cy1 - cy0) < MIN_SIDE:
            continue
        if (cx1 - cx0) * (cy1 - cy0) >= KEEP_INSIDE * (x1 - x0) * (y1 - y0):
            kept.append((int(cx0), int(cy0), max(1, int(round(cx1 - cx0))), max(1, int(round(cy1 - cy0)))))
    return kept


class FusionCrops(ColourCrops):
    """Each item: (lightness (1,S,S), chroma (2,S,S), crops (K,1,s,s), boxes (K,4), valid (K,)[, reference])."""

    def __init__(self, files, boxes: dict, space: str, crops: CropSettings, train: bool, config: FusionConfig,
                 cutouts=None):
        super().__init__(files, space, crops, train, config.samples_per_image if train else 1, config.seed, cutouts)
        self.file_boxes = boxes
        self.config = config

    def __getitem__(self, item: int):
        cfg, size = self.config, self.crops.crop_size
        index = item % len(self.files)
        rng = random.Random(hash((self.seed, self.epoch, item)) if self.train else hash((self.seed, -1, item)))
        img = self.image(index)
        with Image.open(self.files[index]) as stored:
            scale = img.width / stored.width
        fraction = rng.uniform(cfg.min_crop_fraction, 1.0) if self.train else 1.0
        side = max(1, round(min(img.width, img.height) * fraction))
        left = rng.randint(0, img.width - side) if self.train else (img.width - side) // 2
        top = rng.randint(0, img.height - side) if self.train else (img.height - side) // 2
        square = img.crop((left, top, left + side, top + side))
        boxes = boxes_in_square(self.file_boxes.get(self.files[index], []), scale, left, top, side)
        rng.shuffle(boxes) if self.train else boxes.sort(key=lambda b: -b[2] * b[3])
        if self.train and rng.random() < 0.5:
            square = square.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            boxes = [(side - x - w, y, w, h) for x, y, w, h in boxes]
        if self.cutouts and (not boxes or rng.random() < cfg.composite_probability):
            obj = self.cutout(rng.randrange(len(self.cutouts)))
            pasted = paste_object(square, obj, rng, PASTE_SCALE) if obj is not None else None
            if pasted is not None:  # the pasted object hides what was under it: its box goes first
                boxes = [pasted] + boxes
        boxes = boxes[:cfg.max_instances]
        lightness, chroma = to_tensors(np.asarray(square.resize((size, size), Image.BILINEAR, reducing_gap=2.0)), self.space)
        crops, normalised, valid = self.instance_inputs(square, boxes, side)
        extra = () if self.crops.reference_fraction < 0 else self.reference(img, square, rng)
        return (lightness, chroma, crops, normalised, valid, *extra)

    def instance_inputs(self, square: Image.Image, boxes, side: int):
        cfg = self.config
        crops = torch.zeros(cfg.max_instances, 1, cfg.instance_size, cfg.instance_size)
        normalised = torch.tensor([[0.0, 0.0, 1.0, 1.0]] * cfg.max_instances)
        valid = torch.zeros(cfg.max_instances)
        for number, (x, y, w, h) in enumerate(boxes):
            crop = square.resize((cfg.instance_size,) * 2, Image.BILINEAR, box=(x, y, x + w, y + h), reducing_gap=2.0)
            crops[number] = to_tensors(np.asarray(crop), self.space)[0]
            normalised[number] = torch.tensor([x / side, y / side, (x + w) / side, (y + h) / side])
            valid[number] = 1.0
        return crops, normalised, valid


# ---------------------------------------------------------------------------- training


def instance_hints(hint_ab: torch.Tensor, hint_mask: torch.Tensor, boxes: torch.Tensor, size: int):
    """Each instance's part of the whole square's hints, resized (nearest) to its crop: (N * K, 2 | 1, s, s)."""
    n, k = boxes.shape[:2]
    side = hint_ab.shape[-1]
    ab, mask = [], []
    for item in range(n):
        for number in range(k):
            x0, y0, x1, y1 = (boxes[item, number] * side).round().long().tolist()
            x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
            ab.append(F.interpolate(hint_ab[item:item + 1, :, y0:y1, x0:x1], size=(size, size), mode="nearest"))
            mask.append(F.interpolate(hint_mask[item:item + 1, :, y0:y1, x0:x1], size=(size, size), mode="nearest"))
    return torch.cat(ab), torch.cat(mask)


class FusionTrainer:
    def __init__(self, config: FusionConfig, show_progress: bool = True):
        config.validate()
        self.config = config
        if config.threads > 0:
            torch.set_num_threads(config.threads)
        seed_everything(config.seed)
        self.out = Path(config.out)
        self.out.mkdir(parents=True, exist_ok=True)
        full, self.full_config, self.full_checkpoint = load_checkpoint(config.full)
        instance, self.instance_config, self.instance_checkpoint = load_checkpoint(config.instance)
        if full.spec != instance.spec:
            raise ValueError(f"the full ({full.spec}) and instance ({instance.spec}) networks differ")
        self.model = FusionColorizer(full, instance)
        self.spec = full.spec
        bins = self.full_checkpoint["bins"].numpy()
        self.loss_fn = make_loss("classification", bins, self.full_checkpoint["rebalance_weights"].numpy())
        self.optimizer = torch.optim.AdamW(self.model.fusion_parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.hint_settings = HintSettings(none_fraction=self.full_config.hint_none_fraction,
                                          geometric_p=self.full_config.hint_geometric_p,
                                          max_patch=self.full_config.hint_max_patch)
        self._setup_data()
        self.step, self.elapsed_s, self.best_val, self.val_full_only = 0, 0.0, float("inf"), None
        self._since_best = 0
        self.show_progress = show_progress

    def _setup_data(self) -> None:
        cfg, root = self.config, Path(self.config.data)
        crops = CropSettings(crop_size=cfg.crop_size, reference_fraction=(self.full_config.reference_fraction
                                                                         if self.spec.global_hints else -1.0))
        cutouts = data_module.list_cutouts(root)
        self.train_files = data_module.list_images(root, "train")
        self.val_files = data_module.list_images(root, "val")
        self.train_set = FusionCrops(self.train_files, boxes_by_file(root, "train"), "lab", crops, True, cfg, cutouts)
        self.val_set = FusionCrops(self.val_files, boxes_by_file(root, "val"), "lab", crops, False, cfg, cutouts)

    def loader(self, dataset, shuffle: bool) -> DataLoader:
        workers = self.config.workers
        return DataLoader(dataset, batch_size=self.config.batch_size, shuffle=shuffle, num_workers=workers,
                          persistent_workers=workers > 0, drop_last=shuffle,
                          generator=torch.Generator().manual_seed(self.config.seed))

    def loss(self, batch, rng: random.Random, use_instances: bool = True) -> torch.Tensor:
        lightness, chroma, crops, boxes, valid, *reference = batch
        n, k = boxes.shape[:2]
        full_guidance, instance_guidance = {}, {}
        if self.spec.local_hints:
            hint_ab, hint_mask = simulate_local_hints(chroma, rng, self.hint_settings)
            full_guidance.update(hint_ab=hint_ab, hint_mask=hint_mask)
            crop_ab, crop_mask = instance_hints(hint_ab, hint_mask, boxes, crops.shape[-1])
            instance_guidance.update(hint_ab=crop_ab, hint_mask=crop_mask)
        if self.spec.global_hints:
            full_guidance.update(reference_hist=reference[0], reference_flag=reference[1])
            instance_guidance.update(reference_hist=reference[0].repeat_interleave(k, 0),
                                     reference_flag=reference[1].repeat_interleave(k, 0))
        with torch.no_grad():
            _, features = self.model.instance_features(crops.flatten(0, 1), **instance_guidance)
        valid = valid if use_instances else torch.zeros_like(valid)
        prediction = self.model(lightness, features, boxes, valid, **full_guidance)
        return self.loss_fn(prediction, chroma)

    def run(self) -> None:
        cfg = self.config
        loader = self.loader(self.train_set, shuffle=True)
        started, epoch = time.monotonic(), 0
        self.model.train()
        while not self._done():
            self.train_set.set_epoch(epoch)
            for batch in loader:
                self.elapsed_s = time.monotonic() - started
                if self._done():
                    break
                for group in self.optimizer.param_groups:
                    group["lr"] = get_lr(cfg.lr, training_progress(cfg, self.step, self.elapsed_s), cfg.warmup_fraction)
                loss = self.loss(batch, random.Random(hash((cfg.seed, self.step))))
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                self.step += 1
                if self.step % cfg.log_every_steps == 0:
                    value = float(loss.detach())
                    self._log({"event": "train", "step": self.step, "loss": value, "elapsed_s": self.elapsed_s})
                    if self.show_progress:
                        print(f"step {self.step} loss {value:.4f} ({self.elapsed_s / 60:.1f} min)", file=sys.stderr)
                if self.step % cfg.val_every_steps == 0 and self.validate_and_save():
                    self._log({"event": "early_stop", "step": self.step, "best_val": self.best_val})
                    return self._final()
            epoch += 1
        self.validate_and_save()
        self._final()

    def _done(self) -> bool:
        return training_progress(self.config, self.step, self.elapsed_s) >= 1.0

    @torch.no_grad()
    def validation_loss(self, use_instances: bool = True) -> float:
        self.model.eval()
        total, count = 0.0, 0
        for number, batch in enumerate(self.loader(self.val_set, shuffle=False)):
            loss = self.loss(batch, random.Random(hash((self.config.seed, -1, number))), use_instances)
            total += float(loss) * batch[0].shape[0]
            count += batch[0].shape[0]
        self.model.train()
        return total / max(1, count)

    def validate_and_save(self) -> bool:
        """Validate, write last.pt (and best.pt); True when patience says stop."""
        if self.val_full_only is None:
            self.val_full_only = self.validation_loss(use_instances=False)
        val = self.validation_loss()
        improved = val < self.best_val
        self.best_val = min(self.best_val, val)
        self._since_best = 0 if improved else self._since_best + 1
        state = self.checkpoint_state()
        atomic_save(state, self.out / "last.pt")
        if improved:
            atomic_save(state, self.out / "best.pt")
        self._log({"event": "val", "step": self.step, "val_loss": val, "val_full_only": self.val_full_only,
                   "best_val": self.best_val, "elapsed_s": self.elapsed_s})
        return self.config.patience > 0 and self._since_best >= self.config.patience

    def _final(self) -> None:
        atomic_save(self.checkpoint_state(), self.out / "final.pt")

    def checkpoint_state(self) -> dict:
        fusion = {k: v for k, v in self.model.state_dict().items() if not k.startswith(("full.", "instance."))}
        return {
            "format": FUSION_FORMAT, "config": self.config.to_dict(), "fusion": fusion,
            "full": _network_record(self.full_checkpoint, self.config.full),
            "instance": _network_record(self.instance_checkpoint, self.config.instance),
            "step": self.step, "elapsed_s": self.elapsed_s, "best_val": self.best_val,
            "val_full_only": self.val_full_only, "train_images": len(self.train_files),
        }

    def _log(self, record: dict) -> None:
        with open(self.out / "log.jsonl", "a") as handle:
            handle.write(json.dumps(record) + "\n")


def _network_record(checkpoint: dict, path: str) -> dict:
    """What export needs to rebuild a frozen network, plus where it came from."""
    keep = ("format", "config", "model", "bins", "chroma_scale", "rebalance_weights", "bin_prior", "step", "elapsed_s",
            "best_val", "train_images", "val_images")
    return {**{k: checkpoint[k] for k in keep if k in checkpoint}, "source": str(path), "sha256": file_sha256(Path(path))}


def load_fusion_checkpoint(path) -> tuple[FusionColorizer, dict]:
    """(the fused model in eval mode with its frozen networks, the checkpoint) from a train-fusion checkpoint."""
    from training.config import TrainConfig
    from training.model import Colorizer
    from training.train import model_spec

    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if checkpoint.get("format") != FUSION_FORMAT:
        raise ValueError(f"{path} is not a train-fusion checkpoint")
    networks = []
    for key in ("full", "instance"):
        record = checkpoint[key]
        network = Colorizer(model_spec(TrainConfig.from_dict(record["config"]), record["bins"].shape[0]))
        network.load_state_dict(record["model"])
        networks.append(network)
    model = FusionColorizer(*networks)
    model.load_state_dict({**checkpoint["fusion"], **{f"full.{k}": v for k, v in checkpoint["full"]["model"].items()},
                           **{f"instance.{k}": v for k, v in checkpoint["instance"]["model"].items()}})
    return model.eval(), checkpoint


def main(argv=None, command: str = "train-fusion") -> int:
    parser = argparse.ArgumentParser(prog=f"python -m training {command}", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quiet", action="store_true")
    add_arguments(parser, FusionConfig)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        config = config_from_args(args, config_class=FusionConfig)
        trainer = FusionTrainer(config, show_progress=not args.quiet)
        (trainer.out / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
        print(f"fusion on {len(trainer.train_files)} photos ({len(trainer.val_files)} val)", file=sys.stderr)
        trainer.run()
    except (ValueError, FileNotFoundError, data_module.DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
