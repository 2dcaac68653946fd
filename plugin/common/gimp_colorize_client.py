"""Client for the gimp-colorize daemon, shared by the GIMP 3 and GIMP 2.10 plug-ins.

Pure standard library, and it must run on Python 2.7 (GIMP 2.10's Python-Fu) as well as 3.x:
no f-strings, no type hints, no pathlib, bytes/str handled explicitly.

Every failure becomes a ClientError subclass whose `message` is a sentence the user can act on;
the plug-ins show that message and nothing else.
"""

from __future__ import absolute_import, division, print_function

import errno
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time

try:  # Python 3
    import http.client as httplib
    from urllib.parse import urlencode  # novm (Python 2 takes the branch below)
except ImportError:  # Python 2.7
    import httplib
    from urllib import urlencode

TEXT_TYPES = (type(u""), type(""))  # JSON strings are unicode on Python 2, str on 3
APP_NAME = "gimp-colorize"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 48765
API = "/v1"
DEFAULT_START_TIMEOUT_S = 60.0  # the daemon imports onnxruntime: slow on a small machine
DEFAULT_JOB_TIMEOUT_S = 900.0
REQUEST_TIMEOUT_S = 120.0  # one request; a 64 MP upload on a slow disk-backed machine stays well below
HEALTH_TIMEOUT_S = 5.0
LONG_POLL_S = 5  # GET /v1/jobs/{id}?wait=: the daemon answers as soon as the job changes, at the latest then
BUSY_RETRY_S = (0.5, 10.0)  # how long to wait before submitting again to a full queue (Retry-After, clipped)
MODELS_INDEX = "models-index.json"  # written by the backend (registry.write_models_index) and install.py


# ---------------------------------------------------------------------------------------------------
# Typed errors


class ClientError(Exception):
    """Base class; `message` is what the user sees, `code` a stable kind for programs and tests."""

    code = "client_error"

    def __init__(self, message):
        Exception.__init__(self, message)
        self.message = message

    def __str__(self):
        return self.message


class ConfigError(ClientError):
    code = "config_error"


class DaemonUnreachable(ClientError):
    """Nothing answers on the configured address (connection refused, reset, bad reply)."""

    code = "daemon_unreachable"


class ForeignServer(ClientError):
    """Something that is not a gimp-colorize daemon answers on the configured port."""

    code = "port_in_use"


class DaemonStartFailed(ClientError):
    code = "daemon_start_failed"


class AuthError(ClientError):
    code = "unauthorized"


class ModelNotAvailable(ClientError):
    code = "no_model"

    def __init__(self, message, server_code=None):
        ClientError.__init__(self, message)
        self.server_code = server_code  # no_model_installed, unknown_model, ...


class ImageTooLarge(ClientError):
    code = "image_too_large"


class DaemonBusy(ClientError):
    """The daemon's queue is full (503): try again after `retry_after` seconds."""

    code = "busy"

    def __init__(self, message, jobs_ahead=None, retry_after=1.0):
        ClientError.__init__(self, message)
        self.jobs_ahead = jobs_ahead
        self.retry_after = retry_after


class JobTimeout(ClientError):
    code = "timeout"


class JobCancelled(ClientError):
    code = "cancelled"


class JobFailed(ClientError):
    code = "job_failed"


class BadRequest(ClientError):
    code = "bad_request"


class UserError(ClientError):
    """Bad input the user can fix (settings, selection, layers), found by the plug-in before asking the daemon."""

    code = "bad_input"


def sentence(text):
    """`text` as a sentence: capital first letter, final full stop (the daemon's messages are clauses)."""
    text = (text or "").strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


# Server error codes (backend errors.py) -> client error class.
_SERVER_CODES = {
    "unauthorized": AuthError,
    "no_model_installed": ModelNotAvailable,
    "unknown_model": ModelNotAvailable,
    "model_load_failed": ModelNotAvailable,
    "invalid_model": ModelNotAvailable,
    "image_too_large": ImageTooLarge,
    "body_too_large": ImageTooLarge,
    "busy": DaemonBusy,
    "job_cancelled": JobCancelled,
    "bad_request": BadRequest,
    "invalid_image": BadRequest,
    "unknown_mode": BadRequest,
}


