"""GIMP 3's real window under Xvfb inside the test root, driven as a person would (tests/gimp3/desktop_driver.py).

One session: Xvfb starts, GIMP (the full program, not gimp-console) starts with a batch script that
opens the test images in windows and stays open, and the driver follows its plan (wait for a window,
press keys, take screenshots). Then GIMP and Xvfb are stopped. GIMP's stdout and stderr (with the
plug-in's: duplicate mnemonics, timings) and the driver's report come back for the checks.

The root needs xvfb and xdotool (harness.GIMP_PACKAGES has them); Gdk, which takes the screenshots,
comes with GIMP.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.gimp3 import harness
from tests.support.debroot import run_in_root

DRIVER = Path(__file__).resolve().parent / "desktop_driver.py"
SCREEN = "1280x900x24"
# Start-up dialogs a fresh profile would show in front of everything.
GIMPRC = "(show-welcome-dialog no)\n(show-tips no)\n(restore-session no)\n(save-session-info no)\n"

OPEN_IMAGES = """
images = []
for path in PARAMS["images"]:
    images.append(load_image(path))
    Gimp.Display.new(images[-1])
print("GC-IMAGES-OPEN", flush=True)
# Stay until the driver asks (GIMP's window keeps working meanwhile), then say what the images hold.
deadline = time.monotonic() + PARAMS.get("report_within", 0)
while PARAMS.get("report_when") and not os.path.exists(PARAMS["report_when"]) and time.monotonic() < deadline:
    time.sleep(0.2)
for image in images:
    emit({"base_type": image.get_base_type().value_nick, "layers": layer_stack(image),
          "selected": [layer.get_id() for layer in image.get_selected_layers()]})
if PARAMS.get("reported"):
    write_atomically(PARAMS["reported"], b"done")
"""


@dataclass
class DesktopRun:
    returncode: int
    gimp_stdout: str
    gimp_stderr: str
    report: dict
    shots: Path
    seconds: float
    facts: list = field(default_factory=list)

    def summary(self) -> str:
        useful = [line for line in self.gimp_stderr.splitlines()
                  if line.strip() and not any(noise in line for noise in harness.NOISE)]
        return "exit %d after %.0f s; driver %s\n--- GIMP stderr\n%s\n--- steps\n%s" % (
            self.returncode, self.seconds, "completed" if self.report.get("completed") else "STOPPED",
            "\n".join(useful)[-5000:], json.dumps(self.report.get("steps", []), indent=1)[-4000:])


def session_script(sandbox: harness.GimpSandbox, session: Path, display: int) -> str:
    """The shell script run inside the root: Xvfb, GIMP with the batch on stdin, the driver, then cleanup."""
    q = shlex.quote
    return "\n".join([
        "rm -f /tmp/.X11-unix/X%d /tmp/.X%d-lock" % (display, display),
        "Xvfb :%d -screen 0 %s -nolisten tcp -noreset >%s 2>&1 &" % (display, SCREEN, q(str(session / "xvfb.log"))),
        "xvfb=$!",
        "i=0; while [ ! -e /tmp/.X11-unix/X%d ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done" % display,
        "export DISPLAY=:%d" % display,
        "%s -n -s --batch-interpreter=python-fu-eval -b - <%s >%s 2>%s &" % (
            harness.gimp_binary(sandbox.version, console=False), q(str(session / "batch.py")),
            q(str(session / "gimp.out")), q(str(session / "gimp.err"))),
        "gimp=$!",
        "python3 %s %s %s" % (q(str(session / "desktop_driver.py")), q(str(session / "plan.json")), q(str(session))),
        "kill $gimp 2>/dev/null; sleep 1; kill -9 $gimp 2>/dev/null",
        "kill $xvfb 2>/dev/null",
        "wait",
    ])


def new_session(sandbox: harness.GimpSandbox) -> Path:
    """The folder of one desktop session; GIMP's stderr will be <session>/gimp.err (for "wait_text")."""
    session = sandbox.work / ("desktop-%d" % time.monotonic_ns())
    session.mkdir(parents=True)
    return session


