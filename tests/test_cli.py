"""`gimp-colorize` commands: colorize in-process on files and folders, models, and the daemon lifecycle."""

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gimp_colorize import cli
from tests.support import onnx_builders
from tests.support.daemon_harness import MODEL_NAME, child_env, free_port, make_dirs, wait_healthy


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    env = make_dirs(tmp_path / "home")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def write_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def gray(height=24, width=32, dtype=np.uint8):
    top = np.iinfo(dtype).max
    return (np.linspace(0, top, width)[None, :] * np.linspace(0.3, 1, height)[:, None]).astype(dtype)


def run_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gimp_colorize", *map(str, args)],
        capture_output=True,
        text=True,
        env=child_env({k: v for k, v in os.environ.items() if k.startswith("GIMP_COLORIZE_")}),
        timeout=120,
    )


def test_colorize_files_at_full_size(dirs, tmp_path, capsys):
    first = write_png(tmp_path / "in" / "first.png", gray())
    second = write_png(tmp_path / "in" / "second.png", gray(40, 20, np.uint16))
    assert cli.main(["colorize", str(first), str(second), "-o", str(tmp_path / "out")]) == 0
    out8 = Image.open(tmp_path / "out" / "first.png")
    assert (out8.mode, out8.size) == ("RGB", (32, 24))
    assert np.ptp(np.asarray(out8).astype(int), axis=-1).max() > 5  # coloured
    out16 = (tmp_path / "out" / "second.png").read_bytes()
    assert out16[24] == 16 and Image.open(io.BytesIO(out16)).size == (20, 40)  # 16-bit in, 16-bit out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["first.png", "second.png"]


