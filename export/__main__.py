"""`python -m export CHECKPOINT -o MODEL.onnx [--parity-images DIR] [--manifest]`: export + check a trained model.

`python -m export detector -o MODEL.onnx`: convert the instance-mode object detector (export/detector_export.py).
`python -m export instance|fusion CHECKPOINT -o MODEL.onnx ...`: instance mode's colorizers (export/instance_export.py).

Exit codes: 0 ok, 1 parity check failed (the file is still written, so it can be inspected), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from gimp_colorize import contract
from export.diverse_export import diverse_parity, export_diverse
from export.onnx_export import ExportError, ExportOptions, export_onnx, find_images, parity_check

PARITY_LIMIT_AB = 1.0


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m export", description=__doc__)
    parser.add_argument("checkpoint", help="training checkpoint (RUN/best.pt)")
    parser.add_argument("-o", "--output", required=True, help="ONNX file to write")
    parser.add_argument("--name", default=ExportOptions.name, help="gc.name (unique in the registry)")
    parser.add_argument("--version", default=ExportOptions.version, help="gc.version")
    parser.add_argument("--working-size", type=int, default=ExportOptions.working_size)
    parser.add_argument("--temperature", type=float, default=None, help="gc.default_temperature (default: the run's)")
    parser.add_argument("--training-data", default="", help="gc.training_data text")
    parser.add_argument("--description", default=ExportOptions.description)
    parser.add_argument("--average-with", nargs="+", default=[], metavar="CHECKPOINT",
                        help="other checkpoints of the same run whose weights are averaged with CHECKPOINT's")
    parser.add_argument("--flip-average", action="store_true",
                        help="the model averages its output for the image and its mirror image (2x inference time)")
    parser.add_argument("--parity-images", help="folder of photos for the torch vs onnxruntime parity check")
    parser.add_argument("--manifest", action="store_true",
                        help="add/update the file's entry (sha256, default_for) in manifest.json beside it")
    parser.add_argument("--default-for", nargs="*", default=["full"], metavar="MODE",
                        help="with --manifest: the modes (and/or 'guided') this model is the default for "
                             "(default: full; none: give the flag without values)")
    return parser.parse_args(argv)


def is_diverse_checkpoint(path: str) -> bool:
    import torch

    from training.diverse import DIVERSE_FORMAT

    try:
        return torch.load(path, map_location="cpu", weights_only=True).get("format") == DIVERSE_FORMAT
    except (OSError, RuntimeError, AttributeError) as exc:
        raise ExportError(f"cannot read the checkpoint {path}: {exc}") from None


def update_manifest(model_path: Path, default_for: list[str]) -> Path:
    """Insert or replace this file's entry in manifest.json next to it (atomic rewrite)."""
    manifest_path = model_path.parent / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {"models": []}
    entries = [e for e in manifest.get("models", []) if e.get("file") != model_path.name]
    if default_for:  # one default per task: others lose it
        for entry in entries:
            entry["default_for"] = [t for t in entry.get("default_for", []) if t not in default_for]
    entries.append({"file": model_path.name, "sha256": contract.file_sha256(model_path), "default_for": default_for})
    manifest["models"] = sorted(entries, key=lambda e: e["file"])
    tmp = manifest_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, manifest_path)
    return manifest_path


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["detector"]:
        from export.detector_export import main as export_detector_command

        return export_detector_command(argv[1:])
    if argv[:1] in (["instance"], ["fusion"]):
        from export.instance_export import main as export_instance_command

        return export_instance_command(argv[1:], argv[0])
    args = parse_args(argv)
    options = ExportOptions(name=args.name, version=args.version, working_size=args.working_size,
                            temperature=args.temperature, training_data=args.training_data,
                            description=args.description, average_with=tuple(args.average_with),
                            flip_average=args.flip_average)
    output = Path(args.output)
    try:
        images = find_images(args.parity_images) if args.parity_images else []
        diverse = is_diverse_checkpoint(args.checkpoint)
        meta = (export_diverse if diverse else export_onnx)(args.checkpoint, output, options)
        size_mb = output.stat().st_size / 1e6
        print(f"wrote {output} ({size_mb:.1f} MB), {meta[contract.TASK]} task, {meta[contract.OUTPUT_KIND]} output, "
              "onnx.checker passed")
        if images:
            parity = (diverse_parity(args.checkpoint, output, images, size=args.working_size) if diverse else
                      parity_check(args.checkpoint, output, images, size=args.working_size, options=options))
            print(f"parity torch vs onnxruntime on {parity['images']} photos: max |delta ab| {parity['max_abs']:.4f}, "
                  f"mean {parity['mean_abs']:.5f}")
            if parity["max_abs"] >= PARITY_LIMIT_AB:
                print(f"error: parity check failed (max |delta ab| >= {PARITY_LIMIT_AB})", file=sys.stderr)
                return 1
        if args.manifest:
            print(f"updated {update_manifest(output, list(args.default_for))}")
    except (ExportError, ValueError, FileNotFoundError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
