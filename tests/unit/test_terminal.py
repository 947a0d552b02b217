"""The terminal emulator: hardening against hostile output, xterm features pyte lacks,
replies, encodings, and the damage invariant (old picture + damage = new picture)."""

from __future__ import annotations

import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.logger import capturedLogs
from zope.interface.verify import verifyObject

from tests.support.fakes import Events
from tests.support.screen_picture import catch_up, picture
from vncmux.console import parser as parser_mod
from vncmux.console import screen as screen_mod
from vncmux.console.damage import Scroll
from vncmux.console.interfaces import ITerminalEvents
from vncmux.console.modes import Modes
from vncmux.console.reports import PRIMARY_DA, SECONDARY_DA
from vncmux.console.terminal import COLOUR_NAMES, MAX_COMBINING, Cell, NoEvents, Terminal

VALID_NAMED = {"default", *COLOUR_NAMES}


def make(cols: int = 20, rows: int = 5, **kw: object) -> tuple[Terminal, list[bytes]]:
    events = Events()
    t = Terminal(cols, rows, events=events, **kw)  # type: ignore[arg-type]
    return t, events.replies


def recorded(t: Terminal) -> Events:
    assert isinstance(t.events, Events)
    return t.events


def text(t: Terminal) -> list[str]:
    return ["".join(c.data for c in t.line(y)) for y in range(t.rows)]


def screen_text(t: Terminal) -> str:
    return "\n".join(text(t))


def valid_colour(c: str) -> bool:
    if c in VALID_NAMED:
        return True
    return len(c) == 6 and all(ch in "0123456789abcdef" for ch in c)


def timed_feed(t: Terminal, data: bytes, limit: float = 2.0) -> float:
    start = time.perf_counter()
    t.feed(data)
    elapsed = time.perf_counter() - start
    assert elapsed < limit, f"feed took {elapsed:.2f}s"
    return elapsed


# -- hardening (pyte.md) -----------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        b"\x1b[?1M",  # TypeError in pyte (private kwarg)
        b"\x1b[" + b";" * 10**6 + b"L",  # TypeError in pyte (too many arguments)
        b"\x1b[" + b"9" * 5000 + b"m",  # ValueError in pyte (int digit limit)
        "\x1b[²m".encode(),  # ValueError in pyte ('²'.isdigit())
        b"\x1b[" + b"1:" * 5000 + b"m",  # a colon flood
        b"\x1b[?9999;9999;9999h\x1b[>9999c\x1b[=5c\x1b[!p\x1b[ q",
        b"\x1bP1;2|" + b"x" * 1000 + b"\x1b\\",  # DCS (e.g. DECUDK) is swallowed
        b"\x1b_apc\x1b\\\x1b^pm\x1b\\\x1bXsos\x1b\\",
        "\x9b5m\x9d0;t\x07\x90q\x9c".encode(),  # C1 controls (U+0080-U+009F)
    ],
)
def test_malformed_sequence_is_dropped_alone_and_output_resumes(bad: bytes) -> None:
    t, _ = make(40, 5)
    timed_feed(t, b"before " + bad + b"after")
    out = screen_text(t)
    assert "before" in out
    assert "after" in out


def test_parameter_flood_split_into_chunks() -> None:
    t, _ = make()
    start = time.perf_counter()
    t.feed(b"before\x1b[")
    for _ in range(16):
        t.feed(b"1;" * 32768)
    t.feed(b"mafter")
    assert time.perf_counter() - start < 2.0
    assert text(t)[0].startswith("beforeafter")
    assert len(t._parser.buf) <= parser_mod.MAX_PARAM_CHARS
    assert not t.line(0)[7].bold  # the over-long SGR was dropped, not applied


def test_huge_counts_are_bounded() -> None:
    t, _ = make(80, 24)
    timed_feed(
        t,
        b"x\x1b[9999@\x1b[9999P\x1b[9999X\x1b[9999L\x1b[9999M\x1b[9999S"
        b"\x1b[9999T\x1b[9999I\x1b[9999Z\x1b[9999;9999Hafter" * 50,
    )
    assert "after" in "".join(text(t))


def test_eight_bit_controls_in_latin1() -> None:
    t, _ = make(encoding="latin-1")
    t.feed(b"\x9b2;3Hx\x9d2;title\x9cy")
    assert t.cursor == (4, 1)
    assert text(t)[1][2:4] == "xy"
    assert t.title == "title"


def test_exception_in_a_handler_drops_only_that_sequence() -> None:
    t, _ = make()

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    t._screen.cursor_up = broken  # type: ignore[method-assign]
    t.feed(b"ab\x1b[Acd\x1b[2Cef")
    assert text(t)[0].rstrip() == "abcd  ef"


