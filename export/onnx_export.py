"""Checkpoint -> ONNX file honouring the gimp-colorize model contract (docs/DESIGN.md), with a parity check.

The exported graph takes the lightness in the colour space's own units (Lab L in [0, 100]; Y in [0, 1])
and returns either bin logits (`ab_logits`, decoded by annealed mean outside the model, so the
temperature stays adjustable) or chroma values (`ab`) in the colour space's units.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gimp_colorize import colour, contract
from training.train import load_checkpoint

OPSET = 17
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


class ExportError(ValueError):
    """The checkpoint cannot be exported, or the exported file fails a check (message says which)."""


@dataclass(frozen=True)
class ExportOptions:
    name: str = "full-mnv2"
    version: str = "1.0.0"
    working_size: int = 256
    temperature: float | None = None   # None: the checkpoint config's temperature
    description: str = "Full-image colorizer: ImageNet MobileNetV2 encoder + U-Net decoder, chroma bins at 1/4 resolution"
    training_data: str = ""
    licence: str = "GPL-3.0-or-later (model weights); training photos under their own licences, see MODEL_CARD.md"
    provenance: str = ""
    average_with: tuple[str, ...] = ()  # more checkpoints of the same run: their weights are averaged in
    flip_average: bool = False          # average the logits of the image and its mirror image (2x inference)


class ContractWrapper(nn.Module):
    """Regression models: chroma units -> the colour space's own units (the contract's `ab` output); bin logits
    pass through unchanged (their bins are rescaled in gc.ab_bins instead).
    Optionally averages the prediction for the image and its mirror image (test-time augmentation)."""

    def __init__(self, model: nn.Module, chroma_scale: float, flip_average: bool = False, classification: bool = True):
        super().__init__()
        self.model = model
        self.output_divisor = 1.0 if classification else chroma_scale
        self.flip_average = flip_average

    def forward(self, lightness: torch.Tensor, *guidance: torch.Tensor) -> torch.Tensor:
        """guidance: the guided model's extra inputs, in the order of guidance_inputs()."""
        extra = dict(zip(guidance_inputs(self.model.spec), guidance))
        out = self.model(lightness, **extra)
        if self.flip_average:
            flipped = {name: value.flip(-1) if value.dim() == 4 else value for name, value in extra.items()}
            out = 0.5 * (out + self.model(lightness.flip(-1), **flipped).flip(-1))
        return out if self.output_divisor == 1.0 else out / self.output_divisor


def guidance_inputs(spec) -> list[str]:
    """Names of a guided model's extra inputs (= their contract roles), in the exported graph's order."""
    names = []
    if spec.local_hints:
        names += list(contract.LOCAL_HINT_ROLES)
    if spec.global_hints:
        names += list(contract.GLOBAL_HINT_ROLES)
    return names


def guidance_examples(spec, lightness: torch.Tensor, seed: int = 0) -> list[torch.Tensor]:
    """Example values for guidance_inputs(spec): a few hint patches and a peaked reference histogram."""
    generator = torch.Generator().manual_seed(seed)
    n, _, height, width = lightness.shape
    values = []
    if spec.local_hints:
        mask = (torch.rand(n, 1, height, width, generator=generator) < 0.01).float()
        values += [(torch.rand(n, 2, height, width, generator=generator) * 120 - 60) * mask, mask]
    if spec.global_hints:
        histogram = torch.softmax(torch.randn(n, spec.hist_bins, generator=generator) * 3, dim=1)
        values += [histogram, torch.ones(n, 1)]
    return values


def average_weights(model: nn.Module, others: tuple[str, ...]) -> None:
    """Replace the model's floating-point weights (and BatchNorm statistics) by their mean over it and `others`."""
    if not others:
        return
    states = [model.state_dict()] + [load_checkpoint(path)[2]["model"] for path in others]
    averaged = {}
    for key, value in states[0].items():
        if value.is_floating_point():
            averaged[key] = torch.stack([state[key] for state in states]).mean(0)
        else:
            averaged[key] = value
    model.load_state_dict(averaged)


