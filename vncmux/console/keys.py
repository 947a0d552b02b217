"""Translate RFB input (X11 keysyms, pointer masks, pasted text) into xterm's bytes.

What a viewer types must reach the console device exactly as if it had been typed into an
xterm: the byte sequences follow xterm's ctlseqs (PC-style function keys, modifier parameter
``1 + (shift 1 | alt 2 | ctrl 4 | meta 8)``).  The module is pure: no I/O (one log line for
a keysym that types nothing), no pyte, so every rule is unit-testable and the caller only
passes keysyms and the terminal's `Modes`.

It holds:

* `KeyMapper` -- one per viewer; tracks held modifiers and a pending dead key.
* `paste_bytes` -- text of an explicit paste (bracketed paste aware).
* `mouse_report` -- RFB pointer masks to xterm mouse reports (X10/1000/1002/1003, SGR/legacy).
* `is_paste_key` -- Shift+Insert detection.
* `keysym_to_char` -- re-exported from `vncmux.console.keysyms`, which holds X's tables
  (keysym → character, with the legacy pre-Unicode keysyms noVNC and TigerVNC still send;
  modifier keysyms; dead keys).
"""

from __future__ import annotations

import unicodedata

from twisted.logger import Logger

from vncmux.console.keysyms import (
    DEAD_KEYS,
    DEAD_TWICE,
    is_modifier_keysym,
    keysym_to_char,
)
from vncmux.console.modes import Modes

__all__ = [
    "KeyMapper",
    "is_paste_key",
    "keysym_to_char",
    "mouse_report",
    "paste_bytes",
]

ESC = "\x1b"
CSI = "\x1b["
SS3 = "\x1bO"

# Modifier bits of xterm's modifier parameter (the parameter itself is 1 + bits).
MOD_SHIFT = 1
MOD_ALT = 2
MOD_CTRL = 4
MOD_META = 8


# --- keysyms (X11 keysymdef.h) -----------------------------------------------------------

XK_BackSpace = 0xFF08
XK_Tab = 0xFF09
XK_Linefeed = 0xFF0A
XK_Return = 0xFF0D
XK_Escape = 0xFF1B
XK_Delete = 0xFFFF
XK_Home = 0xFF50
XK_Left = 0xFF51
XK_Up = 0xFF52
XK_Right = 0xFF53
XK_Down = 0xFF54
XK_Prior = 0xFF55
XK_Next = 0xFF56
XK_End = 0xFF57
XK_Begin = 0xFF58
XK_Select = 0xFF60
XK_Insert = 0xFF63
XK_Menu = 0xFF67
XK_Find = 0xFF68
XK_Help = 0xFF6A
XK_ISO_Left_Tab = 0xFE20
XK_KP_Space = 0xFF80
XK_KP_Tab = 0xFF89
XK_KP_Enter = 0xFF8D
XK_KP_F1 = 0xFF91
XK_KP_Home = 0xFF95
XK_KP_Left = 0xFF96
XK_KP_Up = 0xFF97
XK_KP_Right = 0xFF98
XK_KP_Down = 0xFF99
XK_KP_Prior = 0xFF9A
XK_KP_Next = 0xFF9B
XK_KP_End = 0xFF9C
XK_KP_Begin = 0xFF9D
XK_KP_Insert = 0xFF9E
XK_KP_Delete = 0xFF9F
XK_KP_Equal = 0xFFBD
XK_KP_Multiply = 0xFFAA
XK_KP_Add = 0xFFAB
XK_KP_Separator = 0xFFAC
XK_KP_Subtract = 0xFFAD
XK_KP_Decimal = 0xFFAE
XK_KP_Divide = 0xFFAF
XK_KP_0 = 0xFFB0
XK_F1 = 0xFFBE
XK_F35 = 0xFFE0
XK_Shift_L = 0xFFE1
XK_Shift_R = 0xFFE2
XK_Control_L = 0xFFE3
XK_Control_R = 0xFFE4
XK_Meta_L = 0xFFE7
XK_Meta_R = 0xFFE8
XK_Alt_L = 0xFFE9
XK_Alt_R = 0xFFEA
XK_ISO_Level3_Shift = 0xFE03
XK_Mode_switch = 0xFF7E


