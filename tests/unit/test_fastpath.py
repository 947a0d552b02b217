"""The terminal's fast path against its slow path (and against plain pyte).

Differential tests: the same bytes, cut into the same chunks at arbitrary places (inside
escape sequences and UTF-8 characters), go to a ``Terminal(fast=True)`` and a
``Terminal(fast=False)``; after every chunk both must hold the same state (every cell of
every line with its attributes and the line's default, the cursor including the pending-wrap
column, attributes, modes, title, parser state, ...), and at damage points each terminal's
damage applied to a shadow of its last picture must give its new picture.  On output pyte
itself interprets correctly (plain and coloured text) the cells must equal plain pyte's.

Every test runs twice: on the compiled token loop and on the Python one (see ``loop``).
"""

from __future__ import annotations

import gzip
import random
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyte
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.fakes import Events
from tests.support.screen_picture import catch_up, picture
from vncmux.console.fasttokens import TOKEN
from vncmux.console.parser import CSI, ESCAPE, GROUND
from vncmux.console.terminal import Terminal


@pytest.fixture(scope="module", autouse=True, params=["compiled", "python"])
def loop(request: pytest.FixtureRequest) -> Any:
    """Every test here runs on both token loops: the compiled one (``_fastloop_c/``, which
    CI builds: a missing build fails there) and the Python one, its reference."""
    from vncmux.console import compiled, fastrows

    if request.param == "compiled" and compiled.LOOP is None:
        pytest.skip("the compiled token loop was not built (no C compiler at install time?)")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fastrows, "LOOP", compiled.LOOP if request.param == "compiled" else None)
        yield request.param


def test_the_loop_under_test_is_in_use(loop: str) -> None:
    from vncmux.console import compiled

    fast = Terminal(5, 2)._parser.fast
    assert fast is not None
    assert fast.compiled is (compiled.LOOP if loop == "compiled" else None)


WORDS = [
    "kernel",
    "usb",
    "eth0",
    "link",
    "up",
    "systemd",
    "error",
    "GET",
    "200",
    "[ok]",
    "a",
    "",
    "x" * 30,
    "tab\there",
    "bs\x08\x08",
    "~!@#$%^&*()_+{}|:<>?",
    "привет",
    "│─┼▒",
    "naïve",
    "\ufffd",
    "中文",
    "e\u0301",
    "a\u200db",
]
SGRS = [
    "0",
    "",
    "1",
    "2",
    "3",
    "4",
    "5",
    "7",
    "9",
    "22",
    "23",
    "24",
    "25",
    "27",
    "29",
    "31",
    "32",
    "37",
    "39",
    "41",
    "47",
    "49",
    "90",
    "97",
    "100",
    "107",
    "1;31",
    "38;5;208",
    "48;5;236",
    "38;5;3",
    "38;2;255;128;0",
    "48;2;1;2;3",
    "38:2::1:2:3",
    "4:3",
    "1;2;3;4;5;7;9",
]


# -- generators of realistic output ----------------------------------------------------


def plain_lines(rng: random.Random, n: int, cols: int) -> bytes:
    out = []
    for i in range(n):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, cols // 4)))
        out.append(f"{i:05d} {words}" + rng.choice(["\r\n", "\r\n", "\n", "\r\n\r\n", ""]))
    return "".join(out).encode()


def colour_lines(rng: random.Random, n: int, sgrs: Sequence[str] = SGRS) -> bytes:
    out = []
    for _ in range(n):
        parts = [
            f"\x1b[{rng.choice(sgrs)}m{rng.choice(WORDS)}\x1b[0m" for _ in range(rng.randint(1, 10))
        ]
        out.append(" ".join(parts) + "\r\n")
    return "".join(out).encode()


def tui_frames(rng: random.Random, n: int, cols: int, rows: int, erase_attrs: bool = True) -> bytes:
    out = []
    for frame in range(n):
        out.append("\x1b[?25l\x1b[H\x1b[7m" + f" frame {frame} ".ljust(cols) + "\x1b[0m")
        for r in range(2, rows + 1):
            out.append(
                f"\x1b[{r};{rng.randint(0, 3)}H\x1b[{rng.choice(SGRS)}m"
                f"{rng.choice(WORDS)}\x1b[0m {'|' * rng.randint(0, cols)}"
                f"\x1b[{rng.choice(SGRS)}m"
                * rng.randint(0, erase_attrs)
                + f"\x1b[{rng.choice(['', '0', '1', '2'])}K\x1b[0m"
            )
        out.append(
            rng.choice(
                [
                    "\x1b[J",
                    "\x1b[1J",
                    "\x1b[2J",
                    "\x1b[3J",
                    "\x1b[5J",
                    "",
                    "\x1b[7K",
                    "\x1b[2;2f",
                    "\x1b[99;99H",
                    "\x1b[;H",
                ]
            )
        )
        out.append("\x1b[?25h")
    return "".join(out).encode()


def wide_text(rng: random.Random, n: int) -> bytes:
    """CJK, emoji and Latin mixed, lines of any length (wide characters meet the edge)."""
    pieces = ["中文", "日本語", "한국어", "😀", "x", "ab ", "é", "\x1b[31m", "\x1b[0m", "\t"]
    return "".join(
        "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        + rng.choice(["\r\n", "\n", "", "\x08"])
        for _ in range(n)
    ).encode()


