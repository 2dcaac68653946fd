"""colorize_flow + the shared client against the REAL daemon (`python -m gimp_colorize serve`) with a tiny
contract model, through the fake host: what a GIMP user would see, minus GIMP."""

import json
import subprocess
import sys

import numpy as np
import pytest

import tests.fakes  # noqa: F401  (puts plugin/common and tests/fakes on sys.path)
import colorize_flow
import gimp_colorize_client as client_lib
from colorize_flow import Settings
from fake_host import FakeHost, FakeImage
from gimp_colorize import colour
from tests.support import daemon_harness


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    running = daemon_harness.start_daemon(tmp_path_factory.mktemp("daemon"))
    yield running
    running.stop()


@pytest.fixture
def plugin_env(daemon, monkeypatch):
    """The plug-in's view: the daemon's config dir, with a config.json naming its port."""
    for key, value in daemon.env.items():
        if key.startswith("GIMP_COLORIZE_"):
            monkeypatch.setenv(key, value)
    port = int(daemon.url.rsplit(":", 1)[1])
    config_dir = daemon.env["GIMP_COLORIZE_CONFIG_DIR"]
    with open(f"{config_dir}/config.json", "w") as handle:
        json.dump({"port": port, "python": sys.executable}, handle)
    return daemon


def photo_like(width=96, height=64):
    """A smooth gray scene with some structure (the tiny model's chroma follows lightness)."""
    y, x = np.mgrid[0:height, 0:width]
    gray = 128 + 90 * np.sin(x / 9.0) * np.cos(y / 13.0)
    return np.clip(gray, 0, 255).astype(np.uint8)


def layer_array(layer):
    dtype = {"8": np.uint8, "16": "<u2", "f32": "<f4"}[colorize_flow.PIXEL_FORMATS[layer.format].depth]
    channels = colorize_flow.PIXEL_FORMATS[layer.format].channels + colorize_flow.PIXEL_FORMATS[layer.format].alpha
    return np.frombuffer(layer.pixels, dtype=dtype).reshape(layer.height, layer.width, channels)


def test_gray_photo_gets_a_coloured_layer_with_the_same_lightness(plugin_env):
    gray = photo_like()
    image = FakeImage(gray.shape[1], gray.shape[0], gray=True)
    source = image.add_source("photo", gray.tobytes())
    host = FakeHost()
    result = colorize_flow.colorize(host, image, source, Settings())
    assert [layer.name for layer in image.layers] == ["Colorized: tiny-full", "photo"]
    rgb = layer_array(image.layers[0])
    assert np.abs(rgb[..., 0].astype(int) - rgb[..., 2]).max() > 10, "the new layer is gray"
    lightness_delta = np.abs(colour.rgb_to_lightness(colour.to_float01(rgb)) -
                             colour.gray_to_lightness(colour.to_float01(gray)))
    # One 8-bit gray level is about 0.4 L at mid-gray: only pixels the daemon reports as clipped may move more.
    assert np.count_nonzero(lightness_delta > 0.5) <= result.clipped_pixels
    assert np.median(lightness_delta) < 0.2
    np.testing.assert_array_equal(layer_array(source)[..., 0], gray)
    assert image.undo_steps == 1
    assert host.progress[-1] == 1.0 and host.progress == sorted(host.progress)
    assert result.plugin_seconds < 2.0


def test_sixteen_bit_selection_in_color_layer_mode(plugin_env):
    gray16 = (photo_like().astype(np.uint16) * 257).astype("<u2")
    image = FakeImage(gray16.shape[1], gray16.shape[0], gray=True, depth="16")
    source = image.add_source("scan16", gray16.tobytes())
    image.selection = (10, 5, 40, 30)
    colorize_flow.colorize(FakeHost(), image, source, Settings(output="color-layer"))
    layer = image.layers[0]
    assert (layer.format, layer.offsets, layer.width, layer.height) == ("rgb16", (10, 5), 40, 30)
    assert layer.blend == colorize_flow.BLEND_LCH_COLOR and layer.mask == (10, 5, 40, 30)
    rgb = layer_array(layer)
    assert rgb.dtype == np.dtype("<u2") and np.abs(rgb[..., 0].astype(int) - rgb[..., 2]).max() > 10 * 257


def test_missing_model_and_wrong_token_are_sentences_and_add_nothing(plugin_env):
    image = FakeImage(8, 8)
    source = image.add_source("photo", bytes(64))
    with pytest.raises(client_lib.ModelNotAvailable) as caught:
        colorize_flow.colorize(FakeHost(), image, source, Settings(mode="instance"))
    assert "instance" in caught.value.message and len(image.layers) == 1 and image.gray

    config_dir = plugin_env.env["GIMP_COLORIZE_CONFIG_DIR"]
    with open(f"{config_dir}/config.json", "w") as handle:
        json.dump({"port": int(plugin_env.url.rsplit(":", 1)[1]), "token_file": f"{config_dir}/other-token"},
                  handle)
    with open(f"{config_dir}/other-token", "w") as handle:
        handle.write("not-the-token")
    with pytest.raises(client_lib.AuthError) as caught:
        colorize_flow.colorize(FakeHost(), image, source, Settings())
    assert "Restart the daemon" in caught.value.message and len(image.layers) == 1