def run_desktop(sandbox: harness.GimpSandbox, plan: list, images: list, out_dir: Path, env: dict | None = None,
                timeout: float = 400, host_visible: bool = False, batch: str = OPEN_IMAGES,
                params: dict | None = None, session: Path | None = None) -> DesktopRun:
    """Open `images` in GIMP's windows (or run another `batch` body with `params`), run the driver's `plan`;
    screenshots land in out_dir."""
    session = session or new_session(sandbox)
    shutil.copy(DRIVER, session / "desktop_driver.py")
    (session / "plan.json").write_text(json.dumps(plan))
    params = dict(params or {}, images=[str(p) for p in images])
    (session / "batch.py").write_text(harness.batch_code_text(batch, params))
    write_gimprc(sandbox)
    display = 90 + os.getpid() % 400
    binds = [sandbox.home] + ([("/", harness.HOST_MOUNT)] if host_visible else [])
    started = time.monotonic()
    result = run_in_root(sandbox.root, ["/bin/sh", "-c", session_script(sandbox, session, display)],
                         env={"HOME": str(sandbox.home), **(env or {})}, timeout=timeout, binds=binds)
    seconds = time.monotonic() - started
    report_file = session / "driver-report.json"
    report = json.loads(report_file.read_text()) if report_file.exists() else {"completed": False,
                                                                               "steps": [result.stderr[-3000:]]}
    out_dir.mkdir(parents=True, exist_ok=True)
    for shot in session.glob("*.png"):
        shutil.copy(shot, out_dir / shot.name)
    stdout = read(session / "gimp.out")
    return DesktopRun(result.returncode, stdout, read(session / "gimp.err"), report, out_dir, seconds,
                      facts=harness.parse_facts(stdout))


def write_gimprc(sandbox: harness.GimpSandbox) -> None:
    gimprc = sandbox.profile / "gimprc"
    if not gimprc.exists():
        gimprc.write_text(GIMPRC)


def read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def run_batch_on_display(sandbox: harness.GimpSandbox, script: str, params: dict,
                         timeout: float = 300) -> harness.BatchRun:
    """A batch script in gimp-console, but with an X display (Xvfb), so it can build GTK dialogs."""
    session = sandbox.work / ("display-%d" % time.monotonic_ns())
    session.mkdir(parents=True)
    (session / "batch.py").write_text(harness.batch_code(script, params))
    display = 90 + (os.getpid() + 7) % 400
    q = shlex.quote
    shell = "\n".join([
        "rm -f /tmp/.X11-unix/X%d /tmp/.X%d-lock" % (display, display),
        "Xvfb :%d -screen 0 %s -nolisten tcp -noreset >/dev/null 2>&1 &" % (display, SCREEN),
        "xvfb=$!",
        "i=0; while [ ! -e /tmp/.X11-unix/X%d ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done" % display,
        "DISPLAY=:%d %s <%s" % (display, " ".join(harness.gimp_batch(sandbox.version)), q(str(session / "batch.py"))),
        "status=$?",
        "kill $xvfb 2>/dev/null; wait",
        "exit $status",
    ])
    started = time.monotonic()
    result = run_in_root(sandbox.root, ["/bin/sh", "-c", shell], env={"HOME": str(sandbox.home)}, timeout=timeout,
                         binds=[sandbox.home])
    return harness.BatchRun(result.returncode, result.stdout, result.stderr, time.monotonic() - started,
                            harness.parse_facts(result.stdout))


def install_url_recorder(sandbox: harness.GimpSandbox) -> Path:
    """Make a "web browser" that only writes down what it is asked to open (GIMP's Help goes through GIO's
    default handler for HTML); returns the file the URLs land in."""
    opened = sandbox.work / "opened-urls"
    recorder = sandbox.home / "bin" / "record-url"
    recorder.write_text("#!/bin/sh\necho \"$@\" >> %s\n" % shlex.quote(str(opened)))
    recorder.chmod(0o755)
    apps = sandbox.home / ".local" / "share" / "applications"
    apps.mkdir(parents=True, exist_ok=True)
    (apps / "gc-url-recorder.desktop").write_text(
        "[Desktop Entry]\nType=Application\nName=URL recorder\nExec=%s %%u\n"
        "MimeType=text/html;x-scheme-handler/http;x-scheme-handler/https;x-scheme-handler/file;\n" % recorder)
    (sandbox.home / ".config" / "mimeapps.list").write_text(
        "[Default Applications]\n" + "".join("%s=gc-url-recorder.desktop\n" % kind for kind in (
            "text/html", "x-scheme-handler/file", "x-scheme-handler/http", "x-scheme-handler/https")))
    return opened
