"""Daemon lifecycle helpers in-process: pid file, staleness, bind policy, port in use.

Starting and stopping a real daemon process is covered in tests/test_server_http.py and tests/test_cli.py.
"""

import os
import socket
import subprocess
import sys
import time

import pytest

from gimp_colorize import daemon
from gimp_colorize.config import load_settings
from gimp_colorize.daemon import PidInfo
from gimp_colorize.errors import BadRequest, ColorizeError


@pytest.fixture
def settings(tmp_path):
    return load_settings(
        env={"GIMP_COLORIZE_CONFIG_DIR": str(tmp_path / "c"), "GIMP_COLORIZE_STATE_DIR": str(tmp_path / "s")}
    )


def test_pid_file_round_trip(settings):
    daemon.write_pid_file(settings.pid_file, PidInfo(1234, "127.0.0.1", 5555))
    info = daemon.read_pid_file(settings.pid_file)
    assert info == PidInfo(1234, "127.0.0.1", 5555)
    assert info.url == "http://127.0.0.1:5555"


def test_unreadable_pid_file_counts_as_absent(settings):
    settings.pid_file.parent.mkdir(parents=True)
    settings.pid_file.write_text("garbage")
    assert daemon.read_pid_file(settings.pid_file) is None
    assert daemon.running_daemon(settings) is None
    assert not settings.pid_file.exists()  # stale: removed


def test_pid_file_of_dead_process_is_stale(settings):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(finished.stdout)
    daemon.write_pid_file(settings.pid_file, PidInfo(dead_pid, "127.0.0.1", 5555))
    assert not daemon.process_alive(dead_pid)
    assert daemon.running_daemon(settings) is None
    assert not settings.pid_file.exists()


@pytest.mark.skipif(not os.path.exists("/proc/self/cmdline"), reason="needs /proc to tell processes apart")
def test_pid_reused_by_an_unrelated_process_is_stale(settings):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        daemon.write_pid_file(settings.pid_file, PidInfo(sleeper.pid, "127.0.0.1", 5555))
        assert daemon.process_alive(sleeper.pid)
        assert daemon.running_daemon(settings) is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_remove_pid_file_only_for_its_owner(settings):
    daemon.write_pid_file(settings.pid_file, PidInfo(42, "127.0.0.1", 1))
    daemon.remove_pid_file(settings.pid_file, only_pid=43)
    assert settings.pid_file.exists()
    daemon.remove_pid_file(settings.pid_file, only_pid=42)
    assert not settings.pid_file.exists()


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc")
def test_exited_but_unreaped_child_is_not_alive():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        while not daemon._is_zombie(child.pid) and time.monotonic() < deadline:
            time.sleep(0.01)  # no poll(): that would reap it
        assert not daemon.process_alive(child.pid)
    finally:
        child.wait()


def test_remote_bind_needs_flag_and_token(settings):
    settings.host = "0.0.0.0"
    with pytest.raises(BadRequest, match="--allow-remote"):
        daemon.check_bind_policy(settings)
    settings.allow_remote = True
    with pytest.raises(BadRequest, match="without a token"):
        daemon.check_bind_policy(settings)
    settings.token_file.parent.mkdir(parents=True)
    settings.token_file.write_text("a-long-enough-secret-token")
    daemon.check_bind_policy(settings)  # now allowed


def test_loopback_bind_is_always_allowed(settings):
    for host in ("127.0.0.1", "localhost", "::1"):
        settings.host = host
        daemon.check_bind_policy(settings)


def test_port_in_use_is_one_clear_error():
    holder = daemon.bind_socket("127.0.0.1", 0)
    holder.listen()
    port = holder.getsockname()[1]
    try:
        with pytest.raises(ColorizeError, match=f"cannot listen on 127.0.0.1:{port}.*gimp-colorize status"):
            daemon.bind_socket("127.0.0.1", port)
    finally:
        holder.close()


def test_status_when_nothing_runs(settings):
    state = daemon.status(settings)
    assert state["running"] is False and state["pid"] is None
    assert state["log_file"] == str(settings.log_file)


def test_stop_when_nothing_runs(settings):
    assert daemon.stop(settings) is None


