"""`python -m training evaluate --mode instance`: instance mode against full mode, on the whole photo and in its boxes.

One run colours every photo twice through the backend's Engine, as the plug-in would: full mode (--full-model,
default the registry's default full model) and instance mode (--model, with its fusion model and the installed
default detector; boxes=auto). Models are looked up in the installed folders plus the .onnx files named. The
boxes instance mode used on a photo are the "detected boxes" of both: the same metrics as the plain evaluation (docs/EVALUATION.md) are computed on the whole photos and on the crops of those boxes (boxes
under 11 pixels a side are too small for SSIM and are left out), with the gray baseline beside them. Inside the
boxes a third method is scored: each instance's own colorization (its instance layer), the instance network
alone, which shows what the fusion has to choose from.

Writes OUTDIR/instance_report.json, instance_report.md and instance_sheet.png (per photo: the gray input with its
boxes, full, instance, ground truth); --show-boxes also writes OUTDIR/boxes/NAME.png, each photo's gray with its
boxes, labels and scores drawn at the evaluated size.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from training import evaluate as plain
from training import metrics
from training import report as report_files

GOAL_AUC_POINTS = 2.0       # inside boxes, class-rebalanced AuC: instance >= full + 2 points
GOAL_COLOURFULNESS = 0.05   # inside boxes, colourfulness ratio: instance >= full + 0.05
ROWS = (("auc_raw", "AuC raw (%)", "{:.2f}"), ("auc_rebalanced", "AuC class-rebalanced (%)", "{:.2f}"),
        ("psnr", "PSNR (dB)", "{:.2f}"), ("ssim", "SSIM (RGB)", "{:.4f}"),
        ("colourfulness_ratio", "colourfulness / ground truth's", "{:.3f}"),
        ("top1_agreement", "classifier top-1 agreement", "{:.3f}"))
BOX_COLOURS = ((255, 64, 64), (64, 200, 64), (64, 128, 255), (255, 200, 0), (255, 0, 255), (0, 220, 220),
               (255, 128, 0), (160, 96, 255))


class Colorizers:
    """Full mode and instance mode through one Engine over one registry (shipped models + the files named)."""

    def __init__(self, instance_model: str, full_model: str | None, extra_files: list[str], score_threshold: float,
                 max_instances: int):
        from gimp_colorize.config import load_settings
        from gimp_colorize.engine import Engine
        from gimp_colorize.registry import Registry

        files = [f for f in [instance_model, full_model, *extra_files] if f and f.endswith(".onnx")]
        for path in files:
            if not Path(path).is_file():
                raise plain.BadRequest(f"model file not found: {path}")
        settings = load_settings()
        self.registry = Registry(settings.shipped_models_dir, settings.user_models_dir, files=files)
        self.instance = self._name(instance_model)
        self.full = self._name(full_model) if full_model else self.registry.default_for("full").name
        self.engine = Engine(self.registry)
        self.score_threshold, self.max_instances = score_threshold, max_instances

    def _name(self, model: str) -> str:
        return self.registry.name_of(model) if model.endswith(".onnx") else self.registry.get(model).name

    def full_mode(self, gray: np.ndarray) -> np.ndarray:
        from gimp_colorize.options import ColorizeOptions

        return plain.to_rgb8(self.engine.colorize(gray, ColorizeOptions(mode="full", model=self.full)).layers[0].pixels)

    def instance_mode(self, gray: np.ndarray) -> tuple[np.ndarray, dict, list[np.ndarray]]:
        """(the fused result, the result's details, each instance's own layer)."""
        from gimp_colorize.options import ColorizeOptions, InstanceOptions

        options = ColorizeOptions(mode="instance", model=self.instance, instance=InstanceOptions(
            boxes="auto", score_threshold=self.score_threshold, max_instances=self.max_instances, instance_layers=True))
        result = self.engine.colorize(gray, options)
        return (plain.to_rgb8(result.layers[0].pixels), result.details,
                [plain.to_rgb8(layer.pixels) for layer in result.layers[1:]])

    def describe(self) -> dict:
        info = {name: self.registry.get(name) for name in (self.instance, self.full)}
        fusion = self.registry.fusion_for(info[self.instance])
        detector = self.registry.default_for("detector")
        return {role: {"name": m.name, "version": m.version, "sha256": m.sha256}
                for role, m in (("instance", info[self.instance]), ("fusion", fusion), ("detector", detector),
                                ("full", info[self.full]))}


def box_crops(name: str, truth: np.ndarray, results: dict[str, np.ndarray], instances: list[dict], own: list):
    """(name#k, truth crop, {method: crop}) for each box big enough to score; "own" is the instance's own layer."""
    for number, (item, layer) in enumerate(zip(instances, own), 1):
        x, y, w, h = item["box"]
        if min(w, h) < metrics.SSIM_WINDOW:
            continue
        crops = {m: r[y:y + h, x:x + w] for m, r in results.items()}
        yield f"{name}#{number}", truth[y:y + h, x:x + w], {**crops, "own": layer[y:y + h, x:x + w]}


def scored(items: list, classifier=None, methods=("full", "instance")) -> dict:
    """The plain evaluation's summary for each method over (name, truth, {method: result}) items; gray included."""
    out = {}
    for method in methods:
        result = plain.evaluate_images([(n, t, r[method]) for n, t, r in items], classifier)
        out[method] = result["summary"]["ours"]
        out["gray"], out["truth"] = result["summary"]["gray"], result["summary"]["truth"]
        out.setdefault("per_image", {})[method] = {row["name"]: row["ours"] for row in result["per_image"]}
    return out


def draw_boxes(rgb: np.ndarray, instances: list[dict], scale: float = 1.0, labels: bool = True) -> np.ndarray:
    from PIL import Image, ImageDraw

    image = Image.fromarray(np.ascontiguousarray(rgb))
    draw = ImageDraw.Draw(image)
    for number, item in enumerate(instances):
        x, y, w, h = (v * scale for v in item["box"])
        colour = BOX_COLOURS[number % len(BOX_COLOURS)]
        draw.rectangle([x, y, x + w - 1, y + h - 1], outline=colour, width=max(1, round(2 * scale)) if labels else 1)
        if labels:
            text = f"{item['label'] or item['source']}" + (f" {item['score']:.2f}" if item["score"] is not None else "")
            draw.rectangle([x, y, x + 6 * len(text) + 4, y + 11], fill=colour)
            draw.text((x + 2, y), text, fill=(0, 0, 0))
    return np.asarray(image)


def evaluate_instance(args) -> dict:
    """The report dict (and the images it needs under "images")."""
    started = time.perf_counter()
    photos, skipped = plain.load_photos(args.data, args.max_side)
    colorizers = Colorizers(args.model, args.full_model, [args.fusion] if args.fusion else [],
                            args.score_threshold, args.max_instances)
    classifier, classifier_note = plain.load_classifier(args)
    whole, boxes, rows, images, seconds = [], [], [], [], {"full": 0.0, "instance": 0.0}
    for photo in photos:
        gray = plain.gray_from_lightness(photo.rgb)
        tick = time.perf_counter()
        full = colorizers.full_mode(gray)
        seconds["full"] += time.perf_counter() - tick
        tick = time.perf_counter()
        instance, details, own = colorizers.instance_mode(gray)
        seconds["instance"] += time.perf_counter() - tick
        results = {"full": full, "instance": instance}
        whole.append((photo.name, photo.rgb, results))
        crops = list(box_crops(photo.name, photo.rgb, results, details["instances"], own))
        boxes += crops
        rows.append({"name": photo.name, "instances": details["instances"], "scored_boxes": len(crops)})
        images.append({"name": photo.name, "gray": np.repeat(gray[..., None], 3, axis=2), **results, "truth": photo.rgb,
                       "instances": details["instances"]})
    summary = {"whole": scored(whole, classifier)}
    summary["boxes"] = scored(boxes, methods=("full", "instance", "own")) if boxes else None
    for row in rows:
        for part in ("whole", "boxes"):
            if summary[part] is None:
                continue
            for method in ("full", "instance"):
                names = [row["name"]] if part == "whole" else [n for n, _, _ in boxes if n.startswith(row["name"] + "#")]
                values = [summary[part]["per_image"][method][n]["auc_rebalanced"] for n in names]
                row[f"{part}_auc_rebalanced_{method}"] = float(np.mean(values)) if values else None
    return {
        "data": str(args.data), "images": len(photos), "skipped": skipped, "max_side": args.max_side,
        "models": colorizers.describe(), "score_threshold": args.score_threshold, "max_instances": args.max_instances,
        "boxes_scored": len(boxes), "boxes_found": sum(len(r["instances"]) for r in rows),
        "classifier": classifier_note or "EfficientNet-Lite0", "summary": _without_per_image(summary), "per_image": rows,
        "seconds": {"full": round(seconds["full"], 2), "instance": round(seconds["instance"], 2),
                    "total": round(time.perf_counter() - started, 2)},
        "images_for_sheets": images,
    }


def _without_per_image(summary: dict) -> dict:
    return {part: (None if value is None else {k: v for k, v in value.items() if k != "per_image"})
            for part, value in summary.items()}


# ---------------------------------------------------------------------------- outputs


def goals(summary: dict) -> list[str]:
    whole, boxes = summary["whole"], summary["boxes"]
    lines = []
    for key, label in (("auc_rebalanced", "class-rebalanced AuC"), ("psnr", "PSNR"), ("ssim", "SSIM")):
        delta = whole["instance"][key] - whole["full"][key]
        lines.append(f"- whole photo, {label}: instance {'>=' if delta >= 0 else '<'} full ({delta:+.4g})")
    if boxes is None:
        return lines + ["- inside boxes: no box was found on any photo"]
    auc = boxes["instance"]["auc_rebalanced"] - boxes["full"]["auc_rebalanced"]
    ratio = boxes["instance"]["colourfulness_ratio"] - boxes["full"]["colourfulness_ratio"]
    lines.append(f"- inside boxes, class-rebalanced AuC: {auc:+.2f} points (goal +{GOAL_AUC_POINTS:g}: "
                 f"{'met' if auc >= GOAL_AUC_POINTS else 'missed'})")
    lines.append(f"- inside boxes, colourfulness ratio: {ratio:+.3f} (goal +{GOAL_COLOURFULNESS:g}: "
                 f"{'met' if ratio >= GOAL_COLOURFULNESS else 'missed'})")
    return lines


def table(part: dict) -> str:
    own = "own" in part
    lines = ["| metric | gray | full | instance | instance - full |" + (" instance network alone |" if own else ""),
             "| --- | ---: | ---: | ---: | ---: |" + (" ---: |" if own else "")]
    for key, label, template in ROWS:
        if key not in part["full"]:
            continue
        values = [part[m].get(key) for m in ("gray", "full", "instance")]
        delta = None if None in values[1:] else values[2] - values[1]
        cells = [report_files.format_value(v, template) for v in values] + [report_files.format_value(delta, "{:+.3f}")]
        if own:
            cells.append(report_files.format_value(part["own"].get(key), template))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(report: dict) -> str:
    models = report["models"]
    lines = ["# Instance mode against full mode", "",
             "- models: " + ", ".join(f"{role} `{m['name']}` {m['version']} ({m['sha256'][:12]})" for role, m in models.items()),
             f"- data: `{report['data']}` ({report['images']} photos, long side at most {report['max_side']} px); boxes: "
             f"the detector's (score >= {report['score_threshold']}, at most {report['max_instances']}), "
             f"{report['boxes_found']} found, {report['boxes_scored']} big enough to score",
             f"- time: {report['seconds']['full']:.1f} s full mode, {report['seconds']['instance']:.1f} s instance mode",
             "", "## Whole photos", "", table(report["summary"]["whole"]), ""]
    if report["summary"]["boxes"] is not None:
        lines += ["## Inside the boxes", "", "The same metrics on the crops of the boxes instance mode used (class "
                  "rebalancing counted on those crops).", "", table(report["summary"]["boxes"]), ""]
    lines += ["## Goals", "", *goals(report["summary"]), "", "## Per photo", "",
              "| photo | boxes | AuC-rb full | AuC-rb instance | in boxes: full | in boxes: instance |",
              "| --- | --- | ---: | ---: | ---: | ---: |"]
    for row in report["per_image"]:
        labels = ", ".join(f"{i['label'] or i['source']} {i['score']:.2f}" if i["score"] is not None else i["source"]
                           for i in row["instances"]) or "none"
        cells = [report_files.format_value(row.get(k), "{:.1f}") for k in (
            "whole_auc_rebalanced_full", "whole_auc_rebalanced_instance", "boxes_auc_rebalanced_full",
            "boxes_auc_rebalanced_instance")]
        lines.append(f"| {row['name']} | {labels} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def sheet(images: list[dict]) -> np.ndarray:
    """One row per photo: gray with boxes | full | instance | ground truth."""
    from PIL import Image, ImageDraw

    height, gap, label = report_files.THUMBNAIL_HEIGHT * 2, report_files.GAP, report_files.LABEL_HEIGHT
    columns = (("gray", "gray input and boxes"), ("full", "full mode"), ("instance", "instance mode"), ("truth", "ground truth"))
    widths = [round(i["truth"].shape[1] * height / i["truth"].shape[0]) for i in images]
    cell = max(widths)
    canvas = Image.new("RGB", (len(columns) * (cell + gap) + gap, label + len(images) * (label + height + gap) + gap),
                       (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for column, (_, title) in enumerate(columns):
        draw.text((gap + column * (cell + gap), 1), title, fill=(0, 0, 0))
    for row, (item, width) in enumerate(zip(images, widths)):
        top = label + row * (label + height + gap)
        draw.text((gap, top + 1), item["name"], fill=(90, 90, 90))
        for column, (key, _) in enumerate(columns):
            thumb = plain.resize_rgb(item[key], (width, height))
            if key == "gray":
                thumb = draw_boxes(thumb, item["instances"], scale=height / item["truth"].shape[0], labels=False)
            canvas.paste(Image.fromarray(thumb), (gap + column * (cell + gap), top + label))
    return np.asarray(canvas)


def write_outputs(report: dict, out: Path, show_boxes: bool) -> None:
    from gimp_colorize.imageio import atomic_write

    images = report.pop("images_for_sheets")
    files = {"instance_report.json": json.dumps(report_files.json_ready(report), indent=2, allow_nan=False).encode() + b"\n",
             "instance_report.md": markdown(report).encode(),
             "instance_sheet.png": report_files.png_bytes(sheet(images))}
    if show_boxes:
        files.update({f"boxes/{Path(i['name']).stem}.png": report_files.png_bytes(draw_boxes(i["gray"], i["instances"]))
                      for i in images})
    try:
        (out / "boxes" if show_boxes else out).mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            atomic_write(out / name, data)
    except OSError as exc:
        raise plain.BadRequest(f"cannot write to {out}: {exc.strerror or exc}") from None


def run(args) -> dict:
    report = evaluate_instance(args)
    write_outputs(report, args.out, args.show_boxes)
    print(markdown(report))
    return report
