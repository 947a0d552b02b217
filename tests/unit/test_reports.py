"""Each query the terminal answers, answered in xterm's exact bytes (xterm 379 configured as
a VT420, the reference of bench/conformance.py), and the editing that conformance needs:
margins, selective erase, rectangles, reverse wraparound."""

from __future__ import annotations

import pytest

from tests.support.fakes import Events
from vncmux.console.reports import checksum, colour_report, parse_colour, sgr_report
from vncmux.console.terminal import Cell, Terminal


def make(cols: int = 80, rows: int = 25) -> tuple[Terminal, list[bytes]]:
    events = Events()
    return Terminal(cols, rows, events=events), events.replies


def ask(query: bytes, setup: bytes = b"", cols: int = 80, rows: int = 25) -> list[bytes]:
    t, replies = make(cols, rows)
    t.feed(setup)
    del replies[:]
    t.feed(query)
    return replies


def text(t: Terminal, y: int) -> str:
    return "".join(c.data for c in t.line(y))


# -- device attributes and status ------------------------------------------------------


def test_device_attributes() -> None:
    assert ask(b"\x1b[c") == [b"\x1b[?64;1;2;6;9;15;16;17;18;21;22;28;29c"]
    assert ask(b"\x1bZ") == [b"\x1b[?64;1;2;6;9;15;16;17;18;21;22;28;29c"]  # DECID
    assert ask(b"\x1b[>c") == [b"\x1b[>41;379;0c"]
    assert ask(b"\x1b[=c") == [b"\x1bP!|00000000\x1b\\"]


@pytest.mark.parametrize(
    ("query", "answer"),
    [
        (b"\x1b[5n", b"\x1b[0n"),
        (b"\x1b[6n", b"\x1b[3;7R"),
        (b"\x1b[?6n", b"\x1b[?3;7;1R"),
        (b"\x1b[?15n", b"\x1b[?13n"),
        (b"\x1b[?25n", b"\x1b[?20n"),
        (b"\x1b[?26n", b"\x1b[?27;1;0;0n"),
        (b"\x1b[?55n", b"\x1b[?50n"),
        (b"\x1b[?56n", b"\x1b[?57;0n"),
        (b"\x1b[?62n", b"\x1b[0*{"),
        (b"\x1b[?63;123n", b"\x1bP123!~0000\x1b\\"),
        (b"\x1b[?75n", b"\x1b[?70n"),
        (b"\x1b[?85n", b"\x1b[?83n"),
    ],
)
def test_device_status_reports(query: bytes, answer: bytes) -> None:
    assert ask(query, setup=b"\x1b[3;7H") == [answer]


def test_cursor_report_in_origin_mode_with_all_margins() -> None:
    setup = b"\x1b[?69h\x1b[5;20s\x1b[4;10r\x1b[?6h\x1b[2;3H"
    assert ask(b"\x1b[6n", setup) == [b"\x1b[2;3R"]


# -- XTWINOPS ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "answer"),
    [
        (b"\x1b[18t", b"\x1b[8;25;80t"),
        (b"\x1b[19t", b"\x1b[9;25;80t"),
        (b"\x1b[14t", b"\x1b[4;400;640t"),
        (b"\x1b[16t", b"\x1b[6;16;8t"),
        (b"\x1b[11t", b"\x1b[1t"),
        (b"\x1b[13t", b"\x1b[3;0;0t"),
        (b"\x1b]2;hello\x07\x1b[21t", b"\x1b]lhello\x1b\\"),
        (b"\x1b]1;icon\x07\x1b[20t", b"\x1b]Licon\x1b\\"),
    ],
)
def test_window_reports(query: bytes, answer: bytes) -> None:
    assert ask(query) == [answer]


def test_window_size_follows_resize_and_cell_size() -> None:
    t, replies = make()
    t.resize(100, 40)
    t.set_cell_pixels(10, 20)
    t.feed(b"\x1b[18t\x1b[14t\x1b[16t")
    assert replies == [b"\x1b[8;40;100t", b"\x1b[4;800;1000t", b"\x1b[6;20;10t"]