_SHIFT_KEYS = frozenset({XK_Shift_L, XK_Shift_R})
_CTRL_KEYS = frozenset({XK_Control_L, XK_Control_R})
_ALT_KEYS = frozenset({XK_Alt_L, XK_Alt_R})
_META_KEYS = frozenset({XK_Meta_L, XK_Meta_R})
_TRACKED = _SHIFT_KEYS | _CTRL_KEYS | _ALT_KEYS | _META_KEYS


# --- dead keys --------------------------------------------------------------------------------


def _compose(dead: int, char: str) -> str | None:
    """The single precomposed character for dead key + char, or None if there is none."""
    combining = DEAD_KEYS[dead][0]
    composed = unicodedata.normalize("NFC", char + combining)
    return composed if len(composed) == 1 else None


# --- function keys ----------------------------------------------------------------------------

# Keys whose unmodified form is CSI/SS3 + letter (DECCKM picks which); modified: CSI 1;m letter.
_CURSOR_KEYS: dict[int, str] = {
    XK_Up: "A",
    XK_Down: "B",
    XK_Right: "C",
    XK_Left: "D",
    XK_Home: "H",
    XK_End: "F",
    XK_Begin: "E",
    XK_KP_Up: "A",
    XK_KP_Down: "B",
    XK_KP_Right: "C",
    XK_KP_Left: "D",
    XK_KP_Home: "H",
    XK_KP_End: "F",
    XK_KP_Begin: "E",
}
# Keys sent as CSI n ~ (modified: CSI n;m ~).  The KP_ editing keys are what X sends for the
# keypad with NumLock off, and an xterm treats them as the editing keys.
_TILDE_KEYS: dict[int, int] = {
    XK_Find: 1,
    XK_Insert: 2,
    XK_Delete: 3,
    XK_Select: 4,
    XK_Prior: 5,
    XK_Next: 6,
    XK_Help: 28,
    XK_Menu: 29,
    XK_KP_Insert: 2,
    XK_KP_Delete: 3,
    XK_KP_Prior: 5,
    XK_KP_Next: 6,
}
# F1-F4 (and the VT100 PF1-PF4 keypad keys): SS3 P..S, modified CSI 1;m P..S.
_PF_FINALS = "PQRS"
# F5-F12: CSI n ~ (the VT220 numbering skips 16 and 22).
_FKEY_NUMBERS = (15, 17, 18, 19, 20, 21, 23, 24)
# xterm's PC-style keyboard treats F13-F24 as Shift+F1-F12, F25-F35 as Ctrl+F1-F11.
_FKEY_GROUP_MODS = (0, MOD_SHIFT, MOD_CTRL, MOD_CTRL | MOD_SHIFT)

# Keypad: keysym → (character in numeric mode, SS3 final in application mode).
_KEYPAD: dict[int, tuple[str, str]] = {
    XK_KP_Space: (" ", " "),
    XK_KP_Tab: ("\t", "I"),
    XK_KP_Multiply: ("*", "j"),
    XK_KP_Add: ("+", "k"),
    XK_KP_Separator: (",", "l"),
    XK_KP_Subtract: ("-", "m"),
    XK_KP_Decimal: (".", "n"),
    XK_KP_Divide: ("/", "o"),
    XK_KP_Equal: ("=", "X"),
    **{XK_KP_0 + digit: (str(digit), "pqrstuvwxy"[digit]) for digit in range(10)},
}


def _ctrl_char(char: str) -> str | None:
    """Xlib's control translation (what xterm sends for Ctrl+key), None when Ctrl has no effect.

    Ctrl+@..~ and Ctrl+space mask to 0x00-0x1f (so Ctrl+Shift+A is ^A like Ctrl+a), Ctrl+2 is
    NUL, Ctrl+3..7 are ESC..US, Ctrl+8 and Ctrl+? are DEL, Ctrl+/ is US.
    """
    code = ord(char)
    if 0x40 <= code <= 0x7E or char == " ":
        return chr(code & 0x1F)
    if char == "2":
        return "\x00"
    if "3" <= char <= "7":
        return chr(code - ord("3") + 0x1B)
    if char in "8?":
        return "\x7f"
    if char == "/":
        return "\x1f"
    return None