def test_folder_with_a_corrupt_file_continues_and_fails(dirs, tmp_path, capsys):
    folder = tmp_path / "in"
    for name in ("a", "b", "c"):
        write_png(folder / f"{name}.png", gray())
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (folder / "notes.txt").write_text("ignored: not an image suffix")
    code = cli.main(["colorize", str(folder), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1
    assert "broken.png" in err and "1 of 4 input(s) failed" in err and "Traceback" not in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png", "c.png"]  # no partial files
    assert "[4/4]" in err  # progress per file


def test_missing_input_is_reported(dirs, tmp_path, capsys):
    good = write_png(tmp_path / "good.png", gray())
    assert cli.main(["colorize", str(good), str(tmp_path / "absent.png"), "-o", str(tmp_path / "out")]) == 1
    assert "absent.png: no such file" in capsys.readouterr().err
    assert (tmp_path / "out" / "good.png").exists()


def test_same_name_twice_is_a_failure_not_an_overwrite(dirs, tmp_path, capsys):
    one = write_png(tmp_path / "x" / "photo.png", gray())
    two = write_png(tmp_path / "y" / "photo.png", gray(10, 10))
    assert cli.main(["colorize", str(one), str(two), "-o", str(tmp_path / "out")]) == 1
    assert "already written" in capsys.readouterr().err
    assert Image.open(tmp_path / "out" / "photo.png").size == (32, 24)


def test_no_trained_model_installed(tmp_path, monkeypatch, capsys):
    for key, value in make_dirs(tmp_path / "empty", with_model=False).items():
        monkeypatch.setenv(key, value)
    image = write_png(tmp_path / "in.png", gray())
    assert cli.main(["colorize", str(image), "-o", str(tmp_path / "out")]) == 1
    assert "no trained model installed" in capsys.readouterr().err
    assert not (tmp_path / "out" / "in.png").exists()


def test_unknown_model_and_bad_samples(dirs, tmp_path, capsys):
    image = write_png(tmp_path / "in.png", gray())
    assert cli.main(["colorize", str(image), "-o", str(tmp_path / "out"), "--model", "nope"]) == 1
    assert "unknown model 'nope'" in capsys.readouterr().err
    assert cli.main(["colorize", str(image), "-o", str(tmp_path / "out"), "--samples", "0"]) == 1
    assert "--samples" in capsys.readouterr().err


def test_models_lists_and_reports_rejections(dirs, capsys):
    models_dir = Path(dirs["GIMP_COLORIZE_MODELS_DIR"])
    onnx_builders.write_truncated_copy(models_dir / f"{MODEL_NAME}.onnx", models_dir / "cut.onnx")
    assert cli.main(["models"]) == 1  # a rejected file is worth a non-zero exit
    out = capsys.readouterr().out
    assert MODEL_NAME in out and "default" in out and "verified" in out
    assert "rejected" in out and "cut.onnx" in out


def test_models_with_nothing_installed(tmp_path, monkeypatch, capsys):
    for key, value in make_dirs(tmp_path / "empty", with_model=False).items():
        monkeypatch.setenv(key, value)
    assert cli.main(["models"]) == 0
    assert "no trained model installed" in capsys.readouterr().out


def test_console_errors_are_one_line(dirs, tmp_path):
    result = run_cli("serve", "--host", "0.0.0.0")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "--allow-remote" in result.stderr


@pytest.mark.slow
def test_start_status_stop_with_a_stale_pid_file(dirs):
    state = Path(dirs["GIMP_COLORIZE_STATE_DIR"])
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (state / "daemon.pid").write_text(f'{{"pid": {int(dead.stdout)}, "host": "127.0.0.1", "port": 1}}')
    port = free_port()
    started = run_cli("start", "--port", port)
    try:
        assert started.returncode == 0, started.stderr
        assert f"http://127.0.0.1:{port}" in started.stdout and str(state / "daemon.log") in started.stdout
        assert wait_healthy(f"http://127.0.0.1:{port}", None, 10)["status"] == "ok"
        status = run_cli("status")
        assert status.returncode == 0 and "running (pid" in status.stdout and "CPUExecutionProvider" in status.stdout
        assert f"log: {state / 'daemon.log'}" in status.stdout
        again = run_cli("start", "--port", port)
        assert again.returncode == 1 and "already running" in again.stderr
    finally:
        stopped = run_cli("stop")
    assert stopped.returncode == 0 and "stopped the daemon" in stopped.stdout
    assert not (state / "daemon.pid").exists()
    after = run_cli("status")
    assert after.returncode == 3 and "not running" in after.stdout


def test_diverse_mode_writes_one_file_per_sample(dirs, tmp_path):
    models_dir = Path(dirs["GIMP_COLORIZE_MODELS_DIR"])
    onnx_builders.build_tiny_diverse_model(models_dir / "tiny-diverse.onnx")
    onnx_builders.write_manifest(
        models_dir,
        [
            {"file": f"{MODEL_NAME}.onnx", "default_for": ["full"]},
            {"file": "tiny-diverse.onnx", "default_for": ["diverse"]},
        ],
    )
    image = write_png(tmp_path / "photo.png", gray())
    assert (
        cli.main(
            ["colorize", str(image), "-o", str(tmp_path / "out"), "--mode", "diverse", "--samples", "3", "--seed", "1"]
        )
        == 0
    )
    outputs = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in outputs] == ["photo-1.png", "photo-2.png", "photo-3.png"]
    first, second = (np.asarray(Image.open(p)) for p in outputs[:2])
    assert first.shape == (24, 32, 3) and not np.array_equal(first, second)  # different samples


def test_output_folder_that_cannot_be_created_is_one_line(dirs, tmp_path, capsys):
    image = write_png(tmp_path / "in.png", gray())
    (tmp_path / "a-file").write_text("not a folder")
    assert cli.main(["colorize", str(image), "-o", str(tmp_path / "a-file" / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("gimp-colorize: error: ") and "a-file" in err and err.count("\n") == 1


def test_output_write_failure_is_reported_per_file(dirs, tmp_path, capsys, monkeypatch):
    from gimp_colorize import imageio

    first = write_png(tmp_path / "in" / "first.png", gray())
    second = write_png(tmp_path / "in" / "second.png", gray())
    real_write = imageio.atomic_write

    def disk_full_once(path, data):
        if path.name == "first.png":
            raise OSError(28, "No space left on device")
        real_write(path, data)

    monkeypatch.setattr(imageio, "atomic_write", disk_full_once)
    assert cli.main(["colorize", str(first), str(second), "-o", str(tmp_path / "out")]) == 1
    assert "first.png: cannot write the result: No space left on device" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["second.png"]


@pytest.mark.slow
def test_start_on_a_busy_port_explains_why(dirs):
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        result = run_cli("start", "--port", holder.getsockname()[1])
    assert result.returncode == 1
    assert "exited during start-up" in result.stderr and "Address already in use" in result.stderr
    assert not (Path(dirs["GIMP_COLORIZE_STATE_DIR"]) / "daemon.pid").exists()


@pytest.fixture
def guided_dirs(dirs):
    """The default tiny model plus a guided one (hints + reference) in the user folder."""
    models = Path(dirs["GIMP_COLORIZE_MODELS_DIR"])
    onnx_builders.build_tiny_model(models / "tiny-guided.onnx", name="tiny-guided", output_kind="ab",
                                   hints=True, reference=True)
    return dirs


def red_hint_png(path: Path, size=(24, 32), box=(8, 8, 12, 12)) -> Path:
    hints = np.zeros((*size, 4), np.uint8)
    x, y, w, h = box
    hints[y:y + h, x:x + w] = (200, 30, 40, 255)
    return write_png(path, hints)


def test_hints_points_and_reference_steer_the_result(guided_dirs, tmp_path, capsys):
    from gimp_colorize import colour

    image = write_png(tmp_path / "in.png", np.full((24, 32), 130, np.uint8))
    out = tmp_path / "out"
    assert cli.main(["colorize", str(image), "-o", str(out / "plain"), "--model", "tiny-guided"]) == 0
    hints = red_hint_png(tmp_path / "hints.png")
    assert cli.main(["colorize", str(image), "-o", str(out / "hinted"), "--hints", str(hints)]) == 0
    points = tmp_path / "points.json"
    points.write_text('[{"x": 14, "y": 14, "r": 200, "g": 30, "b": 40, "size": 12}]')
    assert cli.main(["colorize", str(image), "-o", str(out / "points"), "--points", str(points)]) == 0
    plain, hinted, by_points = (np.asarray(Image.open(out / name / "in.png")) for name in ("plain", "hinted", "points"))
    red_a = colour.rgb_to_lab(np.array([[200, 30, 40]], np.float32) / 255)[0, 1]
    for result in (hinted, by_points):
        a = colour.rgb_to_lab(result[12:16, 12:16])[..., 1].mean()
        assert abs(a - red_a) < 8 and abs(a - colour.rgb_to_lab(plain[12:16, 12:16])[..., 1].mean()) > 20
    reference = write_png(tmp_path / "ref.png", np.full((10, 10, 3), (150, 100, 90), np.uint8))
    assert cli.main(["colorize", str(image), "-o", str(out / "ref"), "--reference", str(reference)]) == 0
    assert not np.array_equal(np.asarray(Image.open(out / "ref" / "in.png")), plain)


@pytest.mark.parametrize("flags,message", [
    (["--temperature", "1e-39"], "--temperature must be a number from 0.01 to 5"),
    (["--temperature", "nan"], "not a finite number"),
    (["--vibrancy", "3"], "--vibrancy must be a number from 0 to 2"),
    (["--samples", "0"], "--samples must be a whole number from 1 to 16"),
    (["--reference-strength", "2"], "--reference-strength must be a number from 0 to 1"),
])
def test_option_bounds_are_the_apis(dirs, tmp_path, capsys, flags, message):
    image = write_png(tmp_path / "in.png", gray())
    assert cli.main(["colorize", str(image), "-o", str(tmp_path / "out"), *flags]) == 1
    err = capsys.readouterr().err
    assert message in err and "Warning" not in err and not (tmp_path / "out").exists()


def test_hints_need_one_input_a_guided_model_and_transparency(guided_dirs, tmp_path, capsys):
    first, second = (write_png(tmp_path / f"{n}.png", gray()) for n in ("a", "b"))
    hints = red_hint_png(tmp_path / "hints.png")
    assert cli.main(["colorize", str(first), str(second), "-o", str(tmp_path / "o1"), "--hints", str(hints)]) == 1
    assert "exactly one input" in capsys.readouterr().err
    assert cli.main(["colorize", str(first), "-o", str(tmp_path / "o2"), "--hints", str(hints), "--model", MODEL_NAME]) == 1
    assert f"model '{MODEL_NAME}' does not take colour hints" in capsys.readouterr().err
    opaque = write_png(tmp_path / "opaque.png", np.zeros((24, 32, 3), np.uint8))
    assert cli.main(["colorize", str(first), "-o", str(tmp_path / "o3"), "--hints", str(opaque)]) == 1
    assert "needs transparency" in capsys.readouterr().err
    wrong_size = red_hint_png(tmp_path / "small.png", size=(10, 10), box=(1, 1, 2, 2))
    assert cli.main(["colorize", str(first), "-o", str(tmp_path / "o4"), "--hints", str(wrong_size)]) == 1
    assert "must have the image's size, 32 x 24" in capsys.readouterr().err

SIGTERM_DURING_WRITE = """
import os, signal, sys
from gimp_colorize import cli

real_fsync = os.fsync

def fsync_then_sigterm(fd):  # the output is half-way: written to its temporary, not yet renamed
    os.kill(os.getpid(), signal.SIGTERM)
    real_fsync(fd)

os.fsync = fsync_then_sigterm
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_sigterm_during_a_write_leaves_no_part_file(dirs, tmp_path):
    image = write_png(tmp_path / "in" / "photo.png", gray())
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-c", SIGTERM_DURING_WRITE, "colorize", str(image), "-o", str(out)],
        capture_output=True, text=True, env=child_env(dirs), timeout=120,
    )
    assert result.returncode == cli.EXIT_TERMINATED, result.stderr
    assert "terminated" in result.stderr and "Traceback" not in result.stderr
    assert list(out.iterdir()) == []  # neither a half-written photo.png nor a hidden .photo.png.XXXX.part


def test_stale_part_files_of_an_earlier_run_are_removed(dirs, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    old, fresh, foreign = out / ".photo.png.deadbeef.part", out / ".other.png.cafebabe.part", out / ".notes.part"
    for path in (old, fresh, foreign):
        path.write_bytes(b"half a png")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    os.utime(foreign, (two_hours_ago, two_hours_ago))
    image = write_png(tmp_path / "in" / "photo.png", gray())
    assert cli.main(["colorize", str(image), "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [".notes.part", ".other.png.cafebabe.part", "photo.png"]
    assert "removed 1 unfinished output" in capsys.readouterr().err


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc to read start times")
def test_status_of_a_hung_daemon_has_its_own_exit_code(dirs, capsys):
    from gimp_colorize import daemon
    from gimp_colorize.config import load_settings

    hung = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        settings = load_settings()
        daemon.write_pid_file(settings.pid_file, daemon.PidInfo(hung.pid, "127.0.0.1", free_port(),
                                                                daemon.process_start_time(hung.pid)))
        assert cli.main(["status"]) == cli.EXIT_NOT_ANSWERING == 4
        assert "NOT answering" in capsys.readouterr().out
    finally:
        hung.kill()
        hung.wait()
    assert cli.main(["status"]) == cli.EXIT_NOT_RUNNING


def test_status_help_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        cli.main(["status", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "3 no daemon runs" in out and "4 its process lives but does not answer" in out


def test_queue_size_flag_reaches_the_settings_and_the_spawned_daemon(dirs, monkeypatch):
    from gimp_colorize import daemon

    args = cli.build_parser().parse_args(["start", "--queue-size", "40"])
    settings = cli._settings(args)
    assert settings.queue_size == 40
    commands = []
    monkeypatch.setattr(daemon.subprocess, "Popen", lambda command, **kwargs: commands.append(command))
    daemon._spawn_serve(settings, "cpu")
    assert commands[0][commands[0].index("--queue-size") + 1] == "40"
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["serve", "--queue-size", "0"])


@pytest.mark.slow
def test_a_second_serve_is_refused_and_the_first_stays_visible(tmp_path):
    from tests.support.daemon_harness import start_daemon

    first = start_daemon(tmp_path / "first")
    try:
        second = subprocess.run(
            [sys.executable, "-m", "gimp_colorize", "serve", "--port", str(free_port())],
            capture_output=True, text=True, env=first.env, timeout=60,
        )
        assert second.returncode == 1 and "already running" in second.stderr, second.stderr
        status = subprocess.run([sys.executable, "-m", "gimp_colorize", "status"], capture_output=True, text=True,
                                env=first.env, timeout=60)
        assert status.returncode == 0 and f"pid {first.process.pid}" in status.stdout
    finally:
        assert first.stop() == 0


@pytest.fixture
def instance_dirs(dirs):
    """The default tiny model plus a tiny instance model, its fusion model and a detector in the user folder."""
    models = Path(dirs["GIMP_COLORIZE_MODELS_DIR"])
    onnx_builders.build_tiny_instance_model(models / "tiny-instance.onnx", output_kind="ab")
    onnx_builders.build_tiny_fusion_model(models / "tiny-fusion.onnx")
    onnx_builders.build_tiny_detector(models / "tiny-detector.onnx", [[0.0, 0.5, 1.0, 1.0]], [1], [0.9])
    return dirs


def test_instance_mode_writes_the_fused_result_and_each_instance_with_its_mask(instance_dirs, tmp_path, capsys):
    image = write_png(tmp_path / "photo.png", np.full((40, 64), 200, np.uint8))
    out = tmp_path / "out"
    args = ["colorize", str(image), "-o", str(out), "--mode", "instance", "--boxes", "both",
            "--boxes", "2,3,20,10;4,20,12,12", "--instance-layers"]
    assert cli.main(args) == 0
    assert sorted(p.name for p in out.iterdir()) == ["photo-instance-1.png", "photo-instance-2.png",
                                                    "photo-instance-3.png", "photo.png"]
    fused = np.asarray(Image.open(out / "photo.png"))
    first = np.asarray(Image.open(out / "photo-instance-1.png"))
    assert fused.shape == (40, 64, 3) and first.shape == (40, 64, 4)
    assert first[8, 12, 3] == 255 and first[30, 50, 3] == 0 and 0 < first[3, 12, 3] < 255  # the box, feathered
    err = capsys.readouterr().err
    assert "3 object(s): user at 2,3,20,10; user at 4,20,12,12; person 0.71 at 32,0,32,40" in err


def test_instance_mode_selection_file_and_bad_box_lists(instance_dirs, tmp_path, capsys):
    image = write_png(tmp_path / "photo.png", np.full((40, 64), 200, np.uint8))
    mask = np.zeros((40, 64), np.uint8)
    mask[5:15, 5:15] = mask[25:35, 40:60] = 255
    selection = write_png(tmp_path / "mask.png", mask)
    assert cli.main(["colorize", str(image), "-o", str(tmp_path / "a"), "--mode", "instance",
                     "--selection", str(selection)]) == 0
    assert "2 object(s): selection at 40,25,20,10; selection at 5,5,10,10" in capsys.readouterr().err
    for bad, message in ((["--boxes", "1,2,3"], "box 1 must be x,y,width,height"),
                         (["--boxes", "auto", "--boxes", "both"], "more than one source"),
                         (["--boxes", "auto", "--selection", str(selection)], "boxes=auto uses only the detector"),
                         (["--max-instances", "17"], "--max-instances must be a whole number from 1 to 16"),
                         (["--score-threshold", "0"], "--score-threshold must be a number from 0.05 to 1")):
        assert cli.main(["colorize", str(image), "-o", str(tmp_path / "b"), "--mode", "instance", *bad]) == 1
        assert message in capsys.readouterr().err
    assert not (tmp_path / "b").exists()  # refused before anything was written
