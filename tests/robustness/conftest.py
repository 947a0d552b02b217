"""The robustness tests share tests/conftest.py's fixtures; this puts their own helper
module (``rfbkit``) on the path."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
