"""The plug-in test cases shared with the Python 2.7 run (tests/py27/), collected here by pytest under Python 3."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "py27"))

from cases_client import ConfigTest, KilledPluginTest, PathRulesTest, RoutesTest, StartTest  # noqa: E402,F401
from cases_flow import FlowTest, PixelBytesTest, UserFacingFlowTest  # noqa: E402,F401
from cases_gimp2 import Gimp2MenusTest, Gimp2ModesTest, Gimp2PluginTest  # noqa: E402,F401
from cases_guidance import HintsLayerTest, PixelHelpersTest, ReferenceTest  # noqa: E402,F401
from cases_modes import DiverseTest, InstanceTest  # noqa: E402,F401
