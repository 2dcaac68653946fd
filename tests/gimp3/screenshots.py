"""Screenshots of the plug-in in GIMP 3's real window, as a person sees it: the dialog, the progress while
the service starts and colorizes, and the result. Not part of the test suite (it takes about a minute and
uses the shipped model); run it after changing what users see, look at the pictures, and keep the best:

    python -m tests.gimp3.screenshots OUT_DIR [--docs]     # --docs also updates docs/images/

It runs in the cached GIMP test root (tests/gimp3/harness.py) with no daemon running, so the first run's
auto-start shows too; the photo is the bundled sample (backend/gimp_colorize/samples/camera.png, CC0),
enlarged so that the progress bar stays up long enough to be seen.
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
FOR_DOCS = {"dialog": "gimp3-dialog.png", "colorizing": "gimp3-progress.png", "result": "gimp3-result.png"}
# The progress shots: the first run starts the service, then the stages follow each other every second or so.
TITLE = "Colorize Photo (AI)"


def plan(errors: str) -> list:
    shots = [["window", " GIMP", 120], ["dismiss", "Welcome", 5], ["window", " GIMP", 10], ["sleep", 2],
             ["keys", "slash"], ["window", "Search Actions", 10], ["type", "Colorize Photo"], ["sleep", 1.0],
             ["shot", "search", "Search Actions"], ["keys", "Return"], ["window", TITLE, 60], ["sleep", 1.0],
             ["shot", "dialog", TITLE], ["keys", "alt+d", "space"], ["sleep", 0.8], ["shot", "model-menu"],
             ["keys", "Escape"], ["keys", "alt+m", "space"], ["sleep", 0.8], ["shot", "mode-menu"], ["keys", "Escape"],
             ["sleep", 0.5], ["shot", "dialog-again", TITLE],
             ["keys", "alt+o"], ["sleep", 0.3], ["shot", "starting", " GIMP"]]
    for number in range(12):
        shots += [["sleep", 1.0], ["shot", "progress-%02d" % number, " GIMP"]]
    return shots + [["wait_text", errors, "gimp-colorize timings:", 1, 120], ["sleep", 3],
                    ["shot", "result", " GIMP"], ["windows"]]


def take(out_dir: Path) -> Path:
    root = harness.provision_gimp_root()
    home = Path(tempfile.mkdtemp(prefix="gimp-colorize-screens-"))
    sandbox = harness.make_sandbox(root, home)
    installed = harness.install_plugin(sandbox)
    if installed.returncode != 0:
        sys.exit(installed.stdout + installed.stderr)
    photo = sandbox.work / "camera.png"
    Image.open(SAMPLE).convert("L").resize((3072, 2304), Image.BICUBIC).save(photo, compress_level=1)
    session = desktop.new_session(sandbox)
    try:
        run = desktop.run_desktop(sandbox, plan(str(session / "gimp.err")), [photo], out_dir,
                                  env={"GIMP_COLORIZE_TIMINGS": "1"}, session=session, host_visible=True)
    finally:
        harness.stop_daemon_by_pid_file(sandbox)
    print(run.summary()[:4000])
    shutil.rmtree(home, ignore_errors=True)
    return out_dir


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--docs", action="store_true", help="copy the dialog, progress and result into docs/images")
    args = parser.parse_args(argv)
    out = take(args.out_dir)
    print("screenshots in %s: %s" % (out, ", ".join(sorted(p.name for p in out.glob("*.png")))))
    if args.docs:
        chosen = {"dialog": out / "dialog.png", "result": out / "result.png", "colorizing": out / "starting.png"}
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        for key, source in chosen.items():
            shutil.copy(source, DOCS_IMAGES / FOR_DOCS[key])
        print("updated %s" % ", ".join(str(DOCS_IMAGES / name) for name in FOR_DOCS.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