def build_export_model(checkpoint_path: str | Path, options: ExportOptions):
    """The module that gets exported: (wrapper in eval mode, training config, checkpoint dict)."""
    model, config, checkpoint = load_checkpoint(checkpoint_path)
    average_weights(model, options.average_with)
    wrapper = ContractWrapper(model, float(checkpoint["chroma_scale"]), options.flip_average,
                              classification=config.loss == "classification").eval()
    return wrapper, config, checkpoint


def io_names(colour_space: str, classification: bool) -> tuple[str, str]:
    return ("L" if colour_space == "lab" else "Y"), ("ab_logits" if classification else "ab")


def contract_metadata(config, checkpoint: dict, options: ExportOptions) -> dict[str, str]:
    """The gc.* metadata_props, all strings (JSON where the contract says so)."""
    classification = config.loss == "classification"
    input_name, output_name = io_names(config.colour_space, classification)
    scale = float(checkpoint["chroma_scale"])
    meta = {
        contract.CONTRACT: contract.CONTRACT_VERSION,
        contract.NAME: options.name,
        contract.TASK: "full",
        contract.VERSION: options.version,
        contract.COLOUR_SPACE: config.colour_space,
        contract.INPUT: input_name,
        contract.WORKING_SIZE: str(options.working_size),
        contract.RESIZE: "keep_aspect",  # fully convolutional + global pooling: any aspect ratio works
        contract.SIZE_MULTIPLE: "32",   # the encoder's total stride
        contract.OUTPUT: output_name,
        contract.OUTPUT_KIND: "ab_bins" if classification else "ab",
        contract.DESCRIPTION: options.description,
        contract.TRAINING_DATA: options.training_data
        or f"{checkpoint.get('train_images', '?')} training photos from {config.data}",
        contract.LICENCE: options.licence,
        contract.PROVENANCE: options.provenance or provenance_line(config, checkpoint, options),
        contract.CREATED: _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    roles = guidance_inputs(spec_of(config, checkpoint))
    if roles:
        meta[contract.OPTIONAL_INPUTS] = json.dumps({role: role for role in roles})
    if classification:
        bins = checkpoint["bins"].numpy() / scale
        meta[contract.AB_BINS] = json.dumps([[round(float(a), 6), round(float(b), 6)] for a, b in bins])
        temperature = config.temperature if options.temperature is None else options.temperature
        meta[contract.DEFAULT_TEMPERATURE] = repr(float(temperature))
    return meta


def spec_of(config, checkpoint: dict):
    from training.train import model_spec

    return model_spec(config, checkpoint["bins"].shape[0])


def provenance_line(config, checkpoint: dict, options: ExportOptions) -> str:
    line = (f"python -m training train (loss={config.loss}, colour_space={config.colour_space}, "
            f"crop={config.crop_size}, batch={config.batch_size}, seed={config.seed}); "
            f"{checkpoint['step']} steps, {checkpoint['elapsed_s'] / 60:.1f} min")
    if options.average_with:
        line += f"; weights averaged over {1 + len(options.average_with)} checkpoints"
    if options.flip_average:
        line += "; output averaged with the mirror image's"
    return line


def write_onnx(module, examples: tuple, output: Path, input_names: list[str], output_names: list[str],
               dynamic_axes: dict, meta: dict[str, str]) -> None:
    """Export `module` with the contract metadata, run onnx.checker, and write the file atomically (temp + rename)."""
    import onnx

    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(suffix=".onnx", dir=output.parent)
    os.close(fd)
    try:
        # The TorchScript exporter: the torch.export-based one needs onnxscript, which is not a dependency here.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(module.eval(), examples, tmp_name, dynamo=False, opset_version=OPSET, input_names=input_names,
                              output_names=output_names, dynamic_axes=dynamic_axes)
        proto = onnx.load(tmp_name)
        del proto.metadata_props[:]
        for key, value in meta.items():
            proto.metadata_props.add(key=key, value=value)
        onnx.checker.check_model(proto, full_check=True)
        onnx.save(proto, tmp_name)
        os.chmod(tmp_name, 0o644)  # mkstemp makes it private; a model file is meant to be shared and packaged
        contract.read_model_info(tmp_name)  # the backend accepts it
        os.replace(tmp_name, output)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def export_onnx(checkpoint_path: str | Path, output: str | Path, options: ExportOptions = ExportOptions()) -> dict[str, str]:
    """Write the ONNX file atomically (temp file + rename) and return its metadata. Runs onnx.checker."""
    wrapper, config, checkpoint = build_export_model(checkpoint_path, options)
    classification = config.loss == "classification"
    input_name, output_name = io_names(config.colour_space, classification)
    meta = contract_metadata(config, checkpoint, options)
    output = Path(output)
    dummy = torch.full((1, 1, 64, 96), 50.0 if config.colour_space == "lab" else 0.5)
    spec = wrapper.model.spec
    extra_names = guidance_inputs(spec)
    dynamic = {input_name: {0: "N", 2: "H", 3: "W"}, output_name: {0: "N", 2: "h", 3: "w"}}
    for name in extra_names:
        dynamic[name] = {0: "N", 2: "H", 3: "W"} if name in contract.LOCAL_HINT_ROLES else {0: "N"}
    write_onnx(wrapper, (dummy, *guidance_examples(spec, dummy)), output, [input_name, *extra_names], [output_name],
               dynamic, meta)
    return meta


