import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# training/ and export/ are run from the repository root (python -m training); make them importable in tests too.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
