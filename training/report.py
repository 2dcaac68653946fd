"""Evaluation outputs: report.json, report.md (ours vs gray) and contact_sheet.png (gray | ours | ground truth)."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np

from gimp_colorize.errors import BadRequest

THUMBNAIL_HEIGHT = 96
LABEL_HEIGHT = 14
GAP = 4
COLUMNS = (("gray", "gray input"), ("ours", "ours"), ("truth", "ground truth"))

# (key, label, format) of the summary table, in order
SUMMARY_ROWS = (
    ("auc_raw", "AuC raw (%)", "{:.2f}"),
    ("auc_rebalanced", "AuC class-rebalanced (%)", "{:.2f}"),
    ("psnr", "PSNR (dB)", "{:.2f}"),
    ("ssim", "SSIM (RGB)", "{:.4f}"),
    ("colourfulness", "colourfulness", "{:.2f}"),
    ("colourfulness_ratio", "colourfulness / ground truth's", "{:.3f}"),
    ("top1_agreement", "classifier top-1 agreement", "{:.3f}"),
    ("top5_agreement", "classifier top-5 agreement", "{:.3f}"),
)
PER_IMAGE_COLUMNS = (
    ("auc_raw", "AuC", "{:.1f}"),
    ("auc_rebalanced", "AuC-rb", "{:.1f}"),
    ("psnr", "PSNR", "{:.2f}"),
    ("ssim", "SSIM", "{:.3f}"),
    ("colourfulness_ratio", "colour ratio", "{:.2f}"),
    ("top1_agree", "top-1", "{}"),
)


def json_ready(value):
    """Strict JSON: non-finite floats (PSNR of identical images) become null, numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def format_value(value, template: str) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return template.format(value)


def summary_table(summary: dict) -> str:
    lines = ["| metric | ours | gray |", "| --- | ---: | ---: |"]
    for key, label, template in SUMMARY_ROWS:
        if key in summary["ours"]:
            ours, gray = (format_value(summary[m].get(key), template) for m in ("ours", "gray"))
            lines.append(f"| {label} | {ours} | {gray} |")
    lines.append(f"| ground-truth colourfulness | {summary['truth']['colourfulness']:.2f} | |")
    return "\n".join(lines)


def per_image_table(per_image: list[dict]) -> str:
    columns = [c for c in PER_IMAGE_COLUMNS if c[0] in per_image[0]["ours"]]
    header = ["image"] + [f"{label} {method}" for _, label, _ in columns for method in ("ours", "gray")]
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    for row in per_image:
        cells = [row["name"]]
        cells += [format_value(row[m][key], template) for key, _, template in columns for m in ("ours", "gray")]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("| **mean** | " + " | ".join(mean_cells(per_image, columns)) + " |")
    return "\n".join(lines)


def mean_cells(per_image: list[dict], columns) -> list[str]:
    cells = []
    for key, _, template in columns:
        for method in ("ours", "gray"):
            values = [row[method][key] for row in per_image if row[method][key] is not None]
            finite = [float(v) for v in values if math.isfinite(float(v))]
            mean = float(np.mean(finite)) if finite else None
            is_flag = any(isinstance(v, bool) for v in values)  # the mean of yes/no is a fraction
            cells.append(format_value(mean, "{:.3f}" if is_flag else template))
    return cells


def model_details(result: dict) -> str:
    info = result.get("model_info") or {}
    parts = [f"{info['name']} {info['version']}, sha256 {info['sha256'][:12]}"] if info else []
    if result.get("temperature"):
        parts.append(f"temperature {result['temperature']}")
    return f" ({'; '.join(parts)})" if parts else ""


def markdown_report(result: dict) -> str:
    header = [
        "# Colorization evaluation",
        "",
        f"- model: `{result['model']}`" + model_details(result),
        f"- data: `{result['data']}` ({result['images']} photos, long side at most {result['max_side']} px)",
        f"- classifier: {result['classifier']}",
        f"- time: {result['seconds']['total']:.1f} s ({result['seconds']['colorize']:.1f} s colorizing)",
        "",
        "Definitions: docs/EVALUATION.md. AuC rows pool every pixel of the set; the other rows are means over images;",
        "the colourfulness ratio is the mean colourfulness over the ground truth's mean.",
        "",
        "## Summary",
        "",
        summary_table(result["summary"]),
        "",
        "## Per image",
        "",
        "AuC per image uses the bin frequencies of the whole set for the rebalanced variant; the mean row averages images.",
        "",
        per_image_table(result["per_image"]),
    ]
    if result.get("skipped"):
        header += ["", "## Skipped files", ""] + [f"- {s['file']}: {s['reason']}" for s in result["skipped"]]
    return "\n".join(header) + "\n"


def contact_sheet(thumbnails: list[dict]) -> np.ndarray:
    """One row per image: gray | ours | ground truth, each thumbnail THUMBNAIL_HEIGHT high, names above rows."""
    from PIL import Image, ImageDraw

    cell_width = max(t["truth"].shape[1] for t in thumbnails)
    row_height = LABEL_HEIGHT + THUMBNAIL_HEIGHT + GAP
    width = len(COLUMNS) * (cell_width + GAP) + GAP
    height = LABEL_HEIGHT + len(thumbnails) * row_height + GAP
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for column, (_, title) in enumerate(COLUMNS):
        draw.text((GAP + column * (cell_width + GAP), 1), title, fill=(0, 0, 0))
    for row, images in enumerate(thumbnails):
        top = LABEL_HEIGHT + row * row_height
        draw.text((GAP, top + 1), images.get("name", ""), fill=(90, 90, 90))
        for column, (key, _) in enumerate(COLUMNS):
            sheet.paste(Image.fromarray(images[key]), (GAP + column * (cell_width + GAP), top + LABEL_HEIGHT))
    return np.asarray(sheet)


def png_bytes(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def write_outputs(result: dict, out_dir: Path) -> None:
    """Write the three files, each atomically (temp file + rename): a failed run leaves no half-written file."""
    from gimp_colorize.imageio import atomic_write

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadRequest(f"cannot create output folder {out_dir}: {exc.strerror or exc}") from None
    thumbnails = [dict(t, name=row["name"]) for t, row in zip(result["thumbnails"], result["per_image"])]
    report = {key: value for key, value in result.items() if key != "thumbnails"}
    # render everything before writing anything, so an error cannot leave a mix of old and new files
    files = {
        "report.json": json.dumps(json_ready(report), indent=2, allow_nan=False).encode() + b"\n",
        "report.md": markdown_report(report).encode(),
        "contact_sheet.png": png_bytes(contact_sheet(thumbnails)),
    }
    try:
        for name, data in files.items():
            atomic_write(out_dir / name, data)
    except OSError as exc:
        raise BadRequest(f"cannot write to {out_dir}: {exc.strerror or exc}") from None
