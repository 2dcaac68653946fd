"""One onnxruntime session per model, created on first use and cached; execution provider choice.

onnxruntime is imported lazily so that `gimp-colorize --help`, the registry and the tests of other parts
work (and say what is missing) in an environment without it.

A session nobody used for the idle timeout (default 15 minutes, `session_idle_s` in config.json) is
dropped, so a model tried once does not hold its memory (hundreds of MB on a GPU) for the daemon's life.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Callable, Sequence

import numpy as np

from .config import DEFAULT_SPINNING
from .contract import COLOURIZER_TASKS, ModelInfo, metadata_input_names, metadata_output_names
from .errors import ModelLoadError, RuntimeMissing

log = logging.getLogger(__name__)

DEFAULT_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")
CPU = "CPUExecutionProvider"
DEFAULT_IDLE_S = 900.0


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:
        raise RuntimeMissing(
            f"onnxruntime is not importable ({exc}); run install.py again, or install it into this Python with "
            "'pip install onnxruntime' (or 'onnxruntime-gpu' for NVIDIA GPUs, never both)"
        ) from None
    return onnxruntime


def available_providers() -> list[str]:
    return list(import_onnxruntime().get_available_providers())


def choose_providers(requested: Sequence[str] | None = None) -> list[str]:
    """The requested providers (default: CUDA, then CPU) that this onnxruntime build has, in order.

    CPU is always appended as the last resort, so a CUDA request on a CPU-only build still runs.
    """
    available = set(available_providers())
    chosen = [p for p in (requested or DEFAULT_PROVIDERS) if p in available]
    if CPU not in chosen:
        chosen.append(CPU)
    return chosen


class ModelSession:
    """An onnxruntime InferenceSession for one model, checked against the model's contract."""

    def __init__(self, info: ModelInfo, providers: Sequence[str], threads: int | None = None,
                 spinning: bool = DEFAULT_SPINNING):
        ort = import_onnxruntime()
        self.info = info
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "1" if spinning else "0")
        options.log_severity_level = 3  # errors only: provider fallback warnings are reported via providers()
        try:
            self._session = ort.InferenceSession(str(info.path), sess_options=options, providers=list(providers))
        except Exception as exc:  # onnxruntime raises its own exception types (Fail, InvalidGraph, ...)
            raise ModelLoadError(f"cannot load model '{info.name}' ({info.path.name}): {_first_line(exc)}") from None
        inputs = {i.name: i.shape for i in self._session.get_inputs()}
        self.input_names = list(inputs)
        outputs = [o.name for o in self._session.get_outputs()]
        missing = [n for n in metadata_input_names(info) if n not in inputs]
        missing += [n for n in metadata_output_names(info) if n not in outputs]
        if missing:
            raise ModelLoadError(f"model '{info.name}': the graph lacks {', '.join(missing)} named in its metadata")
        if info.task in COLOURIZER_TASKS:
            _check_lightness_shape(info, inputs[info.input_name])

    @property
    def providers(self) -> list[str]:
        """The providers the session really uses (CUDA silently falls back to CPU when it cannot start)."""
        return list(self._session.get_providers())

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Run the model; returns its chroma output. Only inputs the graph declares are fed."""
        (output,) = self.run_outputs(feeds, [self.info.output_name])
        return output

    def run_outputs(self, feeds: dict[str, np.ndarray], names: Sequence[str]) -> list[np.ndarray]:
        """Run the model; returns the named outputs in that order (instance features, detector outputs)."""
        feeds = {name: value for name, value in feeds.items() if name in self.input_names}
        try:
            return list(self._session.run(list(names), feeds))
        except Exception as exc:
            raise ModelLoadError(f"model '{self.info.name}' failed to run: {_first_line(exc)}") from None


class SessionCache:
    """Lazily created sessions keyed by model file identity; thread-safe, each session created once.

    Sessions unused for `idle_s` seconds are dropped by a background sweep (0: never). A job still running
    on a dropped session keeps it alive.
    """

    def __init__(self, providers: Sequence[str] | None = None, threads: int | None = None,
                 idle_s: float = DEFAULT_IDLE_S, clock: Callable[[], float] = time.monotonic,
                 spinning: bool = DEFAULT_SPINNING):
        self._requested = list(providers) if providers else None
        self.threads = threads
        self.spinning = spinning
        self.idle_s = float(idle_s)
        self._clock = clock
        self._sessions: dict[tuple, ModelSession] = {}
        self._last_used: dict[tuple, float] = {}
        self._lock = threading.Lock()
        self._creating: dict[tuple, threading.Lock] = {}
        self._sweeper: threading.Thread | None = None

    def providers(self) -> list[str]:
        return choose_providers(self._requested)

    def get(self, info: ModelInfo) -> ModelSession:
        key = (info.name, str(info.path), info.sha256)  # a replaced file (new hash) gets a new session
        with self._lock:
            session = self._sessions.get(key)
            if session is not None:
                self._last_used[key] = self._clock()
                return session
            creating = self._creating.setdefault(key, threading.Lock())
        with creating:  # two requests for a cold model: the second waits for the first's session
            with self._lock:
                session = self._sessions.get(key)
            if session is None:
                session = ModelSession(info, self.providers(), self.threads, self.spinning)
                with self._lock:
                    self._drop_older_versions(info.name)
                    self._sessions[key] = session
                    self._creating.pop(key, None)
            with self._lock:
                self._last_used[key] = self._clock()
        self._start_sweeper()
        return session

    def loaded(self) -> list[str]:
        with self._lock:
            return sorted({key[0] for key in self._sessions})

    def clear(self) -> None:
        with self._lock:
            self._sessions.clear()
            self._last_used.clear()

    def evict_idle(self) -> list[str]:
        """Drop the sessions unused for longer than idle_s; returns their model names."""
        if self.idle_s <= 0:
            return []
        now = self._clock()
        with self._lock:
            idle = [key for key, used in self._last_used.items() if now - used > self.idle_s]
            for key in idle:
                self._sessions.pop(key, None)
                self._last_used.pop(key, None)
        return sorted(key[0] for key in idle)

    def _drop_older_versions(self, name: str) -> None:
        for key in [k for k in self._sessions if k[0] == name]:
            del self._sessions[key]
            self._last_used.pop(key, None)

    def _start_sweeper(self) -> None:
        with self._lock:
            if self.idle_s <= 0 or (self._sweeper is not None and self._sweeper.is_alive()):
                return
            interval = min(60.0, max(1.0, self.idle_s / 4))
            self._sweeper = threading.Thread(target=_sweep, args=(weakref.ref(self), interval),
                                             name="session-sweeper", daemon=True)
            self._sweeper.start()


def _sweep(cache_ref: "weakref.ref[SessionCache]", interval: float) -> None:
    """Evict idle sessions every `interval` s while the cache exists and holds any (then the thread ends)."""
    while True:
        time.sleep(interval)
        cache = cache_ref()
        if cache is None:
            return
        for name in cache.evict_idle():
            log.info("unloaded model %s: not used for %.0f s", name, cache.idle_s)
        with cache._lock:
            if not cache._sessions:
                cache._sweeper = None
                return
        del cache


def _check_lightness_shape(info: ModelInfo, shape: list) -> None:
    """The contract's lightness input is (N, 1, H, W); dims may be symbolic (strings) or None."""
    if len(shape) != 4 or (shape[1] not in (1, None) and not isinstance(shape[1], str)):
        raise ModelLoadError(f"model '{info.name}': input '{info.input_name}' has shape {shape}; "
                             "the contract needs (N, 1, H, W)")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
