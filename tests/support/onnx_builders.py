"""Tiny ONNX models built on the fly (onnx helper API, no torch) that honour the gimp-colorize contract.

The models are deterministic and cheap but not trivial: chroma is a smooth function of lightness
(sin/cos of L), computed at 1/`downsample` of the input resolution like real colorizers, optionally
bent by user hints and a noise vector. `expected_chroma(...)` reproduces the math in numpy so tests
can check the engine's output against it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from gimp_colorize import colour, contract

OPSET = 17
# ab(L) = AMPLITUDE * (sin(L * FREQ_A), cos(L * FREQ_B)) in Lab units, L scaled to [0, 100] first
AMPLITUDE = {"lab": 30.0, "yuv": 0.12, "ycbcr": 0.12}
FREQ_A, FREQ_B = 0.11, 0.07
INPUT_SCALE = {"lab": 1.0, "yuv": 100.0, "ycbcr": 100.0}  # yuv/ycbcr models get Y in [0, 1]
BIN_SHARPNESS = 0.02  # logits = -BIN_SHARPNESS * |ab - bin|^2, in units of the bins


def build_tiny_model(
    path: Path | str,
    *,
    name: str = "tiny-full",
    task: str = "full",
    output_kind: str = "ab_bins",
    colour_space: str = "lab",
    working_size: int = 64,
    resize: str = "square",
    size_multiple: int = 8,
    downsample: int = 4,
    bins: np.ndarray | None = None,
    default_temperature: float = 0.38,
    noise_dim: int | None = None,
    hints: bool = False,
    reference: bool = False,
    metadata: dict[str, str] | None = None,
    drop_keys: tuple[str, ...] = (),
    input_name: str = "lightness",
    output_name: str = "chroma",
) -> Path:
    """Write a contract-honouring model to `path` and return the path.

    `metadata` overrides or adds keys (e.g. {"gc.task": "painting"} for an unknown task);
    `drop_keys` removes keys (a model missing required metadata).
    """
    path = Path(path)
    if bins is None and (output_kind == "ab_bins" or reference):
        bins = colour.ab_bins() if colour_space == "lab" else yuv_bins()
    graph = _graph(colour_space, output_kind, bins, downsample, noise_dim, hints, input_name, output_name, reference)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="gimp-colorize-tests")
    model.ir_version = 8  # readable by every onnxruntime >= 1.14
    meta = _metadata(name, task, output_kind, colour_space, working_size, resize, size_multiple, bins,
                     default_temperature, noise_dim, hints, input_name, output_name, reference)
    meta.update(metadata or {})
    for key in drop_keys:
        meta.pop(key, None)
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def build_tiny_full_model(path: Path | str, output_kind: str = "ab_bins", **kwargs) -> Path:
    return build_tiny_model(path, output_kind=output_kind, **kwargs)


def build_tiny_diverse_model(path: Path | str, noise_dim: int = 4, **kwargs) -> Path:
    kwargs.setdefault("name", "tiny-diverse")
    return build_tiny_model(path, task="diverse", noise_dim=noise_dim, **kwargs)


def yuv_bins() -> np.ndarray:
    """A coarse grid of chroma bins in U/V units for yuv/ycbcr ab_bins test models."""
    grid = np.arange(-0.3, 0.301, 0.05, dtype=np.float32)
    return np.stack(np.meshgrid(grid, grid, indexing="ij"), axis=-1).reshape(-1, 2)


def _metadata(name, task, output_kind, colour_space, working_size, resize, size_multiple, bins,
              temperature, noise_dim, hints, input_name, output_name, reference=False) -> dict[str, str]:
    meta = {
        contract.CONTRACT: contract.CONTRACT_VERSION,
        contract.NAME: name,
        contract.TASK: task,
        contract.VERSION: "0.0.1",
        contract.COLOUR_SPACE: colour_space,
        contract.INPUT: input_name,
        contract.WORKING_SIZE: str(working_size),
        contract.RESIZE: resize,
        contract.SIZE_MULTIPLE: str(size_multiple),
        contract.OUTPUT: output_name,
        contract.OUTPUT_KIND: output_kind,
        contract.DESCRIPTION: "tiny deterministic test model (chroma = smooth function of lightness)",
        contract.TRAINING_DATA: "none: built by tests/support/onnx_builders.py",
        contract.LICENCE: "GPL-3.0-or-later",
        contract.PROVENANCE: "tests",
        contract.CREATED: "2026-01-01T00:00:00Z",
    }
    if output_kind == "ab_bins" or reference:
        meta[contract.AB_BINS] = json.dumps(np.asarray(bins).round(4).tolist())
    if output_kind == "ab_bins":
        meta[contract.DEFAULT_TEMPERATURE] = str(temperature)
    optional = {}
    if hints:
        optional.update(hint_ab="hint_ab", hint_mask="hint_mask")
    if reference:
        optional.update(reference_hist="reference_hist", reference_flag="reference_flag")
    if noise_dim:
        optional["noise"] = "noise"
        meta[contract.NOISE_DIM] = str(noise_dim)
    if optional:
        meta[contract.OPTIONAL_INPUTS] = json.dumps(optional)
    return meta


def _graph(colour_space, output_kind, bins, downsample, noise_dim, hints, input_name, output_name, reference=False):
    nodes, inits = [], []
    amplitude = AMPLITUDE[colour_space]

    def const(value, label):
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), label))
        return label

    def op(kind, inputs, output, **attrs):
        nodes.append(helper.make_node(kind, inputs, [output], **attrs))
        return output

    lightness = op("Mul", [input_name, const(INPUT_SCALE[colour_space], "in_scale")], "L100")
    a = op("Mul", [op("Sin", [op("Mul", [lightness, const(FREQ_A, "freq_a")], "phase_a")], "sin_a"),
                   const(amplitude, "amp")], "a")
    b = op("Mul", [op("Cos", [op("Mul", [lightness, const(FREQ_B, "freq_b")], "phase_b")], "cos_b"), "amp"], "b")
    ab = op("Concat", [a, b], "ab_full", axis=1)  # (N, 2, H, W)
    if hints:  # ab <- ab * (1 - mask) + hint_ab * mask
        keep = op("Sub", [const(1.0, "one"), "hint_mask"], "keep")
        ab = op("Add", [op("Mul", [ab, keep], "ab_kept"), op("Mul", ["hint_ab", "hint_mask"], "ab_hinted")], "ab_with_hints")
    if downsample > 1:
        ab = op("AveragePool", [ab], "ab_small", kernel_shape=[downsample, downsample], strides=[downsample, downsample])
    if noise_dim:  # a per-sample chroma shift: noise (N, Z) @ W (Z, 2) -> (N, 2, 1, 1)
        weights = np.linspace(-1, 1, noise_dim * 2, dtype=np.float32).reshape(noise_dim, 2) * amplitude * 0.5
        shift = op("MatMul", ["noise", const(weights, "noise_w")], "shift")
        shift = op("Reshape", [shift, _int64_const(inits, [-1, 2, 1, 1], "shift_shape")], "shift4")
        ab = op("Add", [ab, shift], "ab_shifted")
    if reference:  # a global shift by the reference's mean chroma: flag * (hist (N, Q) @ bins (Q, 2)) -> (N, 2, 1, 1)
        mean = op("MatMul", ["reference_hist", const(np.asarray(bins, dtype=np.float32), "hist_bins")], "ref_mean")
        mean = op("Mul", [mean, "reference_flag"], "ref_mean_flagged")
        mean = op("Reshape", [mean, _int64_const(inits, [-1, 2, 1, 1], "ref_shape")], "ref_mean4")
        ab = op("Add", [ab, mean], "ab_referenced")
    if output_kind == "ab":
        op("Identity", [ab], output_name)
    else:
        _bins_logits(op, const, ab, np.asarray(bins, dtype=np.float32), colour_space, output_name)
    inputs = [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", 1, "H", "W"])]
    if hints:
        inputs += [helper.make_tensor_value_info("hint_ab", TensorProto.FLOAT, ["N", 2, "H", "W"]),
                   helper.make_tensor_value_info("hint_mask", TensorProto.FLOAT, ["N", 1, "H", "W"])]
    if reference:
        inputs += [helper.make_tensor_value_info("reference_hist", TensorProto.FLOAT, ["N", len(bins)]),
                   helper.make_tensor_value_info("reference_flag", TensorProto.FLOAT, ["N", 1])]
    if noise_dim:
        inputs.append(helper.make_tensor_value_info("noise", TensorProto.FLOAT, ["N", noise_dim]))
    channels = 2 if output_kind == "ab" else len(bins)
    outputs = [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["N", channels, "h", "w"])]
    return helper.make_graph(nodes, "tiny_colorizer", inputs, outputs, initializer=inits)


def _bins_logits(op, const, ab, bins, colour_space, output_name):
    """logits_q = -s * |ab - bin_q|^2: peaked at the bins nearest ab, so the annealed mean lands near ab."""
    sharpness = BIN_SHARPNESS / (AMPLITUDE[colour_space] / AMPLITUDE["lab"]) ** 2  # same peakedness in any units
    # (N, 2, h, w) -> a, b as (N, 1, h, w) each, by 1x1 convolutions that pick one channel
    a = op("Conv", [ab, const(np.array([1, 0], np.float32).reshape(1, 2, 1, 1), "pick_a")], "ab_a")
    b = op("Conv", [ab, const(np.array([0, 1], np.float32).reshape(1, 2, 1, 1), "pick_b")], "ab_b")
    da = op("Sub", [a, const(bins[:, 0].reshape(1, -1, 1, 1), "bins_a")], "da")
    db = op("Sub", [b, const(bins[:, 1].reshape(1, -1, 1, 1), "bins_b")], "db")
    dist2 = op("Add", [op("Mul", [da, da], "da2"), op("Mul", [db, db], "db2")], "dist2")
    op("Mul", [dist2, const(-sharpness, "neg_sharpness")], output_name)


def _int64_const(inits, values, label):
    inits.append(numpy_helper.from_array(np.asarray(values, dtype=np.int64), label))
    return label


# ---------------------------------------------------------------------------- what the model computes


def expected_chroma(model_input: np.ndarray, colour_space: str = "lab", downsample: int = 4) -> np.ndarray:
    """numpy reference of the 'ab' output for a (N, 1, H, W) model input (no hints, no noise)."""
    lightness = model_input.astype(np.float64) * INPUT_SCALE[colour_space]
    amplitude = AMPLITUDE[colour_space]
    ab = np.concatenate([amplitude * np.sin(lightness * FREQ_A), amplitude * np.cos(lightness * FREQ_B)], axis=1)
    if downsample > 1:
        n, c, h, w = ab.shape
        h2, w2 = h // downsample, w // downsample
        ab = ab[:, :, : h2 * downsample, : w2 * downsample].reshape(n, c, h2, downsample, w2, downsample).mean((3, 5))
    return ab.astype(np.float32)


# ---------------------------------------------------------------------------- broken files and hashes


def write_truncated_copy(source: Path | str, target: Path | str, keep_fraction: float = 0.5) -> Path:
    """A copy of `source` cut after keep_fraction of its bytes, like an interrupted download."""
    data = Path(source).read_bytes()
    target = Path(target)
    target.write_bytes(data[: int(len(data) * keep_fraction)])
    return target


def build_missing_key_model(path: Path | str, key: str = contract.TASK, **kwargs) -> Path:
    return build_tiny_model(path, drop_keys=(key,), **kwargs)


def build_unknown_task_model(path: Path | str, task: str = "painting", **kwargs) -> Path:
    kwargs.setdefault("name", "tiny-unknown-task")
    return build_tiny_model(path, metadata={contract.TASK: task}, **kwargs)


def sha256_of(path: Path | str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_sidecar(path: Path | str, digest: str | None = None) -> Path:
    """NAME.onnx.sha256 beside the model, in `sha256sum` format; `digest` to write a wrong one."""
    path = Path(path)
    sidecar = path.with_name(path.name + ".sha256")
    sidecar.write_text(f"{digest or sha256_of(path)}  {path.name}\n")
    return sidecar


def write_manifest(folder: Path | str, entries: list[dict]) -> Path:
    """models/manifest.json; each entry {"file", optional "sha256" (computed if absent), "default_for"}."""
    folder = Path(folder)
    models = []
    for entry in entries:
        entry = dict(entry)
        if "sha256" not in entry:
            entry["sha256"] = sha256_of(folder / entry["file"])
        models.append(entry)
    manifest = folder / "manifest.json"
    manifest.write_text(json.dumps({"models": models}, indent=2) + "\n")
    return manifest


def build_broken_model(path: Path | str, kind: str, **kwargs) -> Path:
    """A model whose metadata is fine but which fails only when run.

    kind: "unknown_op" (a graph onnxruntime cannot load), "nan" (weights that make every output NaN),
    "constant" (weights that give every pixel the same colour).
    """
    path = build_tiny_model(path, **kwargs)
    model = onnx.load(str(path))
    if kind == "unknown_op":
        model.graph.node[0].op_type = "NoSuchColourOperator"
    else:
        scale = next(init for init in model.graph.initializer if init.name == "in_scale")
        scale.CopyFrom(numpy_helper.from_array(np.asarray(np.nan if kind == "nan" else 0.0, np.float32), "in_scale"))
    onnx.save(model, str(path))  # no checker: it would refuse the unknown operator
    return path


# ---------------------------------------------------------------------------- instance mode: a tiny detector

TINY_LABELS = {1: "person", 3: "car", 55: "orange"}


def build_tiny_detector(path: Path | str, boxes, classes, scores, *, name: str = "tiny-detector", count: int | None = None,
                        box_format: str = "yxyx_normalised", working_size: int = 32, metadata: dict | None = None,
                        drop_keys: tuple[str, ...] = ()) -> Path:
    """A detector with the TF detection API's outputs: fixed boxes (M, 4) and classes; the scores are `scores`
    times the image's mean brightness / 255, so a dark image finds less. `count` < M leaves padding rows."""
    boxes = np.asarray(boxes, np.float32).reshape(1, -1, 4)
    rows = boxes.shape[1]
    nodes, inits = [], []

    def const(value, label, dtype=np.float32):
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), label))
        return label

    nodes.append(helper.make_node("Cast", ["image"], ["image_f"], to=TensorProto.FLOAT))
    nodes.append(helper.make_node("ReduceMean", ["image_f"], ["mean"], keepdims=0))
    nodes.append(helper.make_node("Div", ["mean", const(255.0, "full_scale")], ["brightness"]))
    nodes.append(helper.make_node("Mul", [const(np.reshape(scores, (1, rows)), "base_scores"), "brightness"], ["scores"]))
    nodes.append(helper.make_node("Identity", [const(boxes, "fixed_boxes")], ["boxes"]))
    nodes.append(helper.make_node("Identity", [const(np.reshape(classes, (1, rows)), "fixed_classes")], ["classes"]))
    nodes.append(helper.make_node("Identity", [const([rows if count is None else count], "fixed_count")], ["count"]))
    graph = helper.make_graph(
        nodes, "tiny_detector", [helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", "H", "W", 3])],
        [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, rows, 4]),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, rows]),
         helper.make_tensor_value_info("classes", TensorProto.FLOAT, [1, rows]),
         helper.make_tensor_value_info("count", TensorProto.FLOAT, [1])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="gimp-colorize-tests")
    model.ir_version = 8
    meta = {
        contract.CONTRACT: contract.CONTRACT_VERSION, contract.NAME: name, contract.TASK: "detector",
        contract.VERSION: "0.0.1", contract.INPUT: "image", contract.OUTPUT: "boxes",
        contract.WORKING_SIZE: str(working_size), contract.RESIZE: "square",
        contract.DETECTOR_OUTPUTS: json.dumps({"boxes": "boxes", "scores": "scores", "classes": "classes", "count": "count"}),
        contract.INPUT_FORMAT: "uint8_nhwc_rgb", contract.BOX_FORMAT: box_format,
        contract.LABELS: json.dumps({str(k): v for k, v in TINY_LABELS.items()}),
        contract.DESCRIPTION: "tiny test detector (fixed boxes, brightness-scaled scores)",
    }
    meta.update(metadata or {})
    for key in drop_keys:
        meta.pop(key, None)
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