def region_edits(
    rng: random.Random, n: int, cols: int, rows: int, erase_attrs: bool = True
) -> bytes:
    """What vim, less, tmux and dialog send: scroll regions set and reset, lines printed
    into a region (line feeds at its bottom, RI at its top, IND, NEL), insert/delete of
    lines and characters, ECH/EL/ED with colours, cursor moves, DEC line drawing."""
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.15:
            top = rng.randint(0, rows)
            out.append(rng.choice([f"\x1b[{top};{rng.randint(0, rows + 1)}r", "\x1b[r"]))
        elif r < 0.35:  # a line into the region, as tmux prints into a pane
            line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 6)))
            out.append(
                f"\x1b[{rng.randint(1, rows)};1H"
                + rng.choice(["\r\n", "\n", "\x1bD", "\x1bE", "\x1bM", "\x1b[A", ""])
                + f"\x1b[{rng.choice(SGRS if erase_attrs else ['0', '1', '31'])}m{line}"
                + rng.choice(["\r\n", "\x1b[K", "\r", ""])
            )
        elif r < 0.55:
            final = rng.choice("@LMPSTXABCDEFGIZ`ade")
            count = rng.choice(["", "0", "1", "2", str(rng.randint(3, cols + 2)), "9999"])
            out.append(f"\x1b[{count}{final}")
        elif r < 0.65:  # line drawing, as dialog draws its boxes
            out.append(
                rng.choice(["\x1b(0", "\x1b)0\x0e", "\x1b(B", "\x0f", "", "\x1b(0\x1b[1;37m"])
                + rng.choice(["lqqk", "x  x", "mqqj", "tqu", "a`~"])
                + rng.choice(["\x1b[2b", "\x1b(B", "\x0f", "", "\x1b(B\x1b[m", "\x1b(B\x1b[0;7m"])
            )
        elif r < 0.75:
            out.append(rng.choice(["\x1b7", "\x1b8", "\x1b[s", "\x1b[u"]))
        elif r < 0.85:
            out.append(
                "".join(f"\x1b[{rng.choice(SGRS)}m" for _ in range(rng.randint(0, 4)))
                + f"\x1b[{rng.choice(['', '1;37;44', '7', '0', '48;5;236'])}m"
                + rng.choice(["\x1b[K", "\x1b[1K", "\x1b[2K", "\x1b[J", "\x1b[1J", "\x1b[2J"])
            )
        else:
            out.append("x" * rng.randint(0, 2 * cols) + rng.choice(["\r\n", "\n" * rows, ""]))
    return "".join(out).encode()


SPECIAL = [
    b"\x1b[5;10r",
    b"\x1b[r",
    b"\x1b[?6h",
    b"\x1b[?6l",
    b"\x1b[4h",
    b"\x1b[4l",
    b"\x1b[20h",
    b"\x1b[20l",
    b"\x1b[?7l",
    b"\x1b[?7h",
    b"\x1b(0",
    b"\x1b(B",
    b"\x0e",
    b"\x0f",
    b"\x1b)0",
    b"\x1bH",
    b"\x1b[3g",
    b"\x1b[g",
    b"\x1b#8",
    b"\x1bc",
    b"\x1b7",
    b"\x1b8",
    b"\x1b[?1049h",
    b"\x1b[?1049l",
    b"\x1bM",
    b"\x1bD",
    b"\x1b[2S",
    b"\x1b[3b",
    b"\x1b[?5h",
    b"\x1b[?5l",
    b"\x1b]0;title\x07",
    b"\x1b[6n",
    "é中\u0301".encode(),
    b"\x1b[?25l",
    b"\x1b[?25h",
    b"\x1b[K",
    b"\x1b[2K",
    b"\x1b[1J",
    b"\x07",
    b"\t",
    b"\x1b[1;1H",
    b"\x1b[999;999H",
    b"\x1b[0;0f",
    b"\x1b[1;2;3H",
    b"\x1b[m",
    b"\x1b[?1m",
    b"\x1b[" + b"1;" * 200 + b"m",
    b"\x1b[" + b"9" * 300 + b"H",
    b"\xe2\x94",
    b"\x80",
    "中\x1b[2b".encode(),
    "e\u0301\x1b[3b".encode(),
    b"x\x1b[9999b",
    b"\x1b[b",
    b"\x1b[0;5b",
    b"\x1b[22;0;0t",
    b"\x1b[23;0;0t",
    b"\x1b[18t",
    b"\x1b[5T",
    b"\x1b[1;2;3;4;5T",
    b"\x1b[4;20h",
    b"\x1b[2;4l",
    b"\x1b[?7;1000l",
]


def mixed(rng: random.Random, n: int, cols: int, rows: int) -> bytes:
    out = []
    for _ in range(n):
        kind = rng.randrange(5)
        if kind == 0:
            out.append(plain_lines(rng, rng.randint(1, 3 * rows), cols))
        elif kind == 1:
            out.append(colour_lines(rng, rng.randint(1, 5)))
        elif kind == 2:
            out.append(tui_frames(rng, 1, cols, rows))
        elif kind == 3:
            out.append(rng.randbytes(rng.randint(1, 40)))
        elif kind == 4 and rng.random() < 0.5:
            out.append(region_edits(rng, rng.randint(1, 20), cols, rows))
        else:
            out.append(b"".join(rng.choice(SPECIAL) for _ in range(rng.randint(1, 4))))
    return b"".join(out)


def cut(rng: random.Random, data: bytes, max_chunk: int = 64) -> list[bytes]:
    """Chunks of random length: boundaries fall anywhere, in sequences and characters."""
    chunks, i = [], 0
    while i < len(data):
        n = rng.randint(1, max_chunk)
        chunks.append(data[i : i + n])
        i += n
    return chunks


# -- comparing ------------------------------------------------------------------------


