"""Screenshots of the plug-in in GIMP 3's real window, as a person sees it: the dialog, the progress while
the service starts and colorizes, the result, the colour hints workflow and a diverse result. Not part of
the test suite (it takes a few minutes); run it after changing what users see, look at the pictures, and
keep the best:

    python -m tests.gimp3.screenshots OUT_DIR [--docs]     # --docs also updates docs/images/

It runs in the cached GIMP test root (tests/gimp3/harness.py) with no daemon running, so the first run's
auto-start shows too. The photo is the bundled sample (backend/gimp_colorize/samples/camera.png, CC0),
enlarged so that the progress bar stays up long enough to be seen. Every shot uses the shipped models, as
a user who just ran install.py has them: full-mnv2 for the plain result, guided-mnv2 (the guided default)
for the colour hints, diverse-mnv2 for the variants.

The painting is done by the batch script inside GIMP when the driver asks (a person would use a brush):
it fills a few rectangles of the Color hints layer with colours, as the bucket fill would.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from PIL import Image

from tests.gimp3 import desktop, harness

SAMPLE = harness.REPO / "backend" / "gimp_colorize" / "samples" / "camera.png"
DOCS_IMAGES = harness.REPO / "docs" / "images"
FOR_DOCS = {"dialog": "gimp3-dialog.png", "starting": "gimp3-progress.png", "result": "gimp3-result.png",
            "hints-painted": "gimp3-hints-layer.png", "hints-dialog": "gimp3-hints-dialog.png",
            "hints-result": "gimp3-hints-result.png", "diverse-result": "gimp3-diverse-result.png"}
TITLE = "Colorize Photo (AI)"
HINTS_EYE = (901, 170)  # the Color hints layer's eye in the Layers dock (the top row)
PHOTO_SIZE = (3072, 2304)
# (x, y, w, h, colour) in the photo: the coat, the sky, the grass, a gray dot on the camera
DOTS = [(1200, 1000, 160, 160, "#7a2a24"), (400, 300, 220, 220, "#4a78c0"), (1900, 1900, 260, 160, "#5a8a3a"),
        (1700, 650, 90, 90, "#808080")]

BATCH = """
images = []
for path in PARAMS["images"]:
    images.append(load_image(path))
    Gimp.Display.new(images[-1])
print("GC-IMAGES-OPEN", flush=True)


def hints_layer(image):
    found = [layer for layer in image.get_layers() if layer.get_parasite("gimp-colorize-hints") is not None]
    return found[0] if found else None


deadline = time.monotonic() + PARAMS["within"]
while not os.path.exists(PARAMS["paint_when"]) and time.monotonic() < deadline:
    time.sleep(0.2)
layer = hints_layer(images[0])
if layer is not None:
    Gimp.context_push()
    for x, y, w, h, colour in PARAMS["dots"]:
        images[0].select_rectangle(Gimp.ChannelOps.REPLACE, x, y, w, h)
        Gimp.context_set_foreground(Gegl.Color.new(colour))
        layer.edit_fill(Gimp.FillType.FOREGROUND)
    Gimp.Selection.none(images[0])
    Gimp.context_pop()
    Gimp.displays_flush()
write_atomically(PARAMS["painted"], b"done" if layer is not None else b"no hints layer")
while not os.path.exists(PARAMS["report_when"]) and time.monotonic() < deadline:
    time.sleep(0.2)
for image in images:
    emit({"layers": layer_stack(image), "base_type": image.get_base_type().value_nick})
