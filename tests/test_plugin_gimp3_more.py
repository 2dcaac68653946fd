"""More plug-in cases in a real GIMP 3.0, beyond tests/gimp3's photos: a 32-bit float image, a layer with
alpha and offsets inside a larger image, and diverse mode at 16 bits (a group of layers). Images are built
in GIMP itself, so the cases do not depend on what a file loader makes of them.

Uses the tests/gimp3 harness (cached trixie root, plug-in installed by the real install.py, daemon on
the host) with a batch body of its own.
"""

import json

import numpy as np
import pytest

from tests.gimp3 import harness
from tests.support.debroot import RootPrivilegesMissing, run_in_root

pytestmark = [pytest.mark.gimp, pytest.mark.slow]

W, H = 96, 64
BATCH = r"""
import array, math

def ramp(width, height, channels, alpha_left_half=False):
    values = array.array("f")
    for y in range(height):
        for x in range(width):
            gray = 0.5 + 0.45 * math.sin(x / 7.0) * math.cos(y / 5.0)
            values.extend([gray] * channels)
            if alpha_left_half:
                values.append(0.0 if x < width // 2 else 1.0)
    return values.tobytes()

def build(case):
    base = Gimp.ImageBaseType.GRAY if case["gray"] else Gimp.ImageBaseType.RGB
    precision = getattr(Gimp.Precision, case["precision"])
    image = Gimp.Image.new_with_precision(case["image_size"][0], case["image_size"][1], base, precision)
    kinds = {(True, False): Gimp.ImageType.GRAY_IMAGE, (True, True): Gimp.ImageType.GRAYA_IMAGE,
             (False, False): Gimp.ImageType.RGB_IMAGE, (False, True): Gimp.ImageType.RGBA_IMAGE}
    w, h = case["layer_size"]
    layer = Gimp.Layer.new(image, "source", w, h, kinds[(case["gray"], case["alpha"])], 100.0,
                           Gimp.LayerMode.NORMAL)
    image.insert_layer(layer, None, 0)
    layer.set_offsets(*case["offsets"])
    fmt = ("Y'" if case["gray"] else "R'G'B'") + ("A" if case["alpha"] else "") + " float"
    buffer = layer.get_buffer()
    buffer.set(Gegl.Rectangle.new(0, 0, w, h), fmt, ramp(w, h, 1 if case["gray"] else 3, case["alpha"]))
    buffer.flush()
    return image, layer

for case in PARAMS["cases"]:
    try:
        image, source = build(case)
        bits = bits_per_channel(image)
        before = dump_layer(source, os.path.join(PARAMS["out"], case["id"] + "-before.raw"), 32)
        status, message, seconds = colorize(image, source, case["arguments"])
        layers = []
        for position, layer in enumerate(image.get_layers()):
            facts = describe_layer(layer)
            if layer.is_group():  # diverse samples: their group, then each layer in it
                facts["children"] = [dict(describe_layer(child), pixels=dump_layer(child, os.path.join(
                    PARAMS["out"], "%s-%d-%d.raw" % (case["id"], position, n)), 32))
                    for n, child in enumerate(layer.get_children())]
            else:
                facts["pixels"] = dump_layer(layer, os.path.join(PARAMS["out"], "%s-%d.raw" % (case["id"], position)), 32)
            layers.append(facts)
        after = dump_layer(source, os.path.join(PARAMS["out"], case["id"] + "-after.raw"), 32)
        emit({"case": case["id"], "status": status, "message": message, "bits": bits, "layers": layers,
              "source_id": source.get_id(), "before": before, "after": after,
              "precision": image.get_precision().value_nick})
    except Exception:
        emit(failure_facts(case["id"]))
"""

