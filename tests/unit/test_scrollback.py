"""Scrollback: lines kept per console, each viewer scrolling back on its own (Shift+PgUp,
PgDn, the wheel), anchored against new output, back to live on typing; none on the
alternate screen."""

from __future__ import annotations

import pytest
from zope.interface.verify import verifyObject

from tests.support.viewer_setup import Setup, row_picture, same
from vncmux.console.cells import Cell
from vncmux.console.console import WHEEL_DOWN, WHEEL_UP
from vncmux.console.interfaces import IViewer, IViewerSession
from vncmux.console.keys import XK_Next, XK_Prior, XK_Shift_L
from vncmux.console.scrollback import Scrollback


def shift_key(session: object, keysym: int) -> None:
    for sym, down in ((XK_Shift_L, True), (keysym, True), (keysym, False), (XK_Shift_L, False)):
        session.key(sym, down)  # type: ignore[attr-defined]


def test_the_session_and_the_test_viewer_provide_their_interfaces() -> None:
    s = Setup()
    viewer, session = s.attach()
    assert verifyObject(IViewerSession, session)
    assert verifyObject(IViewer, viewer)
    assert verifyObject(IViewer, session), "the display knows the session as its viewer"


def test_a_scrollback_keeps_the_newest_lines_and_counts_all() -> None:
    sb = Scrollback(3)
    sb.add([[Cell(str(n)), Cell(" ")] for n in range(5)])
    assert (len(sb), sb.total, sb.first) == (3, 5, 2)
    assert [c.data for c in sb.line(4, 3)] == ["4", " ", " "], "padded to the width asked"
    assert [c.data for c in sb.line(1, 2)] == [" ", " "], "dropped: blank"
    assert sb.line(2, 1)[0].data == "2", "cut to a narrower console"
    with pytest.raises(ValueError):
        Scrollback(0)


def test_equal_cells_are_kept_as_one_object() -> None:
    """Rows drawn cell by cell hold a new object per cell; kept so, 10,000 lines would
    take some 100 MB instead of some 9."""
    sb = Scrollback(10)
    sb.add([[Cell(" "), *(Cell("x", "red") for _ in range(3))] for _ in range(4)])
    kept = [c for n in range(4) for c in sb.line(n, 4)[1:]]
    assert len(kept) == 12 and len({id(c) for c in kept}) == 1


def test_the_console_keeps_at_most_its_scrollback_lines() -> None:
    s = Setup(scrollback=50)
    s.lines(0, 500)
    sb = s.console.scrollback
    assert sb is not None
    assert len(sb) == 50 and sb.total == 496  # 4 lines still on the 5-row screen
    assert [c.data for c in sb.line(495, 8)] == list("line 495")
    assert Setup(scrollback=0).console.scrollback is None


def test_shift_pgup_shows_older_lines_to_this_viewer_only() -> None:
    s = Setup(cols=20, rows=5)
    s.lines(0, 20)  # screen: line 16..19 and the cursor's empty row
    _v1, back = s.attach()
    _v2, live = s.attach()
    shift_key(back, XK_Prior)
    assert back.offset == 4 and live.offset == 0
    assert s.typed() == b"", "the key was the viewer's, not the application's"
    for row in range(5):
        assert same(s.row_of(back, row), row_picture(f"line {12 + row}", 20))
    live.requestUpdate()  # the shared picture is drawn when a viewer asks
    assert same(s.row_of(live, 0), row_picture("line 16", 20))
    x, y, w, h = s.console.row_box(0, 1)
    assert live.crop((x, y, x + w, y + h)) is s.console.crop((x, y, x + w, y + h)), (
        "a live viewer takes the shared crop itself"
    )
    shift_key(back, XK_Prior)
    shift_key(back, XK_Prior)
    shift_key(back, XK_Prior)
    shift_key(back, XK_Prior)
    assert back.offset == 16, "no further than the scrollback holds"
    assert same(s.row_of(back, 0), row_picture("line 0", 20))
    shift_key(back, XK_Next)
    assert back.offset == 12
    for _ in range(4):
        shift_key(back, XK_Next)
    assert back.offset == 0
    assert same(s.row_of(back, 0), row_picture("line 16", 20))


def test_a_viewer_waiting_for_an_update_gets_the_scrolled_view_at_once() -> None:
    s = Setup(cols=20, rows=5)
    s.lines(0, 20)
    viewer, session = s.attach()
    session.requestUpdate()
    assert viewer.events == ["update"]
    session.damage.clear()
    session.requestUpdate()
    assert viewer.events == ["update"], "nothing new yet"
    shift_key(session, XK_Prior)
    assert viewer.events == ["update", "update"]
    assert session.damage.rows == set(range(5)) and session.damage.scroll is None


def test_new_output_does_not_yank_a_scrolled_back_viewer() -> None:
    s = Setup(cols=20, rows=5)
    s.lines(0, 20)
    viewer, session = s.attach()
    for _ in range(2):
        shift_key(session, XK_Prior)  # offset 8: the view is lines 8..12, all scrollback
    session.requestUpdate()
    session.damage.clear()
    viewer.events.clear()
    session.requestUpdate()
    s.lines(20, 30)
    s.clock.advance(1)
    assert session.offset == 18, "anchored: the offset grows with the output"
    assert same(s.row_of(session, 0), row_picture("line 8", 20))
    assert viewer.events == [] and not session.damage, "nothing changed for this view"
    shift_key(session, XK_Next)
    assert same(s.row_of(session, 0), row_picture("line 12", 20))
    assert viewer.events == ["update"]