def state(t: Terminal) -> dict[str, Any]:
    """Everything observable about a terminal (without creating rows in its buffer)."""
    t._settle()
    s = t._screen
    lines = []
    for y in range(t.rows):
        line = s.buffer.get(y)
        # All the cells the line holds, even beyond the width (a resize may show them).
        lines.append(
            None
            if line is None or (not line and line.default == s.default_char)
            else (line.default, dict(line))
        )
    c = s.cursor
    return {
        "lines": lines,  # (what ``line`` shows is compared at damage points: ``picture``)
        "cursor": (c.x, c.y, c.hidden, c.attrs),
        "mode": set(s.mode),
        "modes": vars(t.modes).copy(),
        "title": t.title,
        "last_char": s.last_char,
        "charset": (s.charset, s.g0_charset == s.g1_charset, s.g0_charset[:128]),
        "margins": s.margins,
        "tabstops": set(s.tabstops),
        "alt": s.in_alt,
        "reverse": s.reverse_screen,
        "saved": [(p.cursor.x, p.cursor.y) for p in s.savepoints],
        "parser": parser_state(t),
    }


def parser_state(t: Terminal) -> tuple[Any, ...]:
    """What the parser holds of a sequence not yet complete that can still matter (between
    sequences, nothing; after a bare ESC, its intermediates only: the CSI parameters are
    then stale; in a CSI sequence that overflowed, only that it did)."""
    p = t._parser
    if p.state == GROUND:
        return (GROUND,)
    if p.state == ESCAPE:
        return (ESCAPE, p.inter, p.overflow)
    if p.state == CSI:  # (an overflowing sequence is dropped whole: the rest is dead)
        return (CSI, True) if p.overflow else (CSI, p.buf, p.inter)
    return (p.state, p.buf, p.inter)


class Pair:
    """A fast and a slow terminal fed alike, each with a shadow picture for its damage."""

    def __init__(self, cols: int, rows: int) -> None:
        self.events = (Events(), Events())
        self.fast = Terminal(cols, rows, events=self.events[0], fast=True)
        self.slow = Terminal(cols, rows, events=self.events[1], fast=False)
        self.shadows = [picture(self.fast), picture(self.slow)]
        self.fast.take_damage()
        self.slow.take_damage()

    def feed(self, chunk: bytes) -> None:
        self.fast.feed(chunk)
        self.slow.feed(chunk)
        assert state(self.fast) == state(self.slow), chunk
        fast, slow = self.events
        assert fast.bells == slow.bells, chunk
        assert fast.gone == slow.gone, chunk  # every row scrolled off, at every feed

    def damage(self) -> None:
        for i, t in enumerate((self.fast, self.slow)):
            d = t.take_damage()
            now = picture(t)
            assert catch_up(self.shadows[i], now, d) == now, (i, d)
            self.shadows[i] = now
        assert self.shadows[0] == self.shadows[1]

    def check(self, chunks: Sequence[bytes], rng: random.Random) -> None:
        for chunk in chunks:
            self.feed(chunk)
            if rng.random() < 0.3:
                self.damage()
            if rng.random() < 0.05:  # the device-down banner comes and goes
                status = rng.choice([None, "down"])
                self.fast.set_status(status)
                self.slow.set_status(status)
        self.damage()
        fast, slow = self.events
        assert fast.replies == slow.replies
        assert fast.titles == slow.titles
        assert fast.bells == slow.bells
        assert fast.gone == slow.gone


# -- the differential tests --------------------------------------------------------------

SIZES = [(80, 24), (8, 6), (1, 1), (13, 3)]
STREAMS: dict[str, Callable[[random.Random, int, int], bytes]] = {
    "plain": lambda rng, c, r: plain_lines(rng, 300, c),
    "long-lines": lambda rng, c, r: b"".join(
        b"x" * rng.randint(0, 4 * c) + rng.choice([b"\r\n", b"", b"\x08", b"\r"])
        for _ in range(100)
    ),
    "colour": lambda rng, c, r: colour_lines(rng, 200),
    "tui": lambda rng, c, r: tui_frames(rng, 10, c, r),
    "random": lambda rng, c, r: rng.randbytes(3000),
    "wide": lambda rng, c, r: wide_text(rng, 150),
    "mixed": lambda rng, c, r: mixed(rng, 60, c, r),
    "regions": lambda rng, c, r: region_edits(rng, 600, c, r),
}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("kind", list(STREAMS))
def test_fast_and_slow_paths_give_the_same_screen(kind: str, size: tuple[int, int]) -> None:
    rng = random.Random(f"{kind}-{size}")
    cols, rows = size
    data = STREAMS[kind](rng, cols, rows)
    pair = Pair(cols, rows)
    pair.check(cut(rng, data), rng)
    # The same stream in one piece, and byte by byte, ends in the same state too.
    whole = Pair(cols, rows)
    whole.check([data], rng)
    for t in (whole.fast, pair.fast):
        t.set_status(None)  # (the two pairs saw different banners)
    assert state(whole.fast) == state(pair.fast)


def test_modes_the_fast_path_leaves_to_the_slow_path() -> None:
    """Under each state the fast path does not model, both paths still agree."""
    rng = random.Random(7)
    for prefix in (
        b"\x1b[3;5r\x1b[5;1H",
        b"\x1b[?6h",
        b"\x1b[4h",
        b"\x1b(0",
        b"\x1b)0\x0e",
        b"\x1b[20h",
        b"\x1b[?7l",
        b"\x1b#8",
        b"\x1b[?1049h",
    ):
        pair = Pair(10, 5)
        pair.feed(prefix)
        pair.check(cut(rng, mixed(rng, 20, 10, 5)), rng)


ISO_PIECES = [
    b"\x1bV",  # SPA: protected from here, and ISO protection on
    b"\x1bW",  # EPA
    b"kept",
    b"\x1b[K",
    b"\x1b[1K",
    b"\x1b[2K",
    b"\x1b[J",
    b"\x1b[1J",
    b"\x1b[2J",
    b"\x1b[X",
    b"\x1b[3X",
    b"\x1b[2;3H",
    b"\x1b[2;3f",
    b"\r\n",
    b"\x1b[44m",
    b'\x1b[1"q',  # DECSCA: ISO protection off again
    b"\x1b[!p",  # DECSTR: likewise
]


