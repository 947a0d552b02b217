"""Probing the renderer without the real terminal: a fake terminal holding just what the
renderer reads, and helpers that cut one cell's pixels out of its image and find the ink."""

from __future__ import annotations

import unicodedata
from typing import NamedTuple

from PIL import Image

from vncmux.console.render import Renderer


class Cell(NamedTuple):
    """One character cell: the fields the renderer reads (its ``CellView``), with defaults."""

    data: str = " "
    fg: str = "default"
    bg: str = "default"
    bold: bool = False
    italics: bool = False
    underscore: bool = False
    strikethrough: bool = False
    reverse: bool = False
    blink: bool = False
    faint: bool = False


class FakeTerminal:
    """Just what the renderer reads; ``put`` writes text as the real terminal would store
    it (wide characters followed by an empty cell, combining marks joined to their base)."""

    def __init__(self, cols: int, rows: int) -> None:
        self.cols, self.rows = cols, rows
        self.buf = [[Cell() for _ in range(cols)] for _ in range(rows)]
        self.cursor = (0, 0)
        self.cursor_visible = False
        self.reverse_screen = False

    def line(self, y: int) -> list[Cell]:
        return self.buf[y]

    def put(self, x: int, y: int, text: str, **attrs: object) -> None:
        for ch in text:
            if unicodedata.combining(ch) and x > 0:
                base = self.buf[y][x - 1]
                self.buf[y][x - 1] = base._replace(data=base.data + ch)
                continue
            wide = unicodedata.east_asian_width(ch) in "WF"
            self.buf[y][x] = Cell(ch, **attrs)  # type: ignore[arg-type]
            if wide:
                self.buf[y][x + 1] = Cell("", **attrs)  # type: ignore[arg-type]
            x += 2 if wide else 1

    def scroll(self, top: int, bottom: int, count: int, fill: list[list[Cell]]) -> None:
        """Move rows top..bottom by ``count`` (up if positive), new rows from ``fill``."""
        region = self.buf[top : bottom + 1]
        n = len(region)
        if count > 0:
            region = region[count:] + fill[: min(count, n)]
        else:
            region = fill[: min(-count, n)] + region[: n + count]
        self.buf[top : bottom + 1] = region[:n]


def cell_box(r: Renderer, x: int, y: int, cells: int = 1) -> tuple[int, int, int, int]:
    """The pixel box of ``cells`` cells starting at column ``x`` of row ``y``."""
    cw, ch = r.cell_width, r.cell_height
    return (x * cw, y * ch, (x + cells) * cw, (y + 1) * ch)


def crop(r: Renderer, x: int, y: int, cells: int = 1) -> Image.Image:
    """A copy of the renderer's pixels in that box."""
    return r.image.crop(cell_box(r, x, y, cells))


def ink(im: Image.Image, fg: tuple[int, int, int]) -> set[tuple[int, int]]:
    """The positions of the pixels painted exactly in colour ``fg``."""
    px = im.load()
    assert px is not None
    return {(x, y) for x in range(im.width) for y in range(im.height) if px[x, y] == fg}
