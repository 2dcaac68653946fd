"""`python -m training COMMAND ...`: one entry point, each command in its own module, imported lazily."""

import importlib
import sys

COMMANDS = {
    "build-dataset": ("training.dataset_builder", "assemble the training pool from Debian packages / user folders"),
    "devset": ("training.dataset_builder", "extract the development evaluation photos"),
    "detect-boxes": ("training.pseudo_boxes", "add the detector's boxes of every pool photo to the pool manifest"),
    "train": ("training.train", "train a colorization model"),
    "diverse": ("training.diverse", "learn palettes and p(palette | gray) for diverse mode from a guided model"),
    "train-fusion": ("training.train_fusion", "train instance mode's fusion module (both networks frozen)"),
    "evaluate": ("training.evaluate", "evaluate an ONNX model on a folder of colour photos"),
    "compare": ("training.compare", "rerun the loss / colour-space comparisons (docs/COMPARISONS.md)"),
}


def usage() -> str:
    lines = ["usage: python -m training COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<14} {help_text}" for name, (_, help_text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(usage(), file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    module = importlib.import_module(COMMANDS[command][0])
    return int(module.main(rest, command=command) or 0)


if __name__ == "__main__":
    sys.exit(main())