def test_device_choice():
    assert daemon.providers_for_device("cpu", None) == ["CPUExecutionProvider"]
    assert daemon.providers_for_device("auto", ["X"]) == ["X"]
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(BadRequest, match="no CUDA"):
            daemon.providers_for_device("gpu", None)


def test_health_of_nothing_is_none():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert daemon.fetch_health(f"http://127.0.0.1:{port}", timeout=0.5) is None


def sleeper_mentioning_gimp_colorize():
    """A live process whose command line mentions gimp_colorize, like the GIMP plug-in's."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "gimp_colorize", "gimp-colorize"])


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc to read start times")
@pytest.mark.parametrize("started", ["1", None])  # a pid file from a daemon that started at another time; an old one
def test_stop_never_signals_a_process_that_reused_the_daemons_pid(settings, started):
    victim = sleeper_mentioning_gimp_colorize()
    try:
        daemon.write_pid_file(settings.pid_file, PidInfo(victim.pid, "127.0.0.1", 9, started))
        assert daemon.stop(settings, timeout=2) is None
        time.sleep(0.2)
        assert victim.poll() is None, "an unrelated process was killed"
        assert not settings.pid_file.exists()  # stale: removed
    finally:
        victim.kill()
        victim.wait()


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc to read start times")
def test_the_recorded_start_time_identifies_a_hung_daemon(settings):
    hung = sleeper_mentioning_gimp_colorize()
    try:
        started = daemon.process_start_time(hung.pid)
        assert started is not None and started != daemon.process_start_time(os.getpid())
        daemon.write_pid_file(settings.pid_file, PidInfo(hung.pid, "127.0.0.1", 9, started))
        state = daemon.status(settings)
        assert state["running"] and not state["healthy"] and state["pid"] == hung.pid
        assert daemon.stop(settings, timeout=5).pid == hung.pid
        assert hung.wait(5) is not None
    finally:
        hung.kill()
        hung.wait()


def test_a_daemon_without_start_time_must_answer_with_its_pid(settings, monkeypatch):
    monkeypatch.setattr(daemon, "process_start_time", lambda pid: None)  # e.g. macOS
    monkeypatch.setattr(daemon, "process_alive", lambda pid: True)
    info = PidInfo(4242, "127.0.0.1", 9, "123")
    monkeypatch.setattr(daemon, "fetch_health", lambda url, timeout=2.0: {"pid": 4242})
    assert daemon.is_recorded_daemon(info)
    monkeypatch.setattr(daemon, "fetch_health", lambda url, timeout=2.0: {"pid": 1})  # another daemon answers
    assert not daemon.is_recorded_daemon(info)
    monkeypatch.setattr(daemon, "fetch_health", lambda url, timeout=2.0: None)
    assert not daemon.is_recorded_daemon(info)


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc to read start times")
def test_pid_file_is_claimed_only_from_a_dead_owner(settings):
    live = sleeper_mentioning_gimp_colorize()
    try:
        daemon.write_pid_file(settings.pid_file, PidInfo(live.pid, "127.0.0.1", 9, daemon.process_start_time(live.pid)))
        with pytest.raises(daemon.DaemonError, match="already running.*gimp-colorize stop"):
            daemon.claim_pid_file(settings, PidInfo(os.getpid(), "127.0.0.1", 10, "5"))
        with pytest.raises(daemon.DaemonError, match="already running"):
            daemon.refuse_if_running(settings)  # what serve does first
        assert daemon.read_pid_file(settings.pid_file).pid == live.pid  # untouched
    finally:
        live.kill()
        live.wait()
    daemon.claim_pid_file(settings, PidInfo(os.getpid(), "127.0.0.1", 10, "5"))  # the owner is gone: stale
    assert daemon.read_pid_file(settings.pid_file) == PidInfo(os.getpid(), "127.0.0.1", 10, "5")
    assert [p.name for p in settings.pid_file.parent.iterdir()] == ["daemon.pid"]


def test_bind_refuses_a_name_that_resolves_elsewhere(monkeypatch):
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host == "127.attacker.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("203.0.113.7", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(daemon.DaemonError, match="not a loopback address"):
        daemon.bind_socket("127.attacker.example", 0, loopback_only=True)
