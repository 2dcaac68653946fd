"""Outputs of `python -m training evaluate --mode diverse`: diverse_report.json/.md and diverse_sheet.png."""

from __future__ import annotations

import json
from pathlib import Path

from training.report import format_value, json_ready, png_bytes
from training.report_guided import sheet

PER_SAMPLE_ROWS = (("colourfulness_ratio", "colourfulness ratio", "{:.3f}"), ("auc_rebalanced", "AuC-rb", "{:.2f}"),
                   ("psnr", "PSNR", "{:.2f}"), ("top1_agreement", "top-1 agreement", "{:.3f}"))


def markdown(report: dict) -> str:
    d = report["diversity"]
    lines = [
        "# Diverse colorization evaluation", "",
        f"- model: `{report['model']}` ({report['model_info']['name']} {report['model_info']['version']}, "
        f"sha256 {report['model_info']['sha256'][:12]}); {report['samples']} samples per photo, seeds "
        f"{report['seed']}..{report['seed'] + report['samples'] - 1}, annealed-mean temperature "
        f"{report.get('temperature') or report['model_info']['default_temperature']}",
        f"- data: `{report['data']}` ({report['images']} photos, long side at most {report['max_side']} px)",
        f"- time: {report['seconds']:.1f} s", "",
        "## Diversity and coherence", "",
        "| measure | value |", "| --- | ---: |",
        f"| mean pairwise ab distance per pixel | {d['pairwise_ab_distance']:.2f} |",
        f"| share of pixels whose hue differs by > 30 degrees between two samples | {d['hue_disagreement_share']:.3f} |",
        f"| ab gradient energy / ground truth's, mean over samples | {d['gradient_ratio_mean']:.3f} |",
        f"| ab gradient energy / ground truth's, largest | {d['gradient_ratio_max']:.3f} |", "",
        "## Each sample", "",
        "| sample | " + " | ".join(label for _, label, _ in PER_SAMPLE_ROWS) + " |",
        "| ---: |" + " ---: |" * len(PER_SAMPLE_ROWS),
    ]
    rows = report["per_sample"] + [{"sample": "gray input", **report["gray"]}]
    if report.get("baseline"):
        rows.append({"sample": f"{report['baseline']['model']} (single answer)", **report["baseline"]})
    for row in rows:
        lines.append(f"| {row['sample']} | " + " | ".join(format_value(row.get(k), t) for k, _, t in PER_SAMPLE_ROWS) + " |")
    lines += ["", "## Best of n (oracle)", "", "| n | best PSNR | best AuC-rb |", "| ---: | ---: | ---: |"]
    for n, best in report["best_of"].items():
        lines.append(f"| {n} | {best['psnr']:.2f} | {best['auc_rebalanced']:.2f} |")
    if report.get("baseline"):
        lines.append(f"| {report['baseline']['model']} | {report['baseline']['psnr']:.2f} | "
                     f"{report['baseline']['auc_rebalanced']:.2f} |")
    return "\n".join(lines) + "\n"


def diverse_sheet(photos: list, samples: dict, count: int) -> bytes:
    shown = min(count, 6)
    rows = [[p.rgb] + samples[p.name][:shown] for p in photos[:4]]
    return png_bytes(sheet(rows, ["ground truth"] + [f"sample {i}" for i in range(1, shown + 1)]))


def write_diverse_outputs(report: dict, photos: list, samples: dict, out_dir: Path) -> None:
    from gimp_colorize.imageio import atomic_write

    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"diverse_report.json": json.dumps(json_ready(report), indent=2, allow_nan=False).encode() + b"\n",
             "diverse_report.md": markdown(report).encode(),
             "diverse_sheet.png": diverse_sheet(photos, samples, report["samples"])}
    for name, data in files.items():
        atomic_write(out_dir / name, data)
