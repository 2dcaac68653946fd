"""`python -m training train --data DIR --out RUN [options]`: train the full-image colorizer.

Single process:  python -m training train --data /path/pool --out runs/full --max-minutes 45
Multi-GPU/node:  torchrun --nproc_per_node=N -m training train ...   (DistributedDataParallel; gloo on CPU)
Resume:          python -m training train --resume runs/full/last.pt [--max-minutes 60]

The run folder gets last.pt (every validation), best.pt (lowest validation loss), final.pt, config.json
and log.jsonl. Checkpoints hold only tensors and plain values, and are loaded with weights_only=True.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from training import data as data_module
from training.config import TrainConfig, add_arguments, config_from_args
from training.hints import HintSettings, simulate_local_hints
from training.losses import CHROMA_SCALE, chroma_bins, make_loss, nearest_bin_histogram, rebalancing_weights
from training.model import Colorizer, ModelSpec, default_mobilenet_weights, load_imagenet_weights

CHECKPOINT_FORMAT = 1
REGRESSION_OUTPUT_SCALE = 50.0  # chroma units per unit of the regression head's output
VAL_COMPOSITES = 48  # instance crops: seeded cut-out composites on val photos, besides their boxes


# ---------------------------------------------------------------------------- pure helpers


def get_lr(base_lr: float, progress: float, warmup_fraction: float) -> float:
    """Linear warm-up, then cosine decay to 5% of base_lr, as a function of training progress in [0, 1]."""
    progress = min(max(progress, 0.0), 1.0)
    if warmup_fraction > 0 and progress < warmup_fraction:
        return base_lr * (progress / warmup_fraction)
    span = max(1e-8, 1.0 - warmup_fraction)
    cosine = 0.5 * (1.0 + math.cos(math.pi * (progress - warmup_fraction) / span))
    return base_lr * (0.05 + 0.95 * cosine)


def training_progress(config: TrainConfig, step: int, elapsed_s: float) -> float:
    """Fraction of the budget used: the larger of the step and time fractions (whichever limit is set)."""
    fractions = []
    if config.max_steps > 0:
        fractions.append(step / config.max_steps)
    if config.max_minutes > 0:
        fractions.append(elapsed_s / (60.0 * config.max_minutes))
    return max(fractions)


def model_spec(config: TrainConfig, num_bins: int) -> ModelSpec:
    return ModelSpec(
        out_channels=num_bins if config.loss == "classification" else 2,
        input_scale=100.0 if config.colour_space == "lab" else 1.0,
        decoder_width=config.decoder_width,
        output_scale=1.0 if config.loss == "classification" else REGRESSION_OUTPUT_SCALE,
        local_hints=config.local_hints,
        global_hints=config.global_hints,
        hist_bins=num_bins if config.global_hints else 0,
        hint_attention=config.hint_attention,
        hint_shortcut=config.hint_shortcut,
    )


def hint_settings(config: TrainConfig) -> HintSettings:
    return HintSettings(none_fraction=config.hint_none_fraction, geometric_p=config.hint_geometric_p,
                        max_patch=config.hint_max_patch)


def atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> tuple[Colorizer, TrainConfig, dict]:
    """Rebuild the trained model (eval mode, CPU) from a checkpoint; returns (model, config, checkpoint)."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a gimp-colorize training checkpoint (format {checkpoint.get('format')!r})")
    return model_from_checkpoint(checkpoint), TrainConfig.from_dict(checkpoint["config"]), checkpoint


def model_from_checkpoint(checkpoint: dict) -> Colorizer:
    """The trained Colorizer (eval mode) of an already loaded checkpoint dict."""
    config = TrainConfig.from_dict(checkpoint["config"])
    model = Colorizer(model_spec(config, checkpoint["bins"].shape[0]))
    model.load_state_dict(checkpoint["model"])
    return model.eval()


# ---------------------------------------------------------------------------- distributed setup