def test_combining_mark_flood_is_bounded() -> None:
    t, _ = make()
    timed_feed(t, b"a" + "\u0301".encode() * 100_000 + b"bc")
    cells = t.line(0)
    assert cells[0].data.startswith("\u00e1")  # NFC of a + acute
    assert len(cells[0].data) <= 1 + MAX_COMBINING
    assert cells[1].data == "b" and cells[2].data == "c"


def test_combining_mark_flood_across_many_feeds_is_bounded() -> None:
    t, _ = make()
    t.feed(b"a")
    start = time.perf_counter()
    for _ in range(20_000):
        t.feed("\u0308".encode())
    assert time.perf_counter() - start < 2.0
    assert len(t.line(0)[0].data) <= 1 + MAX_COMBINING


def test_zero_width_characters_do_not_lose_the_rest_of_the_text() -> None:
    # pyte's draw stops at U+FE0F / U+200D / a C0 control inside text and drops the rest.
    t, _ = make()
    t.feed("x\ufe0fy\u200dz\x01w".encode())
    assert text(t)[0].rstrip() == "x\ufe0fyzw"


def test_combining_mark_after_a_wide_character_joins_it() -> None:
    t, _ = make()
    t.feed("中\u0301!".encode())
    cells = t.line(0)
    assert cells[0].data == "中\u0301"
    assert cells[1].data == ""
    assert cells[2].data == "!"


def test_decaln_flood_is_fast_and_fills_with_e() -> None:
    t, _ = make(80, 24)
    timed_feed(t, b"\x1b#8" * 20_000)
    assert all(row == "E" * 80 for row in text(t))


def test_unterminated_osc_is_abandoned_and_output_resumes() -> None:
    t, _ = make(40, 5)
    t.feed(b"\x1b]0;" + b"x" * (parser_mod.MAX_STRING - 10))
    t.feed(b"y" * 20 + b"\r\nafter")  # crosses the limit in a later chunk
    assert "after" in screen_text(t)
    assert t.title == ""


def test_unterminated_dcs_is_abandoned_and_output_resumes() -> None:
    t, _ = make(40, 5)
    timed_feed(t, b"\x1bP" + b"q" * (parser_mod.MAX_STRING + 1) + b"\r\nafter")
    assert "after" in screen_text(t)


def test_long_osc_does_not_grow_memory() -> None:
    t, _ = make()
    t.feed(b"\x1b]2;")
    chunk = b"z" * 1000
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(60):  # 60 KB, still under the abandon limit
            t.feed(chunk)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 30_000
    t.feed(b"\x07")
    assert t.title == ""  # too long to be a title: not interpreted


def test_deccolm_does_not_resize_or_clear() -> None:
    t, _ = make(80, 24)
    t.feed(b"keep\x1b[?3h\x1b[?3l")
    assert (t.cols, t.rows) == (80, 24)
    assert all(len(t.line(y)) == 80 for y in range(24))
    assert text(t)[0].startswith("keep")


def test_deccolm_allowed_clears_and_homes_even_with_decncsm() -> None:
    """With DECCOLM allowed (mode 40) switching clears the screen and homes the cursor, the
    size staying; DECNCSM (95, a VT510's "no clear") changes nothing on a VT420."""
    t, replies = make(80, 24)
    t.feed(b"\x1b[?40h\x1b[?95hkeep\x1b[5;5H\x1b[?3h\x1b[6n")
    assert (t.cols, t.rows) == (80, 24)
    assert text(t)[0].strip() == ""
    assert replies == [b"\x1b[1;1R"]


def test_cursor_save_does_not_grow_without_bound() -> None:
    t, _ = make()
    t.feed(b"\x1b7" * 10_000)
    assert len(t._screen.savepoints) <= 1
    t.feed(b"\x1b[3;4H\x1b7\x1b[H\x1b8\x1b[H\x1b8")
    assert t.cursor == (3, 2)  # DECRC can be repeated, as in xterm


def test_rep_is_bounded_by_the_screen() -> None:
    t, _ = make(10, 3)
    timed_feed(t, b"x\x1b[9999b" * 100)
    assert text(t)[-1] == "x" * 10


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=40),
            st.sampled_from(
                [
                    b"\x1b[",
                    b"\x1b]",
                    b"\x1bP",
                    b"\x1b",
                    b";",
                    b":",
                    b"?",
                    b"m",
                    b"H",
                    b"\x9b",
                    b"\x9d",
                    b"\x07",
                    b"\x1b\\",
                    b"38;5;",
                    b"48:2::",
                    b"\xe4\xb8",
                    b"\xad",
                    "\u0301".encode(),
                    b"\x1b[?1049h",
                    b"\x1b#8",
                    b"\r\n",
                ]
            ),
        ),
        max_size=30,
    )
)
def test_random_bytes_never_raise_and_lines_stay_well_formed(
    chunks: list[bytes],
) -> None:
    t, _ = make(12, 4)
    for c in chunks:
        t.feed(c)
    for y in range(t.rows):
        cells = t.line(y)
        assert len(cells) == 12
        for x, cell in enumerate(cells):
            assert isinstance(cell, Cell)
            assert valid_colour(cell.fg) and valid_colour(cell.bg)
            if cell.data == "":
                assert x > 0 and cells[x - 1].data != ""
    x, y = t.cursor
    assert 0 <= x < 12 and 0 <= y < 4


