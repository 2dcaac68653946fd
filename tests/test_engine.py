import sys

import numpy as np
import pytest

from gimp_colorize import colour, sessions
from gimp_colorize.engine import ColorizeOptions, Engine
from gimp_colorize.recombine import BilinearUpsampler
from gimp_colorize.errors import (BadRequest, InvalidImage, JobCancelled, ModelLoadError, NoModelInstalled,
                                  RuntimeMissing, UnknownMode, UnknownModel)
from gimp_colorize.registry import Registry
from tests.support import onnx_builders as ob


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    ob.build_tiny_full_model(folder / "bins.onnx", name="bins")
    ob.build_tiny_full_model(folder / "ab.onnx", name="ab", output_kind="ab", resize="keep_aspect")
    ob.build_tiny_full_model(folder / "yuv.onnx", name="yuv", output_kind="ab", colour_space="yuv")
    ob.build_tiny_full_model(folder / "ycbcr.onnx", name="ycbcr", colour_space="ycbcr")
    ob.build_tiny_diverse_model(folder / "diverse.onnx", name="diverse", hints=True)
    return folder


@pytest.fixture(scope="module")
def engine(model_dir):
    return Engine(Registry(None, model_dir), providers=["CPUExecutionProvider"], threads=1)


def gradient(height=96, width=128, dtype=np.uint8):
    """A gray ramp over every level plus some texture, in the requested depth."""
    ramp = (np.add.outer(np.arange(height) * 3, np.arange(width) * 2) % 256) / 255.0
    if dtype == np.uint8:
        return np.round(ramp * 255).astype(np.uint8)
    if dtype == np.uint16:
        return np.round(ramp * 65535).astype(np.uint16)
    return ramp.astype(dtype)


def gray_levels(pixels):
    """Lab lightness of RGB pixels expressed as 8-bit gray levels."""
    return colour.lightness_to_gray(colour.rgb_to_lightness(pixels)) * 255


def chroma_strength(pixels):
    return float(np.abs(colour.rgb_to_lab(pixels)[..., 1:]).mean())


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("model", ["bins", "ab"])
def test_output_keeps_input_lightness_except_where_clipped(engine, dtype, model):
    image = gradient(dtype=dtype)
    result = engine.colorize(image, ColorizeOptions(model=model))
    (layer,) = result.layers
    assert layer.pixels.shape == image.shape + (3,) and layer.pixels.dtype == dtype
    moved = np.abs(gray_levels(layer.pixels) - colour.to_float01(image) * 255) > 1.0
    assert result.clipped_pixels == int(moved.sum())
    _, clipped = colour.lab_to_rgb(np.dstack([colour.gray_to_lightness(image), np.zeros(image.shape + (2,))]),
                                   return_clipped=True)
    assert not clipped.any()  # the gray input itself is in gamut, so every moved pixel is the model's chroma
    assert 0 < result.clipped_pixels < image.size // 2  # the strong test chroma clips dark and light pixels
    assert chroma_strength(layer.pixels) > 5  # it really is colourful


def expected_lab(level):
    lightness = float(colour.gray_to_lightness(np.uint8(level)))
    return np.array([lightness, 30 * np.sin(lightness * ob.FREQ_A), 30 * np.cos(lightness * ob.FREQ_B)])


def test_constant_image_gets_exactly_the_models_chroma(engine):
    # a mid gray whose predicted colour is inside the sRGB gamut, so nothing is clipped
    level = next(v for v in range(100, 200) if not colour.lab_to_rgb(expected_lab(v), return_clipped=True)[1])
    image = np.full((40, 60), level, dtype=np.uint8)
    result = engine.colorize(image, ColorizeOptions(model="ab"))
    lab = colour.rgb_to_lab(result.layers[0].pixels)
    np.testing.assert_allclose(lab.reshape(-1, 3), np.broadcast_to(expected_lab(level), (40 * 60, 3)), atol=0.6)
    assert result.clipped_pixels == 0


def test_rgb_that_is_gray_and_alpha_are_handled_like_gray(engine):
    gray = gradient()
    expected = engine.colorize(gray, ColorizeOptions(model="bins")).layers[0].pixels
    alpha = np.full_like(gray, 77)
    for variant in (np.dstack([gray] * 3), np.dstack([gray] * 3 + [alpha]), np.dstack([gray, alpha]), gray[..., None]):
        assert np.array_equal(engine.colorize(variant, ColorizeOptions(model="bins")).layers[0].pixels, expected)


