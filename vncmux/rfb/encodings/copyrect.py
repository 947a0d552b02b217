"""CopyRect encoding (1): "copy this rectangle from (src_x, src_y) of the framebuffer".

Used for scrolling: one scrolled screen costs 4 bytes of payload instead of its pixels.
Never use it to answer a non-incremental request (the client may have no valid source).
"""

from __future__ import annotations

import struct

from vncmux.rfb.encodings.numbers import COPYRECT

__all__ = ["COPYRECT", "copyrect_payload"]

_SRC = struct.Struct("!HH")


def copyrect_payload(src_x: int, src_y: int) -> bytes:
    """The 4-byte payload: source position as two U16."""
    return _SRC.pack(src_x, src_y)