# -- colours and attributes --------------------------------------------------------------


def attrs_after(sgr: str) -> Cell:
    t, _ = make()
    t.feed(f"\x1b[{sgr}mX".encode())
    return t.line(0)[0]


@pytest.mark.parametrize(
    "sgr, fg, bg",
    [
        ("31", "red", "default"),
        ("33;44", "brown", "blue"),
        ("91", "brightred", "default"),
        ("105", "default", "brightmagenta"),  # pyte: 'bfightmagenta'
        ("93;103", "brightbrown", "brightbrown"),
        ("38;5;196", "ff0000", "default"),
        ("38;5;3", "brown", "default"),  # 0-15 by name: the palette applies
        ("48;5;12", "default", "brightblue"),
        ("48;5;232", "default", "080808"),
        ("38;5;999", "default", "default"),  # out of range: ignored
        ("38;2;1;2;3", "010203", "default"),
        ("38;2;999;0;300", "ff00ff", "default"),  # pyte: '3e70000'; clamped
        ("38:2::10:20:30", "0a141e", "default"),  # ITU form, empty colour space
        ("38:2:0:10:20:30", "0a141e", "default"),  # ITU form with colour space id
        ("38:2:10:20:30", "0a141e", "default"),  # common short colon form
        ("48:5:21", "default", "0000ff"),
        ("31;39", "default", "default"),
        ("41;49", "default", "default"),
        ("31;0", "default", "default"),
        ("38;5", "default", "default"),  # truncated: harmless
        ("38;2;1;2", "default", "default"),
    ],
)
def test_colours(sgr: str, fg: str, bg: str) -> None:
    cell = attrs_after(sgr)
    assert (cell.fg, cell.bg) == (fg, bg)


def test_parameters_after_an_extended_colour_still_apply() -> None:
    cell = attrs_after("1;38;5;10;4;48;2;0;0;255;3")
    assert (cell.fg, cell.bg) == ("brightgreen", "0000ff")
    assert cell.bold and cell.underscore and cell.italics


def test_underline_colour_is_consumed_not_misread() -> None:
    cell = attrs_after("58;5;1;31")
    assert cell.fg == "red" and not cell.blink  # '1' was the colour, not bold/blink
    assert not cell.bold
    cell = attrs_after("58:2::1:2:3;32")
    assert cell.fg == "green" and not cell.bold


@pytest.mark.parametrize(
    "sgr, field, value",
    [
        ("1", "bold", True),
        ("2", "faint", True),
        ("3", "italics", True),
        ("4", "underscore", True),
        ("4:3", "underscore", True),
        ("4;4:0", "underscore", False),
        ("21", "underscore", True),
        ("5", "blink", True),
        ("7", "reverse", True),
        ("9", "strikethrough", True),
        ("1;2;22", "bold", False),
        ("1;2;22", "faint", False),
        ("3;23", "italics", False),
        ("4;24", "underscore", False),
        ("5;25", "blink", False),
        ("7;27", "reverse", False),
        ("9;29", "strikethrough", False),
        ("2;0", "faint", False),
        ("", "bold", False),
    ],
)
def test_attributes(sgr: str, field: str, value: bool) -> None:
    assert getattr(attrs_after(sgr), field) is value


def test_attributes_persist_and_reset() -> None:
    t, _ = make()
    t.feed(b"\x1b[2;3;9mab\x1b[mc")
    a, b, c = t.line(0)[:3]
    assert a.faint and a.italics and a.strikethrough and b.faint
    assert not (c.faint or c.italics or c.strikethrough)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.integers(0, 300), st.just(None)), max_size=12), st.booleans())
def test_any_sgr_gives_valid_colours(params: list[int | None], colon: bool) -> None:
    sep = ":" if colon else ";"
    s = sep.join("" if p is None else str(p) for p in params)
    cell = attrs_after(("38" + sep if params else "") + s)
    assert valid_colour(cell.fg) and valid_colour(cell.bg)


def test_erase_uses_the_background_colour() -> None:
    t, _ = make(6, 3)
    t.feed(b"\x1b[44m\x1b[2J\x1b[0m")
    assert all(c.bg == "blue" for y in range(3) for c in t.line(y))
    t.feed(b"\x1b[41m\x1b[2;3H\x1b[K")
    row = t.line(1)
    assert [c.bg for c in row] == ["blue", "blue"] + ["red"] * 4


