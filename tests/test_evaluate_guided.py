"""`python -m training evaluate --guided`: the hint sweep, reference photos and old-photo inputs."""

import json
import random

import numpy as np
import pytest
from PIL import Image

from tests.support import onnx_builders as ob
from tests.test_evaluate import generated_photo, run_command
from training import evaluate_guided as guided


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for seed in range(3):
        Image.fromarray(generated_photo(seed, 64, 80)).save(folder / f"photo{seed}.png")
    return folder


def test_hint_squares_carry_the_truths_pixels_and_their_errors_measure_obedience():
    truth = generated_photo(1, 40, 56)
    positions = guided.hint_positions(40, 56, random.Random(0), 7)
    hints = guided.hint_image(truth, positions)
    assert (hints[..., 3] > 0).sum() <= 7 * guided.PATCH ** 2
    x, y = positions[0]
    assert np.array_equal(hints[y:y + guided.PATCH, x:x + guided.PATCH, :3], truth[y:y + guided.PATCH, x:x + guided.PATCH])
    assert np.max(guided.hint_errors(truth, truth, positions)) < 1e-3  # the truth obeys its own hints
    assert np.median(guided.hint_errors(np.full_like(truth, 128), truth, positions)) > 10  # gray does not


def test_guided_evaluation_end_to_end_with_a_model_that_copies_its_hints(tmp_path, photos):
    # the tiny guided model replaces its chroma by the hints where they are, and shifts all of it by the
    # reference's mean chroma: the protocol must see hints obeyed, PSNR rising with points, and references used
    model = ob.build_tiny_model(tmp_path / "guided.onnx", name="tiny-guided", output_kind="ab", hints=True,
                                reference=True, working_size=64)
    baseline = ob.build_tiny_model(tmp_path / "plain.onnx", name="tiny-plain", output_kind="ab", working_size=64)
    out = tmp_path / "out"
    assert run_command("--model", model, "--guided", "--baseline", baseline, "--data", photos, "--out", out,
                       "--no-semantic", "--max-side", 80) == 0
    report = json.loads((out / "guided_report.json").read_text())
    clean = report["passes"]["clean"]
    sweep = {row["points"]: row for row in clean["sweep"]}
    assert list(sweep) == list(guided.SWEEP_COUNTS)
    assert sweep[100]["psnr"] > sweep[0]["psnr"] + 1 and sweep[100]["hint_error_median"] < sweep[1]["hint_error_median"] + 1
    assert clean["no_hints"]["baseline"]["psnr"] == pytest.approx(sweep[0]["psnr"], abs=0.05)  # same chroma function
    refs = clean["references"]
    assert refs["mean_colour_error_oracle_reference"]["ab"] < 0.8 * refs["mean_colour_error_no_reference"]["ab"]
    old = report["passes"]["old_photo"]
    assert old["no_hints"]["gray"]["psnr"] != clean["no_hints"]["gray"]["psnr"]  # the degraded input is scored
    for name in ("guided_report.md", "hint_sweep.png", "hint_sweep_sheet.png", "reference_sheet.png"):
        assert (out / name).stat().st_size > 100
    assert "## Hint sweep" in (out / "guided_report.md").read_text()
