import json

import numpy as np
import pytest

from gimp_colorize import colour, contract
from gimp_colorize.errors import InvalidModel
from tests.support import onnx_builders as ob


def test_tiny_model_metadata_round_trips(tmp_path):
    path = ob.build_tiny_full_model(tmp_path / "m.onnx", name="tiny-a", working_size=96)
    info = contract.read_model_info(path)
    assert (info.name, info.task, info.colour_space, info.output_kind) == ("tiny-a", "full", "lab", "ab_bins")
    assert (info.input_name, info.output_name, info.working_size) == ("lightness", "chroma", 96)
    assert info.graph_inputs == ("lightness",) and info.graph_outputs == ("chroma",)
    np.testing.assert_allclose(np.array(info.ab_bins), colour.ab_bins(), atol=1e-4)
    assert info.default_temperature == pytest.approx(0.38)
    assert info.optional_inputs == {} and not info.has_noise


def test_optional_inputs_and_noise_are_parsed(tmp_path):
    path = ob.build_tiny_diverse_model(tmp_path / "d.onnx", noise_dim=6, hints=True, output_kind="ab")
    info = contract.read_model_info(path)
    assert info.task == "diverse" and info.noise_dim == 6 and info.has_noise
    assert info.optional_inputs == {"hint_ab": "hint_ab", "hint_mask": "hint_mask", "noise": "noise"}
    assert info.ab_bins == () and info.default_temperature is None


def test_reading_metadata_does_not_need_onnx_or_onnxruntime(tmp_path):
    import subprocess
    import sys

    path = ob.build_tiny_full_model(tmp_path / "m.onnx")
    script = (
        "import sys; sys.modules['onnx'] = None; sys.modules['onnxruntime'] = None\n"
        "from gimp_colorize import contract\n"
        f"print(contract.read_model_info({str(path)!r}).name)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "tiny-full"


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"drop_keys": (contract.TASK,)}, "missing metadata key(s) gc.task"),
        ({"drop_keys": (contract.CONTRACT, contract.NAME)}, "missing metadata key(s) gc.contract, gc.name"),
        ({"metadata": {contract.TASK: "painting"}}, "unknown task 'painting'"),
        ({"metadata": {contract.CONTRACT: "2"}}, "contract version '2' is not supported"),
        ({"metadata": {contract.COLOUR_SPACE: "hsv"}}, "gc.colour_space 'hsv' is not one of lab, yuv, ycbcr"),
        ({"metadata": {contract.WORKING_SIZE: "big"}}, "gc.working_size must be an integer"),
        ({"metadata": {contract.WORKING_SIZE: "0"}}, "gc.working_size must be between"),
        ({"metadata": {contract.INPUT: "gray"}}, "input 'gray' named in the metadata is not a graph input"),
        ({"metadata": {contract.OUTPUT: "ab"}}, "output 'ab' named in the metadata is not a graph output"),
        ({"metadata": {contract.AB_BINS: "[[1, 2], [3]]"}}, "gc.ab_bins must be a JSON list"),
        ({"metadata": {contract.AB_BINS: "not json"}}, "gc.ab_bins must be JSON"),
        ({"metadata": {contract.DEFAULT_TEMPERATURE: "-1"}}, "gc.default_temperature must be a positive number"),
        ({"metadata": {contract.OPTIONAL_INPUTS: json.dumps({"style": "x"})}}, "unknown role(s) style"),
        ({"metadata": {contract.NAME: "../evil"}}, "model name '../evil' must be"),
    ],
)
def test_contract_violations_have_clear_reasons(tmp_path, change, reason):
    path = ob.build_tiny_model(tmp_path / "bad.onnx", **change)
    with pytest.raises(InvalidModel) as caught:
        contract.read_model_info(path)
    assert reason in caught.value.message


def test_noise_input_without_noise_dim_is_rejected(tmp_path):
    path = ob.build_tiny_diverse_model(tmp_path / "d.onnx", drop_keys=(contract.NOISE_DIM,))
    with pytest.raises(InvalidModel, match="needs gc.noise_dim"):
        contract.read_model_info(path)


@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.9, 0.999])
def test_truncated_files_are_reported(tmp_path, fraction):
    whole = ob.build_tiny_full_model(tmp_path / "m.onnx")
    cut = ob.write_truncated_copy(whole, tmp_path / "cut.onnx", fraction)
    with pytest.raises(InvalidModel, match="truncated|missing metadata|not an ONNX model"):
        contract.read_model_info(cut)


def test_empty_and_foreign_files_are_reported(tmp_path):
    (tmp_path / "empty.onnx").write_bytes(b"")
    (tmp_path / "text.onnx").write_text("this is not a model\n" * 20)
    (tmp_path / "png.onnx").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(InvalidModel, match="empty file"):
        contract.read_model_info(tmp_path / "empty.onnx")
    for name in ("text.onnx", "png.onnx"):
        with pytest.raises(InvalidModel, match="not an ONNX model|truncated"):
            contract.read_model_info(tmp_path / name)
    with pytest.raises(InvalidModel, match="cannot read"):
        contract.read_model_info(tmp_path / "absent.onnx")


def test_large_weights_are_skipped_not_read(tmp_path):
    import time

    import onnx
    from onnx import numpy_helper

    path = ob.build_tiny_full_model(tmp_path / "m.onnx", output_kind="ab")
    model = onnx.load(str(path))
    big = numpy_helper.from_array(np.zeros((4, 1024, 1024), np.float32), "unused_weights")  # 16 MB
    model.graph.initializer.append(big)
    onnx.save(model, str(path))
    start = time.perf_counter()
    info = contract.read_model_info(path)
    assert info.name == "tiny-full"
    assert time.perf_counter() - start < 0.05


@pytest.mark.parametrize(
    "resize, size, multiple, image, expected",
    [
        ("square", 256, 1, (3000, 4000), (256, 256)),
        ("keep_aspect", 256, 32, (3000, 4000), (192, 256)),
        ("keep_aspect", 256, 32, (4000, 1000), (256, 64)),
        ("keep_aspect", 256, 32, (10, 4000), (32, 256)),
        ("keep_aspect", 64, 8, (64, 64), (64, 64)),
    ],
)
def test_working_shape_follows_the_resize_policy(resize, size, multiple, image, expected):
    info = contract.ModelInfo(path=None, name="m", task="full", version="1", input_name="i", output_name="o",
                              working_size=size, resize=resize, size_multiple=multiple)
    assert info.working_shape(*image) == expected


def test_to_json_is_serialisable_and_has_no_local_path(tmp_path):
    path = ob.build_tiny_full_model(tmp_path / "m.onnx")
    data = contract.read_model_info(path).to_json()
    text = json.dumps(data)
    assert str(tmp_path) not in text
    assert data["name"] == "tiny-full" and data["file"] == "m.onnx" and "ab_bins" not in data
