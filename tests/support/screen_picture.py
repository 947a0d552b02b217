"""What a viewer sees of a Terminal, as comparable rows, and how a viewer holding an old
picture catches up through the damage alone: the check that damage is exact."""

from __future__ import annotations

from collections.abc import Sequence

from vncmux.console.damage import Damage
from vncmux.console.terminal import Terminal


def picture(t: Terminal) -> list[tuple[object, ...]]:
    """What a viewer sees: the lines plus the cursor when it is visible."""
    rows: list[tuple[object, ...]] = [tuple(t.line(y)) for y in range(t.rows)]
    if t.cursor_visible:
        x, y = t.cursor
        row = list(rows[y])
        row[x] = ("CURSOR", row[x])
        rows[y] = tuple(row)
    return rows


def catch_up(
    old: Sequence[tuple[object, ...]], new: Sequence[tuple[object, ...]], d: Damage
) -> list[tuple[object, ...]]:
    """The picture a viewer that had ``old`` ends with when it redraws only what ``d`` says
    (the scroll first, from ``old``, then the damaged rows from ``new``)."""
    pic = list(old)
    if d.scroll is not None:
        src, n = d.scroll.source_rows()
        dest = d.scroll.dest_top()
        pic[dest : dest + n] = old[src : src + n]
    for r in d.rows:
        pic[r] = new[r]
    return pic
