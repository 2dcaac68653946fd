"""Instance mode end to end through the engine, with tiny detector, instance and fusion models built on the fly.

The tiny fusion model's chroma is the tiny full-image chroma of the lightness, shifted inside each valid box by
INSTANCE_SHIFT x (the box's crop brightness), so these tests can see where the engine put each box, that the
instance model got the right crop, and that padding and invalid instances change nothing.
"""

import numpy as np
import pytest

from gimp_colorize import colour
from gimp_colorize.engine import ColorizeOptions, Engine
from gimp_colorize.errors import BadRequest, JobCancelled, NoModelInstalled
from gimp_colorize.options import Guidance, HintPoint, InstanceOptions
from gimp_colorize.registry import Registry
from tests.support import onnx_builders as ob

HEIGHT, WIDTH = 96, 128
DETECTED = [[0.25, 0.5, 0.75, 1.0],   # ymin, xmin, ymax, xmax: the right half's middle, "person" 0.9 x brightness
            [0.0, 0.0, 0.5, 0.25]]    # the top-left quarter column, "car" 0.8
DETECTED_PIXELS = [(64, 24, 64, 48), (0, 0, 32, 48)]


def build_models(folder, detector=True, fusion=True, hints=False):
    ob.build_tiny_full_model(folder / "full.onnx", name="full", output_kind="ab", working_size=64)
    ob.build_tiny_instance_model(folder / "inst.onnx", name="tiny-instance", output_kind="ab", hints=hints)
    if fusion:
        ob.build_tiny_fusion_model(folder / "fusion.onnx", hints=hints)
    if detector:
        ob.build_tiny_detector(folder / "det.onnx", DETECTED, [1, 3], [0.9, 0.8])
    return folder


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    folder = build_models(tmp_path_factory.mktemp("instance-models"))
    return Engine(Registry(None, folder), providers=["CPUExecutionProvider"], threads=1)


