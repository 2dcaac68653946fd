"""What GIMP shows of the plug-in's two procedures: menu entries, labels, help, arguments, ranges, tooltips.

plug-in-gimp-colorize (Filters > Colorize > Colorize Photo (AI)...) and plug-in-gimp-colorize-hints-layer
(Filters > Colorize > Add Color Hints Layer). The dialog test builds them too (tests/gimp3/batch/dialog.py).
"""

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, GObject  # noqa: E402

import colorize_flow  # noqa: E402
import gimp_colorize_client as client_lib  # noqa: E402

PROCEDURE = "plug-in-gimp-colorize"
HINTS_PROCEDURE = "plug-in-gimp-colorize-hints-layer"
# The dialog's menus: ints indexing lists the dialog builds (scripts pass `model` by name, `hints-layer` and
# `reference-image` as objects). Not choices: GIMP 3.0's add_choice_aux_argument lacks add_choice_argument's
# "(transfer full)", so a choice made in Python is freed while the procedure still holds it (a warning at exit,
# a crash once the dialog uses it).
MODEL_CHOICE = "model-index"
HINTS_CHOICE = "hints-index"
REFERENCE_CHOICE = "reference-index"
MENU_LIMIT = 10000  # the hints and reference menus list the image's layers and the open images
TOOLTIPS = {
    "mode": "Whole photo: %s. Object by object: %s. Several variants: %s." % (
        colorize_flow.MODE_HELP["full"], colorize_flow.MODE_HELP["instance"], colorize_flow.MODE_HELP["diverse"]),
    "model": "The model's name, or \"default\" for the mode's default model.",
    MODEL_CHOICE: "The AI model that colors the photo; the menu offers the models installed for the chosen mode. "
                  "With color hints or a reference photo, the mode's default is the installed model that takes them.",
    "vibrancy": "How vivid the colors are: 1 keeps the model's own colors, higher is more vivid, 0 is gray.",
    "output": "Normal layer: the colored photo above the original. Color-only layer: the same layer in LCh Color "
              "mode, so it adds only color to the original and you can paint on it to correct colors.",
    "samples": "How many variants to make, one layer each, in one layer group (Several variants mode only).",
    "seed": "Several variants mode: -1 makes new variants each run. Each variant's layer is named with its seed: "
            "that seed with 1 variant makes exactly that layer again.",
    "hints": "Where the color hints come from: the image's Color hints layer if it has one, none, or the layer "
             "given as the hints layer.",
    "hints-layer": "The layer with the color hints when Color hints is set to the layer chosen.",
    HINTS_CHOICE: "Color dots painted on a transparent layer: the photo gets those colors there (a gray dot keeps "
                  "a place neutral). Filters > Colorize > Add Color Hints Layer makes such a layer.",
    "reference": "Where the reference photo comes from: none, an open image or a file.",
    "reference-image": "The open image whose colors to follow, when the reference photo is an open image.",
    "reference-file": "A color photo whose colors to follow (any image file GIMP opens).",
    REFERENCE_CHOICE: "A color photo whose colors the result follows: one of the open images (what it shows) or a "
                      "file.",
    "reference-strength": "How closely to follow the reference photo's colors: 1 fully, 0 not at all.",
    "boxes": "Object by object mode: how the objects are found. With the selection, each separate selected area "
             "is one object and the whole layer is colorized.",
    "instance-layers": "Object by object mode: also add each object's own coloring as a layer (in a group "
                       "\"Instances\", each with a mask), to mix by hand.",
}


def installed_models():
    """The backend's models index, read when GIMP creates the procedure; None without one."""
    try:
        return client_lib.load_models_index(client_lib.load_config())
    except client_lib.ClientError:
        return None  # a broken config.json is reported when the filter runs


def _choice(entries):
    choice = Gimp.Choice.new()
    for number, (nick, label) in enumerate(entries):
        choice.add(nick, number, label, "")
    return choice


def _labelled(choices, labels):
    return _choice([(choice, labels[choice]) for choice in choices])


