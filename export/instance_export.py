"""Instance mode's two colorizers as contract ONNX files, each with a torch vs onnxruntime parity check.

    python -m export instance RUN/best.pt -o instance-mnv2.onnx --name instance-mnv2 [--working-size 160]
    python -m export fusion FUSION/best.pt -o fusion-mnv2.onnx --name fusion-mnv2 --instance-model instance-mnv2

`instance`: a training checkpoint of the instance network (`python -m training train --crops instance`) ->
task `instance`: K square crops (K, 1, S, S) in, its own bin logits and its decoder features at the four fused
levels (feat32, feat16, feat8, feat4) out. `fusion`: a `python -m training train-fusion` checkpoint -> task
`fusion`: the whole image's lightness (and guidance), the K instances' features, boxes (K, 4) and box_valid
(K, 1) in, the fused bin logits out (docs/DESIGN.md "Instance and fusion models").

--parity-images: both files (or the one exported) run on photos through torch and onnxruntime; the fusion check
feeds it the instance features of two boxes per photo, each side computing its own (torch instance -> torch
fusion; onnxruntime instance -> onnxruntime fusion), every other photo with simulated hints and a reference.
Exit status 1 if the decoded chroma differs by 1 ab unit or more anywhere.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from export.onnx_export import (ExportError, ExportOptions, contract_metadata, decode_chroma, find_images,
                                guidance_examples, guidance_inputs, lightness_of, load_parity_image, write_onnx)
from gimp_colorize import contract
from training.config import TrainConfig
from training.model import DECODER_LEVELS

FEATURES = tuple(f"feat{stride}" for stride in DECODER_LEVELS)
OUTPUT = "ab_logits"
PARITY_LIMIT_AB = 1.0
PARITY_BOXES = ((0.2, 0.15, 0.7, 0.8), (0.55, 0.05, 0.95, 0.45))  # x0, y0, x1, y1 on each parity photo


class InstanceWrapper(nn.Module):
    """crops (K, 1, S, S) [+ guidance] -> (bin logits, feat32, feat16, feat8, feat4)."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.guidance_names = guidance_inputs(model.spec)

    def forward(self, lightness, *guidance):
        output, features = self.model.forward_with_features(lightness, **dict(zip(self.guidance_names, guidance)))
        return (output, *features)


