# Where the plug-in's writing time goes in GIMP 3: the ways to put a result into the image, each timed on a
# fresh copy of a large gray photo (PARAMS["input"]) that is shown in a window when PARAMS["display"] (so
# GIMP renders what changes, as in front of a user). Emits one GC-FACTS line: {"rows": [[label, [seconds...]]]}.
sys.path.insert(0, PARAMS["plugin_dir"])
import gimp3_host  # noqa: E402

REPEATS = PARAMS.get("repeats", 3)


def fresh_image(rgb):
    image = load_image(PARAMS["input"])
    if rgb:
        image.convert_rgb()
    display = Gimp.Display.new(image) if PARAMS.get("display") else None
    Gimp.displays_flush()
    return image, display


def settle():
    """Let GIMP finish rendering (its main loop runs while this script waits for a PDB answer)."""
    Gimp.displays_flush()
    time.sleep(0.5)


def close(image, display):
    if display is not None:
        display.delete()
    else:
        image.delete()


def new_layer(image, name="result"):
    return Gimp.Layer.new(image, name, image.get_width(), image.get_height(), Gimp.ImageType.RGB_IMAGE, 100.0,
                          Gimp.LayerMode.NORMAL)


def pixels_for(image):
    width, height = image.get_width(), image.get_height()
    row = bytes(bytearray((x * 7) % 256 for x in range(width * 3)))
    return row * height


def write_all(layer, pixels, rows):
    gimp3_host.write_pixels(layer, layer.get_width(), layer.get_height(), pixels, "rgb8", None, rows=rows)


def way_convert(image, pixels):
    image.convert_rgb()


def way_insert_then_write(rows):
    def way(image, pixels):
        layer = new_layer(image)
        image.insert_layer(layer, None, 0)
        write_all(layer, pixels, rows)
        layer.update(0, 0, layer.get_width(), layer.get_height())
    return way


def way_write_then_insert(image, pixels):
    layer = new_layer(image)
    write_all(layer, pixels, gimp3_host.WRITE_ROWS)
    image.insert_layer(layer, None, 0)


def way_hidden_while_writing(image, pixels):
    layer = new_layer(image)
    layer.set_visible(False)
    image.insert_layer(layer, None, 0)
    write_all(layer, pixels, gimp3_host.WRITE_ROWS)
    layer.set_visible(True)


def way_shadow(image, pixels):
    layer = new_layer(image)
    image.insert_layer(layer, None, 0)
    shadow = layer.get_shadow_buffer()
    shadow.set(Gegl.Rectangle.new(0, 0, layer.get_width(), layer.get_height()), "R'G'B' u8", pixels)
    shadow.flush()
    layer.merge_shadow(True)
    layer.update(0, 0, layer.get_width(), layer.get_height())


def way_plugin_host(image, pixels):
    """What the plug-in does now (gimp3_host.Gimp3Host.add_layer), conversion of the gray image included."""
    host = gimp3_host.Gimp3Host()
    source = image.get_layers()[0]
    image.undo_group_start()
    if host.image_is_gray(image):
        host.convert_to_rgb(image)
    host.add_layer(image, source, source, "result", (0, 0, image.get_width(), image.get_height()), pixels,
                   "rgb8", "normal")
    image.undo_group_end()


WAYS = [
    ("gray -> RGB conversion of the image (image.convert_rgb)", way_convert, False),
    ("insert, then one buffer.set of the whole layer, flush (before)", way_insert_then_write(1 << 30), True),
    ("insert, then buffer.set in bands of 512 rows, flush", way_insert_then_write(512), True),
    ("insert, then buffer.set in bands of 64 rows (one tile), flush", way_insert_then_write(64), True),
    ("buffer.set before inserting the layer, then insert", way_write_then_insert, True),
    ("insert hidden, write in bands, then show", way_hidden_while_writing, True),
    ("shadow buffer + merge_shadow", way_shadow, True),
    ("the plug-in's own insert (gray image: convert + bands)", way_plugin_host, False),
]

rows = []
for label, way, rgb in WAYS:
    seconds = []
    for _ in range(REPEATS):
        image, display = fresh_image(rgb)
        pixels = pixels_for(image)
        settle()
        started = time.monotonic()
        way(image, pixels)
        Gimp.displays_flush()
        seconds.append(time.monotonic() - started)
        settle()
        close(image, display)
    rows.append([label, seconds])
emit({"rows": rows, "display": bool(PARAMS.get("display")), "gimp": Gimp.version()})
if PARAMS.get("done_file"):
    write_atomically(PARAMS["done_file"], b"done")
