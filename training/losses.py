"""Losses for the colorizer: rebalanced soft cross-entropy over chroma bins (Zhang et al. 2016), MSE, smooth-L1.

Chroma is handled in "chroma units": Lab a/b as they are; YUV U/V and YCbCr (Cb-0.5)/(Cr-0.5) times
CHROMA_SCALE, which gives them a range comparable to Lab's, so the same bin grid (10) and soft-encoding
sigma (5) apply to every colour space. The exporter divides by the scale again (the ONNX contract
wants the model colour space's own units).

The numpy reference for soft encoding and annealed mean is gimp_colorize.colour; the torch versions
here run on the training device and are tested against it.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gimp_colorize import colour

COLOUR_SPACES = ("lab", "yuv", "ycbcr")
CHROMA_SCALE = colour.CHROMA_UNITS
LOSSES = ("classification", "mse", "smoothl1")
SOFT_K = 5
SOFT_SIGMA = 5.0
REBALANCE_SIGMA = 5.0
REBALANCE_LAMBDA = 0.5


# ---------------------------------------------------------------------------- bins per colour space


@lru_cache(maxsize=None)
def chroma_bins(space: str) -> np.ndarray:
    """(Q, 2) bin centres in chroma units. Lab: colour.ab_bins() (Zhang's 313). YUV/YCbCr: the grid-10
    cells that some 8-bit sRGB colour falls into, same order rule (by first, then second coordinate)."""
    if space == "lab":
        return np.array(colour.ab_bins(), dtype=np.float32)
    if space not in CHROMA_SCALE:
        raise ValueError(f"unknown colour space {space!r}; choose one of {', '.join(COLOUR_SPACES)}")
    values = np.arange(256, dtype=np.float32) / np.float32(255)
    green, blue = np.meshgrid(values, values, indexing="ij")
    span = 20  # cells per side of zero; chroma units stay within +-130
    seen = np.zeros((2 * span + 1, 2 * span + 1), dtype=bool)
    for red in values:  # one 256x256 slab of 8-bit colours at a time keeps memory small
        rgb = np.stack([np.full_like(green, red), green, blue], axis=-1)
        cells = np.floor(rgb_to_model_space(rgb, space)[..., 1:] / colour.AB_GRID + 0.5).astype(np.int32)
        seen[cells[..., 0].ravel() + span, cells[..., 1].ravel() + span] = True
    first, second = np.nonzero(seen)  # row-major: sorted by first, then second coordinate
    cells = np.stack([first - span, second - span], axis=-1)
    return (cells * colour.AB_GRID).astype(np.float32)


def rgb_to_model_space(rgb: np.ndarray, space: str) -> np.ndarray:
    """sRGB float (..., 3) -> (..., 3): lightness in model input units, chroma in chroma units."""
    if space == "lab":
        return colour.rgb_to_lab(rgb)
    if space == "yuv":
        out = colour.rgb_to_yuv(rgb)
    elif space == "ycbcr":
        out = colour.rgb_to_ycbcr(rgb)
        out[..., 1:] -= colour.CHROMA_OFFSET_YCBCR
    else:
        raise ValueError(f"unknown colour space {space!r}; choose one of {', '.join(COLOUR_SPACES)}")
    out[..., 1:] *= CHROMA_SCALE[space]
    return out


# ---------------------------------------------------------------------------- soft encoding / decoding (torch)


def soft_encode_sparse(ab: torch.Tensor, bins: torch.Tensor, k: int = SOFT_K, sigma: float = SOFT_SIGMA):
    """(N, 2, h, w) chroma -> (indices, weights), each (N, k, h, w): Gaussian weights on the k nearest bins, summing to 1.

    Kept sparse: the cross-entropy only needs the k log-probabilities, so the (N, Q, h, w) target is never built.
    """
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2).float()  # (P, 2)
    dist2 = (flat * flat).sum(1, keepdim=True) - 2.0 * flat @ bins.T + (bins * bins).sum(1)[None, :]
    near_d2, indices = torch.topk(dist2, k, dim=1, largest=False)
    near_d2 = near_d2.clamp_min(0.0)
    weights = torch.softmax(-(near_d2 - near_d2[:, :1]) / (2.0 * sigma * sigma), dim=1)
    n, _, h, w = ab.shape
    reshape = lambda t: t.reshape(n, h, w, k).permute(0, 3, 1, 2)  # noqa: E731
    return reshape(indices), reshape(weights)


def soft_encode_dense(ab: torch.Tensor, bins: torch.Tensor, k: int = SOFT_K, sigma: float = SOFT_SIGMA) -> torch.Tensor:
    """(N, 2, h, w) -> (N, Q, h, w) soft targets (for tests and inspection)."""
    indices, weights = soft_encode_sparse(ab, bins, k, sigma)
    dense = torch.zeros(ab.shape[0], bins.shape[0], *ab.shape[2:], dtype=weights.dtype, device=ab.device)
    return dense.scatter_(1, indices, weights)


def annealed_mean(logits: torch.Tensor, bins: torch.Tensor, temperature: float) -> torch.Tensor:
    """(N, Q, h, w) logits -> (N, 2, h, w) chroma: mean of the bins under softmax(logits / T); T = 0 is the mode."""
    if temperature == 0:
        return bins[logits.argmax(dim=1)].permute(0, 3, 1, 2)
    probs = torch.softmax(logits.float() / temperature, dim=1)
    return torch.einsum("nqhw,qc->nchw", probs, bins)


# ---------------------------------------------------------------------------- class rebalancing


def nearest_bin_histogram(chroma: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Count of (..., 2) chroma samples per nearest bin -> (Q,) float64."""
    flat = np.asarray(chroma, dtype=np.float32).reshape(-1, 2)
    counts = np.zeros(len(bins), dtype=np.float64)
    for start in range(0, len(flat), 65536):
        part = flat[start : start + 65536]
        dist2 = (part * part).sum(1, keepdims=True) - 2.0 * part @ bins.T + (bins * bins).sum(1)[None, :]
        counts += np.bincount(dist2.argmin(axis=1), minlength=len(bins))
    return counts


def rebalancing_weights(counts: np.ndarray, bins: np.ndarray, sigma: float = REBALANCE_SIGMA,
                        mix: float = REBALANCE_LAMBDA) -> tuple[np.ndarray, np.ndarray]:
    """Zhang et al. eq. 4: w ∝ ((1 - λ) p~ + λ / Q)^-1, scaled so that E_p~[w] = Σ p~_q w_q = 1.

    p~ is the empirical bin distribution smoothed with a Gaussian of `sigma` chroma units over the bin
    centres. Returns (weights, p~), both (Q,).
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.sum() <= 0:
        raise ValueError("no chroma samples to estimate the class-rebalancing weights from")
    empirical = counts / counts.sum()
    bins64 = np.asarray(bins, dtype=np.float64)
    dist2 = ((bins64[:, None, :] - bins64[None, :, :]) ** 2).sum(-1)
    kernel = np.exp(-dist2 / (2.0 * sigma * sigma))
    smoothed = kernel @ empirical
    smoothed /= smoothed.sum()
    weights = 1.0 / ((1.0 - mix) * smoothed + mix / len(bins))
    weights /= (smoothed * weights).sum()
    return weights.astype(np.float32), smoothed.astype(np.float32)


# ---------------------------------------------------------------------------- loss modules


def downsample_target(chroma: torch.Tensor, size) -> torch.Tensor:
    """Full-resolution (N, 2, H, W) target -> the prediction's resolution by area averaging."""
    if tuple(chroma.shape[-2:]) == tuple(size):
        return chroma
    return F.interpolate(chroma, size=tuple(size), mode="area")


class RebalancedSoftCrossEntropy(nn.Module):
    """Multinomial cross-entropy against soft-encoded targets, each pixel weighted by w[its most likely bin]."""

    def __init__(self, bins: np.ndarray, weights: np.ndarray | None = None):
        super().__init__()
        self.register_buffer("bins", torch.as_tensor(np.asarray(bins), dtype=torch.float32))
        uniform = np.ones(len(bins), dtype=np.float32)
        self.register_buffer("weights", torch.as_tensor(uniform if weights is None else weights, dtype=torch.float32))

    def forward(self, logits: torch.Tensor, chroma: torch.Tensor, pixel_weights: torch.Tensor | None = None) -> torch.Tensor:
        """pixel_weights (N, h, w): extra per-cell weights (e.g. hinted cells), on top of the rebalancing."""
        target = downsample_target(chroma, logits.shape[-2:])
        indices, soft = soft_encode_sparse(target, self.bins)
        log_probs = F.log_softmax(logits.float(), dim=1).gather(1, indices)  # (N, k, h, w)
        pixel_weight = self.weights[indices[:, 0]]  # topk is sorted: index 0 is the nearest bin
        if pixel_weights is not None:
            pixel_weight = pixel_weight * pixel_weights
        return -(pixel_weight * (soft * log_probs).sum(1)).mean()


class RegressionLoss(nn.Module):
    """MSE or smooth-L1 (Huber, delta = 1 chroma unit) on chroma values at the prediction's resolution."""

    def __init__(self, kind: str):
        super().__init__()
        if kind not in ("mse", "smoothl1"):
            raise ValueError(f"unknown regression loss {kind!r}")
        self.kind = kind

    def forward(self, prediction: torch.Tensor, chroma: torch.Tensor, pixel_weights: torch.Tensor | None = None) -> torch.Tensor:
        target = downsample_target(chroma, prediction.shape[-2:])
        if self.kind == "mse":
            return F.mse_loss(prediction.float(), target)
        return F.smooth_l1_loss(prediction.float(), target, beta=1.0)


def make_loss(kind: str, bins: np.ndarray, weights: np.ndarray | None) -> nn.Module:
    if kind == "classification":
        return RebalancedSoftCrossEntropy(bins, weights)
    if kind in ("mse", "smoothl1"):
        return RegressionLoss(kind)
    raise ValueError(f"unknown loss {kind!r}; choose one of {', '.join(LOSSES)}")
