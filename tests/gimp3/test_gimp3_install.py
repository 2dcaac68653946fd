"""The real install.py puts the plug-in where a real GIMP 3 finds it, with the label, help and arguments users see."""

import json
import os

import pytest

pytestmark = pytest.mark.gimp


def test_install_writes_an_executable_entry_the_config_and_the_help_pages(sandbox):
    entry = sandbox.profile / "plug-ins" / "gimp_colorize" / "gimp_colorize.py"
    assert entry.is_file() and os.access(entry, os.X_OK)
    config = json.loads((sandbox.config_dir / "config.json").read_text())
    assert config["port"] == sandbox.port
    assert config["python"] == str(sandbox.python_wrapper)
    assert (sandbox.config_dir / "token").stat().st_mode & 0o077 == 0
    assert (entry.parent / "help" / "en" / "gimp-help.xml").is_file()


@pytest.fixture(scope="module")
def probe(sandbox):
    run = sandbox.run_batch("probe.py", {})
    facts = run.only_facts()
    assert facts["found"], "GIMP did not register the plug-in:\n" + run.report()
    ours = [line for line in run.stderr.splitlines() if "gimp_colorize" in line and (
        "Warning" in line or "CRITICAL" in line or "Traceback" in line or "fatal error" in line)]
    assert ours == [], run.report()  # e.g. GIMP 3.0's add_choice_aux_argument freeing a choice twice
    return facts


def test_gimp_registers_the_procedure_with_an_unmistakable_label(probe, sandbox):
    assert probe["gimp_version"] == sandbox.version
    assert probe["menu_paths"] == ["<Image>/Filters/Colorize"]
    assert probe["menu_label"] == "Colorize Photo (AI)..."  # Colors > Colorize is GIMP's own tint tool
    assert probe["blurb"].startswith("Adds natural colors to a black-and-white photo")
    assert probe["help_id"] == "gimp-colorize?plug-in-gimp-colorize"  # GIMP prefixes our help domain
    assert "Repeat" in probe["help"]


def test_the_arguments_scripts_see(probe):
    assert probe["arguments"] == ["run-mode", "image", "drawables", "mode", "model", "vibrancy", "output", "samples",
                                  "seed", "hints", "hints-layer", "reference", "reference-image", "reference-file",
                                  "reference-strength", "boxes", "instance-layers"]
    specs = probe["specs"]
    assert (specs["samples"]["minimum"], specs["samples"]["maximum"]) == (1, 16)
    assert (specs["seed"]["default"], specs["seed"]["minimum"], specs["seed"]["maximum"]) == (-1, -1, 2 ** 31 - 1)
    assert sorted(specs["hints"]["choices"]) == ["auto", "layer", "none"] and specs["hints"]["default"] == "auto"
    assert sorted(specs["reference"]["choices"]) == ["file", "image", "none"]
    assert (specs["reference-strength"]["default"], specs["reference-strength"]["maximum"]) == (1.0, 1.0)
    assert specs["boxes"]["choices"] == {"auto": "Automatically", "selection": "From the selection",
                                         "both": "Automatically and from the selection"}
    assert (specs["vibrancy"]["default"], specs["vibrancy"]["minimum"], specs["vibrancy"]["maximum"]) == (1.0, 0.0, 2.0)
    assert "1 keeps the model's own colors" in specs["vibrancy"]["blurb"]
    assert specs["model"]["default"] == "default"
    assert sorted(specs["mode"]["choices"]) == ["diverse", "full", "instance"]
    assert specs["output"]["choices"] == {"rgb": "Normal layer", "color-layer": "Color-only layer (LCh Color mode)"}


def test_no_label_or_tooltip_shows_internal_values_or_british_spelling(probe):
    texts = [spec.get("blurb", "") + " " + spec.get("nick", "") + " " + " ".join(spec.get("choices", {}).values())
             for name, spec in probe["specs"].items() if name not in ("run-mode", "image", "drawables")]
    for text in texts + [probe["blurb"], probe["help"]]:
        assert "olour" not in text, text
        assert "rgb or color-layer" not in text and "full, instance or diverse" not in text, text
        assert "temperature" not in text.lower(), text


def test_add_color_hints_layer_is_registered_beside_the_filter(probe):
    hints = probe["hints_procedure"]
    assert hints["found"], probe
    assert (hints["menu_paths"], hints["menu_label"]) == (["<Image>/Filters/Colorize"], "Add Color Hints Layer")
    assert hints["arguments"] == ["run-mode", "image", "drawables"]
    assert "a gray dot keeps a place neutral" in hints["blurb"]