def test_colour_input_is_recoloured_with_its_own_lightness(engine):
    rgb = np.random.default_rng(0).integers(0, 256, size=(50, 70, 3), dtype=np.uint8)
    result = engine.colorize(rgb, ColorizeOptions(model="ab"))
    out = result.layers[0].pixels
    moved = np.abs(gray_levels(out) - gray_levels(rgb)) > 1.0
    assert result.clipped_pixels == int(moved.sum())
    assert not np.array_equal(out, rgb)


@pytest.mark.parametrize("model", ["yuv", "ycbcr"])
def test_yuv_and_ycbcr_models_keep_the_input_luma(engine, model):
    image = gradient()
    result = engine.colorize(image, ColorizeOptions(model=model))
    out = result.layers[0].pixels
    luma = colour.rgb_to_luma(out) * 255
    in_gamut = np.abs(gray_levels(out) - image) <= 1.0  # rough: clipped pixels move
    assert np.abs(luma - image)[in_gamut].max() <= 1.0
    assert chroma_strength(out) > 3


def test_temperature_changes_an_ab_bins_result(engine):
    image = gradient()
    cold = engine.colorize(image, ColorizeOptions(model="bins", temperature=0.05)).layers[0].pixels
    warm = engine.colorize(image, ColorizeOptions(model="bins", temperature=5.0)).layers[0].pixels
    assert chroma_strength(warm) < chroma_strength(cold)  # a hot softmax averages towards gray


def test_diverse_mode_gives_reproducible_distinct_samples(engine):
    image = gradient()
    options = ColorizeOptions(mode="diverse", samples=3, seed=7)
    first = engine.colorize(image, options)
    again = engine.colorize(image, options)
    assert first.model == "diverse" and first.mode == "diverse" and len(first.layers) == 3
    assert first.layers[0].name != first.layers[1].name
    assert not np.array_equal(first.layers[0].pixels, first.layers[1].pixels)
    for a, b in zip(first.layers, again.layers):
        assert np.array_equal(a.pixels, b.pixels)


def test_diverse_samples_are_named_grouped_and_each_rerun_alone_by_its_seed(engine, monkeypatch):
    from gimp_colorize import sessions

    runs = []
    real_run = sessions.ModelSession.run
    monkeypatch.setattr(sessions.ModelSession, "run", lambda self, feeds: runs.append(feeds) or real_run(self, feeds))
    result = engine.colorize(gradient(), ColorizeOptions(mode="diverse", samples=4, seed=40))
    assert len(runs) == 1 and runs[0]["noise"].shape == (4, 4)  # one model run for all samples
    assert [layer.name for layer in result.layers] == [f"sample {i} (seed {39 + i})" for i in range(1, 5)]
    assert {layer.group for layer in result.layers} == {"Colorize: diverse (diverse)"}
    assert [layer.visible for layer in result.layers] == [True, False, False, False]
    assert [layer.details["seed"] for layer in result.layers] == [40, 41, 42, 43] == result.details["seeds"]
    third = engine.colorize(gradient(), ColorizeOptions(mode="diverse", samples=1, seed=42)).layers[0]
    assert third.name == "sample 1 (seed 42)" and np.array_equal(third.pixels, result.layers[2].pixels)


def test_diverse_without_a_seed_reports_the_one_it_drew(engine):
    result = engine.colorize(gradient(), ColorizeOptions(mode="diverse", samples=2))
    seed = result.layers[0].details["seed"]
    again = engine.colorize(gradient(), ColorizeOptions(mode="diverse", samples=2, seed=seed))
    assert all(np.array_equal(a.pixels, b.pixels) for a, b in zip(result.layers, again.layers))


def test_full_model_ignores_samples(engine):
    result = engine.colorize(gradient(), ColorizeOptions(model="ab", samples=4))
    assert len(result.layers) == 1


