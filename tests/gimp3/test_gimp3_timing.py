"""Plug-in-side cost on large photos, and where GIMP's part of it goes. Prints tables; asserts no times.

1. 12 MP in gimp-console: the plug-in call as GIMP sees it, against the same pixels sent straight to
   the daemon (the target: at most 1 s of plug-in side cost at 12 MP).
2. 16 MP in GIMP's real window (Xvfb), run from the dialog like a person: a gray photo (which GIMP must
   convert to RGB), then Filters > Repeat twice (the image is RGB by then). With
   GIMP_COLORIZE_TIMING_BEFORE=<a plugin/ folder of an older version> the same session runs with that
   plug-in too, in the same table.
3. 16 MP in the real window: the ways to put a result into the image (tests/gimp3/batch/write_timing.py).

Timings on a shared 2-core machine are noisy: medians, side by side in one run, never a timed assert.
"""

import json
import os
import re
import statistics
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.gimp3 import desktop, harness, pixels

pytestmark = [pytest.mark.gimp, pytest.mark.slow]
TARGET_OVERHEAD_S = 1.0
SIZE_16MP = (4608, 3456)
TIMINGS = "gimp-colorize timings:"


def daemon_job_seconds(url: str, token: str, gray: np.ndarray) -> dict:
    """Submit 8-bit gray pixels straight to the daemon; -> upload, processing and download seconds."""
    height, width = gray.shape
    headers = {"Authorization": "Bearer " + token, "Content-Type": "application/octet-stream"}
    query = "mode=full&format=gray8&width=%d&height=%d" % (width, height)
    started = time.monotonic()
    request = urllib.request.Request(url + "/v1/jobs?" + query, data=gray.tobytes(), headers=headers, method="POST")
    job = json.loads(urllib.request.urlopen(request, timeout=120).read())
    submitted = time.monotonic()
    status = job
    while status["state"] not in ("done", "failed", "cancelled"):
        time.sleep(0.01)
        status = json.loads(urllib.request.urlopen(
            urllib.request.Request(url + "/v1/jobs/" + job["id"], headers=headers), timeout=30).read())
    processed = time.monotonic()
    assert status["state"] == "done", status
    layer = urllib.request.Request(url + "/v1/jobs/%s/layers/0?encoding=raw" % job["id"], headers=headers)
    size = len(urllib.request.urlopen(layer, timeout=120).read())
    downloaded = time.monotonic()
    assert size == width * height * 3
    return {"upload": submitted - started, "processing": processed - submitted,
            "engine stages": sum(status.get("timings", {}).values()), "download": downloaded - processed}


def plugin_timings(stderr: str) -> list[dict]:
    """The plug-in's own breakdowns, printed when GIMP_COLORIZE_TIMINGS is set (plugin/common/colorize_flow.py)."""
    lines = [line for line in stderr.splitlines() if line.startswith(TIMINGS)]
    return [{key: float(value) for key, value in re.findall(r"(\w+)=([0-9.]+)", line)} for line in lines]


def print_table(title: str, rows: list, capsys) -> None:
    with capsys.disabled():
        print("\n" + title)
        for row in rows:
            print("  %-62s" % row[0] + "".join("%14s" % cell for cell in row[1:]))


def seconds(value) -> str:
    return "-" if value is None else "%.2f s" % value


def test_plugin_overhead_on_a_12_megapixel_photo(sandbox, tiny_models, capsys):
    photo = pixels.write_large_photo(sandbox.work / "large-12mp.png")
    daemon = harness.Daemon(sandbox, **tiny_models.daemon_env).start()
    try:
        token = (sandbox.config_dir / "token").read_text().strip()
        daemon_job_seconds(daemon.url, token, np.full((64, 64), 128, np.uint8))  # loads the model: both runs warm
        direct = daemon_job_seconds(daemon.url, token, np.asarray(Image.open(photo)))
        run = sandbox.run_batch("timing.py", {"input": str(photo), "arguments": {"mode": "full", "output": "rgb"}},
                                env={"GIMP_COLORIZE_TIMINGS": "1"})
    finally:
        daemon.stop()
    facts = run.only_facts()
    assert facts["status"] == "success", facts["message"] + "\n" + run.report()
    assert [(layer["width"], layer["height"]) for layer in facts["new_layers"]] == [(4000, 3000)]
    (own,) = plugin_timings(run.stderr)
    rows = [("plug-in call in GIMP (start + read + send + wait + fetch + write)", seconds(facts["seconds"])),
            ("daemon processing, same pixels sent directly (warm)", seconds(direct["processing"])),
            ("  of which engine stages (job timings)", seconds(direct["engine stages"])),
            ("direct upload + download of the pixels", seconds(direct["upload"] + direct["download"]))]
    rows += [("plug-in's own report: %s" % stage, seconds(value)) for stage, value in sorted(own.items())]
    overhead = facts["seconds"] - direct["processing"]
    rows += [("plug-in side cost = call - daemon processing", seconds(overhead)),
             ("target: plug-in side cost <= %.1f s" % TARGET_OVERHEAD_S, "met" if overhead <= TARGET_OVERHEAD_S
              else "NOT met")]
    print_table("12 MP (4000 x 3000, 8-bit gray) in gimp-console %s:" % sandbox.version, rows, capsys)


