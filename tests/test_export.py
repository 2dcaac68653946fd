"""Checkpoint -> ONNX: contract metadata, dynamic axes, parity with torch, manifest entry, CLI errors."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image

from export.__main__ import main as export_main
from export.onnx_export import ExportOptions, export_onnx, parity_check
from gimp_colorize import contract
from training.config import TrainConfig
from training.train import Trainer


def make_photos(folder, count=4, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        base = np.linspace(0, 255, 80, dtype=np.float32)[None, :, None] * rng.uniform(0.2, 1, 3)
        img = np.broadcast_to(base, (60, 80, 3)).copy()
        img[10:30, 20:50] = rng.integers(0, 256, 3)
        Image.fromarray(img.astype(np.uint8)).save(folder / f"photo{i}.png")
    return folder


def tiny_checkpoint(tmp_path, **overrides):
    values = dict(data=str(make_photos(tmp_path / "photos")), out=str(tmp_path / "run"), crop_size=32, batch_size=2,
                  max_steps=2, samples_per_image=1, workers=0, threads=1, pretrained=False, decoder_width=16,
                  val_fraction=0.0, val_every_steps=100)
    values.update(overrides)
    Trainer(TrainConfig(**values), show_progress=False).run()
    return tmp_path / "run" / "final.pt"


@pytest.fixture(scope="module")
def classification_export(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("export")
    checkpoint = tiny_checkpoint(tmp_path)
    model_path = tmp_path / "models" / "tiny.onnx"
    meta = export_onnx(checkpoint, model_path, ExportOptions(name="tiny-full", temperature=0.5))
    return checkpoint, model_path, meta, tmp_path


def test_metadata_honours_the_contract(classification_export):
    checkpoint, model_path, meta, _ = classification_export
    props = {p.key: p.value for p in onnx.load(str(model_path)).metadata_props}
    assert props == meta
    info = contract.read_model_info(model_path)  # the backend's own parser accepts it
    assert (info.name, info.task, info.colour_space, info.output_kind) == ("tiny-full", "full", "lab", "ab_bins")
    assert (info.input_name, info.output_name, info.default_temperature) == ("L", "ab_logits", 0.5)
    bins = json.loads(props[contract.AB_BINS])
    from gimp_colorize import colour
    np.testing.assert_array_equal(np.array(bins, np.float32), colour.ab_bins())


def test_dynamic_batch_and_spatial_axes(classification_export):
    _, model_path, _, _ = classification_export
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    for shape in [(1, 1, 64, 96), (2, 1, 128, 64)]:
        (out,) = session.run(["ab_logits"], {"L": np.full(shape, 40.0, np.float32)})
        assert out.shape == (shape[0], 261, shape[2] // 4, shape[3] // 4)


def test_parity_with_torch_is_far_below_one_ab_unit(classification_export):
    checkpoint, model_path, _, tmp_path = classification_export
    result = parity_check(checkpoint, model_path, sorted((tmp_path / "photos").glob("*.png")), size=96)
    assert result["images"] == 4
    assert result["max_abs"] < 0.05 and result["mean_abs"] <= result["max_abs"]


def test_regression_export_in_yuv_units(tmp_path):
    checkpoint = tiny_checkpoint(tmp_path, colour_space="yuv", loss="smoothl1")
    model_path = tmp_path / "yuv.onnx"
    meta = export_onnx(checkpoint, model_path, ExportOptions(name="tiny-yuv"))
    assert meta[contract.OUTPUT_KIND] == "ab" and meta[contract.INPUT] == "Y" and contract.AB_BINS not in meta
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    (out,) = session.run(["ab"], {"Y": np.full((1, 1, 64, 64), 0.5, np.float32)})
    assert out.shape == (1, 2, 16, 16) and np.abs(out).max() < 0.7  # U/V units, not x200 chroma units
    assert parity_check(checkpoint, model_path, sorted((tmp_path / "photos").glob("*.png")), size=64)["max_abs"] < 0.05


def test_cli_writes_model_and_manifest_entry(classification_export, tmp_path, capsys):
    checkpoint, _, _, photos_root = classification_export
    output = tmp_path / "models" / "cli.onnx"
    code = export_main([str(checkpoint), "-o", str(output), "--parity-images", str(photos_root / "photos"),
                        "--working-size", "64", "--manifest"])
    assert code == 0, capsys.readouterr().err
    assert "parity torch vs onnxruntime on 4 photos" in capsys.readouterr().out
    manifest = json.loads((output.parent / "manifest.json").read_text())
    (entry,) = manifest["models"]
    assert entry["file"] == "cli.onnx" and entry["default_for"] == ["full"]
    assert entry["sha256"] == contract.file_sha256(output)


def test_cli_reports_bad_checkpoint_without_traceback(tmp_path, capsys):
    bogus = tmp_path / "bogus.pt"
    import torch
    torch.save({"format": 99}, bogus)
    assert export_main([str(bogus), "-o", str(tmp_path / "x.onnx")]) == 2
    assert "not a gimp-colorize training checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()
    assert export_main([str(tmp_path / "missing.pt"), "-o", str(tmp_path / "x.onnx")]) == 2


def test_flip_average_and_weight_averaging(classification_export, tmp_path):
    import torch

    from export.onnx_export import build_export_model
    checkpoint, _, _, photos_root = classification_export
    other = tiny_checkpoint(tmp_path, seed=1)
    plain, _, _ = build_export_model(checkpoint, ExportOptions())
    second, _, _ = build_export_model(other, ExportOptions())
    mixed, _, _ = build_export_model(checkpoint, ExportOptions(average_with=(str(other),)))
    key = "head.weight"
    expected = 0.5 * (plain.model.state_dict()[key] + second.model.state_dict()[key])
    torch.testing.assert_close(mixed.model.state_dict()[key], expected)

    flipped, _, _ = build_export_model(checkpoint, ExportOptions(flip_average=True))
    light = torch.rand(1, 1, 64, 64) * 100
    with torch.no_grad():
        both = 0.5 * (plain(light) + plain(light.flip(-1)).flip(-1))
        torch.testing.assert_close(flipped(light), both)
    model_path = tmp_path / "flip.onnx"
    meta = export_onnx(checkpoint, model_path, ExportOptions(flip_average=True))
    assert "mirror image" in meta[contract.PROVENANCE]
    result = parity_check(checkpoint, model_path, sorted((photos_root / "photos").glob("*.png")), size=64,
                          options=ExportOptions(flip_average=True))
    assert result["max_abs"] < 0.05


def test_yuv_classification_export_decodes_to_the_trained_chroma(tmp_path):
    """Logits must pass through unscaled; only the bins are converted to U/V units (x 1/200)."""
    import torch

    from gimp_colorize import colour
    from training import losses
    from training.train import load_checkpoint
    checkpoint = tiny_checkpoint(tmp_path, colour_space="yuv", max_steps=3, lr=1e-2)
    model_path = tmp_path / "yuv-bins.onnx"
    meta = export_onnx(checkpoint, model_path, ExportOptions(name="tiny-yuv-bins"))
    model, _, state = load_checkpoint(checkpoint)
    y = np.random.default_rng(0).uniform(0, 1, (1, 1, 64, 64)).astype(np.float32)
    with torch.no_grad():
        expected = losses.annealed_mean(model(torch.from_numpy(y)), state["bins"], 0.38).numpy() / 200.0
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["ab_logits"], {"Y": y})
    bins = np.array(json.loads(meta[contract.AB_BINS]), np.float32)
    decoded = colour.annealed_mean(logits, bins, 0.38, axis=1)
    np.testing.assert_allclose(decoded, expected, atol=1e-4)
    assert np.abs(expected).max() > 1e-3  # the check is not vacuous
