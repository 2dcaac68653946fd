"""Guided colorizers (Zhang et al. 2017): simulated hints, reference histograms, degradations, training, export."""

import random
from collections import Counter

import numpy as np
import onnxruntime as ort
import pytest
import torch

from export.onnx_export import ExportOptions, export_onnx, parity_check
from gimp_colorize import colour, contract
from gimp_colorize.engine import ColorizeOptions, Engine
from gimp_colorize.options import Guidance, HintPoint
from gimp_colorize.registry import Registry
from tests.test_export import make_photos
from training import data
from training.config import TrainConfig
from training.degrade import degrade_gray
from training.hints import HintSettings, point_count, simulate_local_hints
from training.model import Colorizer, ModelSpec
from training.train import Trainer


def test_point_counts_follow_the_settings():
    rng = random.Random(0)
    counts = [point_count(rng, HintSettings(none_fraction=0.4, geometric_p=0.125)) for _ in range(20000)]
    assert abs(counts.count(0) / len(counts) - 0.4) < 0.02
    hinted = [c for c in counts if c]
    assert abs(np.mean(hinted) - 8.0) < 0.4  # 1 + Geometric(1/8) has mean 1/p
    assert max(counts) <= 100


def test_simulated_hints_are_patch_means_of_the_truth():
    chroma = torch.randn(3, 2, 40, 40) * 30
    hint_ab, hint_mask = simulate_local_hints(chroma, random.Random(1), HintSettings(none_fraction=0.0))
    assert hint_mask.sum() > 0 and set(hint_mask.unique().tolist()) <= {0.0, 1.0}
    assert torch.all(hint_ab[hint_mask.expand_as(hint_ab) == 0] == 0)
    # every patch holds one value, the mean of the truth inside it (overlapping patches: the last one drawn)
    values = Counter(map(tuple, hint_ab.permute(0, 2, 3, 1)[hint_mask[:, 0] > 0].round(decimals=3).tolist()))
    assert 0 < len(values) < hint_mask.sum() / 2


def test_degradations_keep_the_size_change_the_pixels_and_repeat_with_the_seed():
    gray = (np.add.outer(np.arange(64), np.arange(80)) * 2 % 256).astype(np.uint8)
    first = degrade_gray(gray, random.Random(3))
    assert first.shape == gray.shape and first.dtype == np.uint8
    assert np.array_equal(first, degrade_gray(gray, random.Random(3)))
    changed = [not np.array_equal(degrade_gray(gray, random.Random(seed)), gray) for seed in range(10)]
    assert sum(changed) >= 8


def test_guided_crops_carry_a_reference_and_degrade_only_the_lightness(tmp_path):
    files = sorted(make_photos(tmp_path / "photos").glob("*.png"))
    crops = data.CropSettings(crop_size=32, degrade_probability=1.0, reference_fraction=1.0)
    degraded = data.ColourCrops(files, "lab", crops, train=False)
    clean = data.ColourCrops(files, "lab", data.CropSettings(crop_size=32), train=False)
    lightness, chroma, histogram, flag = degraded[0]
    clean_lightness, clean_chroma = clean[0]
    assert torch.equal(chroma, clean_chroma) and not torch.equal(lightness, clean_lightness)
    assert histogram.shape == (len(colour.ab_bins()),) and float(flag) == 1.0
    assert histogram.sum().item() == pytest.approx(1.0, abs=1e-4)
    # the histogram is centred on the crop's own colours
    mean_ab = histogram.numpy() @ colour.ab_bins()
    assert np.linalg.norm(mean_ab - clean_chroma.mean(dim=(1, 2)).numpy()) < 8


