"""Sizes a viewer may ask the console for: pixels to cells, the limits, the answers.

A viewer (a VNC window, noVNC's "remote resizing") asks for a framebuffer size in pixels;
the console has whole cells.  This room holds the pure part of that policy: how many cells
fit (``cells_for``), which sizes are absurd (``LIMITS``), what an answer says
(``SizeStatus``) and who caused a resize (``ResizeOrigin``), so every protocol can say it
its own way (RFB's ExtendedDesktopSize codes are the same numbers, mapped explicitly in
``vncmux.rfb.resize``).  No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class SizeStatus(IntEnum):
    """The answer to a viewer's size request."""

    OK = 0  # done (the size may be smaller than asked: whole cells)
    PROHIBITED = 1  # not allowed here: the device cannot be told, a view-only viewer, ...
    NO_RESOURCES = 2  # the framebuffer could not be made
    INVALID = 3  # the size asked for is out of range (or the layout is malformed)


class ResizeOrigin(IntEnum):
    """Who changed the console's size, as one viewer sees it."""

    SERVER = 0  # the console itself, its configuration or an API
    THIS_VIEWER = 1  # the viewer being told asked for it
    OTHER_VIEWER = 2  # another viewer asked for it


@dataclass(frozen=True)
class Limits:
    """The sizes in cells a viewer may ask for, both ends included."""

    min_cols: int = 20
    min_rows: int = 5
    max_cols: int = 500
    max_rows: int = 200

    def allows(self, cols: int, rows: int) -> bool:
        return self.min_cols <= cols <= self.max_cols and self.min_rows <= rows <= self.max_rows

    def describe(self) -> str:
        return f"{self.min_cols}x{self.min_rows} to {self.max_cols}x{self.max_rows} cells"


#: What a viewer may ask for: a usable terminal, and no 500 MB framebuffer.
LIMITS = Limits()


def cells_for(
    width: int, height: int, cell_width: int, cell_height: int, extra_rows: int = 0
) -> tuple[int, int]:
    """The terminal's cols×rows that fit ``width``×``height`` pixels: whole cells only,
    less ``extra_rows`` cell rows the console draws below the terminal (the status line).
    May be zero or negative for a tiny size: ``Limits.allows`` says no to that."""
    cols = width // max(1, cell_width)
    rows = height // max(1, cell_height) - extra_rows
    return cols, rows
