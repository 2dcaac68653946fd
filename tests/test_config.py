import json
import os
import stat
import threading

import pytest

from gimp_colorize import config
from gimp_colorize.config import ConfigError, ensure_token, load_settings, load_token


def test_linux_paths_follow_xdg(tmp_path):
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_STATE_HOME": str(tmp_path / "st")}
    settings = load_settings(env=env, platform="linux")
    assert settings.config_dir == tmp_path / "cfg" / "gimp-colorize"
    assert settings.token_file == tmp_path / "cfg" / "gimp-colorize" / "token"
    assert settings.user_models_dir == tmp_path / "cfg" / "gimp-colorize" / "models"
    assert settings.log_file == tmp_path / "st" / "gimp-colorize" / "daemon.log"
    assert settings.pid_file == tmp_path / "st" / "gimp-colorize" / "daemon.pid"
    assert (settings.host, settings.port) == ("127.0.0.1", 48765)


def test_linux_defaults_without_xdg(tmp_path):
    settings = load_settings(env={"HOME": str(tmp_path)}, platform="linux")
    assert settings.config_dir == tmp_path / ".config" / "gimp-colorize"
    assert settings.state_dir == tmp_path / ".local" / "state" / "gimp-colorize"


def test_windows_and_macos_keep_state_in_config_dir(tmp_path):
    win = load_settings(env={"HOME": str(tmp_path), "APPDATA": str(tmp_path / "Roaming")}, platform="win32")
    assert win.config_dir == tmp_path / "Roaming" / "gimp-colorize"
    assert win.state_dir == win.config_dir
    mac = load_settings(env={"HOME": str(tmp_path)}, platform="darwin")
    assert mac.config_dir == tmp_path / "Library" / "Application Support" / "gimp-colorize"
    assert mac.log_file == mac.config_dir / "daemon.log"


def test_env_overrides(tmp_path):
    env = {
        "HOME": str(tmp_path),
        "GIMP_COLORIZE_CONFIG_DIR": str(tmp_path / "c"),
        "GIMP_COLORIZE_STATE_DIR": str(tmp_path / "s"),
        "GIMP_COLORIZE_MODELS_DIR": str(tmp_path / "m"),
        "GIMP_COLORIZE_SHIPPED_MODELS_DIR": str(tmp_path / "shipped"),
    }
    settings = load_settings(env=env, platform="linux")
    assert settings.token_file == tmp_path / "c" / "token"
    assert settings.pid_file == tmp_path / "s" / "daemon.pid"
    assert settings.user_models_dir == tmp_path / "m"
    assert settings.shipped_models_dir == tmp_path / "shipped"


def test_shipped_models_default_to_the_package_folder(tmp_path):
    settings = load_settings(env={"HOME": str(tmp_path)}, platform="linux")
    assert settings.shipped_models_dir == config.Path(config.__file__).resolve().parent / "models"


def test_config_json_then_overrides(tmp_path):
    cdir = tmp_path / "c"
    cdir.mkdir()
    (cdir / "config.json").write_text(
        json.dumps(
            {
                "python": "/venv/bin/python",
                "host": "127.0.0.1",
                "port": 50001,
                "max_pixels": 1000,
                "state_dir": str(tmp_path / "state"),
                "providers": ["CPUExecutionProvider"],
                "version": "0.1.0",
            }
        )
    )
    env = {"HOME": str(tmp_path), "GIMP_COLORIZE_CONFIG_DIR": str(cdir)}
    settings = load_settings(env=env, platform="linux", port=50002, host=None)
    assert settings.port == 50002  # the command line wins
    assert settings.max_pixels == 1000
    assert settings.providers == ["CPUExecutionProvider"]
    assert settings.log_file == tmp_path / "state" / "daemon.log"
    assert settings.extra == {"python": "/venv/bin/python", "version": "0.1.0"}


@pytest.mark.parametrize(
    "content", ["{not json", "[1, 2]", json.dumps({"port": "http"}), json.dumps({"max_pixels": -5})]
)
def test_bad_config_json_is_one_clear_error(tmp_path, content):
    (tmp_path / "config.json").write_text(content)
    with pytest.raises(ConfigError) as info:
        load_settings(env={"GIMP_COLORIZE_CONFIG_DIR": str(tmp_path)}, platform="linux")
    assert "config.json" in info.value.message


def test_remote_host_detection(tmp_path):
    env = {"HOME": str(tmp_path)}
    assert load_settings(env=env, platform="linux").is_loopback
    assert not load_settings(env=env, platform="linux", host="0.0.0.0").is_loopback
    assert load_settings(env=env, platform="linux", host="::1").url == "http://[::1]:48765"


def test_token_is_created_private_and_reused(tmp_path):
    path = tmp_path / "sub" / "token"
    token = ensure_token(path)
    assert len(token) >= 40
    assert ensure_token(path) == token
    assert load_token(path) == token
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["token"]  # no temporary files left