# ---------------------------------------------------------------------------------------------------
# Per-user files. These rules are identical to backend/gimp_colorize/config.py (config_dir, state_dir,
# load_settings) and docs/DESIGN.md "Per-user files": change all three together.


def config_dir(env=None, platform=None):
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if env.get("GIMP_COLORIZE_CONFIG_DIR"):
        return env["GIMP_COLORIZE_CONFIG_DIR"]
    home = env.get("HOME") or os.path.expanduser("~")
    if platform.startswith("win"):
        return os.path.join(env.get("APPDATA") or os.path.join(home, "AppData", "Roaming"), APP_NAME)
    if platform == "darwin":
        return os.path.join(home, "Library", "Application Support", APP_NAME)
    return os.path.join(env.get("XDG_CONFIG_HOME") or os.path.join(home, ".config"), APP_NAME)


def state_dir(env=None, platform=None):
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if env.get("GIMP_COLORIZE_STATE_DIR"):
        return env["GIMP_COLORIZE_STATE_DIR"]
    if platform.startswith("win") or platform == "darwin":
        return config_dir(env, platform)
    home = env.get("HOME") or os.path.expanduser("~")
    return os.path.join(env.get("XDG_STATE_HOME") or os.path.join(home, ".local", "state"), APP_NAME)


class Config(object):
    """What the plug-in needs from config.json, with the backend's defaults."""

    def __init__(self, host=DEFAULT_HOST, port=DEFAULT_PORT, python=None, token_file=None, log_file=None,
                 config_path=None, start_timeout=DEFAULT_START_TIMEOUT_S, job_timeout=DEFAULT_JOB_TIMEOUT_S,
                 state_dir=None, models_dir=None):
        self.state_dir = state_dir
        self.models_dir = models_dir  # the user models folder
        self.host = host
        self.port = port
        self.python = python
        self.token_file = token_file
        self.log_file = log_file
        self.config_path = config_path
        self.start_timeout = start_timeout
        self.job_timeout = job_timeout

    @property
    def address(self):
        return "%s:%d" % (self.host, self.port)


