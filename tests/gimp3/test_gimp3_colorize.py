"""plug-in-gimp-colorize in a real GIMP 3.0, driven in batch mode, checked from outside through pixel dumps.

One GIMP run colorizes every case (three kinds of gray photo x two output modes, two runs with a
selection, a repeat); the tests below each check one property on its facts and dumps. Diverse mode, colour
hints and reference photos are in test_gimp3_modes.py, instance mode in test_gimp3_instance.py.
"""

import numpy as np
import pytest
from PIL import Image

from tests.gimp3 import harness, pixels

pytestmark = pytest.mark.gimp

PHOTOS = ("gray8", "gray16", "rgbgray")
OUTPUTS = ("rgb", "color-layer")
CASES = ["%s-%s" % (photo, output) for photo in PHOTOS for output in OUTPUTS]
SELECTION = ["ellipse", 96, 64, 320, 256]  # x, y, w, h inside the 512 x 512 photos
SELECTION_CASES = ["gray8-rgb-selection", "rgbgray-color-layer-selection"]
BLEND_MODES = {"rgb": "normal", "color-layer": "lch-color"}
MIN_MEAN_CHROMA = 5.0  # Lab chroma; the tiny model's colours average about 20, a gray image 0
RGB_FULL_CASES = [case_id for case_id in CASES if case_id.endswith("-rgb")]
ALL_CASES = CASES + SELECTION_CASES


REPEAT_CASE = "gray8-repeat"


def case_list(photos):
    cases = [{"id": REPEAT_CASE, "input": str(photos["gray8"]), "repeat": True,
              "arguments": {"mode": "full", "output": "rgb", "vibrancy": 1.5}}]
    for case_id in CASES + SELECTION_CASES:
        photo, output = case_id.split("-", 1)
        output = output.replace("-selection", "")
        case = {"id": case_id, "input": str(photos[photo]), "arguments": {"mode": "full", "output": output}}
        if case_id.endswith("-selection"):
            case["selection"] = SELECTION
        cases.append(case)
    return cases


@pytest.fixture(scope="module")
def runs(sandbox, tiny_models):
    """Every case colorized in one GIMP run; -> (BatchRun, {case id: facts})."""
    out_dir = sandbox.work / "colorize"
    out_dir.mkdir(exist_ok=True)
    photos = pixels.write_test_photos(out_dir)
    daemon = harness.Daemon(sandbox, **tiny_models.daemon_env).start()
    try:
        run = sandbox.run_batch("colorize_cases.py", {"out_dir": str(out_dir), "cases": case_list(photos)})
    finally:
        daemon.stop()
    assert run.returncode == 0, run.report()
    facts = {case["case"]: case for case in run.facts}
    assert sorted(facts) == sorted(ALL_CASES + [REPEAT_CASE]), run.report()
    return run, facts


@pytest.fixture
def case(case_id, runs):
    """The facts of the case named by the test's `case_id` parameter, after checking the call succeeded."""
    run, facts = runs
    found = facts[case_id]
    assert "exception" not in found, found.get("exception")
    assert found["status"] == "success", "%s: %s\n%s" % (found["case"], found["message"], run.report())
    return found


def only_new_layer(case):
    assert len(case["new_layers"]) == 1, case["after"]
    return case["new_layers"][0]


def output_of(case):
    return "color-layer" if "color-layer" in case["case"] else "rgb"


@pytest.mark.parametrize("case_id", ALL_CASES)
def test_one_new_layer_directly_above_the_source(case):
    new = only_new_layer(case)
    positions = {layer["id"]: index for index, layer in enumerate(case["after"])}
    assert positions[new["id"]] == positions[case["source_id"]] - 1
    old_order = [layer["id"] for layer in case["after"] if layer["id"] != new["id"]]
    assert old_order == [layer["id"] for layer in case["before"]]


@pytest.mark.parametrize("case_id", ALL_CASES)
def test_new_layer_is_named_after_the_model_and_blends_as_asked(case):
    new = only_new_layer(case)
    expected = "Colorized: tiny-full" + (", color only" if output_of(case) == "color-layer" else "")
    assert new["name"] == expected
    assert new["mode"] == BLEND_MODES[output_of(case)]
    assert new["visible"] and new["opacity"] == 100.0


@pytest.mark.parametrize("case_id", ALL_CASES)
def test_new_layer_records_how_it_was_made_in_a_persistent_parasite(case):
    record = only_new_layer(case)["record"]
    assert record is not None, "no gimp-colorize-result parasite on the new layer"
    assert record["flags"] & 1, "the parasite is not PERSISTENT (it would not be saved in XCF files)"
    data = record["data"]
    assert (data["mode"], data["model"], data["vibrancy"], data["output"]) == ("full", "tiny-full", 1.0,
                                                                                  output_of(case))
    source = [layer for layer in case["after"] if layer["id"] == case["source_id"]][0]
    assert data["source_tattoo"] == source["tattoo"] and source["record"] is None


