import numpy as np
import pytest
from skimage import color as skcolor

from gimp_colorize import colour
from gimp_colorize.errors import InvalidImage

# Published CIE Lab (D65) values of sRGB colours (Lindbloom's calculator; also in most colour references).
KNOWN_LAB = [
    ((255, 255, 255), (100.0, 0.0, 0.0)),
    ((0, 0, 0), (0.0, 0.0, 0.0)),
    ((255, 0, 0), (53.2408, 80.0925, 67.2032)),
    ((0, 255, 0), (87.7347, -86.1827, 83.1793)),
    ((0, 0, 255), (32.2970, 79.1875, -107.8602)),
    ((128, 128, 128), (53.5850, 0.0, 0.0)),
    ((255, 255, 0), (97.1393, -21.5537, 94.4780)),
]


def random_rgb8(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=shape + (3,), dtype=np.uint8)


@pytest.mark.parametrize("rgb, lab", KNOWN_LAB)
def test_rgb_to_lab_matches_published_values(rgb, lab):
    got = colour.rgb_to_lab(np.array(rgb, dtype=np.uint8))
    np.testing.assert_allclose(got, lab, atol=0.01)


def test_rgb_to_lab_agrees_with_scikit_image():
    rgb = random_rgb8((64, 64))
    ours = colour.rgb_to_lab(rgb)
    theirs = skcolor.rgb2lab(rgb, illuminant="D65")
    np.testing.assert_allclose(ours, theirs, atol=0.02)


def test_lab_to_rgb_agrees_with_scikit_image_in_gamut():
    rgb = random_rgb8((32, 32), seed=1)
    lab = skcolor.rgb2lab(rgb)
    np.testing.assert_allclose(colour.lab_to_rgb(lab), skcolor.lab2rgb(lab), atol=1e-4)


def test_lab_round_trip_is_lossless_at_8_bit():
    rgb = random_rgb8((100, 100), seed=2)
    back = colour.from_float01(colour.lab_to_rgb(colour.rgb_to_lab(rgb)), np.uint8)
    assert np.array_equal(back, rgb)


def test_lab_round_trip_16_bit_and_float():
    rgb16 = np.random.default_rng(3).integers(0, 65536, size=(50, 50, 3), dtype=np.uint16)
    back16 = colour.from_float01(colour.lab_to_rgb(colour.rgb_to_lab(rgb16)), np.uint16)
    assert np.abs(back16.astype(int) - rgb16).max() <= 3  # float32 Lab keeps about 14 bits
    rgbf = colour.to_float01(rgb16)
    np.testing.assert_allclose(colour.lab_to_rgb(colour.rgb_to_lab(rgbf)), rgbf, atol=1e-4)


def test_input_depths_give_the_same_lab():
    rgb8 = random_rgb8((20, 20), seed=4)
    rgb16 = rgb8.astype(np.uint16) * 257  # exact 8 -> 16 bit scaling
    rgbf = rgb8 / 255.0
    lab8 = colour.rgb_to_lab(rgb8)
    np.testing.assert_allclose(colour.rgb_to_lab(rgb16), lab8, atol=1e-3)
    np.testing.assert_allclose(colour.rgb_to_lab(rgbf), lab8, atol=1e-3)
    assert colour.rgb_to_lab(rgbf).dtype == np.float32


def test_lab_to_rgb_reports_out_of_gamut_pixels():
    lab = np.array([[50.0, 0.0, 0.0], [50.0, 120.0, 0.0], [95.0, -80.0, -80.0], [53.24, 80.09, 67.2]])
    rgb, clipped = colour.lab_to_rgb(lab, return_clipped=True)
    assert clipped.tolist() == [False, True, True, False]
    assert rgb.min() >= 0.0 and rgb.max() <= 1.0


def test_chunked_conversion_equals_unchunked(monkeypatch):
    rgb = random_rgb8((37, 23), seed=5)
    whole = colour.rgb_to_lab(rgb)
    monkeypatch.setattr(colour, "CHUNK_PIXELS", 50)  # forces many small chunks, including a ragged last one
    assert colour.chunk_rows(rgb.shape) == 2
    np.testing.assert_array_equal(colour.rgb_to_lab(rgb), whole)
    np.testing.assert_array_equal(colour.lab_to_rgb(whole), colour.lab_to_rgb(whole[:, :]))


