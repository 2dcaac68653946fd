"""Colour hints and reference photos through the engine (guidance.py), with tiny guided ONNX models."""

import numpy as np
import pytest

from gimp_colorize import colour, guidance
from gimp_colorize.engine import ColorizeOptions, Engine
from gimp_colorize.errors import BadRequest
from gimp_colorize.options import Guidance, HintPoint
from gimp_colorize.registry import Registry
from tests.support import onnx_builders as ob

RED = (200, 30, 40)
RED_AB = colour.rgb_to_lab(np.array([RED], np.float32) / 255)[0, 1:]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("guided-models")
    # working size 64 on a 128 px image: a working cell is 2 x 2 pixels, an output cell (1/4) 8 x 8
    ob.build_tiny_full_model(folder / "plain.onnx", name="plain", output_kind="ab")
    ob.build_tiny_full_model(folder / "hinted.onnx", name="hinted", output_kind="ab", hints=True, reference=True)
    ob.build_tiny_full_model(folder / "hinted-bins.onnx", name="hinted-bins", hints=True, reference=True)
    ob.write_manifest(folder, [{"file": "plain.onnx", "default_for": ["full"]},
                               {"file": "hinted.onnx", "default_for": ["guided"]},
                               {"file": "hinted-bins.onnx"}])
    return folder


@pytest.fixture(scope="module")
def engine(model_dir):
    registry = Registry(None, None, files=())
    registry = Registry(model_dir, None)  # the folder plays the shipped folder: its manifest is honoured
    return Engine(registry, providers=["CPUExecutionProvider"], threads=1)


def flat_gray(value=120, size=128):
    return np.full((size, size), value, np.uint8)


def ab_of(pixels):
    return colour.rgb_to_lab(pixels)[..., 1:]


def hint_image(size=128, box=(40, 40, 16, 16), rgb=RED):
    image = np.zeros((size, size, 4), np.uint8)
    x, y, w, h = box
    image[y:y + h, x:x + w] = (*rgb, 255)
    return image


def test_cells_average_the_hinted_pixels_only_and_the_mask_is_max_pooled():
    hints = np.zeros((4, 4, 4), np.uint8)
    hints[0, 0] = (255, 0, 0, 255)      # one red pixel in the top-left cell
    hints[1, 1] = (0, 0, 255, 10)       # and a faint-alpha blue one in the same cell: alpha > 0 counts
    hints[3, 3] = (128, 128, 128, 255)  # a gray hint in the bottom-right cell
    ab, mask = guidance.local_hints(Guidance(hint_image=hints), "lab", (4, 4), (2, 2))
    assert mask[0, 0].tolist() == [[1.0, 0.0], [0.0, 1.0]]
    expected = (ab_of(np.array([[255, 0, 0]], np.uint8) / 255.0)[0] + ab_of(np.array([[0, 0, 255]], np.uint8) / 255.0)[0]) / 2
    np.testing.assert_allclose(ab[0, :, 0, 0], expected, atol=1e-3)
    np.testing.assert_allclose(ab[0, :, 1, 1], [0, 0], atol=1e-3)  # gray means "neutral", and it is a hint
    assert np.all(ab[0, :, 0, 1] == 0)


def test_a_point_equals_the_same_square_painted_into_a_hint_image():
    point = HintPoint(x=50, y=60, rgb=RED, size=9)
    painted = hint_image(box=(46, 56, 9, 9))  # round(50 - 4.5) = 46 (banker's rounding of 45.5 is 46)
    by_point = guidance.local_hints(Guidance(points=(point,)), "lab", (128, 128), (64, 64))
    by_image = guidance.local_hints(Guidance(hint_image=painted), "lab", (128, 128), (64, 64))
    for a, b in zip(by_point, by_image):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_hints_reach_the_result_at_their_place_and_nowhere_else(engine):
    plain = engine.colorize(flat_gray(), ColorizeOptions(model="hinted")).layers[0].pixels
    hinted = engine.colorize(flat_gray(), ColorizeOptions(guidance=Guidance(hint_image=hint_image()))).layers[0].pixels
    inside = ab_of(hinted[44:52, 44:52]).reshape(-1, 2).mean(0)
    np.testing.assert_allclose(inside, RED_AB, atol=2.0)
    np.testing.assert_array_equal(hinted[:24], plain[:24])  # far from the hint, nothing changed
    # the lightness stays the source's (the hint's own lightness is ignored)
    lightness = colour.rgb_to_lightness(hinted[44:52, 44:52])
    np.testing.assert_allclose(lightness, colour.gray_to_lightness(np.float32(120 / 255)), atol=0.6)