@pytest.mark.parametrize("case_id", [REPEAT_CASE])
def test_repeat_on_the_new_layer_colorizes_the_source_again_not_the_colors(case):
    assert case["repeat_status"] == "success", case["repeat_message"]
    first, second = case["new_layers"][1], case["new_layers"][0]  # the repeat's layer is on top
    assert (second["name"], first["name"]) == ("Colorized: tiny-full, vibrancy 1.5 (2)",
                                              "Colorized: tiny-full, vibrancy 1.5")
    assert [layer["id"] for layer in case["after"]][:3] == [second["id"], first["id"], case["source_id"]]
    # The same photo colorized twice: the same colors (colour-of-colour would differ).
    assert np.array_equal(pixels.load_dump(first["pixels"]), pixels.load_dump(second["pixels"]))
    assert np.array_equal(pixels.load_dump(case["source_before"]), pixels.load_dump(case["source_after"]))


@pytest.mark.parametrize("case_id", ALL_CASES)
def test_source_layer_pixels_are_unchanged(case):
    before = pixels.load_dump(case["source_before"])
    after = pixels.load_dump(case["source_after"])
    assert before.shape == after.shape
    assert np.array_equal(before, after), "the source layer's pixels changed"


@pytest.fixture(scope="module")
def engine(tiny_models):
    """The daemon's engine in-process, with the same models: what the plug-in should have received."""
    from gimp_colorize.engine import Engine
    from gimp_colorize.registry import Registry

    return Engine(Registry(tiny_models.shipped_dir, tiny_models.user_dir))


@pytest.mark.parametrize("case_id", ALL_CASES)
def test_new_layer_holds_the_daemons_result_at_the_selection_bounds(case, engine):
    """Byte-exact transfer: no channel, row, offset or 16-bit byte-order slip between GIMP and the daemon."""
    from gimp_colorize.engine import ColorizeOptions

    new = only_new_layer(case)
    x, y, width, height = SELECTION[1:] if "selection" in case["case"] else (0, 0, case["width"], case["height"])
    assert new["offsets"] == [x, y]
    photo = np.asarray(Image.open(case["input"]))[y:y + height, x:x + width]
    expected = engine.colorize(photo, ColorizeOptions(mode="full")).layers[0].pixels
    received = pixels.load_dump(new["pixels"])
    assert received.shape[:2] == expected.shape[:2]
    difference = np.abs(received[..., :3].astype(np.int64) - expected.astype(np.int64))
    assert difference.max() <= 1, "the layer differs from the daemon's result by up to %d levels" % difference.max()


@pytest.mark.parametrize("case_id", ALL_CASES)
def test_gray_images_become_rgb_so_the_colour_shows(case):
    assert case["base_type_after"] == "rgb"


@pytest.mark.parametrize("case_id", ALL_CASES)
def test_what_the_user_sees_keeps_the_source_lightness(case):
    source = pixels.lightness(pixels.load_rgba01(case["source_before"]))
    seen = pixels.lightness(pixels.load_rgba01(case["composite"]))
    difference = np.abs(seen - source)
    assert difference.mean() < 1.0 and np.percentile(difference, 99) < 4.0, (
        "lightness moved: mean %.2f, p99 %.2f" % (difference.mean(), np.percentile(difference, 99)))


@pytest.mark.parametrize("case_id", RGB_FULL_CASES)
def test_rgb_output_layer_itself_keeps_the_source_lightness(case):
    new = pixels.load_rgba01(only_new_layer(case)["pixels"])
    source = pixels.lightness(pixels.load_rgba01(case["source_before"]))
    difference = np.abs(pixels.lightness(new) - source)
    assert difference.mean() < 1.0 and np.percentile(difference, 99) < 4.0


@pytest.mark.parametrize("case_id", CASES)
def test_the_result_is_not_gray(case):
    seen = pixels.chroma(pixels.load_rgba01(case["composite"]))
    source = pixels.chroma(pixels.load_rgba01(case["source_before"]))
    assert source.mean() < 0.5, "the test photo should be gray"
    assert seen.mean() > MIN_MEAN_CHROMA, "mean chroma %.2f" % seen.mean()


@pytest.mark.parametrize("case_id", SELECTION_CASES)
def test_a_selection_limits_the_colour(case):
    x, y, w, h = SELECTION[1:]
    seen = pixels.chroma(pixels.load_rgba01(case["composite"]))
    inside = pixels.ellipse_mask(case["height"], case["width"], x, y, w, h, margin=3)
    outside = ~pixels.ellipse_mask(case["height"], case["width"], x, y, w, h, margin=-3)
    assert seen[inside].mean() > MIN_MEAN_CHROMA, "inside the selection: chroma %.2f" % seen[inside].mean()
    assert seen[outside].max() < 1.0, "colour leaked outside the selection: chroma up to %.2f" % seen[outside].max()


@pytest.mark.parametrize("case_id", ALL_CASES)
def test_the_run_is_one_closed_undo_step(case, runs):
    """GIMP 3.0 offers no PDB call to perform an undo or count undo steps (see docs/TESTING-GIMP.md)."""
    run, _ = runs
    assert case["undo_enabled"], "the plug-in left undo disabled"
    assert case["dirty"], "the image is not marked changed"
    # GIMP closes undo groups a plug-in left open and says so; the run must not need that.
    assert "inconsistent state" not in run.stderr, run.report()
