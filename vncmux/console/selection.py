"""Text selection on a character screen, as xterm does it (pure: no I/O, no pixels).

A selection runs between two positions (absolute line, column), so it stays on its text
while output scrolls the screen (see ``scrollback``).  It grows by characters (a drag),
by words (a double click) or by lines (a triple click).  ``selected_text`` turns it into
what goes to the viewer's clipboard: each line's trailing blanks removed, lines joined
with newlines, a wide character once.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from vncmux.console.render import CellView

Pos = tuple[int, int]  # (absolute line, column)
CellsOf = Callable[[int], Sequence[CellView]]

#: Characters that count as part of a word besides letters and digits: a double click on
#: a path, a URL or an e-mail address takes it whole, as xterm's default classes nearly do.
WORD_PUNCTUATION = frozenset("_-.,~/:@+%#?=&")
#: Clicks closer together than this (seconds), on the same cell, count as one double or
#: triple click.
MULTI_CLICK_TIME = 0.4


class Unit(enum.Enum):
    """What a selection grows by."""

    CHAR = 1
    WORD = 2
    LINE = 3


def _kind(char: str) -> int:
    """A character's class for word selection: 0 blank, 1 word, 2 anything else (each
    such character is a word of its own)."""
    if not char or char.isspace():
        return 0
    base = char[0]
    return 1 if base.isalnum() or base in WORD_PUNCTUATION else 2


def word_span(cells: Sequence[CellView], col: int) -> tuple[int, int]:
    """Columns [start, end) of the word under ``col``: a run of word characters, a run of
    blanks, or one other character.  The right half of a wide character belongs to it."""
    n = len(cells)
    if n == 0:
        return 0, 0
    col = min(max(0, col), n - 1)
    while col > 0 and cells[col].data == "":
        col -= 1  # the right half of a wide character: take the character

    def kind(x: int) -> int:
        data = cells[x].data
        if data == "" and x > 0:
            return _kind(cells[x - 1].data)
        return _kind(data)

    k = kind(col)
    start, end = col, col + 1
    while end < n and cells[end].data == "":
        end += 1
    if k == 2:
        return start, end
    while start > 0 and kind(start - 1) == k:
        start -= 1
    while end < n and kind(end) == k:
        end += 1
    return start, end


@dataclass(frozen=True)
class Selection:
    """Selected cells from ``start`` to ``end`` (``end`` exclusive), in reading order."""

    start: Pos
    end: Pos

    def __bool__(self) -> bool:
        return self.start < self.end

    def columns(self, line: int, cols: int) -> tuple[int, int] | None:
        """Columns [first, last) selected on ``line``; None when none are."""
        (l1, c1), (l2, c2) = self.start, self.end
        if not self or line < l1 or line > l2:
            return None
        first = c1 if line == l1 else 0
        last = c2 if line == l2 else cols
        first, last = max(0, first), min(cols, last)
        return (first, last) if first < last else None


def span(anchor: Pos, head: Pos, unit: Unit, cells_of: CellsOf, cols: int) -> Selection:
    """The selection from ``anchor`` (where the button went down) to ``head`` (where the
    pointer is now), grown to whole words or lines as ``unit`` says; both ends' cells are
    included."""
    first, last = (anchor, head) if anchor <= head else (head, anchor)
    if unit is Unit.LINE:
        return Selection((first[0], 0), (last[0], cols))
    if unit is Unit.WORD:
        start = word_span(cells_of(first[0]), first[1])[0]
        end = word_span(cells_of(last[0]), last[1])[1]
        return Selection((first[0], start), (last[0], end))
    end_col = last[1] + 1
    cells = cells_of(last[0])
    while end_col < len(cells) and cells[end_col].data == "":
        end_col += 1  # a wide character is taken whole
    return Selection(first, (last[0], end_col))


def selected_text(selection: Selection, cells_of: CellsOf, cols: int) -> str:
    """What ``selection`` holds as text: trailing blanks of each line removed (a line
    selected to its end is not padded), lines joined by newlines."""
    if not selection:
        return ""
    out = []
    for line in range(selection.start[0], selection.end[0] + 1):
        found = selection.columns(line, cols)
        if found is None:
            out.append("")
            continue
        cells = cells_of(line)
        out.append("".join(cell.data for cell in cells[found[0] : found[1]]).rstrip())
    return "\n".join(out)


class ClickCounter:
    """Counts a run of clicks on one cell: 1, 2 (a word), 3 (a line), then 1 again."""

    def __init__(self, interval: float = MULTI_CLICK_TIME) -> None:
        self.interval = interval
        self._last: tuple[float, Pos] | None = None
        self._count = 0

    def click(self, pos: Pos, now: float) -> int:
        """A button press at ``pos`` at time ``now``: which click of a run it is."""
        last = self._last
        if last is not None and last[1] == pos and 0 <= now - last[0] <= self.interval:
            self._count = self._count % 3 + 1
        else:
            self._count = 1
        self._last = (now, pos)
        return self._count

    @staticmethod
    def unit(count: int) -> Unit:
        return (Unit.CHAR, Unit.WORD, Unit.LINE)[min(max(count, 1), 3) - 1]


class Selector:
    """One viewer's left button as xterm reads it: a press starts a selection (one click:
    by characters, once dragged; two: the word; three: the line), a drag extends it from
    where the press was, a release ends it (``active`` False)."""

    def __init__(self, interval: float = MULTI_CLICK_TIME) -> None:
        self.clicks = ClickCounter(interval)
        self.active = False
        self._anchor: Pos = (0, 0)
        self._unit = Unit.CHAR

    def press(self, pos: Pos, now: float, cells_of: CellsOf, cols: int) -> Selection | None:
        """The button went down at ``pos``: the new selection (None: a plain click, which
        drops the old one)."""
        self._unit = ClickCounter.unit(self.clicks.click(pos, now))
        self._anchor = pos
        self.active = True
        if self._unit is Unit.CHAR:
            return None
        return span(pos, pos, self._unit, cells_of, cols)

    def drag(
        self, pos: Pos, current: Selection | None, cells_of: CellsOf, cols: int
    ) -> Selection | None:
        """The pointer moved to ``pos`` with the button down: the selection now."""
        if pos == self._anchor and current is None:
            return None  # not dragged yet
        return span(self._anchor, pos, self._unit, cells_of, cols)
