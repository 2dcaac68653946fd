"""Drive a real GIMP 3.0 (inside a cached Debian trixie root) against a daemon on the host.

The trick that keeps paths simple: a "home" directory on the host is bind-mounted at the SAME path
inside the root and used as $HOME for GIMP, install.py and the daemon. So the GIMP profile
(<home>/.config/GIMP/3.0), the plug-in's config.json, the token, the daemon log and every image file
have one path that is valid on both sides, and config.json written by the real install.py needs no
translation. The root shares the host's network namespace, so the plug-in reaches the daemon on the
host's 127.0.0.1.

For auto-start tests the plug-in must run config["python"] inside the root: that is <home>/bin/gc-python,
a wrapper that chroots into the host's / (bound at /host for those runs) and executes the host's Python.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from tests.support.debroot import ensure_debian_root, run_in_root

REPO = Path(__file__).resolve().parents[2]
BATCH_DIR = Path(__file__).resolve().parent / "batch"
# xvfb and xdotool: the desktop tests run GIMP's real window (tests/gimp3/desktop.py).
GIMP_PACKAGES = ("gimp", "python3", "python3-gi", "gir1.2-gimp-3.0", "gir1.2-gegl-0.4", "xvfb", "xdotool")


@dataclass(frozen=True)
class GimpRoot:
    """A Debian suite whose GIMP 3 the tests run (docs/TESTING-GIMP.md, "GIMP versions")."""

    name: str  # the cached root's name
    suite: str
    apt_options: tuple = ()


# The mirror serves unstable from a snapshot older than its Release file's validity window.
GIMP_ROOTS = {
    "trixie": GimpRoot("gimp3-trixie-ui", "trixie"),
    "sid": GimpRoot("gimp3-sid-ui", "sid", ('Acquire::Check-Valid-Until "false"',)),
}
DEFAULT_SUITE = "trixie"  # the full suite; the others get tests/gimp3/test_gimp3_versions.py
VERSIONS_ENV = "GIMP_COLORIZE_TEST_GIMP"  # e.g. "sid": run the whole GIMP suite on that suite's GIMP instead
FACTS_PREFIX = "GC-FACTS "
PROCEDURE = "plug-in-gimp-colorize"
HOST_MOUNT = "/host"
# Noise GIMP prints on every headless run (GIMP.md); filtered out of failure reports.
NOISE = ("cannot open display", "Failed to parse tag cache", "gimp_wire_read(): unexpected EOF", "gimp_flush(): error: Broken pipe",
         "Welcome to GIMP", "batch command executed successfully")


def suite_under_test() -> str:
    suite = os.environ.get(VERSIONS_ENV) or DEFAULT_SUITE
    if suite not in GIMP_ROOTS:
        raise ValueError("%s=%s: choose one of %s" % (VERSIONS_ENV, suite, ", ".join(sorted(GIMP_ROOTS))))
    return suite


def provision_gimp_root(suite: str | None = None) -> Path:
    """A Debian root with GIMP 3, its Python bindings and Xvfb (built once, then cached)."""
    spec = GIMP_ROOTS[suite or suite_under_test()]
    return ensure_debian_root(spec.name, spec.suite, GIMP_PACKAGES, apt_options=spec.apt_options)


def gimp_version(root: Path) -> str:
    """The root's GIMP version, e.g. "3.0.4" (from dpkg, without running GIMP)."""
    result = run_in_root(root, ["dpkg-query", "-W", "-f", "${Version}", "gimp"], timeout=60)
    return result.stdout.strip().split("-")[0].split("+")[0]


def gimp_binary(version: str, console: bool = True) -> str:
    """gimp-console-3.0 / gimp-3.2 ...: the names are versioned by major.minor."""
    return "gimp-%s%s" % ("console-" if console else "", ".".join(version.split(".")[:2]))


def gimp_batch(version: str) -> list:
    return [gimp_binary(version), "-i", "-n", "--batch-interpreter=python-fu-eval", "-b", "-", "--quit"]


@dataclass
class BatchRun:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    facts: list[dict] = field(default_factory=list)

    def report(self) -> str:
        """stdout and the non-noise part of stderr, for assertion messages."""
        useful = [line for line in self.stderr.splitlines() if line.strip() and not any(n in line for n in NOISE)]
        return "exit %d after %.1f s\n--- stdout\n%s\n--- stderr\n%s" % (
            self.returncode, self.seconds, self.stdout[-4000:], "\n".join(useful)[-6000:])

    def only_facts(self) -> dict:
        assert len(self.facts) == 1, self.report()
        return self.facts[0]


def parse_facts(stdout: str) -> list[dict]:
    return [json.loads(line[len(FACTS_PREFIX):]) for line in stdout.splitlines() if line.startswith(FACTS_PREFIX)]


def batch_code(script: str, params: dict) -> str:
    """prelude.py + the parameters + the script: one blob of Python for GIMP's python-fu-eval."""
    return batch_code_text((BATCH_DIR / script).read_text(), params)


