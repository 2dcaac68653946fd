"""`gimp-colorize` command line: colorize, models, serve, start, stop, status.

Heavy modules (numpy, onnxruntime, uvicorn) are imported inside the commands so that `--help` and
`status` stay fast. User errors print one line and exit 1; `status` exits 3 when no daemon runs and 4
when its process lives but does not answer. SIGTERM is handled like Ctrl-C (exit 143 instead of 130):
an output being written is removed, never left as a hidden temporary.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import time
from pathlib import Path

from . import __version__
from .contract import MODES
from .errors import ColorizeError
from .options import DEFAULT_MAX_INSTANCES, DEFAULT_SCORE_THRESHOLD

EXIT_FAILED = 1
EXIT_NOT_RUNNING = 3  # like `systemctl status`
EXIT_NOT_ANSWERING = 4  # the daemon's process lives but /v1/health does not answer (hung or still starting)
EXIT_INTERRUPTED = 130  # Ctrl-C
EXIT_TERMINATED = 143  # SIGTERM

STATUS_EPILOG = (
    "exit status: 0 the daemon runs and answers; 3 no daemon runs; "
    f"{EXIT_NOT_ANSWERING} its process lives but does not answer (hung, or still starting: see its log)"
)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt so that cleanup (finally blocks) runs."""


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
    except Terminated:
        print("gimp-colorize: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("gimp-colorize: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


@contextlib.contextmanager
def sigterm_like_sigint():
    """Without this SIGTERM kills the process at once, leaving the output being written as a .part file."""
    if not hasattr(signal, "SIGTERM") or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
    colorize.add_argument("--vibrancy", default="1.0", metavar="V",
                          help="colour strength from 0 (gray) to 2; 1 (the default) is the model's own colours")
    colorize.add_argument("--temperature", metavar="T",
                          help="expert: annealed-mean temperature from 0.01 to 5 (default: the model's)")
    colorize.add_argument("--samples", default="1", metavar="N", help="diverse mode: number of results per image (1-16)")
    colorize.add_argument("--seed", metavar="S", help="diverse mode: random seed (sample i uses S + i - 1)")
    guided = colorize.add_argument_group("guidance (one input image; needs a guided model)")
    guided.add_argument("--hints", type=Path, metavar="HINTS.png",
                        help="RGBA image of the input's size: opaque pixels are colour hints, their colour is wanted")
    guided.add_argument("--points", type=Path, metavar="POINTS.json",
                        help='colour points: [{"x": 10, "y": 20, "r": 200, "g": 30, "b": 30, "size": 5}, ...]')
    guided.add_argument("--reference", type=Path, metavar="PHOTO", help="a colour photo whose colours to follow")
    guided.add_argument("--reference-strength", default="1.0", metavar="S", help="0 to 1 (default 1)")
    instance = colorize.add_argument_group("instance mode (--mode instance)")
    instance.add_argument("--boxes", action="append", metavar="SOURCE|X,Y,W,H;...",
                          help="where the objects are: auto (the detector, the default), selection (your boxes and "
                               "--selection only), both; or a list of boxes in pixels, e.g. 10,20,100,80;200,40,60,60 "
                               "(your boxes only). Give it twice to combine, e.g. --boxes both --boxes 10,20,100,80")
    instance.add_argument("--selection", type=Path, metavar="MASK.png",
                          help="a mask of the input's size: each connected white region is one object")
    instance.add_argument("--score-threshold", default=str(DEFAULT_SCORE_THRESHOLD), metavar="T",
                          help=f"lowest detector confidence used, 0.05 to 1 (default {DEFAULT_SCORE_THRESHOLD})")
    instance.add_argument("--max-instances", default=str(DEFAULT_MAX_INSTANCES), metavar="K",
                          help=f"at most this many objects, 1 to 16 (default {DEFAULT_MAX_INSTANCES})")
    instance.add_argument("--instance-layers", action="store_true",
                          help="also write each object's own colorization as NAME-instance-K.png, its box "
                               "(feathered) as the alpha channel")
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
            "--queue-size",
            type=_positive_int,
            metavar="N",
            help="jobs that may wait beyond the running one(s) before submissions get 503 busy "
            "(default 16; config.json key queue_size)",
        )
        sub.add_argument(
            "--allow-remote",
            action="store_true",
            help="allow a non-loopback --host (other machines can then reach the daemon; token required)",
        )
        _add_device(sub)
        sub.set_defaults(command=command)

    commands.add_parser("stop", help="stop the background daemon").set_defaults(command=run_stop)
    commands.add_parser(
        "status", help="show whether the daemon runs, where, and where its log is", epilog=STATUS_EPILOG
    ).set_defaults(command=run_status)
    parser.epilog = (
        f"exit status: 0 success; {EXIT_FAILED} an error (colorize: any input failed); "
        f"{EXIT_INTERRUPTED} Ctrl-C; {EXIT_TERMINATED} SIGTERM; status also exits {EXIT_NOT_RUNNING} when no daemon "
        f"runs and {EXIT_NOT_ANSWERING} when its process lives but does not answer"
    )
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", default="auto", choices=["auto", "cpu", "gpu"], help="auto tries CUDA then CPU (default auto)"
    )


