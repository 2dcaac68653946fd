# Time the plug-in on one large photo: the call as GIMP's caller sees it (read + daemon + transfer + write).
image = load_image(PARAMS["input"])
source = image.get_layers()[0]
status, message, seconds = colorize(image, source, PARAMS["arguments"])
new_layers = [describe_layer(layer) for layer in image.get_layers() if layer.get_id() != source.get_id()]
for layer in new_layers:
    found = Gimp.Layer.get_by_id(layer["id"])
    layer["width"], layer["height"] = found.get_width(), found.get_height()
emit({"status": status, "message": message, "seconds": seconds, "new_layers": new_layers,
      "width": image.get_width(), "height": image.get_height()})
image.delete()