def test_title_stack_and_hex_titles() -> None:
    t, replies = make()
    t.feed(b"\x1b]2;one\x07\x1b[22t\x1b]2;two\x07\x1b[23t\x1b[21t")
    assert replies == [b"\x1b]lone\x1b\\"]
    t.feed(b"\x1b[>0;1t\x1b]2;6162\x07\x1b[21t")
    assert t.title == "ab"
    assert replies[-1] == b"\x1b]l6162\x1b\\"


def test_resize_requests_are_ignored() -> None:
    t, replies = make()
    t.feed(b"\x1b[8;10;20t\x1b[18t")
    assert (t.cols, t.rows) == (80, 25)
    assert replies == [b"\x1b[8;25;80t"]


# -- DECRQM ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setup", "query", "answer"),
    [
        (b"", b"\x1b[4$p", b"\x1b[4;2$y"),
        (b"\x1b[4h", b"\x1b[4$p", b"\x1b[4;1$y"),
        (b"\x1b[20h", b"\x1b[20$p", b"\x1b[20;1$y"),
        (b"", b"\x1b[1$p", b"\x1b[1;4$y"),  # GATM: permanently reset
        (b"", b"\x1b[99$p", b"\x1b[99;0$y"),
        (b"", b"\x1b[?7$p", b"\x1b[?7;1$y"),
        (b"\x1b[?6h", b"\x1b[?6$p", b"\x1b[?6;1$y"),
        (b"\x1b[?1h", b"\x1b[?1$p", b"\x1b[?1;1$y"),
        (b"\x1b[?25l", b"\x1b[?25$p", b"\x1b[?25;2$y"),
        (b"\x1b[?69h", b"\x1b[?69$p", b"\x1b[?69;1$y"),
        (b"\x1b[?1049h", b"\x1b[?1049$p", b"\x1b[?1049;1$y"),
        (b"\x1b[?2004h", b"\x1b[?2004$p", b"\x1b[?2004;1$y"),
        (b"\x1b[?42h", b"\x1b[?42$p", b"\x1b[?42;1$y"),  # remembered only
        (b"", b"\x1b[?8$p", b"\x1b[?8;4$y"),  # DECARM: xterm says permanently reset
        (b"", b"\x1b[?34$p", b"\x1b[?34;0$y"),
        # Synchronized output, which xterm lacks (it answers 0): as kitty, foot, WezTerm
        # and Windows Terminal answer, so that programs find it and use it.
        (b"", b"\x1b[?2026$p", b"\x1b[?2026;2$y"),
        (b"\x1b[?2026h", b"\x1b[?2026$p", b"\x1b[?2026;1$y"),
        (b"\x1b[?2026h\x1b[?2026l", b"\x1b[?2026$p", b"\x1b[?2026;2$y"),
    ],
)
def test_mode_reports(setup: bytes, query: bytes, answer: bytes) -> None:
    assert ask(query, setup) == [answer]


@pytest.mark.parametrize("fast", [True, False])
def test_synchronized_updates_are_numbered_as_they_open(fast: bool) -> None:
    """Each update a program opens (mode 2026 set from reset) has a new number, so the
    display tells the next frame's update from one left open; a reset never reuses one."""
    t = Terminal(80, 25, fast=fast)
    assert t.open_update == 0
    t.feed(b"\x1b[?2026hframe one")
    assert t.open_update == 1
    t.feed(b"\x1b[?2026h more")  # (set again while open: the same update)
    assert t.open_update == 1
    t.feed(b"\x1b[?2026l")
    assert t.open_update == 0
    t.feed(b"\x1b[?2026lx\x1b[?2026h")
    assert t.open_update == 2
    t.feed(b"\x1bc")  # RIS closes it ...
    assert t.open_update == 0
    t.feed(b"\x1b[?2026h")  # ... and the next is a new one
    assert t.open_update == 3


def test_decrqm_is_not_answered_below_level_3() -> None:
    assert ask(b"\x1b[?7$p", b'\x1b[62;1"p') == []


def test_saved_modes_are_restored() -> None:
    t, replies = make()
    t.feed(b"\x1b[?1h\x1b[?1s\x1b[?1l\x1b[?1r\x1b[?1$p")
    assert replies == [b"\x1b[?1;1$y"]


