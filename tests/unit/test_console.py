"""The Console: terminal events fanned out to the device, viewers and listeners; one viewer's
session (keys, paste policy, mouse cells, view-only); resize, text, start and stop."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.logger import capturedLogs, formatEvent
from zope.interface import implementer
from zope.interface.verify import verifyObject

from tests.support.viewer_setup import Setup
from vncmux.console.console import ConsoleService, row_text
from vncmux.console.interfaces import (
    IConsole,
    IConsoleListener,
    ITerminalEvents,
    IViewerSession,
)
from vncmux.console.keys import XK_Insert, XK_Shift_L

SHIFT_INSERT = [(XK_Shift_L, True), (XK_Insert, True), (XK_Insert, False), (XK_Shift_L, False)]


@implementer(IConsoleListener)
class Listener:
    def __init__(self) -> None:
        self.events: list[Any] = []
        self.lines: list[str] = []

    def changed(self) -> None:
        self.events.append("changed")

    def bell(self) -> None:
        self.events.append("bell")

    def titleChanged(self, title: str) -> None:
        self.events.append(("title", title))

    def scrolledOff(self, lines: list[str]) -> None:
        self.lines.extend(lines)


def test_the_console_and_its_sessions_provide_their_interfaces() -> None:
    s = Setup()
    assert verifyObject(IConsole, s.console)
    assert verifyObject(ITerminalEvents, s.console)
    _viewer, session = s.attach()
    assert verifyObject(IViewerSession, session)
    assert verifyObject(IConsoleListener, Listener())


def test_geometry_name_and_text() -> None:
    s = Setup(cols=12, rows=3)
    c = s.console
    assert (c.cols, c.rows) == (12, 3)
    assert (c.width, c.height) == (12 * c.display.cell_width, 3 * c.display.cell_height)
    assert c.row_box(1, 2) == (0, c.display.cell_height, c.width, 2 * c.display.cell_height)
    assert c.name == "vncmux: t"
    s.feed("héllo 世界\r\n\x1b]2;vim\x07x\u0301!".encode())
    assert c.text() == ["héllo 世界", "x\u0301!", ""], "wide once, combining with its base"
    assert c.name == "vim"
    box = (0, 0, c.width, c.display.cell_height)
    assert c.crop(box) is c.crop(box) and c.crop(box).size == (c.width, c.display.cell_height)


def test_terminal_replies_reach_the_device() -> None:
    s = Setup()
    s.feed(b"\x1b[2;7H\x1b[6n")
    assert s.typed() == b"\x1b[2;7R"


def test_requests_are_answered_and_the_accumulator_is_the_sessions() -> None:
    s = Setup()
    viewer, session = s.attach()
    assert session.damage.rows == set(range(5)), "a new viewer has seen nothing"
    session.requestUpdate()
    assert viewer.events == ["update"]
    session.damage.clear()
    session.requestUpdate()
    s.feed(b"x")
    assert viewer.events == ["update", "update"]
    assert 0 in session.damage.rows
    session.damage.clear()
    session.requestUpdate()
    session.cancelRequest()
    s.feed(b"y")
    s.clock.advance(1)
    assert viewer.events == ["update", "update"], "a cancelled request is not answered"


def test_keys_are_typed_through_the_sessions_own_key_mapper() -> None:
    s = Setup()
    _v1, one = s.attach()
    _v2, two = s.attach()
    one.key(0xFFE3, True)  # Control_L held on the first viewer only
    one.key(ord("c"), True)
    two.key(ord("c"), True)
    assert s.typed() == b"\x03c"
    s.feed(b"\x1b[?1h")  # application cursor keys
    two.key(0xFF52, True)  # Up
    assert s.typed() == b"\x1bOA"


def test_a_view_only_session_types_nothing_and_is_logged_once() -> None:
    s = Setup()
    s.feed(b"\x1b[?1000h\x1b[?1006h")
    viewer, session = s.attach(view_only=True)
    assert session.view_only
    with capturedLogs() as events:
        session.key(ord("a"), True)
        session.clipboard("rm -rf /")
        for keysym, down in SHIFT_INSERT:
            session.key(keysym, down)
        session.pointer(1, 3, 3)
        session.pointer(2, 3, 3)
    assert s.typed() == b""
    lines = [formatEvent(e) for e in events]
    assert lines == [
        "VNC viewer 10.0.0.9:4242 is view-only: its key events (and all later input) ignored"
    ]
    session.requestUpdate()
    assert viewer.events == ["update"], "it still watches"


def test_the_clipboard_is_typed_only_on_shift_insert_or_a_middle_click() -> None:
    s = Setup()
    _viewer, session = s.attach()
    session.clipboard("ls -l\n")
    assert s.typed() == b"", "never typed on arrival"
    session.key(XK_Insert, True)
    session.key(XK_Insert, False)
    typed = s.typed()
    assert typed and b"ls" not in typed, "plain Insert is a key"
    for keysym, down in SHIFT_INSERT:
        session.key(keysym, down)
    assert s.typed() == b"ls -l\r"
    session.pointer(2, 5, 5)  # middle button down: paste
    session.pointer(2, 9, 5)  # still held: no second paste
    session.pointer(0, 5, 5)
    session.pointer(1, 5, 5)  # left button: nothing (no mouse tracking)
    assert s.typed() == b"ls -l\r"
    session.clipboard("héllo ☃\r\nx")
    session.pointer(2, 5, 5)
    assert s.typed() == "héllo ☃\rx".encode(), "in the console's encoding, CR line ends"
    session.pointer(0, 5, 5)
    s.feed(b"\x1b[?2004h")
    session.clipboard("echo\x1b[201~")
    session.pointer(2, 5, 5)
    assert s.typed() == b"\x1b[200~echo[201~\x1b[201~", "bracketed, the end marker defused"


def test_each_session_has_its_own_paste_buffer() -> None:
    s = Setup()
    _v1, one = s.attach()
    _v2, two = s.attach()
    one.clipboard("mine")
    two.pointer(2, 0, 0)
    assert s.typed() == b"", "the other viewer's clipboard is not this one's"
    one.pointer(2, 0, 0)
    assert s.typed() == b"mine"


def test_pointer_events_become_mouse_reports_once_per_cell() -> None:
    s = Setup(cols=20, rows=5)
    c = s.console
    cw, ch = c.display.cell_width, c.display.cell_height
    _viewer, session = s.attach()
    session.clipboard("never")
    s.feed(b"\x1b[?1003h\x1b[?1006h")  # any-event tracking, SGR reports
    session.pointer(0, 2 * cw + 1, 1 * ch + 1)
    assert s.typed() == b"\x1b[<35;3;2M", "motion into cell (2, 1)"
    session.pointer(0, 2 * cw + cw - 1, 1 * ch + ch - 1)
    assert s.typed() == b"", "still the same cell: no report"
    session.pointer(2, 2 * cw + cw - 1, 1 * ch)
    assert s.typed() == b"\x1b[<1;3;2M", "a middle press is reported, not a paste"
    session.pointer(2, 5 * cw, 1 * ch)
    session.pointer(0, 5 * cw, 1 * ch)
    assert s.typed() == b"\x1b[<33;6;2M\x1b[<1;6;2m"
    session.pointer(0, 10_000, 10_000)
    assert s.typed() == b"\x1b[<35;20;5M", "clamped to the last cell"


def test_bells_are_coalesced_per_frame_interval_for_viewers_not_listeners() -> None:
    s = Setup()
    viewers = [s.attach()[0] for _ in range(10)]
    listener = Listener()
    s.console.subscribe(listener)
    s.feed(b"\x07" * 100_000)
    assert all(v.events.count("bell") == 1 for v in viewers)
    s.clock.advance(1)
    assert all(v.events.count("bell") <= 2 for v in viewers)
    assert listener.events.count("bell") >= 1


def test_listeners_hear_changes_titles_and_scrolled_off_lines_as_text() -> None:
    s = Setup(cols=20, rows=5)
    listener = Listener()
    s.console.subscribe(listener)
    s.feed(b"".join(b"line %d\r\n" % i for i in range(12)))
    assert listener.lines == [f"line {i}" for i in range(8)]
    assert "changed" in listener.events
    s.feed(b"\x1b]2;top\x07")
    assert ("title", "top") in listener.events
    s.console.unsubscribe(listener)
    listener.events.clear()
    s.feed(b"more\r\n\x07")
    assert listener.events == [] and listener.lines[-1] == "line 7"


def test_a_failing_listener_does_not_stop_the_others_or_the_feed() -> None:
    s = Setup()

    class Broken(Listener):
        def changed(self) -> None:
            raise RuntimeError("boom")

    good = Listener()
    s.console.subscribe(Broken())
    s.console.subscribe(good)
    with capturedLogs() as events:
        s.feed(b"hello")
    assert good.events == ["changed"]
    assert s.console.text()[0] == "hello"
    assert any("boom" in str(e.get("log_failure", "")) for e in events)


def test_resize_tells_viewers_listeners_and_the_device() -> None:
    sizes: list[tuple[int, int]] = []
    s = Setup(cols=20, rows=5, on_resize=lambda cols, rows: sizes.append((cols, rows)))
    c = s.console
    s.feed(b"keep me")
    viewer, session = s.attach()
    listener = Listener()
    c.subscribe(listener)
    session.damage.clear()
    c.resize(30, 8)
    assert (c.cols, c.rows) == (30, 8)
    assert (c.width, c.height) == (30 * c.display.cell_width, 8 * c.display.cell_height)
    assert viewer.events == [("size", c.width, c.height)]
    assert session.damage.lines == 8 and session.damage.rows == set(range(8))
    assert sizes == [(30, 8)]
    assert listener.events == ["changed"]
    assert c.text()[0] == "keep me" and len(c.text()) == 8
    c.resize(30, 8)
    assert sizes == [(30, 8)], "the same size again: nothing to tell"
    with pytest.raises(ValueError):
        c.resize(0, 8)


def test_detached_sessions_do_nothing_and_are_not_counted() -> None:
    s = Setup()
    viewer, session = s.attach()
    _other, _ = s.attach()
    assert s.console.viewers == 2
    session.detach()
    session.detach()
    assert s.console.viewers == 1
    session.key(ord("a"), True)
    session.requestUpdate()
    s.feed(b"\x07")
    assert s.typed() == b"" and viewer.events == []


def test_stop_leaves_the_hub_and_drops_pending_output() -> None:
    s = Setup()
    service = ConsoleService(s.console)
    s.console.stop()  # the service starts it again
    service.startService()
    assert s.console.vc in s.hub.backends
    s.hub.deviceOutput(b"late")
    service.stopService()
    assert s.console.vc not in s.hub.backends
    assert s.clock.getDelayedCalls() == []
    assert s.console.text()[0] == ""


def test_row_text() -> None:
    class Cell:
        def __init__(self, data: str) -> None:
            self.data = data

    assert row_text([Cell("a"), Cell("世"), Cell(""), Cell(" ")]) == "a世"


def test_rows_scrolled_off_are_built_only_while_someone_listens() -> None:
    """Turning scrolled rows into cells halves the fast path's speed, so the console asks
    the terminal for them only while a listener (or a scrollback) wants them."""
    s = Setup(cols=20, rows=5, scrollback=0)
    assert s.console.terminal.report_scrolled_off is False
    listener = Listener()
    s.console.subscribe(listener)
    assert s.console.terminal.report_scrolled_off is True
    s.feed(b"".join(b"row %d\r\n" % i for i in range(7)))
    assert listener.lines == ["row 0", "row 1", "row 2"]
    s.console.unsubscribe(listener)
    assert s.console.terminal.report_scrolled_off is False


def test_listeners_that_do_not_want_scrolled_off_rows_cost_no_text() -> None:
    """A listener declaring ``wantsScrolledOff = False`` (the API's screen waiters) is not
    told of scrolled rows, and without a scrollback the terminal does not build them."""
    s = Setup(cols=20, rows=5, scrollback=0)
    quiet = Listener()
    quiet.wantsScrolledOff = False  # type: ignore[attr-defined]
    s.console.subscribe(quiet)
    assert s.console.terminal.report_scrolled_off is False
    s.feed(b"".join(b"row %d\r\n" % i for i in range(7)))
    assert quiet.lines == [] and "changed" in quiet.events
    keen = Listener()
    s.console.subscribe(keen)
    assert s.console.terminal.report_scrolled_off is True
    s.feed(b"".join(b"more %d\r\n" % i for i in range(5)))
    assert quiet.lines == [] and keen.lines[:2] == ["row 3", "row 4"]


def test_pixel_size_reports_give_the_rendered_cell() -> None:
    """XTWINOPS 16 (the cell in pixels) answers with what the viewers see, not a guess."""
    s = Setup(cols=20, rows=5)
    w, h = s.console.display.cell_width, s.console.display.cell_height
    s.feed(b"\x1b[16t")
    assert s.typed() == b"\x1b[6;%d;%dt" % (h, w)
