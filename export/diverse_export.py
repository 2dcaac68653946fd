"""`python -m training diverse` checkpoint -> a `diverse` ONNX model (contract role `noise`), with a parity check.

Inputs: the lightness (1, 1, H, W), noise (S, Z) with Z = the number of palette codes, and the guided model's
local hints (1, 2|1, H, W). Output: bin logits (S, Q, H/4, W/4), one row per sample: the encoder and the
palette prior run once per image, the decoder once per sample (docs/DESIGN.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from export.onnx_export import ExportOptions, contract_metadata, decode_chroma, lightness_of, load_parity_image, write_onnx
from gimp_colorize import contract
from training.config import TrainConfig
from training.diverse import load_diverse

INPUTS = ("L", "noise", "hint_ab", "hint_mask")
OUTPUT = "ab_logits"


def diverse_metadata(state: dict, options: ExportOptions) -> dict[str, str]:
    guided = state["guided_checkpoint"]
    meta = contract_metadata(TrainConfig.from_dict(guided["config"]), guided, options)
    codes = int(state["prototypes"].shape[0])
    meta[contract.TASK] = "diverse"
    meta[contract.NOISE_DIM] = str(codes)
    meta[contract.OPTIONAL_INPUTS] = json.dumps({"noise": "noise", "hint_ab": "hint_ab", "hint_mask": "hint_mask"})
    settings = state["config"]
    meta[contract.PROVENANCE] = (
        f"{meta[contract.PROVENANCE]}; diverse: {codes} palettes (k-means), p(palette | gray) on the frozen encoder, "
        f"Gumbel-softmax tau {settings['gumbel_temperature']}, prior temperature {settings['prior_temperature']} "
        f"(python -m training diverse, val loss {state['summary']['best_val_loss']:.3f} vs "
        f"{state['summary']['val_loss_of_the_marginal']:.3f} for the marginal)")
    return meta


def examples(model, height: int = 64, width: int = 96, samples: int = 3, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    lightness = torch.rand(1, 1, height, width, generator=generator) * 100
    noise = torch.randn(samples, model.prototypes.shape[0], generator=generator)
    mask = (torch.rand(1, 1, height, width, generator=generator) < 0.01).float()
    return lightness, noise, (torch.rand(1, 2, height, width, generator=generator) * 120 - 60) * mask, mask


def export_diverse(checkpoint: str | Path, output: str | Path, options: ExportOptions) -> dict[str, str]:
    model, state = load_diverse(checkpoint)
    meta = diverse_metadata(state, options)
    dynamic = {"L": {2: "H", 3: "W"}, "noise": {0: "S"}, "hint_ab": {2: "H", 3: "W"}, "hint_mask": {2: "H", 3: "W"},
               OUTPUT: {0: "S", 2: "h", 3: "w"}}
    write_onnx(model, examples(model), Path(output), list(INPUTS), [OUTPUT], dynamic, meta)
    return meta


def diverse_parity(checkpoint: str | Path, onnx_path: str | Path, images: list[Path], size: int = 256) -> dict:
    """torch vs onnxruntime on photos, 4 samples each: max and mean |delta ab| after decoding."""
    import onnx
    import onnxruntime as ort

    model, _ = load_diverse(checkpoint)
    meta = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    deltas = []
    for number, path in enumerate(images):
        light = torch.from_numpy(lightness_of(load_parity_image(path, size), "lab")[None, None].astype(np.float32))
        noise = torch.randn(4, model.prototypes.shape[0], generator=torch.Generator().manual_seed(number))
        hints = torch.zeros(1, 2, *light.shape[2:]), torch.zeros(1, 1, *light.shape[2:])
        with torch.no_grad():
            reference = model(light, noise, *hints).numpy()
        (result,) = session.run([OUTPUT], dict(zip(INPUTS, (light.numpy(), noise.numpy(), *(h.numpy() for h in hints)))))
        deltas.append(np.abs(decode_chroma(reference, meta) - decode_chroma(result, meta)).ravel())
    every = np.concatenate(deltas)
    return {"images": len(images), "max_abs": float(every.max()), "mean_abs": float(every.mean())}