def load_config(env=None, platform=None):
    """Read config.json (written by install.py); a missing file gives the defaults (python unknown)."""
    env = os.environ if env is None else env
    cdir = config_dir(env, platform)
    path = os.path.join(cdir, "config.json")
    raw = _read_config_json(path)
    sdir = state_dir(env, platform)
    if raw.get("state_dir") and not env.get("GIMP_COLORIZE_STATE_DIR"):
        sdir = os.path.expanduser(raw["state_dir"])
    try:
        return Config(
            host=str(raw.get("host", DEFAULT_HOST)),
            port=_positive_int(raw.get("port", DEFAULT_PORT)),
            python=raw.get("python") or None,
            token_file=os.path.expanduser(raw.get("token_file") or os.path.join(cdir, "token")),
            log_file=os.path.expanduser(raw.get("log_file") or os.path.join(sdir, "daemon.log")),
            config_path=path,
            start_timeout=float(raw.get("start_timeout_s", DEFAULT_START_TIMEOUT_S)),
            job_timeout=float(raw.get("job_timeout_s", DEFAULT_JOB_TIMEOUT_S)),
            state_dir=sdir,
            models_dir=os.path.expanduser(raw.get("user_models_dir") or env.get("GIMP_COLORIZE_MODELS_DIR")
                                          or os.path.join(cdir, "models")),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError("%s has an invalid value (%s). Fix it, or run install.py again to rewrite it."
                          % (path, exc))


def _positive_int(value):
    if isinstance(value, bool) or int(value) != value or int(value) <= 0:
        raise ValueError("port %r" % (value,))
    return int(value)


def _read_config_json(path):
    if not os.path.exists(path):
        return {}
    try:
        with open(path, "rb") as handle:
            data = json.loads(handle.read().decode("utf-8"))
    except (IOError, OSError, ValueError) as exc:
        raise ConfigError("Cannot read %s (%s). Fix or delete it; install.py writes a fresh one." % (path, exc))
    if not isinstance(data, dict):
        raise ConfigError("%s must contain a JSON object. Run install.py again to rewrite it." % path)
    return data


def read_token(config):
    """The bearer token, or None when the daemon has not created it yet."""
    try:
        with open(config.token_file, "rb") as handle:
            token = handle.read().decode("utf-8").strip()
    except (IOError, OSError) as exc:
        if getattr(exc, "errno", None) == errno.ENOENT:
            return None
        raise AuthError("Cannot read the token file %s (%s). Check its permissions or reinstall gimp-colorize."
                        % (config.token_file, exc))
    return token or None


# ---------------------------------------------------------------------------------------------------
# The installed models, as the backend last saw them (docs/DESIGN.md, "Models index"). The plug-ins
# build their menus from it when GIMP creates the procedure, before (and without) any daemon.


class ModelsIndex(object):
    def __init__(self, models, user_models_dir=None):
        self.models = models  # [{"name", "task", "default", "verified", ...}], default first per task
        self.user_models_dir = user_models_dir

    def models_for(self, mode):
        return [model for model in self.models if model["task"] == mode]

    def has_mode(self, mode):
        return bool(self.models_for(mode))

    def default_for(self, mode):
        found = [model["name"] for model in self.models_for(mode) if model.get("default")]
        return found[0] if found else None


def load_models_index(config):
    """The index in the state dir, or None when it is missing or unreadable (the menus then offer defaults)."""
    if not config.state_dir:
        return None
    try:
        with open(os.path.join(config.state_dir, MODELS_INDEX), "rb") as handle:
            raw = json.loads(handle.read().decode("utf-8"))
        entries = raw["models"]
    except (IOError, OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    models = [entry for entry in entries if isinstance(entry, dict) and _is_text(entry.get("name"))
              and _is_text(entry.get("task"))]
    models.sort(key=lambda entry: (entry["task"], not entry.get("default"), entry["name"]))
    user_dir = raw.get("user_models_dir") if _is_text(raw.get("user_models_dir")) else None
    return ModelsIndex(models, user_dir or config.models_dir)


def _is_text(value):
    return isinstance(value, TEXT_TYPES) and bool(value)


# ---------------------------------------------------------------------------------------------------
# HTTP


def _text(data):
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data


def _envelope(body):
    """The server's JSON error envelope's inner object ({"code", "message", ...}), or {}."""
    try:
        error = json.loads(_text(body)).get("error")
    except (ValueError, AttributeError):
        return {}
    return error if isinstance(error, dict) else {}


def _retry_after(headers):
    try:
        seconds = float((headers or {}).get("retry-after"))
    except (TypeError, ValueError):
        seconds = 1.0
    return max(BUSY_RETRY_S[0], min(BUSY_RETRY_S[1], seconds))


def _jobs_ahead(error):
    value = error.get("jobs_ahead")
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


class DaemonClient(object):
    """One method per route of the daemon's HTTP API v1 (docs/DESIGN.md)."""

    def __init__(self, config, token=None, timeout=REQUEST_TIMEOUT_S):
        self.config = config
        self.token = token
        self.timeout = timeout

    # -- transport -----------------------------------------------------------------------------------

    def _request(self, method, path, body=None, headers=None, auth=True):
        """(status, body bytes, {lower-case header: value}); network failures raise DaemonUnreachable."""
        all_headers = dict(headers or {})
        if auth:
            all_headers["Authorization"] = "Bearer %s" % (self.token or "")
        conn = httplib.HTTPConnection(self.config.host, self.config.port, timeout=self.timeout)
        try:
            try:
                conn.request(method, API + path, body=body, headers=all_headers)
            except (socket.error, OSError) as exc:
                # The daemon refuses a bad upload (wrong model, too many pixels, ...) as soon as it has read the
                # headers and closes the connection: its answer is waiting, the rest of the body is not wanted.
                if body is None or getattr(exc, "errno", None) not in (errno.EPIPE, errno.ECONNRESET):
                    raise
            response = conn.getresponse()
            data = response.read()
            return response.status, data, dict((k.lower(), v) for k, v in response.getheaders())
        except socket.timeout:
            raise JobTimeout("The gimp-colorize daemon at %s did not answer within %d s. It may be overloaded: "
                             "see its log %s." % (self.config.address, self.timeout, self.config.log_file))
        except (socket.error, OSError, httplib.HTTPException) as exc:
            raise DaemonUnreachable("Cannot reach the gimp-colorize daemon at %s (%s). If it stopped, its log "
                                    "%s says why." % (self.config.address, exc, self.config.log_file))
        finally:
            conn.close()

    def _json(self, method, path, body=None, headers=None, auth=True):
        status, data, reply_headers = self._request(method, path, body, headers, auth)
        if status >= 400:
            raise self._http_error(status, data, reply_headers)
        try:
            return json.loads(_text(data))
        except ValueError:
            raise ForeignServer("The program at %s is not a gimp-colorize daemon (its reply to %s %s is not "
                                "JSON). Change the port in %s or stop the other program."
                                % (self.config.address, method, path, self.config.config_path))

    def _http_error(self, status, body, headers=None):
        error = _envelope(body)
        code, message = error.get("code"), error.get("message")
        if status == 401 or code == "unauthorized":
            return AuthError("The gimp-colorize daemon rejected the plug-in's token (%s). Restart the daemon "
                             "(`gimp-colorize stop`; the plug-in starts it again) or reinstall with install.py, "
                             "so that both use %s." % ((message or "HTTP 401").rstrip("."), self.config.token_file))
        if not message:
            return ForeignServer("The program at %s answered HTTP %d: it is not a gimp-colorize daemon of this "
                                 "version. Change the port in %s, or stop the other program."
                                 % (self.config.address, status, self.config.config_path))
        if code == "job_not_found":
            return JobFailed("The daemon no longer knows this job (it was restarted, or the job expired). "
                             "Run Colorize Photo again.")
        if code == "busy":
            return DaemonBusy(sentence(message), _jobs_ahead(error), _retry_after(headers))
        cls = _SERVER_CODES.get(code)
        if cls is None:
            cls = ImageTooLarge if status == 413 else JobFailed
        if cls is ModelNotAvailable:
            return ModelNotAvailable(sentence(message), code)
        if cls is JobFailed:
            return JobFailed("%s Details are in the daemon log %s." % (sentence(message), self.config.log_file))
        if cls is ImageTooLarge:
            return ImageTooLarge("%s Colorize a smaller selection, scale the image down, or raise max_pixels in "
                                 "%s." % (sentence(message), self.config.config_path))
        return cls(sentence(message))

    # -- routes --------------------------------------------------------------------------------------

    def health(self):
        return self._json("GET", "/health", auth=False)

    def models(self):
        return self._json("GET", "/models")

    def submit(self, pixels, width, height, pixel_format, options):
        """Start a job on raw pixels; `options` is a dict of mode/model/vibrancy/samples/seed. -> job id."""
        query = {"width": width, "height": height, "format": pixel_format}
        for key, value in sorted(options.items()):
            if value is not None and value != "":
                query[key] = value
        headers = {"Content-Type": "application/octet-stream"}
        body = pixels if isinstance(pixels, bytes) else bytes(pixels)
        reply = self._json("POST", "/jobs?" + urlencode(query), body=body, headers=headers)
        return reply["id"]

    def status(self, job_id, wait=None, since=None):
        """The job's status; with `wait` (whole seconds) and `since` (a version), the daemon answers as soon
        as the job's version passes `since`, or after `wait` seconds (only daemons whose status has "version")."""
        if wait is None:
            return self._json("GET", "/jobs/%s" % job_id)
        return self._json("GET", "/jobs/%s?%s" % (job_id, urlencode([("wait", int(wait)), ("since", since)])))

    def cancel(self, job_id):
        return self._json("DELETE", "/jobs/%s" % job_id)

    def upload_input(self, pixels, width, height, pixel_format):
        """POST /v1/inputs: raw pixels a job can name (hints, reference, selection); -> the input's id."""
        query = urlencode([("width", width), ("height", height), ("format", pixel_format)])
        body = pixels if isinstance(pixels, bytes) else bytes(pixels)
        reply = self._json("POST", "/inputs?" + query, body=body, headers={"Content-Type": "application/octet-stream"})
        return reply["id"]

    def download_layer(self, job_id, index):
        return self._raw("/jobs/%s/layers/%d?encoding=raw" % (job_id, index))

    def download_mask(self, job_id, index):
        """The layer's mask as gray8 (255 = visible)."""
        return self._raw("/jobs/%s/layers/%d/mask?encoding=raw" % (job_id, index))

    def _raw(self, path):
        status, data, headers = self._request("GET", path)
        if status >= 400:
            raise self._http_error(status, data, headers)
        return data


# ---------------------------------------------------------------------------------------------------
# Waiting for a job


def submit_when_free(client, pixels, width, height, pixel_format, options, timeout=DEFAULT_JOB_TIMEOUT_S,
                     on_busy=None, clock=time.time, sleep=time.sleep):
    """client.submit, retried while the daemon's queue is full, until `timeout`; -> job id.

    on_busy(jobs_ahead or None) is called before every wait, so the user sees why nothing happens."""
    return when_free(client, lambda: client.submit(pixels, width, height, pixel_format, options), timeout, on_busy,
                     clock, sleep)


def when_free(client, send, timeout=DEFAULT_JOB_TIMEOUT_S, on_busy=None, clock=time.time, sleep=time.sleep):
    """send(), retried while the daemon answers busy (a full queue, or too many uploads at once)."""
    deadline = clock() + timeout
    while True:
        try:
            return send()
        except DaemonBusy as busy:
            if clock() + busy.retry_after > deadline:
                raise JobTimeout("The daemon stayed busy with other jobs for %d s, so this one was not sent. "
                                 "Try again later, or raise job_timeout_s in %s."
                                 % (timeout, client.config.config_path))
            if on_busy is not None:
                on_busy(busy.jobs_ahead)
            sleep(busy.retry_after)


def wait_for_job(client, job_id, progress=None, is_cancelled=None, timeout=DEFAULT_JOB_TIMEOUT_S,
                 clock=time.time, sleep=time.sleep):
    """Follow the job until it is done; return its final status. Cancels the daemon job on cancel or timeout.

    A daemon whose status carries a "version" is asked to hold each request until the job changes
    (long polling: the plug-in sees every change at once); an older one is polled with a short backoff.
    progress(status) is called after every answer; is_cancelled() -> bool is checked between them.
    """
    deadline = clock() + timeout
    interval = 0.02
    status = None
    while True:
        if is_cancelled is not None and is_cancelled():
            _cancel_quietly(client, job_id)
            raise JobCancelled("Colorizing was cancelled; the daemon job was stopped.")
        if status is not None and _long_polls(status):
            wait = max(1, min(LONG_POLL_S, int(math.ceil(deadline - clock()))))
            status = client.status(job_id, wait=wait, since=status["version"])
        else:
            if status is not None:
                sleep(interval)
                interval = min(interval * 1.5, 0.1)  # loopback polls are cheap; a finished job is seen within 0.1 s
            status = client.status(job_id)
        state = status.get("state")
        if progress is not None:
            progress(status)
        if state == "done":
            return status
        if state == "failed":
            raise _job_error(client, status)
        if state == "cancelled":
            raise JobCancelled("The colorize job was cancelled on the daemon's side.")
        if clock() > deadline:
            _cancel_quietly(client, job_id)
            raise JobTimeout("The daemon did not finish within %d s, so the job was cancelled. Try a smaller image "
                             "or selection, or raise job_timeout_s in %s." % (timeout, client.config.config_path))


def _long_polls(status):
    version = status.get("version")
    return isinstance(version, int) and not isinstance(version, bool)


def _job_error(client, status):
    envelope = status.get("error") or {}
    if "error" in envelope:
        envelope = envelope["error"]
    code, message = envelope.get("code"), envelope.get("message") or "the job failed"
    cls = _SERVER_CODES.get(code, JobFailed)
    if cls is ModelNotAvailable:
        return ModelNotAvailable(sentence(message), code)
    if cls is JobFailed:
        return JobFailed("Colorizing failed: %s. Details are in the daemon log %s."
                         % (message.strip().rstrip("."), client.config.log_file))
    return cls(sentence(message))


def _cancel_quietly(client, job_id):
    try:
        client.cancel(job_id)
    except ClientError:
        pass  # the job may have finished or the daemon gone; nothing more to free


# ---------------------------------------------------------------------------------------------------
# Starting the daemon


def connect(config=None, start=True, clock=time.time, sleep=time.sleep, on_start=None):
    """A DaemonClient with the token loaded, starting the daemon first when nothing answers.

    on_start() is called once before starting the daemon and then about five times a second while it
    comes up, so a progress bar can show that something is happening."""
    config = config or load_config()
    client = DaemonClient(config)
    try:
        DaemonClient(config, timeout=HEALTH_TIMEOUT_S).health()
    except DaemonUnreachable:
        if not start:
            raise
        start_daemon(config, clock=clock, sleep=sleep, on_wait=on_start)
    client.token = read_token(config)
    if client.token is None:
        raise AuthError("The daemon is running but the token file %s does not exist. Restart the daemon "
                        "(`gimp-colorize stop`, then run the filter again) or reinstall with install.py."
                        % config.token_file)
    return client


def sandbox_of_gimp(env=None, flatpak_info="/.flatpak-info"):
    """'Flatpak' or 'Snap' when GIMP, and so this plug-in, runs in that sandbox; else None."""
    env = os.environ if env is None else env
    if env.get("FLATPAK_ID") or os.path.exists(flatpak_info):
        return "Flatpak"
    if env.get("SNAP_NAME") or env.get("SNAP"):
        return "Snap"
    return None


def start_daemon(config, clock=time.time, sleep=time.sleep, on_wait=None):
    """Run `python -m gimp_colorize start` and wait until the health route answers."""
    try:
        _start_daemon(config, clock, sleep, on_wait)
    except DaemonStartFailed as exc:
        sandbox = sandbox_of_gimp()
        if sandbox is None:
            raise
        # A sandboxed GIMP sees its own runtime, not the host's Python and packages: advice to reinstall misleads.
        raise DaemonStartFailed(
            "This GIMP runs as a %s, and its sandbox cannot start the gimp-colorize daemon with your system's "
            "Python. Start it yourself with `gimp-colorize start`%s, then run the filter again. (%s)"
            % (sandbox, _cli_hint(config), exc.message))


def _cli_hint(config):
    if not config.python:
        return " in a terminal"
    return " in a terminal (the command is %s)" % os.path.join(os.path.dirname(config.python), "gimp-colorize")


def _start_daemon(config, clock, sleep, on_wait):
    if on_wait is not None:
        on_wait()
    if not config.python:
        raise DaemonStartFailed("The gimp-colorize daemon is not running at %s and the plug-in does not know how "
                                "to start it (%s has no \"python\" entry). Run install.py, or start it yourself "
                                "with `gimp-colorize start`." % (config.address, config.config_path))
    output = tempfile.TemporaryFile()
    try:
        process = _spawn([config.python, "-m", "gimp_colorize", "start"], output)
    except (OSError, ValueError) as exc:
        output.close()
        raise DaemonStartFailed("Cannot run %s to start the gimp-colorize daemon (%s). Run install.py again, "
                                "or start the daemon yourself with `gimp-colorize start`." % (config.python, exc))
    try:
        _wait_until_healthy(config, process, output, clock, sleep, on_wait)
    finally:
        output.close()


def _spawn(argv, output):
    devnull = open(os.devnull, "rb")
    try:
        return _spawn_detached(argv, stdin=devnull, output=output)
    finally:
        devnull.close()


def _spawn_detached(argv, stdin, output):
    """Start a process in its own session: GIMP may kill the plug-in's whole process group."""
    kwargs = {"stdin": stdin, "stdout": output, "stderr": subprocess.STDOUT}
    if os.name == "posix" and sys.version_info[0] >= 3:
        kwargs["start_new_session"] = True
    elif os.name == "posix":
        kwargs["close_fds"] = True
        kwargs["preexec_fn"] = os.setsid
    else:
        kwargs["creationflags"] = 0x00000008 | 0x00000200  # DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP
    return subprocess.Popen(argv, **kwargs)


def _wait_until_healthy(config, process, output, clock, sleep, on_wait=None):
    probe = DaemonClient(config, timeout=HEALTH_TIMEOUT_S)
    deadline = clock() + config.start_timeout
    while True:
        if on_wait is not None:
            on_wait()
        try:
            probe.health()
            return
        except DaemonUnreachable:
            pass
        exit_code = process.poll()
        if exit_code not in (None, 0):
            raise DaemonStartFailed("The gimp-colorize daemon could not start (exit code %d): %s See its log %s."
                                    % (exit_code, _tail(output), config.log_file))
        if clock() > deadline:
            raise DaemonStartFailed("The gimp-colorize daemon did not answer at %s within %d s of starting. "
                                    "See its log %s." % (config.address, config.start_timeout, config.log_file))
        sleep(0.2)


def _tail(output, limit=600):
    output.seek(0)
    text = _text(output.read()).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    last = " ".join(lines[-3:])
    return sentence(last[-limit:]) if last else "It printed nothing."


# ---------------------------------------------------------------------------------------------------
# Cancelling the daemon job when GIMP kills the plug-in
#
# GIMP does not tell a plug-in that the user cancelled it from the progress bar: it kills the plug-in's
# process. A small watcher process, started in its own session, holds the read end of a pipe from the
# plug-in. The plug-in writes "done" when it no longer needs the job; if the pipe closes without it,
# the plug-in died, and the watcher cancels the job so the daemon stops working for nobody.

WATCH_FLAG = "--cancel-job-unless-released"


class JobGuard(object):
    def __init__(self, process):
        self.process = process

    def release(self):
        """The job is finished or dealt with: let the watcher exit without cancelling anything."""
        try:
            self.process.stdin.write(b"done\n")
        except (IOError, OSError, ValueError):
            pass  # the watcher is gone already; nothing to cancel either way
        try:
            self.process.stdin.close()
        except (IOError, OSError, ValueError):
            pass  # closing flushes: the same broken pipe, which must not reach GIMP's console


def guard_job(client, job_id):
    """Start a watcher that cancels `job_id` if this process dies first; None if no interpreter can run it.

    It runs this very file with the daemon's interpreter (always a Python 3), else with ours."""
    python = client.config.python or sys.executable
    script = os.path.abspath(__file__)
    if script.endswith((".pyc", ".pyo")):
        script = script[:-1]
    if not python or not os.path.exists(script):
        return None
    header = {"host": client.config.host, "port": client.config.port, "token": client.token, "job": job_id}
    devnull = open(os.devnull, "wb")
    try:
        process = _spawn_detached([python, script, WATCH_FLAG], stdin=subprocess.PIPE, output=devnull)
        process.stdin.write((json.dumps(header) + "\n").encode("utf-8"))  # the token never shows in `ps`
        process.stdin.flush()
    except (IOError, OSError, ValueError):
        return None  # best effort: without a watcher a killed plug-in's job simply runs to its end
    finally:
        devnull.close()
    return JobGuard(process)


def _watch(stdin):
    header = json.loads(stdin.readline().decode("utf-8"))
    if b"done" in stdin.read():  # blocks until the plug-in writes "done" or dies
        return 0
    client = DaemonClient(Config(host=header["host"], port=int(header["port"])), token=header["token"], timeout=10)
    _cancel_quietly(client, header["job"])
    return 0


if __name__ == "__main__" and sys.argv[1:] == [WATCH_FLAG]:
    sys.exit(_watch(getattr(sys.stdin, "buffer", sys.stdin)))
