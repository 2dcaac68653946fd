"""Model discovery: the shipped models folder and the user's folder, with a reason for every rejected file.

Shipped models must be listed with their sha256 in the folder's manifest.json. User models may be
listed in a manifest.json of their own, or carry a sidecar NAME.onnx.sha256; without either they are
accepted but reported as unverified. No model is a default unless a manifest says so or it is the
only kind of model installed for its task: with nothing installed, `default_for` says so plainly.

With a `probe` (the daemon and the CLI pass probe.probe_model), a user model is also run once on a
tiny input when first seen; a model whose graph will not load or whose output is NaN or constant is
rejected with the reason. The verdict is cached by (path, size, mtime, sha256), so a model is probed
again only when its file changes. Shipped models are trusted by their sha256 and never probed.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from . import contract
from .contract import ModelInfo
from .errors import BadRequest, InvalidModel, NoModelInstalled, UnknownMode, UnknownModel

SHIPPED_MODELS_DIR = Path(__file__).with_name("models")
MANIFEST = "manifest.json"
SIDECAR_SUFFIX = ".sha256"
MODELS_INDEX = "models-index.json"  # in the state dir; read by the GIMP plug-ins (docs/DESIGN.md)
MODELS_INDEX_FORMAT = 1
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Rejection:
    file: Path
    reason: str

    def to_json(self) -> dict:
        return {"file": str(self.file), "reason": self.reason}


@dataclass(frozen=True)
class ManifestEntry:
    sha256: str
    default_for: tuple[str, ...]


@dataclass(frozen=True)
class _Folder:
    path: Path
    source: str  # "shipped" | "user"
    requires_hash: bool


class Registry:
    """Thread-safe: `refresh()` builds a new snapshot and swaps it in."""

    def __init__(self, shipped_dir: Path | str | None = SHIPPED_MODELS_DIR, user_dir: Path | str | None = None,
                 files: Sequence[Path | str] = (), probe: Callable[[ModelInfo], str | None] | None = None,
                 index_file: Path | str | None = None):
        self._index_file = Path(index_file) if index_file is not None else None  # rewritten by every refresh()
        self._folders = [_Folder(Path(d), source, source == "shipped")
                         for d, source in ((shipped_dir, "shipped"), (user_dir, "user")) if d is not None]
        self._files = [Path(f) for f in files]
        self._probe = probe
        self._lock = threading.Lock()
        self._probe_lock = threading.Lock()  # one trial run at a time, each file version once
        self._hash_cache: dict[tuple[str, int, int], str] = {}
        self._verdicts: dict[tuple[str, int, int, str], str | None] = {}
        self._models: dict[str, ModelInfo] = {}
        self._rejected: list[Rejection] = []
        self.refresh()

    @classmethod
    def from_files(cls, paths: Iterable[Path | str]) -> "Registry":
        """A registry of explicit model files only (e.g. a freshly exported model to evaluate)."""
        return cls(shipped_dir=None, user_dir=None, files=list(paths))

    @classmethod
    def default(cls) -> "Registry":
        """The shipped folder and the user folder from the per-user settings."""
        from .config import load_settings

        return cls.for_settings(load_settings())

    @classmethod
    def for_settings(cls, settings, probe: Callable[[ModelInfo], str | None] | None = None) -> "Registry":
        """The settings' model folders; every scan also rewrites the plug-ins' models index in the state dir."""
        return cls(settings.shipped_models_dir, settings.user_models_dir, probe=probe,
                   index_file=Path(settings.state_dir) / MODELS_INDEX)

    @property
    def user_dir(self) -> Path | None:
        return next((f.path for f in self._folders if f.source == "user"), None)

    # -- queries

    def models(self) -> list[ModelInfo]:
        with self._lock:
            return sorted(self._models.values(), key=lambda m: (m.task, m.name))

    def rejected(self) -> list[Rejection]:
        with self._lock:
            return list(self._rejected)

    def get(self, name: str) -> ModelInfo:
        with self._lock:
            model = self._models.get(name)
            known = sorted(self._models)
            rejected = [r for r in self._rejected if r.file.stem == name]
        if model is not None:
            return model
        if rejected:
            raise UnknownModel(f"model '{name}' was rejected: {rejected[0].reason} ({rejected[0].file})")
        raise UnknownModel(f"unknown model '{name}'; installed: {', '.join(known) if known else 'none'}")

    def default_for(self, task: str) -> ModelInfo:
        with self._lock:
            defaults = [m for m in self._models.values() if m.task == task and m.default]
            rejected = len(self._rejected)
            installed = sorted({m.task for m in self._models.values() if m.task in contract.MODES})
        if defaults:
            return defaults[0]
        where = f" into {self.user_dir}" if self.user_dir is not None else " into the user models folder"
        hint = f"; {rejected} model file(s) were rejected, see 'gimp-colorize models'" if rejected else ""
        others = f"choose one of the installed modes ({', '.join(installed)})" if installed else "install a model"
        raise NoModelInstalled(
            f"no trained model installed for mode '{task}': {others}, or put a model file for it (an .onnx that "
            f"honours the model contract, docs/DESIGN.md){where}{hint}"
        )

    def guided_default_for(self, task: str) -> ModelInfo | None:
        """The model for guided runs of `task`: the manifest's "guided" default, else the task's default if it
        takes guidance, else the first model of the task that takes guidance; None when no model does."""
        with self._lock:
            guided = [m for m in self._models.values() if m.task == task and (m.takes_local_hints or m.takes_reference)]
        guided.sort(key=lambda m: (not m.guided_default, not m.default, not m.verified, m.name))
        return guided[0] if guided else None

    def fusion_for(self, instance: ModelInfo) -> ModelInfo:
        """The fusion model trained with this instance model's features (its gc.instance_model names it): the
        task's default if it is one of them, else verified ones first, then by name."""
        with self._lock:
            paired = [m for m in self._models.values() if m.task == "fusion" and m.instance_model == instance.name]
        if not paired:
            raise NoModelInstalled(
                f"instance mode needs a fusion model trained with instance model '{instance.name}', and none is "
                "installed: install the fusion model that came with it (see 'gimp-colorize models')")
        return min(paired, key=lambda m: (not m.default, not m.verified, m.name))

    def resolve(self, mode: str, model: str | None = None, guided: bool = False) -> ModelInfo:
        """The model a colorize request would use: `model` by name, else the default for `mode` (for guided
        requests, the guided default when one is installed)."""
        if mode not in contract.MODES:
            raise UnknownMode(f"unknown mode '{mode}'; use one of {', '.join(contract.MODES)}")
        if not model:
            return (self.guided_default_for(mode) if guided else None) or self.default_for(mode)
        info = self.get(model)
        if info.task != mode:
            raise BadRequest(f"model '{model}' is a '{info.task}' model; mode '{mode}' needs a '{mode}' model")
        return info

    def name_of(self, path: Path | str) -> str:
        """The registered name of the model read from `path` (raises InvalidModel with the rejection reason)."""
        resolved = Path(path).resolve()
        with self._lock:
            for model in self._models.values():
                if model.path.resolve() == resolved:
                    return model.name
            reasons = [r.reason for r in self._rejected if r.file.resolve() == resolved]
        raise InvalidModel(f"{path}: {reasons[0] if reasons else 'not a registered model file'}")

    # -- scanning

    def refresh(self) -> None:
        """Rescan every folder; cheap when nothing changed (hashes are cached by size and mtime)."""
        accepted: list[ModelInfo] = []
        rejected: list[Rejection] = []
        for folder in self._folders:
            self._scan_folder(folder, accepted, rejected)
        for path in self._files:
            self._consider(path, "file", self._sidecar_hash(path, rejected), (), accepted, rejected)
        models = _assign_defaults(_drop_duplicates(accepted, rejected))
        with self._lock:
            self._models = {m.name: m for m in models}
            self._rejected = rejected
        if self._index_file is not None:
            try:
                write_models_index(self, self._index_file)
            except OSError:
                pass  # only the plug-ins' menus use it, and they fall back to "default" without it

    def _scan_folder(self, folder: _Folder, accepted: list, rejected: list) -> None:
        if not folder.path.is_dir():
            return
        manifest = _read_manifest(folder.path, rejected)
        for name in sorted(set(manifest) - {p.name for p in folder.path.glob("*.onnx")}):
            rejected.append(Rejection(folder.path / name, f"listed in {MANIFEST} but the file is missing"))
        for path in sorted(folder.path.glob("*.onnx")):
            entry = manifest.get(path.name)
            if entry is not None:
                self._consider(path, folder.source, entry.sha256, entry.default_for, accepted, rejected)
            elif folder.requires_hash:
                rejected.append(Rejection(path, f"not listed in {folder.path / MANIFEST}: shipped models need a sha256 there"))
            else:
                self._consider(path, folder.source, self._sidecar_hash(path, rejected), (), accepted, rejected)

    def _consider(self, path: Path, source: str, expected: str | None, default_for: tuple[str, ...],
                  accepted: list, rejected: list) -> None:
        if expected == "":  # a sidecar that could not be used: already rejected
            return
        try:
            actual = self._sha256(path)
            if expected is not None and actual != expected:
                raise InvalidModel(f"wrong sha256: expected {expected}, the file has {actual} "
                                   "(truncated or corrupted copy?)")
            info = contract.read_model_info(path)
            info = info.replace(sha256=actual, verified=expected is not None, source=source,
                                default=info.task in default_for, guided_default=contract.GUIDED in default_for)
            problem = self._probe_verdict(info) if source == "user" else None
        except InvalidModel as exc:
            rejected.append(Rejection(path, exc.message))
            return
        except OSError as exc:
            rejected.append(Rejection(path, f"cannot read the file ({exc.strerror or exc})"))
            return
        if problem is not None:
            rejected.append(Rejection(path, f"unusable: {problem}"))
            return
        accepted.append(info)

    def _probe_verdict(self, info: ModelInfo) -> str | None:
        """The cached trial-run verdict of this version of the file (None: usable), probing it if new."""
        if self._probe is None:
            return None
        stat = info.path.stat()
        key = (str(info.path.resolve()), stat.st_size, stat.st_mtime_ns, info.sha256)
        with self._probe_lock:
            if key not in self._verdicts:
                self._verdicts[key] = self._probe(info)
            return self._verdicts[key]

    def _sidecar_hash(self, path: Path, rejected: list) -> str | None:
        """The digest in NAME.onnx.sha256 (sha256sum format); None without a sidecar, "" if it is unusable."""
        sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
        if not sidecar.is_file():
            return None
        try:
            words = sidecar.read_text(encoding="utf-8", errors="replace").split()
        except OSError as exc:
            rejected.append(Rejection(path, f"cannot read {sidecar.name} ({exc.strerror or exc})"))
            return ""
        digest = words[0].lower() if words else ""
        if not _SHA256.match(digest):
            rejected.append(Rejection(path, f"{sidecar.name} does not start with a sha256 hex digest"))
            return ""
        return digest

    def _sha256(self, path: Path) -> str:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        digest = self._hash_cache.get(key)
        if digest is None:
            digest = self._hash_cache[key] = contract.file_sha256(path)
        return digest


