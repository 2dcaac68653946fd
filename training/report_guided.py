"""Outputs of `python -m training evaluate --guided`: guided_report.json/.md, the PSNR plot and two contact sheets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from training.report import format_value, json_ready, png_bytes

PASSES = (("clean", "clean input"), ("old_photo", "old-photo input"))
NO_HINT_ROWS = (("auc_rebalanced", "AuC class-rebalanced (%)", "{:.2f}"), ("auc_raw", "AuC raw (%)", "{:.2f}"),
                ("psnr", "PSNR (dB)", "{:.2f}"), ("ssim", "SSIM (RGB)", "{:.4f}"),
                ("colourfulness_ratio", "colourfulness ratio", "{:.3f}"),
                ("top1_agreement", "classifier top-1 agreement", "{:.3f}"),
                ("top5_agreement", "classifier top-5 agreement", "{:.3f}"))


def no_hint_table(report: dict) -> str:
    columns = [(p, label, method) for p, label in PASSES for method in ("ours", "baseline", "gray")
               if method in report["passes"][p]["no_hints"]]
    names = {"ours": report["model"], "baseline": report.get("baseline") or "baseline", "gray": "gray"}
    lines = ["| metric | " + " | ".join(f"{names[m]} ({label})" for _, label, m in columns) + " |",
             "| --- |" + " ---: |" * len(columns)]
    for key, label, template in NO_HINT_ROWS:
        cells = [format_value(report["passes"][p]["no_hints"][m].get(key), template) for p, _, m in columns]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sweep_table(report: dict) -> str:
    lines = ["| points | " + " | ".join(f"PSNR {label} | AuC-rb {label} | hint error median {label}" for _, label in PASSES) + " |",
             "| ---: |" + " ---: |" * (3 * len(PASSES))]
    sweeps = [report["passes"][p]["sweep"] for p, _ in PASSES]
    for rows in zip(*sweeps):
        cells = []
        for row in rows:
            cells += [format_value(row["psnr"], "{:.2f}"), format_value(row["auc_rebalanced"], "{:.2f}"),
                      format_value(row["hint_error_median"], "{:.1f}")]
        lines.append(f"| {rows[0]['points']} | " + " | ".join(cells) + " |")
    for method, label in (("gray", "gray input"), ("baseline", f"{report.get('baseline')} (no hints)")):
        tables = [report["passes"][p]["no_hints"].get(method) for p, _ in PASSES]
        if all(tables):
            cells = []
            for table in tables:
                cells += [format_value(table["psnr"], "{:.2f}"), format_value(table["auc_rebalanced"], "{:.2f}"), ""]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def reference_table(report: dict) -> str:
    lines = ["| | " + " | ".join(label for _, label in PASSES) + " |", "| --- |" + " ---: |" * len(PASSES)]
    refs = [report["passes"][p]["references"] for p, _ in PASSES]
    rows = (
        ("mean-colour error, no reference (|delta ab|)", lambda r: r["mean_colour_error_no_reference"]["ab"], "{:.2f}"),
        ("mean-colour error, the truth as reference", lambda r: r["mean_colour_error_oracle_reference"]["ab"], "{:.2f}"),
        ("reduction", lambda r: r["mean_colour_error_reduction"], "{:.0%}"),
        ("histogram intersection with another photo, without it as reference", lambda r: r["other_reference_intersection_without"], "{:.3f}"),
        ("... with it as reference", lambda r: r["other_reference_intersection_with"], "{:.3f}"),
    )
    for label, pick, template in rows:
        lines.append(f"| {label} | " + " | ".join(format_value(pick(r), template) for r in refs) + " |")
    return "\n".join(lines)


def markdown(report: dict) -> str:
    return "\n".join([
        "# Guided colorization evaluation",
        "",
        f"- model: `{report['model']}` ({report['model_info']['name']} {report['model_info']['version']}, "
        f"sha256 {report['model_info']['sha256'][:12]}); baseline: `{report.get('baseline')}`",
        f"- data: `{report['data']}` ({report['images']} photos, long side at most {report['max_side']} px); seed {report['seed']}",
        f"- hints: squares of {report['patch']} x {report['patch']} px carrying the ground truth's colours; "
        "old-photo input: training/degrade.py on the gray input",
        f"- time: {report['seconds']:.1f} s",
        "",
        "## No hints", "", no_hint_table(report), "",
        "## Hint sweep", "", sweep_table(report), "",
        "## Global hint (reference photo)", "", reference_table(report), "",
    ])


def psnr_plot(report: dict, width: int = 640, height: int = 400) -> np.ndarray:
    """PSNR against the number of points (evenly spaced ticks), one line per pass; gray and baseline as dashes."""
    from PIL import Image, ImageDraw

    counts = report["counts"]
    series = {label: [row["psnr"] for row in report["passes"][p]["sweep"]] for p, label in PASSES}
    flat = {f"{m} ({label})": report["passes"][p]["no_hints"][m]["psnr"] for p, label in PASSES
            for m in ("gray", "baseline") if m in report["passes"][p]["no_hints"]}
    values = [v for line in series.values() for v in line] + list(flat.values())
    low, high = np.floor(min(values)) - 0.5, np.ceil(max(values)) + 0.5
    left, right, top, bottom = 60, width - 20, 20, height - 50
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    x_of = lambda i: left + (right - left) * i / (len(counts) - 1)  # noqa: E731
    y_of = lambda v: bottom - (bottom - top) * (v - low) / (high - low)  # noqa: E731
    draw.rectangle([left, top, right, bottom], outline=(0, 0, 0))
    for tick in np.arange(low + 0.5, high, 1.0):
        draw.line([left - 4, y_of(tick), left, y_of(tick)], fill=(0, 0, 0))
        draw.text((8, y_of(tick) - 6), f"{tick:.1f}", fill=(0, 0, 0))
    for i, count in enumerate(counts):
        draw.text((x_of(i) - 6, bottom + 6), str(count), fill=(0, 0, 0))
    draw.text(((left + right) / 2 - 60, bottom + 24), "colour points (PSNR, dB)", fill=(0, 0, 0))
    palette = [(200, 40, 40), (40, 90, 200), (120, 120, 120), (40, 150, 60), (170, 170, 170), (120, 200, 130)]
    for number, (label, line) in enumerate(series.items()):
        points = [(x_of(i), y_of(v)) for i, v in enumerate(line)]
        draw.line(points, fill=palette[number], width=2)
        draw.text((right - 200, top + 8 + 14 * number), f"guided, {label}", fill=palette[number])
    for number, (label, value) in enumerate(flat.items(), len(series)):
        colour_ = palette[number % len(palette)]
        for x in range(left, right, 12):
            draw.line([x, y_of(value), x + 6, y_of(value)], fill=colour_)
        draw.text((right - 200, top + 8 + 14 * number), label, fill=colour_)
    return np.asarray(image)


def sheet(rows: list[list[np.ndarray]], titles: list[str], height: int = 96) -> np.ndarray:
    from PIL import Image, ImageDraw

    def thumb(rgb):
        return Image.fromarray(rgb).resize((max(1, round(rgb.shape[1] * height / rgb.shape[0])), height), Image.LANCZOS)

    thumbs = [[thumb(cell) for cell in row] for row in rows]
    cell_width = max(t.width for row in thumbs for t in row)
    canvas = Image.new("RGB", (4 + len(titles) * (cell_width + 4), 16 + len(rows) * (height + 4)), "white")
    draw = ImageDraw.Draw(canvas)
    for column, title in enumerate(titles):
        draw.text((4 + column * (cell_width + 4), 2), title, fill=(0, 0, 0))
    for r, row in enumerate(thumbs):
        for column, t in enumerate(row):
            canvas.paste(t, (4 + column * (cell_width + 4), 16 + r * (height + 4)))
    return np.asarray(canvas)


def outline_hints(rgb: np.ndarray, positions: list, patch: int) -> np.ndarray:
    """Draw each hint square's outline (black and white) so it shows on any colour."""
    out = rgb.copy()
    for x, y in positions:
        y0, y1, x0, x1 = max(0, y - 1), min(out.shape[0] - 1, y + patch), max(0, x - 1), min(out.shape[1] - 1, x + patch)
        out[y0, x0:x1 + 1] = out[y1, x0:x1 + 1] = (255, 255, 255)
        out[y0:y1 + 1, x0] = out[y0:y1 + 1, x1] = (0, 0, 0)
    return out


