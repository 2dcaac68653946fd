"""`gimp-colorize` command line: colorize, models, serve, start, stop, status.

Heavy modules (numpy, onnxruntime, uvicorn) are imported inside the commands so that `--help` and
`status` stay fast. User errors print one line and exit 1; `status` exits 3 when no daemon runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import __version__
from .contract import MODES
from .errors import ColorizeError

EXIT_FAILED = 1
EXIT_NOT_RUNNING = 3  # like `systemctl status`


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.command(args) or 0
    except ColorizeError as exc:
        print(f"gimp-colorize: error: {exc.message}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:  # e.g. an output folder that cannot be created
        print(f"gimp-colorize: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("gimp-colorize: interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gimp-colorize", description="Automatic colorization of black-and-white photos."
    )
    parser.add_argument("--version", action="version", version=f"gimp-colorize {__version__}")
    commands = parser.add_subparsers(dest="name", required=True, metavar="COMMAND")

    colorize = commands.add_parser("colorize", help="colorize image files or folders in-process (no daemon needed)")
    colorize.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image files or folders of images")
    colorize.add_argument("-o", "--output", required=True, type=Path, metavar="OUTDIR", help="output folder")
    colorize.add_argument("--mode", default="full", choices=MODES)
    colorize.add_argument("--model", help="model name (default: the installed default for the mode)")
    colorize.add_argument("--temperature", type=float, help="annealed-mean temperature (lower = more vivid)")
    colorize.add_argument("--samples", type=int, default=1, help="diverse mode: number of results per image")
    colorize.add_argument("--seed", type=int, help="random seed for diverse mode")
    _add_device(colorize)
    colorize.set_defaults(command=run_colorize)

    models = commands.add_parser("models", help="list and verify the installed models")
    models.set_defaults(command=run_models)

    for name, help_text, command in (
        ("serve", "run the daemon in the foreground", run_serve),
        ("start", "start the daemon in the background", run_start),
    ):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--host", help="address to listen on (default 127.0.0.1)")
        sub.add_argument("--port", type=int, help="port to listen on (default 48765)")
        sub.add_argument(
            "--allow-remote",
            action="store_true",
            help="allow a non-loopback --host (other machines can then reach the daemon; token required)",
        )
        _add_device(sub)
        sub.set_defaults(command=command)

    commands.add_parser("stop", help="stop the background daemon").set_defaults(command=run_stop)
    commands.add_parser("status", help="show whether the daemon runs, where, and where its log is").set_defaults(
        command=run_status
    )
    return parser


def _add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", default="auto", choices=["auto", "cpu", "gpu"], help="auto tries CUDA then CPU (default auto)"
    )


def _settings(args: argparse.Namespace):
    from .config import load_settings

    return load_settings(
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        allow_remote=getattr(args, "allow_remote", None) or None,
    )


# -- daemon commands


def run_serve(args: argparse.Namespace) -> int:
    from .daemon import serve

    serve(_settings(args), device=args.device)
    return 0


def run_start(args: argparse.Namespace) -> int:
    from .daemon import start

    settings = _settings(args)
    info = start(settings, device=args.device)
    print(f"gimp-colorize daemon started (pid {info.pid}) at {info.url}")
    print(f"log: {settings.log_file}")
    return 0


def run_stop(args: argparse.Namespace) -> int:
    from .daemon import stop

    info = stop(_settings(args))
    print(f"stopped the daemon (pid {info.pid})" if info else "the daemon is not running")
    return 0


def run_status(args: argparse.Namespace) -> int:
    from .daemon import status

    state = status(_settings(args))
    if not state["running"]:
        print("daemon: not running")
    else:
        print(f"daemon: running (pid {state['pid']})" + ("" if state["healthy"] else ", NOT answering"))
        print(f"url: {state['url']}")
        print(f"version: {state['version'] or 'unknown'}")
        print(f"providers: {', '.join(state['providers'] or []) or 'unknown'}")
        print(f"models loaded: {', '.join(state['models_loaded'] or []) or 'none yet'}")
    print(f"log: {state['log_file']}")
    print(f"token: {state['token_file']}")
    return 0 if state["running"] else EXIT_NOT_RUNNING


# -- models


def run_models(args: argparse.Namespace) -> int:
    from .registry import Registry

    settings = _settings(args)
    registry = Registry.for_settings(settings)
    models, rejected = registry.models(), registry.rejected()
    print(f"model folders: {settings.shipped_models_dir} (shipped), {settings.user_models_dir} (user)")
    if not models:
        print("no trained model installed")
    for model in models:
        flags = ", ".join(
            filter(None, ["default" if model.default else "", "verified" if model.verified else "UNVERIFIED"])
        )
        print(f"  {model.name:24} {model.task:9} v{model.version:8} {flags:18} {model.path}")
    for rejection in rejected:
        print(f"  rejected {rejection.file}: {rejection.reason}")
    return EXIT_FAILED if rejected else 0


# -- colorize


def run_colorize(args: argparse.Namespace) -> int:
    from .config import load_settings
    from .daemon import build_engine
    from .engine import ColorizeOptions

    if args.samples < 1:
        raise _usage("--samples must be at least 1")
    files, missing = collect_inputs(args.inputs)
    if not files and not missing:
        raise _usage("no image files found in the given inputs (looked for .png .jpg .jpeg .tif .tiff)")
    settings = load_settings()
    engine = build_engine(settings, args.device)
    options = ColorizeOptions(
        mode=args.mode, model=args.model, temperature=args.temperature, samples=args.samples, seed=args.seed
    )
    engine.registry.resolve(options.mode, options.model)  # "no trained model installed" before any file
    args.output.mkdir(parents=True, exist_ok=True)
    failures = [(path, "no such file or folder") for path in missing]
    for path, reason in failures:
        print(f"gimp-colorize: {path}: {reason}", file=sys.stderr)
    failures += _colorize_files(engine, files, args.output, options, settings.max_pixels)
    if failures:
        print(f"gimp-colorize: {len(failures)} of {len(files) + len(missing)} input(s) failed", file=sys.stderr)
    return EXIT_FAILED if failures else 0


def _usage(message: str) -> ColorizeError:
    from .errors import BadRequest

    return BadRequest(message)


def collect_inputs(inputs: list[Path]) -> tuple[list[Path], list[Path]]:
    """Image files named directly or found (not recursively) in named folders; and the inputs that do not exist."""
    from .imageio import IMAGE_SUFFIXES

    files, missing = [], []
    for path in inputs:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            files.append(path)
        else:
            missing.append(path)
    return files, missing


def _colorize_files(engine, files: list[Path], outdir: Path, options, max_pixels: int) -> list[tuple[Path, str]]:
    progress = Progress(len(files))
    failures, written = [], set()
    for number, path in enumerate(files, 1):
        progress.begin(number, path.name)
        started = time.monotonic()
        try:
            outputs = colorize_file(engine, path, outdir, options, max_pixels, written)
        except ColorizeError as exc:
            failures.append((path, exc.message))
            progress.fail(path, exc.message)
        except OSError as exc:  # the output could not be written (disk full, permissions)
            failures.append((path, f"cannot write the result: {exc.strerror or exc}"))
            progress.fail(path, failures[-1][1])
        except Exception as exc:  # e.g. an onnxruntime failure on one odd image: report it, go on with the rest
            failures.append((path, f"internal error: {type(exc).__name__}: {exc}"))
            progress.fail(path, failures[-1][1])
        else:
            progress.done(outputs, time.monotonic() - started)
    progress.finish()
    return failures


def colorize_file(engine, path: Path, outdir: Path, options, max_pixels: int, written: set) -> list[Path]:
    """Colorize one file into OUTDIR/NAME.png (several layers: NAME_1.png, NAME_2.png, ...)."""
    from .errors import BadRequest
    from .imageio import atomic_write, encode_png, read_image

    image = read_image(path, max_pixels)
    result = engine.colorize(image, options)
    del image
    layers = result.layers
    names = [f"{path.stem}.png"] if len(layers) == 1 else [f"{path.stem}_{i}.png" for i in range(1, len(layers) + 1)]
    targets = [outdir / name for name in names]
    clash = [t for t in targets if t in written]
    if clash:
        raise BadRequest(f"{clash[0].name} was already written for another input with the same name; rename one")
    for layer, target in zip(layers, targets, strict=True):
        atomic_write(target, encode_png(layer.pixels))
        written.add(target)
    return targets


class Progress:
    """A one-line bar on a terminal, one line per file otherwise (logs, CI); always on stderr."""

    def __init__(self, total: int, stream=None):
        self.total = total
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() and total > 1

    def begin(self, number: int, name: str) -> None:
        self.number = number
        if self.live:
            filled = int(20 * (number - 1) / self.total)
            self._write(f"\r[{'#' * filled}{'.' * (20 - filled)}] {number}/{self.total} {name[:40]:40}")

    def done(self, outputs: list[Path], seconds: float) -> None:
        if not self.live:
            self._write(f"[{self.number}/{self.total}] {', '.join(str(p) for p in outputs)} ({seconds:.1f} s)\n")

    def fail(self, path: Path, message: str) -> None:
        self._write(("\n" if self.live else "") + f"[{self.number}/{self.total}] FAILED {path}: {message}\n")

    def finish(self) -> None:
        if self.live:
            self._write(f"\r[{'#' * 20}] {self.total}/{self.total} done{' ' * 40}\n")

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