def test_iso_protection_gives_the_same_screen_on_both_paths() -> None:
    """After SPA the fast path keeps running text and moves, and leaves ED, EL and ECH
    (which then spare protected characters) to the slow path: both paths agree."""
    rng = random.Random(13)
    for size in ((10, 5), (80, 24)):
        for _ in range(20):
            data = b"\x1bV" + b"".join(
                rng.choice(ISO_PIECES) if rng.random() < 0.7 else mixed(rng, 1, *size)
                for _ in range(40)
            )
            Pair(*size).check([data], rng)  # (whole: the longest fast runs)
            Pair(*size).check(cut(rng, data), rng)


def test_protected_characters_survive_erases_and_text_stays_fast() -> None:
    """Characters written after SPA survive ED, EL and ECH on both paths; text written
    meanwhile is the fast path's (the slow parser sees only the erases)."""
    data = b"\x1bVab\x1bWcd\r\x1b[K\x1b[2J\x1b[3;1Hef\x1b[1;1H\x1b[9X\x1b[4;1Hgh\x1b[2K"
    rows = []
    for fast in (True, False):
        t = Terminal(10, 4, fast=fast)
        t.feed(data)
        rows.append(["".join(c.data for c in t.line(y)).rstrip() for y in range(4)])
    assert rows[0] == rows[1] == ["ab", "", "ef", ""]
    t = Terminal(80, 24)
    t.feed(b"\x1bVab\x1bW")
    parser = t._parser
    calls: list[str] = []
    original = parser._guard

    def spy(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        calls.append(fn.__name__)
        original(fn, *args, **kwargs)

    parser._guard = spy  # type: ignore[method-assign]
    t.feed(b"text " * 100 + b"\x1b[31m\r\n\x1b[5;5Hmore\x1b[Kand\x1b[2Xon\x1b[J\r\n")
    assert calls == ["erase_in_line", "erase_characters", "erase_in_display"]
    assert t._screen.iso_protection


_piece = st.one_of(
    st.sampled_from(SPECIAL),
    st.text(alphabet="ab \t\r\n\x08é中", max_size=30).map(str.encode),
    st.sampled_from(SGRS).map(lambda p: f"\x1b[{p}m".encode()),
    st.builds(
        lambda r, c, f: f"\x1b[{r};{c}{f}".encode(),
        st.integers(0, 9),
        st.integers(0, 12),
        st.sampled_from("HfKJb"),
    ),
    st.builds(lambda n: b"y" * n, st.integers(0, 40)),
    st.builds(
        lambda a, b, f: f"\x1b[{a};{b}{f}".encode(),
        st.integers(0, 7),
        st.integers(0, 7),
        st.sampled_from("r@LMPSTXABCDGd"),
    ),
    st.sampled_from([b"\x1bM", b"\x1bD", b"\x1bE", b"\x1b7", b"\x1b8", b"\x1b(0q", b"\x0e"]),
    st.binary(max_size=8),
)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pieces=st.lists(_piece, max_size=40),
    seed=st.integers(0, 2**32),
    size=st.sampled_from([(10, 4), (5, 2), (1, 1), (12, 6)]),
)
def test_generated_mixes_agree(pieces: list[bytes], seed: int, size: tuple[int, int]) -> None:
    rng = random.Random(seed)
    pair = Pair(*size)
    pair.check(cut(rng, b"".join(pieces), 12), rng)


# -- against plain pyte ------------------------------------------------------------------

# SGR that pyte 0.8.2 interprets as xterm does: SGRS without faint, the colon forms and
# 38;5;<16 (which we map to the 16 names), plus two 256-colour indexes above 15.
PYTE_MISREADS = {"2", "38;5;3", "38:2::1:2:3", "4:3", "1;2;3;4;5;7;9"}
PYTE_SGRS = [sgr for sgr in SGRS if sgr not in PYTE_MISREADS] + ["38;5;16", "38;5;255"]


def pyte_cells(screen: pyte.Screen, y: int, cols: int) -> list[tuple[Any, ...]]:
    return [tuple(screen.buffer[y][x]) for x in range(cols)]


def our_cells(t: Terminal, y: int) -> list[tuple[Any, ...]]:
    """Raw cells (``line`` would tidy wide characters pyte leaves half-overwritten)."""
    t._settle()
    line = t._screen.buffer[y]
    return [tuple(line[x])[:9] for x in range(t.cols)]  # pyte's Char: all but faint


class XtermTabs(pyte.Screen):
    """pyte with xterm's tab from the pending-wrap column: the cursor stays there (pyte
    moves it back onto the last cell, so the next character overwrote it).  vncmux does
    as xterm; otherwise the comparison with pyte stands as it is."""

    def tab(self) -> None:
        if self.cursor.x < self.columns:
            super().tab()


@pytest.mark.parametrize("kind", ["plain", "long-lines", "colour", "tui", "wide"])
def test_same_cells_as_pyte(kind: str) -> None:
    rng = random.Random(kind)
    cols, rows = 80, 24
    if kind == "colour":
        data = colour_lines(rng, 300, PYTE_SGRS)
    elif kind == "tui":
        # (pyte erases with all the attributes, xterm and we with colours and reverse only)
        data = b"".join(tui_frames(rng, 1, cols, rows, erase_attrs=False) for _ in range(3))
        for seq in (b"\x1b[7K", b"\x1b[3J", b"\x1b[5J"):  # pyte raises, or clears less
            data = data.replace(seq, b"")
        data = data.replace(b"\x1b[38:2::1:2:3m", b"").replace(b"\x1b[4:3m", b"")
        for params in ("2", "38;5;3", "1;2;3;4;5;7;9"):
            data = data.replace(f"\x1b[{params}m".encode(), b"\x1b[1m")
    else:
        data = STREAMS[kind](rng, cols, rows)
    for mark in ("\u0301", "\u200d"):  # pyte mishandles these marks
        data = data.replace(mark.encode(), b"")
    t = Terminal(cols, rows, fast=True)
    screen = XtermTabs(cols, rows)
    stream = pyte.ByteStream(screen)
    for chunk in cut(rng, data, 300):
        t.feed(chunk)
        stream.feed(chunk)
    for y in range(rows):
        assert our_cells(t, y) == pyte_cells(screen, y, cols), y
    assert (screen.cursor.x, screen.cursor.y) == (t._screen.cursor.x, t._screen.cursor.y)


