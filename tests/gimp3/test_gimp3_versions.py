"""A smoke test of the plug-in in every other GIMP 3 that Debian offers (docs/TESTING-GIMP.md, "GIMP versions").

GIMP 3.0.6 and 3.2 broke other GIMP 3 Python plug-ins: their menu entries vanished. The full suite runs
on one GIMP (trixie's 3.0, or the one GIMP_COLORIZE_TEST_GIMP names); this one checks on each other
suite's GIMP that the plug-in registers with its menu, label and arguments, that its dialog builds
without a mnemonic or GObject warning, and that a colorize and a repeat work.
"""

import json

import numpy as np
import pytest

from tests.gimp3 import desktop, harness, pixels
from tests.gimp3.conftest import TinyModels
from tests.support.debroot import DebRootError, RootPrivilegesMissing

pytestmark = [pytest.mark.gimp, pytest.mark.slow]
OTHER_SUITES = sorted(set(harness.GIMP_ROOTS) - {harness.suite_under_test()})


@pytest.fixture(scope="module", params=OTHER_SUITES)
def other(request, tmp_path_factory):
    try:
        root = harness.provision_gimp_root(request.param)
    except RootPrivilegesMissing as exc:
        pytest.skip(str(exc))
    except DebRootError as exc:
        pytest.fail(str(exc), pytrace=False)
    box = harness.make_sandbox(root, tmp_path_factory.mktemp("gimp-home-" + request.param))
    installed = harness.install_plugin(box)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return box, TinyModels(box)


# GIMP 3.2's libgimpui complains when a dialog has no parent window to be transient for (here the probe's
# dialog, built by a batch script): GIMP's own business, not the plug-in's.
NOT_OURS = ("gimp_window_transient_on_mapped",)


def our_warnings(stderr):
    return [line for line in stderr.splitlines() if "gimp_colorize" in line and any(
        word in line for word in ("Warning", "CRITICAL", "Traceback", "fatal error", "mnemonic"))
        and not any(other in line for other in NOT_OURS)]


def test_the_plugin_registers_with_its_menu_label_and_arguments(other):
    box, _ = other
    run = box.run_batch("probe.py", {})
    facts = run.only_facts()
    assert facts["gimp_version"] == box.version, run.report()
    assert facts["found"], "GIMP %s did not register the plug-in:\n%s" % (box.version, run.report())
    assert facts["menu_paths"] == ["<Image>/Filters/Colorize"] and facts["menu_label"] == "Colorize Photo (AI)..."
    assert facts["arguments"][3:] == ["mode", "model", "vibrancy", "output", "samples", "seed", "hints", "hints-layer",
                                      "reference", "reference-image", "reference-file", "reference-strength", "boxes",
                                      "instance-layers"]
    assert facts["hints_procedure"]["found"] and facts["hints_procedure"]["menu_label"] == "Add Color Hints Layer"
    assert our_warnings(run.stderr) == [], run.report()


def test_the_dialog_builds_without_warnings(other):
    box, _ = other
    run = desktop.run_batch_on_display(box, "dialog.py", {
        "plugin_dir": str(box.profile / "plug-ins" / "gimp_colorize")})
    facts = run.only_facts()
    shown = [label for label in facts["states"]["start"]["labels"] if label["shown"] and label["mnemonic"]]
    assert len({label["mnemonic"] for label in shown}) == len(shown), shown
    assert [line for line in run.stderr.splitlines() if "mnemonic" in line] == []
    assert our_warnings(run.stderr) == [], run.report()


def test_colorize_and_repeat(other):
    box, models = other
    photos = pixels.write_test_photos(box.work)
    case = {"id": "smoke", "input": str(photos["gray8"]), "repeat": True,
            "arguments": {"mode": "full", "output": "rgb"}}
    daemon = harness.Daemon(box, **models.daemon_env).start()
    try:
        run = box.run_batch("colorize_cases.py", {"out_dir": str(box.work), "cases": [case]})
    finally:
        daemon.stop()
    facts = run.only_facts()
    assert "exception" not in facts, facts["exception"]
    assert (facts["status"], facts["repeat_status"]) == ("success", "success"), json.dumps(facts)[-2000:]
    names = [layer["name"] for layer in facts["new_layers"]]
    assert names == ["Colorized: tiny-full (2)", "Colorized: tiny-full"]
    assert np.array_equal(pixels.load_dump(facts["source_before"]), pixels.load_dump(facts["source_after"]))
    assert pixels.chroma(pixels.load_rgba01(facts["composite"])).mean() > 5.0


def test_hints_and_a_diverse_group(other):
    """The newer procedures and layer kinds: Add Color Hints Layer, hints followed, a diverse layer group."""
    box, models = other
    photos = pixels.write_test_photos(box.work)
    cases = [{"id": "hints", "input": str(photos["gray8"]), "hints_layer": True,
              "paint": [[64, 64, 96, 96, "#3c64b4"]], "runs": [{"arguments": {"mode": "full"}}]},
             {"id": "diverse", "input": str(photos["gray8"]),
              "runs": [{"arguments": {"mode": "diverse", "samples": 2, "seed": 7}}]}]
    daemon = harness.Daemon(box, **models.daemon_env).start()
    try:
        run = box.run_batch("modes_cases.py", {"out_dir": str(box.work), "cases": cases})
    finally:
        daemon.stop()
    found = {case["case"]: case for case in run.facts}
    assert sorted(found) == ["diverse", "hints"], run.report()
    for case in found.values():
        assert "exception" not in case, case["exception"]
        assert [item["status"] for item in case["runs"]] == ["success"], case["runs"]
    hints = found["hints"]
    assert [item["name"] for item in hints["layers"]][:2] == ["Color hints", "Colorized: tiny-guided"]
    assert hints["layers"][1]["record"]["data"]["hints"] == "Color hints"
    group = found["diverse"]["layers"][0]
    assert group["group"] and [child["name"] for child in group["children"]] == ["sample 1 (seed 7)",
                                                                                "sample 2 (seed 8)"]
    assert [child["visible"] for child in group["children"]] == [True, False]
