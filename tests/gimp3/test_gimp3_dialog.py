"""The plug-in's dialog, built by the plug-in's own code inside a real GIMP 3 with an X display (Xvfb).

What a person sees: a line saying what the filter does; every field with a mnemonic of its own (GIMP
prints a warning for each duplicate, and Alt+key then does nothing); modes without an installed model
not offered; the model menu following the mode; Variants only in Several variants mode; vibrancy at its
real default. The whole dialog, clicked through in GIMP's window, is in test_gimp3_desktop.py.
"""

import json

import pytest

from tests.gimp3 import desktop

pytestmark = pytest.mark.gimp

INDEX = {"format": 1, "models": [
    {"name": "tiny-full", "task": "full", "default": True, "verified": True},
    {"name": "other-full", "task": "full", "default": False, "verified": False},
    {"name": "tiny-diverse", "task": "diverse", "default": True, "verified": True},
]}


@pytest.fixture(scope="module")
def dialog(sandbox):
    index_file = sandbox.state_dir / "models-index.json"
    index_file.parent.mkdir(parents=True, exist_ok=True)
    saved = index_file.read_text() if index_file.exists() else None
    index_file.write_text(json.dumps(INDEX))
    try:
        run = desktop.run_batch_on_display(sandbox, "dialog.py", {
            "plugin_dir": str(sandbox.profile / "plug-ins" / "gimp_colorize"), "switch_to": ["diverse", "full"]})
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
    shown = [label for label in facts["states"]["diverse"]["labels"] if label["shown"] and label["mnemonic"]]
    keys = [label["mnemonic"].lower() for label in shown]
    assert len(keys) == len(set(keys)), shown
    texts = [label["text"] for label in shown]
    for field in ("Mode", "Model", "Vibrancy", "Add as", "Variants", "OK", "Cancel", "Help"):
        assert field in texts, facts["states"]["diverse"]["labels"]


def test_the_dialog_says_what_the_filter_does(dialog):
    _, facts = dialog
    first = [label["text"] for label in facts["states"]["start"]["labels"] if label["shown"]][0]
    assert first.startswith("Adds natural colors to a black-and-white photo")


def test_only_modes_with_an_installed_model_are_offered(dialog):
    _, facts = dialog
    assert facts["states"]["start"]["modes_offered"] == ["full", "diverse"]


def test_the_model_menu_follows_the_mode_and_variants_show_only_for_diverse(dialog):
    _, facts = dialog
    models, states = facts["models"], facts["states"]
    assert models == ["default", "tiny-diverse", "tiny-full", "other-full"]  # by mode, the default first
    assert models[states["start"]["model_index"]] == "tiny-full"
    assert models[states["diverse"]["model_index"]] == "tiny-diverse"
    assert models[states["full"]["model_index"]] == "tiny-full"
    assert not labels(states["start"])["Variants"]["shown"] and labels(states["diverse"])["Variants"]["shown"]
    assert not labels(states["full"])["Variants"]["shown"]


def test_tooltips_speak_to_people(dialog):
    _, facts = dialog
    tips = " ".join(facts["states"]["start"]["tooltips"])
    assert "1 keeps the model's own colors" in tips
    for internal in ("rgb or color-layer", "full, instance or diverse", "annealed", "temperature"):
        assert internal not in tips
