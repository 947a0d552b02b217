"""The terminal's answers to the program's queries, each in xterm's exact bytes.

A program on the device asks the terminal about itself: what it is (DA1/DA2/DA3), where
the cursor is and how it is (DSR, DECXCPR, DECDSR), its size (XTWINOPS, so that ``resize``
works over a serial line), whether a mode is set (DECRQM), a setting (DECRQSS), a colour
(OSC 4/10/11/12), or a checksum of a rectangle of the screen (DECRQCRA).  The answers are
those of xterm configured as a VT420 (``decTerminalID: 420``), which is what vncmux claims
to be.

:class:`ReportsMixin` is part of :class:`~vncmux.console.screen.TermScreen`; the pure
helpers (colour specifications, the SGR and checksum computations) are free functions.

No answer can be read back as a query: a device that echoes what it receives must not
start an endless conversation (the tests feed every answer back to the terminal).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from pyte import modes as mo

from vncmux.console.cells import PALETTE_256, Cell
from vncmux.console.palette import COLOUR_NAMES
from vncmux.console.screenbase import ScreenBase

# What we are: a VT420 with xterm's feature list, and xterm patch 379's version number.
PRIMARY_DA = "\x1b[?64;1;2;6;9;15;16;17;18;21;22;28;29c"
SECONDARY_DA = "\x1b[>41;379;0c"
TERTIARY_DA = "\x1bP!|00000000\x1b\\"
ST = "\x1b\\"

CELL_PIXELS = (8, 16)  # (width, height) reported when the owner did not say
MAX_TITLE_STACK = 10  # titles kept by XTWINOPS 22 (push); older ones are dropped
MAX_COLOUR_INDEX = 255
SPECIAL_COLOURS = 256  # OSC 5 colour n is OSC 4 colour 256 + n (bold, underline, ...)
MAX_SPECIAL = 4

# DECRQM: ANSI modes xterm can change (value: the default) and those it reports as
# permanently reset; DEC private modes likewise.  Any other mode: 0, "not recognised".
ANSI_MODES = {2: False, 4: False, 12: True, 20: False}
ANSI_PERMANENTLY_RESET = frozenset({1, 5, 7, 10, 11, 13, 14, 15, 16, 17, 18, 19})
DEC_MODES = {
    1: False, 3: False, 4: False, 5: False, 6: False, 7: True, 9: False, 12: False,
    18: False, 19: False, 25: True, 35: False, 40: False, 41: False, 42: False, 44: False,
    45: False, 47: False, 1045: False, 66: False, 67: False, 69: False, 95: False, 1000: False,
    1001: False, 1002: False, 1003: False, 1004: False, 1005: False, 1006: False,
    1007: False, 1015: False, 1016: False, 1034: False, 1035: False, 1036: False,
    1039: False, 1046: False, 1047: False, 1048: False, 1049: False, 2004: False,
    2026: False,  # synchronized output (not xterm's: kitty, foot, WezTerm, Windows Terminal)
}  # fmt: skip
DEC_PERMANENTLY_RESET = frozenset({8, 60})
SYNC_KEY = (True, 2026)  # synchronized output's key in ``other_modes`` (see ``note_mode``)

# The 16 base colours as xterm's default resources give them (for OSC 4 reports).
_BASE16 = (
    (0x00, 0x00, 0x00), (0xCD, 0x00, 0x00), (0x00, 0xCD, 0x00), (0xCD, 0xCD, 0x00),
    (0x00, 0x00, 0xEE), (0xCD, 0x00, 0xCD), (0x00, 0xCD, 0xCD), (0xE5, 0xE5, 0xE5),
    (0x7F, 0x7F, 0x7F), (0xFF, 0x00, 0x00), (0x00, 0xFF, 0x00), (0xFF, 0xFF, 0x00),
    (0x5C, 0x5C, 0xFF), (0xFF, 0x00, 0xFF), (0x00, 0xFF, 0xFF), (0xFF, 0xFF, 0xFF),
)  # fmt: skip
# OSC 10.. 19: foreground, background, cursor, pointer fg/bg, Tek fg/bg, highlight bg,
# Tek cursor, highlight fg.  Defaults: xterm's (black on white).
DYNAMIC_DEFAULTS = {
    10: (0, 0, 0), 11: (0xFF, 0xFF, 0xFF), 12: (0, 0, 0), 13: (0, 0, 0),
    14: (0xFF, 0xFF, 0xFF), 15: (0, 0, 0), 16: (0xFF, 0xFF, 0xFF), 17: (0, 0, 0),
    18: (0, 0, 0), 19: (0xFF, 0xFF, 0xFF),
}  # fmt: skip

_HEX = re.compile("[0-9a-fA-F]+")
_SGR_COLOURS = {name: i for i, name in enumerate(COLOUR_NAMES)}

RGB = tuple[int, int, int]


def default_colour(index: int) -> RGB:
    """Colour ``index`` of the 256-colour table as xterm has it by default (the special
    colours after it: black)."""
    if index >= SPECIAL_COLOURS:
        return (0, 0, 0)
    if index < 16:
        return _BASE16[index]
    h = PALETTE_256[index]
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def parse_colour(spec: str) -> RGB | None:
    """An X11 colour specification (``rgb:R/G/B`` with 1-4 hex digits per channel, or
    ``#RGB`` with 1-4 digits per channel) -> 8-bit channels; None: not understood (the
    device-independent colour spaces are not supported)."""
    spec = spec.strip()
    if spec[:4].lower() == "rgb:":
        parts = spec[4:].split("/")
        if len(parts) != 3 or not all(0 < len(p) <= 4 and _HEX.fullmatch(p) for p in parts):
            return None
        vals = [int(p, 16) * 0xFFFF // (16 ** len(p) - 1) for p in parts]
        return vals[0] >> 8, vals[1] >> 8, vals[2] >> 8
    if spec.startswith("#"):
        digits = spec[1:]
        if len(digits) not in (3, 6, 9, 12) or not _HEX.fullmatch(digits):
            return None
        n = len(digits) // 3
        # X11: the digits are the high bits of a 16-bit value
        vals = [int(digits[i * n : (i + 1) * n], 16) << (16 - 4 * n) for i in range(3)]
        return vals[0] >> 8, vals[1] >> 8, vals[2] >> 8
    return None


def colour_report(rgb: RGB) -> str:
    """``rgb:RRRR/GGGG/BBBB`` as xterm reports an 8-bit-per-channel colour."""
    return "rgb:" + "/".join(f"{v:02x}{v:02x}" for v in rgb)


def sgr_report(a: Cell) -> str:
    """The SGR parameters that give attributes ``a`` from the default, as DECRQSS reports
    them (always starting with 0)."""
    out = ["0"]
    for flag, code in (
        (a.bold, "1"),
        (a.faint, "2"),
        (a.italics, "3"),
        (a.underscore, "4"),
        (a.blink, "5"),
        (a.reverse, "7"),
        (a.strikethrough, "9"),
    ):
        if flag:
            out.append(code)
    for value, base in ((a.fg, 30), (a.bg, 40)):
        if value == "default":
            continue
        i = _SGR_COLOURS.get(value)
        if i is not None:
            out.append(str(base + i) if i < 8 else str(base + 60 + i - 8))
        elif len(value) == 6:
            out.append(
                f"{base + 8}:2::{int(value[0:2], 16)}:{int(value[2:4], 16)}:{int(value[4:6], 16)}"
            )
    return ";".join(out)


def cell_checksum(cell: Cell) -> int:
    """One cell's share of a DECRQCRA checksum, as xterm computes it: the character's
    code (low 8 bits; a blank counts as a space) plus 0x10 underline, 0x20 inverse,
    0x40 blink, 0x80 bold.  The right half of a wide character counts nothing."""
    data = cell.data
    if not data:
        return 0
    total = ord(data[0]) & 0xFF
    if cell.underscore:
        total += 0x10
    if cell.reverse:
        total += 0x20
    if cell.blink:
        total += 0x40
    if cell.bold:
        total += 0x80
    return total


def checksum(cells: Iterable[Cell]) -> str:
    """The four hex digits DECRQCRA answers for ``cells``: the negated 16-bit sum (the
    VT420's convention, which xterm keeps)."""
    total = sum(map(cell_checksum, cells))
    return f"{-total & 0xFFFF:04X}"


class ReportsMixin(ScreenBase):
    """The query answers of :class:`~vncmux.console.screen.TermScreen`."""

    def _init_reports(self) -> None:
        self.cell_pixels = CELL_PIXELS
        self.icon_name = ""
        self.title_stack: list[tuple[str, str]] = []
        self.colours: dict[int, RGB] = {}
        self.dynamic_colours: dict[int, RGB] = {}
        self.other_modes: dict[tuple[bool, int], bool] = {}
        self.iconified = False
        self.window_position = (0, 0)

    def write_process_input(self, data: str) -> None:
        self.events.reply(data.encode("utf-8", "replace"))

    # -- DA --------------------------------------------------------------------------

    def report_device_attributes(self, mode: int = 0, **kwargs: Any) -> None:
        """Primary DA (CSI c)."""
        if mode == 0:
            self.write_process_input(PRIMARY_DA)

    def report_secondary_attributes(self, mode: int = 0) -> None:
        """Secondary DA (CSI > c); a non-zero parameter is an answer, not a query."""
        if mode == 0:
            self.write_process_input(SECONDARY_DA)

    def report_tertiary_attributes(self, mode: int = 0) -> None:
        """Tertiary DA (CSI = c): the unit id, zero as in xterm."""
        if mode == 0:
            self.write_process_input(TERTIARY_DA)

    # -- DSR ---------------------------------------------------------------------------

    def _cursor_report(self) -> tuple[int, int]:
        x = self._x() + 1
        y = self.cursor.y + 1
        if mo.DECOM in self.mode:
            if self.margins is not None:
                y -= self.margins.top
            lr = self.lr_region()
            if lr is not None:
                x -= lr[0]
        return y, x

    def report_device_status(self, mode: int = 0, *rest: int, **kwargs: Any) -> None:
        if not kwargs.get("private"):
            if mode == 5:
                self.write_process_input("\x1b[0n")
            elif mode == 6:
                row, col = self._cursor_report()
                self.write_process_input(f"\x1b[{row};{col}R")
            return
        answer = {
            15: "\x1b[?13n",  # no printer
            25: "\x1b[?20n",  # user-defined keys unlocked
            26: "\x1b[?27;1;0;0n",  # keyboard: North American, ready, LK201
            53: "\x1b[?50n",  # no locator
            55: "\x1b[?50n",
            56: "\x1b[?57;0n",  # locator type: none
            62: "\x1b[0*{",  # macro space: none
            75: "\x1b[?70n",  # data integrity: no errors
            85: "\x1b[?83n",  # not in a multiple-session configuration
        }.get(mode)
        if mode == 6:
            row, col = self._cursor_report()
            answer = f"\x1b[?{row};{col};1R"
        elif mode == 63:
            pid = rest[0] if rest else 0
            answer = f"\x1bP{pid}!~0000{ST}"  # checksum of the (empty) macro space
        if answer is not None:
            self.write_process_input(answer)

    # -- XTWINOPS ------------------------------------------------------------------------

    def window_op(self, *params: int) -> None:
        """CSI Ps ; ... t: the reports (window state, position, sizes, titles) and the
        title stack.  Requests to move, resize or iconify the window are ignored: the
        viewers own their windows, and the size is the console's."""
        if not params:
            return
        op = params[0]
        cw, ch = self.cell_pixels
        rows, cols = self.lines, self.columns
        answer = None
        if op in (1, 2):
            self.iconified = op == 2
        elif op == 3:
            x = params[1] if len(params) > 1 else 0
            y = params[2] if len(params) > 2 else 0
            self.window_position = (min(x, 32767), min(y, 32767))
        elif op == 11:
            answer = "\x1b[2t" if self.iconified else "\x1b[1t"
        elif op == 13:
            answer = f"\x1b[3;{self.window_position[0]};{self.window_position[1]}t"
        elif op == 14:
            answer = f"\x1b[4;{rows * ch};{cols * cw}t"
        elif op == 15:
            answer = f"\x1b[5;{rows * ch};{cols * cw}t"
        elif op == 16:
            answer = f"\x1b[6;{ch};{cw}t"
        elif op == 18:
            answer = f"\x1b[8;{rows};{cols}t"
        elif op == 19:
            answer = f"\x1b[9;{rows};{cols}t"
        elif op == 20:
            answer = f"\x1b]L{self._title_out(self.icon_name)}{ST}"
        elif op == 21:
            answer = f"\x1b]l{self._title_out(self.title)}{ST}"
        elif op == 22:
            self.title_stack.append((self.icon_name, self.title))
            del self.title_stack[:-MAX_TITLE_STACK]
        elif op == 23 and self.title_stack:
            icon, title = self.title_stack.pop()
            which = params[1] if len(params) > 1 else 0
            if which in (0, 1):
                self.icon_name = icon
            if which in (0, 2):
                self.set_title(title)
        if answer is not None:
            self.write_process_input(answer)

    def _title_out(self, title: str) -> str:
        return title.encode("utf-8").hex() if self.title_hex[1] else title

    # -- DECRQM --------------------------------------------------------------------------

    def mode_state(self, mode: int, private: bool) -> int:
        """DECRQM's answer for one mode: 1 set, 2 reset, 4 permanently reset, 0 unknown."""
        if private:
            if mode in DEC_PERMANENTLY_RESET:
                return 4
            if mode not in DEC_MODES:
                return 0
            m = self.modes
            flag: bool | None = {
                1: m.app_cursor,
                5: self.reverse_screen,
                6: mo.DECOM in self.mode,
                7: mo.DECAWM in self.mode,
                25: mo.DECTCEM in self.mode,
                66: m.app_keypad,
                69: self.declrmm,
                45: self.reverse_wrap,
                1045: self.reverse_wrap,
                1000: m.mouse_tracking == 1000,
                1002: m.mouse_tracking == 1002,
                1003: m.mouse_tracking == 1003,
                9: m.mouse_tracking == 9,
                1006: m.mouse_sgr,
                2004: m.bracketed_paste,
                47: self.in_alt,
                1047: self.in_alt,
                1049: self.in_alt,
            }.get(mode)
            if flag is None:
                flag = self.other_modes.get((True, mode), DEC_MODES[mode])
            return 1 if flag else 2
        if mode in ANSI_PERMANENTLY_RESET:
            return 4
        if mode not in ANSI_MODES:
            return 0
        if mode == 4:
            return 1 if mo.IRM in self.mode else 2
        if mode == 20:
            return 1 if mo.LNM in self.mode else 2
        return 1 if self.other_modes.get((False, mode), ANSI_MODES[mode]) else 2

    def request_mode(self, mode: int = 0, private: bool = False) -> None:
        """DECRQM (CSI Ps $ p, CSI ? Ps $ p)."""
        state = self.mode_state(mode, private)
        q = "?" if private else ""
        self.write_process_input(f"\x1b[{q}{mode};{state}$y")

    def note_mode(self, mode: int, private: bool, on: bool) -> None:
        """Remember a mode that changes nothing we show, so that DECRQM reports it."""
        table = DEC_MODES if private else ANSI_MODES
        if mode in table:
            if private and mode == 3 and not self.other_modes.get((True, 40), False):
                return  # DECCOLM only when allowed (mode 40), as xterm
            if private and mode == 2026 and on and not self.other_modes.get(SYNC_KEY):
                self.sync_updates += 1  # (a new synchronized update: the display times it)
            self.other_modes[(private, mode)] = on

    # -- DECRQSS -------------------------------------------------------------------------

    def setting_report(self, pt: str) -> str | None:
        """The value DECRQSS reports for setting ``pt`` (None: not a setting we know)."""
        if pt == "m":
            return sgr_report(self.cursor.attrs) + "m"
        if pt == "r":
            top, bottom = self.margins if self.margins is not None else (0, self.lines - 1)
            return f"{top + 1};{bottom + 1}r"
        if pt == "s":
            left, right = self.lr_margins or (0, self.columns - 1)
            return f"{left + 1};{right + 1}s"
        if pt == " q":
            return f"{self.cursor_style} q"
        if pt == '"q':
            return f'{1 if self.cursor.attrs.protected == 1 else 0}"q'
        if pt == '"p':
            return f'{self.conformance};1"p'
        if pt == "t":
            return f"{self.lines}t"
        if pt == "*|":
            return f"{self.lines}*|"
        if pt == "$|":
            return f"{self.columns}$|"
        if pt == "*x":
            return f"{self.attr_change_extent}*x"
        if pt == "$}":
            return "0$}"
        if pt == "$~":
            return "0$~"
        return None

    def request_setting(self, pt: str) -> None:
        """DECRQSS (DCS $ q Pt ST): ``DCS 1 $ r value ST``, or ``DCS 0 $ r ST``."""
        value = self.setting_report(pt)
        if value is None:
            self.write_process_input(f"\x1bP0$r{ST}")
        else:
            self.write_process_input(f"\x1bP1$r{value}{ST}")

    def request_termcap(self, names: str) -> None:
        """XTGETTCAP (DCS + q Pt ST): only the number of colours (``Co``, ``colors``) is
        answered; any other name gets xterm's "not known" answer."""
        for name in names.split(";")[:8]:
            try:
                text = bytes.fromhex(name).decode("ascii")
            except ValueError:
                text = ""
            if text in ("Co", "colors"):
                self.write_process_input(f"\x1bP1+r{name}={b'256'.hex().upper()}{ST}")
            else:
                self.write_process_input(f"\x1bP0+r{ST}")

    # -- DECRQCRA --------------------------------------------------------------------------

    def rect_bounds(self, params: Sequence[int]) -> tuple[int, int, int, int] | None:
        """A rectangle's ``Pt;Pl;Pb;Pr`` (1-based, 0 or missing: the default, relative to
        the margins in origin mode) -> 0-based inclusive (top, left, bottom, right) on
        the screen; None when empty."""
        p = list(params[:4]) + [0] * (4 - len(params[:4]))
        top_lim, bottom_lim, left_lim, right_lim = 0, self.lines - 1, 0, self.columns - 1
        if mo.DECOM in self.mode:
            if self.margins is not None:
                top_lim, bottom_lim = self.margins
            lr = self.lr_region()
            if lr is not None:
                left_lim, right_lim = lr
        top = top_lim + (p[0] or 1) - 1
        left = left_lim + (p[1] or 1) - 1
        bottom = top_lim + p[2] - 1 if p[2] else bottom_lim
        right = left_lim + p[3] - 1 if p[3] else right_lim
        bottom, right = min(bottom, bottom_lim), min(right, right_lim)
        if top > bottom or left > right:
            return None
        return top, left, bottom, right

    def rect_cells(self, box: tuple[int, int, int, int]) -> Iterable[Cell]:
        top, left, bottom, right = box
        default = self.default_char
        for y in range(top, bottom + 1):
            line = self.buffer.get(y)
            if line is None:
                yield from [default] * (right - left + 1)
            else:
                yield from (line.get(x, line.default) for x in range(left, right + 1))

    def request_checksum(self, pid: int = 0, page: int = 0, *rect: int) -> None:
        """DECRQCRA (CSI Pi ; Pg ; Pt ; Pl ; Pb ; Pr * y): ``DCS Pi ! ~ XXXX ST``."""
        box = self.rect_bounds(rect)
        value = checksum(self.rect_cells(box)) if box is not None else "0000"
        self.write_process_input(f"\x1bP{pid}!~{value}{ST}")

    # -- OSC colours -----------------------------------------------------------------------

    def colour_osc(self, code: int, param: str, terminator: str) -> None:
        """OSC 4 (palette), OSC 10-19 (dynamic colours), OSC 104/110-119 (resets).  A ``?``
        is answered with the colour, ended as the query was; a specification we do not
        understand is ignored.  The colours are remembered and reported; the picture keeps
        the console's own palette."""
        if code in (4, 5):
            base = 0 if code == 4 else SPECIAL_COLOURS
            fields = param.split(";")
            for i in range(0, len(fields) - 1, 2):
                if not fields[i].isdigit() or len(fields[i]) > 3:
                    continue
                n = int(fields[i])
                index = base + n
                if index > SPECIAL_COLOURS + MAX_SPECIAL:
                    continue
                if fields[i + 1] == "?":
                    rgb = self.colours.get(index) or default_colour(index)
                    self.write_process_input(f"\x1b]{code};{n};{colour_report(rgb)}{terminator}")
                else:
                    parsed = parse_colour(fields[i + 1])
                    if parsed is not None:
                        self.colours[index] = parsed
        elif code in (104, 105):
            base = 0 if code == 104 else SPECIAL_COLOURS
            if not param:
                for index in [i for i in self.colours if (i >= SPECIAL_COLOURS) == bool(base)]:
                    del self.colours[index]
            for f in param.split(";"):
                if f.isdigit() and len(f) <= 3:
                    self.colours.pop(base + int(f), None)
        elif 10 <= code <= 19:
            for offset, spec in enumerate(param.split(";")):
                which = code + offset
                if which > 19:
                    break
                if spec == "?":
                    rgb = self.dynamic_colours.get(which) or DYNAMIC_DEFAULTS[which]
                    self.write_process_input(f"\x1b]{which};{colour_report(rgb)}{terminator}")
                else:
                    parsed = parse_colour(spec)
                    if parsed is not None:
                        self.dynamic_colours[which] = parsed
        elif 110 <= code <= 119:
            self.dynamic_colours.pop(code - 100, None)


__all__ = [
    "PRIMARY_DA",
    "SECONDARY_DA",
    "SYNC_KEY",
    "TERTIARY_DA",
    "ReportsMixin",
    "cell_checksum",
    "checksum",
    "colour_report",
    "default_colour",
    "parse_colour",
    "sgr_report",
]