class FusionWrapper(nn.Module):
    """lightness (1, 1, H, W) [+ guidance], feat32..feat4 (K, C, h, w), boxes (K, 4), box_valid (K, 1) -> logits."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.guidance_names = guidance_inputs(model.full.spec)

    def forward(self, lightness, *inputs):
        count = len(self.guidance_names)
        guidance = dict(zip(self.guidance_names, inputs[:count]))
        features, (boxes, valid) = list(inputs[count:count + len(FEATURES)]), inputs[count + len(FEATURES):]
        return self.model(lightness, features, boxes[None], valid.reshape(1, -1), **guidance)


def guidance_dynamic(spec, batch: str) -> dict:
    return {name: ({0: batch, 2: "H", 3: "W"} if name in contract.LOCAL_HINT_ROLES else {0: batch})
            for name in guidance_inputs(spec)}


# ---------------------------------------------------------------------------- instance


def instance_metadata(config, checkpoint: dict, options: ExportOptions) -> dict[str, str]:
    meta = contract_metadata(config, checkpoint, options)
    meta[contract.TASK] = "instance"
    meta[contract.RESIZE] = "square"
    meta[contract.FEATURE_OUTPUTS] = json.dumps(list(FEATURES))
    meta[contract.PROVENANCE] = meta[contract.PROVENANCE].replace("python -m training train", "python -m training train --crops instance")
    return meta


def export_instance(checkpoint: str | Path, output: str | Path, options: ExportOptions) -> dict[str, str]:
    from training.train import load_checkpoint

    model, config, state = load_checkpoint(checkpoint)
    if config.crops != "instance":
        raise ExportError(f"{checkpoint} was trained on whole-photo crops (--crops {config.crops}), not on objects")
    meta = instance_metadata(config, state, options)
    side = options.working_size
    example = (torch.full((2, 1, side, side), 50.0), *guidance_examples(model.spec, torch.zeros(2, 1, side, side)))
    names = ["L", *guidance_inputs(model.spec)]
    dynamic = {"L": {0: "K", 2: "S", 3: "S"}, **guidance_dynamic(model.spec, "K"), OUTPUT: {0: "K", 2: "s", 3: "s"},
               **{name: {0: "K", 2: f"h{name[4:]}", 3: f"w{name[4:]}"} for name in FEATURES}}
    write_onnx(InstanceWrapper(model), example, Path(output), names, [OUTPUT, *FEATURES], dynamic, meta)
    return meta


# ---------------------------------------------------------------------------- fusion


def fusion_metadata(state: dict, options: ExportOptions, instance_model: str) -> dict[str, str]:
    full = state["full"]
    meta = contract_metadata(TrainConfig.from_dict(full["config"]), full, options)
    meta[contract.TASK] = "fusion"
    meta[contract.INSTANCE_INPUTS] = json.dumps({"features": list(FEATURES), "boxes": "boxes", "box_valid": "box_valid"})
    meta[contract.INSTANCE_MODEL] = instance_model
    settings = state["config"]
    meta[contract.PROVENANCE] = (
        f"full-image branch: {meta[contract.PROVENANCE]} ({Path(full['source']).name}, sha256 {full['sha256'][:16]}); "
        f"instance network: {Path(state['instance']['source']).name} (sha256 {state['instance']['sha256'][:16]}); "
        f"fusion: python -m training train-fusion (crop {settings['crop_size']}, instances {settings['max_instances']} "
        f"of {settings['instance_size']} px, batch {settings['batch_size']}, seed {settings['seed']}), "
        f"{state['step']} steps, {state['elapsed_s'] / 60:.1f} min, val loss {state['best_val']:.4f} vs "
        f"{state['val_full_only']:.4f} for the full-image network alone")
    return meta


def fusion_example(model, count: int = 2, height: int = 64, width: int = 96, side: int = 64):
    lightness = torch.full((1, 1, height, width), 50.0)
    crops = torch.full((count, 1, side, side), 40.0)
    with torch.no_grad():
        _, features = model.instance_features(crops)
    boxes = torch.tensor([[0.1, 0.1, 0.5, 0.6], [0.4, 0.3, 0.9, 0.9]])[:count]
    return (lightness, *guidance_examples(model.full.spec, lightness), *features, boxes, torch.ones(count, 1))


def export_fusion(checkpoint: str | Path, output: str | Path, options: ExportOptions, instance_model: str) -> dict[str, str]:
    from training.train_fusion import load_fusion_checkpoint

    model, state = load_fusion_checkpoint(checkpoint)
    meta = fusion_metadata(state, options, instance_model)
    spec = model.full.spec
    names = ["L", *guidance_inputs(spec), *FEATURES, "boxes", "box_valid"]
    local_hints = [name for name in guidance_inputs(spec) if name in contract.LOCAL_HINT_ROLES]
    dynamic = {"L": {2: "H", 3: "W"}, **{name: {2: "H", 3: "W"} for name in local_hints},
               **{name: {0: "K", 2: f"h{name[4:]}", 3: f"w{name[4:]}"} for name in FEATURES},
               "boxes": {0: "K"}, "box_valid": {0: "K"}, OUTPUT: {2: "h", 3: "w"}}
    write_onnx(FusionWrapper(model), fusion_example(model), Path(output), names, [OUTPUT], dynamic, meta)
    return meta


# ---------------------------------------------------------------------------- parity


def parity_crops(light: torch.Tensor, side: int) -> torch.Tensor:
    """The PARITY_BOXES of a (1, 1, H, W) lightness, each resized to side x side: (2, 1, side, side)."""
    import torch.nn.functional as F

    height, width = light.shape[2:]
    crops = []
    for x0, y0, x1, y1 in PARITY_BOXES:
        part = light[:, :, round(y0 * height):round(y1 * height), round(x0 * width):round(x1 * width)]
        crops.append(F.interpolate(part, size=(side, side), mode="bilinear", align_corners=False, antialias=True))
    return torch.cat(crops)


def instance_guidance(spec, crops: torch.Tensor, number: int) -> list[torch.Tensor]:
    values = guidance_examples(spec, crops, seed=number)
    return [torch.zeros_like(v) for v in values] if number % 2 == 0 else values


def parity(checkpoints: dict, files: dict, images: list[Path], size: int = 256, instance_size: int | None = None) -> dict:
    """{"instance": {...}, "fusion": {...}} max / mean |delta ab| after decoding, for the files given.
    instance_size: the crops' side (default: the fusion run's --instance-size)."""
    import onnx
    import onnxruntime as ort

    from training.train import load_checkpoint
    from training.train_fusion import load_fusion_checkpoint

    sessions = {k: ort.InferenceSession(str(v), providers=["CPUExecutionProvider"]) for k, v in files.items()}
    metas = {k: {p.key: p.value for p in onnx.load(str(v)).metadata_props} for k, v in files.items()}
    fused, state = load_fusion_checkpoint(checkpoints["fusion"]) if "fusion" in checkpoints else (None, None)
    instance = fused.instance if fused is not None else load_checkpoint(checkpoints["instance"])[0]
    instance_size = instance_size or (state["config"]["instance_size"] if state else 160)
    deltas = {k: [] for k in files}
    for number, path in enumerate(images):
        light = torch.from_numpy(lightness_of(load_parity_image(path, size), "lab")[None, None].astype(np.float32))
        crops = parity_crops(light, instance_size)
        guidance = instance_guidance(instance.spec, crops, number)
        with torch.no_grad():
            own, features = instance.forward_with_features(crops, **dict(zip(guidance_inputs(instance.spec), guidance)))
        feeds = {"L": crops.numpy(), **{n: v.numpy() for n, v in zip(guidance_inputs(instance.spec), guidance)}}
        if "instance" in files:
            onnx_own, *onnx_features = sessions["instance"].run([OUTPUT, *FEATURES], feeds)
            deltas["instance"].append(_delta(own.numpy(), onnx_own, metas["instance"]))
        else:
            onnx_features = [f.numpy() for f in features]
        if fused is not None and "fusion" in files:
            boxes = torch.tensor(PARITY_BOXES, dtype=torch.float32)
            full_guidance = instance_guidance(fused.full.spec, light, number)
            with torch.no_grad():
                reference = fused(light, features, boxes[None], torch.ones(1, 2),
                                  **dict(zip(guidance_inputs(fused.full.spec), full_guidance))).numpy()
            feeds = {"L": light.numpy(), **{n: v.numpy() for n, v in zip(guidance_inputs(fused.full.spec), full_guidance)},
                     **dict(zip(FEATURES, onnx_features)), "boxes": boxes.numpy(), "box_valid": np.ones((2, 1), np.float32)}
            (result,) = sessions["fusion"].run([OUTPUT], feeds)
            deltas["fusion"].append(_delta(reference, result, metas["fusion"]))
    if not images:
        raise ExportError("parity check needs at least one image")
    return {k: {"images": len(images), "max_abs": float(np.concatenate(v).max()), "mean_abs": float(np.concatenate(v).mean())}
            for k, v in deltas.items() if v}


def _delta(reference: np.ndarray, result: np.ndarray, meta: dict) -> np.ndarray:
    return np.abs(decode_chroma(reference, meta) - decode_chroma(result, meta)).ravel()


# ---------------------------------------------------------------------------- command line


def instance_crop_size(args, task: str) -> int | None:
    """The crops' side in the parity check: the instance model's working size (None: the fusion run's)."""
    if task == "instance":
        return args.working_size
    return contract.read_model_info(args.instance_file).working_size if args.instance_file else None


def main(argv: list[str], task: str) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m export {task}", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("-o", "--output", required=True, type=Path)
    parser.add_argument("--name", required=True, help="gc.name")
    parser.add_argument("--version", default="1.0.0")
    parser.add_argument("--working-size", type=int, default=160 if task == "instance" else 256)
    parser.add_argument("--description", required=True)
    parser.add_argument("--training-data", default="")
    if task == "fusion":
        parser.add_argument("--instance-model", required=True, help="gc.instance_model: the paired instance model's name")
        parser.add_argument("--instance-file", type=Path, help="the exported instance model, for the chained parity check")
    parser.add_argument("--parity-images", help="folder of photos for the torch vs onnxruntime parity check")
    parser.add_argument("--manifest", action="store_true", help="add/update the file's entry in manifest.json beside it")
    args = parser.parse_args(argv)
    from export.__main__ import update_manifest

    options = ExportOptions(name=args.name, version=args.version, working_size=args.working_size,
                            description=args.description, training_data=args.training_data)
    try:
        images = find_images(args.parity_images) if args.parity_images else []
        if task == "instance":
            export_instance(args.checkpoint, args.output, options)
            checkpoints, files = {"instance": args.checkpoint}, {"instance": args.output}
        else:
            export_fusion(args.checkpoint, args.output, options, args.instance_model)
            checkpoints = {"fusion": args.checkpoint}
            files = {"fusion": args.output, **({"instance": args.instance_file} if args.instance_file else {})}
        print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.1f} MB), task {task}, onnx.checker passed")
        if images:
            results = parity(checkpoints, files, images, size=256 if task == "instance" else args.working_size,
                             instance_size=instance_crop_size(args, task))
            for kind, row in results.items():
                print(f"parity torch vs onnxruntime ({kind}) on {row['images']} photos: max |delta ab| "
                      f"{row['max_abs']:.4f}, mean {row['mean_abs']:.5f}")
            if any(row["max_abs"] >= PARITY_LIMIT_AB for row in results.values()):
                print(f"error: parity check failed (max |delta ab| >= {PARITY_LIMIT_AB})", file=sys.stderr)
                return 1
        if args.manifest:
            print(f"updated {update_manifest(args.output, [task])}")
    except (ExportError, ValueError, FileNotFoundError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
