"""`python -m training evaluate --mode diverse`: diversity, coherence, plausibility and best-of-n."""

import json

import numpy as np
import pytest
from PIL import Image

from tests.support import onnx_builders as ob
from tests.test_evaluate import generated_photo, run_command
from training import evaluate_diverse as diverse


def test_diversity_measures_on_known_fields():
    base = np.zeros((8, 8, 2), np.float32)
    red, green = base + (40.0, 0.0), base + (-40.0, 0.0)
    assert diverse.pairwise_distance([red, red]) == 0 and diverse.pairwise_distance([red, green]) == pytest.approx(80)
    assert diverse.hue_disagreement([red, green]) == 1.0 and diverse.hue_disagreement([red, red * 1.1]) == 0.0
    assert diverse.hue_disagreement([base + 1.0, base - 1.0]) == 0.0  # near gray has no hue to disagree on
    smooth = np.dstack([np.linspace(0, 10, 64).reshape(8, 8)] * 2).astype(np.float32)
    noisy = smooth + np.random.default_rng(0).normal(0, 10, smooth.shape).astype(np.float32)
    assert diverse.gradient_energy(noisy) > 5 * diverse.gradient_energy(smooth)


def test_diverse_evaluation_end_to_end(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for seed in range(3):
        Image.fromarray(generated_photo(seed, 48, 64)).save(photos / f"p{seed}.png")
    model = ob.build_tiny_diverse_model(tmp_path / "diverse.onnx", noise_dim=4, working_size=64)
    baseline = ob.build_tiny_model(tmp_path / "plain.onnx", name="plain", working_size=64)
    out = tmp_path / "out"
    assert run_command("--mode", "diverse", "--samples", "4", "--model", model, "--baseline", baseline,
                       "--data", photos, "--out", out, "--no-semantic", "--max-side", 64) == 0
    report = json.loads((out / "diverse_report.json").read_text())
    assert report["diversity"]["pairwise_ab_distance"] > 1  # the tiny model shifts every sample's chroma
    assert len(report["per_sample"]) == 4 and set(report["best_of"]) == {"1", "4"}
    assert report["best_of"]["4"]["psnr"] >= report["best_of"]["1"]["psnr"]  # more samples, a better best
    assert report["baseline"]["model"] == str(baseline)
    assert (out / "diverse_sheet.png").stat().st_size > 100 and "Best of n" in (out / "diverse_report.md").read_text()


def test_the_temperature_option_reaches_the_samples(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(generated_photo(1, 48, 64)).save(photos / "p1.png")
    model = ob.build_tiny_diverse_model(tmp_path / "diverse.onnx", noise_dim=4, working_size=64)
    reports = {}
    for temperature in ("0.38", "2.0"):
        out = tmp_path / temperature
        assert run_command("--mode", "diverse", "--samples", "2", "--model", model, "--temperature", temperature,
                           "--data", photos, "--out", out, "--no-semantic", "--max-side", 64) == 0
        reports[temperature] = json.loads((out / "diverse_report.json").read_text())
    assert reports["2.0"]["temperature"] == 2.0
    assert reports["2.0"]["per_sample"][0]["colourfulness_ratio"] != reports["0.38"]["per_sample"][0]["colourfulness_ratio"]
