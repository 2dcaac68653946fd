"""`python -m training detect-boxes --data POOL`: the detector's boxes on every pool photo, into the pool manifest.

An additive step after `build-dataset`: each `images[]` entry gets `boxes` ([{"box": [x, y, w, h] in the
stored file's pixels, "label", "score"}], best first) and the manifest a `pseudo_boxes` record (detector
name, version and sha256, threshold, when, the command). Nothing else changes, so readers that do not know
the keys are unaffected. The detector sees each photo as instance mode sees a black-and-white photo (its
gray, through the backend's own detector code), so the instance network trains on the crops it will get.
Rerunning replaces the boxes. The manifest is rewritten atomically.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
from pathlib import Path

import numpy as np

from gimp_colorize import colour
from gimp_colorize.errors import ColorizeError
from training.data import MANIFEST_NAME, DataError, load_rgb

DEFAULT_THRESHOLD = 0.3   # lower than instance mode's default: a training crop of a less certain object still helps
MAX_BOXES = 16


def gray_photo(path: Path) -> np.ndarray:
    """The stored photo as the black-and-white (H, W) uint8 gray instance mode would get."""
    rgb = np.asarray(load_rgb(path, 1 << 16))
    return colour.from_float01(colour.lightness_to_gray(colour.rgb_to_lightness(colour.to_float01(rgb))), np.uint8)


def detect_all(manifest: dict, root: Path, detector_name: str | None, threshold: float, progress=None) -> dict:
    """{file: [box records]} for every image of the manifest."""
    from gimp_colorize.detector import detect
    from gimp_colorize.registry import Registry
    from gimp_colorize.sessions import ModelSession
    from gimp_colorize.source import SourceImage

    info = _detector(Registry.default() if detector_name is None or not detector_name.endswith(".onnx")
                     else Registry.from_files([detector_name]), detector_name)
    session = ModelSession(info, ["CPUExecutionProvider"])
    found = {}
    for number, entry in enumerate(manifest["images"]):
        instances = detect(session, info, SourceImage(gray_photo(root / entry["file"])), threshold)[:MAX_BOXES]
        found[entry["file"]] = [i.to_json() for i in instances]
        if progress is not None:
            progress(number + 1, len(manifest["images"]))
    return {"info": info, "boxes": found}


def _detector(registry, name: str | None):
    if name is None:
        return registry.default_for("detector")
    info = registry.get(registry.name_of(name)) if name.endswith(".onnx") else registry.get(name)
    if info.task != "detector":
        raise DataError(f"model '{info.name}' is a '{info.task}' model, not a detector")
    return info


def add_boxes(manifest: dict, found: dict, threshold: float, command: str) -> dict:
    info = found["info"]
    for entry in manifest["images"]:
        entry["boxes"] = [{k: v for k, v in box.items() if k != "source"} for box in found["boxes"][entry["file"]]]
    manifest["pseudo_boxes"] = {
        "detector": info.name, "version": info.version, "sha256": info.sha256, "threshold": threshold,
        "input": "the photo's gray (CIE lightness as sRGB gray), as instance mode sees it",
        "box": "x, y, width, height in the stored file's pixels",
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "command": command,
    }
    return manifest


def write_manifest(path: Path, manifest: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(tmp, path)


def main(argv=None, command: str = "detect-boxes") -> int:
    parser = argparse.ArgumentParser(prog=f"python -m training {command}", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a pool built by build-dataset (has manifest.json)")
    parser.add_argument("--detector", help="detector model name or .onnx file (default: the installed default)")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help="lowest score kept")
    args = parser.parse_args(argv)
    path = args.data / MANIFEST_NAME
    try:
        if not path.is_file():
            raise DataError(f"{path} does not exist: detect-boxes adds to a pool made by build-dataset")
        manifest = json.loads(path.read_text())
        if not isinstance(manifest, dict) or not isinstance(manifest.get("images"), list):
            raise DataError(f"{path} has no images list")

        def progress(done: int, total: int) -> None:
            if done % 25 == 0 or done == total:
                print(f"  {done}/{total} photos", file=sys.stderr)

        found = detect_all(manifest, args.data, args.detector, args.threshold, progress)
        line = f"python -m training {command} --data {args.data} --threshold {args.threshold}"
        write_manifest(path, add_boxes(manifest, found, args.threshold, line))
    except (DataError, ColorizeError, OSError, ValueError) as exc:
        print(f"error: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2
    total = sum(len(v) for v in found["boxes"].values())
    with_boxes = sum(1 for v in found["boxes"].values() if v)
    print(f"{total} boxes on {with_boxes} of {len(found['boxes'])} photos written to {path}")
    return 0