def test_concurrent_token_creation_agrees(tmp_path):
    path = tmp_path / "token"
    tokens = []
    threads = [threading.Thread(target=lambda: tokens.append(ensure_token(path))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(tokens)) == 1


def test_missing_and_empty_token(tmp_path):
    assert load_token(tmp_path / "absent") is None
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError):
        load_token(tmp_path / "empty")


def fake_resolver(monkeypatch, table):
    """socket.getaddrinfo answering from `table` (name -> addresses); other names do not resolve."""
    import socket

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port or 0)) for address in table[host]]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_loopback_is_judged_by_the_resolved_addresses_not_the_name(tmp_path, monkeypatch):
    fake_resolver(monkeypatch, {"127.attacker.example": ["203.0.113.7"], "mixed.example": ["127.0.0.1", "10.0.0.2"],
                                "my-loopback-alias": ["127.0.0.2"]})
    env = {"HOME": str(tmp_path)}
    assert not load_settings(env=env, platform="linux", host="127.attacker.example").is_loopback
    assert not load_settings(env=env, platform="linux", host="mixed.example").is_loopback
    assert not load_settings(env=env, platform="linux", host="127.nowhere.invalid").is_loopback  # does not resolve
    assert load_settings(env=env, platform="linux", host="my-loopback-alias").is_loopback
    assert load_settings(env=env, platform="linux", host="127.0.0.5").is_loopback  # literal, no lookup
    assert load_settings(env=env, platform="linux", host="[::1]").is_loopback


def test_bind_policy_refuses_a_name_that_looks_like_loopback(tmp_path, monkeypatch):
    from gimp_colorize.daemon import check_bind_policy
    from gimp_colorize.errors import BadRequest

    fake_resolver(monkeypatch, {"127.attacker.example": ["203.0.113.7"]})
    settings = load_settings(env={"HOME": str(tmp_path)}, platform="linux", host="127.attacker.example")
    with pytest.raises(BadRequest, match=r"resolves to 203\.0\.113\.7.*--allow-remote"):
        check_bind_policy(settings)


@pytest.mark.parametrize("token", ["x", "short-token", "aaaaaaaaaaaaaaaaaaaaaaaa", "abababababababababab"])
def test_weak_tokens_are_refused_with_what_to_do(tmp_path, token):
    path = tmp_path / "token"
    path.write_text(token + "\n")
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="too weak.*Delete the file"):
        ensure_token(path)


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_a_token_others_can_read_is_made_private_with_a_warning(tmp_path, caplog):
    path = tmp_path / "token"
    path.write_text("a-perfectly-long-random-token-value\n")
    path.chmod(0o666)
    with caplog.at_level("WARNING"):
        assert load_token(path) == "a-perfectly-long-random-token-value"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "0666" in caplog.text and "0600" in caplog.text


def test_hardening_keys_in_config_json(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(
        {"queue_size": 40, "upload_budget_bytes": 5_000_000, "body_timeout_s": 2.5, "session_idle_s": 0}
    ))
    settings = load_settings(env={"GIMP_COLORIZE_CONFIG_DIR": str(tmp_path)}, platform="linux")
    assert (settings.queue_size, settings.upload_budget_bytes, settings.body_timeout_s, settings.session_idle_s) == (
        40, 5_000_000, 2.5, 0.0)
    assert load_settings(env={"GIMP_COLORIZE_CONFIG_DIR": str(tmp_path)}, platform="linux",
                         queue_size=3).queue_size == 3  # --queue-size wins
    for bad in ({"queue_size": 0}, {"body_timeout_s": 0}, {"session_idle_s": -1}, {"upload_budget_bytes": "big"}):
        (tmp_path / "config.json").write_text(json.dumps(bad))
        with pytest.raises(ConfigError, match=next(iter(bad))):
            load_settings(env={"GIMP_COLORIZE_CONFIG_DIR": str(tmp_path)}, platform="linux")


def test_thread_spinning_and_preload_keys_in_config_json(tmp_path):
    env = {"GIMP_COLORIZE_CONFIG_DIR": str(tmp_path)}
    defaults = load_settings(env=env, platform="linux")
    assert (defaults.spinning, defaults.preload, defaults.threads) == (False, True, None)
    (tmp_path / "config.json").write_text(json.dumps({"spinning": True, "preload": False, "threads": 1}))
    settings = load_settings(env=env, platform="linux")
    assert (settings.spinning, settings.preload, settings.threads) == (True, False, 1)
    for bad in ({"spinning": "yes"}, {"preload": 1}):
        (tmp_path / "config.json").write_text(json.dumps(bad))
        with pytest.raises(ConfigError, match=next(iter(bad))):
            load_settings(env=env, platform="linux")