def test_a_view_reaching_the_screen_sees_the_screen_change() -> None:
    s = Setup(cols=20, rows=5)
    s.lines(0, 20)
    viewer, session = s.attach()
    shift_key(session, XK_Prior)  # lines 12..15 from the scrollback, then screen row 0
    session.requestUpdate()
    session.damage.clear()
    viewer.events.clear()
    session.requestUpdate()
    s.feed(b"\x1b[1;1Hchanged\x1b[K\x1b[5;1H")
    s.clock.advance(1)
    assert viewer.events == ["update"]
    assert session.damage.rows == {4}, "only the row showing screen row 0"
    assert same(s.row_of(session, 4), row_picture("changed", 20))


def test_typing_brings_the_view_back_to_the_live_screen() -> None:
    s = Setup(cols=20, rows=5)
    s.lines(0, 20)
    _viewer, session = s.attach()
    shift_key(session, XK_Prior)
    session.damage.clear()
    session.key(XK_Shift_L, True)
    session.key(XK_Shift_L, False)
    assert session.offset == 4, "a modifier alone is not typing"
    session.key(ord("x"), True)
    session.key(ord("x"), False)
    assert s.typed() == b"x"
    assert session.offset == 0
    assert session.damage.rows == set(range(5))
    x, y, w, h = s.console.row_box(0, 1)
    assert session.crop((x, y, x + w, y + h)) is s.console.crop((x, y, x + w, y + h))


def test_the_wheel_scrolls_unless_the_application_tracks_the_mouse() -> None:
    s = Setup(cols=20, rows=5)
    s.lines(0, 20)
    _viewer, session = s.attach()
    px, py = s.cell_point(3, 2)
    session.pointer(WHEEL_UP, px, py)
    session.pointer(0, px, py)
    assert session.offset == 5
    session.pointer(WHEEL_UP, px, py)
    session.pointer(0, px, py)
    session.pointer(WHEEL_DOWN, px, py)
    session.pointer(0, px, py)
    assert session.offset == 5
    assert s.typed() == b""
    session.pointer(WHEEL_DOWN, px, py)
    session.pointer(0, px, py)
    assert session.offset == 0
    s.feed(b"\x1b[?1000h\x1b[?1006h")
    session.pointer(WHEEL_UP, px, py)
    session.pointer(0, px, py)
    assert session.offset == 0
    assert s.typed() == b"\x1b[<64;4;3M", "the application asked for the wheel"
    session.key(XK_Shift_L, True)
    session.pointer(WHEEL_UP, px, py)
    session.pointer(0, px, py)
    session.key(XK_Shift_L, False)
    assert session.offset == 5, "Shift overrides the application's mouse reporting"
    assert s.typed() == b""


def test_the_alternate_screen_has_no_scrollback() -> None:
    s = Setup(cols=20, rows=5)
    s.lines(0, 20)
    _viewer, session = s.attach()
    sb = s.console.scrollback
    assert sb is not None
    shift_key(session, XK_Prior)
    s.feed(b"\x1b[?1049h")  # a full-screen program starts
    s.clock.advance(1)
    session.requestUpdate()
    assert session.offset == 0, "back to the live (alternate) screen"
    total = sb.total
    s.lines(100, 120)
    assert sb.total == total, "lines scrolling on the alternate screen are not kept"
    shift_key(session, XK_Prior)
    assert session.offset == 0
    assert s.typed() == b"\x1b[5;2~", "the application gets the key"
    s.feed(b"\x1b[?1049l")
    shift_key(session, XK_Prior)
    assert session.offset == 4 and s.typed() == b""


def test_without_scrollback_shift_pgup_is_the_applications() -> None:
    s = Setup(cols=20, rows=5, scrollback=0)
    s.lines(0, 20)
    _viewer, session = s.attach()
    shift_key(session, XK_Prior)
    assert session.offset == 0
    assert s.typed() == b"\x1b[5;2~"
    assert s.console.terminal.report_scrolled_off is False, "no rows built for nobody"


def test_a_view_only_viewer_may_scroll_back_but_not_type() -> None:
    s = Setup(cols=20, rows=5)
    s.lines(0, 20)
    _viewer, session = s.attach(view_only=True)
    shift_key(session, XK_Prior)
    assert session.offset == 4
    session.key(ord("x"), True)
    assert s.typed() == b""
    assert session.offset == 4, "nothing was typed, so the view stays"


def test_a_resize_brings_every_view_back_to_live() -> None:
    s = Setup(cols=20, rows=5)
    s.lines(0, 20)
    viewer, session = s.attach()
    shift_key(session, XK_Prior)
    s.console.resize(30, 6)
    assert session.offset == 0
    assert ("size", s.console.width, s.console.height) in viewer.events
    assert session.damage.lines == 6 and session.damage.rows == set(range(6))
    x, y, w, h = s.console.row_box(5, 1)
    assert session.crop((x, y, x + w, y + h)).size == (w, h)


def test_a_detached_session_is_forgotten_by_the_display() -> None:
    s = Setup()
    _viewer, session = s.attach()
    session.detach()
    assert s.console.viewers == 0 and not s.console.display.viewers


def test_the_options_are_parsed_and_checked() -> None:
    from vncmux.config import build_config
    from vncmux.errors import ConfigError
    from vncmux.tap import Options

    config = build_config(device="/dev/ttyS0")
    assert (config.scrollback, config.osc52) == (10_000, False)
    config = build_config(device="/dev/ttyS0", scrollback="0", osc52=True)
    assert (config.scrollback, config.osc52) == (0, True)
    for bad in ("-1", "lots", "2000000"):
        with pytest.raises(ConfigError, match="--scrollback"):
            build_config(device="/dev/ttyS0", scrollback=bad)
    opts = Options()
    opts.parseOptions(["--device", "/dev/null", "--scrollback", "123", "--osc52"])
    assert opts.config is not None
    assert (opts.config.scrollback, opts.config.osc52) == (123, True)