def desktop_runs(sandbox, tiny_models, plugin_src, photo, shots):
    """One GIMP window session: the filter from its dialog on the gray photo, then Repeat twice."""
    if plugin_src is not None:
        installed = harness.install_plugin(sandbox, plugin_src=plugin_src)
        assert installed.returncode == 0, installed.stderr
    session = desktop.new_session(sandbox)
    errors = str(session / "gimp.err")
    plan = [["window", " GIMP", 120], ["dismiss", "Welcome", 5], ["window", " GIMP", 10], ["sleep", 2],
            ["keys", "slash"], ["window", "Search Actions", 10], ["type", "Colorize"], ["sleep", 1.0],
            ["keys", "Return"], ["window", "Colorize", 60], ["sleep", 1.0], ["keys", "Return"],
            ["wait_text", errors, TIMINGS, 1, 300]]
    for number in (2, 3):
        plan += [["sleep", 3], ["window", " GIMP", 10], ["keys", "ctrl+f"], ["wait_text", errors, TIMINGS, number, 300]]
    daemon = harness.Daemon(sandbox, **tiny_models.daemon_env).start()
    try:
        run = desktop.run_desktop(sandbox, plan, [photo], shots, env={"GIMP_COLORIZE_TIMINGS": "1"}, session=session)
    finally:
        daemon.stop()
        if plugin_src is not None:
            harness.install_plugin(sandbox)  # back to this version's plug-in for the other tests
    found = plugin_timings(run.gimp_stderr)
    assert len(found) == 3, run.summary()
    return found


def plugin_side(report: dict) -> float:
    """Read, send, fetch, convert and write, as the plug-in reports them: comparable between versions (older
    ones print only these parts). A download beside the conversion counts for the time it made the plug-in wait."""
    fetch = report["wait_download"] if "wait_download" in report else report.get("download", 0.0)
    return sum(report.get(key, 0.0) for key in ("read", "upload", "convert", "write")) + fetch


def whole_call(report: dict):
    """The whole call but the daemon's work (connecting and the job guard too); newer versions only."""
    return report["call"] - report.get("daemon", 0.0) if "call" in report else None


def test_plugin_side_in_gimps_window_on_a_16_megapixel_photo(sandbox, tiny_models, tmp_path, capsys):
    photo = pixels.write_large_photo(sandbox.work / "large-16mp.png", size=SIZE_16MP)
    versions = [("this version", None)]
    if os.environ.get("GIMP_COLORIZE_TIMING_BEFORE"):
        versions.insert(0, ("before", Path(os.environ["GIMP_COLORIZE_TIMING_BEFORE"])))
    results = {label: desktop_runs(sandbox, tiny_models, src, photo, tmp_path / label.replace(" ", "-"))
               for label, src in versions}
    keys = ["read", "upload", "daemon", "download", "convert", "wait_download", "write", "connect", "guard"]
    rows = [("16 MP (4608 x 3456) gray photo, seconds", *[label for label, _ in versions])]
    for what, pick in (("gray image (converted to RGB): plug-in side", lambda runs: [plugin_side(runs[0])]),
                       ("RGB image (Filters > Repeat, median of 2): plug-in side",
                        lambda runs: [plugin_side(run) for run in runs[1:]])):
        rows.append((what, *[seconds(statistics.median(pick(results[label]))) for label, _ in versions]))
    for what, number in (("gray image: whole call - daemon", 0), ("RGB image: whole call - daemon", 1)):
        rows.append((what, *[seconds(whole_call(results[label][number])) for label, _ in versions]))
    for number, name in ((0, "gray image"), (1, "RGB image")):
        for key in keys:
            rows.append(("  %s: %s" % (name, key), *[seconds(results[label][number].get(key))
                                                     for label, _ in versions]))
    print_table("In GIMP %s's window (Xvfb), run from the dialog, then Filters > Repeat:" % sandbox.version, rows,
                capsys)