class Distributed:
    """Rank/world from torchrun's environment; a no-op in a single process."""

    def __init__(self, device: torch.device):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def agree_values(self, *values: float) -> tuple[float, ...]:
        """Rank 0's values for everyone: time-based decisions that differed between ranks would deadlock DDP."""
        if self.world == 1:
            return values
        tensor = torch.tensor(values, dtype=torch.float64)
        dist.broadcast(tensor, src=0)
        return tuple(tensor.tolist())

    def close(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def pick_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but CUDA is not available")
    if name == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ---------------------------------------------------------------------------- trainer


class Trainer:
    """Owns model, optimiser, data and the loop. `run()` trains until the step/time budget is used up."""

    def __init__(self, config: TrainConfig, resume: dict | None = None, show_progress: bool = True):
        config.validate()
        self.config = config
        self.device = pick_device(config.device)
        self.dist = Distributed(self.device)
        self.show_progress = show_progress and self.dist.main
        if config.threads > 0:
            torch.set_num_threads(config.threads)
        seed_everything(config.seed + self.dist.rank)
        self.out = Path(config.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.step, self.elapsed_s, self.best_val = 0, 0.0, float("inf")
        self._last_saved_step, self._last_val_loss = -1, None
        self._validations_since_best = 0
        self._setup_data()
        self._setup_model(resume)

    # -- setup

    def _setup_data(self) -> None:
        cfg = self.config
        root = Path(cfg.data)
        self.train_files = data_module.list_images(root, "train", cfg.val_fraction)
        try:
            self.val_files = data_module.list_images(root, "val", cfg.val_fraction)
        except data_module.DataError:
            self.val_files = []  # tiny folders: no early stopping, best.pt follows the training loss
        crops = data_module.CropSettings(crop_size=cfg.crop_size, min_crop_fraction=cfg.min_crop_fraction,
                                         cutout_probability=cfg.cutout_probability,
                                         degrade_probability=cfg.degrade_probability,
                                         reference_fraction=cfg.reference_fraction if cfg.global_hints else -1.0)
        self.cutouts = data_module.list_cutouts(root)
        if cfg.crops == "instance":
            self._setup_instance_crops(root, crops)
        else:
            self.train_set = data_module.ColourCrops(self.train_files, cfg.colour_space, crops, train=True,
                                                     samples_per_image=cfg.samples_per_image, seed=cfg.seed,
                                                     cutouts=self.cutouts)
            self.val_set = data_module.ColourCrops(self.val_files, cfg.colour_space, crops, train=False)
        self.sampler = (DistributedSampler(self.train_set, self.dist.world, self.dist.rank, shuffle=True, seed=cfg.seed)
                        if self.dist.world > 1 else None)

    def _setup_instance_crops(self, root: Path, crops) -> None:
        """Object crops (pseudo-boxes of the pool + cut-out composites) for the instance network."""
        from training.instance_data import InstanceCrops, pseudo_boxes

        cfg = self.config
        boxes = pseudo_boxes(root, "train")
        self.train_set = InstanceCrops(self.train_files, boxes, cfg.colour_space, crops, train=True,
                                       composites=round(cfg.composites_per_box * len(boxes)), seed=cfg.seed,
                                       cutouts=self.cutouts)
        # without val photos validation_loss() is None and never reads val_set
        self.val_set = InstanceCrops(self.val_files, pseudo_boxes(root, "val"), cfg.colour_space, crops, train=False,
                                     composites=VAL_COMPOSITES, seed=cfg.seed,
                                     cutouts=self.cutouts) if self.val_files else None

    def _rebalance_weights(self, bins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        samples = data_module.chroma_samples(self.train_files, self.config.colour_space)
        return rebalancing_weights(nearest_bin_histogram(samples, bins), bins)

    def _setup_model(self, resume: dict | None) -> None:
        cfg = self.config
        self.bins = chroma_bins(cfg.colour_space)
        if resume is not None:
            weights, prior = resume["rebalance_weights"].numpy(), resume["bin_prior"].numpy()
        else:
            weights, prior = self._rebalance_weights(self.bins)
        self.rebalance, self.prior = weights, prior
        self.model = Colorizer(model_spec(cfg, len(self.bins)))
        if hasattr(self.model, "shortcut"):  # the hint shortcut speaks in the head's bins
            self.model.shortcut.bins.copy_(torch.from_numpy(np.asarray(self.bins)))
        if resume is None and cfg.init_from:
            self._load_initial_weights(cfg.init_from)
        elif resume is None and cfg.pretrained:
            load_imagenet_weights(self.model.encoder, cfg.encoder_weights or default_mobilenet_weights())
        self.model.to(self.device)
        self.loss_fn = make_loss(cfg.loss, self.bins, weights if cfg.rebalance else None).to(self.device)
        self.optimizer = torch.optim.AdamW(
            [{"params": self.model.decoder_parameters(), "lr_factor": 1.0},
             {"params": self.model.encoder_parameters(), "lr_factor": cfg.encoder_lr_factor}],
            lr=cfg.lr, weight_decay=cfg.weight_decay)
        if resume is not None:
            self.model.load_state_dict(resume["model"])
            self.optimizer.load_state_dict(resume["optimizer"])
            self.step, self.elapsed_s, self.best_val = resume["step"], resume["elapsed_s"], resume["best_val"]
        self.net = self.model
        if self.dist.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            # the frozen-encoder phase leaves encoder parameters without gradients
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=ids, find_unused_parameters=cfg.freeze_encoder_fraction > 0)
        self.use_amp = cfg.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)

    def _load_initial_weights(self, path: str) -> None:
        """Start from another run's weights (e.g. the instance network from the full-image model)."""
        other, _, _ = load_checkpoint(path)
        if other.spec != self.model.spec:
            raise ValueError(f"--init-from {path}: its network ({other.spec}) differs from this run's ({self.model.spec})")
        self.model.load_state_dict(other.state_dict())

    def loader(self, dataset, shuffle: bool, sampler=None) -> DataLoader:
        workers = self.config.workers
        return DataLoader(dataset, batch_size=self.config.batch_size, shuffle=shuffle and sampler is None,
                          sampler=sampler, num_workers=workers, persistent_workers=workers > 0,
                          pin_memory=self.device.type == "cuda", drop_last=shuffle,
                          generator=torch.Generator().manual_seed(self.config.seed))

    # -- loop

    def run(self) -> dict:
        history = {"train_loss": [], "val_loss": []}
        train_loader = self.loader(self.train_set, shuffle=True, sampler=self.sampler)
        if len(train_loader) == 0:
            raise data_module.DataError(f"fewer training crops than one batch ({self.config.batch_size}): lower --batch-size")
        self._bar = self._progress_bar()
        self._clock_start = time.monotonic() - self.elapsed_s
        self._last_val = time.monotonic()
        self._window = [0, time.monotonic()]  # images, start time (for images/s)
        epoch = self.step // len(train_loader)
        while not self._train_epoch(train_loader, epoch, history):
            epoch += 1
        if self._bar is not None:
            self._bar.close()
        history["val_loss"].append(self.validate_and_save(final=True))
        self.dist.close()
        return history

    def _train_epoch(self, loader: DataLoader, epoch: int, history: dict) -> bool:
        """One pass over the loader; returns True once the budget is used up."""
        self.train_set.set_epoch(epoch)
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)
        for batch in loader:
            # every rank uses rank 0's clock, so time-based choices (LR, freezing, stopping) never differ
            (self.elapsed_s,) = self.dist.agree_values(time.monotonic() - self._clock_start)
            if self._done():
                return True
            history["train_loss"].append(self.train_step(*batch))
            self._report(history["train_loss"][-1], batch[0].shape[0])
            (validate,) = self.dist.agree_values(float(self._validation_due(self._last_val)))
            if validate:
                history["val_loss"].append(self.validate_and_save())
                self._last_val = time.monotonic()
                (stop,) = self.dist.agree_values(float(self._early_stop_due()))
                if stop:
                    self._log({"event": "early_stop", "step": self.step, "best_val": self.best_val})
                    return True
        return self._done()

    def _early_stop_due(self) -> bool:
        """The val loss has not improved for `patience` validations (the small pool overfits quickly)."""
        return self.config.patience > 0 and self._validations_since_best >= self.config.patience

    def _report(self, loss: float, batch: int) -> None:
        self._window[0] += batch * self.dist.world
        if self.step % self.config.log_every_steps == 0:
            rate = self._window[0] / max(1e-6, time.monotonic() - self._window[1])
            self._log({"event": "train", "step": self.step, "loss": loss, "images_per_s": rate,
                       "lr": self.optimizer.param_groups[0]["lr"], "elapsed_s": self.elapsed_s})
            if self._bar is not None:
                self._bar.set_postfix(loss=f"{loss:.3f}", img_s=f"{rate:.1f}")
            self._window = [0, time.monotonic()]
        if self._bar is not None:
            self._bar.update(1)

    def _done(self) -> bool:
        return training_progress(self.config, self.step, self.elapsed_s) >= 1.0

    def _validation_due(self, last_val: float) -> bool:
        cfg = self.config
        if cfg.val_every_steps > 0:
            return self.step % cfg.val_every_steps == 0
        return time.monotonic() - last_val >= 60.0 * cfg.val_every_minutes

    def guidance(self, chroma: torch.Tensor, references: tuple, rng: random.Random) -> dict[str, torch.Tensor]:
        """The guided model's extra inputs for a batch: simulated colour points and the reference histograms."""
        extra = {}
        if self.config.local_hints:
            extra["hint_ab"], extra["hint_mask"] = simulate_local_hints(chroma, rng, hint_settings(self.config))
        if self.config.global_hints:
            extra["reference_hist"], extra["reference_flag"] = references
        return {name: value.to(self.device, non_blocking=True) for name, value in extra.items()}

    def pixel_weights(self, extra: dict, prediction: torch.Tensor) -> torch.Tensor | None:
        """Loss weights per output cell: hinted cells count hint_loss_weight times (a hint must be obeyed)."""
        if self.config.hint_loss_weight == 1.0 or "hint_mask" not in extra:
            return None
        hinted = F.adaptive_max_pool2d(extra["hint_mask"], prediction.shape[-2:])[:, 0]  # (N, h, w)
        return 1.0 + (self.config.hint_loss_weight - 1.0) * hinted

    def train_step(self, lightness: torch.Tensor, chroma: torch.Tensor, *references: torch.Tensor) -> float:
        cfg = self.config
        progress = training_progress(cfg, self.step, self.elapsed_s)
        lr = get_lr(cfg.lr, progress, cfg.warmup_fraction)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group["lr_factor"]
        self.model.encoder_frozen = progress < cfg.freeze_encoder_fraction
        self.net.train()
        extra = self.guidance(chroma, references, random.Random(hash((cfg.seed, self.dist.rank, self.step))))
        lightness = lightness.to(self.device, non_blocking=True)
        chroma = chroma.to(self.device, non_blocking=True)
        autocast = torch.autocast("cuda", dtype=torch.float16) if self.use_amp else nullcontext()
        with autocast:
            prediction = self.net(lightness, **extra)
        loss = self.loss_fn(prediction.float(), chroma, self.pixel_weights(extra, prediction))
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step += 1
        return float(loss.detach())

    @torch.no_grad()
    def validation_loss(self) -> float | None:
        if not self.val_files:
            return None
        self.model.eval()
        total, count = 0.0, 0
        for number, (lightness, chroma, *references) in enumerate(self.loader(self.val_set, shuffle=False)):
            extra = self.guidance(chroma, references, random.Random(hash((self.config.seed, -1, number))))
            prediction = self.model(lightness.to(self.device), **extra)
            loss = self.loss_fn(prediction.float(), chroma.to(self.device), self.pixel_weights(extra, prediction))
            total += float(loss) * lightness.shape[0]
            count += lightness.shape[0]
        return total / max(1, count)

    def validate_and_save(self, final: bool = False) -> float | None:
        """Rank 0 evaluates the val split and writes last.pt (and best.pt when the val loss improved); final.pt at the end."""
        if self.dist.main:
            if self._last_saved_step != self.step:  # the final call right after a validation does not repeat it
                self._last_saved_step = self.step
                self._last_val_loss = self.validation_loss()
                self._save_checkpoints(self._last_val_loss)
            if final:
                atomic_save(self.checkpoint_state(), self.out / "final.pt")
        self.dist.barrier()
        return self._last_val_loss

    def _save_checkpoints(self, val: float | None) -> None:
        improved = val is None or val < self.best_val
        if val is not None and improved:
            self.best_val = val
        self._validations_since_best = 0 if improved else self._validations_since_best + 1
        state = self.checkpoint_state()
        atomic_save(state, self.out / "last.pt")
        if improved:
            atomic_save(state, self.out / "best.pt")
        self._log({"event": "val", "step": self.step, "val_loss": val, "best_val": self.best_val,
                   "elapsed_s": self.elapsed_s})

    def checkpoint_state(self) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "config": self.config.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "elapsed_s": self.elapsed_s,
            "best_val": self.best_val,
            "bins": torch.from_numpy(np.array(self.bins)),
            "chroma_scale": CHROMA_SCALE[self.config.colour_space],
            "rebalance_weights": torch.from_numpy(self.rebalance),
            "bin_prior": torch.from_numpy(self.prior),
            "train_images": len(self.train_files),
            "val_images": len(self.val_files),
        }

    # -- reporting

    def _progress_bar(self):
        if not self.show_progress:
            return None
        from tqdm import tqdm

        total = self.config.max_steps or None
        return tqdm(total=total, initial=self.step, unit="step", dynamic_ncols=True, file=sys.stderr)

    def _log(self, record: dict) -> None:
        if not self.dist.main:
            return
        with open(self.out / "log.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")


# ---------------------------------------------------------------------------- command line


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m training train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resume", help="checkpoint (e.g. RUN/last.pt) to continue from; flags given override its config")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_arguments(parser)
    return parser.parse_args(argv)


def main(argv=None, command: str = "train") -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        resume = torch.load(args.resume, map_location="cpu", weights_only=True) if args.resume else None
        config = config_from_args(args, TrainConfig.from_dict(resume["config"]) if resume else None)
        trainer = Trainer(config, resume=resume, show_progress=not args.quiet)
        if trainer.dist.main:
            (trainer.out / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
            print(f"training on {len(trainer.train_files)} images ({len(trainer.val_files)} val, "
                  f"{len(trainer.cutouts)} cut-outs), "
                  f"device {trainer.device}, world {trainer.dist.world}", file=sys.stderr)
        trainer.run()
    except (ValueError, FileNotFoundError, data_module.DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