class KeyMapper:
    """One per viewer: turns its KeyEvents into the bytes an xterm would send.

    State is what X itself would hold for a keyboard: the modifier keys currently down and a
    pending dead key.  The viewer sends the keysym the key *produced* (Shift already applied),
    so Shift never changes a character, only the function keys' modifier parameter and Tab.

    A keysym that neither types a character nor is a key xterm knows (a legacy keysym without
    a Unicode meaning, a media key) sends nothing and is logged once per mapper, naming the
    viewer (``peer``); after ``unmapped_log_limit`` different ones, the rest go unlogged.
    """

    log = Logger()
    unmapped_log_limit = 64

    def __init__(self, encoding: str = "utf-8", peer: str = "viewer") -> None:
        self._encoding = encoding
        self._held: set[int] = set()
        self._dead: int | None = None
        self.peer = peer
        self._unmapped: set[int] = set()

    # -- state ---------------------------------------------------------------------------------

    @property
    def shift(self) -> bool:
        """A Shift key is held."""
        return bool(self._held & _SHIFT_KEYS)

    @property
    def ctrl(self) -> bool:
        """A Control key is held."""
        return bool(self._held & _CTRL_KEYS)

    @property
    def alt(self) -> bool:
        """An Alt key is held (AltGr/ISO_Level3_Shift is not Alt)."""
        return bool(self._held & _ALT_KEYS)

    @property
    def meta(self) -> bool:
        """A Meta key is held."""
        return bool(self._held & _META_KEYS)

    @property
    def pending_dead_key(self) -> int | None:
        """The dead keysym waiting for the next key, if any."""
        return self._dead

    def reset(self) -> None:
        """Forget held modifiers and any pending dead key.

        Call when the viewer loses focus or reconnects: its key-up events may never arrive, and
        a stuck Ctrl would turn every later letter into a control character.
        """
        self._held.clear()
        self._dead = None

    def _modifier_bits(self) -> int:
        bits = 0
        if self.shift:
            bits |= MOD_SHIFT
        if self.alt:
            bits |= MOD_ALT
        if self.ctrl:
            bits |= MOD_CTRL
        if self.meta:
            bits |= MOD_META
        return bits

    def _fake_altgr(self) -> bool:
        """Windows (and viewers running on it) report AltGr as Control_L + Alt_R.

        In that exact combination a produced non-letter character is AltGr's output, not a
        Ctrl+Alt chord: German AltGr+Q types '@', which must not become ESC NUL.
        """
        return (
            XK_Control_L in self._held
            and XK_Alt_R in self._held
            and XK_Control_R not in self._held
            and XK_Alt_L not in self._held
        )

    # -- the event -----------------------------------------------------------------------------

    def key(self, keysym: int, down: bool, modes: Modes) -> bytes:
        """Bytes to send to the device for one RFB KeyEvent (often ``b''``).

        Key-up events only update modifier state.  A repeated down event (auto-repeat) sends
        the key again.
        """
        if not down:
            self._held.discard(keysym)
            return b""
        if is_modifier_keysym(keysym):
            if keysym in _TRACKED:
                self._held.add(keysym)
            return b""
        if keysym in DEAD_KEYS:
            return self._dead_key(keysym)
        char = keysym_to_char(keysym)
        if char is not None:
            return self._char(char)
        return self._function_key(keysym, modes)

    def _dead_key(self, keysym: int) -> bytes:
        previous = self._dead
        if previous is None:
            self._dead = keysym
            return b""
        if previous == keysym:
            self._dead = None
            return self._encode(DEAD_TWICE.get(keysym, DEAD_KEYS[keysym][1]))
        # A different dead key: the first one types its accent, the second one waits.
        self._dead = keysym
        return self._encode(DEAD_KEYS[previous][1])

    def _char(self, char: str) -> bytes:
        mods = self._modifier_bits()
        if self._fake_altgr() and not (char.isascii() and char.isalpha()):
            mods &= ~(MOD_CTRL | MOD_ALT)
        prefix = ESC if mods & (MOD_ALT | MOD_META) else ""
        if mods & MOD_CTRL:
            control = _ctrl_char(char)
            if control is not None:
                # Ctrl+C must interrupt whatever the dead key was waiting for.
                self._dead = None
                return (prefix + control).encode("ascii")
        dead, self._dead = self._dead, None
        if dead is not None:
            if char == " ":
                return self._encode(DEAD_KEYS[dead][1])
            composed = _compose(dead, char)
            if composed is not None:
                return self._encode(composed, prefix)
            # Not composable: type the accent, then the key, as X does.
            return self._encode(DEAD_KEYS[dead][1]) + self._encode(char, prefix)
        return self._encode(char, prefix)

    def _encode(self, text: str, prefix: str = "") -> bytes:
        """text in the device's encoding; b'' if it cannot be encoded (nothing half-typed)."""
        try:
            body = text.encode(self._encoding)
        except (UnicodeError, LookupError):
            return b""
        return prefix.encode("ascii") + body

    def _function_key(self, keysym: int, modes: Modes) -> bytes:
        sequence = self._function_sequence(keysym, modes)
        if not sequence:
            self._log_unmapped(keysym)
            return b""
        dead, self._dead = self._dead, None
        if dead is None:
            return sequence
        if keysym in (XK_Escape, XK_BackSpace):
            return b""  # Escape or BackSpace after a dead key cancels it.
        return self._encode(DEAD_KEYS[dead][1]) + sequence

    def _log_unmapped(self, keysym: int) -> None:
        """Say once per keysym (up to a limit) that a key the viewer sent types nothing."""
        if keysym in self._unmapped or len(self._unmapped) > self.unmapped_log_limit:
            return
        self._unmapped.add(keysym)
        if len(self._unmapped) > self.unmapped_log_limit:
            self.log.info(
                "Viewer {peer}: more keysyms that type nothing; no longer logging them",
                peer=self.peer,
            )
            return
        self.log.info(
            "Viewer {peer}: keysym {keysym} types nothing (no character or key sequence)",
            peer=self.peer,
            keysym=f"0x{keysym:x}",
        )

    def _function_sequence(self, keysym: int, modes: Modes) -> bytes:
        """The xterm sequence for a non-character key under the current modifiers."""
        mods = self._modifier_bits()
        esc = ESC if mods & (MOD_ALT | MOD_META) else ""
        text: str | None = None
        if keysym in _CURSOR_KEYS:
            final = _CURSOR_KEYS[keysym]
            if mods:
                text = f"{CSI}1;{1 + mods}{final}"
            else:
                text = (SS3 if modes.app_cursor else CSI) + final
        elif keysym in _TILDE_KEYS:
            text = _tilde(_TILDE_KEYS[keysym], mods)
        elif XK_F1 <= keysym <= XK_F35:
            group, index = divmod(keysym - XK_F1, 12)
            text = _fkey(index, mods | _FKEY_GROUP_MODS[group])
        elif XK_KP_F1 <= keysym <= XK_KP_F1 + 3:
            text = _fkey(keysym - XK_KP_F1, mods)
        elif keysym in (XK_Return, XK_KP_Enter):
            if keysym == XK_KP_Enter and modes.app_keypad:
                text = SS3 + "M"
            else:
                text = esc + ("\r\n" if modes.newline_mode else "\r")
        elif keysym in _KEYPAD:
            numeric, final = _KEYPAD[keysym]
            text = SS3 + final if modes.app_keypad else esc + numeric
        elif keysym == XK_Tab:
            text = esc + (CSI + "Z" if mods & MOD_SHIFT else "\t")
        elif keysym == XK_ISO_Left_Tab:
            text = esc + CSI + "Z"
        elif keysym == XK_BackSpace:
            text = esc + ("\x08" if mods & MOD_CTRL else "\x7f")
        elif keysym == XK_Escape:
            text = esc + ESC
        elif keysym == XK_Linefeed:
            text = esc + "\n"
        return text.encode("ascii") if text else b""