def add_arguments(procedure, index):
    flags = GObject.ParamFlags.READWRITE
    flow = colorize_flow
    modes = [(mode, label) for mode, label, _ in flow.mode_choices(index)]
    # Mnemonics: the dialog's buttons take h(elp), r(eset), c(ancel), o(k), l(oad) and s(ave).
    procedure.add_choice_argument("mode", "_Mode", TOOLTIPS["mode"], _choice(modes), "full", flags)
    procedure.add_string_argument("model", "Model name", TOOLTIPS["model"], flow.DEFAULT_MODEL, flags)
    procedure.add_double_argument("vibrancy", "_Vibrancy", TOOLTIPS["vibrancy"], flow.VIBRANCY_MIN,
                                  flow.VIBRANCY_MAX, flow.DEFAULT_VIBRANCY, flags)
    procedure.add_choice_argument("output", "_Add as", TOOLTIPS["output"], _labelled(flow.OUTPUTS, flow.OUTPUT_LABELS),
                                  "rgb", flags)
    procedure.add_int_argument("samples", "Varia_nts", TOOLTIPS["samples"], 1, flow.MAX_SAMPLES, 1, flags)
    procedure.add_int_argument("seed", "S_eed", TOOLTIPS["seed"], flow.RANDOM_SEED, flow.MAX_SEED, flow.RANDOM_SEED,
                               flags)
    procedure.add_choice_argument("hints", "Color hints", TOOLTIPS["hints"],
                                  _labelled(flow.HINTS_CHOICES, flow.HINTS_LABELS), "auto", flags)
    procedure.add_layer_argument("hints-layer", "Hints layer", TOOLTIPS["hints-layer"], True, flags)
    procedure.add_choice_argument("reference", "Reference photo", TOOLTIPS["reference"],
                                  _labelled(flow.REFERENCE_CHOICES, flow.REFERENCE_LABELS), "none", flags)
    procedure.add_image_argument("reference-image", "Reference image", TOOLTIPS["reference-image"], True, flags)
    procedure.add_file_argument("reference-file", "Reference _file", TOOLTIPS["reference-file"],
                                Gimp.FileChooserAction.OPEN, True, None, flags)
    procedure.add_double_argument("reference-strength", "Reference stren_gth", TOOLTIPS["reference-strength"],
                                  0.0, 1.0, 1.0, flags)
    procedure.add_choice_argument("boxes", "Find o_bjects", TOOLTIPS["boxes"],
                                  _labelled(flow.BOX_CHOICES, flow.BOX_LABELS), "auto", flags)
    procedure.add_boolean_argument("instance-layers", "A layer per ob_ject", TOOLTIPS["instance-layers"], False,
                                   flags)
    procedure.add_int_aux_argument(MODEL_CHOICE, "Mo_del", TOOLTIPS[MODEL_CHOICE], 0,
                                   len(flow.model_choices(index)) - 1, 0, flags)
    procedure.add_int_aux_argument(HINTS_CHOICE, "Color hin_ts", TOOLTIPS[HINTS_CHOICE], 0, MENU_LIMIT, 0, flags)
    procedure.add_int_aux_argument(REFERENCE_CHOICE, "Reference _photo", TOOLTIPS[REFERENCE_CHOICE], 0, MENU_LIMIT,
                                   0, flags)


def configure(procedure, index):
    """Everything GIMP shows of the colorize procedure: menu, label, help, arguments."""
    procedure.set_image_types("RGB*, GRAY*")
    procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
    procedure.set_menu_label(colorize_flow.TITLE + "...")
    procedure.add_menu_path("<Image>/Filters/Colorize")
    procedure.set_documentation(
        colorize_flow.DESCRIPTION,
        colorize_flow.DESCRIPTION + " With a selection, only the selected area gets color (in Object by object mode "
        "with objects found from the selection, the selection marks the objects instead and the whole layer gets "
        "color). A Color hints layer (Filters > Colorize > Add Color Hints Layer) steers the colors; a reference "
        "photo lends its colors. The first run starts the gimp-colorize service on this computer, which takes a "
        "few seconds. Filters > Repeat on a layer this filter made colorizes the layer it was made from again.",
        PROCEDURE)  # the help id, mapped to a page in the help folder
    procedure.set_attribution("gimp-colorize authors", "GPL-3.0-or-later", "2026")
    add_arguments(procedure, index)


def configure_hints(procedure):
    """Filters > Colorize > Add Color Hints Layer: no arguments, no dialog."""
    procedure.set_image_types("RGB*, GRAY*")
    procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
    procedure.set_menu_label(colorize_flow.HINTS_TITLE)
    procedure.add_menu_path("<Image>/Filters/Colorize")
    procedure.set_documentation(colorize_flow.HINTS_DESCRIPTION, colorize_flow.HINTS_DESCRIPTION + " A gray image "
                                "becomes RGB, so that colors can be painted.", PROCEDURE)
    procedure.set_attribution("gimp-colorize authors", "GPL-3.0-or-later", "2026")


def settings_from(config):
    reference_file = config.get_property("reference-file")
    return colorize_flow.Settings(
        mode=config.get_property("mode"),
        model=config.get_property("model") or "",
        vibrancy=config.get_property("vibrancy"),
        output=config.get_property("output"),
        samples=config.get_property("samples"),
        seed=config.get_property("seed"),
        hints=config.get_property("hints"),
        hints_layer=config.get_property("hints-layer"),
        reference=config.get_property("reference"),
        reference_image=config.get_property("reference-image"),
        reference_file=reference_file.get_path() if reference_file is not None else None,
        reference_strength=config.get_property("reference-strength"),
        boxes=config.get_property("boxes"),
        instance_layers=config.get_property("instance-layers"),
    )
