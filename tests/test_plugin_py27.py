"""The GIMP 2.10 plug-in and the shared client under a REAL Python 2.7, plus a static 2.7/3.x check.

Python 2.7 comes from Debian bullseye in a small cached root (tests/support/debroot.py): the first run
builds it (about 20 s, needs the Debian mirror), later runs unpack or reuse it in seconds.
Inside, tests/py27/run_py27.py runs the shared unittest cases (pytest does not run on 2.7 here).
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.debroot import RootPrivilegesMissing, ensure_debian_root, run_in_root

REPO = Path(__file__).resolve().parent.parent
PY27_CASES = 107  # tests/py27/cases_*.py; a lower count means a module silently failed to load


@pytest.fixture(scope="module")
def bullseye_root():
    try:
        return ensure_debian_root("py27-bullseye", "bullseye", ["python2.7"])
    except RootPrivilegesMissing as exc:
        pytest.skip(str(exc))


@pytest.mark.py27
@pytest.mark.slow
def test_plugin_cases_pass_under_debian_python_2_7(bullseye_root):
    result = run_in_root(bullseye_root, ["python2.7", str(REPO / "tests" / "py27" / "run_py27.py")],
                         binds=[REPO], timeout=300)
    output = result.stdout + result.stderr
    summary = re.search(r"RESULT ran=(\d+) failures=(\d+) errors=(\d+) python=(\S+)", output)
    assert summary, output[-3000:]
    ran, failures, errors, version = summary.groups()
    assert version.startswith("2.7."), output[-3000:]
    assert (failures, errors) == ("0", "0"), output[-6000:]
    assert int(ran) >= PY27_CASES, output[-3000:]
    assert result.returncode == 0


def vermin_minimum_versions(paths):
    vermin = shutil.which("vermin") or str(Path(sys.executable).with_name("vermin"))
    if not Path(vermin).exists():
        pytest.fail("vermin is missing: pip install -e '.[dev]'")
    result = subprocess.run([vermin, "--no-tips", "--violations", "-t=2.7-", "-t=3.0-", *map(str, paths)],
                            capture_output=True, text=True, timeout=120)
    return result


@pytest.mark.py27
def test_vermin_finds_plugin_code_compatible_with_2_7_and_3():
    result = vermin_minimum_versions([REPO / "plugin" / "common", REPO / "plugin" / "gimp2"])
    assert result.returncode == 0, result.stdout + result.stderr
    found = re.search(r"Minimum required versions: ([\d.]+), ([\d.]+)", result.stdout)
    assert found, result.stdout
    py2, py3 = (tuple(int(p) for p in v.split(".")) for v in found.groups())
    assert py2 <= (2, 7) and py3 <= (3, 6), result.stdout


@pytest.mark.py27
def test_vermin_would_catch_python3_only_code(tmp_path):
    """The check above is only worth something if vermin flags what breaks 2.7."""
    bad = tmp_path / "bad.py"
    bad.write_text('name = "x"\nprint(f"hello {name}")\n')
    result = vermin_minimum_versions([bad])
    assert result.returncode != 0