def _tilde(number: int, mods: int) -> str:
    return f"{CSI}{number};{1 + mods}~" if mods else f"{CSI}{number}~"


def _fkey(index: int, mods: int) -> str:
    """F1..F12 (index 0..11) with xterm's PC-style modifier encoding."""
    if index < 4:
        final = _PF_FINALS[index]
        return f"{CSI}1;{1 + mods}{final}" if mods else SS3 + final
    return _tilde(_FKEY_NUMBERS[index - 4], mods)


def is_paste_key(keysym: int, mapper: KeyMapper) -> bool:
    """Shift+Insert (main or keypad Insert): the viewer asks to paste its clipboard.

    Only plain Shift counts: Ctrl+Shift+Insert and friends stay ordinary keys.
    """
    return (
        keysym in (XK_Insert, XK_KP_Insert)
        and mapper.shift
        and not (mapper.ctrl or mapper.alt or mapper.meta)
    )


# --- paste ------------------------------------------------------------------------------------

_PASTE_START = "\x1b[200~"
_PASTE_END = "\x1b[201~"
_PASTE_END_C1 = "\x9b201~"


def paste_bytes(text: str, modes: Modes, encoding: str = "utf-8") -> bytes:
    """The bytes for typing ``text`` as an explicit paste.

    Line ends become CR, as the Return key would send them.  With bracketed paste on, the text
    is wrapped in ESC[200~ ... ESC[201~ and any end marker inside it is defused (its ESC or C1
    CSI dropped, repeatedly, so that removing one cannot assemble another): otherwise pasted
    text could end the paste early and have the rest run as typed commands.  Characters the
    encoding cannot represent become '?'.
    """
    text = text.replace("\r\n", "\r").replace("\n", "\r")
    if not text:
        return b""
    if not modes.bracketed_paste:
        return _encode_lossy(text, encoding)
    while _PASTE_END in text or _PASTE_END_C1 in text:
        text = text.replace(_PASTE_END, _PASTE_END[1:]).replace(_PASTE_END_C1, _PASTE_END_C1[1:])
    body = _encode_lossy(text, encoding)
    return _PASTE_START.encode("ascii") + body + _PASTE_END.encode("ascii")


