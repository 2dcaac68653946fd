"""Colorization metrics, numpy only: ab accuracy AuC (raw and class-rebalanced), PSNR, SSIM, colourfulness.

Conventions: ab arrays are (H, W, 2) Lab chroma in ab units; RGB arrays are (H, W, 3) 8-bit values (uint8, or
floats on the 0..255 scale).
"""

from __future__ import annotations

import numpy as np

# Zhang et al. 2016, section 3.1: accuracy within an ab L2 threshold, thresholds 0..150 in steps of 1.
MAX_THRESHOLD = 150
# Error histograms have one column per integer ceil(error) 0..150 and one overflow column for errors above 150.
HISTOGRAM_COLUMNS = MAX_THRESHOLD + 2
PEAK_8BIT = 255.0
# Wang et al. 2004: Gaussian window 11x11, sigma 1.5, K1 = 0.01, K2 = 0.03.
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


# ---------------------------------------------------------------------------------------------- ab accuracy AuC


def ab_errors(pred_ab: np.ndarray, true_ab: np.ndarray) -> np.ndarray:
    """Per-pixel Euclidean distance in the ab plane: (H, W)."""
    if pred_ab.shape != true_ab.shape or pred_ab.shape[-1] != 2:
        raise ValueError(f"ab arrays must both be (..., 2) of one shape, got {pred_ab.shape} and {true_ab.shape}")
    diff = pred_ab.astype(np.float64) - true_ab.astype(np.float64)
    return np.sqrt(np.sum(diff * diff, axis=-1))


def error_columns(errors: np.ndarray) -> np.ndarray:
    """Histogram column of each error: ceil(error), 151 for errors above 150.

    For an integer threshold t, error <= t exactly when ceil(error) <= t, so a cumulative sum over these columns
    gives the accuracy at every threshold without 151 comparisons per pixel.
    """
    columns = np.ceil(errors)
    return np.minimum(columns, HISTOGRAM_COLUMNS - 1).astype(np.int64)


def error_histogram(pred_ab: np.ndarray, true_ab: np.ndarray, true_bins: np.ndarray, num_bins: int) -> np.ndarray:
    """Pixel counts by (ground-truth ab bin, error column): (num_bins, 152).

    Keeping the bin axis lets one pass over the images give both the raw AuC (sum over bins) and the rebalanced
    AuC (rows weighted by the set-wide bin frequencies, known only after the last image).
    """
    columns = error_columns(ab_errors(pred_ab, true_ab)).ravel()
    flat = true_bins.ravel().astype(np.int64) * HISTOGRAM_COLUMNS + columns
    counts = np.bincount(flat, minlength=num_bins * HISTOGRAM_COLUMNS)
    return counts.reshape(num_bins, HISTOGRAM_COLUMNS)


def accuracy_curve(column_counts: np.ndarray) -> np.ndarray:
    """Fraction of (weighted) pixels with error <= t for t = 0..150, from a (152,) column histogram."""
    total = column_counts.sum()
    if total <= 0:
        raise ValueError("accuracy curve of an empty histogram")
    return np.cumsum(column_counts)[: MAX_THRESHOLD + 1] / total


def area_under_curve(curve: np.ndarray) -> float:
    """Trapezoidal area under the accuracy curve over thresholds 0..150, divided by 150 so a perfect result is 1.

    For a constant error e with 0 < e <= 150 this is (150.5 - ceil(e)) / 150 (the step at ceil(e) contributes half
    a unit); for e = 0 it is 1 and for e > 150 it is 0.
    """
    return float(np.sum(curve[1:] + curve[:-1]) / 2.0 / MAX_THRESHOLD)


def raw_auc(histogram: np.ndarray) -> float:
    """AuC with every pixel weighted equally, from an error_histogram (or a sum of several)."""
    return area_under_curve(accuracy_curve(histogram.sum(axis=0)))


def rebalancing_weights(bin_counts: np.ndarray) -> np.ndarray:
    """Per-bin pixel weight inversely proportional to the bin's ground-truth frequency (0 for empty bins).

    Every occupied bin then carries the same total weight (Zhang et al.'s class-rebalanced accuracy).
    """
    counts = np.asarray(bin_counts, dtype=np.float64)
    weights = np.zeros_like(counts)
    occupied = counts > 0
    weights[occupied] = 1.0 / counts[occupied]
    return weights


