"""Copy out: a viewer selects text with the mouse (drag, double click a word, triple click
a line; Shift overrides the application's mouse reporting), sees it highlighted alone, and
gets it on its clipboard (``IViewer.cutText``); OSC 52 only when the console allows it."""

from __future__ import annotations

import base64

from twisted.logger import capturedLogs, formatEvent

from tests.support.viewer_setup import Setup, row_picture, same
from vncmux.console.cells import Cell
from vncmux.console.console import LEFT, ViewerSession
from vncmux.console.keys import XK_Prior, XK_Shift_L
from vncmux.console.selection import (
    ClickCounter,
    Selection,
    Unit,
    selected_text,
    span,
    word_span,
)

TEXT = b"hello world.txt ab\r\nsecond line here\r\n"


def drag(s: Setup, session: ViewerSession, start: tuple[int, int], end: tuple[int, int]) -> None:
    """Press the left button in cell ``start``, move to cell ``end``, release there."""
    session.pointer(LEFT, *s.cell_point(*start))
    session.pointer(LEFT, *s.cell_point(*end))
    session.pointer(0, *s.cell_point(*end))


def clicks(s: Setup, session: ViewerSession, cell: tuple[int, int], n: int) -> None:
    for _ in range(n):
        session.pointer(LEFT, *s.cell_point(*cell))
        session.pointer(0, *s.cell_point(*cell))
        s.clock.advance(0.1)


def test_a_drag_sends_the_selected_text_to_this_viewers_clipboard() -> None:
    s = Setup(cols=20, rows=5)
    s.feed(TEXT)
    viewer, session = s.attach()
    other, _session2 = s.attach()
    drag(s, session, (0, 0), (4, 0))
    assert viewer.cut == ["hello"]
    drag(s, session, (5, 1), (6, 0))  # backwards, across a line end
    assert viewer.cut == ["hello", "world.txt ab\nsecond"]
    assert other.cut == [], "only the viewer that selected"
    assert s.typed() == b"", "selecting types nothing"


def test_a_double_click_takes_a_word_and_a_triple_click_the_line() -> None:
    s = Setup(cols=20, rows=5)
    s.feed(TEXT)
    viewer, session = s.attach()
    clicks(s, session, (8, 0), 2)
    assert viewer.cut == ["world.txt"]
    s.clock.advance(1)
    clicks(s, session, (8, 0), 3)
    assert viewer.cut == ["world.txt", "world.txt", "hello world.txt ab"]
    s.clock.advance(1)
    session.pointer(LEFT, *s.cell_point(8, 0))
    session.pointer(0, *s.cell_point(8, 0))
    s.clock.advance(0.1)
    session.pointer(LEFT, *s.cell_point(8, 0))  # double click, then drag by words
    session.pointer(LEFT, *s.cell_point(3, 1))
    session.pointer(0, *s.cell_point(3, 1))
    assert viewer.cut[-1] == "world.txt ab\nsecond"


def test_the_selection_is_highlighted_for_this_viewer_alone() -> None:
    s = Setup(cols=20, rows=5)
    s.feed(TEXT)
    _viewer, session = s.attach()
    _other, live = s.attach()
    live.requestUpdate()
    drag(s, session, (0, 0), (4, 0))
    assert same(s.row_of(session, 0), row_picture("hello world.txt ab", 20, reverse=(0, 5)))
    assert same(s.row_of(session, 1), row_picture("second line here", 20))
    assert same(s.row_of(live, 0), row_picture("hello world.txt ab", 20))
    assert session.damage.rows >= {0}
    clicks(s, session, (10, 3), 1)
    assert session.selection is None, "a plain click drops the highlight"
    assert same(s.row_of(session, 0), row_picture("hello world.txt ab", 20))


def test_the_highlight_stays_on_its_text_as_output_scrolls() -> None:
    s = Setup(cols=20, rows=5)
    s.feed(TEXT)
    viewer, session = s.attach()
    drag(s, session, (0, 1), (5, 1))  # "second"
    s.feed(b"a\r\nb\r\nc\r\n")  # the screen scrolls by one line
    viewer.events.clear()
    session.requestUpdate()
    assert viewer.events == ["update"]
    assert same(s.row_of(session, 0), row_picture("second line here", 20, reverse=(0, 6)))


def test_typing_drops_the_highlight() -> None:
    s = Setup(cols=20, rows=5)
    s.feed(TEXT)
    viewer, session = s.attach()
    drag(s, session, (0, 0), (4, 0))
    session.key(ord("q"), True)
    assert session.selection is None and viewer.cut == ["hello"]
    x, y, w, h = s.console.row_box(0, 1)
    assert session.crop((x, y, x + w, y + h)) is s.console.crop((x, y, x + w, y + h))


