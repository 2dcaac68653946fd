"""Is this image a colour photograph worth training on? Plus a perceptual hash for de-duplication.

Everything here is numpy on decoded RGB(A) arrays so the rules can be tested on generated images.
The thresholds were tuned by looking at contact sheets of what the Debian packages contain
(GCompris clip art, OpenCV tutorial diagrams, fotoxx screenshots) next to their real photos.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_SHORT_SIDE = 128
# Share of pixels (6-bit-quantised colours) the 24 most common colours may cover. Flat drawings put
# most pixels in a handful; photos of objects on a plain background or under a clear sky reach 0.8.
MAX_TOP_COLOUR_SHARE = 0.85
MIN_DISTINCT_COLOURS = 400
# Chroma (max - min of R, G, B, 0..255) a photo must show: near-gray images cannot teach colour.
MIN_MEAN_CHROMA = 10.0
MIN_COLOURFUL_SHARE = 0.10   # share of pixels with chroma above COLOURFUL_CHROMA
COLOURFUL_CHROMA = 20
# Share of neighbouring pixel pairs that are exactly equal (at native resolution): sensor noise keeps
# this low in photos, flat fills of drawings and screenshots push it up. Lossy WebP flattens smooth
# photo backgrounds too (GCompris photos reach 0.6), hence the high threshold.
MAX_FLAT_PAIR_SHARE = 0.75
MAX_TRANSPARENT_SHARE = 0.02
MAX_FLAT_NEUTRAL_SHARE = 0.40
MAX_DRAWN_OVERLAY_SHARE = 0.0005
ANALYSIS_SIDE = 256


@dataclass(frozen=True)
class PhotoVerdict:
    reason: str | None          # None: keep; otherwise the filter that rejected it
    stats: dict

    @property
    def keep(self) -> bool:
        return self.reason is None


def judge(rgba: np.ndarray) -> PhotoVerdict:
    """Apply the filters in a fixed order; the first that fires names the reason."""
    stats = photo_stats(rgba)
    return PhotoVerdict(rejection_reason(stats), stats)


def rejection_reason(stats: dict) -> str | None:
    if stats["short_side"] < MIN_SHORT_SIDE:
        return "too_small"
    if stats["transparent_share"] > MAX_TRANSPARENT_SHARE:
        return "transparent"
    if stats["mean_chroma"] < MIN_MEAN_CHROMA or stats["colourful_share"] < MIN_COLOURFUL_SHARE:
        return "near_gray"
    if stats["distinct_colours"] < MIN_DISTINCT_COLOURS or stats["top_colour_share"] > MAX_TOP_COLOUR_SHARE:
        return "few_colours"
    if stats["flat_pair_share"] > MAX_FLAT_PAIR_SHARE or stats["flat_neutral_share"] > MAX_FLAT_NEUTRAL_SHARE:
        return "flat_synthetic"
    if stats["interior_uniform_lines"] > 0:
        return "multi_panel"
    if stats["drawn_overlay_share"] > MAX_DRAWN_OVERLAY_SHARE:
        return "drawn_overlay"
    return None


def photo_stats(rgba: np.ndarray) -> dict:
    rgb, alpha = _split_alpha(rgba)
    small = _shrink(rgb, ANALYSIS_SIDE)
    chroma = small.max(axis=2).astype(np.int16) - small.min(axis=2)
    counts = _colour_counts(small)
    return {
        "short_side": int(min(rgb.shape[:2])),
        "transparent_share": float(np.mean(alpha < 250)) if alpha is not None else 0.0,
        "mean_chroma": float(chroma.mean()),
        "colourful_share": float(np.mean(chroma > COLOURFUL_CHROMA)),
        "distinct_colours": int(counts.size),
        "top_colour_share": float(np.sort(counts)[-24:].sum() / counts.sum()),
        "flat_pair_share": flat_pair_share(_centre_crop(rgb, 512)),
        "flat_neutral_share": flat_neutral_share(small),
        "interior_uniform_lines": interior_uniform_lines(small),
        "drawn_overlay_share": drawn_overlay_share(rgb),
    }


def flat_neutral_share(rgb: np.ndarray) -> float:
    """Share of pixels that are both locally flat and colourless: window chrome, dialog panels, paper.

    JPEG-compressed screenshots escape `flat_pair_share` (the codec adds noise), but their gray
    panels stay within a level or two of their neighbours; photos rarely have that over a large area.
    """
    x = rgb.astype(np.int16)
    diff = np.zeros(rgb.shape[:2], np.int16)
    diff[:-1, :-1] = np.maximum(np.abs(x[1:, :-1] - x[:-1, :-1]).max(axis=2), np.abs(x[:-1, 1:] - x[:-1, :-1]).max(axis=2))
    diff[-1, :] = diff[:, -1] = 255
    chroma = x.max(axis=2) - x.min(axis=2)
    return float(np.mean((diff <= 1) & (chroma < 12)))


def interior_uniform_lines(rgb: np.ndarray) -> int:
    """Number of panel separators: thin runs of uniform, neutral rows/columns inside the image that
    stand out from the content on both sides.

    Side-by-side comparisons and tutorial figures separate their panels with white/black/gray gaps.
    A clear sky or a studio background also gives uniform rows, but those blend into their neighbours.
    """
    return _separators(rgb) + _separators(rgb.transpose(1, 0, 2))


def _separators(rgb: np.ndarray) -> int:
    x = rgb.astype(np.int16)
    uniform = (x.max(axis=1) - x.min(axis=1)).max(axis=1) <= 6  # per row
    count = 0
    for start, stop in _runs(uniform):
        if start == 0 or stop == len(uniform) or stop - start > max(2, 0.05 * len(uniform)):
            continue  # borders are trimmed, wide bands are content (sky, backdrop)
        colour = x[start:stop].mean(axis=(0, 1))
        if colour.max() - colour.min() > 12:
            continue
        before, after = x[start - 1].mean(axis=1), x[stop].mean(axis=1)
        level = colour.mean()
        if np.mean(np.abs(before - level)) > 25 and np.mean(np.abs(after - level)) > 25:
            count += 1
    return count


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of True values."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2], edges[1::2]))


def drawn_overlay_share(rgb: np.ndarray) -> float:
    """Share of pixels in thin strokes of pure primary/secondary colours (keypoints, boxes, contours).

    Clipped saturated areas of real photos (red peppers) are blobs, so only pure pixels with a
    non-pure neighbour on both sides in some direction (1-3 px strokes) count.
    """
    rgb = _centre_crop(rgb, 1024)
    pure = np.all((rgb <= 8) | (rgb >= 247), axis=2) & ((rgb.max(axis=2).astype(np.int16) - rgb.min(axis=2)) > 200)
    if not pure.any():
        return 0.0
    padded = np.pad(pure, 3)
    h, w = pure.shape
    thin = np.zeros_like(pure)
    for dy, dx in ((0, 1), (1, 0)):
        for width in (1, 2, 3):
            before = padded[3 - dy:3 - dy + h, 3 - dx:3 - dx + w]
            after = padded[3 + dy * width:3 + dy * width + h, 3 + dx * width:3 + dx * width + w]
            thin |= pure & ~before & ~after
    return float(thin.mean())


def flat_pair_share(rgb: np.ndarray) -> float:
    """Share of horizontal and vertical neighbour pairs with identical RGB values."""
    if rgb.shape[0] < 2 or rgb.shape[1] < 2:
        return 1.0
    same_h = np.all(rgb[:, 1:] == rgb[:, :-1], axis=2)
    same_v = np.all(rgb[1:] == rgb[:-1], axis=2)
    return float((same_h.sum() + same_v.sum()) / (same_h.size + same_v.size))


def _split_alpha(rgba: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    if rgba.ndim == 2:
        rgba = np.repeat(rgba[:, :, None], 3, axis=2)
    if rgba.shape[2] == 4:
        return rgba[:, :, :3], rgba[:, :, 3]
    return rgba[:, :, :3], None


def _colour_counts(rgb: np.ndarray) -> np.ndarray:
    q = (rgb >> 2).astype(np.int32)  # 6 bits per channel: ignores the faintest noise
    codes = (q[:, :, 0] << 12) | (q[:, :, 1] << 6) | q[:, :, 2]
    return np.unique(codes, return_counts=True)[1]


def _centre_crop(rgb: np.ndarray, side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return rgb[top:top + side, left:left + side]


def _shrink(rgb: np.ndarray, side: int) -> np.ndarray:
    """Box-average down so the long side is at most `side` (whole-number factor, no Pillow needed)."""
    factor = max(1, int(np.ceil(max(rgb.shape[:2]) / side)))
    if factor == 1:
        return rgb
    h, w = (rgb.shape[0] // factor) * factor, (rgb.shape[1] // factor) * factor
    blocks = rgb[:h, :w].reshape(h // factor, factor, w // factor, factor, 3).astype(np.float32)
    return np.rint(blocks.mean(axis=(1, 3))).astype(np.uint8)


# ---- perceptual hash -------------------------------------------------------------------------

HASH_SIZE = 8
_DCT_INPUT = 32


def _dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II basis: row k is the k-th cosine."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    basis = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    basis[0] /= np.sqrt(2.0)
    return basis


_DCT = _dct_matrix(_DCT_INPUT)


def dct_hash(gray32: np.ndarray) -> int:
    """64-bit pHash of a 32x32 float gray image: signs of the low 8x8 DCT terms against their median."""
    if gray32.shape != (_DCT_INPUT, _DCT_INPUT):
        raise ValueError(f"dct_hash needs a {_DCT_INPUT}x{_DCT_INPUT} gray image, got {gray32.shape}")
    coeffs = (_DCT @ gray32.astype(np.float64) @ _DCT.T)[:HASH_SIZE, :HASH_SIZE].ravel()
    # The DC term only measures overall brightness; leave it out of the median.
    bits = coeffs > np.median(coeffs[1:])
    return int(sum(1 << i for i, bit in enumerate(bits) if bit))


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def gray_thumbnail(image) -> np.ndarray:
    """PIL image -> 32x32 float luma, the input of `dct_hash`."""
    from PIL import Image
    gray = image.convert("L").resize((_DCT_INPUT, _DCT_INPUT), Image.Resampling.BOX)
    return np.asarray(gray, dtype=np.float64)


# ---- cut-outs (RGBA objects for compositing) -------------------------------------------------

MIN_OPAQUE_SHARE = 0.05
# Tux Paint stamps are lossless PNGs, so here exact-equal neighbours do mean flat cartoon fills.
MAX_CUTOUT_FLAT_PAIR_SHARE = 0.45
MAX_OPAQUE_SHARE = 0.97


def judge_cutout(rgba: np.ndarray) -> PhotoVerdict:
    """A photographic object on a transparent background: judged on its opaque pixels only."""
    if rgba.ndim != 3 or rgba.shape[2] != 4:
        return PhotoVerdict("no_alpha", {})
    opaque = rgba[:, :, 3] >= 250
    stats = {"short_side": int(min(rgba.shape[:2])), "opaque_share": float(opaque.mean())}
    if stats["short_side"] < MIN_SHORT_SIDE // 2:
        return PhotoVerdict("too_small", stats)
    if not MIN_OPAQUE_SHARE <= stats["opaque_share"] <= MAX_OPAQUE_SHARE:
        return PhotoVerdict("not_a_cutout", stats)
    pixels = rgba[:, :, :3][opaque]
    chroma = pixels.max(axis=1).astype(np.int16) - pixels.min(axis=1)
    counts = _colour_counts(pixels[None])
    both_h = opaque[:, 1:] & opaque[:, :-1]
    both_v = opaque[1:] & opaque[:-1]
    same_h = np.all(rgba[:, 1:, :3] == rgba[:, :-1, :3], axis=2) & both_h
    same_v = np.all(rgba[1:, :, :3] == rgba[:-1, :, :3], axis=2) & both_v
    stats.update(mean_chroma=float(chroma.mean()), distinct_colours=int(counts.size),
                 flat_pair_share=float((same_h.sum() + same_v.sum()) / max(1, both_h.sum() + both_v.sum())))
    if stats["mean_chroma"] < MIN_MEAN_CHROMA:
        return PhotoVerdict("near_gray", stats)
    if stats["distinct_colours"] < MIN_DISTINCT_COLOURS:
        return PhotoVerdict("few_colours", stats)
    if stats["flat_pair_share"] > MAX_CUTOUT_FLAT_PAIR_SHARE:
        return PhotoVerdict("flat_synthetic", stats)
    return PhotoVerdict(None, stats)


class HashIndex:
    """Near-duplicate lookup for 64-bit hashes without comparing against every stored hash.

    Split a hash into 8 bytes: two hashes within 6 differing bits share at least 2 identical bytes
    (pigeonhole), so indexing every PAIR of byte positions finds every candidate exactly; the buckets
    stay small (16-bit keys) even for a million images.
    """

    _PAIRS = tuple((i, j) for i in range(8) for j in range(i + 1, 8))

    def __init__(self, max_distance: int):
        if max_distance > 6:
            raise ValueError("HashIndex finds all matches only up to 6 differing bits")
        self.max_distance = max_distance
        self._buckets: dict[tuple[int, int, int], list[tuple[int, object]]] = {}

    @staticmethod
    def _keys(value: int):
        chunks = [(value >> (8 * k)) & 0xFF for k in range(8)]
        for n, (i, j) in enumerate(HashIndex._PAIRS):
            yield n, chunks[i], chunks[j]

    def add(self, value: int, item) -> None:
        for key in self._keys(value):
            self._buckets.setdefault(key, []).append((value, item))

    def find(self, value: int):
        """The item of some stored hash within max_distance, or None."""
        for key in self._keys(value):
            for stored, item in self._buckets.get(key, ()):
                if hamming(stored, value) <= self.max_distance:
                    return item
        return None