# ---------------------------------------------------------------------------- instance mode: instance + fusion models

TINY_FEATURES = ("feat8", "feat4")  # the tiny instance model's "decoder features": mean lightness at strides 8, 4
INSTANCE_SHIFT = (40.0, -40.0)       # the tiny fusion model shifts chroma inside each box by this x the crop's brightness


def build_tiny_instance_model(path: Path | str, *, name: str = "tiny-instance", working_size: int = 32,
                              output_kind: str = "ab_bins", hints: bool = False, reference: bool = False,
                              metadata: dict | None = None, drop_keys: tuple[str, ...] = ()) -> Path:
    """build_tiny_model's colorizer (task instance, square crops) plus two feature outputs:
    feat8 / feat4 = the crop's lightness (0..100) average-pooled by 8 and by 4."""
    path = build_tiny_model(path, name=name, task="instance", working_size=working_size, output_kind=output_kind,
                            hints=hints, reference=reference, resize="square", metadata=metadata, drop_keys=drop_keys)
    model = onnx.load(str(path))
    graph = model.graph
    for output, stride in zip(TINY_FEATURES, (8, 4)):
        graph.node.append(helper.make_node("AveragePool", ["L100"], [output], kernel_shape=[stride, stride],
                                           strides=[stride, stride]))
        graph.output.append(helper.make_tensor_value_info(output, TensorProto.FLOAT, ["N", 1, "h", "w"]))
    meta = {p.key: p.value for p in model.metadata_props}
    meta[contract.FEATURE_OUTPUTS] = json.dumps(list(TINY_FEATURES))
    meta.update(metadata or {})
    for key in drop_keys:
        meta.pop(key, None)
    del model.metadata_props[:]
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def build_tiny_fusion_model(path: Path | str, *, name: str = "tiny-fusion", instance_model: str = "tiny-instance",
                            working_size: int = 64, output_kind: str = "ab", resize: str = "keep_aspect",
                            hints: bool = False, reference: bool = False, metadata: dict | None = None,
                            drop_keys: tuple[str, ...] = ()) -> Path:
    """A fusion model: build_tiny_model's chroma of the full image, plus inside each valid box (x0, y0, x1, y1
    normalised; a cell is inside when its centre is) INSTANCE_SHIFT x the box's crop brightness, where the
    brightness is the mean of feat8 and feat4 over the crop / 100. ab_bins output: the logits of that chroma."""
    bins = colour.ab_bins() if output_kind == "ab_bins" or reference else None
    graph = _graph("lab", "ab", bins, 4, None, hints, "lightness", "full_chroma", reference)
    nodes, inits = list(graph.node), list(graph.initializer)

    def const(value, label, dtype=np.float32):
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), label))
        return label

    def op(kind, inputs, output, **attrs):
        nodes.append(helper.make_node(kind, inputs, [output], **attrs))
        return output

    # each instance's brightness m_k (K, 1, 1, 1)
    mean8 = op("ReduceMean", [TINY_FEATURES[0]], "mean8", axes=[1, 2, 3], keepdims=1)
    mean4 = op("ReduceMean", [TINY_FEATURES[1]], "mean4", axes=[1, 2, 3], keepdims=1)
    brightness = op("Mul", [op("Add", [mean8, mean4], "mean_sum"), const(1 / 200.0, "half_percent")], "brightness")
    valid = op("Reshape", ["box_valid", _int64_const(inits, [-1, 1, 1, 1], "k111")], "valid4")
    weight = op("Mul", [brightness, valid], "weight")
    # cell centres of the output grid, normalised: xs (1, 1, 1, w), ys (1, 1, h, 1)
    shape = op("Shape", ["full_chroma"], "out_shape")
    centres = {}
    for axis, label in ((2, "y"), (3, "x")):
        size = op("Cast", [op("Gather", [shape, const(axis, f"axis_{label}", np.int64)], f"size_{label}_i")],
                  f"size_{label}", to=TensorProto.FLOAT)
        ramp = op("Range", [const(0.0, f"zero_{label}"), size, const(1.0, f"one_{label}")], f"ramp_{label}")
        unit = op("Div", [op("Add", [ramp, const(0.5, f"half_{label}")], f"mid_{label}"), size], f"unit_{label}")
        target = [1, 1, 1, -1] if label == "x" else [1, 1, -1, 1]
        centres[label] = op("Reshape", [unit, _int64_const(inits, target, f"shape_{label}")], f"centre_{label}")
    inside = None
    for column, (label, compare) in enumerate((("x", "GreaterOrEqual"), ("y", "GreaterOrEqual"), ("x", "Less"), ("y", "Less"))):
        edge = op("Reshape", [op("Gather", ["boxes", const([column], f"col{column}", np.int64)], f"edge{column}_k1", axis=1),
                              "k111"], f"edge{column}")
        test = op(compare, [centres[label], edge], f"test{column}")
        inside = test if inside is None else op("And", [inside, test], f"inside{column}")
    inside = op("Cast", [inside], "inside_f", to=TensorProto.FLOAT)  # (K, 1, h, w)
    amount = op("ReduceSum", [op("Mul", [inside, weight], "weighted"), const([0], "axis0", np.int64)], "amount", keepdims=1)
    shifted = op("Add", ["full_chroma", op("Mul", [amount, const(np.reshape(INSTANCE_SHIFT, (1, 2, 1, 1)), "shift")],
                                         "shift_map")], "fused_ab")
    if output_kind == "ab":
        op("Identity", [shifted], "chroma")
    else:
        _bins_logits(op, const, shifted, np.asarray(bins, dtype=np.float32), "lab", "chroma")
    inputs = [i for i in graph.input] + [
        helper.make_tensor_value_info(TINY_FEATURES[0], TensorProto.FLOAT, ["K", 1, "h8", "w8"]),
        helper.make_tensor_value_info(TINY_FEATURES[1], TensorProto.FLOAT, ["K", 1, "h4", "w4"]),
        helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["K", 4]),
        helper.make_tensor_value_info("box_valid", TensorProto.FLOAT, ["K", 1])]
    channels = 2 if output_kind == "ab" else len(bins)
    outputs = [helper.make_tensor_value_info("chroma", TensorProto.FLOAT, [1, channels, "h", "w"])]
    fused_graph = helper.make_graph(nodes, "tiny_fusion", inputs, outputs, initializer=inits)
    model = helper.make_model(fused_graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="gimp-colorize-tests")
    model.ir_version = 8
    meta = _metadata(name, "fusion", output_kind, "lab", working_size, resize, 8, bins, 0.38, None, hints,
                     "lightness", "chroma", reference)
    meta[contract.INSTANCE_INPUTS] = json.dumps({"features": list(TINY_FEATURES), "boxes": "boxes", "box_valid": "box_valid"})
    meta[contract.INSTANCE_MODEL] = instance_model
    meta.update(metadata or {})
    for key in drop_keys:
        meta.pop(key, None)
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
