"""The shipped guided-mnv2 and diverse-mnv2 through the engine on a real photo: hints obeyed, samples coherent."""

import numpy as np
import pytest

from gimp_colorize import colour
from gimp_colorize.engine import ColorizeOptions, Engine
from gimp_colorize.options import Guidance, HintPoint
from gimp_colorize.registry import SHIPPED_MODELS_DIR, Registry

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine():
    registry = Registry(SHIPPED_MODELS_DIR, None)
    tasks = {m.task for m in registry.models()}
    if "diverse" not in tasks:
        pytest.skip("no diverse model is shipped")
    return Engine(registry, providers=["CPUExecutionProvider"], threads=2)


@pytest.fixture(scope="module")
def coffee():
    from PIL import Image
    from skimage import data

    rgb = np.asarray(Image.fromarray(data.coffee()).resize((320, 240), Image.LANCZOS))
    return colour.from_float01(colour.lightness_to_gray(colour.rgb_to_lightness(colour.to_float01(rgb))), np.uint8)


def ab_of(pixels):
    return colour.rgb_to_lab(colour.to_float01(pixels))[..., 1:]


def test_defaults_are_the_shipped_models(engine):
    registry = engine.registry
    assert registry.default_for("full").name == "full-mnv2"
    assert registry.resolve("full", None, guided=True).name == "guided-mnv2"
    assert registry.default_for("diverse").name == "diverse-mnv2"
    assert all(m.verified for m in registry.models())


def test_a_colour_point_turns_its_area_that_colour(engine, coffee):
    """A saturated green dot on the cup (which the model makes no green on its own) is obeyed around it."""
    green = (40, 170, 60)
    point = HintPoint(x=160, y=120, rgb=green, size=9)
    plain = engine.colorize(coffee, ColorizeOptions(guidance=Guidance(points=(point,))))
    assert plain.model == "guided-mnv2"
    without = engine.colorize(coffee, ColorizeOptions(model="guided-mnv2"))
    wanted = ab_of(np.array([[green]], np.uint8))[0, 0]
    patch = (slice(116, 125), slice(156, 165))
    hinted_error = np.linalg.norm(ab_of(plain.layers[0].pixels)[patch] - wanted, axis=-1).mean()
    unhinted_error = np.linalg.norm(ab_of(without.layers[0].pixels)[patch] - wanted, axis=-1).mean()
    assert hinted_error < 0.5 * unhinted_error


def test_diverse_samples_differ_keep_lightness_and_repeat_by_seed(engine, coffee):
    first = engine.colorize(coffee, ColorizeOptions(mode="diverse", samples=4, seed=11))
    again = engine.colorize(coffee, ColorizeOptions(mode="diverse", samples=1, seed=13))
    assert first.model == "diverse-mnv2" and len(first.layers) == 4
    chroma = [ab_of(layer.pixels) for layer in first.layers]
    distances = [np.linalg.norm(chroma[i] - chroma[j], axis=-1).mean() for i in range(4) for j in range(i + 1, 4)]
    assert min(distances) > 1.0  # alternatives, not four copies
    for layer in first.layers:
        gray = colour.lightness_to_gray(colour.rgb_to_lightness(colour.to_float01(layer.pixels))) * 255
        assert (np.abs(gray - coffee) > 1).mean() < 0.3
        assert np.abs(ab_of(layer.pixels)).mean() > 2  # none collapses to gray
    np.testing.assert_array_equal(again.layers[0].pixels, first.layers[2].pixels)  # sample 3 is seed 11 + 2


def test_colour_points_apply_to_every_diverse_sample(engine, coffee):
    green = (40, 170, 60)
    points = Guidance(points=(HintPoint(x=160, y=120, rgb=green, size=9),))
    result = engine.colorize(coffee, ColorizeOptions(mode="diverse", samples=3, seed=5, guidance=points))
    plain = engine.colorize(coffee, ColorizeOptions(mode="diverse", samples=3, seed=5))
    wanted = ab_of(np.array([[green]], np.uint8))[0, 0]
    patch = (slice(116, 125), slice(156, 165))
    for hinted, unhinted in zip(result.layers, plain.layers):
        hinted_error = np.linalg.norm(ab_of(hinted.pixels)[patch] - wanted, axis=-1).mean()
        assert hinted_error < 0.5 * np.linalg.norm(ab_of(unhinted.pixels)[patch] - wanted, axis=-1).mean()
