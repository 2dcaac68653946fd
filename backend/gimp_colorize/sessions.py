"""One onnxruntime session per model, created on first use and cached; execution provider choice.

onnxruntime is imported lazily so that `gimp-colorize --help`, the registry and the tests of other parts
work (and say what is missing) in an environment without it.
"""

from __future__ import annotations

import threading
from typing import Sequence

import numpy as np

from .contract import COLOURIZER_TASKS, ModelInfo, metadata_input_names, metadata_output_names
from .errors import ModelLoadError, RuntimeMissing

DEFAULT_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")
CPU = "CPUExecutionProvider"


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

    def __init__(self, info: ModelInfo, providers: Sequence[str], threads: int | None = None):
        ort = import_onnxruntime()
        self.info = info
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
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
    """Lazily created sessions keyed by model file identity; thread-safe, each session created once."""

    def __init__(self, providers: Sequence[str] | None = None, threads: int | None = None):
        self._requested = list(providers) if providers else None
        self.threads = threads
        self._sessions: dict[tuple, ModelSession] = {}
        self._lock = threading.Lock()
        self._creating: dict[tuple, threading.Lock] = {}

    def providers(self) -> list[str]:
        return choose_providers(self._requested)

    def get(self, info: ModelInfo) -> ModelSession:
        key = (info.name, str(info.path), info.sha256)  # a replaced file (new hash) gets a new session
        with self._lock:
            session = self._sessions.get(key)
            if session is not None:
                return session
            creating = self._creating.setdefault(key, threading.Lock())
        with creating:  # two requests for a cold model: the second waits for the first's session
            with self._lock:
                session = self._sessions.get(key)
            if session is None:
                session = ModelSession(info, self.providers(), self.threads)
                with self._lock:
                    self._drop_older_versions(info.name)
                    self._sessions[key] = session
                    self._creating.pop(key, None)
        return session

    def loaded(self) -> list[str]:
        with self._lock:
            return sorted({key[0] for key in self._sessions})

    def clear(self) -> None:
        with self._lock:
            self._sessions.clear()

    def _drop_older_versions(self, name: str) -> None:
        for key in [k for k in self._sessions if k[0] == name]:
            del self._sessions[key]


def _check_lightness_shape(info: ModelInfo, shape: list) -> None:
    """The contract's lightness input is (N, 1, H, W); dims may be symbolic (strings) or None."""
    if len(shape) != 4 or (shape[1] not in (1, None) and not isinstance(shape[1], str)):
        raise ModelLoadError(f"model '{info.name}': input '{info.input_name}' has shape {shape}; "
                             "the contract needs (N, 1, H, W)")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
