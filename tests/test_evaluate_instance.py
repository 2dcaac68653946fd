"""`python -m training evaluate --mode instance`: full vs instance mode on whole photos and inside the boxes used."""

import json

import numpy as np
from PIL import Image

from training.evaluate import main as evaluate_main
from tests.support import onnx_builders as ob


def photos(folder):
    folder.mkdir()
    rng = np.random.default_rng(1)
    for number in range(3):
        image = np.zeros((60, 80, 3), np.uint8)
        image[..., 1] = np.linspace(40, 220, 80, dtype=np.uint8)[None]
        image[20:50, 40:75] = rng.integers(0, 256, 3)
        Image.fromarray(image).save(folder / f"p{number}.png")
    return folder


def models(folder):
    """A shipped-like folder: a full model, an instance model with its fusion model, and a detector that finds the
    right part of every photo (x 0.5-1, y 0.25-0.85)."""
    folder.mkdir()
    ob.build_tiny_full_model(folder / "full.onnx", name="full", output_kind="ab", resize="keep_aspect")
    ob.build_tiny_instance_model(folder / "inst.onnx", output_kind="ab")
    ob.build_tiny_fusion_model(folder / "fusion.onnx")
    ob.build_tiny_detector(folder / "det.onnx", [[0.25, 0.5, 0.85, 1.0], [0.0, 0.0, 0.1, 0.1]], [55, 1], [1.0, 1.0])
    ob.write_manifest(folder, [{"file": "full.onnx", "default_for": ["full"]}, {"file": "inst.onnx"},
                               {"file": "fusion.onnx"}, {"file": "det.onnx", "default_for": ["detector"]}])
    return folder


def test_instance_evaluation_scores_both_modes_on_photos_and_boxes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GIMP_COLORIZE_SHIPPED_MODELS_DIR", str(models(tmp_path / "shipped")))
    monkeypatch.setenv("GIMP_COLORIZE_MODELS_DIR", str(tmp_path / "user"))
    out = tmp_path / "out"
    assert evaluate_main(["--mode", "instance", "--model", "tiny-instance", "--data", str(photos(tmp_path / "photos")),
                          "--out", str(out), "--no-semantic", "--score-threshold", "0.2", "--show-boxes"]) == 0
    report = json.loads((out / "instance_report.json").read_text())
    assert report["models"]["fusion"]["name"] == "tiny-fusion" and report["models"]["full"]["name"] == "full"
    # the 6 x 6 box is found too but is too small to score (SSIM needs 11 pixels)
    assert report["boxes_found"] == 6 and report["boxes_scored"] == 3
    (first, *_) = report["per_image"]
    assert [i["box"] for i in first["instances"]] == [[40, 15, 40, 36], [0, 0, 8, 6]]
    whole, boxes = report["summary"]["whole"], report["summary"]["boxes"]
    # the tiny fusion model shifts chroma only inside boxes: the photos differ less than the boxes do
    whole_change = abs(whole["instance"]["psnr"] - whole["full"]["psnr"])
    box_change = abs(boxes["instance"]["psnr"] - boxes["full"]["psnr"])
    assert box_change > whole_change > 0
    assert whole["gray"]["colourfulness_ratio"] == 0
    sheet = Image.open(out / "instance_sheet.png")
    assert sheet.width > 4 * 100 and sorted(p.name for p in (out / "boxes").iterdir()) == ["p0.png", "p1.png", "p2.png"]
    text = (out / "instance_report.md").read_text()
    assert "## Inside the boxes" in text and "inside boxes, class-rebalanced AuC" in text
    assert "| p0.png | orange 0.43, person 0.43 |" in text  # scores: 1 x the photo's brightness
    assert "## Goals" in capsys.readouterr().out


def test_instance_evaluation_needs_a_model(tmp_path, capsys):
    import pytest

    with pytest.raises(SystemExit):
        evaluate_main(["--mode", "instance", "--gray-only", "--data", str(tmp_path), "--out", str(tmp_path / "o")])
    assert "--mode instance needs --model" in capsys.readouterr().err
