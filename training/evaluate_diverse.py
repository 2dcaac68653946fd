"""`python -m training evaluate --mode diverse --samples N`: are the samples diverse, coherent and plausible?

For every photo, N samples (seeds seed .. seed + N - 1, exactly as the engine draws them), scored against the truth:
- diversity: mean pairwise |ab_i - ab_j| per pixel; share of pixels whose hue differs by more than 30 degrees
  between at least two samples (counting only samples with chroma >= MIN_CHROMA there: gray has no hue);
- coherence: each sample's mean ab gradient magnitude over the truth's (noise would be far above 1);
- plausibility: each sample index's colourfulness ratio and classifier top-1 agreement, beside the gray input's;
- best of n (n = 1, 4, 8): per photo the sample with the best PSNR (or class-rebalanced AuC), Deshpande et
  al.'s oracle measure, beside a baseline model's single answer.
Writes diverse_report.json/.md and diverse_sheet.png (truth and the first 6 samples of a few photos).
"""

from __future__ import annotations

import numpy as np

from gimp_colorize import colour
from training import evaluate as plain

MIN_CHROMA = 5.0
HUE_DEGREES = 30.0
BEST_OF = (1, 4, 8)
SHEET_SAMPLES = 6
SHEET_ROWS = 4


def pairwise_distance(abs_: list[np.ndarray]) -> float:
    """Mean over pairs of samples of the per-pixel |ab_i - ab_j|."""
    pairs = [(i, j) for i in range(len(abs_)) for j in range(i + 1, len(abs_))]
    if not pairs:
        return 0.0
    return float(np.mean([np.linalg.norm(abs_[i] - abs_[j], axis=-1).mean() for i, j in pairs]))


def hue_disagreement(abs_: list[np.ndarray]) -> float:
    """Share of pixels where two samples, both coloured there, differ in hue by more than HUE_DEGREES."""
    hues = [np.degrees(np.arctan2(ab[..., 1], ab[..., 0])) for ab in abs_]
    coloured = [np.hypot(ab[..., 0], ab[..., 1]) >= MIN_CHROMA for ab in abs_]
    differs = np.zeros(abs_[0].shape[:2], dtype=bool)
    for i in range(len(abs_)):
        for j in range(i + 1, len(abs_)):
            gap = np.abs((hues[i] - hues[j] + 180.0) % 360.0 - 180.0)
            differs |= coloured[i] & coloured[j] & (gap > HUE_DEGREES)
    return float(differs.mean())


def gradient_energy(ab: np.ndarray) -> float:
    """Mean magnitude of the ab field's spatial gradient (both channels)."""
    dy, dx = np.diff(ab, axis=0)[:, :-1], np.diff(ab, axis=1)[:-1]
    return float(np.sqrt((dy ** 2 + dx ** 2).sum(-1)).mean())


def draw_samples(model: str, photos: list, count: int, seed: int, temperature: float | None = None):
    """{photo name: [sample rgb8, ...]} through the backend's Engine (one run per photo)."""
    from gimp_colorize.engine import Engine
    from gimp_colorize.options import ColorizeOptions

    registry, info = plain.registry_for(model, mode="diverse")
    engine = Engine(registry)
    samples = {}
    for photo in photos:
        result = engine.colorize(plain.gray_from_lightness(photo.rgb),
                                 ColorizeOptions(mode="diverse", model=info.name, samples=count, seed=seed,
                                                 temperature=temperature))
        samples[photo.name] = [plain.to_rgb8(layer.pixels) for layer in result.layers]
    return info, samples


def per_sample_index(photos: list, samples: dict, count: int, classifier) -> list[dict]:
    """The plain evaluation's summary of sample 1 of every photo, of sample 2, ..."""
    rows = []
    for index in range(count):
        triples = [(p.name, p.rgb, samples[p.name][index]) for p in photos]
        result = plain.evaluate_images(triples, classifier)
        rows.append({"sample": index + 1, **result["summary"]["ours"],
                     "per_image": {row["name"]: row["ours"] for row in result["per_image"]}})
    return rows, result["summary"]["gray"]


def best_of(photos: list, samples: dict, by_index: list[dict], n: int) -> dict:
    """Best sample of the first n per photo, by PSNR and by class-rebalanced AuC (each chosen separately)."""
    summary = {}
    for key in ("psnr", "auc_rebalanced"):
        chosen = [(p.name, p.rgb, samples[p.name][max(range(n), key=lambda i: by_index[i]["per_image"][p.name][key])])
                  for p in photos]
        summary[key] = plain.evaluate_images(chosen)["summary"]["ours"][key]
    return summary


def diversity(photos: list, samples: dict) -> dict:
    distances, disagreements, ratios = [], [], []
    for photo in photos:
        abs_ = [colour.rgb_to_lab(sample)[..., 1:] for sample in samples[photo.name]]
        distances.append(pairwise_distance(abs_))
        disagreements.append(hue_disagreement(abs_))
        truth_energy = gradient_energy(colour.rgb_to_lab(photo.rgb)[..., 1:])
        ratios.append([gradient_energy(ab) / truth_energy for ab in abs_])
    ratios = np.asarray(ratios)
    return {"pairwise_ab_distance": float(np.mean(distances)), "hue_disagreement_share": float(np.mean(disagreements)),
            "gradient_ratio_mean": float(ratios.mean()), "gradient_ratio_max": float(ratios.max()),
            "per_image": [{"name": p.name, "pairwise_ab_distance": d, "hue_disagreement_share": h}
                          for p, d, h in zip(photos, distances, disagreements)]}


def evaluate_diverse(model: str, photos: list, count: int, seed: int, baseline: str | None, classifier,
                     temperature: float | None = None) -> tuple[dict, dict]:
    info, samples = draw_samples(model, photos, count, seed, temperature)
    by_index, gray = per_sample_index(photos, samples, count, classifier)
    report = {"model": model, "model_info": {k: getattr(info, k) for k in plain.MODEL_FIELDS}, "samples": count,
              "seed": seed, "temperature": temperature, "diversity": diversity(photos, samples),
              "per_sample": [{k: v for k, v in row.items() if k != "per_image"} for row in by_index], "gray": gray,
              "best_of": {str(n): best_of(photos, samples, by_index, n) for n in BEST_OF if n <= count}}
    if baseline:
        colorize, _ = plain.engine_colorizer(baseline, None)
        triples = [(p.name, p.rgb, colorize(p, plain.gray_from_lightness(p.rgb))) for p in photos]
        report["baseline"] = {"model": baseline, **plain.evaluate_images(triples, classifier)["summary"]["ours"]}
    return report, samples
