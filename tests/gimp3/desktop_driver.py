# Runs INSIDE the GIMP test root, beside a real GIMP window under Xvfb (tests/gimp3/desktop.py starts both).
# It acts as a person would: waits for windows, presses keys (xdotool), takes screenshots (Gdk), and
# writes what it saw as JSON. Python 3 standard library + gi only.
#
# The plan is a JSON list of steps; each is [verb, argument...]:
#   ["window", "Title part", seconds]     wait until a window whose name contains it is mapped, focus it
#   ["gone", "Title part", seconds]       wait until no such window is mapped
#   ["keys", "ctrl+f", ...]               press keys in the focused window
#   ["type", "text"]                      type text
#   ["sleep", seconds]
#   ["shot", "name"]                      screenshot of the whole screen -> <out>/name.png
#   ["shot", "name", "Title part"]        screenshot of that window only
#   ["wait_file", "path", seconds]        wait until a file exists (the plug-in or GIMP wrote it)
#   ["windows"]                           record the names of all mapped windows
#   ["dismiss", "Title part", seconds]    if such a window shows up within the time, press Escape in it
#   ["touch", "path"]                     create a file (tells the batch script in GIMP to report)
#   ["wait_text", "path", "text", n, s]   wait until the file holds `text` n times (GIMP's stderr: session/gimp.err)
#   ["resize", "Title part", w, h]        move that window to the top left corner and give it that size
#   ["drag", x0, y0, x1, y1]              press the mouse button at (x0, y0), move to (x1, y1), release
#   ["click", x, y]                       click the left mouse button there
import json
import os
import subprocess
import sys
import time

import gi

gi.require_version("Gdk", "3.0")
from gi.repository import Gdk  # noqa: E402


def xdotool(*args):
    result = subprocess.run(["xdotool"] + list(args), capture_output=True, text=True)
    return result.returncode, result.stdout.strip()


def literal(text):
    """xdotool matches window names with a regular expression: make `text` match itself."""
    return "".join("\\" + char if char in ".^$*+?()[]{}|\\" else char for char in text)


def windows_named(part):
    code, out = xdotool("search", "--onlyvisible", "--name", literal(part))
    return [line for line in out.splitlines() if line.strip()] if code == 0 else []


def window_names():
    code, out = xdotool("search", "--onlyvisible", "--name", ".")
    names = []
    for window in out.splitlines():
        name = xdotool("getwindowname", window)[1]
        if name:
            names.append(name)
    return sorted(set(names))


def wait_for(predicate, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    return None


def count_in(path, text):
    try:
        with open(path, errors="replace") as handle:
            return handle.read().count(text)
    except OSError:
        return 0


def window_geometry(window):
    """(x, y, width, height) of an X window, from xdotool."""
    values = dict(line.split("=", 1) for line in xdotool("getwindowgeometry", "--shell", window)[1].splitlines()
                  if "=" in line)
    return int(values["X"]), int(values["Y"]), int(values["WIDTH"]), int(values["HEIGHT"])


def screenshot(path, title=None):
    root = Gdk.get_default_root_window()
    x, y, width, height = 0, 0, root.get_width(), root.get_height()
    found = windows_named(title) if title else []
    if found:
        x, y, width, height = window_geometry(found[-1])
    pixbuf = Gdk.pixbuf_get_from_window(root, x, y, width, height)
    pixbuf.savev(path, "png", [], [])


def run(plan, out_dir, report):
    for step in plan:
        verb, args = step[0], step[1:]
        started = time.monotonic()
        entry = {"step": step}
        if verb == "window":
            found = wait_for(lambda: windows_named(args[0]), args[1])
            entry["found"] = bool(found)
            if not found:
                entry["windows"] = window_names()
                report.append(entry)
                return False
            xdotool("windowfocus", "--sync", found[-1])
            time.sleep(0.3)  # let GTK draw the focused window
        elif verb == "gone":
            entry["gone"] = bool(wait_for(lambda: not windows_named(args[0]), args[1]))
        elif verb == "keys":
            for key in args:
                xdotool("key", "--clearmodifiers", key)
                time.sleep(0.15)
        elif verb == "type":
            xdotool("type", "--delay", "40", args[0])
        elif verb == "sleep":
            time.sleep(args[0])
        elif verb == "shot":
            screenshot(os.path.join(out_dir, args[0] + ".png"), args[1] if len(args) > 1 else None)
        elif verb == "wait_file":
            entry["found"] = bool(wait_for(lambda: os.path.exists(args[0]), args[1]))
        elif verb == "windows":
            entry["windows"] = window_names()
        elif verb == "wait_text":
            entry["found"] = bool(wait_for(lambda: count_in(args[0], args[1]) >= args[2], args[3]))
        elif verb == "resize":
            found = windows_named(args[0])
            entry["found"] = bool(found)
            if found:
                xdotool("windowmove", "--sync", found[-1], "0", "0")
                xdotool("windowsize", "--sync", found[-1], str(args[1]), str(args[2]))
                time.sleep(0.5)
        elif verb == "click":
            xdotool("mousemove", "--sync", str(args[0]), str(args[1]))
            xdotool("click", "1")
            time.sleep(0.3)
        elif verb == "drag":
            xdotool("mousemove", "--sync", str(args[0]), str(args[1]))
            xdotool("mousedown", "1")
            for step in range(1, 11):
                x = args[0] + (args[2] - args[0]) * step // 10
                y = args[1] + (args[3] - args[1]) * step // 10
                xdotool("mousemove", "--sync", str(x), str(y))
                time.sleep(0.05)
            xdotool("mouseup", "1")
            time.sleep(0.3)
        elif verb == "touch":
            open(args[0], "w").close()
        elif verb == "dismiss":
            found = wait_for(lambda: windows_named(args[0]), args[1])
            entry["found"] = bool(found)
            if found:
                xdotool("windowfocus", "--sync", found[-1])
                xdotool("key", "Escape")
                time.sleep(0.3)
        entry["seconds"] = round(time.monotonic() - started, 2)
        report.append(entry)
    return True


def main():
    plan_file, out_dir = sys.argv[1], sys.argv[2]
    with open(plan_file) as handle:
        plan = json.load(handle)
    report = []
    try:
        completed = run(plan, out_dir, report)
    except Exception as exc:  # the report says where it stopped
        report.append({"error": "%s: %s" % (type(exc).__name__, exc)})
        completed = False
    with open(os.path.join(out_dir, "driver-report.json"), "w") as handle:
        json.dump({"completed": completed, "steps": report}, handle, indent=1)


if __name__ == "__main__":
    main()