def test_no_guidance_is_the_same_as_zero_guidance():
    spec = ModelSpec(out_channels=12, decoder_width=8, local_hints=True, global_hints=True, hist_bins=12)
    model = Colorizer(spec).eval()
    lightness = torch.rand(2, 1, 64, 64) * 100
    zeros = dict(hint_ab=torch.zeros(2, 2, 64, 64), hint_mask=torch.zeros(2, 1, 64, 64),
                 reference_hist=torch.zeros(2, 12), reference_flag=torch.zeros(2, 1))
    with torch.no_grad():
        assert torch.allclose(model(lightness), model(lightness, **zeros))
        hinted = dict(zeros, hint_mask=torch.ones(2, 1, 64, 64), hint_ab=torch.full((2, 2, 64, 64), 40.0))
        assert not torch.allclose(model(lightness), model(lightness, **hinted))
        # a histogram without its flag is no reference
        unflagged = dict(zeros, reference_hist=torch.softmax(torch.randn(2, 12), 1))
        assert torch.allclose(model(lightness), model(lightness, **unflagged))


@pytest.fixture(scope="module")
def guided_export(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("guided")
    config = TrainConfig(data=str(make_photos(tmp_path / "photos")), out=str(tmp_path / "run"), crop_size=32,
                         batch_size=2, max_steps=3, samples_per_image=1, workers=0, threads=1, pretrained=False,
                         decoder_width=16, val_fraction=0.0, val_every_steps=100, local_hints=True,
                         global_hints=True, degrade_probability=0.5, hint_none_fraction=0.0)
    history = Trainer(config, show_progress=False).run()
    assert len(history["train_loss"]) == 3 and all(np.isfinite(history["train_loss"]))
    model_path = tmp_path / "guided.onnx"
    export_onnx(tmp_path / "run" / "final.pt", model_path, ExportOptions(name="tiny-guided"))
    return tmp_path / "run" / "final.pt", model_path, tmp_path


def test_a_guided_export_declares_its_roles_and_matches_torch(guided_export):
    checkpoint, model_path, tmp_path = guided_export
    info = contract.read_model_info(model_path)
    assert info.takes_local_hints and info.takes_reference
    assert set(info.optional_inputs) == {"hint_ab", "hint_mask", "reference_hist", "reference_flag"}
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    shapes = {i.name: i.shape for i in session.get_inputs()}
    assert shapes["hint_ab"] == ["N", 2, "H", "W"] and shapes["reference_hist"] == ["N", len(info.ab_bins)]
    photos = sorted((tmp_path / "photos").glob("*.png"))
    parity = parity_check(checkpoint, model_path, photos, size=64)
    assert parity["images"] == 4 and parity["max_abs"] < 0.01


def test_the_engine_runs_a_trained_guided_export_with_hints_and_a_reference(guided_export):
    _, model_path, _ = guided_export
    engine = Engine(Registry.from_files([model_path]), providers=["CPUExecutionProvider"], threads=1)
    image = np.tile(np.linspace(0, 255, 96, dtype=np.uint8), (64, 1))
    plain = engine.colorize(image, ColorizeOptions(model="tiny-guided")).layers[0].pixels
    guidance = Guidance(points=(HintPoint(30, 30, (220, 20, 20), 9),), reference=np.full((8, 8, 3), (20, 200, 20), np.uint8))
    guided = engine.colorize(image, ColorizeOptions(model="tiny-guided", guidance=guidance)).layers[0].pixels
    assert guided.shape == plain.shape and not np.array_equal(guided, plain)


def test_hint_attention_spreads_a_hint_to_cells_that_look_alike_and_nothing_without_hints():
    from training.model import HintAttention

    torch.manual_seed(0)
    attention = HintAttention(channels=4, key_dim=4)
    with torch.no_grad():  # features: two regions (left, right) the projections tell apart
        attention.query.weight.copy_(torch.eye(4).reshape(4, 4, 1, 1) * 3)
        attention.key.weight.copy_(torch.eye(4).reshape(4, 4, 1, 1) * 3)
        attention.query.bias.zero_()
        attention.key.bias.zero_()
        attention.distance_scale.fill_(-10.0)  # softplus ~ 0: distance barely matters here
    features = torch.zeros(1, 4, 4, 8)
    features[:, 0, :, :4] = 1.0
    features[:, 1, :, 4:] = 1.0
    hint_ab = torch.zeros(1, 2, 32, 64)
    hint_mask = torch.zeros(1, 1, 32, 64)
    hint_ab[:, :, 0:8, 0:8] = torch.tensor([55.0, -20.0])[:, None, None]  # one hint in the left region
    hint_mask[:, :, 0:8, 0:8] = 1.0
    with torch.no_grad():
        out = attention(features, hint_ab, hint_mask)
        none = attention(features, torch.zeros_like(hint_ab), torch.zeros_like(hint_mask))
    confidence = out[0, 2]
    assert confidence[:, :4].min() > 0.5 > confidence[:, 4:].max()  # the left region takes the hint, the right not
    assert torch.allclose(out[0, 0, :, :4][confidence[:, :4] > 0.5] / confidence[:, :4][confidence[:, :4] > 0.5] * 110,
                          torch.tensor(55.0), atol=0.5)
    assert torch.count_nonzero(none) == 0


def test_hinted_cells_weigh_more_in_the_loss_when_asked():
    from training.losses import RebalancedSoftCrossEntropy

    loss = RebalancedSoftCrossEntropy(colour.ab_bins())
    logits = torch.randn(1, len(colour.ab_bins()), 4, 4)
    chroma = torch.randn(1, 2, 4, 4) * 20
    weights = torch.ones(1, 4, 4)
    assert torch.allclose(loss(logits, chroma, weights), loss(logits, chroma))
    weights[0, 0, 0] = 3.0
    assert not torch.allclose(loss(logits, chroma, weights), loss(logits, chroma))


def test_an_attention_model_exports_with_dynamic_sizes(tmp_path):
    config = TrainConfig(data=str(make_photos(tmp_path / "photos")), out=str(tmp_path / "run"), crop_size=32,
                         batch_size=2, max_steps=2, samples_per_image=1, workers=0, threads=1, pretrained=False,
                         decoder_width=16, val_fraction=0.0, val_every_steps=100, local_hints=True, global_hints=True,
                         hint_attention=True, hint_shortcut=True, hint_loss_weight=3.0, hint_none_fraction=0.0)
    Trainer(config, show_progress=False).run()
    model_path = tmp_path / "attention.onnx"
    export_onnx(tmp_path / "run" / "final.pt", model_path, ExportOptions(name="tiny-attention"))
    photos = sorted((tmp_path / "photos").glob("*.png"))
    for size in (64, 96):  # other working sizes than the export's example input
        assert parity_check(tmp_path / "run" / "final.pt", model_path, photos, size=size)["max_abs"] < 0.01


def test_diverse_palettes_prior_and_export_from_a_guided_checkpoint(guided_export, tmp_path):
    from export.diverse_export import diverse_parity, export_diverse
    from training.diverse import DiverseConfig, kmeans_palettes, run

    histograms = np.random.default_rng(0).dirichlet(np.ones(12), size=50).astype(np.float32)
    prototypes = kmeans_palettes(histograms, 3, seed=0)
    assert prototypes.shape == (3, 12) and np.allclose(prototypes.sum(1), 1)
    checkpoint, _, tmp = guided_export
    config = DiverseConfig(guided=str(checkpoint), data=str(tmp / "photos"), out=str(tmp_path / "diverse"), codes=3,
                           crops_per_image=3, crop_size=32, epochs=5, batch_size=4)
    with pytest.raises(data.DataError, match="no val images"):  # the prior is chosen on the val split: it must exist
        run(config)
    (tmp_path / "pool").mkdir()
    files = sorted((tmp / "photos").glob("*.png"))
    import json
    import shutil
    for path in files:
        shutil.copy(path, tmp_path / "pool" / path.name)
    manifest = {"images": [{"file": p.name, "split": "val" if i == 0 else "train"} for i, p in enumerate(files)]}
    (tmp_path / "pool" / "manifest.json").write_text(json.dumps(manifest))
    summary = run(DiverseConfig(**{**config.__dict__, "data": str(tmp_path / "pool")}))
    assert summary["train_crops"] == 9 and summary["val_crops"] == 3
    model_path = tmp_path / "diverse.onnx"
    meta = export_diverse(tmp_path / "diverse" / "diverse.pt", model_path, ExportOptions(name="tiny-diverse"))
    assert meta[contract.TASK] == "diverse" and meta[contract.NOISE_DIM] == "3"
    assert diverse_parity(tmp_path / "diverse" / "diverse.pt", model_path, files[:2], size=64)["max_abs"] < 0.01
    engine = Engine(Registry.from_files([model_path]), providers=["CPUExecutionProvider"], threads=1)
    image = np.tile(np.linspace(0, 255, 96, dtype=np.uint8), (64, 1))
    layers = engine.colorize(image, ColorizeOptions(mode="diverse", samples=3, seed=5)).layers
    assert len(layers) == 3 and not np.array_equal(layers[0].pixels, layers[1].pixels)
    # the prior carries over to another guided model with the same encoder, and refuses one with another
    reused = run(DiverseConfig(guided=str(checkpoint), reuse_prior=str(tmp_path / "diverse" / "diverse.pt"),
                               out=str(tmp_path / "reused")))
    assert reused["reused_from"] and (tmp_path / "reused" / "diverse.pt").is_file()
    other = torch.load(checkpoint, weights_only=True)
    key = next(k for k in other["model"] if k.startswith("encoder."))
    other["model"][key] = other["model"][key] + 1
    torch.save(other, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="encoder .* differs"):
        run(DiverseConfig(guided=str(tmp_path / "other.pt"), reuse_prior=str(tmp_path / "diverse" / "diverse.pt"),
                          out=str(tmp_path / "refused")))


def test_the_hint_shortcut_pulls_hinted_cells_to_the_hint_and_leaves_the_rest():
    from training.losses import annealed_mean

    spec = ModelSpec(out_channels=len(colour.ab_bins()), decoder_width=16, local_hints=True, global_hints=True,
                     hist_bins=len(colour.ab_bins()), hint_attention=True, hint_shortcut=True)
    torch.manual_seed(0)
    model = Colorizer(spec).eval()
    bins = torch.from_numpy(colour.ab_bins().copy())
    model.shortcut.bins.copy_(bins)
    with torch.no_grad():
        model.shortcut.gate.weight.zero_()
        model.shortcut.gate.bias.fill_(5.0)  # a sure gate: the test is about the path, not about learning it
        lightness = torch.rand(1, 1, 64, 64) * 100
        hint_ab, hint_mask = torch.zeros(1, 2, 64, 64), torch.zeros(1, 1, 64, 64)
        hint_ab[:, 0, 8:16, 8:16], hint_ab[:, 1, 8:16, 8:16] = 45.0, -30.0
        hint_mask[:, :, 8:16, 8:16] = 1.0
        plain, hinted = model(lightness), model(lightness, hint_ab, hint_mask)
        assert torch.allclose(plain, model(lightness, torch.zeros_like(hint_ab), torch.zeros_like(hint_mask)))
    decoded = annealed_mean(hinted, bins, 0.38)[0, :, 2:4, 2:4].reshape(2, -1).mean(1)
    assert torch.allclose(decoded, torch.tensor([45.0, -30.0]), atol=3.0)
    before = annealed_mean(plain, bins, 0.38)[0, :, 2:4, 2:4].reshape(2, -1).mean(1)
    assert torch.dist(before, torch.tensor([45.0, -30.0])) > 10  # without the hint it was elsewhere
