"""`python -m training diverse --guided RUN/best.pt --data POOL --out RUN_DIVERSE`: diverse colourings.

Colour is ambiguous, and a guided colorizer already knows how to follow a colour palette: its global hint
(reference_hist, a distribution over the chroma bins). So diverse mode samples that palette from a learned
p(palette | gray) instead of asking the user for a reference photo:

1. palettes: the chroma histograms of many training crops are clustered (k-means on their square roots,
   i.e. in Hellinger distance) into `codes` prototype palettes;
2. p(code | gray): a small network on the guided model's frozen encoder features (pooled deepest map)
   predicts, for a gray crop, which prototypes its true colours resemble (soft targets);
3. sampling: each sample draws Gumbel noise from its own N(0, 1) noise vector and mixes the prototypes with
   softmax((log p + g) / tau) (a Gumbel-softmax sample: dominated by one probable palette, never two identical
   samples); the mixture is the guided decoder's reference_hist.

The encoder runs once per image; only the decoder runs per sample (DiverseColorizer). Small data can teach
this: clustering needs no labels, and the predictor is a few hundred thousand weights on frozen features.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gimp_colorize import colour
from training import data as data_module
from training.model import ENCODER_OUT_CHANNELS
from training.train import atomic_save, load_checkpoint

DIVERSE_FORMAT = "gimp-colorize-diverse-1"


@dataclass
class DiverseConfig:
    guided: str = ""               # the guided model's checkpoint (its encoder and decoder are used as they are)
    data: str = ""
    out: str = "runs/diverse"
    codes: int = 16                # prototype palettes
    crops_per_image: int = 12
    crop_size: int = 176
    degrade_probability: float = 0.5
    epochs: int = 300
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-3
    target_temperature: float = 0.1   # soft assignment of a crop's palette to the prototypes (Hellinger distance)
    gumbel_temperature: float = 0.5   # tau of the Gumbel-softmax sample
    prior_temperature: float = 1.0    # p(code | gray) ** (1 / this) before sampling: > 1 flattens it (more diverse)
    seed: int = 0
    threads: int = 0
    reuse_prior: str = ""          # a diverse checkpoint whose palettes and prior to reuse with --guided (see reuse())


# ---------------------------------------------------------------------------- palettes


def crop_histogram(chroma: torch.Tensor, bins: np.ndarray, side: int = 32) -> np.ndarray:
    """(2, S, S) chroma of a crop -> its (Q,) chroma distribution (area-averaged to side x side first)."""
    small = F.adaptive_avg_pool2d(chroma[None], side)[0].permute(1, 2, 0).numpy()
    return colour.ab_histogram(small, bins)


def kmeans_palettes(histograms: np.ndarray, codes: int, seed: int, iterations: int = 60) -> np.ndarray:
    """(M, Q) histograms -> (codes, Q) prototypes: k-means++ and Lloyd steps on square roots (Hellinger)."""
    rng = np.random.default_rng(seed)
    points = np.sqrt(histograms)
    centres = [points[rng.integers(len(points))]]
    for _ in range(codes - 1):
        d2 = np.min([((points - c) ** 2).sum(1) for c in centres], axis=0)
        centres.append(points[rng.choice(len(points), p=d2 / d2.sum())])
    centres = np.stack(centres)
    for _ in range(iterations):
        nearest = ((points[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
        for k in range(codes):
            members = points[nearest == k]
            if len(members):
                centres[k] = members.mean(0)
    prototypes = np.maximum(centres, 0) ** 2
    return (prototypes / prototypes.sum(1, keepdims=True)).astype(np.float32)


def soft_targets(histograms: np.ndarray, prototypes: np.ndarray, temperature: float) -> np.ndarray:
    """(M, codes): softmax over -Hellinger distance^2 / temperature."""
    d2 = ((np.sqrt(histograms)[:, None] - np.sqrt(prototypes)[None]) ** 2).sum(-1)
    logits = -d2 / temperature
    logits -= logits.max(1, keepdims=True)
    weights = np.exp(logits)
    return (weights / weights.sum(1, keepdims=True)).astype(np.float32)


# ---------------------------------------------------------------------------- model


class CodePredictor(nn.Module):
    """Pooled encoder features (N, 1280, h, w) -> logits over the palette codes (N, codes)."""

    def __init__(self, channels: int, codes: int, hidden: int = 256):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(2 * channels, hidden), nn.ReLU(inplace=True), nn.Dropout(0.3),
                                 nn.Linear(hidden, codes))

    def forward(self, deep: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([deep.mean(dim=(2, 3)), deep.amax(dim=(2, 3))], dim=1)
        return self.mlp(pooled)


def gumbel_from_normal(noise: torch.Tensor) -> torch.Tensor:
    """N(0, 1) noise -> Gumbel(0, 1) by the normal CDF and the Gumbel inverse CDF (exports as ONNX Erf/Log)."""
    uniform = 0.5 * (1.0 + torch.erf(noise / math.sqrt(2.0)))
    uniform = uniform.clamp(1e-6, 1.0 - 1e-6)
    return -torch.log(-torch.log(uniform))


class DiverseColorizer(nn.Module):
    """(1, 1, H, W) lightness + (S, codes) noise [+ (1, 2|1, H, W) hints] -> (S, Q, H/4, W/4) bin logits.

    The encoder and the palette prior run once; the guided decoder runs once per sample.
    """

    def __init__(self, colorizer: nn.Module, predictor: CodePredictor, prototypes: torch.Tensor,
                 gumbel_temperature: float, prior_temperature: float):
        super().__init__()
        self.colorizer = colorizer
        self.predictor = predictor
        self.register_buffer("prototypes", prototypes)
        self.gumbel_temperature = gumbel_temperature
        self.prior_temperature = prior_temperature

    def palettes(self, deep: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """(S, Q) sampled reference histograms for one image's deepest features."""
        log_prior = F.log_softmax(self.predictor(deep) / self.prior_temperature, dim=1)  # (1, codes)
        weights = torch.softmax((log_prior + gumbel_from_normal(noise)) / self.gumbel_temperature, dim=1)  # (S, codes)
        return weights @ self.prototypes

    def forward(self, lightness: torch.Tensor, noise: torch.Tensor, hint_ab: torch.Tensor | None = None,
                hint_mask: torch.Tensor | None = None) -> torch.Tensor:
        model = self.colorizer
        (skip4, skip8, skip16), deep = model.encoder(model.normalise(lightness))
        histograms = self.palettes(deep, noise)
        samples = noise.shape[0]

        def repeat(t):  # broadcast the image's features to every sample
            return None if t is None else t.expand(samples, *t.shape[1:])

        flags = torch.ones(samples, 1, dtype=lightness.dtype, device=lightness.device)
        return model.decode(repeat(lightness), repeat(skip4), repeat(skip8), repeat(skip16), repeat(deep),
                            repeat(hint_ab), repeat(hint_mask), histograms, flags)


