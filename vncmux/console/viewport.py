"""One viewer's own picture of the console: scrolled back, or showing its selection.

Most of the time a viewer sees the shared framebuffer (``display``) and costs nothing
here.  A viewer that scrolled back into the scrollback, or that selected text (shown in
inverse video to it alone), needs a picture of its own: a ``Viewport`` renders one with a
renderer of its own, from scrollback lines and screen rows, and keeps it current by
comparing each row with what it drew last, so the viewer is sent only rows that changed
for *it* (output that merely pushes lines into the scrollback changes nothing in a view
anchored on older lines).

The view is anchored on an absolute line number (see ``scrollback``): new output does not
move it; the offset from the live screen grows instead.  When the anchored line is
dropped from a full scrollback the view shows the oldest line still kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from vncmux.console.cells import DEFAULT_CELL, Cell
from vncmux.console.damage import Damage
from vncmux.console.render import TerminalView
from vncmux.console.scrollback import Scrollback
from vncmux.console.selection import Selection


class ScreenSource(TerminalView, Protocol):
    """What a viewport reads of the terminal (``vncmux.console.terminal.Terminal``): what
    the renderer reads, whether the alternate screen is shown, and rows of ``Cell``."""

    @property
    def alternate_screen(self) -> bool: ...
    def line(self, y: int) -> Sequence[Cell]: ...


class Viewport:
    """A view of ``terminal`` possibly scrolled back into ``scrollback``, with a selection.

    Promises: ``offset`` is 0 (live) or the number of lines the view's top is above the
    screen's, at most the lines kept; while the alternate screen is shown the offset is 0
    (it has no scrollback, as in xterm); ``own`` is True while the view differs from the
    shared picture (scrolled back or a selection shown); ``update`` leaves ``image``
    equal to the view and marks in the given damage every row that changed since the
    previous ``update`` (all of them on the first).
    """

    def __init__(
        self,
        terminal: ScreenSource,
        scrollback: Scrollback | None,
        make_renderer: Callable[[int, int], Any],
    ) -> None:
        self.terminal = terminal
        self.scrollback = scrollback
        self._make_renderer = make_renderer
        self._anchor: int | None = None  # absolute line at the top while scrolled back
        self.selection: Selection | None = None
        self._renderer: Any = None
        self._shown: list[Sequence[Cell]] = []
        self._rows: list[Sequence[Cell]] = []
        self._top = 0

    # -- where the view is --------------------------------------------------------------

    @property
    def live_top(self) -> int:
        """The absolute number of the screen's first row."""
        return self.scrollback.total if self.scrollback is not None else 0

    @property
    def top(self) -> int:
        """The absolute number of the view's first row."""
        live = self.live_top
        if self._anchor is None or self.scrollback is None or self.terminal.alternate_screen:
            return live
        return min(live, max(self._anchor, self.scrollback.first))

    @property
    def offset(self) -> int:
        """How many lines the view is scrolled back (0: live)."""
        return self.live_top - self.top

    @property
    def own(self) -> bool:
        """True while this view differs from the shared picture."""
        return self.offset > 0 or bool(self.selection)

    @property
    def active(self) -> bool:
        """True while the viewport holds a picture of its own (``start``ed)."""
        return self._renderer is not None

    def scroll(self, lines: int) -> bool:
        """Move the view ``lines`` back (negative: towards the live screen), within what
        the scrollback holds; True when it moved.  Nothing moves on the alternate screen."""
        if self.scrollback is None or self.terminal.alternate_screen:
            return self.bottom()
        offset = min(max(0, self.offset + lines), len(self.scrollback))
        if offset == self.offset:
            return False
        self._anchor = None if offset == 0 else self.live_top - offset
        return True

    def bottom(self) -> bool:
        """Back to the live screen; True when the view was scrolled back."""
        moved = self.offset > 0
        self._anchor = None
        return moved

    def view_line(self, y: int) -> int:
        """The absolute line number shown on view row ``y``."""
        return self.top + y

    def cells_of(self, line: int) -> Sequence[Cell]:
        """Absolute line ``line`` as ``cols`` cells: from the scrollback or the screen."""
        term = self.terminal
        live = self.live_top
        if line >= live:
            y = line - live
            return term.line(y) if y < term.rows else [DEFAULT_CELL] * term.cols
        if self.scrollback is None:
            return [DEFAULT_CELL] * term.cols
        return self.scrollback.line(line, term.cols)

    # -- the picture -----------------------------------------------------------------------

    def start(self) -> None:
        """Take a renderer of our own and draw the whole view."""
        term = self.terminal
        self._renderer = self._make_renderer(term.cols, term.rows)
        self._shown = []
        self.update(Damage(term.rows))

    def stop(self) -> None:
        """Drop the picture (the viewer sees the shared one again) and its memory."""
        self._renderer = None
        self._shown = []
        self._rows = []

    def crop(self, box: tuple[int, int, int, int]) -> Any:
        """``box`` of this view's picture (a new image: never shared with other viewers)."""
        return self._renderer.image.crop(box)

    def update(self, damage: Damage) -> None:
        """Redraw the rows whose content changed since the last update and mark them (and
        the rows the cursor left or entered) in ``damage``."""
        term = self.terminal
        rows, cols = term.rows, term.cols
        self._top = top = self.top
        selection = self.selection
        view: list[Sequence[Cell]] = []
        for y in range(rows):
            cells = self.cells_of(top + y)
            span = selection.columns(top + y, cols) if selection else None
            if span is not None:
                cells = list(cells)
                for x in range(span[0], span[1]):
                    cells[x] = cells[x]._replace(reverse=not cells[x].reverse)
            view.append(cells)
        shown = self._shown
        mine = Damage(rows)
        if len(shown) != rows:
            mine.mark_all()
        else:
            mine.mark(y for y in range(rows) if shown[y] != view[y])
        self._rows = view
        self._renderer.render(self, mine)  # adds the rows the cursor moved between
        self._shown = view
        damage.mark(mine.rows)

    # -- what the renderer reads (``render.TerminalView``) ---------------------------------

    @property
    def cols(self) -> int:
        return self.terminal.cols

    @property
    def rows(self) -> int:
        return self.terminal.rows

    @property
    def cursor(self) -> tuple[int, int]:
        x, y = self.terminal.cursor
        return x, y + self.live_top - self._top

    @property
    def cursor_visible(self) -> bool:
        return self.terminal.cursor_visible and self.cursor[1] < self.terminal.rows

    @property
    def reverse_screen(self) -> bool:
        return self.terminal.reverse_screen

    def line(self, y: int) -> Sequence[Cell]:
        return self._rows[y]
