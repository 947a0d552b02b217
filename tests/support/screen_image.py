"""What a viewer must see: bytes through our own terminal and renderer, and an exact
pixel comparison, for the tests that check a real viewer's capture."""

from __future__ import annotations

from PIL import Image, ImageChops

from vncmux.console.render import Renderer
from vncmux.console.terminal import Terminal


def expected_screen(output: bytes, cols: int = 80, rows: int = 24) -> Image.Image:
    """The picture ``output`` makes: the same bytes through our terminal and renderer."""
    term = Terminal(cols, rows)
    term.feed(output)
    renderer = Renderer(cols, rows)
    renderer.render_all(term)
    return renderer.image.copy()


def same(a: Image.Image, b: Image.Image) -> bool:
    """Two pictures of the same size and mode, pixel for pixel equal."""
    return a.size == b.size and ImageChops.difference(a, b).getbbox() is None