# -- screen features -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", [1049, 1047, 47])
def test_alternate_screen(mode: int) -> None:
    t, _ = make(10, 3)
    t.feed(b"main\r\nline2\x1b[2;3H")
    t.feed(f"\x1b[?{mode}h".encode())
    assert t.alternate_screen
    assert all(row.strip() == "" for row in text(t))
    t.feed(b"\x1b[1;1Halt")
    assert text(t)[0].startswith("alt")
    t.feed(f"\x1b[?{mode}l".encode())
    assert not t.alternate_screen
    assert text(t)[:2] == ["main      ", "line2     "]
    if mode == 1049:
        assert t.cursor == (2, 1)


def test_1049_clears_the_alternate_screen_each_time() -> None:
    t, _ = make(10, 3)
    t.feed(b"\x1b[?1049hjunk\x1b[?1049l\x1b[?1049h")
    assert all(row.strip() == "" for row in text(t))


def test_reset_leaves_the_alternate_screen() -> None:
    t, _ = make(10, 3)
    t.feed(b"main\x1b[?1049halt\x1bc")
    assert not t.alternate_screen


def test_wide_characters_are_well_formed() -> None:
    t, _ = make(10, 2)
    t.feed("中文".encode())
    assert [c.data for c in t.line(0)[:4]] == ["中", "", "文", ""]
    t.feed(b"\x1b[1;2Hx")  # overwrite the right half of the first one
    cells = t.line(0)
    assert cells[1].data == "x"
    assert cells[0].data == " "  # no orphaned left half


def test_reverse_screen_and_cursor_visibility() -> None:
    t, _ = make()
    assert not t.reverse_screen and t.cursor_visible
    t.feed(b"ab\x1b[?5h\x1b[?25l")
    assert t.reverse_screen and not t.cursor_visible
    assert not t.line(0)[0].reverse  # cells are not rewritten; the renderer inverts
    t.feed(b"\x1b[?5l\x1b[?25h")
    assert not t.reverse_screen and t.cursor_visible


def test_scroll_region_and_insert_delete_lines() -> None:
    t, _ = make(3, 5)
    t.feed(b"a\r\nb\r\nc\r\nd\r\ne")
    t.feed(b"\x1b[2;4r\x1b[4;1H\n")  # LF at the bottom margin scrolls rows 2-4 only
    assert [r[0] for r in text(t)] == ["a", "c", "d", " ", "e"]
    t.feed(b"\x1b[2;1H\x1b[L")
    assert [r[0] for r in text(t)] == ["a", " ", "c", "d", "e"]
    t.feed(b"\x1b[2M")
    assert [r[0] for r in text(t)] == ["a", "d", " ", " ", "e"]


def test_delete_lines_never_leaves_stale_rows() -> None:
    # pyte keeps a row when the row that should replace it was never written.
    t, _ = make(3, 4)
    t.feed(b"a\r\nb\x1b[1;1H\x1b[M")
    assert [r[0] for r in text(t)] == ["b", " ", " ", " "]


def test_scroll_up_down() -> None:
    t, _ = make(3, 3)
    t.feed(b"a\r\nb\r\nc\x1b[S")
    assert [r[0] for r in text(t)] == ["b", "c", " "]
    t.feed(b"\x1b[2T")
    assert [r[0] for r in text(t)] == [" ", " ", "b"]


# -- modes -----------------------------------------------------------------------------


def test_modes_follow_the_program() -> None:
    t, _ = make()
    modes = t.modes
    t.feed(b"\x1b[?1h\x1b=\x1b[?2004h\x1b[?1002h\x1b[?1006h\x1b[20h")
    assert modes == Modes(
        app_cursor=True,
        app_keypad=True,
        bracketed_paste=True,
        mouse_tracking=1002,
        mouse_sgr=True,
        newline_mode=True,
    )
    t.feed(b"\x1b[?1003h")
    assert modes.mouse_tracking == 1003
    t.feed(b"\x1b[?1000l")  # as xterm: resetting any mouse mode turns tracking off
    assert modes.mouse_tracking == 0
    t.feed(b"\x1b[?9h")
    assert modes.mouse_tracking == 9
    t.feed(b"\x1b[?1l\x1b>\x1b[?2004l\x1b[?1006l\x1b[20l\x1b[?9l")
    assert modes == Modes()
    assert t.modes is modes


def test_reset_clears_modes_in_place() -> None:
    t, _ = make()
    modes = t.modes
    t.feed(b"\x1b[?1h\x1b[?1000h\x1bc")
    assert t.modes is modes and modes == Modes()


def test_newline_mode_affects_linefeed() -> None:
    t, _ = make()
    t.feed(b"\x1b[20hab\ncd")
    assert text(t)[1].startswith("cd")


