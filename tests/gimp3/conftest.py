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


class TinyModels:
    """The tiny test models (full, diverse, guided) in the sandbox's user models folder; the shipped folder
    replaced by an empty one."""

    def __init__(self, sandbox):
        from tests.support import onnx_builders

        self.user_dir = sandbox.config_dir / "models"
        self.shipped_dir = sandbox.home / "shipped-models-empty"
        self.user_dir.mkdir(parents=True, exist_ok=True)
        self.shipped_dir.mkdir(exist_ok=True)
        self.model = onnx_builders.build_tiny_full_model(self.user_dir / "tiny-full.onnx", name="tiny-full")
        self.diverse_model = onnx_builders.build_tiny_diverse_model(self.user_dir / "tiny-diverse.onnx")
        # obeys its hints exactly and shifts its colours by the reference's: the guided default
        self.guided_model = onnx_builders.build_tiny_model(self.user_dir / "tiny-guided.onnx", name="tiny-guided",
                                                           output_kind="ab", hints=True, reference=True)
        for model in (self.model, self.diverse_model, self.guided_model):
            onnx_builders.write_sidecar(model)
        # Passed to the daemon, and to GIMP (the plug-in hands its environment to a daemon it starts).
        self.daemon_env = {"GIMP_COLORIZE_SHIPPED_MODELS_DIR": str(self.shipped_dir)}


@pytest.fixture(scope="session")
def tiny_models(sandbox):
    return TinyModels(sandbox)