# -- DECRQSS ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setup", "pt", "answer"),
    [
        (b"\x1b[1m", b"m", b"1$r0;1m"),
        (b"\x1b[1;4;31;102m", b"m", b"1$r0;1;4;31;102m"),
        (b"\x1b[5;6r", b"r", b"1$r5;6r"),
        (b"\x1b[?69h\x1b[3;4s", b"s", b"1$r3;4s"),
        (b"\x1b[4 q", b" q", b"1$r4 q"),
        (b'\x1b[1"q', b'"q', b'1$r1"q'),
        (b'\x1b[65;1"p', b'"p', b'1$r64;1"p'),
        (b"\x1b[0*x", b"*x", b"1$r0*x"),
        (b"", b"t", b"1$r25t"),
        (b"", b"zz", b"0$r"),
    ],
)
def test_setting_reports(setup: bytes, pt: bytes, answer: bytes) -> None:
    assert ask(b"\x1bP$q" + pt + b"\x1b\\", setup) == [b"\x1bP" + answer + b"\x1b\\"]


def test_sgr_report_of_a_truecolour() -> None:
    assert sgr_report(Cell(" ", fg="102030")) == "0;38:2::16:32:48"


def test_termcap_colours() -> None:
    assert ask(b"\x1bP+q436F\x1b\\") == [b"\x1bP1+r436F=323536\x1b\\"]
    assert ask(b"\x1bP+q544E\x1b\\") == [b"\x1bP0+r\x1b\\"]


# -- DECRQCRA ----------------------------------------------------------------------------------


def test_checksum_of_one_cell_is_its_character_negated() -> None:
    assert ask(b"\x1b[1;1;1;1;1;1*y", b"A") == [b"\x1bP1!~FFBF\x1b\\"]  # -0x41
    assert ask(b"\x1b[7;0;1;1;1;1*y") == [b"\x1bP7!~FFE0\x1b\\"]  # a blank counts as space


def test_checksum_counts_attributes_as_xterm() -> None:
    # bold 0x80, inverse 0x20, underline 0x10, blink 0x40
    assert checksum([Cell("A", bold=True)]) == f"{-(0x41 + 0x80) & 0xFFFF:04X}"
    assert checksum([Cell("A", reverse=True, underscore=True, blink=True)]) == (
        f"{-(0x41 + 0x70) & 0xFFFF:04X}"
    )
    assert checksum([Cell("é", fg="red")]) == f"{-0xE9 & 0xFFFF:04X}"


def test_checksum_of_a_rectangle_and_the_default_rectangle() -> None:
    t, replies = make(10, 3)
    t.feed(b"ab\r\ncd")
    t.feed(b"\x1b[1;0;1;1;2;2*y\x1b[2;0*y")
    expected_box = f"{-(ord('a') + ord('b') + ord('c') + ord('d')) & 0xFFFF:04X}"
    expected_all = f"{-(ord('a') + ord('b') + ord('c') + ord('d') + 26 * 32) & 0xFFFF:04X}"
    assert replies == [
        f"\x1bP1!~{expected_box}\x1b\\".encode(),
        f"\x1bP2!~{expected_all}\x1b\\".encode(),
    ]


# -- OSC colours --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "rgb"),
    [
        ("rgb:f0f0/f0f0/f0f0", (0xF0, 0xF0, 0xF0)),
        ("rgb:f/8/0", (0xFF, 0x88, 0x00)),
        ("#fff", (0xF0, 0xF0, 0xF0)),
        ("#808080", (0x80, 0x80, 0x80)),
        ("#f00f00f00", (0xF0, 0xF0, 0xF0)),
        ("#800080008000", (0x80, 0x80, 0x80)),
        ("CIEXYZ:1/1/1", None),
        ("rgb:zz/0/0", None),
    ],
)
def test_colour_specifications(spec: str, rgb: tuple[int, int, int] | None) -> None:
    assert parse_colour(spec) == rgb
    if rgb is not None:
        assert colour_report(rgb).count("/") == 2