def test_a_gray_hint_makes_its_place_neutral(engine):
    gray_hint = hint_image(rgb=(90, 90, 90))
    result = engine.colorize(flat_gray(), ColorizeOptions(guidance=Guidance(hint_image=gray_hint))).layers[0].pixels
    assert np.abs(ab_of(result[44:52, 44:52])).max() < 1.0
    plain = engine.colorize(flat_gray(), ColorizeOptions()).layers[0].pixels
    assert np.abs(ab_of(plain[44:52, 44:52])).max() > 5.0  # the model alone would have coloured it


def test_guided_runs_use_the_guided_default_and_plain_runs_the_plain_default(engine):
    assert engine.resolve(ColorizeOptions()).name == "plain"
    assert engine.resolve(ColorizeOptions(guidance=Guidance(points=(HintPoint(1, 1, RED),)))).name == "hinted"
    assert engine.resolve(ColorizeOptions(model="hinted-bins", guidance=Guidance(points=(HintPoint(1, 1, RED),)))).name == "hinted-bins"


def test_hints_for_a_model_without_hint_inputs_are_refused_by_name(engine):
    with pytest.raises(BadRequest, match="model 'plain' does not take colour hints"):
        engine.colorize(flat_gray(), ColorizeOptions(model="plain", guidance=Guidance(points=(HintPoint(1, 1, RED),))))
    reference = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(BadRequest, match="model 'plain' does not take a reference photo"):
        engine.colorize(flat_gray(), ColorizeOptions(model="plain", guidance=Guidance(reference=reference)))


def test_a_reference_moves_the_colours_toward_its_own_by_its_strength(engine):
    warm = (150, 100, 90)  # moderate chroma: gamut clipping must not take part of the shift back
    reference = np.zeros((30, 40, 3), np.uint8)
    reference[:] = warm
    image = flat_gray(140)  # a lightness where the tiny model's colours stay in gamut with and without the shift
    none = ab_of(engine.colorize(image, ColorizeOptions(model="hinted")).layers[0].pixels).mean((0, 1))
    full = ab_of(engine.colorize(image, ColorizeOptions(guidance=Guidance(reference=reference))).layers[0].pixels).mean((0, 1))
    half = ab_of(engine.colorize(image, ColorizeOptions(
        guidance=Guidance(reference=reference, reference_strength=0.5))).layers[0].pixels).mean((0, 1))
    histogram_mean = guidance.reference_histogram(reference, engine.registry.get("hinted")) @ colour.ab_bins()
    np.testing.assert_allclose(full - none, histogram_mean, atol=1.0)  # the tiny model shifts by the mean
    np.testing.assert_allclose(half, (full + none) / 2, atol=1.0)
    warm_ab = colour.rgb_to_lab(np.array([warm], np.float32) / 255)[0, 1:]
    assert np.linalg.norm(histogram_mean - warm_ab) < 3  # the histogram of a one-colour photo is centred on it


def test_a_gray_reference_is_refused_because_it_has_no_colour(engine):
    with pytest.raises(BadRequest, match="no colour"):
        engine.colorize(flat_gray(), ColorizeOptions(guidance=Guidance(reference=np.full((9, 9, 3), 80, np.uint8))))


def test_vibrancy_scales_the_chroma_zero_is_gray(engine):
    image = np.add.outer(np.arange(64), np.arange(64)).astype(np.uint8) * 2
    normal = ab_of(engine.colorize(image, ColorizeOptions(model="plain")).layers[0].pixels)
    gray = ab_of(engine.colorize(image, ColorizeOptions(model="plain", vibrancy=0.0)).layers[0].pixels)
    vivid = ab_of(engine.colorize(image, ColorizeOptions(model="plain", vibrancy=1.5)).layers[0].pixels)
    assert np.abs(gray).max() < 0.6
    ratio = np.abs(vivid).mean() / np.abs(normal).mean()
    assert 1.3 < ratio <= 1.5 + 1e-3  # 1.5 less what gamut clipping takes back


def test_guidance_inputs_of_an_ab_bins_model_decode_too(engine):
    result = engine.colorize(flat_gray(), ColorizeOptions(model="hinted-bins", guidance=Guidance(hint_image=hint_image())))
    inside = ab_of(result.layers[0].pixels[44:52, 44:52]).reshape(-1, 2).mean(0)
    assert np.linalg.norm(inside - RED_AB) < 6.0


def test_a_hint_on_an_image_smaller_than_the_working_size_has_no_holes():
    hints = np.zeros((24, 32, 4), np.uint8)
    hints[8:20, 8:20] = (*RED, 255)
    ab, mask = guidance.local_hints(Guidance(hint_image=hints), "lab", (24, 32), (64, 64))
    rows, cols = np.nonzero(mask[0, 0])
    covered = mask[0, 0, rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    # rows 8-19 overlap working rows 21.3-53.3, i.e. cells 21-53; columns 8-19 are exactly cells 16-39
    assert covered.all() and covered.shape == (33, 24)
    np.testing.assert_allclose(ab[0, 0][mask[0, 0] > 0], RED_AB[0], atol=1e-3)
