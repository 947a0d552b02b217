"""The terminal's ECMA-48 parser: device text in, calls on the screen out.

pyte 0.8.2's stream parser loses whole chunks on malformed input and can be made to work
for minutes or to grow memory without bound.  This one

  - never lets an exception out of ``feed`` and drops only the sequence that failed;
  - bounds every sequence: CSI parameters, OSC/DCS strings, counts;
  - parses complete CSI sequences with one regular expression instead of per character;
  - hands runs of common output to :class:`~vncmux.console.fastpath.FastPath`, and puts a
    short sequence cut by a chunk's end back in front of the next chunk so that the fast
    path sees it whole.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from twisted.logger import Logger

from vncmux.console.cells import Param, apply_sgr
from vncmux.console.fastpath import FastPath
from vncmux.console.screen import TermScreen, sanitize_title

log = Logger()

MAX_PARAM_CHARS = 256  # a longer CSI parameter string is dropped whole
MAX_PARAMS = 32  # parameters beyond this are ignored
MAX_SUBPARAMS = 8  # colon sub-parameters per parameter
MAX_PARAM_VALUE = 9999  # like pyte and the VT manuals: larger values are clamped
MAX_INTERMEDIATES = 4  # ESC/CSI intermediate bytes kept (more: sequence dropped)
MAX_OSC_STORED = 4096  # characters of an OSC string kept for interpretation
MAX_STRING = 64 * 1024  # an OSC/DCS/APC/PM/SOS string longer than this is aborted
MAX_REJOINED = 32  # a sequence cut by a chunk's end is rejoined up to this long (see feed)

GROUND, ESCAPE, CSI, OSC, STRING, STRING_ESC = range(6)

ESC = "\x1b"
ST = "\x1b\\"
_TEXT = re.compile("[^\x00-\x1f\x7f-\x9f]+")
# A complete CSI sequence or a complete simple escape sequence, in one match.
_ESC_SEQ = re.compile(
    "\x1b(?:\\[([0-?]*)([ -/]*)([@-~])|([ -/]*)([0-OQ-WYZ\\\\`-~]))|\x9b([0-?]*)([ -/]*)([@-~])"
)
_CSI_PARAMS = re.compile("[0-?]+")
# The body of an OSC/DCS string up to a possible terminator.
_STRING_BODY = re.compile("[^\x07\x18\x1a\x1b\x9c]+")

# CSI final -> (screen method, how many parameters it takes); None: all of them.
_CSI: dict[str, tuple[str, int | None]] = {
    "@": ("insert_characters", 1),
    "A": ("cursor_up", 1),
    "B": ("cursor_down", 1),
    "C": ("cursor_forward", 1),
    "D": ("cursor_back", 1),
    "E": ("cursor_down1", 1),
    "F": ("cursor_up1", 1),
    "G": ("cursor_to_column", 1),
    "H": ("cursor_position", 2),
    "I": ("tab_forward", 1),
    "J": ("erase_in_display", 1),
    "K": ("erase_in_line", 1),
    "L": ("insert_lines", 1),
    "M": ("delete_lines", 1),
    "P": ("delete_characters", 1),
    "S": ("scroll_up", 1),
    "X": ("erase_characters", 1),
    "Z": ("tab_backward", 1),
    "`": ("cursor_to_column", 1),
    "a": ("cursor_forward_columns", 1),
    "b": ("repeat_last", 1),
    "c": ("report_device_attributes", 1),
    "d": ("cursor_to_line", 1),
    "e": ("cursor_forward_rows", 1),
    "f": ("cursor_position", 2),
    "g": ("clear_tab_stop", 1),
    "h": ("set_mode", None),
    "l": ("reset_mode", None),
    "n": ("report_device_status", 1),
    "r": ("set_margins", 2),
    "s": ("scosc", None),
    "t": ("window_op", None),
    "u": ("restore_cursor", 0),
}
_CSI_PRIVATE: dict[str, tuple[str, int | None]] = {
    "h": ("set_mode", None),
    "l": ("reset_mode", None),
    "J": ("selective_erase_in_display", 1),
    "K": ("selective_erase_in_line", 1),
    "n": ("report_device_status", None),
    "s": ("save_modes", None),
    "r": ("restore_modes", None),
}
# Screen methods (and the OSC handler) that neither read nor write cells, rows or damage:
# the cursor, attributes, margins, titles, reports.  The slow path calls them with the fast
# path's rows still pending (settling costs a build of every pending row).
_NO_SETTLE = frozenset(
    {
        "sgr",
        "cursor_up",
        "cursor_down",
        "cursor_forward",
        "cursor_back",
        "cursor_position",
        "cursor_to_column",
        "cursor_to_line",
        "cursor_forward_rows",
        "cursor_forward_columns",
        "cursor_down1",
        "cursor_up1",
        "set_margins",
        "window_op",
        "title_modes",
        "report_device_attributes",
        "report_secondary_attributes",
        "report_tertiary_attributes",
        "report_device_status",
        "set_cursor_style",
        "_osc",
    }
)
# CSI with intermediate bytes: (intermediates + final) -> (screen method, arity).
_CSI_INTER: dict[str, tuple[str, int | None]] = {
    "*y": ("request_checksum", None),  # DECRQCRA
    "!p": ("soft_reset", 0),  # DECSTR
    '"p': ("set_conformance", 2),  # DECSCL
    '"q': ("set_protection", 1),  # DECSCA
    " q": ("set_cursor_style", 1),  # DECSCUSR
    "$x": ("fill_rect", None),  # DECFRA
    "$z": ("erase_rect", None),  # DECERA
    "${": ("selective_erase_rect", None),  # DECSERA
    "$v": ("copy_rect", None),  # DECCRA
    "'}": ("insert_columns", 1),  # DECIC
    "'~": ("delete_columns", 1),  # DECDC
    "*x": ("set_attr_change_extent", 1),  # DECSACE
}
_ESCAPES: dict[str, str] = {
    "c": "reset",
    "D": "index",
    "E": "next_line",
    "6": "back_index",
    "9": "forward_index",
    "Z": "report_device_attributes",
    "V": "start_protected_area",
    "W": "end_protected_area",
    "M": "reverse_index",
    "H": "set_tab_stop",
    "7": "save_cursor",
    "8": "restore_cursor",
}
_C0: dict[str, str] = {
    "\x07": "bell",
    "\x08": "backspace",
    "\x09": "tab",
    "\x0a": "linefeed",
    "\x0b": "linefeed",
    "\x0c": "linefeed",
    "\x0d": "carriage_return",
    "\x0e": "shift_out",
    "\x0f": "shift_in",
}
_C1: dict[str, str] = {
    "\x84": "index",
    "\x85": "next_line",
    "\x96": "start_protected_area",
    "\x97": "end_protected_area",
    "\x88": "set_tab_stop",
    "\x8d": "reverse_index",
}
_C1_STRINGS = "\x90\x98\x9e\x9f"  # DCS, SOS, PM, APC


def _number(s: str) -> int | None:
    if not s:
        return None
    if len(s) > 9:
        return MAX_PARAM_VALUE
    v = int(s)
    return min(v, MAX_PARAM_VALUE)


@functools.lru_cache(maxsize=1024)
def parse_params(s: str) -> tuple[str, tuple[Param, ...]] | None:
    """CSI parameter string -> (private prefix, parameters), or None when malformed.

    Only ASCII digits count (``isdigit`` accepts '²', which is what broke pyte); a colon
    group becomes a tuple of sub-parameters; empty parameters are ``None``.
    """
    prefix = ""
    if s and s[0] in "<=>?":
        prefix, s = s[0], s[1:]
    if not s:
        return prefix, ()
    if len(s) > MAX_PARAM_CHARS or "<" in s or "=" in s or ">" in s or "?" in s:
        return None
    out: list[Param] = []
    for field in s.split(";", MAX_PARAMS)[:MAX_PARAMS]:
        if ":" in field:
            out.append(tuple(_number(p) for p in field.split(":", MAX_SUBPARAMS)[:MAX_SUBPARAMS]))
        else:
            out.append(_number(field))
    return prefix, tuple(out)


class Parser:
    """An ECMA-48 parser in the spirit of the DEC/xterm state machine.

    Plain text and complete sequences are recognised with regular expressions; only
    sequences split across chunks, or containing embedded controls, go through the
    per-character state machine.  Every call into the screen is guarded: an exception
    drops that one sequence and parsing goes on with the next character.
    """

    def __init__(self, screen: TermScreen, fast: bool = True) -> None:
        self.screen = screen
        self.fast = FastPath(screen, apply_sgr, parse_params) if fast else None
        screen.fast = self.fast
        self.state = GROUND
        self.buf = ""  # CSI parameters, or the stored part of an OSC string
        self.inter = ""  # intermediate bytes
        self.length = 0  # characters of the current string so far
        self.overflow = False  # the current sequence is being dropped
        self.string_kind = ""  # "]" for OSC, "P" etc. for the others
        self.string_end = ST  # how the last string ended (answers end the same way)
        self.errors = 0

    # -- main loop -----------------------------------------------------------------

    def feed(self, data: str) -> None:
        if self.state and self.fast is not None:
            data = self._rejoin(data)
        screen = self.screen
        draw = screen.draw
        text_match = _TEXT.match
        esc_match = _ESC_SEQ.match
        body_match = _STRING_BODY.match
        fast = self.fast.run if self.fast is not None else None
        i, n = 0, len(data)
        while i < n:
            state = self.state
            if state == GROUND:
                if fast is not None:
                    j = fast(data, i)
                    if j != i:
                        if j == n:
                            break
                        i = j  # (it stopped at what it leaves to this loop: no second try)
                    # (no settling here: ``_guard`` settles before a call that needs the
                    # real rows; a sequence split across chunks, a report or a cursor
                    # move leaves what the fast path ran pending)
                m = text_match(data, i)
                if m is not None:
                    i = m.end()
                    self._guard(draw, m.group())
                    continue
                c = data[i]
                if c == ESC or c == "\x9b":
                    m = esc_match(data, i)
                    if m is not None:
                        i = m.end()
                        if m.group(3) is not None:
                            self._csi(m.group(1), m.group(2), m.group(3))
                        elif m.group(8) is not None:
                            self._csi(m.group(6), m.group(7), m.group(8))
                        else:
                            self._esc(m.group(4), m.group(5))
                        continue
            elif state == OSC or state == STRING:
                m = body_match(data, i)
                if m is not None:
                    i = self._string_body(data, i, m.end())
                    continue
            elif state == CSI and not self.inter:
                m = _CSI_PARAMS.match(data, i)
                if m is not None:  # a run of parameter characters split from its CSI
                    i = m.end()
                    if len(self.buf) + (i - m.start()) <= MAX_PARAM_CHARS:
                        self.buf += m.group()
                    else:
                        self.overflow = True
                    continue
            self._step(data[i])
            i += 1

    def _rejoin(self, data: str) -> str:
        """``data`` with the escape or CSI sequence the last chunk ended inside put back in
        front of it (the state machine reset to GROUND), so that the fast path sees the
        sequence whole.

        A device read ends anywhere: on a serial line a full-screen program's frame comes
        in dozens of reads, and without this every sequence cut by one would go through
        the slow path and first settle all the rows the fast path had pending.  Only a
        short, well-formed start is rejoined (``MAX_REJOINED``), so a parameter flood fed
        in pieces is not scanned again and again; controls already run inside the sequence
        stay run, and the rejoined sequence means what the state machine would have made
        of it.
        """
        if self.state == ESCAPE:
            head = ESC + self.inter
        elif self.state == CSI:
            head = ESC + "[" + self.buf + self.inter
        else:
            return data
        if self.overflow or len(head) > MAX_REJOINED:
            return data
        self.state = GROUND
        return head + data

    def _guard(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Call the screen (or the OSC handler), dropping that one sequence if it fails;
        the fast path's pending rows are settled first unless ``fn`` touches no cells."""
        fast = self.fast
        if fast is not None and fast.pending and fn.__name__ not in _NO_SETTLE:
            fast.settle()
        try:
            fn(*args, **kwargs)
        except Exception:  # noqa: BLE001 -- the point: one bad sequence, not the chunk
            self.screen.repair()
            self.errors += 1
            if self.errors <= 10 or self.errors % 1000 == 0:
                log.failure("Terminal: dropped a sequence that failed ({n} so far)", n=self.errors)

    # -- the per-character state machine ---------------------------------------------

    def _step(self, c: str) -> None:
        state = self.state
        if c == "\x18" or c == "\x1a":  # CAN, SUB: abort whatever is going on
            self.state = GROUND
            return
        if state == OSC or state == STRING:
            if c == ESC:
                self.state = STRING_ESC
            elif c == "\x07" or c == "\x9c":
                self.string_end = "\x07" if c == "\x07" else ST
                self._end_string()
            else:
                self._string_body(c, 0, 1)
            return
        if state == STRING_ESC:
            self.string_end = ST if c == "\\" else "\x07"
            self._end_string()
            if c != "\\":
                self._step(ESC)
                self._step(c)
            return
        if c == ESC:
            self.state = ESCAPE
            self.inter = ""
            self.overflow = False
            return
        if c < " " or c == "\x7f":
            name = _C0.get(c)
            if name is not None:
                self._guard(getattr(self.screen, name))
            return
        if "\x80" <= c <= "\x9f":
            self._c1(c)
            return
        if state == GROUND:
            self._guard(self.screen.draw, c)
        elif state == ESCAPE:
            if " " <= c <= "/":
                self.inter += c
                self.overflow = self.overflow or len(self.inter) > MAX_INTERMEDIATES
            elif c == "[" and not self.inter:
                self._begin_csi()
            elif c in "]PX^_" and not self.inter:
                self._begin_string(c)
            else:
                self.state = GROUND
                if not self.overflow:
                    self._esc(self.inter, c)
        elif state == CSI:
            if "0" <= c <= "?":
                if self.inter:
                    self.overflow = True  # parameters after intermediates: malformed
                elif len(self.buf) < MAX_PARAM_CHARS:
                    self.buf += c
                else:
                    self.overflow = True
            elif " " <= c <= "/":
                self.inter += c
                self.overflow = self.overflow or len(self.inter) > MAX_INTERMEDIATES
            elif "@" <= c <= "~":
                self.state = GROUND
                if not self.overflow:
                    self._csi(self.buf, self.inter, c)
            else:
                self.overflow = True  # not ASCII: ignore the sequence up to its final byte
        else:
            self.state = GROUND

    def _c1(self, c: str) -> None:
        if c == "\x9b":
            self._begin_csi()
        elif c == "\x9d":
            self._begin_string("]")
        elif c in _C1_STRINGS:
            self._begin_string(c)
        else:
            self.state = GROUND
            name = _C1.get(c)
            if name is not None:
                self._guard(getattr(self.screen, name))

    def _begin_csi(self) -> None:
        self.state = CSI
        self.buf = ""
        self.inter = ""
        self.overflow = False

    def _begin_string(self, kind: str) -> None:
        self.state = OSC if kind == "]" else STRING
        self.string_kind = kind
        self.buf = ""
        self.length = 0

    def _string_body(self, data: str, start: int, end: int) -> int:
        """Take ``data[start:end]`` into the current string; returns where parsing goes on.

        Past ``MAX_STRING`` characters the string is abandoned (an unterminated OSC must
        not swallow all later output) and parsing resumes right there, as plain output.
        Only the first ``MAX_OSC_STORED`` characters of an OSC are kept in memory.
        """
        room = MAX_STRING - self.length
        if end - start > room:
            self.state = GROUND
            self.buf = ""
            return start + max(room, 0)
        self.length += end - start
        if self.string_kind in ("]", "P", "\x90") and len(self.buf) < MAX_OSC_STORED:
            self.buf += data[start : min(end, start + MAX_OSC_STORED - len(self.buf))]
        return end

    def _end_string(self) -> None:
        kind = self.string_kind
        self.state = GROUND
        body, self.buf = self.buf, ""
        if self.length <= MAX_OSC_STORED:
            if kind == "]":
                self._guard(self._osc, body)
            elif kind in ("P", "\x90") and body.startswith("$q"):
                self._guard(self.screen.request_setting, body[2:])
            elif kind in ("P", "\x90") and body.startswith("+q"):
                self._guard(self.screen.request_termcap, body[2:])

    def _osc(self, body: str) -> None:
        code, _, param = body.partition(";")
        screen = self.screen
        if code in ("0", "2"):
            screen.set_title(param)
            if code == "0":
                screen.icon_name = screen.title
        elif code == "1":
            screen.icon_name = sanitize_title(screen.decode_title(param))
        elif code == "52":
            screen.set_clipboard(param)
        elif code.isdigit() and len(code) <= 3:
            screen.colour_osc(int(code), param, self.string_end)

    # -- dispatch --------------------------------------------------------------------

    def _esc(self, inter: str, final: str) -> None:
        screen = self.screen
        if not inter:
            name = _ESCAPES.get(final)
            if name is not None:
                self._guard(getattr(screen, name))
            elif final == "=" or final == ">":
                screen.set_keypad(final == "=")
        elif inter == "#" and final == "8":
            self._guard(screen.alignment_display)
        elif inter in ("(", ")"):
            self._guard(screen.define_charset, final, inter)

    def _csi(self, params: str, inter: str, final: str) -> None:
        parsed = parse_params(params)
        if parsed is None:
            return
        prefix, args = parsed
        screen = self.screen
        if inter:
            self._csi_inter(prefix, args, inter + final)
            return
        if final == "m":
            if not prefix:
                self._guard(screen.sgr, args)
            return
        if prefix == "":
            entry = _CSI.get(final)
            if final == "T" and len(args) <= 1:
                entry = ("scroll_down", 1)
            kwargs: dict[str, Any] = {}
        elif prefix == "?":
            entry = _CSI_PRIVATE.get(final)
            kwargs = {"private": True}
        elif prefix == ">" and final == "c":
            entry = ("report_secondary_attributes", 1)
            kwargs = {}
        elif prefix == ">" and final in "tT":
            entry = ("title_modes", None)
            kwargs = {"on": final == "t"}
        elif prefix == "=" and final == "c":
            entry = ("report_tertiary_attributes", 1)
            kwargs = {}
        else:
            return
        if entry is None:
            return
        self._call(entry, args, kwargs)

    def _call(
        self, entry: tuple[str, int | None], args: tuple[Param, ...], kwargs: dict[str, Any]
    ) -> None:
        name, arity = entry
        ints = [(p[0] if isinstance(p, tuple) else p) or 0 for p in args]
        if arity is not None:
            ints = ints[:arity]
        self._guard(getattr(self.screen, name), *ints, **kwargs)

    def _csi_inter(self, prefix: str, args: tuple[Param, ...], key: str) -> None:
        """CSI sequences with intermediate bytes (DECRQM, DECRQCRA, DECSTR, ...)."""
        if key == "$p" and prefix in ("", "?"):
            if self.screen.conformance >= 63:
                self._call(("request_mode", 1), args, {"private": prefix == "?"})
            return
        entry = _CSI_INTER.get(key)
        if entry is not None and prefix == "":
            self._call(entry, args, {})


__all__ = ["GROUND", "MAX_PARAM_CHARS", "MAX_STRING", "Parser", "parse_params"]