def test_cancel_stops_the_daemon_job(plugin_env):
    submitted = []

    def connect(**options):
        client = client_lib.connect(start=False, **options)
        submit = client.submit
        client.submit = lambda *args: submitted.append(submit(*args)) or submitted[-1]
        return client

    image = FakeImage(1200, 900)
    source = image.add_source("big", photo_like(1200, 900).tobytes())
    with pytest.raises(client_lib.JobCancelled):
        colorize_flow.colorize(FakeHost(cancel_after=1), image, source, Settings(), connect=connect)
    with plugin_env.client() as http:
        reply = http.get(f"/v1/jobs/{submitted[0]}")
    assert reply.status_code == 404 or reply.json()["state"] == "cancelled"
    assert len(image.layers) == 1


@pytest.mark.slow
def test_plugin_starts_the_daemon_when_it_is_not_running(tmp_path, monkeypatch):
    env = daemon_harness.child_env(daemon_harness.make_dirs(tmp_path))
    port = daemon_harness.free_port()
    with open(f"{env['GIMP_COLORIZE_CONFIG_DIR']}/config.json", "w") as handle:
        json.dump({"port": port, "python": sys.executable, "start_timeout_s": 90}, handle)
    for key, value in env.items():
        if key.startswith("GIMP_COLORIZE_"):
            monkeypatch.setenv(key, value)
    try:
        image = FakeImage(32, 24)
        source = image.add_source("photo", photo_like(32, 24).tobytes())
        colorize_flow.colorize(FakeHost(), image, source, Settings())
        assert image.layers[0].name == "Colorized: tiny-full"
    finally:
        subprocess.run([sys.executable, "-m", "gimp_colorize", "stop"], env=env, capture_output=True, timeout=60)
    assert client_lib.DaemonClient(client_lib.load_config(), timeout=2) is not None
    with pytest.raises(client_lib.DaemonUnreachable):
        client_lib.connect(start=False)


def test_a_large_upload_the_daemon_refuses_at_once_shows_its_sentence(plugin_env):
    """The daemon answers 400 after the headers and closes the connection while a 4 MP body is still being
    sent: the client must read that answer, not report a broken pipe."""
    client = client_lib.connect(start=False)
    with pytest.raises(client_lib.BadRequest) as caught:
        client.submit(bytes(2000 * 2000), 2000, 2000, "gray8",
                      {"mode": "full", "points": '[{"x": 1, "y": 1, "r": 200, "g": 30, "b": 40}]'})
    assert "does not take colour hints" in caught.value.message


@pytest.fixture
def guided(plugin_env):
    from tests.support import onnx_builders

    models = plugin_env.env["GIMP_COLORIZE_MODELS_DIR"]
    onnx_builders.build_tiny_model(f"{models}/tiny-guided.onnx", name="tiny-guided", output_kind="ab", hints=True,
                                   reference=True)
    with plugin_env.client() as http:
        assert "tiny-guided" in [model["name"] for model in http.get("/v1/models").json()["models"]]
    return plugin_env


def test_painted_hints_and_a_reference_reach_the_real_daemon(guided):
    from colorize_inputs import add_hints_layer

    gray = photo_like(128, 96)
    image = FakeImage(128, 96, gray=True)
    source = image.add_source("photo", gray.tobytes())
    host = FakeHost()
    hints = add_hints_layer(host, image, source)
    painted = np.zeros((96, 128, 4), np.uint8)
    painted[32:64, 32:64] = (200, 30, 40, 255)
    hints.pixels = painted.tobytes()
    colorize_flow.colorize(host, image, source, Settings())
    hinted = colour.rgb_to_lab(layer_array(image.layers[1]))
    red_ab = colour.rgb_to_lab(np.array([[200, 30, 40]], np.float32) / 255)[0, 1:]
    inner = hinted[44:52, 44:52]
    source_l = colour.gray_to_lightness(colour.to_float01(gray[44:52, 44:52]))[..., None]
    wanted = np.concatenate([source_l, np.broadcast_to(red_ab, inner.shape[:2] + (2,))], axis=-1)
    expected = colour.rgb_to_lab(colour.lab_to_rgb(wanted))  # the hint at the photo's lightness, in gamut
    assert np.linalg.norm(inner - expected, axis=-1).max() < 3  # the hint's colour where it was painted
    assert image.layers[0] is hints and hints.pixels == painted.tobytes()

    reference = FakeImage(8, 8, gray=False, name="warm.png")
    reference.add_source("Background", np.full((8, 8, 3), (150, 100, 90), np.uint8).tobytes())
    colorize_flow.colorize(host, image, source, Settings(reference="image", reference_image=reference))
    referenced = colour.rgb_to_lab(layer_array(image.layers[2]))  # directly above the photo, under the first
    assert referenced[:24, :, 1].mean() - hinted[:24, :, 1].mean() > 5  # the warm photo's colours, away from the hint

    with pytest.raises(client_lib.BadRequest) as caught:
        gray_reference = FakeImage(8, 8, gray=True, name="gray.png")
        gray_reference.add_source("Background", bytes(64))
        colorize_flow.colorize(host, image, source, Settings(reference="image", reference_image=gray_reference))
    assert caught.value.message.startswith("The reference photo has no colour (it is gray)")