def write_models_index(registry: Registry, path: Path | str) -> None:
    """Write the accepted models as a small JSON file for the GIMP plug-ins, which cannot import the backend
    but build their mode and model choices when GIMP creates the procedure, with or without a daemon."""
    index = {
        "format": MODELS_INDEX_FORMAT,
        "user_models_dir": str(registry.user_dir) if registry.user_dir is not None else None,
        "models": [{"name": m.name, "task": m.task, "default": m.default, "guided_default": m.guided_default,
                    "verified": m.verified,
                    "optional_inputs": sorted(m.optional_inputs), "description": m.description}
                   for m in registry.models()],
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix=path.name + ".", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(index, out, indent=1)
        os.replace(partial, path)  # readers see the old index or the new one, never half of one
    except BaseException:
        os.unlink(partial)
        raise


def _read_manifest(folder: Path, rejected: list) -> dict[str, ManifestEntry]:
    """file name -> entry; a malformed manifest or entry is reported and contributes nothing."""
    path = folder / MANIFEST
    if not path.is_file():
        return {}
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["models"]
        if not isinstance(entries, list):
            raise TypeError("'models' is not a list")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        rejected.append(Rejection(path, f"unreadable manifest ({exc}); expected {{\"models\": [{{\"file\", \"sha256\"}}]}}"))
        return {}
    manifest = {}
    for number, raw in enumerate(entries):
        problem = _manifest_entry_problem(raw)
        if problem:
            rejected.append(Rejection(path, f"entry {number}: {problem}"))
            continue
        manifest[raw["file"]] = ManifestEntry(raw["sha256"].lower(), tuple(raw.get("default_for", ())))
    return manifest


def _manifest_entry_problem(raw) -> str | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("file"), str):
        return "needs a 'file' name"
    name = raw["file"]
    if Path(name).name != name or not name.endswith(".onnx"):  # a manifest never points outside its folder
        return f"'file' must be a plain .onnx file name in the folder, got {name!r}"
    if not isinstance(raw.get("sha256"), str) or not _SHA256.match(raw["sha256"].lower()):
        return f"{name}: 'sha256' must be 64 hex digits"
    defaults = raw.get("default_for", [])
    if not isinstance(defaults, list) or not all(d in contract.TASKS or d == contract.GUIDED for d in defaults):
        return f"{name}: 'default_for' must be a list among {', '.join(contract.TASKS + (contract.GUIDED,))}"
    return None


def _drop_duplicates(models: list[ModelInfo], rejected: list) -> list[ModelInfo]:
    """First come (shipped, then user, then explicit files) keeps a name; later files are rejected."""
    kept: dict[str, ModelInfo] = {}
    for model in models:
        if model.name in kept:
            rejected.append(Rejection(model.path, f"duplicate model name '{model.name}' "
                                                  f"(already provided by {kept[model.name].path})"))
        else:
            kept[model.name] = model
    return list(kept.values())


def _assign_defaults(models: list[ModelInfo]) -> list[ModelInfo]:
    """One default per task: a manifest's default_for (the user folder's wins), else the first model by name."""
    result = list(models)
    for task in {m.task for m in models}:
        of_task = [i for i, m in enumerate(result) if m.task == task]
        flagged = [i for i in of_task if result[i].default]
        chosen = flagged[-1] if flagged else min(of_task, key=lambda i: (not result[i].verified, result[i].name))
        for i in of_task:
            result[i] = result[i].replace(default=i == chosen)
    return result
