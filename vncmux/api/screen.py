"""The console's screen as JSON and as plain text, for ``GET /screen``.

Pure: it reads what a terminal exposes (rows of cells, cursor, title, modes) and returns
plain data.  Text rows are the console's own (``Console.text``): a wide character once,
combining marks with their base, trailing blanks removed.  With ``attrs`` each row is also
given as *spans*: runs of cells that look alike, each with the column it starts at, how many
columns it covers, its text, its colours and the attributes that are set — enough to draw
the screen again without a terminal emulator.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: The cell attributes reported in a span when set (``Cell`` field names).
ATTRIBUTES = ("bold", "faint", "italics", "underscore", "strikethrough", "reverse", "blink")


def _look(cell: Any) -> tuple[Any, ...]:
    return (cell.fg, cell.bg) + tuple(bool(getattr(cell, a, False)) for a in ATTRIBUTES)


def row_spans(cells: Sequence[Any]) -> list[dict[str, Any]]:
    """One row of cells as spans of identical look: ``{"col", "width", "text", "fg", "bg"}``
    plus each attribute of ``ATTRIBUTES`` that is set, as ``true``.  The right half of a
    wide character (``data == ''``) stays in its left half's span, so ``width`` counts
    columns while ``text`` holds characters.  Colours are ``"default"``, one of the 16
    names (``"red"``, ``"brightblue"``...) or six hex digits."""
    spans: list[dict[str, Any]] = []
    look: tuple[Any, ...] | None = None
    for col, cell in enumerate(cells):
        if cell.data == "" and spans:
            spans[-1]["width"] += 1
            continue
        this = _look(cell)
        if this != look:
            look = this
            span: dict[str, Any] = {"col": col, "width": 0, "text": "", "fg": cell.fg}
            span["bg"] = cell.bg
            for name, on in zip(ATTRIBUTES, this[2:]):
                if on:
                    span[name] = True
            spans.append(span)
        spans[-1]["width"] += 1
        spans[-1]["text"] += cell.data or " "
    return spans


def screen_state(console: Any, offset: int | None, attrs: bool = False) -> dict[str, Any]:
    """Everything ``GET /screen`` answers: size, rows of text, cursor, title, the modes a
    script cares about, the banner shown while the device is down, and ``offset``, the
    output offset the screen reflects (None without an output history)."""
    term = console.terminal
    col, row = term.cursor
    modes = term.modes
    state: dict[str, Any] = {
        "cols": console.cols,
        "rows": console.rows,
        "lines": console.text(),
        "cursor": {"row": row, "col": col, "visible": bool(term.cursor_visible)},
        "title": term.title,
        "modes": {
            "alternate_screen": bool(term.alternate_screen),
            "application_cursor": bool(modes.app_cursor),
            "application_keypad": bool(modes.app_keypad),
            "bracketed_paste": bool(modes.bracketed_paste),
            "mouse_tracking": int(modes.mouse_tracking),
            "reverse_video": bool(term.reverse_screen),
        },
        "device_banner": term.status,
        "status_line": console.display.status_text,  # None unless --status-line
        "offset": offset,
    }
    if attrs:
        state["spans"] = [row_spans(term.line(y)) for y in range(console.rows)]
    return state


def screen_text(lines: Sequence[str]) -> str:
    """The screen as plain text: one line per row, each ended by a newline."""
    return "".join(line + "\n" for line in lines)


def match_position(text: str, index: int) -> tuple[int, int]:
    """(row, column) of character ``index`` of the screen text joined with newlines; the
    column counts characters of that row's text."""
    row = text.count("\n", 0, index)
    return row, index - (text.rfind("\n", 0, index) + 1)
