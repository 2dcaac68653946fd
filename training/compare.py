"""`python -m training.compare`: the seed comparisons (loss functions; training colour space), rerun end to end.

For each variant: `python -m training train` with the same data, seed and step budget, `python -m export`
of its best.pt (lowest loss on the pool's val split, as for the shipped model; with the parity check), then `python -m training evaluate` on the dev set. Finally the table of every
variant's devset numbers is written to OUT/comparisons.md and OUT/comparisons.json. Stages whose output
already exists are skipped, so an interrupted comparison can be continued with the same command.

    python -m training.compare --data POOL --devset DEVSET --out runs/compare --steps 300
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# name -> (question it answers, extra `training train` flags)
VARIANTS = {
    "classification-lab": ("(a), (b)", ["--loss", "classification", "--colour-space", "lab"]),
    "mse-lab": ("(a)", ["--loss", "mse", "--colour-space", "lab"]),
    "smoothl1-lab": ("(a)", ["--loss", "smoothl1", "--colour-space", "lab"]),
    "classification-yuv": ("(b)", ["--loss", "classification", "--colour-space", "yuv"]),
}
METRICS = (("auc_raw", "AuC raw %", 2), ("auc_rebalanced", "AuC rebal. %", 2), ("psnr", "PSNR dB", 2),
           ("colourfulness_ratio", "colourful. ratio", 3), ("top1_agreement", "top-1 agr.", 3))


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m training.compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="training pool (same for every variant)")
    parser.add_argument("--devset", required=True, help="colour photos to evaluate on")
    parser.add_argument("--out", required=True, help="folder for one run folder per variant and the tables")
    parser.add_argument("--steps", type=int, default=300, help="training steps per variant (the equal budget)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-args", default="", help="extra flags for every training run, e.g. '--crop-size 128'")
    return parser.parse_args(argv)


def run(command: list[str], log: Path) -> None:
    print("$ " + " ".join(command), file=sys.stderr)
    with open(log, "a") as fh:
        fh.write("$ " + " ".join(command) + "\n")
        fh.flush()
        result = subprocess.run(command, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if result.returncode != 0:
        raise RuntimeError(f"command failed ({result.returncode}), see {log}: {' '.join(command)}")


def variant_commands(name: str, args) -> dict[str, list[str]]:
    folder = Path(args.out) / name
    python = sys.executable
    train = [python, "-m", "training", "train", "--data", args.data, "--out", str(folder), "--max-steps", str(args.steps),
             "--seed", str(args.seed), "--threads", str(args.threads), "--quiet", *VARIANTS[name][1], *args.train_args.split()]
    export = [python, "-m", "export", str(folder / "best.pt"), "-o", str(folder / "model.onnx"), "--name", f"compare-{name}",
              "--parity-images", args.devset]
    evaluate = [python, "-m", "training", "evaluate", "--model", str(folder / "model.onnx"), "--data", args.devset,
                "--out", str(folder / "eval")]
    return {"train": train, "export": export, "evaluate": evaluate}


def run_variant(name: str, args) -> dict:
    folder = Path(args.out) / name
    folder.mkdir(parents=True, exist_ok=True)
    commands = variant_commands(name, args)
    log = folder / "compare.log"
    outputs = {"train": folder / "final.pt", "export": folder / "model.onnx", "evaluate": folder / "eval" / "report.json"}
    for stage in ("train", "export", "evaluate"):
        if not outputs[stage].exists():
            run(commands[stage], log)
    report = json.loads(outputs["evaluate"].read_text())
    train_log = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
    return {"name": name, "answers": VARIANTS[name][0], "summary": report["summary"],
            "steps": max(e["step"] for e in train_log), "train_minutes": max(e["elapsed_s"] for e in train_log) / 60,
            "commands": {k: " ".join(v) for k, v in commands.items()}}


def markdown_table(rows: list[dict]) -> str:
    header = "| variant | question | steps | train min | " + " | ".join(label for _, label, _ in METRICS) + " |"
    lines = [header, "|" + " --- |" * 4 + " ---: |" * len(METRICS)]
    gray = rows[0]["summary"]["gray"]
    for row in rows:
        values = " | ".join(f"{row['summary']['ours'][key]:.{digits}f}" for key, _, digits in METRICS)
        lines.append(f"| {row['name']} | {row['answers']} | {row['steps']} | {row['train_minutes']:.1f} | {values} |")
    values = " | ".join(f"{gray[key]:.{digits}f}" for key, _, digits in METRICS)
    lines.append(f"| gray input (baseline) | | | | {values} |")
    return "\n".join(lines) + "\n"


def main(argv=None, command: str = "compare") -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()
    try:
        rows = [run_variant(name, args) for name in args.variants]
    except (RuntimeError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    (out / "comparisons.json").write_text(json.dumps(rows, indent=2) + "\n")
    (out / "comparisons.md").write_text(markdown_table(rows))
    print(markdown_table(rows))
    print(f"done in {(time.monotonic() - started) / 60:.1f} min", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
