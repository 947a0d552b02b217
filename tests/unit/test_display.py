"""The display: render once, fold damage into every viewer, answer pulled requests."""

from __future__ import annotations

from typing import Callable

from PIL import Image
from twisted.internet.testing import Clock
from zope.interface import implementer

from vncmux.console.damage import Damage
from vncmux.console.display import Display, IViewer
from vncmux.console.modes import Modes


class FakeTerminal:
    def __init__(self, cols: int = 4, rows: int = 3) -> None:
        self.cols, self.rows = cols, rows
        self.modes = Modes()
        self.title = ""
        self.on_bell: Callable[[], None] = lambda: None
        self.on_title: Callable[[str], None] = lambda t: None
        self.pending = Damage(rows)

    def take_damage(self) -> Damage:
        d, self.pending = self.pending, Damage(self.rows)
        return d

    def resize(self, cols: int, rows: int) -> None:
        self.cols, self.rows = cols, rows
        self.pending = Damage(rows)


class FakeRenderer:
    cell_width, cell_height = 2, 3

    def __init__(self) -> None:
        self.rendered: list[Damage] = []
        self.full = 0
        self.resize(4, 3)

    def render(self, term: FakeTerminal, damage: Damage) -> None:
        self.rendered.append(damage.copy())

    def render_all(self, term: FakeTerminal) -> None:
        self.full += 1

    def resize(self, cols: int, rows: int) -> None:
        self.width, self.height = cols * 2, rows * 3
        self.image = Image.new("RGB", (self.width, self.height))

    def row_box(self, first_row: int, count: int) -> tuple[int, int, int, int]:
        return (0, first_row * 3, self.width, count * 3)


@implementer(IViewer)
class FakeViewer:
    def __init__(self) -> None:
        self.events: list[object] = []

    def updateAvailable(self) -> None:
        self.events.append("update")

    def bell(self) -> None:
        self.events.append("bell")

    def nameChanged(self, name: str) -> None:
        self.events.append(("name", name))

    def sizeChanged(self, width: int, height: int) -> None:
        self.events.append(("size", width, height))


def make() -> tuple[Display, FakeTerminal, FakeRenderer, list[bytes]]:
    term, rend, sent = FakeTerminal(), FakeRenderer(), []
    display = Display(term, rend, sent.append, Clock(), default_name="vncmux: test")
    return display, term, rend, sent


def test_new_viewer_starts_all_dirty_and_is_answered_at_once() -> None:
    display, term, rend, _ = make()
    viewer = FakeViewer()
    acc = display.attach(viewer)
    assert acc.rows == {0, 1, 2}
    display.requestUpdate(viewer)
    assert viewer.events == ["update"]


def test_incremental_request_waits_for_damage_then_fires_once() -> None:
    display, term, rend, _ = make()
    viewer = FakeViewer()
    acc = display.attach(viewer)
    acc.clear()
    display.requestUpdate(viewer)
    assert viewer.events == []
    term.pending.mark([1])
    display.changed()
    assert viewer.events == ["update"]
    assert acc.rows == {1}
    term.pending.mark([2])
    display.changed()
    assert viewer.events == ["update"], "only one answer per request"
    display.requestUpdate(viewer)
    assert viewer.events == ["update", "update"]
    assert acc.rows == {1, 2}, "damage accumulates until the viewer takes it"


def test_nothing_is_rendered_while_nobody_waits() -> None:
    display, term, rend, _ = make()
    viewer = FakeViewer()
    display.attach(viewer).clear()
    term.pending.mark([0])
    display.changed()
    assert rend.rendered == []
    display.requestUpdate(viewer)
    assert len(rend.rendered) == 1 and rend.rendered[0].rows == {0}
    assert viewer.events == ["update"]


def test_damage_is_rendered_once_for_many_viewers() -> None:
    display, term, rend, _ = make()
    viewers = [FakeViewer() for _ in range(5)]
    accs = [display.attach(v) for v in viewers]
    for acc in accs:
        acc.clear()
    for v in viewers:
        display.requestUpdate(v)
    term.pending.scrolled(0, 2, 1)
    display.changed()
    assert len(rend.rendered) == 1
    for v, acc in zip(viewers, accs):
        assert v.events == ["update"]
        assert acc.scroll is not None and acc.rows == {2}


def test_detached_viewer_hears_nothing() -> None:
    display, term, rend, _ = make()
    viewer = FakeViewer()
    display.attach(viewer).clear()
    display.requestUpdate(viewer)
    display.detach(viewer)
    term.pending.mark([0])
    term.on_bell()
    display.changed()
    assert viewer.events == []


def test_bell_title_and_input() -> None:
    display, term, rend, sent = make()
    viewer = FakeViewer()
    display.attach(viewer)
    assert display.name == "vncmux: test"
    term.title = "vim"
    term.on_title("vim")
    term.on_bell()
    display.input(b"ls\r", viewer)
    assert viewer.events == [("name", "vim"), "bell"]
    assert sent == [b"ls\r"]


def test_resize_keeps_the_accumulator_object_and_marks_it_all() -> None:
    display, term, rend, _ = make()
    viewer = FakeViewer()
    acc = display.attach(viewer)
    acc.clear()
    display.resize(6, 5)
    assert (display.cols, display.rows, display.width, display.height) == (6, 5, 12, 15)
    assert acc.lines == 5 and acc.rows == set(range(5))
    assert viewer.events == [("size", 12, 15)]
