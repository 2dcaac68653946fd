"""GIMP 3's real window under Xvfb, used as a person would: find the filter with the action search, read
its dialog, press OK with its mnemonic, watch the progress, then Filters > Repeat (Ctrl+F).

The screenshots land in the sandbox (and, with GIMP_COLORIZE_SCREENSHOTS=DIR, in DIR): look at them
after a change to the dialog. tests/gimp3/screenshots.py makes the ones in docs/images.
"""

import os
from pathlib import Path

import numpy as np
import pytest

from tests.gimp3 import desktop, harness, pixels

pytestmark = [pytest.mark.gimp, pytest.mark.slow]
TITLE = "Colorize Photo (AI)"


def open_filter_and_press_ok(number, opened):
    """The plan steps: action search (/) -> the filter -> its dialog -> Help (Alt+H) -> Alt+O (OK's mnemonic)."""
    return [["keys", "slash"], ["window", "Search Actions", 10], ["type", "Colorize Photo"], ["sleep", 1.0],
            ["keys", "Return"], ["window", TITLE, 60], ["sleep", 1.0], ["shot", "%d-dialog" % number],
            ["keys", "alt+h"], ["wait_file", str(opened), 30], ["window", TITLE, 10], ["keys", "alt+o"], ["sleep", 0.5], ["shot", "%d-progress" % number], ["gone", TITLE, 10],
            ["sleep", 4], ["shot", "%d-result" % number]]


@pytest.fixture(scope="module")
def session(sandbox, tiny_models, tmp_path_factory):
    photo = pixels.write_large_photo(sandbox.work / "desktop-photo.png", size=(1600, 1200))
    shots = Path(os.environ.get("GIMP_COLORIZE_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    report_when, reported = sandbox.work / "report-now", sandbox.work / "reported"
    opened = desktop.install_url_recorder(sandbox)
    plan = [["window", " GIMP", 120], ["dismiss", "Welcome", 5], ["window", " GIMP", 10], ["sleep", 2]]
    plan += open_filter_and_press_ok(1, opened)
    plan += [["window", " GIMP", 10], ["keys", "ctrl+f"], ["sleep", 0.5], ["shot", "2-repeat-progress"],
             ["sleep", 6], ["shot", "2-repeat-result"], ["touch", str(report_when)], ["wait_file", str(reported), 60]]
    daemon = harness.Daemon(sandbox, **tiny_models.daemon_env).start()
    try:
        run = desktop.run_desktop(sandbox, plan, [photo], shots, env={"GIMP_COLORIZE_TIMINGS": "1"},
                                  params={"report_when": str(report_when), "reported": str(reported),
                                          "report_within": 300})
    finally:
        daemon.stop()
    assert run.report.get("completed"), run.summary()
    assert len(run.facts) == 1, run.summary()
    run.opened = opened.read_text().split() if opened.exists() else []
    return run


def test_help_opens_the_page_made_from_the_readmes_gimp_section(session, sandbox):
    page = sandbox.profile / "plug-ins" / "gimp_colorize" / "help" / "en" / "index.html"
    assert session.opened == [str(page)] or session.opened == [page.as_uri()], session.opened
    assert "Colorize Photo (AI)" in page.read_text()


def test_the_dialog_shows_no_mnemonic_warning_and_opens_from_the_action_search(session):
    assert [line for line in session.gimp_stderr.splitlines() if "mnemonic" in line] == []
    steps = {tuple(step["step"][:2]): step for step in session.report["steps"] if step["step"][0] == "window"}
    assert steps[("window", TITLE)]["found"]


def test_alt_o_runs_the_filter_and_ctrl_f_colorizes_the_photo_again(session):
    image = session.facts[0]
    assert image["base_type"] == "rgb"
    names = [layer["name"] for layer in image["layers"]]
    assert names == ["Colorized: tiny-full (2)", "Colorized: tiny-full", "Background"], names
    records = [layer["record"]["data"] for layer in image["layers"][:2]]
    background = image["layers"][2]
    assert all(record["source_tattoo"] == background["tattoo"] for record in records)
    assert image["selected"] == [image["layers"][0]["id"]]  # GIMP selects the newest layer


def test_the_progress_bar_shows_what_happens_in_words(session):
    timings = [line for line in session.gimp_stderr.splitlines() if line.startswith("gimp-colorize timings:")]
    assert len(timings) == 2, session.summary()
    shot = pixels.load_png(session.shots / "1-progress.png")
    assert shot.shape[0] > 100 and np.ptp(shot) > 0  # a real screenshot, not a blank screen
