"""`python -m training evaluate --guided`: Zhang et al. 2017's protocol for guided colorizers.

On every photo of the folder (downscaled like the plain evaluation), from one run:
- hint sweep: 0, 1, 2, 5, 10, 20, 50, 100 colour points taken from the ground truth (fixed seed; each point is a
  PATCH x PATCH square whose pixels carry the truth's colours, so its hint is the truth's mean chroma there);
  PSNR and class-rebalanced AuC per count, and how well hints are obeyed (median over all hints of |mean ab of
  the result in the hint's square - the hint's ab|), with the gray input and a baseline model (no hints) beside them;
- global hint: the truth itself as the reference (the oracle): per-photo mean-colour error against no hint;
  another photo of the set as the reference: does the result's colour histogram move toward it
  (histogram intersection with the reference, with and without it);
- old photos: the same with old-photo degradations (training/degrade.py, fixed seed) applied to the gray input.
Writes guided_report.json/.md, hint_sweep.png (PSNR against points), hint_sweep_sheet.png, reference_sheet.png.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from gimp_colorize import colour
from training import evaluate as plain

SWEEP_COUNTS = (0, 1, 2, 5, 10, 20, 50, 100)
SHEET_COUNTS = (0, 5, 20)
PATCH = 5            # hint square side in pixels at the evaluated size (long side 512)
SHEET_ROWS = 4
HISTOGRAM_SIDE = 64  # results and references are shrunk to this before their histograms are compared


@dataclass
class Run:
    """One photo prepared for the guided evaluation."""

    name: str
    truth: np.ndarray      # (H, W, 3) uint8
    gray: np.ndarray       # (H, W) uint8 input (degraded for the old-photo pass)
    positions: list        # top-left corners of the 100 hint squares, drawn once per photo


def hint_positions(height: int, width: int, rng: random.Random, count: int = max(SWEEP_COUNTS)) -> list:
    return [(rng.randrange(0, width - PATCH + 1), rng.randrange(0, height - PATCH + 1)) for _ in range(count)]


def hint_image(truth: np.ndarray, positions: list) -> np.ndarray:
    """RGBA at the photo's size: the truth's own pixels inside each hint square, transparent elsewhere."""
    hints = np.zeros(truth.shape[:2] + (4,), np.uint8)
    for x, y in positions:
        hints[y:y + PATCH, x:x + PATCH, :3] = truth[y:y + PATCH, x:x + PATCH]
        hints[y:y + PATCH, x:x + PATCH, 3] = 255
    return hints


def hint_errors(result: np.ndarray, truth: np.ndarray, positions: list) -> np.ndarray:
    """Per hint: |mean ab of the result in its square - the hint's ab| (the truth's mean ab in the square)."""
    result_ab, truth_ab = colour.rgb_to_lab(result)[..., 1:], colour.rgb_to_lab(truth)[..., 1:]
    errors = [np.linalg.norm(result_ab[y:y + PATCH, x:x + PATCH].reshape(-1, 2).mean(0)
                             - truth_ab[y:y + PATCH, x:x + PATCH].reshape(-1, 2).mean(0)) for x, y in positions]
    return np.asarray(errors, dtype=np.float64)


def small_histogram(rgb: np.ndarray) -> np.ndarray:
    from PIL import Image

    image = Image.fromarray(rgb)
    image.thumbnail((HISTOGRAM_SIDE, HISTOGRAM_SIDE), Image.BILINEAR)
    return colour.ab_histogram(colour.rgb_to_lab(np.asarray(image))[..., 1:])


def intersection(first: np.ndarray, second: np.ndarray) -> float:
    return float(np.minimum(first, second).sum())


def mean_colour_error(result: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(|delta a|, |delta b|, |delta ab|) between the mean ab of the result and of the truth."""
    delta = colour.rgb_to_lab(result)[..., 1:].reshape(-1, 2).mean(0) - colour.rgb_to_lab(truth)[..., 1:].reshape(-1, 2).mean(0)
    return np.array([abs(delta[0]), abs(delta[1]), np.linalg.norm(delta)])


class Colorizer:
    """The guided model (and the baseline) through the backend's Engine, as the plug-in would run them."""

    def __init__(self, model: str, baseline: str | None):
        from gimp_colorize.engine import Engine

        registry, self.info = plain.registry_for(model)
        self.engine = Engine(registry)
        self.baseline_info = None
        if baseline:
            baseline_registry, self.baseline_info = plain.registry_for(baseline)
            self.baseline_engine = Engine(baseline_registry)

    def __call__(self, gray: np.ndarray, hints: np.ndarray | None = None, reference: np.ndarray | None = None) -> np.ndarray:
        from gimp_colorize.options import ColorizeOptions, Guidance

        guidance = Guidance(hint_image=hints, reference=reference)
        result = self.engine.colorize(gray, ColorizeOptions(model=self.info.name, guidance=guidance))
        return plain.to_rgb8(result.layers[0].pixels)

    def baseline(self, gray: np.ndarray) -> np.ndarray:
        from gimp_colorize.options import ColorizeOptions

        result = self.baseline_engine.colorize(gray, ColorizeOptions(model=self.baseline_info.name))
        return plain.to_rgb8(result.layers[0].pixels)