def test_srgb_transfer_functions_invert_each_other_and_hit_known_points():
    x = np.linspace(0, 1, 1001, dtype=np.float32)
    np.testing.assert_allclose(colour.linear_to_srgb(colour.srgb_to_linear(x)), x, atol=2e-6)
    assert colour.srgb_to_linear(np.float32(0.5)) == pytest.approx(0.21404, abs=1e-5)
    assert colour.srgb_to_linear(np.float32(0.04)) == pytest.approx(0.04 / 12.92, rel=1e-6)  # linear segment


def test_gray_lightness_round_trip_and_values():
    gray = np.arange(256, dtype=np.uint8)
    lightness = colour.gray_to_lightness(gray)
    assert lightness[0] == pytest.approx(0.0, abs=1e-4) and lightness[255] == pytest.approx(100.0, abs=1e-3)
    assert lightness[128] == pytest.approx(53.585, abs=0.01)
    assert np.all(np.diff(lightness) > 0)
    np.testing.assert_allclose(colour.lightness_to_gray(lightness) * 255, gray, atol=1e-3)
    rgb = np.repeat(gray[:, None], 3, axis=1)
    np.testing.assert_allclose(colour.rgb_to_lightness(rgb), lightness, atol=1e-3)
    np.testing.assert_allclose(colour.rgb_to_lab(rgb)[:, 1:], 0.0, atol=1e-3)


def test_rgb_to_lightness_equals_lab_l():
    rgb = random_rgb8((30, 30), seed=6)
    np.testing.assert_allclose(colour.rgb_to_lightness(rgb), colour.rgb_to_lab(rgb)[..., 0], atol=1e-3)


@pytest.mark.parametrize(
    "rgb, yuv, ycbcr",
    [
        ((1, 1, 1), (1.0, 0.0, 0.0), (1.0, 0.5, 0.5)),
        ((1, 0, 0), (0.299, -0.14713, 0.615), (0.299, 0.331264, 1.0)),
        ((0, 1, 0), (0.587, -0.28886, -0.51499), (0.587, 0.168736, 0.081312)),
        ((0, 0, 1), (0.114, 0.436, -0.10001), (0.114, 1.0, 0.418688)),
    ],
)
def test_yuv_and_ycbcr_reference_values(rgb, yuv, ycbcr):
    rgb = np.array(rgb, dtype=np.float32)
    np.testing.assert_allclose(colour.rgb_to_yuv(rgb), yuv, atol=1e-4)
    np.testing.assert_allclose(colour.rgb_to_ycbcr(rgb), ycbcr, atol=1e-4)


def test_ycbcr_agrees_with_pillow_jpeg_conversion():
    from PIL import Image

    rgb = random_rgb8((40, 40), seed=7)
    pillow = np.asarray(Image.fromarray(rgb).convert("YCbCr"), dtype=np.float32) / 255
    np.testing.assert_allclose(colour.rgb_to_ycbcr(rgb), pillow, atol=1.0 / 255 + 1e-4)


def test_yuv_and_ycbcr_round_trips():
    rgb = colour.to_float01(random_rgb8((30, 30), seed=8))
    np.testing.assert_allclose(colour.yuv_to_rgb(colour.rgb_to_yuv(rgb)), rgb, atol=1e-5)
    np.testing.assert_allclose(colour.ycbcr_to_rgb(colour.rgb_to_ycbcr(rgb)), rgb, atol=1e-5)
    np.testing.assert_allclose(colour.rgb_to_luma(rgb), colour.rgb_to_yuv(rgb)[..., 0], atol=1e-6)


def test_to_float01_and_back_for_each_depth():
    assert colour.to_float01(np.array([0, 255], np.uint8)).tolist() == [0.0, 1.0]
    assert colour.to_float01(np.array([65535], np.uint16)).tolist() == [1.0]
    assert colour.to_float01(np.array([0.25], np.float64)).dtype == np.float32
    x = np.array([-0.2, 0.0, 0.5, 1.0, 1.7], dtype=np.float32)
    assert colour.from_float01(x, np.uint8).tolist() == [0, 0, 128, 255, 255]
    assert colour.from_float01(x, np.uint16).tolist() == [0, 0, 32768, 65535, 65535]
    assert colour.from_float01(x, np.float32).tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]
    with pytest.raises(InvalidImage, match="int32"):
        colour.to_float01(np.zeros(3, np.int32))


