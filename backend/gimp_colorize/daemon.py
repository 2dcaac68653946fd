"""Daemon lifecycle: serve in the foreground, start detached, stop, status; the pid file and its staleness.

The serving process writes the pid file itself (JSON: pid, host, port, started) once its socket is bound,
and removes it on exit, so `status` and `stop` work the same for `serve` and `start`. There is one daemon
per state dir: a second `serve` or `start` is refused while the recorded one lives.

A pid file is trusted only for the very process that wrote it: `started` is that process's start time
(Linux: /proc/PID/stat), so a pid reused by another program, even one whose command line mentions
gimp_colorize (the GIMP plug-in does), is not it. Where the start time cannot be read, the daemon must
answer /v1/health on the recorded port with the recorded pid. A pid file that fails both is stale.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import logging.handlers
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .config import Settings, ensure_token, load_token, resolve_host
from .errors import BadRequest, ColorizeError

log = logging.getLogger(__name__)

START_TIMEOUT_S = 60.0  # loading onnxruntime on a busy 2-core machine can take a while
STOP_TIMEOUT_S = 15.0


class DaemonError(ColorizeError):
    code = "daemon_error"


@dataclass(frozen=True)
class PidInfo:
    pid: int
    host: str
    port: int
    started: str | None = None  # the process's start time as the OS records it; None where unknown

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


# -- engine and app wiring


def providers_for_device(device: str, configured: list[str] | None) -> list[str] | None:
    """auto: the configured list (None lets the engine try CUDA, then CPU); cpu/gpu force one."""
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "gpu":
        from .sessions import available_providers

        if "CUDAExecutionProvider" not in available_providers():
            raise BadRequest(
                "--device gpu: this onnxruntime has no CUDA support; run install.py --gpu "
                "(needs an NVIDIA GPU and driver) or use --device cpu"
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return configured


def build_engine(settings: Settings, device: str = "auto"):
    from .engine import Engine
    from .registry import Registry

    from .probe import probe_model

    registry = Registry.for_settings(settings, probe=probe_model)
    return Engine(registry, providers=providers_for_device(device, settings.providers), threads=settings.threads,
                  session_idle_s=settings.session_idle_s, spinning=settings.spinning)


def preload_default_model(engine) -> threading.Thread:
    """Load the default full model in the background: the daemon answers at once, the first job finds it loaded."""

    def load() -> None:
        started = time.monotonic()
        try:
            info = engine.preload("full")
        except ColorizeError as exc:  # e.g. no trained model installed: the first job will say so
            log.info("no model preloaded: %s", exc.message)
        except Exception:  # a broken model must not take the daemon down; its jobs report the error
            log.exception("preloading the default model failed")
        else:
            log.info("preloaded model %s in %.0f ms", info.name, 1000 * (time.monotonic() - started))

    thread = threading.Thread(target=load, name="preload-model", daemon=True)
    thread.start()
    return thread


def build_job_manager(settings: Settings, engine):
    from .jobs import JobManager

    return JobManager(
        engine,
        workers=settings.workers,
        queue_size=settings.queue_size,
        ttl_s=settings.job_ttl_s,
        max_finished=settings.max_finished_jobs,
        max_result_bytes=settings.max_result_bytes,
    )


def check_bind_policy(settings: Settings) -> None:
    """Only loopback unless the user has a token and explicitly allows remote clients.

    Loopback means every address the host resolves to is a loopback address: a name like
    127.attacker.example is judged by what it resolves to, not by how it looks.
    """
    if settings.is_loopback:
        return
    if not settings.allow_remote:
        addresses = resolve_host(settings.host)
        resolved = f" (it resolves to {', '.join(addresses)})" if addresses and addresses != [settings.host] else ""
        unresolved = " (it does not resolve to any address)" if not addresses else ""
        raise BadRequest(
            f"refusing to listen on {settings.host}{resolved}{unresolved}: only loopback addresses are safe "
            "by default, other machines could reach the daemon. "
            "Pass --allow-remote if that is what you want (a token is required)."
        )
    if load_token(settings.token_file) is None:
        raise BadRequest(
            f"refusing to listen on {settings.host} without a token: create one first with "
            f"'gimp-colorize start' on 127.0.0.1 or by running install.py ({settings.token_file})"
        )


# -- foreground serving


def serve(settings: Settings, device: str = "auto") -> None:
    check_bind_policy(settings)
    refuse_if_running(settings)
    configure_logging(settings.log_file)
    ensure_token(settings.token_file)
    sock = bind_socket(settings.host, settings.port, loopback_only=not settings.allow_remote)
    try:
        _serve_on(sock, settings, device)
    finally:
        sock.close()


def refuse_if_running(settings: Settings) -> None:
    """One daemon per state dir: a second one would take over the pid file and hide the first."""
    existing = running_daemon(settings)
    if existing is not None:
        state = "running" if fetch_health(existing.url) else "running but not answering"
        raise DaemonError(
            f"the daemon is already {state} (pid {existing.pid}, {existing.url}); "
            f"stop it first with 'gimp-colorize stop'. Log: {settings.log_file}"
        )


def _serve_on(sock: socket.socket, settings: Settings, device: str) -> None:
    import uvicorn

    from .server import create_app

    engine = build_engine(settings, device)
    jobs = build_job_manager(settings, engine)
    app = create_app(settings, engine, jobs)
    if settings.preload:
        preload_default_model(engine)
    server = _server_class(uvicorn)(http_config(app))
    claim_pid_file(settings, PidInfo(os.getpid(), settings.host, settings.port, process_start_time(os.getpid())))
    log.info(
        "gimp-colorize %s serving on %s (pid %d), log %s", __version__, settings.url, os.getpid(), settings.log_file
    )
    try:
        server.run(sockets=[sock])
    finally:
        jobs.shutdown()
        remove_pid_file(settings.pid_file, os.getpid())
        log.info("daemon stopped")


def http_config(app, **overrides):
    """uvicorn's settings for the daemon (the tests serve the app with the same ones)."""
    import uvicorn

    settings = dict(log_config=None, access_log=False, timeout_graceful_shutdown=5)
    settings.update(overrides)
    return uvicorn.Config(app, **settings)


