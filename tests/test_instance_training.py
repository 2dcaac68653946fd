"""Instance mode's training side on a tiny pool: pseudo-boxes into the manifest, object crops, the fusion module,
its trainer, and the export of both networks with parity, run by the backend's engine."""

import json
import random

import numpy as np
import pytest
import torch
from PIL import Image

from gimp_colorize import colour
from training.config import TrainConfig
from training.fusion import FusionColorizer, paste
from training.instance_data import InstanceCrops, jittered, pseudo_boxes
from training.model import Colorizer, ModelSpec
from training.train import Trainer
from tests.support import onnx_builders as ob

RED, BLUE = (220, 30, 30), (30, 60, 220)


def make_pool(root, photos=6):
    """Photos (a gray-green ramp with a red square at a known place), a blue cut-out, and a builder-like manifest."""
    (root / "images").mkdir(parents=True)
    (root / "cutouts").mkdir()
    entries = []
    for number in range(photos):
        image = np.zeros((72, 96, 3), np.uint8)
        image[..., 1] = np.linspace(60, 200, 96, dtype=np.uint8)[None]
        image[..., 0] = image[..., 2] = 90
        x, y = 8 + 6 * number, 10 + 3 * number
        image[y:y + 30, x:x + 30] = RED
        name = f"images/p{number}.png"
        Image.fromarray(image).save(root / name)
        entries.append({"file": name, "split": "val" if number == photos - 1 else "train", "width": 96, "height": 72,
                        "red_box": [x, y, 30, 30]})
    cutout = np.zeros((40, 40, 4), np.uint8)
    cutout[5:35, 10:30] = (*BLUE, 255)
    Image.fromarray(cutout).save(root / "cutouts" / "c0.png")
    manifest = {"images": entries, "cutouts": [{"file": "cutouts/c0.png"}], "kept_key": 1}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """The pool with the red squares as its pseudo-boxes, written by detect-boxes from a tiny detector."""
    from training.pseudo_boxes import main as detect_boxes

    root = make_pool(tmp_path_factory.mktemp("pool"))
    detector = ob.build_tiny_detector(root.parent / "det.onnx", [[0.0, 0.0, 1.0, 1.0]], [1], [1.0])
    assert detect_boxes(["--data", str(root), "--detector", str(detector), "--threshold", "0.05"]) == 0
    manifest = json.loads((root / "manifest.json").read_text())
    for entry in manifest["images"]:  # the tiny detector's one box is the whole photo; use the known squares
        entry["boxes"] = [{"box": entry["red_box"], "label": "thing", "score": 0.9}]
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def test_detect_boxes_adds_boxes_and_a_record_and_keeps_everything_else(tmp_path):
    from training.pseudo_boxes import main as detect_boxes

    root = make_pool(tmp_path / "pool")
    detector = ob.build_tiny_detector(tmp_path / "det.onnx", [[0.1, 0.25, 0.6, 0.75]], [1], [1.0], name="tiny-det")
    assert detect_boxes(["--data", str(root), "--detector", str(detector), "--threshold", "0.05"]) == 0
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["kept_key"] == 1 and manifest["cutouts"] == [{"file": "cutouts/c0.png"}]
    assert manifest["pseudo_boxes"]["detector"] == "tiny-det" and manifest["pseudo_boxes"]["threshold"] == 0.05
    first = manifest["images"][0]
    assert first["red_box"] == [8, 10, 30, 30]  # untouched
    (box,) = first["boxes"]
    assert box["box"] == [24, 7, 48, 37] and box["label"] == "person" and 0.05 < box["score"] < 1
    assert detect_boxes(["--data", str(tmp_path / "nowhere")]) == 2


def test_pseudo_boxes_need_detect_boxes_first(tmp_path):
    from training.data import DataError

    root = make_pool(tmp_path / "pool")
    with pytest.raises(DataError, match="run python -m training detect-boxes"):
        pseudo_boxes(root, "train")


def chroma_of_crop(dataset, item):
    lightness, chroma, *_ = dataset[item]
    lab = np.concatenate([lightness.numpy(), chroma.numpy()]).transpose(1, 2, 0)
    return lab[..., 1:].reshape(-1, 2).mean(0)