# -- replies, bell, title -------------------------------------------------------------


def test_cursor_position_report_goes_to_reply_not_screen() -> None:
    t, replies = make()
    t.feed(b"\x1b[3;5H\x1b[6n")
    assert replies == [b"\x1b[3;5R"]
    assert all(row.strip() == "" for row in text(t))


def test_cursor_position_report_with_origin_mode() -> None:
    t, replies = make()
    t.feed(b"\x1b[2;4r\x1b[?6h\x1b[2;3H\x1b[6n")
    assert replies == [b"\x1b[2;3R"]
    assert t.cursor == (2, 2)


def test_status_and_device_attribute_reports() -> None:
    t, replies = make()
    t.feed(b"\x1b[5n\x1b[c\x1b[0c\x1b[>c\x1b[?6n")
    assert replies[0] == b"\x1b[0n"
    assert replies[1].startswith(b"\x1b[?") and replies[1].endswith(b"c")
    assert replies[2] == replies[1]
    assert replies[3].startswith(b"\x1b[>") and replies[3].endswith(b"c")
    assert replies[4] == b"\x1b[?1;1;1R"  # DECXCPR: row, column, page (as a VT420)
    assert len(replies) == 5
    assert all(row.strip() == "" for row in text(t))


def test_reply_split_across_feeds() -> None:
    t, replies = make()
    for b in b"\x1b[6n":
        t.feed(bytes([b]))
    assert replies == [b"\x1b[1;1R"]


def test_bell_and_title() -> None:
    t, _ = make()
    events = recorded(t)
    t.feed(b"\x1b]0;first\x07\x07\x1b]2;sec\x01ond\x1b\\x")
    assert events.titles == ["first", "second"]  # control characters removed
    assert t.title == "second"
    assert events.bells == 1  # the BEL that ended the OSC is not a bell
    t.feed(b"\x1bc")
    assert t.title == "second"  # RIS keeps the title, as xterm does
    t.feed(b"\x1b]2;" + b"T" * 5000 + b"\x07")
    assert len(t.title) <= screen_mod.MAX_TITLE


# -- the events object ------------------------------------------------------------------


def test_every_events_object_provides_the_interface() -> None:
    t = Terminal(4, 2)
    assert isinstance(t.events, NoEvents)
    for events in (Events(), NoEvents(), t._screen.events):
        assert verifyObject(ITerminalEvents, events)


def test_a_failing_handler_is_logged_and_parsing_goes_on() -> None:
    class Broken(Events):
        def reply(self, data: bytes) -> None:
            raise RuntimeError("reply")

        def bell(self) -> None:
            raise RuntimeError("bell")

        def title(self, title: str) -> None:
            raise RuntimeError("title")

        def scrolledOff(self, rows: list[Cell]) -> None:  # type: ignore[override]
            raise RuntimeError("scrolledOff")

    for fast in (True, False):
        t = Terminal(10, 2, events=Broken(), fast=fast)
        with capturedLogs() as logged:
            t.feed(b"\x1b[6n\x07\x1b]0;t\x07a\r\nb\r\nc")
        assert [row.rstrip() for row in text(t)] == ["b", "c"]
        assert t.title == "t"
        failures = {str(e["log_failure"].value) for e in logged if "log_failure" in e}
        assert failures == {"reply", "bell", "title", "scrolledOff"}


# -- rows scrolled off the top --------------------------------------------------------------

HUNDRED_LINES = b"".join(b"line %d\r\n" % i for i in range(100))


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "slow"])
@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_every_row_scrolled_off_the_top_is_reported_in_order(fast: bool, chunk: int) -> None:
    t, _ = make(80, 24, fast=fast)
    events = recorded(t)
    for i in range(0, len(HUNDRED_LINES), chunk):
        t.feed(HUNDRED_LINES[i : i + chunk])
    assert events.gone_text() == [f"line {i}" for i in range(77)]  # 23 still on screen
    assert all(len(row) == 80 and all(isinstance(c, Cell) for c in row) for row in events.gone)
    assert text(t)[0].rstrip() == "line 77"


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "slow"])
def test_scrolled_off_rows_keep_their_attributes_and_wide_characters(fast: bool) -> None:
    t, _ = make(6, 2, fast=fast)
    events = recorded(t)
    t.feed("\x1b[31mred\x1b[0m\r\n中文\r\nx\r\n".encode())
    red, wide = events.gone
    assert [c.fg for c in red[:4]] == ["red", "red", "red", "default"]
    assert [c.data for c in wide[:5]] == ["中", "", "文", "", " "]


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "slow"])
def test_rows_scrolled_on_the_alternate_screen_are_not_reported(fast: bool) -> None:
    t, _ = make(10, 3, fast=fast)
    events = recorded(t)
    t.feed(b"a\r\nb\r\n\x1b[?1049h")
    t.feed(b"".join(b"alt %d\r\n" % i for i in range(50)) + b"\x1b[?1049l")
    assert events.gone == []
    t.feed(b"c\r\nd\r\ne")
    assert events.gone_text() == ["a", "b"]


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "slow"])
def test_only_scrolls_from_the_top_row_are_reported(fast: bool) -> None:
    t, _ = make(10, 5, fast=fast)
    events = recorded(t)
    t.feed(b"r0\r\nr1\r\nr2\r\nr3\r\nr4")
    t.feed(b"\x1b[2;4r\x1b[4;1H" + b"x\n" * 5)  # a region below the top row: not off screen
    assert events.gone == []
    t.feed(b"\x1b[r\x1b[H\x1b[M")  # DL deletes the top row: not a scroll off the screen
    assert events.gone == []
    t.feed(b"\x1b[1;3r\x1b[3;1H\n")  # a region from the top row: its top row leaves
    assert len(events.gone) == 1
    t.feed(b"\x1b[r\x1b[2S")  # SU: two rows leave
    assert len(events.gone) == 3


