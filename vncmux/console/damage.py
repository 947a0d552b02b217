"""Row damage with at most one pending scroll: what changed on a character screen.

The same little algebra serves three places: the terminal records what its input changed,
the display applies it to the shared framebuffer, and every viewer accumulates it until it
asks for an update.  Keeping the scroll separate is what lets a scrolled line cost one
CopyRect plus one new row on the wire instead of a whole screen.

Semantics of a ``Damage``: to bring an old picture up to date, first apply ``scroll`` (if
any) to the old picture, then redraw every row in ``rows`` from the current state.  Marking
more rows than needed is always safe; every operation below keeps that promise.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple


class Scroll(NamedTuple):
    """Rows ``top``..``bottom`` (inclusive) moved by ``count``: positive moves content up
    (a line feed at the bottom margin), negative moves it down (reverse index).  A tuple
    (not a frozen dataclass) because a full-screen program makes one per scrolled line."""

    top: int
    bottom: int
    count: int  # type: ignore[assignment]  # (the field hides ``tuple.count``, unused here)

    @property
    def height(self) -> int:
        return self.bottom - self.top + 1

    def source_rows(self) -> tuple[int, int]:
        """First row and number of rows of the old picture that survive the scroll."""
        n = abs(self.count)
        return (self.top + n, self.height - n) if self.count > 0 else (self.top, self.height - n)

    def dest_top(self) -> int:
        """Row where the surviving block lands."""
        return self.top if self.count > 0 else self.top + abs(self.count)


class Damage:
    """Dirty rows of a ``lines``-row screen, plus at most one scroll applied before them."""

    __slots__ = ("lines", "rows", "scroll")

    def __init__(self, lines: int) -> None:
        self.lines = lines
        self.rows: set[int] = set()
        self.scroll: Scroll | None = None

    def __bool__(self) -> bool:
        return bool(self.rows) or self.scroll is not None

    def __repr__(self) -> str:
        return f"Damage(rows={sorted(self.rows)}, scroll={self.scroll})"

    def clear(self) -> None:
        self.rows.clear()
        self.scroll = None

    def mark(self, rows: Iterable[int]) -> None:
        """Rows whose content must be redrawn from the current state."""
        if type(rows) is range and rows.step == 1:
            self.rows.update(range(max(rows.start, 0), min(rows.stop, self.lines)))
            return
        new = rows if isinstance(rows, (set, frozenset)) else set(rows)
        if new and (min(new) < 0 or max(new) >= self.lines):
            new = {r for r in new if 0 <= r < self.lines}
        self.rows.update(new)

    def mark_all(self) -> None:
        """Everything: used for a new viewer, a non-incremental request or a resize."""
        self.scroll = None
        self.rows = set(range(self.lines))

    def scrolled(self, top: int, bottom: int, count: int) -> None:
        """Record that rows ``top..bottom`` scrolled by ``count`` after what is recorded."""
        if count == 0 or top > bottom:
            return
        height = bottom - top + 1
        prior = self.scroll
        if (prior is not None and (prior.top != top or prior.bottom != bottom)) or (
            count >= height or -count >= height
        ):
            # Only one scroll can be pending (or nothing survives): redraw this region.
            self.rows.update(range(max(top, 0), min(bottom + 1, self.lines)))
            return
        band = range(top, bottom + 1)
        if not self.rows.issuperset(band):
            # (A region already wholly dirty stays so: shifting it would change nothing.)
            self._shift_rows(top, bottom, count)
        total = count if prior is None else count + prior.count
        if total == 0:
            self.scroll = None
        elif total >= height or -total >= height:
            self.scroll = None
            self.rows.update(range(max(top, 0), min(bottom + 1, self.lines)))
        else:
            self.scroll = Scroll(top, bottom, total)

    def _shift_rows(self, top: int, bottom: int, count: int) -> None:
        """Dirty rows inside the region move with it (those pushed out are dropped) and
        the rows it exposes become dirty; rows outside it stay as they are."""
        rows = self.rows
        inside = rows.intersection(range(top, bottom + 1))
        if inside:
            rows.difference_update(inside)
            rows.update(r - count for r in inside if top <= r - count <= bottom)
        if count > 0:
            rows.update(range(bottom - count + 1, bottom + 1))
        else:
            rows.update(range(top, top - count))

    def merge(self, later: Damage) -> None:
        """Fold ``later`` (damage that happened after this one) into this one."""
        if later.scroll is not None:
            s = later.scroll
            self.scrolled(s.top, s.bottom, s.count)
        self.rows.update(later.rows)

    def copy(self) -> Damage:
        d = Damage(self.lines)
        d.rows = set(self.rows)
        d.scroll = self.scroll
        return d

    def bands(self) -> Iterator[tuple[int, int]]:
        """Dirty rows as (first_row, row_count) runs, top to bottom."""
        start = prev = None
        for r in sorted(self.rows):
            if start is None:
                start = prev = r
            elif r == prev + 1:  # type: ignore[operator]
                prev = r
            else:
                yield start, prev - start + 1  # type: ignore[operator]
                start = prev = r
        if start is not None:
            yield start, prev - start + 1  # type: ignore[operator]
