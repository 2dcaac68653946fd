"""A real `python -m gimp_colorize serve` process on a free loopback port, with private config/state/model dirs.

The shipped models folder is pointed at an empty directory, so the tests do not depend on which models ship.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support import onnx_builders

MODEL_NAME = "tiny-full"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_dirs(root: Path, with_model: bool = True, config: dict | None = None) -> dict[str, str]:
    """Config/state/models dirs under `root` (a tiny default model in the user folder); returns the env vars."""
    dirs = {name: root / name for name in ("config", "state", "models", "shipped")}
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    if with_model:
        onnx_builders.build_tiny_model(dirs["models"] / f"{MODEL_NAME}.onnx", name=MODEL_NAME)
        onnx_builders.write_manifest(dirs["models"], [{"file": f"{MODEL_NAME}.onnx", "default_for": ["full"]}])
    if config:
        (dirs["config"] / "config.json").write_text(json.dumps(config))
    return {
        "GIMP_COLORIZE_CONFIG_DIR": str(dirs["config"]),
        "GIMP_COLORIZE_STATE_DIR": str(dirs["state"]),
        "GIMP_COLORIZE_MODELS_DIR": str(dirs["models"]),
        "GIMP_COLORIZE_SHIPPED_MODELS_DIR": str(dirs["shipped"]),
    }


def child_env(dirs_env: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIMP_COLORIZE_")}
    env.update(dirs_env)
    env["OMP_NUM_THREADS"] = "1"  # the test machine is shared
    return env


@dataclass
class Daemon:
    process: subprocess.Popen
    url: str
    token: str
    env: dict[str, str]

    def client(self, token: str | None = "default", timeout: float = 60.0) -> httpx.Client:
        token = self.token if token == "default" else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    @property
    def log_file(self) -> Path:
        return Path(self.env["GIMP_COLORIZE_STATE_DIR"]) / "daemon.log"

    def stop(self) -> int:
        self.process.terminate()
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def start_daemon(root: Path, config: dict | None = None, timeout: float = 90.0) -> Daemon:
    env = child_env(make_dirs(root, config=config))
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gimp_colorize", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, process, timeout)
    token = (Path(env["GIMP_COLORIZE_CONFIG_DIR"]) / "token").read_text().strip()
    return Daemon(process, url, token, env)


def wait_healthy(url: str, process: subprocess.Popen | None, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"daemon exited with {process.returncode}: {process.stdout.read().decode()}")
        try:
            return httpx.get(url + "/v1/health", timeout=2).json()
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"daemon at {url} did not become healthy")


def wait_job(client: httpx.Client, job_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/v1/jobs/{job_id}").json()
        if body["state"] in ("done", "failed", "cancelled"):
            return body
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish")