def test_rows_dropped_by_a_shrinking_resize_are_reported() -> None:
    t, _ = make(10, 5)
    events = recorded(t)
    t.feed(b"0\r\n1\r\n2\r\n3\r\n4")
    t.resize(10, 3)
    assert events.gone_text() == ["0", "1"]
    assert [row.rstrip() for row in text(t)] == ["2", "3", "4"]


def test_nobody_listening_costs_nothing() -> None:
    """Without an events object the rows that scroll off are not even built."""
    t = Terminal(10, 3)
    assert not t._screen.reports_scrolled_off
    t.feed(HUNDRED_LINES)
    assert text(t)[0].rstrip() == "line 98"


# -- bells -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "slow"])
def test_a_run_of_bells_rings_once_per_feed(fast: bool) -> None:
    t, _ = make(fast=fast)
    events = recorded(t)
    t.feed(b"\x07" * ((1 << 20) if fast else (1 << 16)))
    assert events.bells == 1
    t.feed(b"a\x07b\x07\x07c")
    assert events.bells == 2
    t.feed(b"xyz")
    assert events.bells == 2
    assert text(t)[0].rstrip() == "abcxyz"


def test_the_fast_path_takes_a_run_of_bells_whole() -> None:
    """1 MiB of BEL costs what 1 MiB of text costs: one token, no slow path (the figure
    is in bench/console_feed.py)."""
    t, _ = make()
    fast = t._parser.fast
    assert fast is not None
    data = "\x07" * (1 << 20) + "a"
    assert fast.run(data, 0) == len(data)


# -- replies can never be read back as queries ---------------------------------------------


def all_replies() -> set[bytes]:
    """Every reply the terminal gives to any CSI or ESC sequence with a few parameters,
    from a few cursor positions and modes."""
    replies: set[bytes] = set()
    for setup in (b"", b"\x1b[3;7H", b"\x1b[2;4r\x1b[?6h\x1b[2;3H", b"\x1b[99;99H"):
        for prefix in ("", "?", ">", "=", "<"):
            for params in ("", "0", "1", "5", "6", "0;0", "15", "26"):
                for final in map(chr, range(0x40, 0x7F)):
                    t, got = make(20, 5)
                    t.feed(setup + f"\x1b[{prefix}{params}{final}".encode())
                    replies.update(got)
        for final in map(chr, range(0x30, 0x7F)):
            t, got = make(20, 5)
            t.feed(setup + b"\x1b" + final.encode())
            replies.update(got)
        for query in QUERIES:
            t, got = make(20, 5)
            t.feed(setup + query)
            replies.update(got)
    return replies


# Queries with intermediates, strings and larger parameters than all_replies' loop tries.
QUERIES = [
    *(f"\x1b[{p}{m}$p".encode() for p in ("?", "") for m in (1, 2, 4, 6, 7, 20, 25, 45, 69, 1049)),
    *(f"\x1b[{op}t".encode() for op in (11, 13, 14, 15, 16, 18, 19, 20, 21)),
    *(f"\x1b[?{n}n".encode() for n in (15, 25, 26, 53, 55, 56, 62, 63, 75, 85)),
    b"\x1b[1;0;1;1;5;20*y",
    b"\x1b[=c",
    *(
        b"\x1bP$q" + pt + b"\x1b\\"
        for pt in (b"m", b"r", b"s", b" q", b'"q', b'"p', b"t", b"*x", b"*|", b"$}", b"zz")
    ),
    b"\x1bP+q436F\x1b\\",
    b"\x1bP+q544E\x1b\\",
    *(f"\x1b]{q}\x1b\\".encode() for q in ("4;1;?", "10;?", "11;?", "12;?", "5;0;?", "10;?;?")),
    b"\x1b]4;1;?\x07",
]