def test_object_crops_are_the_boxes_and_composites_are_the_cut_outs(pool):
    from training.data import CropSettings, list_cutouts, list_images

    files = list_images(pool, "train")
    crops = InstanceCrops(files, pseudo_boxes(pool, "train"), "lab", CropSettings(crop_size=32), train=False,
                          composites=3, cutouts=list_cutouts(pool))
    assert len(crops) == 5 + 3
    red_ab = colour.rgb_to_lab(np.array([RED], np.float32) / 255)[0, 1:]
    blue_ab = colour.rgb_to_lab(np.array([BLUE], np.float32) / 255)[0, 1:]
    np.testing.assert_allclose(chroma_of_crop(crops, 0), red_ab, atol=3)  # the box is exactly the red square
    np.testing.assert_allclose(chroma_of_crop(crops, 6), blue_ab, atol=6)  # the cut-out's own box: blue
    rng = random.Random(0)
    grown = [jittered((10, 10, 20, 20), 40, 40, rng) for _ in range(20)]
    assert all(0 <= l <= 11 and 0 <= t <= 11 and 29 <= r <= 40 and 29 <= b <= 40 for l, t, r, b in grown)


def tiny_spec(**kwargs):
    return ModelSpec(out_channels=len(colour.ab_bins()), decoder_width=16, **kwargs)


def test_paste_puts_each_map_in_its_box():
    maps = torch.arange(2, dtype=torch.float32).reshape(2, 1, 1, 1).expand(2, 1, 3, 3) + 1  # constant 1 and 2
    boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.5, 0.25, 1.0, 1.0]])
    pasted, inside = paste(maps, boxes, 4, 8)
    assert inside[0, 0].tolist() == [[1, 1, 1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0, 0, 0], [0] * 8, [0] * 8]
    assert inside[1, 0, 1:, 4:].min() == 1 and inside[1, 0, 0].max() == 0 and inside[1, 0, :, :4].max() == 0
    assert torch.allclose(pasted[0][inside[0].bool()], torch.tensor(1.0))
    assert torch.allclose(pasted[1][inside[1].bool()], torch.tensor(2.0))


def test_paste_equals_grid_sample_with_border_padding():
    import torch.nn.functional as F

    torch.manual_seed(1)
    maps = torch.randn(5, 3, 7, 9)
    boxes = torch.tensor([[0.1, 0.2, 0.6, 0.7], [0.0, 0.0, 1.0, 1.0], [0.5, 0.1, 0.9, 0.3], [0.3, 0.3, 0.31, 0.9],
                          [0.7, 0.6, 1.0, 1.0]])
    pasted, _ = paste(maps, boxes, 12, 16)
    xs, ys = (torch.arange(16) + 0.5) / 16, (torch.arange(12) + 0.5) / 12
    u = (xs[None] - boxes[:, :1]) / (boxes[:, 2:3] - boxes[:, :1])
    v = (ys[None] - boxes[:, 1:2]) / (boxes[:, 3:4] - boxes[:, 1:2])
    grid = torch.stack([(2 * u - 1)[:, None, :].expand(-1, 12, -1), (2 * v - 1)[:, :, None].expand(-1, -1, 16)], -1)
    expected = F.grid_sample(maps, grid, mode="bilinear", padding_mode="border", align_corners=False)
    torch.testing.assert_close(pasted, expected, atol=1e-5, rtol=1e-5)


def test_fusion_with_no_valid_instance_is_exactly_the_full_network():
    torch.manual_seed(0)
    full, instance = Colorizer(tiny_spec(local_hints=True)), Colorizer(tiny_spec(local_hints=True))
    model = FusionColorizer(full, instance).eval()
    for weights in model.instance_weights:  # a fusion that would change a lot if it were used
        torch.nn.init.normal_(weights.body[-1].weight, std=1.0)
    lightness = torch.rand(2, 1, 64, 96) * 100
    crops = torch.rand(6, 1, 32, 32) * 100
    with torch.no_grad():
        _, features = model.instance_features(crops)
        boxes = torch.tensor([[[0.1, 0.1, 0.5, 0.6], [0.4, 0.2, 0.9, 0.9], [0, 0, 1, 1]]] * 2)
        none = model(lightness, features, boxes, torch.zeros(2, 3))
        some = model(lightness, features, boxes, torch.tensor([[1.0, 1, 0], [0, 0, 0]]))
        expected = full(lightness)
    assert torch.equal(none, expected)
    assert not torch.allclose(some[0], expected[0], atol=1e-3) and torch.equal(some[1], expected[1])
    assert all(not p.requires_grad for p in [*full.parameters(), *instance.parameters()])