def test_colour_queries() -> None:
    assert ask(b"\x1b]4;1;?\x1b\\") == [b"\x1b]4;1;rgb:cdcd/0000/0000\x1b\\"]
    assert ask(b"\x1b]4;1;?\x07") == [b"\x1b]4;1;rgb:cdcd/0000/0000\x07"]  # ended alike
    assert ask(b"\x1b]10;?\x1b\\") == [b"\x1b]10;rgb:0000/0000/0000\x1b\\"]
    assert ask(b"\x1b]11;?\x1b\\") == [b"\x1b]11;rgb:ffff/ffff/ffff\x1b\\"]
    assert ask(b"\x1b]4;0;#fff\x1b\\\x1b]4;0;?\x1b\\") == [b"\x1b]4;0;rgb:f0f0/f0f0/f0f0\x1b\\"]
    assert ask(b"\x1b]10;#808080;?\x1b\\") == [b"\x1b]11;rgb:ffff/ffff/ffff\x1b\\"]
    assert ask(b"\x1b]5;0;#123456\x1b\\\x1b]5;0;?\x1b\\") == [b"\x1b]5;0;rgb:1212/3434/5656\x1b\\"]


def test_colour_resets() -> None:
    t, replies = make()
    t.feed(b"\x1b]4;1;#000\x1b\\\x1b]104;1\x1b\\\x1b]4;1;?\x1b\\")
    t.feed(b"\x1b]10;#fff\x1b\\\x1b]110\x1b\\\x1b]10;?\x1b\\")
    assert replies == [b"\x1b]4;1;rgb:cdcd/0000/0000\x1b\\", b"\x1b]10;rgb:0000/0000/0000\x1b\\"]


# -- editing for conformance ----------------------------------------------------------------------


def test_left_right_margins_wrap_text_and_cr() -> None:
    t, _ = make(10, 4)
    t.feed(b"\x1b[?69h\x1b[2;4sabcdefgh")
    assert [text(t, y)[:5] for y in range(3)] == ["abcd ", " efg ", " h   "]
    t.feed(b"\r\x1b[6n")
    assert t.events.replies[-1] == b"\x1b[3;2R"  # type: ignore[attr-defined]


def test_moves_outside_the_scroll_region_are_not_clamped_to_it() -> None:
    t, replies = make(10, 10)
    t.feed(b"\x1b[4;6r\x1b[2;1H\x1b[5B\x1b[6n\x1b[9;1H\x1b[8A\x1b[6n")
    assert replies == [b"\x1b[6;1R", b"\x1b[4;1R"]  # stops at the margin it meets
    t.feed(b"\x1b[9;1H\x1b[5A\x1b[6n")
    assert replies[-1] == b"\x1b[4;1R"


def test_nel_goes_to_column_one() -> None:
    assert ask(b"\x1bE\x1b[6n", b"\x1b[3;7H") == [b"\x1b[4;1R"]


def test_selective_erase_spares_protected_characters() -> None:
    t, _ = make(10, 2)
    t.feed(b'a\x1b[1"qb\x1b[0"qc\x1b[?2K')
    assert text(t, 0)[:3] == " b "
    t.feed(b"\x1b[2K")  # ED/EL ignore DECSCA protection, as xterm
    assert text(t, 0)[:3] == "   "


def test_iso_protected_characters_survive_ed_el_ech() -> None:
    t, _ = make(10, 2)
    t.feed(b"ab\x1bVc\x1bW\x1b[1;1H\x1b[3X")
    assert text(t, 0)[:3] == "  c"
    t.feed(b"\x1b[2J\x1b[2K")
    assert text(t, 0)[:3] == "  c"
    t.feed(b"\x1b[?2J")  # the selective erase spares them too
    assert text(t, 0)[:3] == "  c"
    t.feed(b"\x1b[!p\x1b[2J")  # DECSTR ends the ISO protection mode: ED erases all
    assert text(t, 0)[:3] == "   "