# ---------------------------------------------------------------------------- training the prior


@torch.no_grad()
def encode_crops(model: nn.Module, dataset, bins: np.ndarray, batch: int = 32) -> tuple[torch.Tensor, np.ndarray]:
    """(pooled encoder features (M, 2 * 1280), chroma histograms (M, Q)) of every crop of the dataset."""
    features, histograms = [], []
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=False, num_workers=0)
    for lightness, chroma in loader:
        _, deep = model.encoder(model.normalise(lightness))
        features.append(torch.cat([deep.mean(dim=(2, 3)), deep.amax(dim=(2, 3))], dim=1))  # as CodePredictor pools
        histograms += [crop_histogram(item, bins) for item in chroma]
    return torch.cat(features), np.stack(histograms)


def train_predictor(features: torch.Tensor, targets: torch.Tensor, val_features: torch.Tensor, val_targets: torch.Tensor,
                    config: DiverseConfig, channels: int) -> tuple[CodePredictor, dict]:
    """Soft cross-entropy on cached pooled features; keeps the epoch with the lowest val loss."""
    predictor = CodePredictor(channels, config.codes)
    head = predictor.mlp  # features are already pooled: train the MLP directly
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    best, best_state, history = math.inf, None, []
    for epoch in range(config.epochs):
        head.train()
        order = torch.randperm(len(features), generator=generator)
        for start in range(0, len(order), config.batch_size):
            index = order[start:start + config.batch_size]
            loss = -(targets[index] * F.log_softmax(head(features[index]), dim=1)).sum(1).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        head.eval()
        with torch.no_grad():
            val = float(-(val_targets * F.log_softmax(head(val_features), dim=1)).sum(1).mean())
        history.append({"epoch": epoch, "train_loss": loss.item(), "val_loss": val})
        if val < best:
            best, best_state = val, {k: v.clone() for k, v in predictor.state_dict().items()}
    predictor.load_state_dict(best_state)
    return predictor.eval(), {"best_val_loss": best, "history": history}


def crop_set(files, config: DiverseConfig, train: bool):
    crops = data_module.CropSettings(crop_size=config.crop_size, degrade_probability=config.degrade_probability)
    return data_module.ColourCrops(files, "lab", crops, train=True, samples_per_image=config.crops_per_image,
                                   seed=config.seed + (0 if train else 1))