def sweep_sheet(images: dict, report: dict) -> np.ndarray:
    from training.evaluate_guided import SHEET_COUNTS

    runs = {run.name: run for run in images["runs"]}
    rows = []
    for name, by_count in images["sweep"].items():
        run = runs[name]
        row = [np.repeat(run.gray[..., None], 3, 2)]
        row += [outline_hints(by_count[c], run.positions[:c], report["patch"]) for c in SHEET_COUNTS]
        rows.append(row + [run.truth])
    return sheet(rows, ["gray input"] + [f"{c} points" for c in SHEET_COUNTS] + ["ground truth"])


def reference_sheet(images: dict) -> np.ndarray:
    keys = ("gray", "reference", "without", "with", "truth")
    rows = [[entry[k] for k in keys] for entry in images["references"]]
    return sheet(rows, ["gray input", "reference", "no reference", "with the reference", "ground truth"])


def write_guided_outputs(report: dict, images: dict, out_dir: Path) -> None:
    from gimp_colorize.imageio import atomic_write

    out_dir.mkdir(parents=True, exist_ok=True)
    files = {  # everything rendered before anything is written
        "guided_report.json": json.dumps(json_ready(report), indent=2, allow_nan=False).encode() + b"\n",
        "guided_report.md": markdown(report).encode(),
        "hint_sweep.png": png_bytes(psnr_plot(report)),
        "hint_sweep_sheet.png": png_bytes(sweep_sheet(images, report)),
        "reference_sheet.png": png_bytes(reference_sheet(images)),
    }
    for name, data in files.items():
        atomic_write(out_dir / name, data)