def test_where_writing_a_16_megapixel_layer_goes_in_gimps_window(sandbox, capsys):
    photo = pixels.write_large_photo(sandbox.work / "large-16mp.png", size=SIZE_16MP)
    done = sandbox.work / "write-timing-done"
    params = {"input": str(photo), "plugin_dir": str(sandbox.profile / "plug-ins" / "gimp_colorize"),
              "repeats": 3, "display": True, "done_file": str(done)}
    body = (harness.BATCH_DIR / "write_timing.py").read_text()
    run = desktop.run_desktop(sandbox, [["window", " GIMP", 120], ["wait_file", str(done), 900]], [],
                              sandbox.work / "write-timing-shots", batch=body, params=params, timeout=1200)
    assert len(run.facts) == 1, run.summary()
    rows = [("way (each on a fresh 16 MP image shown in a window)", "median", "runs")]
    for label, runs in run.facts[0]["rows"]:
        rows.append((label, seconds(statistics.median(runs)), " ".join("%.2f" % value for value in runs)))
    print_table("Writing a 16 MP RGB result in GIMP %s's window:" % sandbox.version, rows, capsys)


HINT_SIZES = {"1 MP": (1000, 1000), "12 MP": (4000, 3000)}
HINT_COLOURS = ("#b4463c", "#3c64b4", "#50a050", "#808080")
CHANGED_RUNS = 5  # after one warm-up run


