# Build the plug-in's real dialog (gimp3_dialog.build, as the plug-in does before dialog.run) inside GIMP,
# under Xvfb, and report what a person would see: labels with their mnemonics, buttons, what is visible,
# which modes can be chosen, and how the model menu and Variants follow the mode.
sys.path.insert(0, PARAMS["plugin_dir"])
gi.require_version("GimpUi", "3.0")
gi.require_version("Gtk", "3.0")
from gi.repository import GimpUi, Gtk  # noqa: E402

import colorize_flow  # noqa: E402
import gimp3_dialog  # noqa: E402
import gimp_colorize  # noqa: E402


def widgets(root):
    found = [root]
    if isinstance(root, Gtk.Container):
        children = []
        root.forall(children.append)  # internal children too (a dialog's action area)
        for child in children:
            found.extend(widgets(child))
    return found


def shown(widget):
    while widget is not None:
        if not widget.get_visible():
            return False
        widget = widget.get_parent()
    return True


def label_facts(dialog):
    facts = []
    for widget in widgets(dialog):
        if isinstance(widget, Gtk.Label) and widget.get_text().strip():
            text, key = widget.get_text(), widget.get_mnemonic_keyval()
        elif isinstance(widget, GimpUi.SpinScale):  # draws its own label
            text, key = (widget.get_label() or "").replace("_", ""), widget.get_mnemonic_keyval()
        else:
            continue
        facts.append({"text": text, "shown": shown(widget),
                      "mnemonic": Gdk.keyval_name(key) if key != Gdk.KEY_VoidSymbol else None})
    return facts


def snapshot(dialog, config, procedure):
    choice = Gimp.param_spec_choice_get_choice(procedure.find_argument("mode"))
    return {"labels": label_facts(dialog), "mode": config.get_property("mode"),
            "model_index": config.get_property(gimp_colorize.MODEL_CHOICE),
            "modes_offered": [mode for mode in colorize_flow.MODES if choice.is_valid(mode)],
            "tooltips": sorted(set(w.get_tooltip_text() for w in widgets(dialog) if w.get_tooltip_text()))}


gi.require_version("Gdk", "3.0")
from gi.repository import Gdk  # noqa: E402

GimpUi.init("gimp_colorize")
procedure = Gimp.ImageProcedure.new(Gimp.get_plug_in(), "plug-in-gimp-colorize-dialog-probe",
                                    Gimp.PDBProcType.PLUGIN, lambda *args: None, None)
index = gimp_colorize.installed_models()
gimp_colorize.configure(procedure, index)
config = procedure.create_config()
dialog = gimp3_dialog.build(procedure, config, index, gimp_colorize.MODEL_CHOICE)
dialog.show()
while Gtk.events_pending():
    Gtk.main_iteration()
facts = {"models": [name for name, _ in colorize_flow.model_choices(index)], "states": {}}
facts["states"]["start"] = snapshot(dialog, config, procedure)
for mode in PARAMS.get("switch_to", []):
    config.set_property("mode", mode)
    while Gtk.events_pending():
        Gtk.main_iteration()
    facts["states"][mode] = snapshot(dialog, config, procedure)
dialog.destroy()
emit(facts)
