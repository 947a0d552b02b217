"""TextRow: a scrolled-off log line kept as text, read as cells only when looked at."""

from __future__ import annotations

import pytest

from vncmux.console.cells import Cell
from vncmux.console.console import row_text
from vncmux.console.scrollback import Scrollback
from vncmux.console.textrow import TextRow

RED = Cell(" ", "red", "default")
BASE = Cell(" ", "default", "default")


class Attrs(dict[str, Cell]):
    def __missing__(self, ch: str) -> Cell:
        cell = self[ch] = RED._replace(data=ch)
        return cell


def eager(text: str, cols: int) -> list[Cell]:
    return [RED._replace(data=ch) for ch in text] + [BASE] * (cols - len(text))


def test_reads_as_the_cells_it_stands_for() -> None:
    row = TextRow("boot: ok", Attrs(), BASE, 12)
    assert len(row) == 12
    assert list(row) == eager("boot: ok", 12)
    assert row == eager("boot: ok", 12) and row == tuple(eager("boot: ok", 12))
    assert row[0].data == "b" and row[-1] is BASE and row[7].data == "k"
    assert row[2:5] == eager("boot: ok", 12)[2:5]
    with pytest.raises(IndexError):
        row[12]
    assert row != eager("boot: no", 12)


def test_text_needs_no_cells() -> None:
    attrs = Attrs()
    row = TextRow("login:   ", attrs, BASE, 20)
    assert row.plain() == "login:" == row_text(row)
    assert not attrs, "no cell was made to get the text"


def test_a_scrollback_keeps_it_as_it_is_and_pads_or_cuts_on_reading() -> None:
    sb = Scrollback(10)
    row = TextRow("abc", Attrs(), BASE, 5)
    sb.add([row])
    assert sb.line(0, 5) == eager("abc", 5)
    assert sb.line(0, 7) == eager("abc", 7)
    assert sb.line(0, 2) == eager("abc", 5)[:2]