def prepare(photos: list, seed: int, degrade: bool) -> list[Run]:
    runs = []
    for number, photo in enumerate(photos):
        rng = random.Random(seed * 1_000_003 + number)
        gray = plain.gray_from_lightness(photo.rgb)
        if degrade:
            gray = plain.degraded(gray, seed, number)
        runs.append(Run(photo.name, photo.rgb, gray, hint_positions(*photo.rgb.shape[:2], rng)))
    return runs


def sweep(colorize: Colorizer, runs: list[Run], keep: dict) -> list[dict]:
    """One row per hint count: PSNR, rebalanced AuC and hint errors, scored like the plain evaluation."""
    rows = []
    for count in SWEEP_COUNTS:
        triples, errors = [], []
        for number, run in enumerate(runs):
            hints = hint_image(run.truth, run.positions[:count]) if count else None
            result = colorize(run.gray, hints=hints)
            triples.append((run.name, run.truth, result))
            errors.append(hint_errors(result, run.truth, run.positions[:count]))
            if count in SHEET_COUNTS and number < SHEET_ROWS:
                keep.setdefault(run.name, {})[count] = result
        summary = plain.evaluate_images(triples)["summary"]
        every = np.concatenate(errors)
        rows.append({"points": count, "psnr": summary["ours"]["psnr"], "auc_rebalanced": summary["ours"]["auc_rebalanced"],
                     "colourfulness_ratio": summary["ours"]["colourfulness_ratio"],
                     "hint_error_median": float(np.median(every)) if every.size else None,
                     "hint_error_p90": float(np.percentile(every, 90)) if every.size else None})
    return rows


def references(colorize: Colorizer, runs: list[Run], keep: list) -> dict:
    """Oracle reference (the truth) and another photo's reference, against no reference."""
    none, oracle, other_without, other_with = [], [], [], []
    for number, run in enumerate(runs):
        without = colorize(run.gray)
        with_truth = colorize(run.gray, reference=run.truth)
        other = runs[(number + 1) % len(runs)].truth
        with_other = colorize(run.gray, reference=other)
        none.append(mean_colour_error(without, run.truth))
        oracle.append(mean_colour_error(with_truth, run.truth))
        target = small_histogram(other)
        other_without.append(intersection(small_histogram(without), target))
        other_with.append(intersection(small_histogram(with_other), target))
        if number < SHEET_ROWS:
            keep.append({"name": run.name, "gray": np.repeat(run.gray[..., None], 3, 2), "reference": other,
                         "without": without, "with": with_other, "truth": run.truth})
    none, oracle = np.mean(none, axis=0), np.mean(oracle, axis=0)
    return {
        "mean_colour_error_no_reference": {"a": none[0], "b": none[1], "ab": none[2]},
        "mean_colour_error_oracle_reference": {"a": oracle[0], "b": oracle[1], "ab": oracle[2]},
        "mean_colour_error_reduction": 1.0 - oracle[2] / none[2] if none[2] > 0 else None,
        "other_reference_intersection_without": float(np.mean(other_without)),
        "other_reference_intersection_with": float(np.mean(other_with)),
    }


def no_hint_comparison(colorize: Colorizer, runs: list[Run], classifier) -> dict:
    """The plain evaluation's summary for the guided model with no guidance, the baseline, and the gray input."""
    ours = plain.evaluate_images([(r.name, r.truth, colorize(r.gray)) for r in runs], classifier)["summary"]
    # the gray row is the input itself (degraded in the old-photo pass), not the clean gray of the truth
    gray = plain.evaluate_images([(r.name, r.truth, r.gray) for r in runs], classifier)["summary"]["ours"]
    table = {"ours": ours["ours"], "gray": gray, "truth": ours["truth"]}
    if colorize.baseline_info is not None:
        table["baseline"] = plain.evaluate_images([(r.name, r.truth, colorize.baseline(r.gray)) for r in runs],
                                                  classifier)["summary"]["ours"]
    return table


def evaluate_guided(model: str, photos: list, baseline: str | None, seed: int, classifier) -> tuple[dict, dict]:
    """(report, images for the sheets) for clean and degraded inputs."""
    colorize = Colorizer(model, baseline)
    report = {"model": model, "model_info": {k: getattr(colorize.info, k) for k in plain.MODEL_FIELDS},
              "baseline": baseline, "seed": seed, "patch": PATCH, "counts": list(SWEEP_COUNTS), "passes": {}}
    images = {"sweep": {}, "references": []}
    for label, degrade in (("clean", False), ("old_photo", True)):
        runs = prepare(photos, seed, degrade)
        keep_sweep = images["sweep"] if not degrade else {}
        keep_refs = images["references"] if not degrade else []
        report["passes"][label] = {
            "no_hints": no_hint_comparison(colorize, runs, classifier),
            "sweep": sweep(colorize, runs, keep_sweep),
            "references": references(colorize, runs, keep_refs),
        }
        if not degrade:
            images["runs"] = runs
    return report, images