CASES = [
    {"id": "float-gray", "gray": True, "alpha": False, "precision": "FLOAT_NON_LINEAR", "image_size": [W, H],
     "layer_size": [W, H], "offsets": [0, 0], "arguments": {"mode": "full"}},
    {"id": "alpha-offset", "gray": False, "alpha": True, "precision": "U8_NON_LINEAR", "image_size": [W + 40, H + 30],
     "layer_size": [W, H], "offsets": [25, 12], "arguments": {"mode": "full", "output": "color-layer"}},
    {"id": "diverse", "gray": True, "alpha": False, "precision": "U16_NON_LINEAR", "image_size": [W, H],
     "layer_size": [W, H], "offsets": [0, 0], "arguments": {"mode": "diverse", "samples": 2, "seed": 5}},
]


@pytest.fixture(scope="module")
def facts(tmp_path_factory):
    from tests.gimp3.conftest import TinyModels

    try:
        root = harness.provision_gimp_root()
    except RootPrivilegesMissing as exc:
        pytest.skip(str(exc))
    box = harness.make_sandbox(root, tmp_path_factory.mktemp("gimp-home-more"))
    installed = harness.install_plugin(box)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    models = TinyModels(box)
    daemon = harness.Daemon(box, **models.daemon_env).start()
    try:
        code = "%s\nPARAMS = json.loads(%r)\n%s\n" % ((harness.BATCH_DIR / "prelude.py").read_text(),
                                                     json.dumps({"cases": CASES, "out": str(box.work)}), BATCH)
        result = run_in_root(box.root, harness.gimp_batch(box.version), env={"HOME": str(box.home)}, input=code,
                             timeout=300, binds=[box.home])
    finally:
        daemon.stop()
    found = {fact["case"]: fact for fact in harness.parse_facts(result.stdout)}
    assert sorted(found) == sorted(case["id"] for case in CASES), result.stdout[-3000:] + result.stderr[-3000:]
    for fact in found.values():
        assert "exception" not in fact, fact["exception"]
        assert fact["status"] == "success", fact["message"]
    return found


def rgba(dump):
    return np.fromfile(dump["file"], dtype="<f4").reshape(dump["height"], dump["width"], 4)


def chroma_spread(pixels):
    return float(np.abs(pixels[..., 0] - pixels[..., 2]).max())


def test_float_image_is_colorized_at_float_precision(facts):
    case = facts["float-gray"]
    assert case["precision"].startswith("float")
    new, source = case["layers"][0], case["layers"][1]
    assert source["id"] == case["source_id"] and "tiny" in new["name"]
    assert chroma_spread(rgba(new["pixels"])) > 0.05
    # GIMP's own gray -> RGB conversion of a float image moves values by float rounding (~4e-7); 8- and
    # 16-bit sources stay byte-identical (tests/gimp3). The plug-in itself never writes the source.
    np.testing.assert_allclose(rgba(case["before"])[..., 0], rgba(case["after"])[..., 0], atol=1e-5, rtol=0)


def test_alpha_and_offsets_carry_over_to_the_new_layer(facts):
    case = facts["alpha-offset"]
    new, source = case["layers"][0], case["layers"][1]
    assert new["offsets"] == source["offsets"] == [25, 12]
    assert new["has_alpha"] and new["mode"] == "lch-color"
    pixels = rgba(new["pixels"])
    np.testing.assert_array_equal(pixels[..., 3], rgba(case["before"])[..., 3])  # transparent where the source is
    assert chroma_spread(pixels[:, W // 2:]) > 0.05
    np.testing.assert_array_equal(rgba(case["before"]), rgba(case["after"]))


def test_diverse_mode_at_16_bits_adds_a_group_with_one_layer_per_sample_above_the_source(facts):
    case = facts["diverse"]
    group, source = case["layers"]
    assert source["id"] == case["source_id"] and group["name"] == "Colorize: diverse (tiny-diverse)"
    assert [child["name"] for child in group["children"]] == ["sample 1 (seed 5)", "sample 2 (seed 6)"]
    first, second = rgba(group["children"][0]["pixels"]), rgba(group["children"][1]["pixels"])
    assert chroma_spread(first) > 0.01 and not np.array_equal(first, second)
