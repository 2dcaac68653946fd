"""Colour hints, reference photos and diverse mode in a real GIMP 3, against the real daemon with tiny models.

One GIMP run for every case (tests/gimp3/batch/modes_cases.py). The guided model (tiny-guided) obeys its
hints exactly and shifts its colours by the reference's mean chroma, so the checks test the plumbing:
the hints a person paints (select a rectangle, fill it) come out at the same place in the new layer.
"""

import numpy as np
import pytest
from PIL import Image

from gimp_colorize import colour
from tests.gimp3 import harness, pixels

pytestmark = pytest.mark.gimp

# (x, y, w, h, colour) in the 512 x 512 photo: aligned to the tiny model's 32-pixel output cells, 3 cells wide,
# so that the middle cell and the bilinear upsampling inside it see only the hint.
PATCHES = [(64, 64, 96, 96, "#b4463c"), (352, 64, 96, 96, "#3c64b4"), (192, 320, 96, 96, "#808080"),
           (352, 320, 96, 96, "#50a050")]
INNER = 32  # pixels: the middle of each patch, where the result must be the hint's colour
DELTA_E_MEAN, DELTA_E_MAX = 1.5, 4.0  # CIE76, against the hint's colour at the photo's lightness
SEED = 1234
DIVERSE_GROUP = "Colorize: diverse (tiny-diverse)"


def rgb_of(hex_colour):
    return np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.uint8)


