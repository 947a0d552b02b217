"""The optional compiled accelerator: the fast path's token loop and row builder in C.

``_fastloop_c/`` is built at install time where a C compiler is found (``setup.py`` marks it
optional).  ``LOOP`` is the module, or None where it was not built or is turned off with
``VNCMUX_PURE_PYTHON=1``.  The Python code is the reference and the fallback:
:meth:`FastPath.run <vncmux.console.fastpath.FastPath.run>` and
:meth:`PendingRows._build <vncmux.console.fastrows.PendingRows._build>` say what the C does,
and the differential tests run on both.
"""

from __future__ import annotations

import os
from typing import Any

from pyte import modes as mo
from pyte.charsets import LAT1_MAP, MAPS

from vncmux.console.editing import MORE_FIX
from vncmux.console.fasttokens import DECTCEM_KEY, EDITS, QUIET_MODES, SD


def _load() -> Any:
    if os.environ.get("VNCMUX_PURE_PYTHON"):
        return None
    try:
        from vncmux.console import _fastloop
    except ImportError:  # (not built: the Python code alone)
        return None
    _fastloop.configure(
        LAT1_MAP, MAPS, mo.DECAWM, mo.LNM, mo.DECTCEM, DECTCEM_KEY, QUIET_MODES, MORE_FIX, SD, EDITS
    )
    return _fastloop


LOOP: Any = _load()

__all__ = ["LOOP"]
