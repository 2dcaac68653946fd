"""Every GIMP 3 API name the plug-in uses exists in the real GIMP 3.0 bindings.

The end-to-end tests (tests/gimp3) run the plug-in in batch mode, which never reaches the dialog
(GimpUi) or the interactive branches; a typo there would only show up in front of a user. This test
imports the real typelibs in the cached trixie root (no display needed) and looks every name up.
"""

import json
import re
from pathlib import Path

import pytest

from tests.support.debroot import RootPrivilegesMissing, run_in_root

PLUGIN_DIR = Path(__file__).resolve().parent.parent / "plugin" / "gimp3" / "gimp_colorize"

CHECK = r"""
import json, sys
import gi
gi.require_version("Gimp", "3.0"); gi.require_version("GimpUi", "3.0"); gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GimpUi, GLib, GObject
missing = []
for dotted in json.loads(sys.stdin.read()):
    head, *rest = dotted.split(".")
    obj = {"Gimp": Gimp, "GimpUi": GimpUi, "Gegl": Gegl, "GLib": GLib, "GObject": GObject}[head]
    try:
        for part in rest:
            obj = getattr(obj, part)
    except AttributeError:
        missing.append(dotted)
props = [p.name for p in GimpUi.ProcedureDialog.list_properties()]
print(json.dumps({"missing": missing, "dialog_props": props}))
"""


def used_names():
    """Gimp.X.Y / GimpUi.X / Gegl.X names in the plug-in's source (module-level attribute chains)."""
    names = set()
    for source in PLUGIN_DIR.glob("*.py"):
        names.update(re.findall(r"\b(?:Gimp|GimpUi|Gegl)(?:\.[A-Za-z_][A-Za-z0-9_]*)+", source.read_text()))
    return sorted(names)


@pytest.fixture(scope="module")
def gimp_root():
    from tests.gimp3.harness import provision_gimp_root
    try:
        return provision_gimp_root()
    except RootPrivilegesMissing as exc:
        pytest.skip(str(exc))


@pytest.mark.gimp
def test_every_gimp_name_the_plugin_uses_exists(gimp_root):
    names = used_names()
    # Method names called on instances do not appear as Gimp.X chains; check the important ones too.
    names += ["Gimp.Choice.add", "Gimp.Procedure.add_choice_argument", "Gimp.Procedure.add_string_argument",
              "Gimp.Procedure.add_double_argument", "Gimp.Procedure.add_int_argument",
              "Gimp.Procedure.set_sensitivity_mask", "Gimp.Procedure.add_menu_path",
              "Gimp.ImageProcedure.new", "GimpUi.ProcedureDialog.fill", "GimpUi.ProcedureDialog.run",
              "Gimp.Image.get_precision", "Gimp.Image.convert_rgb", "Gimp.Image.get_item_position",
              "Gimp.Drawable.mask_intersect", "Gimp.Drawable.get_offsets", "Gimp.Layer.create_mask",
              "Gimp.Layer.add_mask", "Gimp.Layer.set_offsets", "Gegl.Buffer.set", "Gegl.Buffer.get",
              "Gimp.Procedure.add_int_aux_argument", "Gimp.Procedure.find_argument", "Gimp.Procedure.find_aux_argument",
              "Gimp.Procedure.set_documentation", "Gimp.PlugIn.set_help_domain", "Gimp.Choice.set_sensitive",
              "GimpUi.ProcedureDialog.get_int_combo", "GimpUi.ProcedureDialog.get_spin_scale",
              "GimpUi.ProcedureDialog.get_widget", "GimpUi.LabelIntWidget.get_widget", "GimpUi.IntComboBox.set_sensitivity",
              "GimpUi.IntStore.append", "Gimp.Item.get_tattoo", "Gimp.Item.get_parasite", "Gimp.Item.attach_parasite",
              "Gimp.Item.is_group", "Gimp.Item.get_children", "Gimp.Image.get_layer_by_tattoo",
              "Gimp.Image.convert_grayscale", "Gimp.Image.get_color_profile", "Gimp.Image.set_color_profile",
              "Gimp.Parasite.new", "Gimp.Parasite.get_data",
              # colour hints, references, groups, masks, selections
              "Gimp.Procedure.add_layer_argument", "Gimp.Procedure.add_image_argument",
              "Gimp.Procedure.add_file_argument", "Gimp.Procedure.add_boolean_argument",
              "Gimp.Image.get_selection", "Gimp.Image.get_thumbnail_data", "Gimp.Image.set_selected_layers",
              "Gimp.Image.get_name", "Gimp.Image.delete", "Gimp.Image.insert_layer", "Gimp.GroupLayer.new",
              "Gimp.Drawable.fill", "Gimp.Drawable.update", "Gimp.Item.set_visible", "Gimp.Item.get_parent",
              "Gimp.Item.get_id", "Gimp.Drawable.has_alpha", "Gimp.PDB.get_last_error", "Gimp.get_images",
              "GimpUi.ProcedureDialog.get_label"]
    # gimp3_host looks precisions up by name
    names += ["Gimp.Precision." + name for name in
              re.findall(r'"(U(?:8|16)_[A-Z_]+)"', (PLUGIN_DIR / "gimp3_host.py").read_text())]
    assert {"GimpUi.ProcedureDialog", "Gimp.progress_set_text", "Gimp.Precision.U16_PERCEPTUAL"} <= set(names)
    result = run_in_root(gimp_root, ["python3", "-c", CHECK], input=json.dumps(names), timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["missing"] == []
    assert {"procedure", "config", "title"} <= set(report["dialog_props"])
