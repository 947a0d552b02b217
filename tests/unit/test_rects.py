"""Framebuffer rectangle geometry: clipping that cannot overflow, union, difference."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from vncmux.rfb.rects import Rect, clip_rect, contains, intersects, subtract, union


def test_clip_rect() -> None:
    assert clip_rect(0, 0, 0, 5, 80, 64) is None
    assert clip_rect(65535, 0, 65535, 1, 80, 64) is None
    assert clip_rect(70, 60, 65535, 65535, 80, 64) == (70, 60, 10, 4)
    assert clip_rect(10, 10, 5, 5, 80, 64) == (10, 10, 5, 5)


def test_union_and_contains() -> None:
    assert union(None, (1, 2, 3, 4)) == (1, 2, 3, 4)
    u = union((0, 0, 2, 2), (5, 5, 1, 1))
    assert u == (0, 0, 6, 6)
    assert u is not None and contains(u, (5, 5, 1, 1)) and not contains((0, 0, 2, 2), u)


def cells(r: Rect) -> set[tuple[int, int]]:
    return {(x, y) for x in range(r[0], r[0] + r[2]) for y in range(r[1], r[1] + r[3])}


small = st.tuples(st.integers(0, 12), st.integers(0, 12), st.integers(1, 8), st.integers(1, 8))


@given(small, small)
def test_subtract_covers_exactly_the_difference(a: Rect, b: Rect) -> None:
    pieces = subtract(a, b)
    got: set[tuple[int, int]] = set()
    for piece in pieces:
        assert not (cells(piece) & got), "pieces do not overlap"
        got |= cells(piece)
    assert got == cells(a) - cells(b)
    assert intersects(a, b) == bool(cells(a) & cells(b))