def test_rectangle_fill_erase_and_copy() -> None:
    t, _ = make(10, 4)
    t.feed(b"\x1b[88;2;2;3;4$x")  # DECFRA 'X' rows 2-3, columns 2-4
    assert [text(t, y)[:5] for y in range(4)] == ["     ", " XXX ", " XXX ", "     "]
    t.feed(b"\x1b[2;1;2;4;1;3;6;1$v")  # DECCRA to row 3, column 6
    assert text(t, 2)[:9] == " XXX  XXX"
    t.feed(b"\x1b[1;1;4;3$z")  # DECERA columns 1-3
    assert [text(t, y)[:5] for y in range(4)] == ["     ", "   X ", "   X ", "     "]


def test_insert_and_delete_columns_and_characters_within_margins() -> None:
    t, _ = make(10, 2)
    t.feed(b"abcdefghij\x1b[?69h\x1b[3;6s\x1b[1;4H\x1b[2@")
    assert text(t, 0) == "abc  dghij"
    t.feed(b"\x1b[1;3H\x1b[1P")
    assert text(t, 0) == "ab  d ghij"
    t.feed(b"\x1b[1;4H\x1b[1'~")  # DECDC
    assert text(t, 0) == "ab d  ghij"


def test_reverse_wraparound() -> None:
    assert ask(b"\x1b[3;1H\x08\x1b[6n", b"\x1b[?45h") == [b"\x1b[2;80R"]
    assert ask(b"\x1b[3;1H\x08\x1b[6n") == [b"\x1b[3;1R"]  # off by default
    assert ask(b"\x1b[3;1H\x08\x1b[6n", b"\x1b[?45h\x1b[!p") == [b"\x1b[3;1R"]  # DECSTR


@pytest.mark.parametrize("fast", [True, False])
def test_more_fix_wraps_a_tab_after_a_full_line(fast: bool) -> None:
    """Mode 41 (xterm's "more(1) fix"): a tab right after the last column's character
    wraps first; without it the tab stays on the full line's last cell (as xterm)."""
    events = Events()
    t = Terminal(20, 4, events=events, fast=fast)
    t.feed(b"\x1b[?41h\r\n" + b"x" * 20 + b"\t1\x1b[6n")
    assert events.replies == [b"\x1b[3;10R"]  # (the '1' at row 3, column 9)
    assert text(t, 2)[8] == "1" and text(t, 1) == "x" * 20
    t.feed(b"\x1b[?41l\x1b[H\x1b[2J" + b"y" * 20 + b"\t2\x1b[6n")
    assert events.replies[1:] == [b"\x1b[2;2R"]  # the tab stayed: '2' wrapped alone
    assert text(t, 0) == "y" * 20 and text(t, 1)[0] == "2"


def test_saved_cursor_is_kept_per_screen() -> None:
    t, replies = make()
    t.feed(b"\x1b[5;5H\x1b7\x1b[?1047h\x1b[9;9H\x1b7\x1b[?1047l\x1b8\x1b[6n")
    assert replies == [b"\x1b[5;5R"]


def test_ed_3_leaves_the_screen() -> None:
    t, _ = make(10, 2)
    t.feed(b"keep\x1b[3J")
    assert text(t, 0).startswith("keep")


def test_alternate_screen_47_keeps_its_content() -> None:
    t, _ = make(10, 2)
    t.feed(b"\x1b[?47halt\x1b[?47l\x1b[?47h")
    assert text(t, 0).startswith("alt")


def test_soft_reset() -> None:
    t, replies = make(10, 5)
    t.feed(b"\x1b[2;4r\x1b[?6h\x1b[4h\x1b[1m\x1b[?25l\x1b[!p")
    t.feed(b"\x1b[?6$p\x1b[4$p\x1bP$qm\x1b\\\x1bP$qr\x1b\\\x1b[?25$p")
    assert replies == [
        b"\x1b[?6;2$y",
        b"\x1b[4;2$y",
        b"\x1bP1$r0m\x1b\\",
        b"\x1bP1$r1;5r\x1b\\",
        b"\x1b[?25;1$y",
    ]


def test_dec_special_graphics_draw_lines() -> None:
    t, _ = make(10, 2)
    t.feed(b"\x1b(0lqk\x1b(Bx\x0e\x0f")
    assert text(t, 0)[:4] == "┌─┐x"
    t.feed(b"\r\n\x1b)0a\x0eq\x0fq")  # G1 designated, shifted in and out
    assert text(t, 1)[:3] == "a─q"
