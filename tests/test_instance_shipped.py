"""The shipped instance-mode models (detector-ssd-mnv2, instance-mnv2, fusion-mnv2) through the engine on a real photo."""

import numpy as np
import pytest

from gimp_colorize import colour
from gimp_colorize.engine import ColorizeOptions, Engine
from gimp_colorize.options import InstanceOptions
from gimp_colorize.registry import SHIPPED_MODELS_DIR, Registry

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine():
    registry = Registry(SHIPPED_MODELS_DIR, None)
    if not any(m.task == "fusion" for m in registry.models()):
        pytest.skip("no fusion model is shipped")
    return Engine(registry, providers=["CPUExecutionProvider"], threads=2)


@pytest.fixture(scope="module")
def astronaut():
    from PIL import Image
    from skimage import data

    rgb = np.asarray(Image.fromarray(data.astronaut()).resize((384, 384), Image.LANCZOS))
    return colour.from_float01(colour.lightness_to_gray(colour.rgb_to_lightness(colour.to_float01(rgb))), np.uint8)


def test_the_shipped_models_pair_up(engine):
    instance = engine.registry.default_for("instance")
    assert engine.registry.fusion_for(instance).instance_model == instance.name
    assert instance.takes_local_hints and instance.takes_reference  # hints keep working in instance mode
    assert all(m.verified for m in engine.registry.models())


def test_the_shipped_pipeline_finds_the_astronaut_and_returns_her_layer(engine, astronaut):
    options = ColorizeOptions(mode="instance", instance=InstanceOptions(instance_layers=True))
    result = engine.colorize(astronaut, options)
    labels = [i["label"] for i in result.details["instances"]]
    assert "person" in labels and result.details["detector"] == "detector-ssd-mnv2"
    fused, *instances = result.layers
    assert len(instances) == len(labels) and all(layer.group == "Instances" for layer in instances)
    moved = np.abs(colour.lightness_to_gray(colour.rgb_to_lightness(fused.pixels)) * 255 - astronaut) > 1
    # the photo's own lightness, as in full mode (clipped_pixels counts every layer's clipped pixels)
    assert moved.mean() < 0.3 and moved.sum() <= result.clipped_pixels
    assert np.abs(colour.rgb_to_lab(fused.pixels)[..., 1:]).mean() > 3  # it is coloured


def test_user_boxes_need_no_detection(engine, astronaut):
    options = ColorizeOptions(mode="instance", instance=InstanceOptions(boxes="selection",
                                                                        user_boxes=((10, 10, 100, 150),)))
    result = engine.colorize(astronaut, options)
    assert result.details["instances"] == [{"box": [10, 10, 100, 150], "source": "user", "label": None, "score": None}]
    assert result.details["detector"] is None