def test_unknown_model_mode_and_missing_modes(engine, tmp_path):
    with pytest.raises(UnknownModel, match="unknown model 'nope'"):
        engine.colorize(gradient(), ColorizeOptions(model="nope"))
    with pytest.raises(UnknownMode):
        engine.colorize(gradient(), ColorizeOptions(mode="sepia"))
    with pytest.raises(NoModelInstalled, match="mode 'instance'"):
        engine.colorize(gradient(), ColorizeOptions(mode="instance"))
    empty = Engine(Registry(None, tmp_path))
    with pytest.raises(NoModelInstalled, match="no trained model installed for mode 'full'"):
        empty.colorize(gradient(), ColorizeOptions())
    with pytest.raises(NoModelInstalled, match="mode 'diverse'"):
        empty.colorize(gradient(), ColorizeOptions(mode="diverse"))


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((4, 4, 5), np.uint8), "expected an"),
        (np.zeros((4,), np.uint8), "expected an"),
        (np.zeros((0, 4), np.uint8), "empty"),
        (np.zeros((4, 4), np.int32), "unsupported pixel type int32"),
        (np.full((4, 4), np.nan, np.float32), "NaN"),
    ],
)
def test_bad_images_are_refused_clearly(engine, image, message):
    with pytest.raises(InvalidImage, match=message):
        engine.colorize(image, ColorizeOptions(model="ab"))


@pytest.mark.parametrize("options", [ColorizeOptions(model="ab", samples=0), ColorizeOptions(model="ab", temperature=-1),
                                     ColorizeOptions(model="ab", temperature=float("nan"))])
def test_bad_options_are_refused(engine, options):
    with pytest.raises(BadRequest):
        engine.colorize(gradient(), options)


def test_progress_is_monotonic_and_cancel_stops_between_stages(engine, monkeypatch):
    monkeypatch.setattr(colour, "CHUNK_PIXELS", 2000)  # several recombine chunks
    seen = []
    result = engine.colorize(gradient(), ColorizeOptions(model="bins"), progress=lambda s, f: seen.append((s, f)))
    fractions = [f for _, f in seen]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert [s for s, _ in seen][:3] == ["preprocess", "inference", "upsample_recombine"]
    assert set(result.timings) == {"preprocess", "inference", "upsample_recombine"}
    for stop_after in (0, 1, 2, 4):
        calls = []
        with pytest.raises(JobCancelled):
            engine.colorize(gradient(), ColorizeOptions(model="bins"),
                            cancelled=lambda: calls.append(1) or len(calls) > stop_after)


def test_sessions_are_created_lazily_once_and_reused(model_dir):
    engine = Engine(Registry(None, model_dir))
    assert engine.loaded_models() == []
    engine.colorize(gradient(), ColorizeOptions(model="ab"))
    info = engine.registry.get("ab")
    session = engine._sessions.get(info)
    engine.colorize(gradient(), ColorizeOptions(model="ab"))
    assert engine._sessions.get(info) is session
    assert engine.loaded_models() == ["ab"]
    assert session.providers[-1] == "CPUExecutionProvider"


def test_preload_loads_and_runs_the_default_full_model_once(model_dir, tmp_path):
    engine = Engine(Registry(None, model_dir), providers=["CPUExecutionProvider"], threads=1)
    info = engine.preload()
    assert info.name == engine.registry.default_for("full").name
    assert engine.loaded_models() == [info.name]
    session = engine._sessions.get(info)
    engine.colorize(gradient(), ColorizeOptions())
    assert engine._sessions.get(info) is session and engine.loaded_models() == [info.name]
    with pytest.raises(NoModelInstalled):
        Engine(Registry(None, tmp_path)).preload()


@pytest.mark.parametrize("spinning", [False, True])
def test_spinning_setting_reaches_the_onnxruntime_session(model_dir, spinning):
    engine = Engine(Registry(None, model_dir), providers=["CPUExecutionProvider"], threads=2, spinning=spinning)
    session = engine._sessions.get(engine.registry.get("ab"))
    options = session._session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == ("1" if spinning else "0")
    assert options.intra_op_num_threads == 2


def test_provider_listing_falls_back_to_cpu(model_dir):
    import onnxruntime

    default = Engine(Registry(None, model_dir)).providers()
    assert default[-1] == "CPUExecutionProvider"
    assert set(default) <= set(onnxruntime.get_available_providers())
    assert ("CUDAExecutionProvider" in default) == ("CUDAExecutionProvider" in onnxruntime.get_available_providers())
    forced = Engine(Registry(None, model_dir), providers=["NoSuchExecutionProvider"]).providers()
    assert forced == ["CPUExecutionProvider"]


