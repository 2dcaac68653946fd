"""Su et al.'s fusion module (Instance-aware Image Colorization, CVPR 2020) around two frozen colorizers.

At each decoder level of the full-image network (model.DECODER_LEVELS), every instance's decoder features
(from the instance network on its crop) are pasted into the instance's box; a small network predicts a weight
map for the full-image features and one for each instance's; a softmax across them (an instance's weight is 0
outside its box and for padding) gives the per-pixel mixture that the full-image decoder continues from.
Both colorizers stay frozen: only the weight networks learn. An instance marked invalid changes nothing, so
with no instance the output is exactly the full-image network's.

Boxes are (N, K, 4) x0, y0, x1, y1 normalised to the image; instance features (N * K, C, h, w), instance-major
per image; valid (N, K) is 1 for a real instance, 0 for padding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.model import Colorizer

MASKED = 1e4           # subtracted from the weight logits of an instance outside its box: softmax weight exactly 0
INSTANCE_BIAS = -3.0   # initial weight logit of an instance: the fusion starts close to the full-image network


class WeightNet(nn.Module):
    """Per-pixel weight logits of one feature map: 1x1 to 16 channels, then two 3x3 convolutions (lighter than Su et
    al.'s three 3x3 layers on the full width; this runs on up to 16 crops and the whole image at every level)."""

    def __init__(self, channels: int, hidden: int = 16, bias: float = 0.0):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True),
                                  nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(hidden, 1, 3, padding=1))
        nn.init.zeros_(self.body[-1].weight)
        nn.init.constant_(self.body[-1].bias, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def paste(maps: torch.Tensor, boxes: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Resample each (C, h, w) map into its box of an (height, width) canvas.

    maps (B, C, h, w), boxes (B, 4) normalised x0, y0, x1, y1 -> (B, C, height, width) and inside (B, 1, height, width),
    1 where a canvas cell's centre is in the box. Cells outside carry the map's border values (masked by the caller).
    The same as grid_sample (bilinear, border padding, align_corners=False), as two matrix products: a box resize
    is separable, and onnxruntime's GridSample is about 20 times slower than MatMul on CPU here.
    """
    xs = (torch.arange(width, dtype=maps.dtype, device=maps.device) + 0.5) / width
    ys = (torch.arange(height, dtype=maps.dtype, device=maps.device) + 0.5) / height
    x0, y0, x1, y1 = (boxes[:, i:i + 1] for i in range(4))
    u = (xs[None, :] - x0) / (x1 - x0).clamp_min(1e-6)  # (B, width): 0..1 across the box
    v = (ys[None, :] - y0) / (y1 - y0).clamp_min(1e-6)  # (B, height)
    across = _bilinear_rows(u, maps.shape[3])  # (B, width, w)
    down = _bilinear_rows(v, maps.shape[2])    # (B, height, h)
    sampled = down[:, None] @ maps @ across.transpose(1, 2)[:, None]
    inside = (((u >= 0) & (u < 1)).float()[:, None, None, :] * ((v >= 0) & (v < 1)).float()[:, None, :, None])
    return sampled, inside


def _bilinear_rows(positions: torch.Tensor, size: int) -> torch.Tensor:
    """(B, n) positions 0..1 along a map of `size` cells -> (B, n, size) bilinear weights (each row sums to 1);
    positions outside the map take its edge cell (border padding)."""
    source = (positions * size - 0.5).clamp(0, size - 1)
    cells = torch.arange(size, dtype=positions.dtype, device=positions.device)
    return torch.relu(1 - (source[..., None] - cells).abs())


class FusionColorizer(nn.Module):
    """The fused colorizer: frozen full-image and instance Colorizers plus trainable weight networks."""

    def __init__(self, full: Colorizer, instance: Colorizer):
        super().__init__()
        if full.level_channels() != instance.level_channels():
            raise ValueError("the full-image and instance networks must have the same decoder widths")
        self.full, self.instance = full, instance
        for network in (full, instance):
            network.requires_grad_(False)
            network.encoder_frozen = True
        channels = full.level_channels()
        self.full_weights = nn.ModuleList(WeightNet(c) for c in channels)
        self.instance_weights = nn.ModuleList(WeightNet(c, bias=INSTANCE_BIAS) for c in channels)

    def fusion_parameters(self) -> list[nn.Parameter]:
        return [*self.full_weights.parameters(), *self.instance_weights.parameters()]

    def train(self, mode: bool = True) -> "FusionColorizer":
        super().train(mode)
        self.full.eval()  # frozen networks: BatchNorm keeps its statistics, whatever the mode
        self.instance.eval()
        return self

    def instance_features(self, crops: torch.Tensor, **guidance) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(the crops' own output, their features per level): the instance network on (N * K, 1, s, s) crops."""
        return self.instance.forward_with_features(crops, **guidance)

    def fuse_level(self, level: int, x: torch.Tensor, features: torch.Tensor, boxes: torch.Tensor,
                   valid: torch.Tensor) -> torch.Tensor:
        n, k = boxes.shape[:2]
        height, width = x.shape[-2:]
        logits = self.instance_weights[level](features)  # (N * K, 1, h_k, w_k), at the crop's own resolution
        pasted, inside = paste(torch.cat([features, logits], dim=1), boxes.reshape(n * k, 4), height, width)
        pasted = pasted.reshape(n, k, -1, height, width)
        keep = inside.reshape(n, k, 1, height, width) * valid.reshape(n, k, 1, 1, 1)
        instance_logits = pasted[:, :, -1:] + (keep - 1) * MASKED
        full_logits = self.full_weights[level](x)[:, None]  # (N, 1, 1, h, w)
        weights = torch.softmax(torch.cat([full_logits, instance_logits], dim=1), dim=1)
        return weights[:, 0] * x + (weights[:, 1:] * pasted[:, :, :-1]).sum(dim=1)

    def forward(self, lightness: torch.Tensor, features: list[torch.Tensor], boxes: torch.Tensor, valid: torch.Tensor,
                hint_ab=None, hint_mask=None, reference_hist=None, reference_flag=None) -> torch.Tensor:
        with torch.no_grad():
            (skip4, skip8, skip16), deep = self.full.encoder(self.full.normalise(lightness))

        def fuse(level: int, x: torch.Tensor) -> torch.Tensor:
            return self.fuse_level(level, x, features[level], boxes, valid)

        return self.full.decode(lightness, skip4, skip8, skip16, deep, hint_ab, hint_mask, reference_hist,
                                reference_flag, fuse=fuse)

