"""Torch-side colour helpers against gimp_colorize.colour, and the class-rebalancing weights."""

import numpy as np
import pytest
import torch

from gimp_colorize import colour
from training import losses


@pytest.fixture(scope="module")
def lab_bins():
    return losses.chroma_bins("lab")


def random_ab(n=2, h=3, w=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-90, 90, size=(n, 2, h, w)).astype(np.float32)


def test_lab_bins_are_the_colour_modules_bins(lab_bins):
    np.testing.assert_array_equal(lab_bins, colour.ab_bins())


@pytest.mark.parametrize("space", ["yuv", "ycbcr"])
def test_other_spaces_have_grid_bins_covering_their_gamut(space):
    bins = losses.chroma_bins(space)
    assert np.all(bins % 10 == 0)
    assert 200 < len(bins) < 500
    rng = np.random.default_rng(1)
    chroma = losses.rgb_to_model_space(rng.uniform(0, 1, (2000, 3)).astype(np.float32), space)[:, 1:]
    nearest = np.abs(chroma[:, None, :] - bins[None]).max(-1).min(-1)
    assert nearest.max() <= 5.0 + 1e-3  # every colour lies inside some bin's cell


def test_soft_encode_rows_sum_to_one_and_match_colour_module(lab_bins):
    ab = random_ab()
    dense = losses.soft_encode_dense(torch.from_numpy(ab), torch.from_numpy(lab_bins))  # (N, Q, h, w)
    np.testing.assert_allclose(dense.sum(1).numpy(), 1.0, atol=1e-5)
    assert int((dense > 0).sum(1).max()) == losses.SOFT_K
    reference = colour.soft_encode(ab.transpose(0, 2, 3, 1), lab_bins, k=5, sigma=5.0)  # (N, h, w, Q)
    np.testing.assert_allclose(dense.numpy().transpose(0, 2, 3, 1), reference, atol=1e-5)


def test_annealed_mean_limits_and_numpy_agreement(lab_bins):
    rng = np.random.default_rng(2)
    logits = torch.from_numpy(rng.normal(size=(1, len(lab_bins), 2, 3)).astype(np.float32))
    bins = torch.from_numpy(lab_bins)
    mode = bins[logits.argmax(1)].permute(0, 3, 1, 2)
    torch.testing.assert_close(losses.annealed_mean(logits, bins, 1e-4), mode, atol=1e-3, rtol=0)
    torch.testing.assert_close(losses.annealed_mean(logits, bins, 0.0), mode)
    mean = torch.einsum("nqhw,qc->nchw", torch.softmax(logits, 1), bins)
    torch.testing.assert_close(losses.annealed_mean(logits, bins, 1.0), mean)
    for t in (0.38, 1.0):
        np.testing.assert_allclose(losses.annealed_mean(logits, bins, t).numpy(),
                                   colour.annealed_mean(logits.numpy(), lab_bins, t, axis=1), atol=1e-4)


def test_rebalancing_weights_have_expectation_one_and_favour_rare_bins(lab_bins):
    rng = np.random.default_rng(3)
    counts = rng.pareto(1.0, len(lab_bins)) * 100  # heavy-tailed, like real ab histograms
    weights, smoothed = losses.rebalancing_weights(counts, lab_bins)
    assert smoothed.sum() == pytest.approx(1.0, abs=1e-5)
    assert float((smoothed * weights).sum()) == pytest.approx(1.0, abs=1e-5)
    order = np.argsort(smoothed)
    assert np.all(np.diff(weights[order]) <= 1e-6)  # rarer (smoothed) bins never weigh less
    mix, q = losses.REBALANCE_LAMBDA, len(lab_bins)
    # mixing with the uniform caps how far apart weights can be: ratio <= ((1-λ) p_max + λ/Q) / (λ/Q)
    assert weights.max() / weights.min() == pytest.approx(((1 - mix) * smoothed.max() + mix / q) / ((1 - mix) * smoothed.min() + mix / q), rel=1e-3)


def test_rebalancing_rejects_empty_histogram(lab_bins):
    with pytest.raises(ValueError, match="no chroma samples"):
        losses.rebalancing_weights(np.zeros(len(lab_bins)), lab_bins)


def test_nearest_bin_histogram_counts_hand_made_samples(lab_bins):
    index = {tuple(b): i for i, b in enumerate(lab_bins.astype(int).tolist())}
    samples = np.array([[0.0, 0.0], [1.0, -2.0], [20.0, 31.0]], dtype=np.float32)
    counts = losses.nearest_bin_histogram(samples, lab_bins)
    assert counts[index[(0, 0)]] == 2 and counts[index[(20, 30)]] == 1 and counts.sum() == 3


def test_classification_loss_is_lowest_for_the_target_and_weighted(lab_bins):
    bins = torch.from_numpy(lab_bins)
    chroma = torch.from_numpy(random_ab(1, 8, 8))
    target = losses.soft_encode_dense(chroma, bins)
    good_logits = torch.log(target + 1e-6)
    loss = losses.RebalancedSoftCrossEntropy(lab_bins)
    assert float(loss(good_logits, chroma)) < float(loss(torch.zeros_like(good_logits), chroma))
    heavy = losses.RebalancedSoftCrossEntropy(lab_bins, np.full(len(lab_bins), 2.0, np.float32))
    assert float(heavy(good_logits, chroma)) == pytest.approx(2 * float(loss(good_logits, chroma)), rel=1e-5)


def test_regression_losses_on_hand_computed_values():
    target = torch.zeros(1, 2, 4, 4)
    prediction = torch.full((1, 2, 2, 2), 3.0)  # the target is area-downsampled to 2x2 first
    assert float(losses.RegressionLoss("mse")(prediction, target)) == pytest.approx(9.0)
    assert float(losses.RegressionLoss("smoothl1")(prediction, target)) == pytest.approx(2.5)  # |x| - 0.5
    assert float(losses.RegressionLoss("smoothl1")(torch.full((1, 2, 2, 2), 0.5), target)) == pytest.approx(0.125)
    with pytest.raises(ValueError):
        losses.make_loss("l3", np.zeros((3, 2), np.float32), None)
