"""Fakes for the plug-in tests: an in-memory host, a stdlib fake daemon, a gimpfu stub.

Importing this package puts plugin/common and tests/fakes on sys.path, because the plug-in modules
import each other as top-level modules (that is how GIMP loads them from one folder).
"""

import os
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLUGIN_COMMON = os.path.join(_REPO, "plugin", "common")
PLUGIN_GIMP2 = os.path.join(_REPO, "plugin", "gimp2")
FAKES = os.path.dirname(os.path.abspath(__file__))

for _path in (PLUGIN_COMMON, FAKES):
    if _path not in sys.path:
        sys.path.insert(0, _path)
