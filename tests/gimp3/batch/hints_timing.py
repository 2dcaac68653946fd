# Colorize a photo again and again with changed colour hints, as a person iterating would: the first run
# warms up, each later one paints one more patch on the hints layer first; then runs without hints.
# The plug-in prints its own breakdown to stderr (GIMP_COLORIZE_TIMINGS); the facts give the calls' times.
def paint(image, layer, x, y, w, h, colour):
    Gimp.context_push()
    image.select_rectangle(Gimp.ChannelOps.REPLACE, x, y, w, h)
    Gimp.context_set_foreground(Gegl.Color.new(colour))
    layer.edit_fill(Gimp.FillType.FOREGROUND)
    Gimp.Selection.none(image)
    Gimp.context_pop()


for photo in PARAMS["photos"]:
    image = load_image(photo["path"])
    source = image.get_layers()[0]
    procedure = Gimp.get_pdb().lookup_procedure("plug-in-gimp-colorize-hints-layer")
    config = procedure.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    config.set_property("image", image)
    config.set_core_object_array("drawables", [source])
    procedure.run(config)
    hints = image.get_selected_layers()[0]
    runs = []
    for x, y, w, h, colour in photo["patches"]:
        paint(image, hints, x, y, w, h, colour)
        status, message, seconds = colorize(image, source, {"mode": "full"})
        runs.append({"status": status, "message": message, "seconds": seconds, "hints": True})
    for _ in range(PARAMS["plain_runs"]):
        status, message, seconds = colorize(image, source, {"mode": "full", "hints": "none"})
        runs.append({"status": status, "message": message, "seconds": seconds, "hints": False})
    results = [layer.get_name() for layer in image.get_layers() if layer.get_name().startswith("Colorized")]
    emit({"photo": photo["label"], "width": image.get_width(), "height": image.get_height(), "runs": runs,
          "results": results})
    image.delete()
