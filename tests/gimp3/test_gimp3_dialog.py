"""The plug-in's dialog, built by the plug-in's own code inside a real GIMP 3 with an X display (Xvfb).

What a person sees: a line saying what the filter does; every field with a mnemonic of its own (GIMP
prints a warning for each duplicate, and Alt+key then does nothing); modes without an installed model
not offered; the model menu following the mode; Variants and Seed only in Several variants mode, the
object fields only in Object by object mode with a line on what the selection does; the Color hints menu
with the image's hints layer chosen (never the photo or a result); the Reference photo menu with the other
open images and a file; vibrancy at its real default. The whole dialog, clicked through in GIMP's window, is in test_gimp3_desktop.py.
"""

import json

import pytest

from tests.gimp3 import desktop

pytestmark = pytest.mark.gimp

INDEX = {"format": 1, "models": [
    {"name": "tiny-full", "task": "full", "default": True, "verified": True},
    {"name": "other-full", "task": "full", "default": False, "verified": False},
    {"name": "tiny-diverse", "task": "diverse", "default": True, "verified": True},
    {"name": "tiny-instance", "task": "instance", "default": True, "verified": True},
]}


# What a person does in the dialog, one change after the other (a snapshot after each).
STEPS = [["diverse", {"mode": "diverse"}], ["full", {"mode": "full"}], ["instance", {"mode": "instance"}],
         ["objects-from-selection", {"boxes": "selection"}], ["reference-file", {"reference-index": 2}],
         ["no-hints", {"hints-index": 0}], ["open-image", {"reference-index": 1}]]


@pytest.fixture(scope="module")
def dialog(sandbox):
    index_file = sandbox.state_dir / "models-index.json"
    index_file.parent.mkdir(parents=True, exist_ok=True)
    saved = index_file.read_text() if index_file.exists() else None
    index_file.write_text(json.dumps(INDEX))
    try:
        run = desktop.run_batch_on_display(sandbox, "dialog.py", {
            "plugin_dir": str(sandbox.profile / "plug-ins" / "gimp_colorize"), "with_images": True, "steps": STEPS,
            "also_without": "instance"})
    finally:
        if saved is None:
            index_file.unlink()
        else:
            index_file.write_text(saved)
    facts = run.only_facts()
    return run, facts


def labels(state):
    return {label["text"]: label for label in state["labels"]}


def test_gimp_finds_no_duplicate_or_missing_mnemonic(dialog):
    run, facts = dialog
    complaints = [line for line in run.stderr.splitlines() if "mnemonic" in line]
    assert complaints == [], "\n".join(complaints)


def test_every_field_and_button_has_its_own_mnemonic(dialog):
    _, facts = dialog
    every = [label for label in facts["states"]["diverse"]["labels"] + facts["states"]["no-hints"]["labels"]
             if label["mnemonic"]]
    keys = dict((label["text"], label["mnemonic"].lower()) for label in every)
    assert len(set(keys.values())) == len(keys), keys
    for field in ("Mode", "Model", "Vibrancy", "Add as", "Variants", "Seed", "Color hints", "Reference photo",
                  "Reference file", "Reference strength", "Find objects", "A layer per object", "OK", "Cancel",
                  "Help"):
        assert field in keys, every


def test_the_dialog_says_what_the_filter_does(dialog):
    _, facts = dialog
    first = [label["text"] for label in facts["states"]["start"]["labels"] if label["shown"]][0]
    assert first.startswith("Adds natural colors to a black-and-white photo")


def test_only_modes_with_an_installed_model_are_offered(dialog):
    _, facts = dialog
    assert facts["states"]["start"]["modes_offered"] == ["full", "instance", "diverse"]
    assert facts["without"]["modes_offered"] == ["full", "diverse"]


def test_the_model_menu_follows_the_mode_and_variants_show_only_for_diverse(dialog):
    _, facts = dialog
    models, states = facts["models"], facts["states"]
    assert models == ["default", "tiny-diverse", "tiny-full", "other-full", "tiny-instance"]  # by mode, default first
    assert models[states["start"]["model_index"]] == "tiny-full"
    assert models[states["diverse"]["model_index"]] == "tiny-diverse"
    assert models[states["full"]["model_index"]] == "tiny-full"
    # OK sends the mode's default model as "default": with hints the daemon takes the model that takes them
    assert [states[name]["chosen_model"] for name in ("start", "diverse", "full")] == ["default"] * 3
    for field in ("Variants", "Seed"):
        assert [labels(states[name])[field]["shown"] for name in ("start", "diverse", "full", "instance")] == [
            False, True, False, False], field


def shown_in(state, *fields):
    return [labels(state)[field]["shown"] for field in fields]


def test_object_fields_show_in_object_mode_with_a_line_on_what_the_selection_does(dialog):
    _, facts = dialog
    states = facts["states"]
    note = "The selection marks the objects (each separate selected area is one object), and the whole layer is " \
           "colorized."
    assert shown_in(states["full"], "Find objects", "A layer per object", note) == [False, False, False]
    assert shown_in(states["instance"], "Find objects", "A layer per object", note) == [True, True, False]
    assert shown_in(states["objects-from-selection"], "Find objects", note) == [True, True]


def test_the_hints_menu_offers_the_images_hints_layer_chosen_and_never_the_photo_or_a_result(dialog):
    _, facts = dialog
    start = facts["states"]["start"]
    assert start["hints_menu"] == ["None", "Color hints"]  # not "photo", not "Colorized: tiny-full"
    assert (start["hints_index"], start["hints"]) == (1, "auto")
    assert facts["states"]["no-hints"]["hints"] == "none"


def test_the_reference_menu_offers_the_other_open_images_and_a_file(dialog):
    _, facts = dialog
    states = facts["states"]
    assert states["start"]["reference_menu"] == ["None", facts["other_image"], "A file (choose it below)"]
    assert states["start"]["reference"] == "none"
    assert shown_in(states["start"], "Reference file", "Reference strength") == [False, False]
    assert states["reference-file"]["reference"] == "file"
    assert shown_in(states["reference-file"], "Reference file", "Reference strength") == [True, True]
    assert states["open-image"]["reference"] == "image"
    assert shown_in(states["open-image"], "Reference file", "Reference strength") == [False, True]


def test_tooltips_speak_to_people(dialog):
    _, facts = dialog
    tips = " ".join(facts["states"]["start"]["tooltips"])
    assert "1 keeps the model's own colors" in tips
    for internal in ("rgb or color-layer", "full, instance or diverse", "annealed", "temperature"):
        assert internal not in tips
