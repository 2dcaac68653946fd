# Build the plug-in's real dialog (gimp3_dialog.build, as the plug-in does before dialog.run) inside GIMP,
# under Xvfb, and report what a person would see: labels with their mnemonics, buttons, what is visible,
# which modes can be chosen, and how the model menu and Variants follow the mode.
sys.path.insert(0, PARAMS["plugin_dir"])
gi.require_version("GimpUi", "3.0")
gi.require_version("Gtk", "3.0")
from gi.repository import GimpUi, Gtk  # noqa: E402

import colorize_flow  # noqa: E402
import gimp3_dialog  # noqa: E402
import gimp3_procedures  # noqa: E402
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

def images_for_the_menus():
    """A gray photo with a Color hints layer (made by the plug-in's own procedure) and a result layer above it,
    plus a second open image for the reference menu; -> (image, photo layer)."""
    image = Gimp.Image.new(64, 48, Gimp.ImageBaseType.GRAY)
    photo = Gimp.Layer.new(image, "photo", 64, 48, Gimp.ImageType.GRAY_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
    image.insert_layer(photo, None, 0)
    procedure = Gimp.get_pdb().lookup_procedure("plug-in-gimp-colorize-hints-layer")
    config = procedure.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    config.set_property("image", image)
    config.set_core_object_array("drawables", [photo])
    procedure.run(config)
    result = Gimp.Layer.new(image, "Colorized: tiny-full", 64, 48, Gimp.ImageType.RGBA_IMAGE, 100.0,
                            Gimp.LayerMode.NORMAL)
    image.insert_layer(result, None, 0)
    result.attach_parasite(Gimp.Parasite.new("gimp-colorize-result", 1, list(b'{"source_tattoo": 1}')))
    other = Gimp.Image.new(32, 32, Gimp.ImageBaseType.RGB)
    other.insert_layer(Gimp.Layer.new(other, "Background", 32, 32, Gimp.ImageType.RGB_IMAGE, 100.0,
                                      Gimp.LayerMode.NORMAL), None, 0)
    return image, photo, other


def menus_facts(menus, config):
    menus.store(config)
    return {"hints_menu": [label for _, label in menus.hints], "reference_menu": [label for _, label in menus.references],
            "hints": config.get_property("hints"), "reference": config.get_property("reference"),
            "hints_index": config.get_property(gimp3_procedures.HINTS_CHOICE),
            "chosen_model": gimp3_dialog.chosen_model(config, index)}


GimpUi.init("gimp_colorize")
procedure = Gimp.ImageProcedure.new(Gimp.get_plug_in(), "plug-in-gimp-colorize-dialog-probe",
                                    Gimp.PDBProcType.PLUGIN, lambda *args: None, None)
index = gimp_colorize.installed_models()
gimp_colorize.configure(procedure, index)
config = procedure.create_config()
image, photo, other = images_for_the_menus() if PARAMS.get("with_images") else (None, None, None)
dialog, menus = gimp3_dialog.build(procedure, config, index, image, photo)
dialog.show()
while Gtk.events_pending():
    Gtk.main_iteration()
facts = {"models": [name for name, _ in colorize_flow.model_choices(index)], "states": {},
         "other_image": other.get_name() if other is not None else None}
facts["states"]["start"] = snapshot(dialog, config, procedure)
facts["states"]["start"].update(menus_facts(menus, config))
for name, changes in PARAMS.get("steps", []):
    for key, value in changes.items():
        config.set_property(key, value)
    while Gtk.events_pending():
        Gtk.main_iteration()
    facts["states"][name] = snapshot(dialog, config, procedure)
    facts["states"][name].update(menus_facts(menus, config))
dialog.destroy()
if PARAMS.get("also_without"):  # the same dialog with one mode's models gone from the index
    from colorize_flow import client_lib  # noqa: E402

    fewer = client_lib.ModelsIndex([model for model in index.models if model["task"] != PARAMS["also_without"]],
                                   index.user_models_dir)
    probe = Gimp.ImageProcedure.new(Gimp.get_plug_in(), "plug-in-gimp-colorize-dialog-probe-2",
                                    Gimp.PDBProcType.PLUGIN, lambda *args: None, None)
    gimp_colorize.configure(probe, fewer)
    second, _ = gimp3_dialog.build(probe, probe.create_config(), fewer, image, photo)
    facts["without"] = snapshot(second, probe.create_config(), probe)
    second.destroy()
for made in (image, other):
    if made is not None:
        made.delete()
emit(facts)