def test_committed_ab_bins_equal_a_fresh_recomputation():
    bins = colour.ab_bins()
    np.testing.assert_array_equal(colour.compute_ab_bins(), bins)
    # 8-bit sampling of the sRGB gamut with cells centred on multiples of 10. Zhang et al.'s published
    # set has 313 entries: it holds cells no sRGB colour reaches (see docs/DESIGN.md).
    assert bins.shape == (261, 2)
    order = np.lexsort((bins[:, 1], bins[:, 0]))
    assert np.array_equal(order, np.arange(len(bins)))  # sorted by a, then b
    assert not bins.flags.writeable


def test_every_colour_falls_into_a_bin_and_primaries_reach_the_edge():
    bins = {tuple(b) for b in colour.ab_bins().astype(int).tolist()}
    lab = colour.rgb_to_lab(random_rgb8((200, 200), seed=9))
    ia, ib = colour.ab_bin_index(lab[..., 1], lab[..., 2])
    cells = set(zip((ia * 10).ravel().tolist(), (ib * 10).ravel().tolist()))
    assert cells <= bins
    assert (80, 70) in bins and (-90, 80) in bins and (80, -110) in bins  # red, green, blue
    assert (120, 0) not in bins and (0, 0) in bins


def test_soft_encode_rows_sum_to_one_with_k_nonzero_weights():
    bins = colour.ab_bins()
    ab = np.random.default_rng(10).uniform(-100, 100, size=(8, 9, 2)).astype(np.float32)
    encoded = colour.soft_encode(ab, bins)
    assert encoded.shape == (8, 9, len(bins))
    np.testing.assert_allclose(encoded.sum(-1), 1.0, atol=1e-5)
    assert np.all((encoded > 0).sum(-1) == 5)


def test_soft_encode_puts_most_weight_on_the_nearest_bin_and_is_gaussian():
    bins = colour.ab_bins()
    encoded = colour.soft_encode(np.array([[0.0, 0.0]]), bins)[0]
    assert bins[np.argmax(encoded)].tolist() == [0.0, 0.0]
    # neighbours at distance 10 get exp(-100 / 50) relative to the centre bin
    nearest = encoded[np.argmax(encoded)]
    at_ten = encoded[np.flatnonzero((np.abs(bins).sum(1) == 10))]
    np.testing.assert_allclose(at_ten / nearest, np.exp(-2.0), rtol=1e-4)


def test_soft_encode_far_outside_the_gamut_still_sums_to_one():
    encoded = colour.soft_encode(np.array([[500.0, -500.0]]), colour.ab_bins())
    assert np.isfinite(encoded).all() and encoded.sum() == pytest.approx(1.0, abs=1e-5)


def test_soft_encode_is_fast_enough_for_a_data_loader():
    import time

    ab = np.random.default_rng(11).uniform(-80, 80, size=(64, 64, 2)).astype(np.float32)
    start = time.perf_counter()
    colour.soft_encode(ab)
    assert time.perf_counter() - start < 1.0  # a 64x64 target; about 20 ms on one core


def test_annealed_mean_limits():
    bins = colour.ab_bins()
    logits = np.random.default_rng(12).normal(size=(3, len(bins))).astype(np.float32)
    mode = bins[np.argmax(logits, axis=-1)]
    np.testing.assert_allclose(colour.annealed_mean(logits, bins, temperature=1e-4), mode, atol=1e-3)
    np.testing.assert_array_equal(colour.annealed_mean(logits, bins, temperature=0), mode)
    p = np.exp(logits.astype(np.float64))
    p /= p.sum(-1, keepdims=True)
    np.testing.assert_allclose(colour.annealed_mean(logits, bins, temperature=1.0), p @ bins, atol=1e-3)


def test_annealed_mean_is_stable_for_huge_logits_and_respects_axis():
    bins = colour.ab_bins()
    logits = np.zeros((1, len(bins), 4, 5), dtype=np.float32)
    logits[:, 7] = 1e6  # would overflow exp() without the max shift
    ab = colour.annealed_mean(logits, bins, temperature=0.38, axis=1)
    assert ab.shape == (1, 2, 4, 5)
    np.testing.assert_allclose(ab[0, :, 2, 3], bins[7])
    with pytest.raises(ValueError, match="bins"):
        colour.annealed_mean(logits, bins[:10], axis=1)


