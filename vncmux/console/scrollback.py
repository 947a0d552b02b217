"""The console's scrollback: rows that left the top of the main screen, bounded in count.

Lines are numbered absolutely: the first row ever scrolled off is line 0, and screen row
``r`` is line ``total + r``.  A viewer scrolled back, or a selection, holds absolute line
numbers, so it stays on the same text while output keeps pushing rows into the buffer;
only when the buffer drops a line (it keeps the newest ``limit``) does the text under an
old number go away (``first`` says which lines are still here).

Memory: a kept line is a tuple of the row's cells, and cells that look alike are one
object (the terminal's fast path shares them already; rows it did not draw are made to
share here), so a line costs about a pointer a column: 10,000 lines of 80 columns take
some 9 MB.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from vncmux.console.cells import DEFAULT_CELL, Cell
from vncmux.console.textrow import TextRow

#: The default number of lines kept (``--scrollback``).
DEFAULT_LINES = 10_000

Row = tuple[Cell, ...] | TextRow

#: Most distinct cells remembered for sharing (the table is emptied when full).
MAX_SHARED_CELLS = 4096


class _SharedCells(dict[Cell, Cell]):
    """Equal cells as one object: looking a cell up gives the first equal one seen."""

    def __init__(self) -> None:
        super().__init__({DEFAULT_CELL: DEFAULT_CELL})

    def __missing__(self, cell: Cell) -> Cell:
        if len(self) >= MAX_SHARED_CELLS:
            self.clear()
            self[DEFAULT_CELL] = DEFAULT_CELL
        self[cell] = cell
        return cell


class Scrollback:
    """The newest ``limit`` lines scrolled off the top, oldest first.

    Promises: never more than ``limit`` lines held; ``total`` only grows (the number of
    lines ever added, which is also the absolute number of screen row 0); ``line(n)``
    gives exactly ``cols`` cells for any kept line, padded with blanks or cut when the
    console's width changed since the line was kept.
    """

    def __init__(self, limit: int = DEFAULT_LINES) -> None:
        if limit < 1:
            raise ValueError("a scrollback keeps at least one line (no scrollback: None)")
        self.limit = limit
        self._lines: deque[Row] = deque(maxlen=limit)
        self._shared = _SharedCells()
        self.total = 0

    def __len__(self) -> int:
        return len(self._lines)

    @property
    def first(self) -> int:
        """The absolute number of the oldest line still kept (``total`` when empty)."""
        return self.total - len(self._lines)

    def add(self, rows: Sequence[Sequence[Cell]]) -> None:
        """Keep ``rows`` (oldest first), dropping the oldest lines past ``limit``."""
        self._lines.extend(map(self._compact, rows))
        self.total += len(rows)

    def _compact(self, row: Sequence[Cell]) -> Row:
        """``row`` as a tuple whose cells are shared with equal ones kept before.  The
        fast path hands out shared cells already: when the row's first written cell is
        one seen before, the row is kept as it is (the cheapest way, under a microsecond).
        Rows drawn cell by cell (the slow path) are made to share here; kept as they
        come, they would cost a whole object per cell, some 10 KB a line."""
        if isinstance(row, TextRow):
            return row  # cells made only when a viewer scrolls back to it
        for cell in row:
            if cell is not DEFAULT_CELL:
                break
        else:
            return tuple(row)  # blank
        if self._shared.get(cell) is cell:
            return tuple(row)
        return tuple(map(self._shared.__getitem__, row))

    def line(self, number: int, cols: int) -> Sequence[Cell]:
        """Absolute line ``number`` as exactly ``cols`` cells; blanks if no longer kept."""
        index = number - self.first
        if not 0 <= index < len(self._lines):
            return [DEFAULT_CELL] * cols
        row = self._lines[index]
        if len(row) >= cols:
            cells = list(row[:cols])
            if cols and cells[-1].data and cols < len(row) and row[cols].data == "":
                cells[-1] = DEFAULT_CELL  # half a wide character: never drawn alone
            return cells
        return [*row, *([DEFAULT_CELL] * (cols - len(row)))]