def test_missing_onnxruntime_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(RuntimeMissing, match="onnxruntime is not importable"):
        sessions.available_providers()


def test_a_model_onnxruntime_cannot_load_is_a_model_load_error(tmp_path):
    import onnx

    path = ob.build_tiny_full_model(tmp_path / "broken.onnx", name="broken", output_kind="ab")
    model = onnx.load(str(path))
    model.graph.node[0].op_type = "NoSuchOperator"  # the contract is fine, the graph is not
    onnx.save(model, str(path))
    engine = Engine(Registry(None, tmp_path))
    assert engine.registry.get("broken").task == "full"
    with pytest.raises(ModelLoadError, match="cannot load model 'broken'"):
        engine.colorize(gradient(), ColorizeOptions(model="broken"))


def test_bilinear_upsampler_matches_pillow():
    from PIL import Image

    small = np.random.default_rng(1).normal(size=(2, 7, 9)).astype(np.float32)
    up = BilinearUpsampler(small, 29, 40)
    ours = np.concatenate([up.rows(0, 10), up.rows(10, 29)], axis=1)
    for channel in range(2):
        pillow = np.asarray(Image.fromarray(small[channel]).resize((40, 29), Image.BILINEAR))
        np.testing.assert_allclose(ours[channel], pillow, atol=1e-4)


@pytest.mark.parametrize("shape", [(1, 1), (1, 300), (301, 1), (7, 5)])
@pytest.mark.parametrize("model", ["bins", "ab"])
def test_tiny_and_thin_images(engine, shape, model):
    image = (np.arange(np.prod(shape)) % 256).astype(np.uint8).reshape(shape)
    result = engine.colorize(image, ColorizeOptions(model=model))
    assert result.layers[0].pixels.shape == shape + (3,)


def test_strided_and_fortran_order_inputs_match_a_contiguous_copy(engine):
    big = gradient(192, 256)
    view = big[::2, ::2]
    expected = engine.colorize(np.ascontiguousarray(view), ColorizeOptions(model="bins")).layers[0].pixels
    assert np.array_equal(engine.colorize(view, ColorizeOptions(model="bins")).layers[0].pixels, expected)
    fortran = np.asfortranarray(view)
    assert np.array_equal(engine.colorize(fortran, ColorizeOptions(model="bins")).layers[0].pixels, expected)


def test_chunking_and_threads_do_not_change_the_result(engine, monkeypatch):
    from gimp_colorize import recombine as recombine_module

    image = gradient(123, 77, np.uint16)
    expected = engine.colorize(image, ColorizeOptions(model="bins")).layers[0].pixels
    monkeypatch.setattr(colour, "CHUNK_PIXELS", 500)
    for threads in (1, 3):
        monkeypatch.setattr(recombine_module, "PIXEL_THREADS", threads)
        assert np.array_equal(engine.colorize(image, ColorizeOptions(model="bins")).layers[0].pixels, expected)


def test_a_lightness_input_of_the_wrong_shape_is_refused_at_load(tmp_path):
    import onnx

    path = ob.build_tiny_full_model(tmp_path / "rgb-input.onnx", name="rgbin", output_kind="ab")
    model = onnx.load(str(path))
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 3  # claims (N, 3, H, W)
    onnx.save(model, str(path))
    engine = Engine(Registry(None, tmp_path))
    with pytest.raises(ModelLoadError, match=r"needs \(N, 1, H, W\)"):
        engine.colorize(gradient(), ColorizeOptions(model="rgbin"))


def test_concurrent_first_requests_create_one_session(model_dir, monkeypatch):
    import threading

    created = []
    real = sessions.ModelSession

    def counting(*args, **kwargs):
        created.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(sessions, "ModelSession", counting)
    engine = Engine(Registry(None, model_dir))
    results = []
    workers = [threading.Thread(target=lambda: results.append(engine.colorize(gradient(), ColorizeOptions(model="ab"))))
               for _ in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(results) == 6 and len(created) == 1
    assert all(np.array_equal(r.layers[0].pixels, results[0].layers[0].pixels) for r in results)
