"""Trainer on CPU: overfitting a few tiny images, resuming, config round trip, data folders."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from training import data
from training.config import TrainConfig
from training.train import Trainer, get_lr, load_checkpoint, main, training_progress


def make_photos(folder, count=6, size=(48, 40), seed=0):
    """Two-colour images with a coloured box: easy to overfit, different chroma per image."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        w, h = size
        img = np.zeros((h, w, 3), np.uint8)
        img[: h // 2], img[h // 2 :] = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        img[5:20, 10:30] = rng.integers(0, 256, 3)
        Image.fromarray(img).save(folder / f"photo{i}.png")
    return folder


def tiny_config(tmp_path, **overrides):
    values = dict(data=str(make_photos(tmp_path / "photos")), out=str(tmp_path / "run"), crop_size=32, batch_size=4,
                  max_steps=6, samples_per_image=2, workers=0, threads=1, pretrained=False, decoder_width=16,
                  val_fraction=0.0, val_every_steps=3, lr=3e-3, warmup_fraction=0.0, log_every_steps=1)
    values.update(overrides)
    return TrainConfig(**values)


def test_lr_schedule_warms_up_then_decays():
    assert get_lr(1.0, 0.0, 0.1) == 0.0
    assert get_lr(1.0, 0.1, 0.1) == pytest.approx(1.0)
    assert get_lr(1.0, 1.0, 0.1) == pytest.approx(0.05)
    assert get_lr(1.0, 0.5, 0.1) > get_lr(1.0, 0.9, 0.1)


def test_progress_is_the_larger_of_step_and_time_fractions():
    config = TrainConfig(max_steps=100, max_minutes=10)
    assert training_progress(config, 50, 60.0) == pytest.approx(0.5)
    assert training_progress(config, 10, 300.0) == pytest.approx(0.5)


@pytest.mark.parametrize("loss", ["classification", "smoothl1"])
def test_overfits_a_few_tiny_images(tmp_path, loss):
    torch.manual_seed(0)
    config = tiny_config(tmp_path, loss=loss, max_steps=40, samples_per_image=1, min_crop_fraction=1.0, lr=1e-2,
                         val_every_steps=100)
    history = Trainer(config, show_progress=False).run()
    first, last = np.mean(history["train_loss"][:3]), np.mean(history["train_loss"][-3:])
    assert last < 0.7 * first, (first, last)


def test_checkpoint_holds_plain_values_and_resume_continues(tmp_path):
    config = tiny_config(tmp_path)
    Trainer(config, show_progress=False).run()
    checkpoint = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert checkpoint["step"] == 6 and checkpoint["config"]["crop_size"] == 32
    assert float((checkpoint["bin_prior"] * checkpoint["rebalance_weights"]).sum()) == pytest.approx(1.0, abs=1e-4)
    resumed = TrainConfig.from_dict({**checkpoint["config"], "max_steps": 9})
    trainer = Trainer(resumed, resume=checkpoint, show_progress=False)
    assert trainer.step == 6
    trainer.run()
    model, loaded_config, final = load_checkpoint(tmp_path / "run" / "final.pt")
    assert final["step"] == 9 and loaded_config == resumed and not model.training


def test_same_seed_gives_the_same_weights(tmp_path):
    results = []
    for name in ("a", "b"):
        Trainer(tiny_config(tmp_path, out=str(tmp_path / name), max_steps=3), show_progress=False).run()
        results.append(torch.load(tmp_path / name / "final.pt", weights_only=True)["model"]["head.weight"])
    torch.testing.assert_close(results[0], results[1])


def test_yuv_regression_trains_and_reports_scale(tmp_path):
    config = tiny_config(tmp_path, colour_space="yuv", loss="mse", max_steps=2)
    Trainer(config, show_progress=False).run()
    checkpoint = torch.load(tmp_path / "run" / "final.pt", weights_only=True)
    assert checkpoint["chroma_scale"] == 200.0 and checkpoint["model"]["head.weight"].shape[0] == 2


def test_command_line_errors_are_messages_not_tracebacks(tmp_path, capsys):
    assert main(["--data", str(tmp_path / "missing"), "--out", str(tmp_path / "r"), "--max-steps", "1"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["--data", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "--max-steps" in capsys.readouterr().err


def test_manifest_folder_uses_its_splits(tmp_path):
    make_photos(tmp_path / "images", count=3)
    entries = [{"file": f"images/photo{i}.png", "split": "val" if i == 0 else "train"} for i in range(3)]
    (tmp_path / "manifest.json").write_text(json.dumps({"images": entries}))
    assert [p.name for p in data.list_images(tmp_path, "val")] == ["photo0.png"]
    assert len(data.list_images(tmp_path, "train")) == 2


def test_plain_folder_split_is_stable_and_disjoint(tmp_path):
    make_photos(tmp_path / "cls", count=30)
    train = data.list_images(tmp_path, "train", val_fraction=0.3)
    val = data.list_images(tmp_path, "val", val_fraction=0.3)
    assert set(train).isdisjoint(val) and len(train) + len(val) == 30 and 3 <= len(val) <= 17
    assert val == data.list_images(tmp_path, "val", val_fraction=0.3)


def test_crops_have_model_units_and_flip_consistently(tmp_path):
    make_photos(tmp_path, count=1, size=(64, 48))
    crops = data.ColourCrops(data.list_images(tmp_path, "train", 0.0), "lab", data.CropSettings(crop_size=32),
                             train=True, samples_per_image=4)
    lightness, chroma = crops[0]
    assert lightness.shape == (1, 32, 32) and chroma.shape == (2, 32, 32)
    assert 0 <= float(lightness.min()) and float(lightness.max()) <= 100
    again = crops[0]
    torch.testing.assert_close(again[1], chroma)  # deterministic per (seed, epoch, item)


def test_unreadable_image_is_skipped_with_a_warning(tmp_path):
    make_photos(tmp_path, count=2)
    (tmp_path / "photo0.png").write_bytes(b"not a png")
    crops = data.ColourCrops(data.list_images(tmp_path, "train", 0.0), "lab", data.CropSettings(crop_size=32),
                             train=True)
    with pytest.warns(UserWarning, match="unreadable training image"):
        lightness, _ = crops[0]
    assert lightness.shape == (1, 32, 32)


def test_cutouts_from_the_manifest_are_pasted_onto_crops(tmp_path):
    (tmp_path / "images").mkdir()
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(tmp_path / "images" / "gray.png")
    red = np.zeros((40, 40, 4), np.uint8)
    red[..., 0], red[8:32, 8:32, 3] = 255, 255  # opaque red square, transparent border
    (tmp_path / "cutouts").mkdir()
    Image.fromarray(red).save(tmp_path / "cutouts" / "red.png")
    manifest = {"images": [{"file": "images/gray.png", "split": "train"}], "cutouts": [{"file": "cutouts/red.png"}]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    settings = data.CropSettings(crop_size=32, cutout_probability=1.0)
    crops = data.ColourCrops(data.list_images(tmp_path, "train"), "lab", settings, train=True,
                             cutouts=data.list_cutouts(tmp_path))
    _, chroma = crops[0]
    assert float(chroma[0].max()) > 50  # red has a* around 80; the gray photo alone has a* = 0
    assert float(chroma[0].abs().min()) < 1  # the transparent border left the gray visible


def test_patience_stops_training_when_val_loss_stops_improving(tmp_path, monkeypatch):
    config = tiny_config(tmp_path, max_steps=50, val_every_steps=2, patience=2, val_fraction=0.5)
    trainer = Trainer(config, show_progress=False)
    losses = iter([3.0, 2.0, 2.5, 2.4, 1.0, 1.0, 1.0])  # best at the 2nd validation, then two worse ones
    monkeypatch.setattr(trainer, "validation_loss", lambda: next(losses))
    trainer.run()
    events = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events if e["event"] == "early_stop"] == [8]
    assert torch.load(tmp_path / "run" / "best.pt", weights_only=True)["step"] == 4
    assert torch.load(tmp_path / "run" / "final.pt", weights_only=True)["step"] == 8