def test_linear_to_srgb8_table_matches_exact_rounding():
    linear = np.concatenate([np.linspace(0, 1, 200001, dtype=np.float32), [-0.5, 1.5]])
    exact = colour.from_float01(colour.linear_to_srgb(np.clip(linear, 0, 1)), np.uint8)
    fast = colour.linear_to_srgb8(linear)
    assert np.abs(fast.astype(int) - exact).max() <= 1
    codes = colour.linear_to_srgb(np.clip(linear, 0, 1)) * 255
    differ = fast != exact
    assert np.all(np.abs(codes[differ] % 1 - 0.5) < 0.03)  # only right at rounding boundaries
    assert fast[-2] == 0 and fast[-1] == 255


def test_to_linear_tables_match_the_formula():
    for dtype, top in ((np.uint8, 255), (np.uint16, 65535)):
        levels = np.arange(0, top + 1, max(1, top // 1000), dtype=dtype)
        np.testing.assert_allclose(colour.to_linear(levels), colour.srgb_to_linear(levels / top), atol=1e-6)


def test_big_conversions_allocate_only_the_output_plus_chunks():
    import tracemalloc

    rgb = random_rgb8((1500, 2000), seed=13)
    tracemalloc.start()
    try:
        lab = colour.rgb_to_lab(rgb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    chunk_temporaries = colour.CHUNK_PIXELS * 3 * 4 * 8  # a few float32 RGB chunk arrays
    assert lab.dtype == np.float32
    assert peak < lab.nbytes + chunk_temporaries  # no float64 or full-size float32 intermediate


def test_premultiplied_8_bit_encoding_gives_the_codes_of_linear_to_srgb8():
    # every 61st float32 in [0, 1], and the neighbours of every bucket edge of the sqrt table, where a
    # difference in rounding would show first (the module comment records the exhaustive check)
    top = int(np.float32(1.0).view(np.int32))
    sampled = np.arange(0, top + 1, 61, dtype=np.int32).view(np.float32)
    steps = colour._ENCODE8_STEPS
    edges = ((np.arange(steps + 1) + 0.5) / steps) ** 2
    near = np.concatenate([np.nextafter(edges.astype(np.float32), np.float32(k)) for k in (-1, 2)] + [
        edges.astype(np.float32)])
    linear = np.concatenate([sampled, near[(near >= 0) & (near <= 1)], [0.0, 1.0]]).astype(np.float32)
    scaled = linear * np.float32(colour.SRGB8_PREMULTIPLIER)
    np.testing.assert_array_equal(colour.premultiplied_linear_to_srgb8(scaled), colour.linear_to_srgb8(linear))


def test_in_place_lab_inverse_equals_the_select_form():
    f = np.concatenate([np.linspace(-0.5, 1.5, 100_001), [6 / 29]]).astype(np.float32)
    f = np.concatenate([f, np.nextafter(np.float32(6 / 29), np.float32([0, 1]))])
    sparse = np.concatenate([np.linspace(0.3, 1.2, 100_000), [-0.1, 0.0, 0.1, 6 / 29]]).astype(np.float32)
    for values in (f, sparse):  # a third of the values below 6/29 (masked copy), and a few (boolean index)
        expected = colour._lab_f_inv(values)
        np.testing.assert_array_equal(colour._lab_f_inv_inplace(values.copy()), expected)
        buffers = np.empty_like(values), np.empty(values.shape, bool), np.empty_like(values)
        np.testing.assert_array_equal(colour._lab_f_inv_inplace(values.copy(), *buffers), expected)


def test_outside_gamut_at_its_thresholds_and_premultiplied():
    tol = np.float32(1e-4)
    values = np.array([-tol, np.nextafter(-tol, np.float32(-1)), 0.5, 1 + tol, np.nextafter(np.float32(1 + tol), 2)],
                      np.float32)
    planes = [values, np.full_like(values, 0.5), np.full_like(values, 0.5)]
    expected = [False, True, False, False, True]
    assert colour.outside_gamut(planes).tolist() == expected
    scale = colour.SRGB8_PREMULTIPLIER
    assert colour.outside_gamut([p * np.float32(scale) for p in planes[::-1]], scale=scale).tolist() == expected
