# Run plug-in-gimp-colorize on each case of PARAMS["cases"] and report facts + raw pixel dumps.
# A case: {"id", "input", "arguments": {...}, "selection": null | ["ellipse"|"rectangle", x, y, w, h]}.
OUT = PARAMS["out_dir"]
SELECTORS = {"ellipse": "select_ellipse", "rectangle": "select_rectangle"}


def dump_path(case_id, what):
    return os.path.join(OUT, "%s-%s.raw" % (case_id, what))


def dump_mask(layer, path):
    mask = layer.get_mask()
    if mask is None:
        return None
    rect = Gegl.Rectangle.new(0, 0, mask.get_width(), mask.get_height())
    write_atomically(path, bytes(mask.get_buffer().get(rect, 1.0, "Y' u8", Gegl.AbyssPolicy.NONE)))
    return {"file": path, "format": "Y' u8", "width": mask.get_width(), "height": mask.get_height()}


def apply_selection(image, selection):
    if selection:
        getattr(image, SELECTORS[selection[0]])(Gimp.ChannelOps.REPLACE, *selection[1:])


def new_layer_facts(image, case_id, before_ids, bits):
    found = []
    for position, layer in enumerate(image.get_layers()):
        if layer.get_id() in before_ids:
            continue
        facts = describe_layer(layer)
        facts["position"] = position
        facts["pixels"] = dump_layer(layer, dump_path(case_id, "new%d" % len(found)), bits)
        facts["mask"] = dump_mask(layer, dump_path(case_id, "new%d-mask" % len(found)))
        found.append(facts)
    return found


def composite_facts(image, case_id, bits):
    """What the user sees: the visible layers merged (done last: it changes the image)."""
    merged = image.merge_visible_layers(Gimp.MergeType.CLIP_TO_IMAGE)
    return dump_layer(merged, dump_path(case_id, "composite"), bits)


def run_case(case):
    image = load_image(case["input"])
    source = image.get_layers()[0]
    bits = bits_per_channel(image)
    before = layer_stack(image)
    facts = {"case": case["id"], "input": case["input"], "bits": bits, "before": before,
             "base_type_before": image.get_base_type().value_nick,
             "width": image.get_width(), "height": image.get_height(), "source_id": source.get_id(),
             "source_before": dump_layer(source, dump_path(case["id"], "source-before"), bits)}
    apply_selection(image, case.get("selection"))
    facts["status"], facts["message"], facts["seconds"] = colorize(image, source, case["arguments"])
    if case.get("repeat"):  # Filters > Repeat with the new layer selected: colorize the source again
        newest = image.get_layers()[[layer.get_id() for layer in image.get_layers()].index(source.get_id()) - 1]
        facts["repeat_status"], facts["repeat_message"], _ = colorize(image, newest, case["arguments"])
    facts["after"] = layer_stack(image)
    facts["base_type_after"] = image.get_base_type().value_nick
    facts["source_after"] = dump_layer(source, dump_path(case["id"], "source-after"), bits)
    facts["new_layers"] = new_layer_facts(image, case["id"], set(layer["id"] for layer in before), bits)
    facts["undo_enabled"] = image.undo_is_enabled()
    facts["dirty"] = image.is_dirty()
    facts["composite"] = composite_facts(image, case["id"], bits)
    image.delete()
    return facts


for case in PARAMS["cases"]:
    try:
        emit(run_case(case))
    except Exception:
        emit(failure_facts(case["id"]))
