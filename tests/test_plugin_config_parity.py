"""The plug-in's client and the backend resolve the per-user files identically (docs/DESIGN.md, "Per-user
files"): same config dir, state dir, token file, log file, host and port for the same environment."""

import json
import os
from pathlib import Path

import pytest

import tests.fakes  # noqa: F401  (puts plugin/common on sys.path)
import gimp_colorize_client as client_lib
from gimp_colorize import config as backend_config

PLATFORMS = ["linux", "darwin", "win32"]


def environments(tmp_path):
    home = str(tmp_path / "home")
    return [
        {"HOME": home},
        {"HOME": home, "XDG_CONFIG_HOME": str(tmp_path / "xdg-config"), "XDG_STATE_HOME": str(tmp_path / "xdg-state")},
        {"HOME": home, "APPDATA": str(tmp_path / "appdata")},
        {"HOME": home, "GIMP_COLORIZE_CONFIG_DIR": str(tmp_path / "cfg"),
     "GIMP_COLORIZE_STATE_DIR": str(tmp_path / "st")},
    ]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_directories_agree(tmp_path, platform):
    for env in environments(tmp_path):
        assert Path(client_lib.config_dir(env, platform)) == backend_config.config_dir(env, platform), env
        assert Path(client_lib.state_dir(env, platform)) == backend_config.state_dir(env, platform), env


CONFIGS = [
    {},
    {"host": "127.0.0.1", "port": 49999},
    {"port": 40001, "token_file": "{tmp}/elsewhere/token", "log_file": "{tmp}/logs/d.log"},
    {"state_dir": "{tmp}/custom-state"},
    {"state_dir": "{tmp}/custom-state", "log_file": "{tmp}/explicit.log"},
    {"user_models_dir": "{tmp}/my-models"},
]


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("state_env", [False, True])
def test_config_json_is_read_the_same_way(tmp_path, monkeypatch, config, state_env):
    env = {"HOME": str(tmp_path / "home"), "GIMP_COLORIZE_CONFIG_DIR": str(tmp_path / "cfg")}
    if state_env:
        env["GIMP_COLORIZE_STATE_DIR"] = str(tmp_path / "state-from-env")
    for key in list(os.environ):
        if key.startswith(("GIMP_COLORIZE_", "XDG_")):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)  # the backend reads os.environ in places
    (tmp_path / "cfg").mkdir()
    text = json.dumps(config).replace("{tmp}", str(tmp_path))
    (tmp_path / "cfg" / "config.json").write_text(text)
    ours = client_lib.load_config(env, "linux")
    theirs = backend_config.load_settings(env, "linux")
    assert (ours.host, ours.port) == (theirs.host, theirs.port)
    assert Path(ours.token_file) == theirs.token_file
    assert Path(ours.log_file) == theirs.log_file
    assert Path(ours.state_dir) == theirs.state_dir  # where the models index is
    assert Path(ours.models_dir) == theirs.user_models_dir  # named in the plug-in's "no model" advice


def test_the_models_folder_from_the_environment_agrees(tmp_path, monkeypatch):
    env = {"HOME": str(tmp_path), "GIMP_COLORIZE_CONFIG_DIR": str(tmp_path / "cfg"),
           "GIMP_COLORIZE_MODELS_DIR": str(tmp_path / "env-models")}
    assert Path(client_lib.load_config(env, "linux").models_dir) == backend_config.load_settings(
        env, "linux").user_models_dir