def _server_class(uvicorn):
    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):
            """Shut down gracefully on SIGINT/SIGTERM and then return normally.

            uvicorn's own version re-raises the signal after shutting down, which would kill the process
            before it removes its pid file and stops the job workers.
            """
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            signals = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGBREAK] if hasattr(signal, "SIGBREAK") else [])
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in signals}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return Server


def bind_socket(host: str, port: int, loopback_only: bool = False) -> socket.socket:
    """Bind here rather than in uvicorn so that 'port in use' becomes one clear sentence.

    With `loopback_only`, the address actually bound is checked too (a name may resolve differently now
    than when the bind policy looked at it).
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except OSError as exc:
        raise DaemonError(f"cannot listen on {host}:{port}: {exc}") from None
    if loopback_only and not ipaddress.ip_address(address[0].split("%", 1)[0]).is_loopback:
        raise DaemonError(f"refusing to listen on {host}: it now resolves to {address[0]}, not a loopback address")
    try:
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise DaemonError(f"cannot listen on {host}:{port}: {exc}") from None
    if os.name != "nt":  # on Windows SO_REUSEADDR would let two daemons share the port
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise DaemonError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); is another daemon running? "
            "Check with 'gimp-colorize status' or choose another --port."
        ) from None
    sock.set_inheritable(False)
    return sock


def configure_logging(log_file: Path) -> None:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handlers: list[logging.Handler] = [
        logging.handlers.RotatingFileHandler(log_file, maxBytes=5 * 1024 * 1024, backupCount=2, encoding="utf-8")
    ]
    if sys.stderr is not None and sys.stderr.isatty():
        handlers.append(logging.StreamHandler())
    logging.basicConfig(
        level=logging.INFO, handlers=handlers, force=True, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


# -- pid file


def _pid_json(info: PidInfo) -> bytes:
    return json.dumps({"pid": info.pid, "host": info.host, "port": info.port, "started": info.started}).encode()


def write_pid_file(path: Path, info: PidInfo) -> None:
    from .imageio import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, _pid_json(info))


def claim_pid_file(settings: Settings, info: PidInfo) -> None:
    """Create the pid file only if no live daemon owns it (two daemons starting at once: one wins)."""
    path = settings.pid_file
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(3):
        tmp = path.with_name(f".{path.name}.{os.getpid()}.claim")
        tmp.write_bytes(_pid_json(info))
        try:
            os.link(tmp, path)
            return
        except FileExistsError:
            refuse_if_running(settings)  # removes the pid file when it is stale
        except (AttributeError, NotImplementedError, PermissionError):  # no hard links here
            os.replace(tmp, path)
            return
        finally:
            tmp.unlink(missing_ok=True)
    raise DaemonError(f"cannot create the pid file {path}: another daemon keeps replacing it")


def read_pid_file(path: Path) -> PidInfo | None:
    """The recorded daemon, or None when there is no pid file or it is unreadable (treated as stale)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        started = data.get("started")
        return PidInfo(int(data["pid"]), str(data["host"]), int(data["port"]), None if started is None else str(started))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        log.warning("ignoring unreadable pid file %s", path)
        return None


def remove_pid_file(path: Path, only_pid: int | None = None) -> None:
    """Remove the pid file; with `only_pid`, only if it still names that process (a newer daemon may own it)."""
    if only_pid is not None:
        info = read_pid_file(path)
        if info is not None and info.pid != only_pid:
            return
    path.unlink(missing_ok=True)