def test_no_reply_reads_back_as_a_query() -> None:
    replies = all_replies()
    # DA, secondary DA, DSR, CPR, DECXCPR (at several positions)
    assert {PRIMARY_DA.encode(), SECONDARY_DA.encode(), b"\x1b[0n", b"\x1b[1;1R"} <= replies
    assert b"\x1b[?1;1;1R" in replies
    assert {b"\x1b[8;5;20t", b"\x1b[?7;1$y", b"\x1bP1$r0m\x1b\\"} <= replies
    assert any(r.startswith(b"\x1bP1!~") for r in replies)  # DECRQCRA
    assert any(r.startswith(b"\x1b]11;rgb:") for r in replies)
    assert len(replies) >= 60
    for reply in replies:
        for split in (False, True):
            t, got = make(20, 5)
            for piece in [bytes([b]) for b in reply] if split else [reply]:
                t.feed(piece)
            assert got == [], reply
    t, got = make(20, 5)
    t.feed(b"".join(sorted(replies)))
    assert got == []


def test_secondary_da_answers_as_xterm_does() -> None:
    t, replies = make()
    t.feed(b"\x1b[>c\x1b[>0c\x1b[>1c")
    assert replies == [b"\x1b[>41;379;0c"] * 2  # the third one is an answer, not a query


def test_an_echoing_device_does_not_talk_forever() -> None:
    """Issue 13: with a device that echoes, each reply comes back as output.  The
    conversation must die out (bounded rounds, so a regression fails instead of hanging)."""
    t, replies = make()
    output = b"\x1b[>c\x1b[c\x1b[0c\x1b[5n\x1b[6n\x1b[?6n"
    rounds = 0
    while output and rounds < 10:
        before = len(replies)
        t.feed(output)
        output = b"".join(replies[before:])  # echoed straight back
        rounds += 1
    assert output == b""
    assert rounds == 2  # the queries, then their echoed answers (which answer nothing)


# -- encodings -------------------------------------------------------------------------


def test_utf8_invalid_bytes_and_split_sequences() -> None:
    t, _ = make()
    data = "é中".encode()
    for b in data:
        t.feed(bytes([b]))
    t.feed(b"\xff!")
    assert text(t)[0].startswith("é中\ufffd!".replace("中", "中"))
    assert [c.data for c in t.line(0)[:5]] == ["é", "中", "", "\ufffd", "!"]


def test_latin1() -> None:
    t, _ = make(encoding="latin-1")
    t.feed(b"\xe9\xff\x1b[31mr")
    cells = t.line(0)
    assert [c.data for c in cells[:3]] == ["é", "ÿ", "r"]
    assert cells[2].fg == "red"


def test_cp437_glyphs_and_controls() -> None:
    t, _ = make(encoding="cp437")
    t.feed(b"\x82\xdb\xc4\r\n\x1b[32mg\tx")
    rows = text(t)
    assert rows[0].startswith("é█─")
    assert rows[1][0] == "g" and rows[1][8] == "x"  # CR LF and TAB acted as controls
    assert t.line(1)[0].fg == "green"


# -- damage ------------------------------------------------------------------------------


def test_first_damage_covers_everything() -> None:
    t, _ = make(5, 3)
    assert t.take_damage().rows == {0, 1, 2}
    assert not t.take_damage()
    assert not t.has_damage


def test_linefeed_at_the_bottom_is_a_scroll_not_a_repaint() -> None:
    t, _ = make(5, 4)
    t.feed(b"1\r\n2\r\n3\r\n4")
    t.take_damage()
    t.feed(b"\r\n5")
    d = t.take_damage()
    assert d.scroll == Scroll(0, 3, 1)
    assert d.rows <= {2, 3}  # the new line (and where the cursor was drawn)
    assert 3 in d.rows


def test_scroll_inside_margins_and_reverse_index() -> None:
    t, _ = make(5, 6)
    t.feed(b"\x1b[2;5r\x1b[5;1H")
    t.take_damage()
    t.feed(b"\n")
    assert t.take_damage().scroll == Scroll(1, 4, 1)
    t.feed(b"\x1b[2;1H\x1bM")
    d = t.take_damage()
    assert d.scroll == Scroll(1, 4, -1)
    assert 1 in d.rows and 5 not in d.rows and 0 not in d.rows


def test_cursor_moves_mark_old_and_new_rows_only() -> None:
    t, _ = make(5, 6)
    t.take_damage()
    t.feed(b"\x1b[4;2H")
    assert t.has_damage
    assert t.take_damage().rows == {0, 3}
    t.feed(b"\x1b[?25l")
    assert t.take_damage().rows == {3}
    t.feed(b"\x1b[1;1H\x1b[6;1H")
    assert not t.take_damage()  # invisible cursor: nothing to redraw