def write_reference_photos(folder):
    """A warm colour photo (a smooth blend, not flat, like a real reference) and a gray one."""
    y, x = np.mgrid[0:48, 0:64]
    warm = np.stack([150 + x // 4, 100 + y // 4, 90 + 0 * x], axis=-1).astype(np.uint8)
    paths = {"warm": folder / "reference-warm.png", "gray": folder / "reference-gray.png"}
    Image.fromarray(warm).save(paths["warm"])
    Image.fromarray(np.full((48, 64, 3), 128, np.uint8)).save(paths["gray"])
    return paths


def case_list(photo, references):
    full = {"mode": "full"}
    return [
        {"id": "hints", "input": photo, "hints_layer": True, "paint": [list(p) for p in PATCHES],
         "runs": [{"arguments": full}]},
        {"id": "on-hints", "input": photo, "hints_layer": True, "paint": [list(PATCHES[0])],
         "runs": [{"on": "hints", "arguments": full}]},
        {"id": "plain", "input": photo, "runs": [{"arguments": {"mode": "full", "model": "tiny-guided"}}]},
        {"id": "reference-image", "input": photo, "open": [references["warm"]],
         "runs": [{"arguments": {"mode": "full", "reference": "image", "reference-image": "$open0"}}]},
        {"id": "reference-file", "input": photo,
         "runs": [{"arguments": {"mode": "full", "reference": "file", "reference-file": "file:" + references["warm"]}}]},
        {"id": "reference-half", "input": photo,
         "runs": [{"arguments": {"mode": "full", "reference": "file", "reference-file": "file:" + references["warm"],
                                 "reference-strength": 0.5}}]},
        {"id": "reference-gray", "input": photo,
         "runs": [{"arguments": {"mode": "full", "reference": "file", "reference-file": "file:" + references["gray"]}}]},
        {"id": "diverse", "input": photo, "runs": [
            {"arguments": {"mode": "diverse", "samples": 4, "seed": SEED}},
            {"on": "first-child", "arguments": {"mode": "diverse", "samples": 4, "seed": SEED}},  # Filters > Repeat
            {"arguments": {"mode": "diverse", "samples": 1, "seed": SEED + 2}}]},
    ]


@pytest.fixture(scope="module")
def cases(sandbox, tiny_models):
    out_dir = sandbox.work / "modes"
    out_dir.mkdir(exist_ok=True)
    photo = pixels.write_test_photos(out_dir)["gray8"]
    references = {name: str(path) for name, path in write_reference_photos(out_dir).items()}
    daemon = harness.Daemon(sandbox, **tiny_models.daemon_env).start()
    try:
        run = sandbox.run_batch("modes_cases.py", {"out_dir": str(out_dir), "cases": case_list(str(photo),
                                                                                              references)})
    finally:
        daemon.stop()
    assert run.returncode == 0, run.report()
    found = {case["case"]: case for case in run.facts}
    assert sorted(found) == sorted(case["id"] for case in case_list("", references)), run.report()
    for case in found.values():
        assert "exception" not in case, case["exception"]
    found["references"] = references
    return found


def successful(case):
    for run in case["runs"]:
        assert run["status"] == "success", run["message"]
    return case


def names(items):
    return [item["name"] for item in items]


def layer_named(case, name):
    return [item for item in case["layers"] if item["name"] == name][0]


def lab(description):
    return colour.rgb_to_lab(np.ascontiguousarray(pixels.load_rgba01(description)[..., :3]))


# -------------------------------------------------------------------------------- colour hints


def test_add_color_hints_layer_puts_a_transparent_layer_over_the_photo(cases):
    case = cases["hints"]
    assert case["hints_status"][0] == "success", case["hints_status"]
    assert case["base_type_before_runs"] == "rgb"  # colours cannot be painted on a gray image
    hints = layer_named(case, "Color hints")
    source = [item for item in case["layers"] if item["id"] == case["source_id"]][0]
    assert hints["has_alpha"] and hints["offsets"] == source["offsets"] == [0, 0]
    assert case["hints_record"]["source_tattoo"] == source["tattoo"]
    assert not pixels.load_dump(case["hints_empty"]).any(), "the new hints layer is not transparent"
    assert (case["hints_empty"]["width"], case["hints_empty"]["height"]) == (case["width"], case["height"])


def test_painted_hints_come_out_in_their_colours_and_the_hints_layer_is_untouched(cases):
    case = successful(cases["hints"])
    assert names(case["layers"])[:2] == ["Color hints", "Colorized: tiny-guided"]  # the hints stay on top
    assert case["layers"][2]["id"] == case["source_id"]
    painted = pixels.load_dump(case["hints_before"])
    assert np.array_equal(painted, pixels.load_dump(case["hints_after"])), "the hints layer changed"
    result = lab(case["layers"][1]["pixels"])
    source_l = pixels.lightness(pixels.load_rgba01(case["source_before"]))
    for x, y, w, h, hex_colour in PATCHES:
        assert (painted[y + h // 2, x + w // 2, :3] == rgb_of(hex_colour)).all(), "the fill did not paint"
        inner = (slice(y + (h - INNER) // 2, y + (h + INNER) // 2), slice(x + (w - INNER) // 2, x + (w + INNER) // 2))
        hint_ab = colour.rgb_to_lab(rgb_of(hex_colour)[None].astype(np.float32) / 255)[0, 1:]
        wanted = np.concatenate([source_l[inner][..., None], np.broadcast_to(hint_ab, source_l[inner].shape + (2,))],
                                axis=-1)
        expected = colour.rgb_to_lab(colour.lab_to_rgb(wanted))  # the hint at the photo's lightness, in gamut
        delta_e = np.linalg.norm(result[inner] - expected, axis=-1)
        assert delta_e.mean() < DELTA_E_MEAN and delta_e.max() < DELTA_E_MAX, (hex_colour, delta_e.mean(),
                                                                             delta_e.max())
    gray_patch = PATCHES[2]
    inner = (slice(gray_patch[1] + 40, gray_patch[1] + 56), slice(gray_patch[0] + 40, gray_patch[0] + 56))
    assert np.hypot(result[inner][..., 1], result[inner][..., 2]).max() < 1.5, "a gray dot must keep it neutral"
    assert case["layers"][1]["record"]["data"]["hints"] == "Color hints"


def test_colorize_on_the_hints_layer_colorizes_the_photo_under_it(cases):
    case = successful(cases["on-hints"])
    assert names(case["layers"])[:2] == ["Color hints", "Colorized: tiny-guided"]
    assert [item["id"] for item in case["layers"]][2] == case["source_id"]
    assert case["layers"][1]["record"]["data"]["source_tattoo"] == case["hints_record"]["source_tattoo"]
    assert np.array_equal(pixels.load_dump(case["hints_before"]), pixels.load_dump(case["hints_after"]))
    assert np.array_equal(pixels.load_dump(case["source_before"]), pixels.load_dump(case["source_after"]))


# -------------------------------------------------------------------------------- reference photos


def mean_ab(case, index=0):
    values = lab(case["layers"][index]["pixels"])
    return values[..., 1:].reshape(-1, 2).mean(axis=0)


def test_a_reference_image_or_file_shifts_the_colours_toward_its_own(cases):
    plain = mean_ab(successful(cases["plain"]))
    by_image = mean_ab(successful(cases["reference-image"]))
    by_file = mean_ab(successful(cases["reference-file"]))
    half = mean_ab(successful(cases["reference-half"]))
    warm = colour.rgb_to_lab(np.asarray(Image.open(cases["references"]["warm"]), np.float32) / 255)
    warm = warm[..., 1:].reshape(-1, 2).mean(axis=0)
    shift = by_image - plain
    assert np.abs(by_file - by_image).max() < 0.5, "an open image and its file must lend the same colours"
    assert np.linalg.norm(shift) > 5 and np.dot(shift, warm) > 0, (shift, warm)
    assert np.abs((half - plain) - shift / 2).max() < 1.5, (half - plain, shift)
    record = cases["reference-half"]["layers"][0]["record"]["data"]
    assert record["reference"].startswith("file: ") and record["reference_strength"] == 0.5


def test_the_reference_image_is_only_read(cases):
    case = cases["reference-image"]
    assert np.array_equal(pixels.load_dump(case["opened_before"][0]), pixels.load_dump(case["opened_after"][0]))
    assert case["opened_dirty"] == case["opened_dirty_before"], case["opened_dirty_before"]


def test_a_gray_reference_is_refused_with_the_daemons_sentence(cases):
    case = cases["reference-gray"]
    (run,) = case["runs"]
    assert run["status"] == "execution-error"
    assert run["message"].startswith("The reference photo has no colour (it is gray)"), run["message"]
    assert "the reference photo is the file" in run["message"] and run["message"].endswith(".")
    assert [item["id"] for item in case["layers"]] == [case["source_id"]]
    assert case["base_type_after"] == "gray"


# -------------------------------------------------------------------------------- diverse mode


def test_diverse_samples_are_one_group_above_the_photo_only_the_first_visible(cases):
    case = successful(cases["diverse"])
    first = case["layers"][1]
    assert first["group"] and first["name"] == DIVERSE_GROUP
    assert names(first["children"]) == ["sample %d (seed %d)" % (n + 1, SEED + n) for n in range(4)]
    assert [child["visible"] for child in first["children"]] == [True, False, False, False]
    assert [child["record"]["data"]["seed"] for child in first["children"]] == [SEED + n for n in range(4)]
    assert first["record"] is not None, "the group carries the result parasite too (Repeat on the group)"
    assert case["layers"][-1]["id"] == case["source_id"]


def test_diverse_samples_differ_and_each_keeps_the_photos_lightness(cases):
    samples = [pixels.load_rgba01(child["pixels"]) for child in cases["diverse"]["layers"][1]["children"]]
    source = pixels.lightness(pixels.load_rgba01(cases["diverse"]["source_before"]))
    for sample in samples:
        assert pixels.chroma(sample).mean() > 5.0
        assert np.corrcoef(pixels.lightness(sample).ravel(), source.ravel())[0, 1] > 0.95
        assert np.abs(pixels.lightness(sample) - source).mean() < 3.0
    for one in range(len(samples)):
        for other in range(one + 1, len(samples)):
            assert np.abs(samples[one] - samples[other]).max() > 0.05, "samples %d and %d are alike" % (one, other)


def test_the_same_seed_gives_the_same_layers_and_one_sample_by_its_seed(cases):
    case = cases["diverse"]
    repeat, first, alone = case["layers"][0], case["layers"][1], case["layers"][2]
    assert (repeat["name"], alone["name"]) == (DIVERSE_GROUP + " (2)", DIVERSE_GROUP + " (3)")
    assert names(repeat["children"]) == ["sample %d (seed %d) (2)" % (n + 1, SEED + n) for n in range(4)]
    for again, before in zip(repeat["children"], first["children"]):
        assert np.array_equal(pixels.load_dump(again["pixels"]), pixels.load_dump(before["pixels"]))
    assert names(alone["children"]) == ["sample 1 (seed %d)" % (SEED + 2)]
    assert np.array_equal(pixels.load_dump(alone["children"][0]["pixels"]),
                          pixels.load_dump(first["children"][2]["pixels"]))
