"""A display on fakes: a terminal that only hands out damage and a renderer that records
what it was asked to draw, put together by ``make_display`` on the clock the test
advances (its viewers: ``fakes.RecordingViewer``)."""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image
from twisted.internet.interfaces import IReactorTime

from vncmux.console.damage import Damage
from vncmux.console.display import Display


class FakeTerminal:
    """What the display reads of a terminal: its size, title, the synchronized update open
    (0: none), and damage (``pending``, which the test marks and ``take_damage`` hands
    over)."""

    def __init__(self, cols: int = 4, rows: int = 3) -> None:
        self.cols, self.rows = cols, rows
        self.title = ""
        self.open_update = 0
        self.pending = Damage(rows)

    def take_damage(self) -> Damage:
        d, self.pending = self.pending, Damage(self.rows)
        return d

    def resize(self, cols: int, rows: int) -> None:
        self.cols, self.rows = cols, rows
        self.pending = Damage(rows)


class FakeRenderer:
    """A renderer that draws nothing: it records the damage of each ``render`` and counts
    full renders, with an image of the right size for the display's crops."""

    def __init__(self, cols: int = 4, rows: int = 3, cell: tuple[int, int] = (2, 3)) -> None:
        self.cell_width, self.cell_height = cell
        self.rendered: list[Damage] = []
        self.full = 0
        self.resize(cols, rows)

    def render(self, term: FakeTerminal, damage: Damage) -> None:
        self.rendered.append(damage.copy())

    def render_all(self, term: FakeTerminal) -> None:
        self.full += 1

    def resize(self, cols: int, rows: int) -> None:
        self.width, self.height = cols * self.cell_width, rows * self.cell_height
        self.image = Image.new("RGB", (self.width, self.height))

    def row_box(self, first_row: int, count: int) -> tuple[int, int, int, int]:
        return (0, first_row * self.cell_height, self.width, count * self.cell_height)


def make_display(
    clock: IReactorTime,
    timer: Callable[[], float] | None = None,
    renderer: FakeRenderer | None = None,
) -> tuple[Display, FakeTerminal, FakeRenderer]:
    """A display on ``clock`` over a fake terminal the size of ``renderer`` (a fresh
    4x3-cell one by default); ``timer``, when given, is the display's wall clock."""
    rend = renderer or FakeRenderer()
    term = FakeTerminal(rend.width // rend.cell_width, rend.height // rend.cell_height)
    extra = {"timer": timer} if timer is not None else {}
    display = Display(term, rend, clock, default_name="vncmux: test", **extra)
    return display, term, rend