def test_status_banner_overlays_the_last_row() -> None:
    t, _ = make(30, 3)
    t.feed(b"\x1b[3;1Hbottom text")
    t.take_damage()
    t.set_status("device down: unix:/tmp/g.sock — reconnecting")
    assert t.take_damage().rows == {2}
    banner = "".join(c.data for c in t.line(2))
    assert banner.startswith("device down: unix:/tmp/g.sock")
    assert len(t.line(2)) == 30
    assert t.line(2)[0].bg != "default"
    t.feed(b"\rBOTTOM")  # the emulated screen still changes underneath
    t.set_status(None)
    assert 2 in t.take_damage().rows
    assert text(t)[2].startswith("BOTTOM text")


def test_resize_marks_all_and_keeps_the_bottom() -> None:
    t, _ = make(10, 4)
    t.feed(b"a\r\nb\r\nc\r\nd")
    t.take_damage()
    t.resize(6, 2)
    assert (t.cols, t.rows) == (6, 2)
    assert t.take_damage().rows == {0, 1}
    assert text(t) == ["c     ", "d     "]
    assert t.cursor == (1, 1)
    t.resize(8, 3)
    assert all(len(t.line(y)) == 8 for y in range(3))
    assert text(t) == ["c       ", "d       ", "        "]


def test_resize_keeps_the_top_when_the_cursor_allows() -> None:
    t, _ = make(10, 4)
    t.feed(b"top\x1b[4;1Hbottom\x1b[1;1H")
    t.resize(10, 2)
    assert text(t)[0].startswith("top")
    t.resize(10, 4)
    assert all(row.strip() == "" for row in text(t)[1:])  # nothing stale comes back


ROWS, COLS = 6, 8
_pieces = st.one_of(
    st.text(alphabet="ab中\u0301", min_size=1, max_size=12).map(str.encode),
    st.sampled_from(
        [
            b"\n",
            b"\r",
            b"\r\n",
            b"\x1bM",
            b"\x1bD",
            b"\x1bE",
            b"\x1b7",
            b"\x1b8",
            b"\x1b[K",
            b"\x1b[1K",
            b"\x1b[2K",
            b"\x1b[J",
            b"\x1b[1J",
            b"\x1b[2J",
            b"\x1b[r",
            b"\x1b[?25l",
            b"\x1b[?25h",
            b"\x1b[?1049h",
            b"\x1b[?1049l",
            b"\x1b[?5h",
            b"\x1b[?5l",
            b"\x1b[31;1m",
            b"\x1b[m",
            b"\x1b#8",
            b"\x1bc",
            b"\x1b[?6h",
            b"\x1b[?6l",
            b"\x1b[4h",
            b"\x1b[4l",
            b"\x08",
            b"\t",
        ]
    ),
    st.builds(
        lambda r, c: f"\x1b[{r};{c}H".encode(),
        st.integers(0, ROWS + 1),
        st.integers(0, COLS + 1),
    ),
    st.builds(
        lambda a, b: f"\x1b[{a};{b}r".encode(),
        st.integers(0, ROWS + 1),
        st.integers(0, ROWS + 1),
    ),
    st.builds(
        lambda n, f: f"\x1b[{n}{f}".encode(),
        st.integers(0, ROWS + 1),
        st.sampled_from("ABCDEFGLMPSTX@db"),
    ),
    st.sampled_from(["status", "nostatus"]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(_pieces, max_size=8), min_size=1, max_size=8))
def test_old_picture_plus_damage_is_the_new_picture(
    batches: list[list[object]],
) -> None:
    t, _ = make(COLS, ROWS)
    shadow = picture(t)
    t.take_damage()
    for batch in batches:
        for piece in batch:
            if piece == "status":
                t.set_status("down!")
            elif piece == "nostatus":
                t.set_status(None)
            else:
                assert isinstance(piece, bytes)
                t.feed(piece)
        d = t.take_damage()
        now = picture(t)
        assert catch_up(shadow, now, d) == now, d
        shadow = now
        assert not t.has_damage


def test_plain_text_gives_the_same_screen_as_pyte() -> None:
    """(How much faster than pyte: bench/console_feed.py.)"""
    import pyte

    data = b"".join(b"line %d: " % i + b"x" * 60 + b"\r\n" for i in range(800))
    t, _ = make(80, 24)
    t.feed(data)
    screen = pyte.Screen(80, 24)
    pyte.ByteStream(screen).feed(data)
    assert text(t) == list(screen.display)


def test_line_drawing_charset() -> None:
    t, _ = make()
    t.feed(b"\x1b(0lqk\x1b(Bx\x0eq\x0fq")
    assert text(t)[0].startswith("┌─┐xqq")  # SO alone does not switch to graphics
