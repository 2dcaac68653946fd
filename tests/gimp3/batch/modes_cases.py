# Colour hints, reference photos, diverse groups and instance objects, each case in a fresh image, with facts
# and raw dumps of every layer (groups and the layers in them too) for the checks outside GIMP.
# A case: {"id", "input", "open": [paths opened as more images], "hints_layer": bool (made by the plug-in's own
# procedure), "paint": [[x, y, w, h, "#rrggbb"], ...] (fills of rectangular selections on the hints layer),
# "select": [[x, y, w, h], ...] (rectangles, added), "runs": [{"arguments": {...}, "on": "source" | "hints" |
# "first-child"}]}. Argument values "$open0" (an opened image) and "file:PATH" (a Gio.File) are replaced.
OUT = PARAMS["out_dir"]
HINTS_PROCEDURE = "plug-in-gimp-colorize-hints-layer"


def run_procedure(name, image, drawable, arguments):
    procedure = Gimp.get_pdb().lookup_procedure(name)
    config = procedure.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    config.set_property("image", image)
    config.set_core_object_array("drawables", [drawable])
    for key, value in arguments.items():
        config.set_property(key, value)
    result = procedure.run(config)
    message = result.index(1) if result.length() > 1 and isinstance(result.index(1), str) else ""
    return result.index(0).value_nick, message


def argument_value(value, opened):
    if isinstance(value, str) and value.startswith("$open"):
        return opened[int(value[len("$open"):])]
    if isinstance(value, str) and value.startswith("file:"):
        return Gio.File.new_for_path(value[len("file:"):])
    return value


def paint_patches(image, layer, patches):
    """Like a person with the bucket fill: select a rectangle, fill it with the foreground colour."""
    Gimp.context_push()
    for x, y, w, h, colour in patches:
        image.select_rectangle(Gimp.ChannelOps.REPLACE, x, y, w, h)
        Gimp.context_set_foreground(Gegl.Color.new(colour))
        layer.edit_fill(Gimp.FillType.FOREGROUND)
    Gimp.Selection.none(image)
    Gimp.context_pop()


def all_items(items):
    for item in items:
        yield item
        if item.is_group():
            for child in all_items(item.get_children()):
                yield child


def tree(image, case_id, known, bits):
    """Top-level items with their children; every layer not in `known` dumped (pixels and mask)."""
    def describe(item, path):
        facts = describe_layer(item)
        facts["group"] = item.is_group()
        if item.is_group():
            facts["children"] = [describe(child, "%s-%d" % (path, n)) for n, child in enumerate(item.get_children())]
        elif item.get_id() not in known:
            facts["pixels"] = dump_layer(item, os.path.join(OUT, "%s-%s.raw" % (case_id, path)), bits)
            mask = item.get_mask()
            if mask is not None:
                target = os.path.join(OUT, "%s-%s-mask.raw" % (case_id, path))
                rect = Gegl.Rectangle.new(0, 0, mask.get_width(), mask.get_height())
                write_atomically(target, bytes(mask.get_buffer().get(rect, 1.0, "Y u8", Gegl.AbyssPolicy.NONE)))
                facts["mask"] = {"file": target, "width": mask.get_width(), "height": mask.get_height()}
        return facts
    return [describe(item, str(n)) for n, item in enumerate(image.get_layers())]


def run_case(case):
    image = load_image(case["input"])
    source = image.get_layers()[0]
    opened = [load_image(path) for path in case.get("open", [])]
    bits = bits_per_channel(image)
    facts = {"case": case["id"], "source_id": source.get_id(), "width": image.get_width(),
             "height": image.get_height(), "runs": []}
    facts["source_before"] = dump_layer(source, os.path.join(OUT, case["id"] + "-source-before.raw"), bits)
    facts["opened_before"] = [dump_layer(other.get_layers()[0], os.path.join(OUT, "%s-open%d-before.raw" % (
        case["id"], n)), bits_per_channel(other)) for n, other in enumerate(opened)]
    facts["opened_dirty_before"] = [other.is_dirty() for other in opened]
    hints = None
    if case.get("hints_layer"):
        facts["hints_status"] = run_procedure(HINTS_PROCEDURE, image, source, {})
        hints = image.get_selected_layers()[0]
        facts["hints_record"] = json.loads(bytes(bytearray(hints.get_parasite("gimp-colorize-hints").get_data())))
        facts["hints_id"] = hints.get_id()
        facts["hints_empty"] = dump_layer(hints, os.path.join(OUT, case["id"] + "-hints-empty.raw"), 8)
        paint_patches(image, hints, case.get("paint", []))
        facts["hints_before"] = dump_layer(hints, os.path.join(OUT, case["id"] + "-hints-before.raw"), 8)
    for number, box in enumerate(case.get("select", [])):
        image.select_rectangle(Gimp.ChannelOps.REPLACE if number == 0 else Gimp.ChannelOps.ADD, *box)
    facts["base_type_before_runs"] = image.get_base_type().value_nick
    for run in case["runs"]:
        on = {"source": source, "hints": hints}.get(run.get("on", "source"))
        if run.get("on") == "first-child":
            on = [item for item in image.get_layers() if item.is_group()][0].get_children()[0]
        arguments = dict((key, argument_value(value, opened)) for key, value in run["arguments"].items())
        status, message = colorize(image, on, arguments)[:2]
        facts["runs"].append({"status": status, "message": message})
    facts["layers"] = tree(image, case["id"], set([source.get_id()] + ([hints.get_id()] if hints else [])), bits)
    facts["selected"] = [item.get_id() for item in image.get_selected_layers()]
    facts["source_after"] = dump_layer(source, os.path.join(OUT, case["id"] + "-source-after.raw"), bits)
    if hints is not None:
        facts["hints_after"] = dump_layer(hints, os.path.join(OUT, case["id"] + "-hints-after.raw"), 8)
    facts["opened_after"] = [dump_layer(other.get_layers()[0], os.path.join(OUT, "%s-open%d-after.raw" % (
        case["id"], n)), bits_per_channel(other)) for n, other in enumerate(opened)]
    facts["opened_dirty"] = [other.is_dirty() for other in opened]
    facts["base_type_after"] = image.get_base_type().value_nick
    for other in opened + [image]:
        other.delete()
    return facts


for case in PARAMS["cases"]:
    try:
        emit(run_case(case))
    except Exception:
        emit(failure_facts(case["id"]))