"""


def open_by_search(words: str, window: str) -> list:
    return [["window", " GIMP", 10], ["keys", "slash"], ["window", "Search Actions", 10], ["type", words],
            ["sleep", 1.0], ["keys", "Return"], ["window", window, 60], ["sleep", 1.0]]


def plan(errors: str, session: Path) -> list:
    paint, painted, report = session / "paint-now", session / "painted", session / "report-now"
    shots = [["window", " GIMP", 120], ["dismiss", "Welcome", 5], ["window", " GIMP", 10], ["sleep", 2],
             ["resize", " GIMP", 1280, 900], ["sleep", 1], ["keys", "ctrl+l"], ["sleep", 1.5],  # the Layers dock
             ["drag", 1045, 462, 880, 462], ["sleep", 1], ["keys", "shift+ctrl+j"], ["sleep", 1],  # wider; fit
             ["keys", "slash"], ["window", "Search Actions", 10], ["type", "Colorize Photo"], ["sleep", 1.0],
             ["shot", "search", "Search Actions"], ["keys", "Return"], ["window", TITLE, 60], ["sleep", 1.0],
             ["shot", "dialog", TITLE], ["keys", "alt+d", "space"], ["sleep", 0.8], ["shot", "model-menu"],
             ["keys", "Escape"], ["keys", "alt+m", "space"], ["sleep", 0.8], ["shot", "mode-menu"], ["keys", "Escape"],
             ["sleep", 0.5], ["shot", "dialog-again", TITLE],
             ["keys", "alt+o"], ["sleep", 0.3], ["shot", "starting", " GIMP"]]
    for number in range(8):
        shots += [["sleep", 1.0], ["shot", "progress-%02d" % number, " GIMP"]]
    shots += [["wait_text", errors, "gimp-colorize timings:", 1, 180], ["sleep", 3], ["shot", "result", " GIMP"],
              ["shot", "result-screen"]]
    # colour hints: add the layer from the menu, "paint" on it, colorize with the hints
    shots += [["window", " GIMP", 10], ["keys", "slash"], ["window", "Search Actions", 10],
              ["type", "Add Color Hints"], ["sleep", 1.0], ["keys", "Return"], ["sleep", 2],
              ["shot", "hints-layer", " GIMP"], ["touch", str(paint)], ["wait_file", str(painted), 60],
              ["sleep", 2], ["shot", "hints-painted", " GIMP"]]
    shots += open_by_search("Colorize Photo", TITLE) + [
        ["shot", "hints-dialog", TITLE], ["keys", "alt+o"],
        ["wait_text", errors, "gimp-colorize timings:", 2, 180], ["sleep", 3], ["shot", "hints-result-dots", " GIMP"],
        ["click", *HINTS_EYE], ["sleep", 1.5], ["shot", "hints-result", " GIMP"]]  # the dots hidden
    # several variants: Color hints set to None (so the samples show their own palettes), mode Several variants, 4
    shots += open_by_search("Colorize Photo", TITLE) + [
        ["keys", "alt+t", "Up"], ["sleep", 0.5], ["keys", "alt+m", "Down", "Down"], ["sleep", 0.8],
        ["keys", "alt+n", "ctrl+a"], ["type", "4"], ["keys", "Tab"], ["sleep", 0.8],
        ["shot", "diverse-dialog", TITLE], ["keys", "alt+o"],
        ["wait_text", errors, "gimp-colorize timings:", 3, 180], ["sleep", 3], ["shot", "diverse-result", " GIMP"],
        ["touch", str(report)], ["sleep", 3], ["windows"]]
    return shots


def take(out_dir: Path) -> Path:
    root = harness.provision_gimp_root()
    home = Path(tempfile.mkdtemp(prefix="gimp-colorize-screens-"))
    sandbox = harness.make_sandbox(root, home)
    installed = harness.install_plugin(sandbox)
    if installed.returncode != 0:
        sys.exit(installed.stdout + installed.stderr)
    photo = sandbox.work / "camera.png"
    Image.open(SAMPLE).convert("L").resize(PHOTO_SIZE, Image.BICUBIC).save(photo, compress_level=1)
    session = desktop.new_session(sandbox)
    params = {"paint_when": str(session / "paint-now"), "painted": str(session / "painted"),
              "report_when": str(session / "report-now"), "within": 900, "dots": DOTS}
    try:
        run = desktop.run_desktop(sandbox, plan(str(session / "gimp.err"), session), [photo], out_dir,
                                  env={"GIMP_COLORIZE_TIMINGS": "1"}, session=session, host_visible=True,
                                  batch=BATCH, params=params, timeout=1200)
    finally:
        harness.stop_daemon_by_pid_file(sandbox)
    print(run.summary()[:6000])
    print("layers:", run.facts)
    shutil.rmtree(home, ignore_errors=True)
    return out_dir


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--docs", action="store_true", help="copy the chosen screenshots into docs/images")
    args = parser.parse_args(argv)
    out = take(args.out_dir)
    print("screenshots in %s: %s" % (out, ", ".join(sorted(p.name for p in out.glob("*.png")))))
    if args.docs:
        copy_for_docs(out)
    return 0


def copy_for_docs(out: Path) -> None:
    """The chosen shots into docs/images; whole windows in 256 colours (a third of the bytes, still readable)."""
    DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
    for shot, name in FOR_DOCS.items():
        picture = Image.open(out / (shot + ".png")).convert("RGB")
        if picture.width * picture.height > 600 * 600:
            picture = picture.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)
        picture.save(DOCS_IMAGES / name, optimize=True)
    print("updated %s" % ", ".join(str(DOCS_IMAGES / name) for name in FOR_DOCS.values()))


if __name__ == "__main__":
    sys.exit(main())