# -- behaviour at the edges (the speed figures are in bench/console_feed.py) ---------------


@pytest.mark.parametrize("size", [(10, 4), (3, 2), (1, 1)])
def test_repeat_is_a_screenful_at_most(size: tuple[int, int]) -> None:
    for data in (
        b"x\x1b[9999b",
        b"ab\x1b[5b\r\n\x1b[b",
        "\u0444\x1b[999b".encode(),
        b"\x1b[?7lq\x1b[99b",
    ):
        pair = Pair(*size)
        pair.check([data], random.Random(0))
        pair.check([b"\x1b[H" + data, b"\x1b[3b"], random.Random(1))


def test_erasing_keeps_colours_and_reverse_not_the_rest() -> None:
    for sgr in SGRS:
        for erase in (b"\x1b[K", b"\x1b[1K", b"\x1b[2K", b"\x1b[J", b"\x1b[1J", b"\x1b[2J"):
            pair = Pair(6, 3)
            pair.check(
                [b"abcdefghijklm\x1b[2;3H\x1b[%sm" % sgr.encode() + erase + b"z"], random.Random(0)
            )


@pytest.mark.parametrize("feeds", [[b"\n"], [b"\n", b"\n\n"], [b"\r\n" * 5]])
def test_scrolling_under_the_banner_redraws_where_it_was(feeds: list[bytes]) -> None:
    """The last picture showed the banner on the bottom row; a scroll moves that picture
    up, so the row it lands on must be redrawn even when nothing else marks it."""
    pair = Pair(10, 4)
    pair.feed(b"abc\x1b[?25l\x1b[4;1H")
    for t in (pair.fast, pair.slow):
        t.set_status("down")
    pair.damage()
    for data in feeds:
        pair.feed(data)
        pair.damage()


def panes(rng: random.Random, n: int) -> list[bytes]:
    """Two tmux panes printing in turn: each line is a scroll of its pane's region (rows
    1-5 or 7-11 of 12), then the margins go back to the whole screen; now and then a
    reverse index at a pane's top and a line of the whole screen."""
    out = []
    for i in range(n):
        top, bottom = rng.choice([(1, 5), (7, 11)])
        word = f"pane {top} line {i} " + "x" * rng.randint(0, 20)
        out.append(f"\x1b[{top};{bottom}r\x1b[{bottom};1H\n\x1b[A{word}\r\n\x1b[K".encode())
        if rng.random() < 0.1:
            out.append(f"\x1b[{top};1H\x1bM\x1b[7mrev {i}\x1b[m".encode())
        if rng.random() < 0.05:
            out.append(b"\x1b[r\x1b[12;1H\nwhole screen")
        out.append(b"\x1b[1;12r\x1b[12;1H")
    return out


@pytest.mark.parametrize("seed", range(4))
def test_alternating_pane_scrolls_keep_damage_exact(seed: int) -> None:
    """Region scrolls of two panes in turn, damage taken rarely (the bookkeeping then
    meets regions already wholly dirty) or often: the pictures still catch up, and the
    fast path agrees with the slow one."""
    rng = random.Random(seed)
    pair = Pair(40, 12)
    for chunk in panes(rng, 300):
        pair.feed(chunk)
        if rng.random() < (0.01 if seed % 2 else 0.3):
            pair.damage()
    pair.damage()


def test_a_burst_of_lines_is_one_full_screen_of_damage() -> None:
    t = Terminal(20, 5)
    t.take_damage()
    t.feed(b"".join(b"line %d\r\n" % i for i in range(1000)))
    d = t.take_damage()
    assert d.rows == set(range(5)) and (d.scroll is None or d.scroll.count > 0)
    t.feed(b"a\r\nb\r\n")
    d = t.take_damage()
    assert d.scroll is not None and d.scroll.count == 2
    assert d.rows == {2, 3, 4}  # the two new rows and the cursor's old row


def test_a_region_scroll_is_damage_as_a_scroll() -> None:
    """Lines printed into a scroll region run on the pending rows alone (the screen
    records the scroll, moving nothing): the rows that only moved are not redrawn, the
    scroll is one scroll of the region, and the lines are where the slow path puts them."""
    data = b"".join(b"row %d\r\n" % i for i in range(10)) + b"\x1b[2;8r\x1b[8;1H"
    fast, slow = Terminal(20, 10), Terminal(20, 10, fast=False)
    for t in (fast, slow):
        t.feed(data)
        t.take_damage()
        t.feed(b"\nnew one\nnew two")
    d = fast.take_damage()
    assert d.scroll is not None and (d.scroll.top, d.scroll.bottom, d.scroll.count) == (1, 7, 2)
    assert d.rows == {5, 6, 7}  # the two exposed rows and the cursor's old row, moved
    d_slow = slow.take_damage()
    assert (d.rows, d.scroll) == (d_slow.rows, d_slow.scroll)
    assert [our_cells(fast, y) for y in range(10)] == [our_cells(slow, y) for y in range(10)]
    assert "".join(c.data for c in fast.line(5)).rstrip() == "row 8"  # (row 7 before)


