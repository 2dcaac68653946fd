"""User models are tried once before they are offered; loaded sessions are dropped when idle."""

import time

import numpy as np
import onnx
import pytest

from gimp_colorize import cli, sessions
from gimp_colorize.probe import probe_model
from gimp_colorize.registry import Registry
from gimp_colorize.sessions import SessionCache
from tests.support import onnx_builders
from tests.support.daemon_harness import make_dirs

BROKEN = {
    "unknown_op": "NoSuchColourOperator",
    "nan": "NaN or infinite",
    "constant": "same colour",
}


@pytest.fixture
def user_dir(tmp_path):
    folder = tmp_path / "user"
    onnx_builders.build_tiny_model(folder / "good.onnx", name="good")
    return folder


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_broken_user_models_are_rejected_with_the_reason(user_dir, kind):
    onnx_builders.build_broken_model(user_dir / f"{kind}.onnx", kind, name=f"tiny-{kind}")
    registry = Registry(shipped_dir=None, user_dir=user_dir, probe=probe_model)
    assert [m.name for m in registry.models()] == ["good"]
    (rejection,) = registry.rejected()
    assert rejection.file.name == f"{kind}.onnx"
    assert rejection.reason.startswith("unusable: ") and BROKEN[kind] in rejection.reason


def test_instance_mode_companions_are_offered_and_a_broken_one_is_not(user_dir):
    onnx_builders.build_tiny_instance_model(user_dir / "tiny-instance.onnx", output_kind="ab")
    onnx_builders.build_tiny_fusion_model(user_dir / "tiny-fusion.onnx")
    onnx_builders.build_tiny_detector(user_dir / "tiny-detector.onnx", [[0.0, 0.5, 1.0, 1.0]], [1], [0.9])
    broken = onnx_builders.build_tiny_detector(user_dir / "bad-detector.onnx", [[0.0, 0.5, 1.0, 1.0]], [1], [0.9],
                                               name="bad-detector")
    model = onnx.load(str(broken))
    model.graph.node[0].op_type = "NoSuchDetectorOperator"
    onnx.save(model, str(broken))
    registry = Registry(shipped_dir=None, user_dir=user_dir, probe=probe_model)
    assert sorted(m.name for m in registry.models()) == ["good", "tiny-detector", "tiny-fusion", "tiny-instance"]
    (rejection,) = registry.rejected()
    assert rejection.file.name == "bad-detector.onnx" and "NoSuchDetectorOperator" in rejection.reason


def test_without_a_probe_broken_models_pass_the_metadata_check(user_dir):
    onnx_builders.build_broken_model(user_dir / "nan.onnx", "nan", name="tiny-nan")
    assert "tiny-nan" in [m.name for m in Registry(shipped_dir=None, user_dir=user_dir).models()]


def test_verdicts_are_cached_per_file_version(user_dir):
    calls = []

    def probe(info):
        calls.append(info.name)
        return None

    registry = Registry(shipped_dir=None, user_dir=user_dir, probe=probe)
    registry.refresh()
    registry.refresh()
    assert calls == ["good"]
    onnx_builders.build_tiny_model(user_dir / "good.onnx", name="good", working_size=32)  # replaced: new version
    registry.refresh()
    assert calls == ["good", "good"]


def test_shipped_models_are_not_probed(tmp_path):
    shipped = tmp_path / "shipped"
    onnx_builders.build_tiny_model(shipped / "ship.onnx", name="ship")
    onnx_builders.write_manifest(shipped, [{"file": "ship.onnx", "default_for": ["full"]}])
    registry = Registry(shipped_dir=shipped, user_dir=None, probe=lambda info: "should not run")
    assert [m.name for m in registry.models()] == ["ship"] and registry.rejected() == []


def test_a_probe_that_fails_unexpectedly_is_a_rejection_not_a_crash(user_dir, monkeypatch):
    monkeypatch.setattr(sessions.ModelSession, "run", lambda self, feeds: 1 / 0)
    registry = Registry(shipped_dir=None, user_dir=user_dir, probe=probe_model)
    assert registry.models() == [] and "trial run failed" in registry.rejected()[0].reason


def test_cli_reports_and_refuses_a_broken_model(tmp_path, monkeypatch, capsys):
    env = make_dirs(tmp_path / "home")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    models_dir = tmp_path / "home" / "models"
    onnx_builders.build_broken_model(models_dir / "tiny-nan.onnx", "nan", name="tiny-nan")
    assert cli.main(["models"]) == 1
    assert "tiny-nan.onnx: unusable: its trial run returned NaN" in capsys.readouterr().out
    image = tmp_path / "in.png"
    from PIL import Image

    Image.fromarray(np.tile(np.arange(32, dtype=np.uint8) * 8, (24, 1))).save(image)
    assert cli.main(["colorize", str(image), "-o", str(tmp_path / "out"), "--model", "tiny-nan"]) == 1
    assert "model 'tiny-nan' was rejected: unusable" in capsys.readouterr().err
    assert not (tmp_path / "out" / "in.png").exists()  # no gray "result"


# -- idle sessions


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def tiny_info(tmp_path, name="tiny"):
    path = onnx_builders.build_tiny_model(tmp_path / f"{name}.onnx", name=name)
    return Registry.from_files([path]).get(name)


def test_sessions_unused_for_the_idle_time_are_dropped(tmp_path):
    clock = Clock()
    cache = SessionCache(["CPUExecutionProvider"], threads=1, idle_s=60, clock=clock)
    info = tiny_info(tmp_path)
    first = cache.get(info)
    clock.now += 59
    assert cache.evict_idle() == [] and cache.get(info) is first  # used again: the timer restarts
    clock.now += 59
    assert cache.evict_idle() == []
    clock.now += 2
    assert cache.evict_idle() == ["tiny"] and cache.loaded() == []
    assert cache.get(info) is not first  # loaded again on the next use


def test_idle_time_zero_keeps_sessions(tmp_path):
    clock = Clock()
    cache = SessionCache(["CPUExecutionProvider"], idle_s=0, clock=clock)
    cache.get(tiny_info(tmp_path))
    clock.now += 10**9
    assert cache.evict_idle() == [] and cache.loaded() == ["tiny"]


def test_the_sweeper_unloads_an_idle_model_by_itself(tmp_path):
    cache = SessionCache(["CPUExecutionProvider"], idle_s=0.2)
    cache.get(tiny_info(tmp_path))
    deadline = time.monotonic() + 10
    while cache.loaded() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert cache.loaded() == []


def test_the_daemon_setting_reaches_the_engines_sessions(tmp_path):
    from gimp_colorize.config import load_settings
    from gimp_colorize.daemon import build_engine

    settings = load_settings(env={**make_dirs(tmp_path / "home")})
    settings.session_idle_s = 42
    assert build_engine(settings, "cpu")._sessions.idle_s == 42
