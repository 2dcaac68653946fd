"""Peak memory of the colorize pipeline at 12 MP: at most 10x the input's bytes (numpy allocations, traced)."""

import tracemalloc

import numpy as np
import pytest

from gimp_colorize.engine import ColorizeOptions, Engine
from gimp_colorize.registry import Registry
from tests.support import onnx_builders as ob

HEIGHT, WIDTH = 3000, 4000


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    ob.build_tiny_full_model(folder / "bins.onnx", name="bins", working_size=256)
    return Engine(Registry(None, folder), providers=["CPUExecutionProvider"])


def twelve_megapixels(kind):
    ramp = (np.add.outer(np.arange(HEIGHT), np.arange(WIDTH)) % 256).astype(np.uint8)
    if kind == "gray8":
        return ramp
    if kind == "gray16":
        return ramp.astype(np.uint16) * 257
    if kind == "rgb8":
        return np.dstack([ramp, ramp // 2, 255 - ramp])
    return np.dstack([ramp, ramp, ramp, np.full_like(ramp, 255)])  # rgba8 that is really gray


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["gray8", "gray16", "rgb8", "rgba8"])
def test_peak_memory_at_12_megapixels_is_under_10x_the_input(engine, kind):
    image = twelve_megapixels(kind)
    tracemalloc.start()
    try:
        result = engine.colorize(image, ColorizeOptions(model="bins"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.layers[0].pixels.shape == (HEIGHT, WIDTH, 3)
    assert peak < 10 * image.nbytes, f"peak {peak / image.nbytes:.1f}x the input's {image.nbytes} bytes"