def test_a_failing_token_is_dropped_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in the slow path, an exception drops one token, not the rest of the chunk."""
    t = Terminal(20, 3)
    fast = t._parser.fast
    assert fast is not None

    def broken(params: str) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(fast, "_params", broken)
    t.feed(b"ab\x1b[2;2Hcd\r\nef")
    assert ["".join(c.data for c in t.line(y)).rstrip() for y in range(3)] == ["abcd", "ef", ""]


@pytest.mark.parametrize(
    "data",
    [
        b"\x1b[99999999999999999999999Cx\x1b[99999999999999999999;99999999999999999999Hy",
        b"ab\x1b[99999999999999999999999X\x1b[18446744073709551617Dz\x1b[9223372036854775808b",
        b"\x1b[2;99999999999999999999rq\x1b[99999999999999999999L\x1b[99999999999999999999S",
    ],
)
def test_huge_parameters_agree(data: bytes) -> None:
    """Parameters past any machine integer (which the compiled loop clamps) have the same
    effect on both paths."""
    Pair(10, 4).check([data], random.Random(0))


class Stop(BaseException):
    """Not an Exception: what the loops must let through (as KeyboardInterrupt)."""


def test_a_failure_to_log_a_dropped_token_propagates() -> None:
    """A token that fails is dropped and logged; if the logging itself fails, that is not
    swallowed (both loops: Python's ``except`` block lets it through)."""
    t = Terminal(20, 3)
    fast = t._parser.fast
    assert fast is not None

    def broken(params: str) -> None:
        raise ValueError("boom")

    def dropped(error: BaseException) -> None:
        raise Stop()

    fast._parse_params = broken  # type: ignore[method-assign,assignment]
    fast._dropped = dropped  # type: ignore[method-assign]
    with pytest.raises(Stop):
        fast.run("ab\x1b[5Ccd", 0)


def test_cursor_positions_follow_a_resize() -> None:
    """CUP positions the fast path caches are clamped to the size in force."""
    pair = Pair(80, 24)
    pair.feed(b"\x1b[20;70Hx\x1b[3;9r\x1b[9;1H\nabc\x1bM")
    for t in (pair.fast, pair.slow):
        t.resize(40, 10)
    pair.feed(b"\x1b[20;70Hy\x1b[2;5r\x1b[20;70Hz\x1b[5;1H\n\x1b[r\x1b[9;39Hw")
    assert pair.fast._screen.cursor.y == 8


def pyte_region_edits(rng: random.Random, n: int, cols: int, rows: int) -> bytes:
    """Scroll-region work that pyte 0.8.2 interprets as xterm does: the cursor stays inside
    the region, lines do not wrap, and cells are erased or shifted in without colours (pyte
    fills them otherwise)."""
    top, bottom = 3, rows - 3
    out = [f"\x1b[{top};{bottom}r"]
    for _ in range(n):
        y = rng.randint(top, bottom)
        sgr = rng.choice(["0", "31", "32;44", "7", "0;35"])
        words = " ".join(rng.choice(["vim", "less", "tmux", "x" * 20]) for _ in range(3))
        out.append(
            rng.choice(
                [
                    f"\x1b[{bottom};1H\r\n\x1b[{sgr}m{words}\x1b[0m",  # scroll up, new line
                    f"\x1b[{top};1H\x1bM\x1b[{sgr}m{words}\x1b[0m",  # scroll down at the top
                    f"\x1b[{y};1H\x1b[{rng.randint(1, 4)}L{words}",
                    f"\x1b[{y};1H\x1b[{rng.randint(1, 4)}M",
                    f"\x1b[{y};{rng.randint(1, cols)}H\x1b[{rng.randint(1, 9)}@{words[:9]}",
                    f"\x1b[{y};{rng.randint(1, cols)}H\x1b[{rng.randint(1, 9)}P",
                    f"\x1b[{y};{rng.randint(1, cols)}H\x1b[{rng.randint(1, 9)}X",
                    f"\x1b[{y};{rng.randint(1, cols)}H\x1b[K",
                    f"\x1b[{y};1H\x1b[2C\x1b[1A\x1b[3D{words[:5]}\x1b[{rng.randint(1, cols)}G#",
                ]
            )
        )
    out.append("\x1b[r\x1b[1;1H")
    return "".join(out).encode()


def test_scroll_regions_give_the_same_cells_as_pyte() -> None:
    rng = random.Random("regions")
    cols, rows = 80, 24
    data = pyte_region_edits(rng, 400, cols, rows)
    t = Terminal(cols, rows, fast=True)
    screen = pyte.Screen(cols, rows)
    stream = pyte.ByteStream(screen)
    for chunk in cut(rng, data, 300):
        t.feed(chunk)
        stream.feed(chunk)
    for y in range(rows):
        assert our_cells(t, y) == pyte_cells(screen, y, cols), y
    assert (screen.cursor.x, screen.cursor.y) == (t._screen.cursor.x, t._screen.cursor.y)


def test_scroll_regions_stay_on_the_fast_path() -> None:
    """The work vim, less and tmux do in a region is run by the fast path itself: the
    slow path's parser sees none of it."""
    t = Terminal(80, 24)
    calls: list[str] = []
    parser = t._parser
    original = parser._csi

    def spy(params: str, inter: str, final: str) -> None:
        calls.append(final)
        original(params, inter, final)

    parser._csi = spy  # type: ignore[method-assign]
    t.feed(pyte_region_edits(random.Random(5), 200, 80, 24) + b"\x1b(0lqk\x1b(B\x1b7\x1b8")
    assert calls == []


def test_a_failing_edit_is_dropped_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """An edit the fast path hands to the screen fails: that sequence is dropped, the
    lines pending before it and the text after it are kept."""

    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    texts = []
    for fast in (True, False):
        t = Terminal(20, 3, fast=fast)
        monkeypatch.setattr(t._screen, "delete_characters", broken)
        t.feed(b"\r\n\r\n\r\nabxy\x1b[2D\x1b[2Pcd\x1b[2;3r\x1b[3;1H\nef")
        texts.append(["".join(c.data for c in t.line(y)).rstrip() for y in range(3)])
    assert texts[0] == texts[1] == ["", "abcd", "ef"]


TRACES = Path(__file__).resolve().parents[2] / "bench" / "traces"


@pytest.mark.parametrize("name", ["vim", "less", "htop", "tmux", "dialog"])
def test_recorded_programs_agree(name: str) -> None:
    """The output of real full-screen programs (bench/record_traces.sh) gives the same
    screen, damage and events on both paths, cut anywhere."""
    data = gzip.decompress((TRACES / f"{name}.gz").read_bytes())
    rng = random.Random(name)
    Pair(80, 24).check(cut(rng, data, 2048), rng)


ROW_RUNS = [
    # a row written field by field after a CUP and after an SGR (one token each)
    b"\x1b[2;1H\x1b[1mCPU\x1b[0m 12%\x1b[7m[|||  ]\x1b[m load\x1b[33;1m 0.5\x1b[m",
    # fields that run past the right edge: wrapped, at the bottom of a region it scrolls,
    # and without autowrap the last column overwritten
    b"\x1b[2;7r\x1b[7;5H\x1b[31mabcdef\x1b[32mghijkl\x1b[0mmnop\x1b[r"
    b"\x1b[?7l\x1b[3;6Hxy\x1b[1mzzzzzz\x1b[0mQ\x1b[?7h",
    # under DEC line drawing (G0 and G1): the fields are translated
    b"\x1b(0\x1b[1;1Hlq\x1b[1mqk\x1b[0mx\x1b(B\x1b[2;1H\x1b)0\x0e\x1b[7mtu\x1b[mvw\x0f",
    # a wide character or a combining mark ends the run (the text after it is its own)
    "\x1b[1;1H\x1b[1mab\x1b[0m中c\x1b[2mde\x1b[0me\u0301f".encode(),
    # REP after a field repeats its last character
    b"\x1b[4;1H\x1b[1mab\x1b[4mcd\x1b[3b\x1b[0m",
]


@pytest.mark.parametrize("data", ROW_RUNS)
def test_rows_written_field_by_field(data: bytes) -> None:
    """A row written field by field (CUP, then SGR and text again and again), running past
    the right edge, under line drawing, broken by wide characters: same screen, damage
    and events as the slow path, cut anywhere."""
    rng = random.Random(data)
    Pair(9, 8).check([data], rng)
    for _ in range(8):
        Pair(9, 8).check(cut(rng, data, 12), rng)


def test_a_field_translated_to_a_wide_character_is_left_to_the_slow_path() -> None:
    """No standard character set maps ASCII to a wide character, but if one did, the fast
    path would draw the fields it makes wide as the slow path does."""
    data = b"\x1b[1;1H\x1b[1mab\x1b[4mcd\x1b[0mqq\x1b[7mef"
    pair = Pair(9, 4)
    for t in (pair.fast, pair.slow):
        t._screen.g0_charset = "".join("中" if i == ord("q") else chr(i) for i in range(256))
    pair.check([data], random.Random(0))
    assert [c.data for c in pair.fast.line(0)[:8]] == ["a", "b", "c", "d", "中", "", "中", ""]


LINE_EDITS = [
    # writes pending in the rows that IL / DL move, inside and at the edges of a region
    b"\x1b[2;6r\x1b[3;1Habc\x1b[4;1Hdef\x1b[3;1H\x1b[2Lxy\x1b[5;2H\x1b[M\x1b[6;1H\x1b[9Lq",
    # whole-screen scrolls pending first (settled before the edit), then IL past the bottom
    b"one\r\ntwo\r\n\n\n\n\n\n\n\x1b[1;1Hz\x1b[99L\x1b[2;1Hw\x1b[3Mv",
    # the cursor outside the region: IL / DL do nothing but are still drawn as the slow path
    b"\x1b[3;5r\x1b[1;1Htop\x1b[2L\x1b[8;1Hlow\x1b[M\x1b[r\x1b[4;1H\x1b[L!",
    # coloured writes, then DL of the rows holding them, then a region scroll
    b"\x1b[31mred\x1b[2;1H\x1b[44mblue\x1b[0m\x1b[1;1H\x1b[2M\x1b[1;7r\x1b[7;1H\nend",
    # "\x1b(B" again (ncurses' sgr0) keeps Latin-1; after "\x1b(0" it switches back; DECTCEM
    b"\x1b(Bab\x1b(0qq\x1b(B\x1b[mqq\x1b)0\x0eqx\x0f\x1b[?25lq\x1b[?25h\x1b[?25h",
    # DECSTBM with a CUP after it (one token): valid, one-row (ignored), defaulted, reset
    b"\x1b[2;6r\x1b[6;1H\nA\x1b[5;5r\x1b[3;3HB\x1b[;4r\x1b[2;2H\nC\x1b[3r\x1b[9;9HD"
    b"\x1b[r\x1b[Hx\x1b[2;7r\x1b[HE\x1b[?25h\x1b[?25l\x1b[?25l\x1b[2;3r\x1b[2;3;4Hz",
    # G0 designated ASCII between SGRs (one token), after line drawing in G0 and in G1
    b"\x1b(0q\x1b[31m\x1b(B\x1b[mq\x1b(0\x1b[1m\x1b(B\x1b[32mq\x1b(0\x1b[0;1m\x1b[7mq"
    b"\x1b(B\x1b[0m\x1b(B\x1b[44mq\x1b)0\x0e\x1b[1m\x1b(B\x1b[mq\x0f\x1b(0\x1b[1m\x1b(Bq",
    # quiet DEC private modes and the keypad in place; others (autowrap, the alternate
    # screen, a mode 0 from an empty parameter) left to the slow path
    b"ab\x1b[?1h\x1b=cd\x1b[?2004h\x1b[?1000;1006h\x1b[?12;25lef\x1b>\x1b[?1l\x1b[?7lgh"
    b"ijklm\x1b[?7h\x1b[?1049hno\x1b[?1;1049lp\x1b[?;1hq\x1b[?hr\x1b[?1006;1000l\x1b[?66h",
]


@pytest.mark.parametrize("data", LINE_EDITS)
def test_line_edits_move_the_pending_rows(data: bytes) -> None:
    """IL and DL run on the pending rows (the stored rows move through the screen's own
    method, the pending ones with them): same screen, damage and events as the slow path,
    cut anywhere (pyte itself keeps stale cells after some of these DLs)."""
    rng = random.Random(data)
    Pair(9, 8).check([data], rng)  # (whole: every token on the fast path)
    for _ in range(8):
        Pair(9, 8).check(cut(rng, data, 12), rng)


def count_settles(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that grows by one at each ``FastPath.settle`` from now on."""
    from vncmux.console.fastpath import FastPath

    settles: list[int] = []
    original = FastPath.settle

    def counting(self: FastPath) -> None:
        settles.append(1)
        original(self)

    monkeypatch.setattr(FastPath, "settle", counting)
    return settles


def test_line_edits_do_not_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    """IL and DL in a region keep what was written before them pending (no settling)."""
    t = Terminal(80, 24)
    settles = count_settles(monkeypatch)
    data = b"\x1b[2;20r\x1b[?1h\x1b=" + b"\x1b[5;1Hline\x1b[3L\x1b[9;1Hmore\x1b[2M" * 20
    data += b"\x1b[?2004l\x1b>\x1b[?25l\x1b[?12;25h"
    t.feed(data)
    assert settles == []
    assert t._screen.fast is not None and t._screen.fast.pending
    slow = Terminal(80, 24, fast=False)
    slow.feed(data)
    assert [our_cells(t, y) for y in range(24)] == [our_cells(slow, y) for y in range(24)]


# A frame as dialog draws it: charsets, SGR chains, CUP, ECH, EL, text.
FRAME = (
    b"\x1b[3;9H\x1b[1K \x1b(0\x1b[0;1m\x1b[37m\x1b[47mx\x1b(B\x1b[0m\x1b[30m\x1b[47m Pick"
    b"\x1b[49X\x1b[3;69H\x1b(0\x1b[0mx\x1b(B\x1b[0;1m\x1b[36m\x1b[44m\x1b[K\x1b[4;9Hitem"
)


@pytest.mark.parametrize("cut_at", range(1, len(FRAME)))
def test_a_sequence_cut_by_a_chunk_end_is_rejoined_and_stays_fast(
    monkeypatch: pytest.MonkeyPatch, cut_at: int
) -> None:
    """Wherever a read ends (a serial line's reads are small), the sequence it cuts goes to
    the fast path whole with the next chunk: nothing is settled, the screen is the same."""
    t = Terminal(80, 24)
    settles = count_settles(monkeypatch)
    t.feed(b"\x1b[H\x1b[2J" + FRAME[:cut_at])
    t.feed(FRAME[cut_at:])
    assert settles == []
    whole = Terminal(80, 24, fast=False)
    whole.feed(b"\x1b[H\x1b[2J" + FRAME)
    assert [our_cells(t, y) for y in range(24)] == [our_cells(whole, y) for y in range(24)]
    assert t.cursor == whole.cursor


def test_a_long_cut_sequence_is_left_to_the_state_machine() -> None:
    """Past ``MAX_REJOINED`` a cut sequence is not put back in front of the next chunk (a
    parameter flood in pieces would be scanned again with each): the state machine keeps
    it, with the same result as the slow path."""
    from vncmux.console.parser import MAX_REJOINED

    short = Terminal(80, 24)
    short.feed(b"\x1b[1;3")
    assert short._parser._rejoin("1m") == "\x1b[1;31m"
    assert short._parser.state == GROUND

    params = b"1;" * (MAX_REJOINED // 2 + 4) + b"31"  # (longer than MAX_REJOINED)
    t = Terminal(80, 24)
    slow = Terminal(80, 24, fast=False)
    for term in (t, slow):
        term.feed(b"\x1b[")
        for i in range(0, len(params), 3):
            term.feed(params[i : i + 3])
        term.feed(b"mx")
    parser = Terminal(80, 24)._parser
    parser.feed("\x1b[" + params.decode())
    assert parser._rejoin("m") == "m" and parser.state == CSI
    assert our_cells(t, 0) == our_cells(slow, 0)
    assert our_cells(t, 0)[0][:2] == ("x", "red")


def test_cursor_visibility_is_reported_as_the_slow_path_sets_it() -> None:
    """DECTCEM, run in place: the mode, the cursor and DECRQM's answer as the slow path."""
    for data in (b"\x1b[?25l", b"\x1b[?25l\x1b[?25h"):
        fast, slow = Terminal(10, 3, fast=True), Terminal(10, 3, fast=False)
        for t in (fast, slow):
            t.feed(data)
        a, b = fast._screen, slow._screen
        assert (a.cursor.hidden, 25 << 5 in a.mode) == (b.cursor.hidden, 25 << 5 in b.mode)
        assert a.other_modes == b.other_modes


def test_token_pattern_keeps_match_objects_small() -> None:
    """At most 24 groups: a match object (one per token) then comes from CPython's
    small-object allocator (a request of at most 512 bytes), not from malloc."""
    assert TOKEN.groups <= 24
    m = TOKEN.match("x")
    assert m is not None and sys.getsizeof(m) <= 512