def test_shift_overrides_the_applications_mouse_reporting() -> None:
    s = Setup(cols=20, rows=5)
    s.feed(TEXT + b"\x1b[?1002h\x1b[?1006h")
    viewer, session = s.attach()
    drag(s, session, (0, 0), (4, 0))
    assert viewer.cut == [] and s.typed().startswith(b"\x1b[<0;1;1M"), "reported"
    session.key(XK_Shift_L, True)
    session.pointer(LEFT, *s.cell_point(6, 0))
    session.pointer(LEFT, *s.cell_point(10, 0))
    session.key(XK_Shift_L, False)  # let go of Shift mid-drag: still selecting
    session.pointer(0, *s.cell_point(10, 0))
    assert viewer.cut == ["world"]
    assert s.typed() == b""


def test_text_scrolled_back_to_can_be_selected() -> None:
    s = Setup(cols=20, rows=5)
    s.lines(0, 20)
    viewer, session = s.attach()
    for sym, down in ((XK_Shift_L, True), (XK_Prior, True), (XK_Prior, False)):
        session.key(sym, down)
    session.key(XK_Shift_L, False)
    drag(s, session, (0, 0), (6, 1))
    assert viewer.cut == ["line 12\nline 13"]


def test_a_view_only_viewer_may_copy() -> None:
    s = Setup(cols=20, rows=5)
    s.feed(TEXT)
    viewer, session = s.attach(view_only=True)
    drag(s, session, (0, 1), (5, 1))
    assert viewer.cut == ["second"]
    assert s.typed() == b""


def osc52(text: str) -> bytes:
    return b"\x1b]52;c;" + base64.b64encode(text.encode()) + b"\x07"


def test_osc52_is_ignored_unless_the_console_allows_it() -> None:
    s = Setup()
    viewer, _session = s.attach()
    with capturedLogs() as events:
        s.feed(osc52("secret") + osc52("again"))
    assert viewer.cut == []
    logged = [formatEvent(e) for e in events]
    assert len([line for line in logged if "OSC 52" in line]) == 1, logged

    s = Setup(osc52=True)
    one, _s1 = s.attach()
    two, _s2 = s.attach()
    s.feed(osc52("héllo ☃"))
    assert one.cut == two.cut == ["héllo ☃"]
    s.feed(b"\x1b]52;c;?\x07\x1b]52;c;not base64!\x07")
    assert one.cut == ["héllo ☃"], "a query and bad data are ignored"
    assert s.typed() == b"", "a query is never answered"


# -- the pure parts ------------------------------------------------------------------------


def cells(text: str) -> list[Cell]:
    return [Cell(ch) for ch in text]


def test_word_spans() -> None:
    row = cells("ab  c/d.e, (x)")
    assert word_span(row, 0) == (0, 2)
    assert word_span(row, 2) == (2, 4), "a run of blanks"
    assert word_span(row, 6) == (4, 10), "paths and dots are part of a word"
    assert word_span(row, 11) == (11, 12), "other punctuation is a word of its own"
    wide = [Cell("世"), Cell(""), Cell("界"), Cell(""), Cell(" ")]
    assert word_span(wide, 1) == (0, 4), "the right half belongs to its character"


def test_selected_text_strips_each_line_and_takes_wide_characters_once() -> None:
    lines = {0: cells("ab   "), 1: [Cell("世"), Cell(""), Cell("x"), Cell(" "), Cell(" ")]}
    sel = span((0, 1), (1, 0), Unit.CHAR, lines.__getitem__, 5)
    assert sel == Selection((0, 1), (1, 2)), "the whole wide character"
    assert selected_text(sel, lines.__getitem__, 5) == "b\n世"
    assert selected_text(Selection((0, 0), (0, 0)), lines.__getitem__, 5) == ""
    line_sel = span((1, 3), (0, 4), Unit.LINE, lines.__getitem__, 5)
    assert selected_text(line_sel, lines.__getitem__, 5) == "ab\n世x"


def test_clicks_count_only_on_one_cell_within_the_interval() -> None:
    c = ClickCounter(0.4)
    assert [c.click((0, 0), t) for t in (0.0, 0.1, 0.2, 0.3)] == [1, 2, 3, 1]
    assert c.click((0, 1), 0.35) == 1, "another cell"
    assert c.click((0, 1), 1.0) == 1, "too late"
    assert [ClickCounter.unit(n) for n in (1, 2, 3)] == [Unit.CHAR, Unit.WORD, Unit.LINE]


def test_the_rfb_session_sends_cut_text_as_its_viewer_can_take_it() -> None:
    import struct
    import zlib

    from tests.support.rfb_client import connected, ext_clipboard_client, make_factory
    from vncmux.rfb.reader import CLIP_PROVIDE, CLIP_TEXT

    factory, _display, _clock = make_factory()
    plain = connected(factory)
    plain.proto.cutText("héllo ☃\nx")
    assert plain.take() == struct.pack("!BxxxI", 3, 9) + "héllo ?\nx".encode("latin-1")

    extended, _display, _factory = ext_clipboard_client()
    extended.proto.cutText("héllo ☃\nx")
    message = extended.take()
    kind, length, flags = struct.unpack_from("!BxxxiI", message)
    assert (kind, flags) == (3, CLIP_PROVIDE | CLIP_TEXT)
    assert -length == len(message) - 8
    text = "héllo ☃\r\nx".encode() + b"\0"
    assert zlib.decompress(message[12:]) == struct.pack("!I", len(text)) + text
