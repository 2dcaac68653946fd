"""Daemon settings and the per-user files (config dir, token, state dir, log, pid).

Paths follow docs/DESIGN.md ("Per-user files"); plugin/common computes the same paths, so change both together.
Environment overrides (used by tests and by people running several daemons):

    GIMP_COLORIZE_CONFIG_DIR          config dir (config.json, token, user models)
    GIMP_COLORIZE_STATE_DIR           state dir (daemon.pid, daemon.log)
    GIMP_COLORIZE_MODELS_DIR          user models folder (default <config dir>/models)
    GIMP_COLORIZE_SHIPPED_MODELS_DIR  shipped models folder (default: the package's models/ folder)

Optional keys in config.json besides those install.py writes (all have defaults below):
``max_pixels``, ``max_body_bytes``, ``queue_size``, ``workers``, ``threads``, ``providers``,
``job_ttl_s``, ``max_finished_jobs``, ``max_result_bytes``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BadRequest

APP_NAME = "gimp-colorize"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 48765
# 64 megapixels covers a 9000 x 7000 scan. The largest legal raw body is 64 MP of rgbaf32 (1.02 GB),
# so the body limit is 1 GiB; PNG/JPEG/TIFF uploads of such images are far smaller.
DEFAULT_MAX_PIXELS = 64_000_000
DEFAULT_MAX_BODY_BYTES = 1 << 30
DEFAULT_QUEUE_SIZE = 8  # jobs waiting beyond the running ones; more submissions get 503 "busy"
DEFAULT_JOB_TTL_S = 600.0  # a finished job nobody fetched is dropped after 10 minutes
DEFAULT_MAX_FINISHED_JOBS = 16  # and at most this many finished jobs keep their results,
DEFAULT_MAX_RESULT_BYTES = 2 << 30  # holding at most 2 GiB together (the newest is always kept)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class ConfigError(BadRequest):
    """The user's configuration is unusable (bad config.json, unreadable token...)."""

    code = "config_error"


@dataclass
class Settings:
    config_dir: Path
    state_dir: Path
    user_models_dir: Path
    shipped_models_dir: Path
    token_file: Path
    log_file: Path
    pid_file: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    queue_size: int = DEFAULT_QUEUE_SIZE
    workers: int = 1  # one model run at a time: inference already uses all cores
    threads: int | None = None  # onnxruntime intra-op threads; None lets onnxruntime decide
    providers: list[str] | None = None  # None: CUDA when available, then CPU
    job_ttl_s: float = DEFAULT_JOB_TTL_S
    max_finished_jobs: int = DEFAULT_MAX_FINISHED_JOBS
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES
    allow_remote: bool = False
    extra: dict = field(default_factory=dict)  # config.json keys this version does not know

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def is_loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS or self.host.startswith("127.")


def config_dir(env=os.environ, platform: str = sys.platform) -> Path:
    if env.get("GIMP_COLORIZE_CONFIG_DIR"):
        return Path(env["GIMP_COLORIZE_CONFIG_DIR"])
    home = Path(env.get("HOME") or Path.home())
    if platform.startswith("win"):
        return Path(env.get("APPDATA") or home / "AppData" / "Roaming") / APP_NAME
    if platform == "darwin":
        return home / "Library" / "Application Support" / APP_NAME
    return Path(env.get("XDG_CONFIG_HOME") or home / ".config") / APP_NAME


def state_dir(env=os.environ, platform: str = sys.platform) -> Path:
    if env.get("GIMP_COLORIZE_STATE_DIR"):
        return Path(env["GIMP_COLORIZE_STATE_DIR"])
    if platform.startswith("win") or platform == "darwin":
        return config_dir(env, platform)
    home = Path(env.get("HOME") or Path.home())
    return Path(env.get("XDG_STATE_HOME") or home / ".local" / "state") / APP_NAME


def shipped_models_dir(env=os.environ) -> Path:
    if env.get("GIMP_COLORIZE_SHIPPED_MODELS_DIR"):
        return Path(env["GIMP_COLORIZE_SHIPPED_MODELS_DIR"])
    return Path(__file__).resolve().parent / "models"


def load_settings(env=os.environ, platform: str = sys.platform, **overrides) -> Settings:
    """Defaults, then config.json, then `overrides` (command-line flags; None values are ignored)."""
    cdir = config_dir(env, platform)
    sdir = state_dir(env, platform)
    values = {
        "config_dir": cdir,
        "state_dir": sdir,
        "user_models_dir": Path(env["GIMP_COLORIZE_MODELS_DIR"])
        if env.get("GIMP_COLORIZE_MODELS_DIR")
        else cdir / "models",
        "shipped_models_dir": shipped_models_dir(env),
        "token_file": cdir / "token",
        "log_file": sdir / "daemon.log",
        "pid_file": sdir / "daemon.pid",
    }
    values.update(_settings_from_file(cdir / "config.json", sdir))
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)


def _settings_from_file(path: Path, sdir: Path) -> dict:
    """The keys of config.json that Settings knows, type-checked; unknown keys go to `extra`."""
    raw = read_config_json(path)
    known = {f.name: f for f in dataclasses.fields(Settings)}
    values, extra = {}, {}
    for key, value in raw.items():
        if key == "state_dir" and not os.environ.get("GIMP_COLORIZE_STATE_DIR"):
            values["state_dir"] = Path(value).expanduser()
            values.setdefault("log_file", values["state_dir"] / "daemon.log")
            values.setdefault("pid_file", values["state_dir"] / "daemon.pid")
        elif key in known and key not in ("extra", "allow_remote", "config_dir", "state_dir"):
            values[key] = _coerce(key, value, path)
        else:
            extra[key] = value
    values["extra"] = extra
    return values


_PATH_KEYS = {"token_file", "log_file", "pid_file", "user_models_dir", "shipped_models_dir"}
_INT_KEYS = {"port", "max_pixels", "max_body_bytes", "queue_size", "workers", "max_finished_jobs", "max_result_bytes"}


def _coerce(key: str, value, path: Path):
    try:
        if key in _PATH_KEYS:
            return Path(value).expanduser()
        if key in _INT_KEYS:
            if isinstance(value, bool) or int(value) != value or int(value) <= 0:
                raise ValueError
            return int(value)
        if key == "threads":
            return None if value is None else int(value)
        if key == "job_ttl_s":
            return float(value)
        if key == "providers":
            return None if value is None else [str(p) for p in value]
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{path}: '{key}' has an invalid value {value!r}") from None


def read_config_json(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}. Fix or delete it (install.py writes a fresh one).") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must contain a JSON object")
    return data


def load_token(path: Path) -> str | None:
    """The token, or None when the file does not exist yet."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read the token file {path}: {exc}") from None
    if not token:
        raise ConfigError(f"the token file {path} is empty; delete it and a new one is created on the next start")
    return token


def ensure_token(path: Path) -> str:
    """Load the token, creating it (mode 0600) if missing.

    The new token is written to a private temporary file and hard-linked into place, so a reader never
    sees a half-written token and two daemons starting at once end up agreeing on the first one written.
    """
    token = load_token(path)
    if token is not None:
        return token
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
        _link_no_replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return load_token(path)


def _link_no_replace(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except FileExistsError:
        pass  # someone else won the race; use theirs
    except (AttributeError, NotImplementedError, PermissionError):
        # file systems without hard links: fall back to a rename, still atomic for readers
        if not dst.exists():
            os.replace(src, dst)
