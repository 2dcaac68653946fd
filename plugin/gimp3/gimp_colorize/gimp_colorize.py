#!/usr/bin/env python3
"""GIMP 3.0 plug-in: Filters > Colorize > Colorize (AI)... (procedure plug-in-gimp-colorize).

Only wiring lives here: arguments, the dialog, and turning errors into PDB return values.
The work is done by colorize_flow (host-agnostic) through gimp3_host (the GIMP 3 adapter);
both are copied beside this file when installed (see plugin/README.md).
"""

import sys
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
from gi.repository import GLib, GObject, Gimp, GimpUi  # noqa: E402

import colorize_flow  # noqa: E402
from gimp3_host import Gimp3Host  # noqa: E402
from gimp_colorize_client import ClientError  # noqa: E402

PROCEDURE = "plug-in-gimp-colorize"
BINARY = "gimp_colorize"
MODE_LABELS = (("full", "Full image"), ("instance", "Instance-aware"), ("diverse", "Diverse (several layers)"))
OUTPUT_LABELS = (("rgb", "RGB layer"), ("color-layer", "Colour layer (LCh Color mode, paintable)"))


def _choice(entries):
    choice = Gimp.Choice.new()
    for number, (nick, label) in enumerate(entries):
        choice.add(nick, number, label, "")
    return choice


def _add_arguments(procedure):
    flags = GObject.ParamFlags.READWRITE
    procedure.add_choice_argument("mode", "_Mode", "full, instance or diverse", _choice(MODE_LABELS), "full",
                                  flags)
    procedure.add_string_argument("model", "Mo_del", "Model name; empty for the mode's default", "", flags)
    procedure.add_double_argument("temperature", "_Vibrancy",
                                  "Annealed-mean temperature (lower is more vivid); 0 for the model's default",
                                  0.0, 1.0, 0.0, flags)
    procedure.add_choice_argument("output", "_Output", "rgb or color-layer", _choice(OUTPUT_LABELS), "rgb",
                                  flags)
    procedure.add_int_argument("samples", "_Samples", "Number of layers in diverse mode", 1,
                               colorize_flow.MAX_SAMPLES, 1, flags)


def _settings_from(config):
    return colorize_flow.Settings(
        mode=config.get_property("mode"),
        model=config.get_property("model") or "",
        temperature=config.get_property("temperature"),
        output=config.get_property("output"),
        samples=config.get_property("samples"),
    )


def _dialog_confirmed(procedure, config):
    GimpUi.init(BINARY)
    dialog = GimpUi.ProcedureDialog(procedure=procedure, config=config, title="Colorize (AI)")
    dialog.fill(None)
    confirmed = dialog.run()
    dialog.destroy()
    return confirmed


def _failure(procedure, message):
    return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(message))


class ColorizePlugIn(Gimp.PlugIn):
    def do_query_procedures(self):
        return [PROCEDURE]

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, self.run, None)
        procedure.set_image_types("RGB*, GRAY*")
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        procedure.set_menu_label("Colorize (AI)...")
        procedure.add_menu_path("<Image>/Filters/Colorize")
        procedure.set_documentation(
            "Colorize a black-and-white photo with a local AI model",
            "Adds the colorized result as new layer(s) directly above the selected layer, which is left "
            "unchanged. With a selection, only the selected area receives colour. Needs the gimp-colorize "
            "daemon, which the plug-in starts when it is not running.",
            name)
        procedure.set_attribution("gimp-colorize authors", "GPL-3.0-or-later", "2026")
        _add_arguments(procedure)
        return procedure

    def run(self, procedure, run_mode, image, drawables, config, run_data):
        if len(drawables) != 1 or not isinstance(drawables[0], Gimp.Layer):
            return _failure(procedure, "Select exactly one layer to colorize.")
        if run_mode == Gimp.RunMode.INTERACTIVE and not _dialog_confirmed(procedure, config):
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
        try:
            colorize_flow.colorize(Gimp3Host(), image, drawables[0], _settings_from(config))
        except ClientError as exc:
            return _failure(procedure, exc.message)
        except Exception as exc:  # a bug: keep GIMP's message short, the traceback goes to the terminal
            traceback.print_exc()
            return _failure(procedure, "gimp-colorize failed unexpectedly (%s: %s). Please report this."
                            % (type(exc).__name__, exc))
        if run_mode == Gimp.RunMode.INTERACTIVE:
            Gimp.displays_flush()
        return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


Gimp.main(ColorizePlugIn.__gtype__, sys.argv)