def _encode_lossy(text: str, encoding: str) -> bytes:
    try:
        return text.encode(encoding, errors="replace")
    except LookupError:
        return text.encode("utf-8", errors="replace")


# --- mouse ------------------------------------------------------------------------------------

MOUSE_X10 = 9
MOUSE_NORMAL = 1000
MOUSE_BUTTON_EVENT = 1002
MOUSE_ANY_EVENT = 1003

# RFB pointer mask bit → xterm button code.  Bits 0-2 are left/middle/right; 3/4 the wheel
# (up/down), 5/6 horizontal wheel (left/right) as noVNC sends it.
_BUTTONS = ((1, 0), (2, 1), (4, 2))
_WHEEL = ((8, 64), (16, 65), (32, 66), (64, 67))
_MOTION = 32
_RELEASE = 3
# Legacy encoding: 0-based coordinate + 33 in one byte; xterm clamps at 223 and sends that
# as a zero byte (its "past the end" marker).
_LEGACY_LIMIT = 255 - 32


def mouse_report(button_mask: int, prev_mask: int, col: int, row: int, modes: Modes) -> bytes:
    """xterm mouse report(s) for one RFB PointerEvent, b'' when the mode wants none.

    ``col``/``row`` are 0-based cells.  Every button that changed between ``prev_mask`` and
    ``button_mask`` is reported (press; release except in X10 mode; wheel as a press of
    64/65/66/67, never released).  A call where the mask did not change is motion: reported in
    1002 while a button is held and always in 1003.  The caller should therefore call this for
    a motion only when the pointer entered another cell, as xterm reports motion per cell.
    """
    mode = modes.mouse_tracking
    if mode not in (MOUSE_X10, MOUSE_NORMAL, MOUSE_BUTTON_EVENT, MOUSE_ANY_EVENT):
        return b""
    col = max(col, 0)
    row = max(row, 0)
    changed = button_mask ^ prev_mask
    reports: list[bytes] = []
    for bit, code in _BUTTONS:
        if not changed & bit:
            continue
        if button_mask & bit:
            reports.append(_encode_mouse(code, True, col, row, modes.mouse_sgr))
        elif mode != MOUSE_X10:
            reports.append(_encode_mouse(code, False, col, row, modes.mouse_sgr))
    if mode != MOUSE_X10:
        for bit, code in _WHEEL:
            if changed & bit and button_mask & bit:
                reports.append(_encode_mouse(code, True, col, row, modes.mouse_sgr))
    if not changed and mode in (MOUSE_BUTTON_EVENT, MOUSE_ANY_EVENT):
        held = [code for bit, code in _BUTTONS if button_mask & bit]
        if held:
            reports.append(_encode_mouse(held[0] + _MOTION, True, col, row, modes.mouse_sgr))
        elif mode == MOUSE_ANY_EVENT:
            reports.append(_encode_mouse(_RELEASE + _MOTION, True, col, row, modes.mouse_sgr))
    return b"".join(reports)


def _encode_mouse(code: int, press: bool, col: int, row: int, sgr: bool) -> bytes:
    """One report: SGR ``CSI < b;x;y M/m`` or legacy ``CSI M`` + three bytes."""
    if sgr:
        return f"{CSI}<{code};{col + 1};{row + 1}{'M' if press else 'm'}".encode("ascii")
    button = code if press else _RELEASE
    return b"\x1b[M" + bytes((32 + button, _legacy_coord(col), _legacy_coord(row)))


def _legacy_coord(value: int) -> int:
    return 0 if value >= _LEGACY_LIMIT else 32 + value + 1