def _settings(args: argparse.Namespace):
    from .config import load_settings

    return load_settings(
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        queue_size=getattr(args, "queue_size", None),
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
    if not state["running"]:
        return EXIT_NOT_RUNNING
    return 0 if state["healthy"] else EXIT_NOT_ANSWERING


# -- models


def run_models(args: argparse.Namespace) -> int:
    from .probe import probe_model
    from .registry import Registry

    settings = _settings(args)
    registry = Registry.for_settings(settings, probe=probe_model)
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

    files, missing = collect_inputs(args.inputs)
    if not files and not missing:
        raise _usage("no image files found in the given inputs (looked for .png .jpg .jpeg .tif .tiff)")
    settings = load_settings()
    options = colorize_options(args, files, settings.max_pixels)
    engine = build_engine(settings, args.device)
    engine.resolve(options)  # bad options, "no trained model installed" before any file
    args.output.mkdir(parents=True, exist_ok=True)
    _remove_stale_parts(args.output)
    failures = [(path, "no such file or folder") for path in missing]
    for path, reason in failures:
        print(f"gimp-colorize: {path}: {reason}", file=sys.stderr)
    with sigterm_like_sigint():
        failures += _colorize_files(engine, files, args.output, options, settings.max_pixels)
    if failures:
        print(f"gimp-colorize: {len(failures)} of {len(files) + len(missing)} input(s) failed", file=sys.stderr)
    return EXIT_FAILED if failures else 0


def colorize_options(args: argparse.Namespace, files: list[Path], max_pixels: int):
    """ColorizeOptions from the command line, validated by the same rules as the HTTP API (options.py)."""
    from . import options as opts

    local = args.hints is not None or args.points is not None
    if local and len(files) != 1:
        raise _usage("--hints and --points name pixels of one image: give exactly one input file with them")
    if args.selection is not None and len(files) != 1:
        raise _usage("--selection is a mask of one image: give exactly one input file with it")
    guidance = opts.Guidance(
        hint_image=_read_hint_image(args.hints, max_pixels) if args.hints else None,
        points=_read_points(args.points) if args.points else (),
        reference=_read_reference(args.reference, max_pixels) if args.reference else None,
        reference_strength=opts.check_number("--reference-strength", args.reference_strength, opts.REFERENCE_STRENGTH),
    )
    options = opts.ColorizeOptions(
        mode=args.mode, model=args.model,
        temperature=opts.check_number("--temperature", args.temperature, opts.TEMPERATURE) if args.temperature else None,
        vibrancy=opts.check_number("--vibrancy", args.vibrancy, opts.VIBRANCY),
        samples=opts.check_number("--samples", args.samples, opts.SAMPLES, integer=True),
        seed=opts.check_number("--seed", args.seed, opts.SEED, integer=True) if args.seed is not None else None,
        guidance=guidance,
        instance=instance_options(args, max_pixels),
    )
    options.validate()
    return options


def instance_options(args: argparse.Namespace, max_pixels: int):
    """InstanceOptions from --boxes (a source and/or box lists), --selection and the detector settings."""
    from . import options as opts

    sources = [value for value in args.boxes or [] if value.strip() in opts.BOX_SOURCES]
    lists = [value for value in args.boxes or [] if value.strip() not in opts.BOX_SOURCES]
    if len(sources) > 1:
        raise _usage(f"--boxes names more than one source ({', '.join(sources)}): give one of auto, selection, both")
    user_boxes = tuple(box for text in lists for box in opts.parse_boxes(text))
    if lists and not user_boxes:
        raise _usage("--boxes: no box in the list; write boxes as X,Y,WIDTH,HEIGHT separated by ';'")
    given = bool(user_boxes) or args.selection is not None
    source = sources[0].strip() if sources else ("selection" if given else "auto")
    return opts.InstanceOptions(
        boxes=source, user_boxes=user_boxes,
        selection=_read_selection(args.selection, max_pixels) if args.selection else None,
        score_threshold=opts.check_number("--score-threshold", args.score_threshold, opts.SCORE_THRESHOLD),
        max_instances=opts.check_number("--max-instances", args.max_instances, opts.MAX_INSTANCES, integer=True),
        instance_layers=args.instance_layers,
    )


def _read_selection(path: Path, max_pixels: int):
    """A selection mask file: its gray value (or its alpha, for a transparent image) says what is selected."""
    from .imageio import read_image

    pixels = read_image(path, max_pixels)
    if pixels.ndim == 3:
        pixels = pixels[..., -1] if pixels.shape[2] in (2, 4) else pixels[..., 0]
    return pixels


def _read_hint_image(path: Path, max_pixels: int):
    from .imageio import read_image

    pixels = read_image(path, max_pixels)
    if pixels.ndim != 3 or pixels.shape[2] != 4:
        raise _usage(f"{path}: the hint image needs transparency (RGBA): opaque pixels mark the hints")
    return pixels


def _read_points(path: Path):
    import json

    from .options import parse_points

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _usage(f"{path}: cannot read the colour points ({exc})") from None
    return parse_points(data)


def _read_reference(path: Path, max_pixels: int):
    from .imageio import read_image

    return read_image(path, max_pixels)

def _remove_stale_parts(outdir: Path) -> None:
    """Temporaries a killed earlier run left in the output folder (only our own naming, only old ones)."""
    from .imageio import STALE_PART_AGE_S, remove_stale_parts

    removed = remove_stale_parts(outdir, STALE_PART_AGE_S)
    if removed:
        print(f"gimp-colorize: removed {len(removed)} unfinished output(s) left by an earlier run", file=sys.stderr)


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
    """Colorize one file into OUTDIR/NAME.png (several layers, e.g. diverse samples: NAME-1.png, NAME-2.png, ...)."""
    from .errors import BadRequest
    from .imageio import atomic_write, encode_png, read_image

    image = read_image(path, max_pixels)
    result = engine.colorize(image, options)
    del image
    targets = [outdir / name for name in output_names(path.stem, result.layers)]
    clash = [t for t in targets if t in written]
    if clash:
        raise BadRequest(f"{clash[0].name} was already written for another input with the same name; rename one")
    for layer, target in zip(result.layers, targets, strict=True):
        atomic_write(target, encode_png(_with_mask(layer)))
        written.add(target)
    if "instances" in result.details:
        print(f"gimp-colorize: {path.name}: {describe_instances(result.details['instances'])}", file=sys.stderr)
    return targets


def output_names(stem: str, layers) -> list[str]:
    """NAME.png for one result, NAME-1.png ... for several (diverse); instance layers NAME-instance-K.png."""
    main = [layer for layer in layers if layer.group != "Instances"]
    names = iter([f"{stem}.png"] if len(main) == 1 else [f"{stem}-{i}.png" for i in range(1, len(main) + 1)])
    numbers = iter(range(1, len(layers) + 1))
    return [f"{stem}-instance-{next(numbers)}.png" if layer.group == "Instances" else next(names) for layer in layers]


def _with_mask(layer):
    """The layer's pixels, with its mask as an alpha channel when it has one (at the pixels' bit depth)."""
    import numpy as np

    if layer.mask is None:
        return layer.pixels
    if layer.pixels.dtype == np.uint8:
        alpha = layer.mask
    elif layer.pixels.dtype == np.uint16:
        alpha = layer.mask.astype(np.uint16) * 257
    else:
        alpha = layer.mask.astype(layer.pixels.dtype) / 255
    return np.dstack([layer.pixels, alpha])


def describe_instances(instances: list[dict]) -> str:
    if not instances:
        return "no objects found (the result is the full-image colorization)"
    parts = []
    for item in instances:
        what = item["label"] or item["source"]
        score = f" {item['score']:.2f}" if item["score"] is not None else ""
        parts.append(f"{what}{score} at {','.join(str(v) for v in item['box'])}")
    return f"{len(instances)} object(s): " + "; ".join(parts)


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