@pytest.fixture(scope="module")
def trained(pool, tmp_path_factory):
    """A tiny guided full network, an instance network fine-tuned from it on object crops, and a fusion run."""
    from training.train_fusion import FusionConfig, FusionTrainer

    out = tmp_path_factory.mktemp("runs")
    common = dict(data=str(pool), crop_size=32, batch_size=2, samples_per_image=1, workers=0, threads=1,
                  pretrained=False, decoder_width=16, val_every_steps=100, local_hints=True, global_hints=True)
    Trainer(TrainConfig(out=str(out / "full"), max_steps=2, **common), show_progress=False).run()
    instance = Trainer(TrainConfig(out=str(out / "inst"), max_steps=2, crops="instance",
                                   init_from=str(out / "full" / "final.pt"), **common), show_progress=False)
    start = {k: v.clone() for k, v in instance.model.state_dict().items()}
    full_state = torch.load(out / "full" / "final.pt", weights_only=True)["model"]
    assert all(torch.equal(start[k], full_state[k]) for k in full_state)  # --init-from starts from its weights
    instance.run()
    fusion = FusionTrainer(FusionConfig(data=str(pool), out=str(out / "fusion"), full=str(out / "full" / "final.pt"),
                                        instance=str(out / "inst" / "final.pt"), crop_size=64, instance_size=32,
                                        max_instances=2, batch_size=2, samples_per_image=1, max_steps=3,
                                        val_every_steps=2, workers=0, threads=1), show_progress=False)
    fusion.run()
    return out


@pytest.mark.slow
def test_fusion_training_learns_only_the_weight_networks_and_logs_the_full_only_baseline(trained):
    from training.train_fusion import load_fusion_checkpoint

    records = [json.loads(line) for line in (trained / "fusion" / "log.jsonl").read_text().splitlines()]
    validations = [r for r in records if r["event"] == "val"]
    assert validations and all(r["val_full_only"] > 0 for r in validations)
    model, state = load_fusion_checkpoint(trained / "fusion" / "final.pt")
    assert state["step"] == 3 and state["full"]["sha256"] and state["instance"]["source"].endswith("final.pt")
    full_state = torch.load(trained / "full" / "final.pt", weights_only=True)["model"]
    assert all(torch.equal(model.full.state_dict()[k], v) for k, v in full_state.items())  # stayed frozen
    moved = [not torch.equal(w.body[-1].weight, torch.zeros_like(w.body[-1].weight)) for w in model.instance_weights]
    assert any(moved)


@pytest.mark.slow
def test_exported_pair_matches_torch_and_runs_in_the_engine(trained, pool, tmp_path):
    from export.__main__ import main as export_main
    from gimp_colorize.engine import ColorizeOptions, Engine
    from gimp_colorize.options import InstanceOptions
    from gimp_colorize.registry import Registry

    models = tmp_path / "models"
    assert export_main(["instance", str(trained / "inst" / "final.pt"), "-o", str(models / "inst.onnx"), "--name",
                        "tiny-inst", "--working-size", "32", "--description", "tiny",
                        "--parity-images", str(pool / "images")]) == 0
    assert export_main(["fusion", str(trained / "fusion" / "final.pt"), "-o", str(models / "fusion.onnx"), "--name",
                        "tiny-fusion", "--instance-model", "tiny-inst", "--instance-file", str(models / "inst.onnx"),
                        "--working-size", "64", "--description", "tiny", "--parity-images", str(pool / "images")]) == 0
    engine = Engine(Registry(None, models), providers=["CPUExecutionProvider"], threads=1)
    gray = np.asarray(Image.open(pool / "images" / "p0.png").convert("L"))
    options = ColorizeOptions(mode="instance", instance=InstanceOptions(boxes="selection", user_boxes=((8, 10, 30, 30),),
                                                                        instance_layers=True))
    result = engine.colorize(gray, options)
    assert result.model == "tiny-inst" and result.details["fusion"] == "tiny-fusion" and len(result.layers) == 2
    assert result.layers[0].pixels.shape == (72, 96, 3)


@pytest.mark.slow
def test_exporting_a_whole_photo_checkpoint_as_an_instance_model_is_refused(trained, tmp_path, capsys):
    from export.__main__ import main as export_main

    assert export_main(["instance", str(trained / "full" / "final.pt"), "-o", str(tmp_path / "x.onnx"), "--name", "x",
                        "--description", "x"]) == 2
    assert "not on objects" in capsys.readouterr().err