def batch_code_text(body: str, params: dict) -> str:
    prelude = (BATCH_DIR / "prelude.py").read_text()
    return "%s\nPARAMS = json.loads(%r)\n%s\n" % (prelude, json.dumps(params), body)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def clean_host_env(home: Path) -> dict:
    """The host environment with HOME=home and no per-user overrides, so every tool resolves the same paths."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIMP_COLORIZE_", "XDG_"))}
    env["HOME"] = str(home)
    return env


@dataclass
class GimpSandbox:
    root: Path
    home: Path  # same path on the host and inside the root
    port: int
    version: str = "3.0.4"  # the root's GIMP

    @property
    def profile(self) -> Path:
        return self.home / ".config" / "GIMP" / ".".join(self.version.split(".")[:2])

    @property
    def config_dir(self) -> Path:
        return self.home / ".config" / "gimp-colorize"

    @property
    def state_dir(self) -> Path:
        return self.home / ".local" / "state" / "gimp-colorize"

    @property
    def work(self) -> Path:
        return self.home / "work"

    @property
    def python_wrapper(self) -> Path:
        return self.home / "bin" / "gc-python"

    def host_env(self, **extra: str) -> dict:
        return {**clean_host_env(self.home), **extra}

    def run_batch(self, script: str, params: dict, env: dict | None = None, timeout: float = 300,
                  host_visible: bool = False) -> BatchRun:
        """Run one batch script in gimp-console-3.0; `host_visible` binds the host's / at /host (auto-start)."""
        binds = [self.home] + ([("/", HOST_MOUNT)] if host_visible else [])
        gimp_env = {"HOME": str(self.home), **(env or {})}
        started = time.monotonic()
        result = run_in_root(self.root, gimp_batch(self.version), env=gimp_env, input=batch_code(script, params),
                             timeout=timeout, binds=binds)
        return BatchRun(result.returncode, result.stdout, result.stderr, time.monotonic() - started,
                        parse_facts(result.stdout))


def make_sandbox(root: Path, home: Path) -> GimpSandbox:
    sandbox = GimpSandbox(root=root, home=home, port=free_port(), version=gimp_version(root))
    for folder in (sandbox.profile, sandbox.work, sandbox.python_wrapper.parent):
        folder.mkdir(parents=True, exist_ok=True)
    write_python_wrapper(sandbox.python_wrapper, Path(sys.executable))
    return sandbox


def write_python_wrapper(path: Path, host_python: Path) -> None:
    """config["python"] for the plug-in: the host interpreter, reached from inside the root through /host."""
    python = str(host_python.absolute())
    path.write_text(
        "#!/bin/sh\n"
        "# Written by tests/gimp3/harness.py. Inside the GIMP test root the host's / is bound at %s:\n"
        "# run the host's Python there (chroot also changes to /; HOME and the environment are kept).\n"
        "# (Not [ -x /host$PY ]: a venv's python is often an absolute symlink, dangling seen from here.)\n"
        "if [ ! -e '%s' ] && [ -d %s/usr/bin ]; then exec chroot %s '%s' \"$@\"; fi\n"
        "exec '%s' \"$@\"\n" % (HOST_MOUNT, python, HOST_MOUNT, HOST_MOUNT, python, python)
    )
    path.chmod(0o755)


def install_plugin(sandbox: GimpSandbox, plugin_src: Path | None = None) -> subprocess.CompletedProcess:
    """The real install.py, plug-ins only, into the sandbox's GIMP 3 profile; config.json points at our port."""
    argv = [sys.executable, str(REPO / "install.py"), "--plugins-only", "--gimp-dir", str(sandbox.profile),
            "--python", str(sandbox.python_wrapper), "--port", str(sandbox.port)]
    if plugin_src is not None:
        argv += ["--plugin-src", str(plugin_src)]
    return subprocess.run(argv, env=sandbox.host_env(), capture_output=True, text=True, timeout=120)


class Daemon:
    """`python -m gimp_colorize serve` on the host, with the sandbox's HOME (its config.json, token, port)."""

    def __init__(self, sandbox: GimpSandbox, **env: str):
        self.sandbox = sandbox
        self.env = sandbox.host_env(**env)
        self.log = sandbox.work / ("daemon-%d.out" % time.monotonic_ns())
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d" % self.sandbox.port

    def start(self, timeout: float = 60) -> "Daemon":
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "gimp_colorize", "serve"], env=self.env,
                                            stdout=out, stderr=subprocess.STDOUT, cwd=str(self.sandbox.home))
        wait_for_health(self.url, timeout, self.process, self.log)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def health(url: str) -> dict | None:
    import urllib.request

    try:
        with urllib.request.urlopen(url + "/v1/health", timeout=2) as response:
            return json.loads(response.read())
    except (OSError, ValueError):
        return None


def wait_for_health(url: str, timeout: float, process: subprocess.Popen | None = None, log: Path | None = None) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError("the daemon exited with %s:\n%s" % (process.returncode, log.read_text()[-3000:] if log else ""))
        answer = health(url)
        if answer is not None:
            return answer
        time.sleep(0.2)
    raise RuntimeError("the daemon did not answer %s/v1/health within %.0f s" % (url, timeout))


def stop_daemon_by_pid_file(sandbox: GimpSandbox) -> None:
    """Stop a daemon the plug-in auto-started (it runs on the host; its pid file is in the sandbox)."""
    subprocess.run([sys.executable, "-m", "gimp_colorize", "stop"], env=sandbox.host_env(),
                   capture_output=True, timeout=30)


@contextlib.contextmanager
def edited_config(sandbox: GimpSandbox, **changes) -> Iterator[dict]:
    """config.json with `changes` applied for the duration of the block, then restored byte for byte."""
    path = sandbox.config_dir / "config.json"
    original = path.read_text()
    config = {**json.loads(original), **changes}
    path.write_text(json.dumps(config, indent=2))
    try:
        yield config
    finally:
        path.write_text(original)