def process_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if os.name == "nt":
        return _windows_process_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def _windows_process_alive(pid: int) -> bool:
    import ctypes

    kernel32 = ctypes.windll.kernel32
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return False
    try:
        code = ctypes.c_ulong()
        return bool(kernel32.GetExitCodeProcess(handle, ctypes.byref(code))) and code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def process_start_time(pid: int) -> str | None:
    """When `pid` started, in the OS's own units (Linux: clock ticks after boot); None where it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # the command name in parentheses may contain spaces
    return fields[19] if len(fields) > 19 else None  # field 22 of proc(5); fields[0] is field 3


def is_recorded_daemon(info: PidInfo) -> bool:
    """Whether the process in the pid file is the daemon that wrote it, not a process that reused its pid."""
    if not process_alive(info.pid):
        return False
    if info.started is not None:
        started = process_start_time(info.pid)
        if started is not None:
            return started == info.started
    health = fetch_health(info.url, timeout=1.0)  # no start time to compare: the daemon must say who it is
    return health is not None and health.get("pid") == info.pid


def running_daemon(settings: Settings) -> PidInfo | None:
    """The live daemon recorded in the pid file; a stale pid file is removed."""
    info = read_pid_file(settings.pid_file)
    if info is not None and is_recorded_daemon(info):
        return info
    if settings.pid_file.exists():
        log.info("removing stale pid file %s", settings.pid_file)
        settings.pid_file.unlink(missing_ok=True)
    return None


def fetch_health(url: str, timeout: float = 2.0) -> dict | None:
    import urllib.request  # here, not at the top: it pulls in http.client, email and ssl, which `colorize` never needs

    try:
        with urllib.request.urlopen(url + "/v1/health", timeout=timeout) as response:
            return json.loads(response.read())
    except (OSError, ValueError):
        return None


# -- start / stop / status


def start(settings: Settings, device: str = "auto", timeout: float = START_TIMEOUT_S) -> PidInfo:
    check_bind_policy(settings)
    providers_for_device(device, settings.providers)  # --device gpu without CUDA: say so here, not in the log
    refuse_if_running(settings)
    ensure_token(settings.token_file)
    child = _spawn_serve(settings, device)
    return _wait_until_serving(settings, child, timeout)


def _spawn_serve(settings: Settings, device: str) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "gimp_colorize",
        "serve",
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--device",
        device,
        "--queue-size",
        str(settings.queue_size),
    ]
    if settings.allow_remote:
        command.append("--allow-remote")
    settings.log_file.parent.mkdir(parents=True, exist_ok=True)
    # stdout/stderr go to the log too, so a crash before logging is set up still leaves a trace
    with open(settings.log_file, "ab") as log_stream:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_stream,
            stderr=subprocess.STDOUT,
            close_fds=True,
            **_detach_kwargs(),
        )


def _detach_kwargs() -> dict:
    if os.name == "nt":
        return {"creationflags": subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}  # survives the terminal (and GIMP) that started it


def _wait_until_serving(settings: Settings, child: subprocess.Popen, timeout: float) -> PidInfo:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise DaemonError(
                f"the daemon exited during start-up (code {child.returncode}): "
                f"{last_log_line(settings.log_file)}. Full log: {settings.log_file}"
            )
        info = read_pid_file(settings.pid_file)
        if info is not None and info.pid == child.pid and fetch_health(info.url, timeout=1.0):
            return info
        time.sleep(0.1)
    raise DaemonError(f"the daemon (pid {child.pid}) did not answer within {timeout:.0f} s; see {settings.log_file}")


def last_log_line(log_file: Path) -> str:
    try:
        lines = [line for line in log_file.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log written"
    return lines[-1].strip().removeprefix("gimp-colorize: error: ").rstrip(".") if lines else "no log written"


def stop(settings: Settings, timeout: float = STOP_TIMEOUT_S) -> PidInfo | None:
    """Stop the daemon; returns what was stopped, None when nothing was running."""
    info = running_daemon(settings)
    if info is None:
        return None
    os.kill(info.pid, signal.SIGTERM)  # uvicorn shuts down gracefully and the daemon removes its pid file
    deadline = time.monotonic() + timeout
    while process_alive(info.pid):
        if time.monotonic() > deadline:
            if os.name == "nt":
                raise DaemonError(f"the daemon (pid {info.pid}) did not stop within {timeout:.0f} s")
            os.kill(info.pid, signal.SIGKILL)
            break
        time.sleep(0.1)
    remove_pid_file(settings.pid_file, info.pid)
    return info


def status(settings: Settings) -> dict:
    """Everything `gimp-colorize status` prints; "running" and not "healthy" is a hung daemon."""
    info = running_daemon(settings)
    url = info.url if info else settings.url
    health = fetch_health(url) if info else None
    return {
        "running": info is not None,
        "healthy": health is not None,
        "pid": info.pid if info else None,
        "url": url,
        "version": (health or {}).get("version"),
        "providers": (health or {}).get("providers"),
        "models_loaded": (health or {}).get("models_loaded"),
        "log_file": str(settings.log_file),
        "token_file": str(settings.token_file),
    }