def rebalanced_auc(histogram: np.ndarray, bin_counts: np.ndarray) -> float:
    """AuC with pixels weighted by rebalancing_weights(bin_counts); bin_counts come from the whole evaluation set."""
    weights = rebalancing_weights(bin_counts)
    uncounted = (histogram.sum(axis=1) > 0) & (weights == 0)
    if np.any(uncounted):
        raise ValueError("histogram has pixels in bins that bin_counts says are empty")
    return area_under_curve(accuracy_curve(weights @ histogram))


def nearest_bin_lookup(bins: np.ndarray, grid: float = 10.0):
    """A function mapping ab (..., 2) to the index of the ab bin whose grid cell contains it.

    Bins are centred on multiples of `grid`. A cell without a bin (a colour outside the set, e.g. from rounding at
    the gamut edge) maps to the nearest bin centre, so every pixel gets a bin.
    """
    cells = np.floor(np.asarray(bins, dtype=np.float64) / grid + 0.5).astype(np.int64)
    low = cells.min(axis=0) - 1
    high = cells.max(axis=0) + 1
    size = high - low + 1
    a_centres = (np.arange(size[0]) + low[0]) * grid
    b_centres = (np.arange(size[1]) + low[1]) * grid
    grid_ab = np.stack(np.meshgrid(a_centres, b_centres, indexing="ij"), axis=-1)  # (A, B, 2)
    distances = np.linalg.norm(grid_ab[:, :, None, :] - np.asarray(bins)[None, None], axis=-1)
    table = np.argmin(distances, axis=-1)  # (A, B): nearest bin of every cell
    table[cells[:, 0] - low[0], cells[:, 1] - low[1]] = np.arange(len(bins))

    def lookup(ab: np.ndarray) -> np.ndarray:
        index = np.floor(np.asarray(ab, dtype=np.float64) / grid + 0.5).astype(np.int64) - low
        index = np.clip(index, 0, size - 1)  # far outside: the border cell's nearest bin
        return table[index[..., 0], index[..., 1]]

    return lookup


# ---------------------------------------------------------------------------------------------- PSNR / SSIM


def psnr(pred_rgb: np.ndarray, true_rgb: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB over all RGB values, peak 255; inf for identical images."""
    check_same_shape(pred_rgb, true_rgb)
    diff = pred_rgb.astype(np.float64) - true_rgb.astype(np.float64)
    mse = float(np.mean(diff * diff))
    if mse == 0.0:
        return float("inf")
    return 10.0 * np.log10(PEAK_8BIT**2 / mse)


def gaussian_kernel(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    offsets = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    kernel = np.exp(-(offsets**2) / (2.0 * sigma**2))
    return kernel / kernel.sum()


def filter_valid(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable 2-D filtering of (H, W) keeping only positions where the window fits (no padding)."""
    rows = np.lib.stride_tricks.sliding_window_view(image, len(kernel), axis=0) @ kernel
    return np.lib.stride_tricks.sliding_window_view(rows, len(kernel), axis=1) @ kernel


def ssim_channel(x: np.ndarray, y: np.ndarray, data_range: float = PEAK_8BIT) -> float:
    """Mean SSIM of one channel (Wang et al. 2004), Gaussian-weighted statistics, window fully inside the image."""
    kernel = gaussian_kernel()
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    mu_x, mu_y = filter_valid(x, kernel), filter_valid(y, kernel)
    var_x = filter_valid(x * x, kernel) - mu_x**2
    var_y = filter_valid(y * y, kernel) - mu_y**2
    cov = filter_valid(x * y, kernel) - mu_x * mu_y
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    numerator = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    denominator = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return float(np.mean(numerator / denominator))


def ssim(pred_rgb: np.ndarray, true_rgb: np.ndarray) -> float:
    """SSIM computed on each of R, G, B separately and averaged.

    Per channel rather than on luminance: colorization keeps the lightness, so a luminance SSIM would barely
    tell a good colorization from the gray input.
    """
    check_same_shape(pred_rgb, true_rgb)
    if min(pred_rgb.shape[:2]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got {pred_rgb.shape[:2]}")
    return float(np.mean([ssim_channel(pred_rgb[..., c], true_rgb[..., c]) for c in range(pred_rgb.shape[-1])]))


# ---------------------------------------------------------------------------------------------- colourfulness


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk (2003) colourfulness M = sigma_rgyb + 0.3 * mu_rgyb on 8-bit sRGB values."""
    rgb = rgb.astype(np.float64)
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    rg = red - green
    yb = 0.5 * (red + green) - blue
    sigma = np.sqrt(np.var(rg) + np.var(yb))
    mu = np.sqrt(np.mean(rg) ** 2 + np.mean(yb) ** 2)
    return float(sigma + 0.3 * mu)


def check_same_shape(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
