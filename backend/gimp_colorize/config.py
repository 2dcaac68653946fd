"""Daemon settings and the per-user files (config dir, token, state dir, log, pid).

Paths follow docs/DESIGN.md ("Per-user files"); plugin/common computes the same paths, so change both together.
Environment overrides (used by tests and by people running several daemons):

    GIMP_COLORIZE_CONFIG_DIR          config dir (config.json, token, user models)
    GIMP_COLORIZE_STATE_DIR           state dir (daemon.pid, daemon.log)
    GIMP_COLORIZE_MODELS_DIR          user models folder (default <config dir>/models)
    GIMP_COLORIZE_SHIPPED_MODELS_DIR  shipped models folder (default: the package's models/ folder)

Optional keys in config.json besides those install.py writes (all have defaults below):
``max_pixels``, ``max_body_bytes``, ``upload_budget_bytes``, ``body_timeout_s``, ``queue_size``, ``workers``,
``threads``, ``spinning``, ``providers``, ``job_ttl_s``, ``max_finished_jobs``, ``max_result_bytes``,
``session_idle_s``, ``preload``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
import os
import secrets
import socket
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BadRequest

log = logging.getLogger(__name__)

APP_NAME = "gimp-colorize"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 48765
# 64 megapixels covers a 9000 x 7000 scan. The largest legal raw body is 64 MP of rgbaf32 (1.02 GB),
# so the body limit is 1 GiB; PNG/JPEG/TIFF uploads of such images are far smaller.
DEFAULT_MAX_PIXELS = 64_000_000
DEFAULT_MAX_BODY_BYTES = 1 << 30
# Request bodies held in memory across all uploads in progress: two of the largest legal body at once.
DEFAULT_UPLOAD_BUDGET_BYTES = 2 << 30
DEFAULT_BODY_TIMEOUT_S = 30.0  # an upload that sends nothing for this long is dropped (408)
# Jobs waiting beyond the running ones (uploads in progress count too); more submissions get 503 "busy".
# 16 lets the usual handful of GIMP windows queue without retrying; each waiting job holds its input image.
DEFAULT_QUEUE_SIZE = 16
DEFAULT_JOB_TTL_S = 600.0  # a finished job nobody fetched is dropped after 10 minutes
DEFAULT_MAX_FINISHED_JOBS = 16  # and at most this many finished jobs keep their results,
DEFAULT_MAX_RESULT_BYTES = 2 << 30  # holding at most 2 GiB together (the newest is always kept)
# onnxruntime's intra-op threads busy-wait (spin) after a run unless told not to; on a small shared machine that
# burns the CPU the recombination right after needs (benchmarks/bench_threads.py measured it)
DEFAULT_SPINNING = False
DEFAULT_SESSION_IDLE_S = 900.0  # a loaded model nobody used for 15 minutes is unloaded (0: never)
MIN_TOKEN_LENGTH = 16
MIN_TOKEN_DISTINCT = 6  # "aaaaaaaaaaaaaaaa" is long enough but guessable


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
    upload_budget_bytes: int = DEFAULT_UPLOAD_BUDGET_BYTES
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    queue_size: int = DEFAULT_QUEUE_SIZE
    workers: int = 1  # one model run at a time: inference already uses all cores
    threads: int | None = None  # onnxruntime intra-op threads; None lets onnxruntime decide
    spinning: bool = DEFAULT_SPINNING  # onnxruntime threads busy-wait between runs (benchmarks/bench_threads.py)
    providers: list[str] | None = None  # None: CUDA when available, then CPU
    job_ttl_s: float = DEFAULT_JOB_TTL_S
    max_finished_jobs: int = DEFAULT_MAX_FINISHED_JOBS
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES
    session_idle_s: float = DEFAULT_SESSION_IDLE_S
    preload: bool = True  # the daemon loads the default full model when it starts, not on the first job
    allow_remote: bool = False
    extra: dict = field(default_factory=dict)  # config.json keys this version does not know

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def is_loopback(self) -> bool:
        """Whether every address the host name resolves to is a loopback address (a name is not trusted by its look)."""
        return is_loopback_host(self.host)


def resolve_host(host: str) -> list[str]:
    """The IP addresses `host` stands for (a literal address is returned as is); [] when it does not resolve."""
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return sorted({info[4][0].split("%", 1)[0] for info in infos})


def is_loopback_host(host: str) -> bool:
    addresses = resolve_host(host)
    return bool(addresses) and all(ipaddress.ip_address(address).is_loopback for address in addresses)


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
_INT_KEYS = {
    "port", "max_pixels", "max_body_bytes", "upload_budget_bytes", "queue_size", "workers", "max_finished_jobs",
    "max_result_bytes",
}
_POSITIVE_FLOAT_KEYS = {"job_ttl_s", "body_timeout_s"}
_BOOL_KEYS = {"spinning", "preload"}


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
        if key in _POSITIVE_FLOAT_KEYS:
            if isinstance(value, bool) or not float(value) > 0:
                raise ValueError
            return float(value)
        if key == "session_idle_s":  # 0 keeps loaded models for ever
            if isinstance(value, bool) or not float(value) >= 0:
                raise ValueError
            return float(value)
        if key in _BOOL_KEYS:
            if not isinstance(value, bool):
                raise ValueError
            return value
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
    """The token, or None when the file does not exist yet; a token others can read is made private first."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read the token file {path}: {exc}") from None
    if not token:
        raise ConfigError(f"the token file {path} is empty; delete it and a new one is created on the next start")
    _check_token_strength(token, path)
    _make_private(path)
    return token


def _check_token_strength(token: str, path: Path) -> None:
    if len(token) < MIN_TOKEN_LENGTH or len(set(token)) < MIN_TOKEN_DISTINCT:
        raise ConfigError(
            f"the token in {path} is too weak ({len(token)} characters, {len(set(token))} different; at least "
            f"{MIN_TOKEN_LENGTH} characters with {MIN_TOKEN_DISTINCT} different ones are needed). Delete the file and "
            "a strong token is created on the next start, or write a long random one into it."
        )


def _make_private(path: Path) -> None:
    """Other users must not read the token: warn about a group/world-readable file and tighten it to 0600."""
    if os.name != "posix":
        return  # Windows: the file inherits the per-user profile folder's ACL
    mode = stat.S_IMODE(path.stat().st_mode)
    if not mode & 0o077:
        return
    log.warning("the token file %s had mode %04o (other users could read it); changing it to 0600", path, mode)
    try:
        os.chmod(path, 0o600)
    except OSError as exc:
        raise ConfigError(
            f"the token file {path} is readable by other users (mode {mode:04o}) and cannot be made private "
            f"({exc.strerror or exc}). Run 'chmod 600 {path}' or delete it to get a new one."
        ) from None


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
