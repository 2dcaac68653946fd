"""Fixtures for the real-GIMP tests: the cached trixie root, a sandbox home with the plug-in installed."""

import pytest

from tests.gimp3 import harness
from tests.support.debroot import DebRootError, RootPrivilegesMissing


@pytest.fixture(scope="session")
def gimp_root():
    try:
        return harness.provision_gimp_root()
    except RootPrivilegesMissing as exc:
        pytest.skip(str(exc))
    except DebRootError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def sandbox(gimp_root, tmp_path_factory):
    """A fresh home (GIMP profile, gimp-colorize config) with the plug-in installed by the real install.py."""
    box = harness.make_sandbox(gimp_root, tmp_path_factory.mktemp("gimp-home"))
    installed = harness.install_plugin(box)
    assert installed.returncode == 0, "install.py failed:\n%s\n%s" % (installed.stdout, installed.stderr)
    return box