def same_encoder(first: dict, second: dict) -> bool:
    """Do two guided checkpoints share the encoder (the frozen ImageNet one) weight for weight?"""
    keys = [k for k in first["model"] if k.startswith("encoder.")]
    return bool(keys) and all(k in second["model"] and torch.equal(first["model"][k], second["model"][k]) for k in keys)


def reuse(config: DiverseConfig) -> dict:
    """The palettes and p(palette | gray) of another diverse checkpoint, with the guided model of --guided.

    The prior only ever sees the frozen encoder's features, so it carries over exactly to any guided model whose
    encoder is the same weights (checked); the decoder that follows the sampled palette is the new one.
    """
    old = torch.load(config.reuse_prior, map_location="cpu", weights_only=True)
    if old.get("format") != DIVERSE_FORMAT:
        raise ValueError(f"{config.reuse_prior} is not a diverse-mode checkpoint")
    guided = torch.load(config.guided, map_location="cpu", weights_only=True)
    if not same_encoder(old["guided_checkpoint"], guided):
        raise ValueError(f"the encoder of {config.guided} differs from the one the prior of {config.reuse_prior} "
                         "was learned on: train the prior again (without --reuse-prior)")
    settings = {**old["config"], "guided": config.guided, "out": config.out, "reuse_prior": config.reuse_prior,
                "gumbel_temperature": config.gumbel_temperature, "prior_temperature": config.prior_temperature}
    state = {**old, "config": settings, "guided_checkpoint": guided}
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_save(state, out / "diverse.pt")
    return {**old["summary"], "reused_from": config.reuse_prior}


def run(config: DiverseConfig) -> dict:
    if config.reuse_prior:
        return reuse(config)
    started = time.monotonic()
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    model, guided_config, guided = load_checkpoint(config.guided)
    if not model.spec.global_hints:
        raise ValueError(f"{config.guided} is not a guided model with a global hint input (--global-hints)")
    bins = guided["bins"].numpy()
    root = Path(config.data)
    train_files = data_module.list_images(root, "train")
    val_files = data_module.list_images(root, "val")
    features, histograms = encode_crops(model, crop_set(train_files, config, True), bins)
    val_features, val_histograms = encode_crops(model, crop_set(val_files, config, False), bins)
    prototypes = kmeans_palettes(histograms, config.codes, config.seed)
    targets = torch.from_numpy(soft_targets(histograms, prototypes, config.target_temperature))
    val_targets = torch.from_numpy(soft_targets(val_histograms, prototypes, config.target_temperature))
    predictor, fit = train_predictor(features, targets, val_features, val_targets, config, ENCODER_OUT_CHANNELS)
    with torch.no_grad():
        val_logits = predictor.mlp(val_features)
        hit = (val_logits.argmax(1) == val_targets.argmax(1)).float().mean().item()
    # the prior of a model that knows nothing: the prototypes' share of the training crops
    uniform_loss = float(-(val_targets * torch.log(targets.mean(0, keepdim=True))).sum(1).mean())
    summary = {"train_crops": len(features), "val_crops": len(val_features), "best_val_loss": fit["best_val_loss"],
               "val_loss_of_the_marginal": uniform_loss, "val_top1": hit, "seconds": time.monotonic() - started}
    state = {"format": DIVERSE_FORMAT, "config": asdict(config), "guided_checkpoint": guided,
             "predictor": predictor.state_dict(), "prototypes": torch.from_numpy(prototypes), "summary": summary}
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_save(state, out / "diverse.pt")
    (out / "log.json").write_text(json.dumps({"summary": summary, "history": fit["history"]}, indent=1) + "\n")
    return summary


def load_diverse(path: str | Path) -> tuple[DiverseColorizer, dict]:
    """The DiverseColorizer (eval mode, CPU) of a `python -m training diverse` checkpoint, and the checkpoint."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("format") != DIVERSE_FORMAT:
        raise ValueError(f"{path} is not a diverse-mode checkpoint")
    from training.train import model_from_checkpoint

    colorizer = model_from_checkpoint(state["guided_checkpoint"])
    config = DiverseConfig(**state["config"])
    predictor = CodePredictor(ENCODER_OUT_CHANNELS, config.codes)
    predictor.load_state_dict(state["predictor"])
    model = DiverseColorizer(colorizer, predictor, state["prototypes"], config.gumbel_temperature,
                             config.prior_temperature)
    return model.eval(), state


def parse_args(argv) -> DiverseConfig:
    parser = argparse.ArgumentParser(prog="python -m training diverse", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, value in asdict(DiverseConfig()).items():
        parser.add_argument("--" + name.replace("_", "-"), type=type(value), default=value)
    return DiverseConfig(**vars(parser.parse_args(argv)))


def main(argv=None, command: str = "diverse") -> int:
    config = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        summary = run(config)
    except (ValueError, FileNotFoundError, data_module.DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=1))
    return 0
