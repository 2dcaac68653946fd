"""The optimised recombination against the plain formulas it replaced, and the exact gamut statistic."""

import numpy as np
import pytest

from gimp_colorize import colour, recombine
from gimp_colorize.source import SourceImage

RNG = np.random.default_rng(3)
F32 = np.float32


def plain_upsample(chroma, height, width):
    """Half-pixel bilinear, written out: the horizontal pass, then low + (high - low) * fy per row."""
    x0, x1, fx = recombine._source_coordinates(chroma.shape[2], width)
    y0, y1, fy = recombine._source_coordinates(chroma.shape[1], height)
    wide = chroma[:, :, x0] * (1 - fx) + chroma[:, :, x1] * fx
    low, high = wide[:, y0], wide[:, y1]
    return low + (high - low) * fy[:, None]


def plain_lab_recombine(image, chroma):
    """The straightforward pipeline (per-pixel formulas, fresh arrays, np.where, the public 8-bit encoder)."""
    source = SourceImage(image)
    lightness = np.concatenate([source.lightness_rows(a, b, "lab") for a, b in source.row_chunks()])
    up = plain_upsample(chroma, *lightness.shape)
    fy = (lightness + F32(16)) * F32(1 / 116)
    x = colour._lab_f_inv(fy + up[0] * F32(1 / 500)) * F32(colour.D65_WHITE[0])
    z = colour._lab_f_inv(fy - up[1] * F32(1 / 200)) * F32(colour.D65_WHITE[2])
    y = colour._lab_f_inv(fy)
    planes = [x * F32(m[0]) + y * F32(m[1]) + z * F32(m[2]) for m in colour.XYZ_TO_RGB]
    clipped = np.zeros(lightness.shape, bool)
    for plane in planes:
        clipped |= (plane < F32(-1e-4)) | (plane > F32(1 + 1e-4))
    planes = [np.clip(plane, 0, 1) for plane in planes]
    if source.dtype == np.uint8:
        channels = [colour.linear_to_srgb8(plane) for plane in planes]
    else:
        channels = [colour.from_float01(colour.linear_to_srgb(plane), source.dtype) for plane in planes]
    return np.stack(channels, axis=-1), clipped


def exact_moved(image, out, clipped):
    """The statistic from its definition, on every pixel, in float64 gray levels."""
    weights = colour.RGB_TO_XYZ[1] / colour.RGB_TO_XYZ[1].sum()

    def luminance(pixels):
        values = colour.to_float01(pixels).astype(np.float64)
        linear = colour.srgb_to_linear(np.clip(values, 0, 1), np.float64)
        return linear if linear.ndim == 2 else linear[..., :3] @ weights

    def gray(pixels):
        return colour.linear_to_srgb(luminance(pixels), np.float64)

    source = image[..., 0] if image.ndim == 3 and np.array_equal(image[..., 0], image[..., 1]) else image
    moved = np.abs(gray(out) - gray(source)) * 255 > recombine.MOVED_LEVELS
    return int(np.count_nonzero(moved & clipped))


def lab_chroma(shape=(2, 13, 17), scale=70.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def images():
    yield "gray8", RNG.integers(0, 256, (61, 83)).astype(np.uint8)
    yield "gray16", RNG.integers(0, 65536, (61, 83)).astype(np.uint16)
    yield "rgb8", RNG.integers(0, 256, (61, 83, 3)).astype(np.uint8)
    yield "gray-as-rgb8", np.repeat(RNG.integers(0, 256, (61, 83, 1)).astype(np.uint8), 3, axis=-1)
    yield "rgbf32", RNG.random((61, 83, 3)).astype(np.float32)
    yield "grayf64", RNG.random((61, 83))


@pytest.mark.parametrize("name,image", list(images()))
@pytest.mark.parametrize("threads", [1, 3])
def test_lab_recombination_equals_the_plain_formulas_bit_for_bit(monkeypatch, name, image, threads):
    monkeypatch.setattr(colour, "CHUNK_PIXELS", 700)  # many chunks, a short last one, reused buffers
    monkeypatch.setattr(recombine, "PIXEL_THREADS", threads)
    chroma = lab_chroma()
    out, moved = recombine.recombine(SourceImage(image), chroma, "lab")
    expected, clipped = plain_lab_recombine(image, chroma)
    np.testing.assert_array_equal(out, expected)
    assert 0.05 < clipped.mean() < 0.95  # the strong chroma clips a good share, not everything
    assert moved == exact_moved(image, out, clipped) > 0


@pytest.mark.parametrize("space", ["yuv", "ycbcr"])
def test_yuv_statistic_is_the_exact_definition_too(space):
    image = RNG.integers(0, 256, (40, 50)).astype(np.uint8)
    chroma = (RNG.standard_normal((2, 9, 11)) * 0.4).astype(np.float32)
    out, moved = recombine.recombine(SourceImage(image), chroma, space)
    luma = colour.to_float01(image)
    matrix = colour.YUV_TO_RGB if space == "yuv" else colour.YCBCR_TO_RGB
    up = plain_upsample(chroma, *image.shape)
    planes = [luma * F32(m[0]) + up[0] * F32(m[1]) + up[1] * F32(m[2]) for m in matrix]
    clipped = np.zeros(image.shape, bool)
    for plane in planes:
        clipped |= (plane < F32(-1e-4)) | (plane > F32(1 + 1e-4))
    assert moved == exact_moved(image, out, clipped) > 0


@pytest.mark.parametrize("dtype,level,code,moved", [
    (np.uint8, 254, 255, 0), (np.uint8, 1, 0, 0),  # exactly one level: not moved, up or down
    (np.uint8, 253, 255, 1), (np.uint8, 2, 0, 1),  # two levels: moved
    (np.uint16, 65535 - 257, 65535, 0), (np.uint16, 257, 0, 0),  # one 8-bit level at 16 bits
    (np.uint16, 65535 - 258, 65535, 1), (np.uint16, 258, 0, 1),
    (np.float32, 254 / 255, 1.0, 0), (np.float32, 1 / 255, 0.0, 0), (np.float32, 0.5, 0.5 + 1.01 / 255, 1),
])
def test_an_output_exactly_one_level_away_has_not_moved(dtype, level, code, moved):
    # the float32 Lab round trip this replaced counted 1 -> black as moved and 254 -> white as not
    source = SourceImage(np.full((1, 1), level, dtype))
    codes = [np.full((1, 1), code, dtype) for _ in range(3)]
    assert recombine.lightness_moved(source, 0, 1, codes, np.ones((1, 1), bool)) == moved


def test_upsampler_rows_equal_the_plain_interpolation_and_fill_a_given_buffer():
    chroma = lab_chroma((2, 7, 5))
    for height, width in ((29, 40), (3, 2), (100, 9)):
        up = recombine.BilinearUpsampler(chroma, height, width)
        expected = plain_upsample(chroma, height, width)
        buffer = np.full((2, height - 1, width), np.nan, np.float32)
        np.testing.assert_array_equal(up.rows(1, height, buffer), expected[:, 1:])
        np.testing.assert_array_equal(buffer, expected[:, 1:])
        np.testing.assert_array_equal(up.rows(0, 1), expected[:, :1])