def hint_patches(width, height):
    """The warm-up patch, then one more patch per run (the hints change every time)."""
    side = max(16, width // 20)
    return [[width * (n + 1) // 6, height // 3, side, side, HINT_COLOURS[n % len(HINT_COLOURS)]]
            for n in range(1 + CHANGED_RUNS)]


def submit_seconds(url: str, token: str, gray: np.ndarray, image_id: str | None = None) -> float:
    """Time from the first byte of POST /v1/jobs to its 202 (the job is then cancelled)."""
    height, width = gray.shape
    headers = {"Authorization": "Bearer " + token, "Content-Type": "application/octet-stream"}
    if image_id is None:
        query, body = "mode=full&format=gray8&width=%d&height=%d" % (width, height), gray.tobytes()
    else:
        query, body = "mode=full&image=%s" % image_id, None
    started = time.monotonic()
    request = urllib.request.Request(url + "/v1/jobs?" + query, data=body, headers=headers, method="POST")
    job = json.loads(urllib.request.urlopen(request, timeout=120).read())
    seconds = time.monotonic() - started
    urllib.request.urlopen(urllib.request.Request(url + "/v1/jobs/" + job["id"], headers=headers, method="DELETE"),
                           timeout=30).read()
    return seconds


def upload_input(url: str, token: str, gray: np.ndarray) -> str:
    height, width = gray.shape
    headers = {"Authorization": "Bearer " + token, "Content-Type": "application/octet-stream"}
    request = urllib.request.Request(url + "/v1/inputs?format=gray8&width=%d&height=%d" % (width, height),
                                     data=gray.tobytes(), headers=headers, method="POST")
    return json.loads(urllib.request.urlopen(request, timeout=120).read())["id"]


def source_reuse_seconds(url: str, token: str, gray: np.ndarray) -> dict:
    """What reusing an uploaded source (image=<id>, keyed by a hash of its bytes) would save per run."""
    import hashlib

    data = gray.tobytes()
    image_id = upload_input(url, token, gray)
    hashing = []
    for _ in range(3):
        started = time.monotonic()
        hashlib.sha256(data).hexdigest()
        hashing.append(time.monotonic() - started)
    with_body = [submit_seconds(url, token, gray) for _ in range(3)]
    by_id = [submit_seconds(url, token, gray, image_id) for _ in range(3)]
    return {"body": statistics.median(with_body), "id": statistics.median(by_id), "hash": statistics.median(hashing)}


def test_changed_hints_on_a_warm_daemon_at_1_and_12_megapixels(sandbox, capsys):
    """With the shipped models, as a user iterates: hinted runs take guided-mnv2, the plain ones full-mnv2."""
    photos = []
    for label, size in HINT_SIZES.items():
        path = pixels.write_large_photo(sandbox.work / ("hints-%s.png" % label.replace(" ", "")), size=size)
        photos.append({"label": label, "path": str(path), "patches": hint_patches(*size)})
    daemon = harness.Daemon(sandbox).start()
    try:
        run = sandbox.run_batch("hints_timing.py", {"photos": photos, "plain_runs": 2},
                                env={"GIMP_COLORIZE_TIMINGS": "1"}, timeout=1200)
        token = (sandbox.config_dir / "token").read_text().strip()
        reuse = {label: source_reuse_seconds(daemon.url, token, np.asarray(Image.open(photo["path"])))
                 for label, photo in zip(HINT_SIZES, photos)}
    finally:
        daemon.stop()
    assert run.returncode == 0 and len(run.facts) == len(photos), run.report()
    reports = plugin_timings(run.stderr)
    runs_per_photo = 1 + CHANGED_RUNS + 2
    assert len(reports) == runs_per_photo * len(photos), run.report()
    table = {}
    for number, facts in enumerate(run.facts):
        assert all(item["status"] == "success" for item in facts["runs"]), facts["runs"]
        models = [re.match(r"Colorized: ([\w.-]+)", name).group(1) for name in facts["results"]]
        assert sorted(set(models)) == ["full-mnv2", "guided-mnv2"], facts["results"]
        own = reports[number * runs_per_photo:(number + 1) * runs_per_photo]
        changed, plain = own[1:1 + CHANGED_RUNS], own[1 + CHANGED_RUNS:]
        calls = [item["seconds"] for item in facts["runs"]]
        table[facts["photo"]] = {"call": statistics.median(calls[1:1 + CHANGED_RUNS]),
                                 "plain call": statistics.median(calls[1 + CHANGED_RUNS:]),
                                 **{key: statistics.median(report.get(key, 0.0) for report in changed)
                                    for key in ("daemon", "plugin_side", "read", "hints", "hints_read", "upload",
                                                "wait_download", "convert", "write", "connect", "guard")},
                                 "start": statistics.median(call - report["call"] for call, report in zip(
                                     calls[1:1 + CHANGED_RUNS], changed)),
                                 "plain plugin_side": statistics.median(report["plugin_side"] for report in plain)}
    labels = list(HINT_SIZES)
    rows = [("changed hints, warm daemon (median of %d runs)" % CHANGED_RUNS, *labels)]
    for key, what in (("call", "whole call: what the user waits for"),
                      ("start", "  GIMP starting the plug-in's process"),
                      ("daemon", "  the daemon's job (guided-mnv2)"),
                      ("plugin_side", "  plug-in side (the plug-in's call - daemon)"),
                      ("read", "    read the photo from GIMP"),
                      ("hints", "    hints: read the layer + upload"),
                      ("hints_read", "      of which reading the layer (RGBA 8-bit)"),
                      ("upload", "    send the photo (submit)"),
                      ("wait_download", "    wait for the download"),
                      ("write", "    write the new layer"),
                      ("connect", "    connect (health check)"),
                      ("guard", "    start the cancel watcher"),
                      ("plain call", "no hints (Color hints: None): whole call"),
                      ("plain plugin_side", "  plug-in side")):
        rows.append((what, *[seconds(table[label][key]) for label in labels]))
    rows.append(("source reuse (image=<id>), measured beside GIMP", *labels))
    for key, what in (("body", "  submit with the photo as the body"), ("id", "  submit naming an uploaded photo"),
                      ("hash", "  sha256 of the photo's bytes (the key)")):
        rows.append((what, *[seconds(reuse[label][key]) for label in labels]))
    rows.append(("  would save per run (body - id - hash)",
                 *[seconds(reuse[label]["body"] - reuse[label]["id"] - reuse[label]["hash"]) for label in labels]))
    print_table("Iterating on colour hints in gimp-console %s:" % sandbox.version, rows, capsys)