def photo(value=230):
    """A bright flat photo with a darker left half: crops there are darker, so their shift is smaller."""
    image = np.full((HEIGHT, WIDTH), value, np.uint8)
    image[:, : WIDTH // 2] = value // 2
    return image


def ab(result, layer=0):
    return colour.rgb_to_lab(result.layers[layer].pixels)[..., 1:]


def instance(**kwargs):
    return ColorizeOptions(mode="instance", instance=InstanceOptions(**kwargs))


def full_chroma(engine, image):
    return ab(engine.colorize(image, ColorizeOptions(model="full")))


def test_detected_boxes_are_reported_and_shift_the_chroma_inside_them_only(engine):
    image = photo()
    result = engine.colorize(image, instance(boxes="auto"))
    assert result.mode == "instance" and result.model == "tiny-instance" and len(result.layers) == 1
    assert result.details["fusion"] == "tiny-fusion" and result.details["detector"] == "tiny-detector"
    reported = result.details["instances"]
    assert [(i["box"], i["source"], i["label"]) for i in reported] == [
        (list(DETECTED_PIXELS[0]), "detector", "person"), (list(DETECTED_PIXELS[1]), "detector", "car")]
    assert reported[0]["score"] == pytest.approx(0.9 * image.mean() / 255, abs=1e-3)
    delta = ab(result) - full_chroma(engine, image)
    x, y, w, h = DETECTED_PIXELS[0]
    inside = delta[y + 8:y + h - 8, x + 8:x + w - 8]
    assert inside[..., 0].mean() > 10 and inside[..., 1].mean() < -10  # INSTANCE_SHIFT is (+40, -40) x brightness
    outside = np.ones((HEIGHT, WIDTH), bool)
    for x, y, w, h in DETECTED_PIXELS:
        outside[max(0, y - 8):y + h + 8, max(0, x - 8):x + w + 8] = False
    assert np.abs(delta[outside]).max() < 1.0


def test_each_crop_comes_from_its_own_box(engine):
    image = photo()
    boxes = ((8, 8, 40, 40), (72, 8, 40, 40))  # the dark half and the bright half
    result = engine.colorize(image, instance(boxes="selection", user_boxes=boxes))
    delta = ab(result) - full_chroma(engine, image)
    dark, bright = delta[16:40, 16:40, 0].mean(), delta[16:40, 80:104, 0].mean()
    assert 5 < dark < bright  # brightness of the crop: the shift follows it
    assert [i["source"] for i in result.details["instances"]] == ["user", "user"]
    assert result.details["detector"] is None


def test_without_any_box_the_result_is_the_full_image_networks(engine):
    dark = np.full((HEIGHT, WIDTH), 20, np.uint8)  # the tiny detector's scores fall below the threshold
    result = engine.colorize(dark, instance(boxes="auto", score_threshold=0.5))
    assert result.details["instances"] == []
    np.testing.assert_array_equal(result.layers[0].pixels, engine.colorize(dark, ColorizeOptions(model="full")).layers[0].pixels)


def test_selection_regions_are_instances_and_both_adds_the_detections_that_do_not_repeat_them(engine):
    selection = np.zeros((HEIGHT, WIDTH), np.uint8)
    selection[10:30, 40:60] = 255
    selection[60:90, 5:25] = 255
    only = engine.colorize(photo(), instance(boxes="selection", selection=selection))
    assert [(i["box"], i["source"]) for i in only.details["instances"]] == [([5, 60, 20, 30], "selection"),
                                                                          ([40, 10, 20, 20], "selection")]
    selection[24:72, 64:128] = 255  # now a region that repeats the "person" detection exactly
    both = engine.colorize(photo(), instance(boxes="both", selection=selection))
    sources = [(i["source"], i["label"]) for i in both.details["instances"]]
    assert sources == [("selection", None)] * 3 + [("detector", "car")]  # the person repeated the largest region


def test_max_instances_keeps_the_users_boxes_first(engine):
    result = engine.colorize(photo(), instance(boxes="both", user_boxes=((0, 60, 30, 30),), max_instances=2))
    assert [i["source"] for i in result.details["instances"]] == ["user", "detector"]
    assert result.details["instances"][1]["label"] == "person"


def test_instance_layers_hold_each_instances_own_colours_in_a_group_with_feathered_masks(engine):
    image = photo()
    result = engine.colorize(image, instance(boxes="selection", user_boxes=((72, 8, 40, 40), (8, 50, 30, 40)),
                                             instance_layers=True))
    fused, first, second = result.layers
    assert fused.group is None and fused.mask is None
    assert (first.group, second.group) == ("Instances", "Instances")
    assert first.name == "Instance 1: box" and first.details["box"] == [72, 8, 40, 40]
    assert first.mask.shape == (HEIGHT, WIDTH) and first.mask[28, 92] == 255 and first.mask[60, 20] == 0
    assert 0 < first.mask[8, 92] < 255  # feathered edge
    # inside its box an instance layer shows the instance model's own chroma: the tiny formula on the crop
    level = int(image[20, 92])
    own = colour.rgb_to_lab(first.pixels)[20:36, 84:100, 1:].reshape(-1, 2).mean(0)
    expected = full_chroma(engine, np.full((8, 8), level, np.uint8)).reshape(-1, 2).mean(0)
    np.testing.assert_allclose(own, expected, atol=1.5)
    # outside its box it shows the fused result (hidden by the mask)
    np.testing.assert_allclose(colour.rgb_to_lab(first.pixels)[80:, :8, 1:], ab(result)[80:, :8], atol=2.0)


def test_the_user_must_say_where_boxes_come_from(engine):
    with pytest.raises(BadRequest, match="boxes=auto uses only the detector"):
        engine.colorize(photo(), instance(boxes="auto", user_boxes=((0, 0, 5, 5),)))
    with pytest.raises(BadRequest, match="boxes=selection needs a selection mask or a list of boxes"):
        engine.colorize(photo(), instance(boxes="selection"))
    with pytest.raises(BadRequest, match="the selection is empty"):
        engine.colorize(photo(), instance(boxes="selection", selection=np.zeros((HEIGHT, WIDTH), np.uint8)))
    with pytest.raises(BadRequest, match="does not fit"):
        engine.colorize(photo(), instance(boxes="selection", user_boxes=((100, 0, 50, 5),)))


def test_missing_companion_models_are_reported_before_any_work(tmp_path):
    no_fusion = Engine(Registry(None, build_models(tmp_path / "a", fusion=False)))
    with pytest.raises(NoModelInstalled, match="fusion model trained with instance model 'tiny-instance'"):
        no_fusion.resolve(instance(boxes="auto"))
    no_detector = Engine(Registry(None, build_models(tmp_path / "b", detector=False)))
    with pytest.raises(NoModelInstalled, match="mode 'detector'"):
        no_detector.resolve(instance(boxes="auto"))
    result = no_detector.colorize(photo(), instance(boxes="selection", user_boxes=((0, 0, 20, 20),)))
    assert len(result.details["instances"]) == 1  # the user's boxes need no detector


def test_colour_points_reach_the_crop_they_fall_in(tmp_path):
    engine = Engine(Registry(None, build_models(tmp_path, hints=True)))
    blue = (90, 150, 230)  # in gamut at the photo's lightness, so clipping does not hide it
    point = HintPoint(100, 30, blue, size=12)  # inside the second box
    boxes = InstanceOptions(boxes="selection", user_boxes=((8, 8, 40, 40), (72, 8, 40, 40)), instance_layers=True)
    hinted = engine.colorize(photo(160), ColorizeOptions(mode="instance", guidance=Guidance(points=(point,)), instance=boxes))
    plain = engine.colorize(photo(160), ColorizeOptions(mode="instance", instance=boxes))
    blue_ab = colour.rgb_to_lab(np.array([blue], np.float32) / 255)[0, 1:]

    def mean_ab(result, layer, x):
        return colour.rgb_to_lab(result.layers[layer].pixels)[27:33, x:x + 6, 1:].reshape(-1, 2).mean(0)

    assert np.abs(mean_ab(hinted, 2, 97) - blue_ab).max() < 6  # the instance's own layer follows the point
    assert np.abs(mean_ab(plain, 2, 97) - blue_ab).max() > 20
    np.testing.assert_allclose(mean_ab(hinted, 1, 25), mean_ab(plain, 1, 25), atol=0.5)  # the other crop has none


def test_progress_has_a_detect_stage_and_cancel_works(engine):
    seen = []
    result = engine.colorize(photo(), instance(boxes="auto"), progress=lambda stage, f: seen.append((stage, f)))
    stages = [stage for stage, _ in seen]
    assert stages[:3] == ["preprocess", "detect", "inference"] and stages[-1] == "done"
    fractions = [f for _, f in seen]
    assert fractions == sorted(fractions)
    assert set(result.timings) == {"preprocess", "detect", "inference", "upsample_recombine"}
    for stop_after in (1, 2, 3):
        calls = []
        with pytest.raises(JobCancelled):
            engine.colorize(photo(), instance(boxes="auto"), cancelled=lambda: calls.append(1) or len(calls) > stop_after)


@pytest.mark.parametrize("builder, change, reason", [
    (ob.build_tiny_instance_model, {"drop_keys": ("gc.feature_outputs",)}, "missing metadata key(s) gc.feature_outputs"),
    (ob.build_tiny_instance_model, {"metadata": {"gc.feature_outputs": "[]"}}, "gc.feature_outputs must be a non-empty"),
    (ob.build_tiny_instance_model, {"metadata": {"gc.feature_outputs": '["feat8", "nope"]'}},
     "output 'nope' named in the metadata is not a graph output"),
    (ob.build_tiny_instance_model, {"metadata": {"gc.resize": "keep_aspect"}}, "an instance model must have gc.resize 'square'"),
    (ob.build_tiny_fusion_model, {"drop_keys": ("gc.instance_model",)}, "missing metadata key(s) gc.instance_model"),
    (ob.build_tiny_fusion_model, {"metadata": {"gc.instance_inputs": '{"features": ["feat8"], "boxes": "boxes"}'}},
     "gc.instance_inputs must be"),
    (ob.build_tiny_fusion_model, {"metadata": {"gc.instance_inputs": '{"features": ["feat8", "x"], "boxes": "boxes", '
                                                                     '"box_valid": "box_valid"}'}},
     "input 'x' named in the metadata is not a graph input"),
])
def test_broken_instance_and_fusion_metadata_is_rejected(tmp_path, builder, change, reason):
    from gimp_colorize import contract
    from gimp_colorize.errors import InvalidModel

    path = builder(tmp_path / "m.onnx", **change)
    with pytest.raises(InvalidModel, match=reason.replace("(", r"\(").replace(")", r"\)")):
        contract.read_model_info(path)


def test_the_fusion_model_is_the_one_trained_with_the_instance_model(tmp_path):
    ob.build_tiny_instance_model(tmp_path / "a.onnx", name="inst-a")
    ob.build_tiny_instance_model(tmp_path / "b.onnx", name="inst-b")
    ob.build_tiny_fusion_model(tmp_path / "fa.onnx", name="fusion-a", instance_model="inst-a")
    ob.build_tiny_fusion_model(tmp_path / "fb.onnx", name="fusion-b", instance_model="inst-b")
    ob.build_tiny_fusion_model(tmp_path / "fb2.onnx", name="fusion-b2", instance_model="inst-b")
    ob.write_manifest(tmp_path, [{"file": name} for name in ("a.onnx", "b.onnx", "fa.onnx", "fb.onnx")]
                      + [{"file": "fb2.onnx", "default_for": ["fusion"]}])
    registry = Registry(tmp_path, None)
    assert registry.fusion_for(registry.get("inst-a")).name == "fusion-a"
    assert registry.fusion_for(registry.get("inst-b")).name == "fusion-b2"  # the manifest's default wins
    assert registry.get("fusion-b").to_json()["instance_model"] == "inst-b"