# ---------------------------------------------------------------------------- parity torch vs onnxruntime


def lightness_of(rgb: np.ndarray, colour_space: str) -> np.ndarray:
    return colour.rgb_to_lightness(rgb) if colour_space == "lab" else colour.rgb_to_luma(rgb)


def load_parity_image(path: Path, size: int) -> np.ndarray:
    """Photo -> float32 sRGB, long side `size`, both sides multiples of 32 (as the engine would feed it)."""
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert("RGB")
        scale = size / max(img.size)
        width = max(32, round(img.width * scale / 32) * 32)
        height = max(32, round(img.height * scale / 32) * 32)
        return colour.to_float01(np.asarray(img.resize((width, height), Image.BILINEAR)))


def decode_chroma(output: np.ndarray, meta: dict[str, str]) -> np.ndarray:
    """Model output -> (N, 2, h, w) chroma in model units (annealed mean at the default temperature for bins)."""
    if meta[contract.OUTPUT_KIND] != "ab_bins":
        return output
    bins = np.array(json.loads(meta[contract.AB_BINS]), dtype=np.float32)
    return colour.annealed_mean(output, bins, float(meta[contract.DEFAULT_TEMPERATURE]), axis=1)


def parity_check(checkpoint_path: str | Path, onnx_path: str | Path, images: list[Path], size: int = 256,
                 options: ExportOptions = ExportOptions()) -> dict:
    """Run torch and onnxruntime on the same photos; compare the decoded chroma (Lab ab units for Lab models).

    Returns {"images": n, "max_abs": ..., "mean_abs": ...}. For YUV/YCbCr models the deltas are reported
    in chroma units (U/V x CHROMA_SCALE) so the "< 1" bar means the same as for Lab.
    """
    import onnx
    import onnxruntime as ort

    wrapper, config, checkpoint = build_export_model(checkpoint_path, options)
    scale = float(checkpoint["chroma_scale"])
    meta = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    spec = wrapper.model.spec
    deltas = []
    for number, path in enumerate(images):
        light = torch.from_numpy(lightness_of(load_parity_image(path, size), config.colour_space)[None, None].astype(np.float32))
        # guided models: alternately without guidance (zeros, what the engine feeds by default) and with some
        guidance = guidance_examples(spec, light, seed=number)
        if number % 2 == 0:
            guidance = [torch.zeros_like(value) for value in guidance]
        with torch.no_grad():
            reference = wrapper(light, *guidance).numpy()
        feeds = {meta[contract.INPUT]: light.numpy()}
        feeds.update({name: value.numpy() for name, value in zip(guidance_inputs(spec), guidance)})
        (result,) = session.run([meta[contract.OUTPUT]], feeds)
        delta = np.abs(decode_chroma(reference, meta) - decode_chroma(result, meta)) * scale
        deltas.append(delta.ravel())
    if not deltas:
        raise ExportError("parity check needs at least one image")
    every = np.concatenate(deltas)
    return {"images": len(images), "max_abs": float(every.max()), "mean_abs": float(every.mean())}


def find_images(folder: str | Path, limit: int = 12) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise ExportError(f"parity image folder {folder} does not exist")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ExportError(f"no images in {folder} for the parity check")
    return files[:limit]
