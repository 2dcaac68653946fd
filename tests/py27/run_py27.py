"""Run the plug-in test cases with plain unittest (pytest does not run on Python 2.7 here).

Prints one line per test and a final `RESULT ran=N failures=F errors=E python=X.Y.Z`; exits 1 on failure.
"""

from __future__ import absolute_import, division, print_function

import os
import platform
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

MODULES = ["cases_client", "cases_flow", "cases_guidance", "cases_modes", "cases_gimp2"]


def main():
    suite = unittest.defaultTestLoader.loadTestsFromNames(MODULES)
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(suite)
    print("RESULT ran=%d failures=%d errors=%d python=%s" % (result.testsRun, len(result.failures),
                                                             len(result.errors), platform.python_version()))
    sys.stdout.flush()
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
