#!/usr/bin/env python3
"""GIMP 3 plug-in: Filters > Colorize > Colorize Photo (AI)... (procedure plug-in-gimp-colorize).

Only wiring lives here: arguments, the dialog (gimp3_dialog), and turning errors into PDB return values.
The work is done by colorize_flow (host-agnostic) through gimp3_host (the GIMP 3 adapter); all are
copied beside this file when installed (see plugin/README.md).
"""

import os
import sys
import traceback

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, Gio, GLib, GObject  # noqa: E402

import colorize_flow  # noqa: E402
import gimp_colorize_client as client_lib  # noqa: E402
from gimp3_host import Gimp3Host  # noqa: E402

PROCEDURE = "plug-in-gimp-colorize"
HELP_DOMAIN = "gimp-colorize"
HELP_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "help")  # <locale>/gimp-help.xml + pages
# The dialog's model menu: an index into colorize_flow.model_choices (scripts pass `model` by name). Not a
# choice: GIMP 3.0's add_choice_aux_argument lacks add_choice_argument's "(transfer full)", so a choice made in
# Python is freed while the procedure still holds it (a warning at exit, a crash once the dialog uses it).
MODEL_CHOICE = "model-index"
TOOLTIPS = {
    "mode": "Whole photo: %s. Object by object: %s. Several variants: %s." % (
        colorize_flow.MODE_HELP["full"], colorize_flow.MODE_HELP["instance"], colorize_flow.MODE_HELP["diverse"]),
    "model": "The model's name, or \"default\" for the mode's default model.",
    MODEL_CHOICE: "The AI model that colors the photo; the menu offers the models installed for the chosen mode.",
    "vibrancy": "How vivid the colors are: 1 keeps the model's own colors, higher is more vivid, 0 is gray.",
    "output": "Normal layer: the colored photo above the original. Color-only layer: the same layer in LCh Color "
              "mode, so it adds only color to the original and you can paint on it to correct colors.",
    "samples": "How many variants to make, one layer each (Several variants mode only).",
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


def add_arguments(procedure, index):
    flags = GObject.ParamFlags.READWRITE
    modes = [(mode, label) for mode, label, _ in colorize_flow.mode_choices(index)]
    outputs = [(output, colorize_flow.OUTPUT_LABELS[output]) for output in colorize_flow.OUTPUTS]
    # Mnemonics: the dialog's buttons take h(elp), r(eset), c(ancel), o(k), l(oad) and s(ave).
    procedure.add_choice_argument("mode", "_Mode", TOOLTIPS["mode"], _choice(modes), "full", flags)
    procedure.add_string_argument("model", "Model name", TOOLTIPS["model"], colorize_flow.DEFAULT_MODEL, flags)
    procedure.add_double_argument("vibrancy", "_Vibrancy", TOOLTIPS["vibrancy"], colorize_flow.VIBRANCY_MIN,
                                  colorize_flow.VIBRANCY_MAX, colorize_flow.DEFAULT_VIBRANCY, flags)
    procedure.add_choice_argument("output", "_Add as", TOOLTIPS["output"], _choice(outputs), "rgb", flags)
    procedure.add_int_argument("samples", "Varia_nts", TOOLTIPS["samples"], 1, colorize_flow.MAX_SAMPLES, 1, flags)
    procedure.add_int_aux_argument(MODEL_CHOICE, "Mo_del", TOOLTIPS[MODEL_CHOICE], 0,
                                   len(colorize_flow.model_choices(index)) - 1, 0, flags)


def configure(procedure, index):
    """Everything GIMP shows of the procedure: menu, label, help, arguments (the dialog test builds one too)."""
    procedure.set_image_types("RGB*, GRAY*")
    procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
    procedure.set_menu_label(colorize_flow.TITLE + "...")
    procedure.add_menu_path("<Image>/Filters/Colorize")
    procedure.set_documentation(
        colorize_flow.DESCRIPTION,
        colorize_flow.DESCRIPTION + " With a selection, only the selected area gets color. The first run starts "
        "the gimp-colorize service on this computer, which takes a few seconds. Filters > Repeat on a layer "
        "this filter made colorizes the layer it was made from again.",
        PROCEDURE)  # the help id, mapped to a page in HELP_DIR
    procedure.set_attribution("gimp-colorize authors", "GPL-3.0-or-later", "2026")
    add_arguments(procedure, index)


def _settings_from(config):
    return colorize_flow.Settings(
        mode=config.get_property("mode"),
        model=config.get_property("model") or "",
        vibrancy=config.get_property("vibrancy"),
        output=config.get_property("output"),
        samples=config.get_property("samples"),
    )


def _failure(procedure, message):
    return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(message))


class ColorizePlugIn(Gimp.PlugIn):
    def do_query_procedures(self):
        self.set_help_domain(HELP_DOMAIN, Gio.File.new_for_path(HELP_DIR))
        return [PROCEDURE]

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, self.run, None)
        self.index = installed_models()
        configure(procedure, self.index)
        return procedure

    def run(self, procedure, run_mode, image, drawables, config, run_data):
        if len(drawables) != 1 or not isinstance(drawables[0], Gimp.Layer):
            return _failure(procedure, "Select exactly one layer to colorize.")
        if run_mode == Gimp.RunMode.INTERACTIVE:
            import gimp3_dialog  # GTK is loaded only when there is a dialog to show

            if not gimp3_dialog.confirmed(procedure, config, self.index, MODEL_CHOICE):
                return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
        try:
            colorize_flow.colorize(Gimp3Host(), image, drawables[0], _settings_from(config))
        except client_lib.ClientError as exc:
            return _failure(procedure, exc.message)
        except Exception as exc:  # a bug: keep GIMP's message short, the traceback goes to the terminal
            traceback.print_exc()
            return _failure(procedure, "gimp-colorize failed unexpectedly (%s: %s). Please report this."
                            % (type(exc).__name__, exc))
        if run_mode != Gimp.RunMode.NONINTERACTIVE:
            Gimp.displays_flush()
        return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


if __name__ == "__main__":
    Gimp.main(ColorizePlugIn.__gtype__, sys.argv)
