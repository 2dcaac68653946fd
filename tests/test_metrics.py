"""Metrics against values computed by hand on tiny arrays (and SSIM against scikit-image)."""

import math

import numpy as np
import pytest

from training import metrics


def constant_ab(value, shape=(4, 5)):
    return np.broadcast_to(np.asarray(value, dtype=np.float64), shape + (2,)).copy()


def auc_of(pred_ab, true_ab):
    bins = np.zeros(true_ab.shape[:2], dtype=np.int64)
    return metrics.raw_auc(metrics.error_histogram(pred_ab, true_ab, bins, num_bins=1))


# ---------------------------------------------------------------------------------------------- AuC


def test_perfect_prediction_has_auc_one():
    truth = np.random.default_rng(0).uniform(-80, 80, size=(6, 7, 2))
    assert auc_of(truth.copy(), truth) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "offset, expected",
    [
        # error 5 exactly: the curve is 0 up to t = 4, 1 from t = 5; trapezoid area 145 + 0.5 over 150.
        ((3.0, 4.0), 145.5 / 150),
        # error 4.2: the first threshold it passes is 5 again.
        ((4.2, 0.0), 145.5 / 150),
        # error 0.5: passes from t = 1; the step from t = 0 to 1 counts half.
        ((0.0, 0.5), 149.5 / 150),
        # error 150 is still within the last threshold: only half a unit of area.
        ((150.0, 0.0), 0.5 / 150),
        # beyond every threshold.
        ((120.0, 120.0), 0.0),
    ],
)
def test_constant_error_auc_is_150_5_minus_ceil_error_over_150(offset, expected):
    truth = constant_ab((10.0, -20.0))
    pred = truth + np.asarray(offset)
    assert auc_of(pred, truth) == pytest.approx(expected)


def test_half_perfect_half_hopeless_gives_half():
    truth = constant_ab((0.0, 0.0), shape=(2, 2))
    pred = truth.copy()
    pred[0] = (200.0, 0.0)
    assert auc_of(pred, truth) == pytest.approx(0.5)


def test_rebalanced_auc_weights_each_bin_equally():
    # Three pixels of a common colour (bin 0) predicted exactly, one pixel of a rare colour (bin 1) far off.
    truth = np.array([[[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [50.0, 50.0]]])
    pred = np.array([[[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [-150.0, 50.0]]])
    bins = np.array([[0, 0, 0, 1]])
    histogram = metrics.error_histogram(pred, truth, bins, num_bins=3)
    bin_counts = np.array([3, 1, 0])
    # Raw: 3 of 4 pixels are within every threshold -> 0.75. Rebalanced: 3 * 1/3 right vs 1 * 1 wrong -> 0.5.
    assert metrics.raw_auc(histogram) == pytest.approx(0.75)
    assert metrics.rebalanced_auc(histogram, bin_counts) == pytest.approx(0.5)


def test_rebalancing_weights_are_inverse_frequencies_and_zero_for_empty_bins():
    np.testing.assert_allclose(metrics.rebalancing_weights(np.array([4, 0, 1])), [0.25, 0.0, 1.0])


def test_rebalanced_auc_rejects_counts_from_another_set():
    histogram = np.zeros((2, metrics.HISTOGRAM_COLUMNS))
    histogram[1, 0] = 1
    with pytest.raises(ValueError, match="empty"):
        metrics.rebalanced_auc(histogram, np.array([1, 0]))


def test_error_histogram_counts_pixels_by_bin_and_error_column():
    truth = np.zeros((1, 3, 2))
    pred = np.array([[[3.0, 4.0], [0.0, 0.0], [300.0, 0.0]]])
    histogram = metrics.error_histogram(pred, truth, np.array([[1, 0, 1]]), num_bins=2)
    assert histogram.shape == (2, 152)
    assert histogram[1, 5] == 1 and histogram[0, 0] == 1 and histogram[1, 151] == 1
    assert histogram.sum() == 3


def test_nearest_bin_lookup_maps_cells_to_their_bin_and_gaps_to_the_nearest():
    bins = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    lookup = metrics.nearest_bin_lookup(bins)
    ab = np.array([[4.0, 4.0], [6.0, 1.0], [1.0, 6.0], [14.9, -4.9], [-12.0, 1.0]])
    # The last one lies in cell (-10, 0), which has no bin: its nearest centre is (0, 0).
    np.testing.assert_array_equal(lookup(ab), [0, 1, 2, 1, 0])


# ---------------------------------------------------------------------------------------------- PSNR


def test_psnr_of_a_known_mse():
    truth = np.full((8, 8, 3), 100, dtype=np.uint8)
    pred = truth + np.uint8(5)  # MSE 25
    assert metrics.psnr(pred, truth) == pytest.approx(10 * math.log10(255**2 / 25))


def test_psnr_of_identical_images_is_infinite():
    image = np.zeros((3, 3, 3), dtype=np.uint8)
    assert metrics.psnr(image, image) == math.inf


def test_psnr_does_not_wrap_around_uint8():
    truth = np.zeros((2, 2, 3), dtype=np.uint8)
    pred = np.full((2, 2, 3), 255, dtype=np.uint8)
    assert metrics.psnr(pred, truth) == pytest.approx(0.0)


# ---------------------------------------------------------------------------------------------- SSIM


def test_ssim_matches_scikit_image_gaussian_variant():
    skimage_metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 256, size=(40, 33, 3)).astype(np.uint8)
    noise = rng.normal(0, 25, size=truth.shape)
    pred = np.clip(truth + noise, 0, 255).astype(np.uint8)
    expected = skimage_metrics.structural_similarity(
        pred, truth, channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
    )
    assert metrics.ssim(pred, truth) == pytest.approx(expected, abs=1e-9)
    assert 0.0 < expected < 0.95  # a case where the two could disagree


def test_ssim_of_identical_images_is_one():
    image = np.random.default_rng(2).integers(0, 256, size=(16, 16, 3)).astype(np.uint8)
    assert metrics.ssim(image, image) == pytest.approx(1.0)


def test_ssim_rejects_images_smaller_than_the_window():
    image = np.zeros((10, 30, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="11x11"):
        metrics.ssim(image, image)


# ---------------------------------------------------------------------------------------------- colourfulness


def test_colourfulness_of_a_red_and_a_blue_pixel():
    rgb = np.array([[[255, 0, 0], [0, 0, 255]]], dtype=np.uint8)
    # rg = R - G = [255, 0]; yb = (R + G) / 2 - B = [127.5, -255].
    # var(rg) = 127.5^2; var(yb) = 191.25^2; mean(rg) = 127.5; mean(yb) = -63.75.
    sigma = math.sqrt(127.5**2 + 191.25**2)
    mu = math.sqrt(127.5**2 + 63.75**2)
    assert metrics.colourfulness(rgb) == pytest.approx(sigma + 0.3 * mu)


def test_colourfulness_of_gray_is_zero_and_of_a_flat_colour_is_its_mean_term():
    gray = np.stack([np.arange(12).reshape(3, 4)] * 3, axis=-1).astype(np.uint8)
    assert metrics.colourfulness(gray) == pytest.approx(0.0)
    flat = np.full((3, 3, 3), (200, 100, 50), dtype=np.uint8)
    # rg = 100, yb = 150 - 50 = 100 everywhere: no spread, mean term 0.3 * sqrt(100^2 + 100^2).
    assert metrics.colourfulness(flat) == pytest.approx(0.3 * math.sqrt(2) * 100)
