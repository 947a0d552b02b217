"""Translate RFB input (X11 keysyms, pointer masks, pasted text) into xterm's bytes.

What a viewer types must reach the console device exactly as if it had been typed into an
xterm: the byte sequences follow xterm's ctlseqs (PC-style function keys, modifier parameter
``1 + (shift 1 | alt 2 | ctrl 4 | meta 8)``).  The module is pure: no I/O, no pyte, so every
rule is unit-testable and the RFB server only passes keysyms and the terminal's `Modes`.

It holds:

* `KeyMapper` -- one per viewer; tracks held modifiers and a pending dead key.
* `paste_bytes` -- text of an explicit paste (bracketed paste aware).
* `mouse_report` -- RFB pointer masks to xterm mouse reports (X10/1000/1002/1003, SGR/legacy).
* `is_paste_key` -- Shift+Insert detection.
* `keysym_to_char` -- the keysym → character rule, including the reverse table for the legacy
  (pre-Unicode) keysyms that noVNC and TigerVNC still send.
"""

from __future__ import annotations

import unicodedata

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

# --- keysyms (X11 keysymdef.h) ---------------------------------------------------------------

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


def _is_modifier_keysym(keysym: int) -> bool:
    """Keys that only change the state of others and never produce bytes themselves.

    Shift/Control/Caps/Shift lock/Meta/Alt/Super/Hyper (0xffe1-0xffee), Num_Lock, Scroll_Lock,
    Mode_switch and the ISO lock/latch/level keys (0xfe01-0xfe13, AltGr is ISO_Level3_Shift).
    """
    return (
        0xFFE1 <= keysym <= 0xFFEE
        or 0xFE01 <= keysym <= 0xFE13
        or keysym in (XK_Mode_switch, 0xFF7F, 0xFF14)
    )


# --- legacy keysym → Unicode ----------------------------------------------------------------
#
# X11 predates Unicode: Latin-2/3/4, Latin-9, Katakana, Arabic, Cyrillic, Greek, technical,
# special, publishing, APL, Hebrew, Thai and Korean characters have keysyms of their own, and
# noVNC/TigerVNC send those in preference to 0x01000000 + code point.  Each block below is
# (first keysym, string): the character at index i is the one for keysym first + i, "\x00"
# marks keysyms that have no exact Unicode equivalent (keysymdef.h only approximates them, so
# they are left out).  Only the exact mappings of keysymdef.h ("/* U+XXXX") are included.
_LEGACY_BLOCKS: tuple[tuple[int, str], ...] = (
    (
        0x01A1,
        (
            "Ą˘Ł\x00ĽŚ\x00\x00ŠŞŤŹ\x00ŽŻ\x00ą˛ł\x00ľśˇ\x00šşťź˝žżŔ\x00\x00Ă"
            "\x00ĹĆ\x00Č\x00Ę\x00Ě\x00\x00ĎĐŃŇ\x00\x00Ő\x00\x00ŘŮ\x00Ű\x00"
            "\x00Ţ\x00ŕ\x00\x00ă\x00ĺć\x00č\x00ę\x00ě\x00\x00ďđńň\x00\x00ő"
            "\x00\x00řů\x00ű\x00\x00ţ˙"
        ),
    ),
    (
        0x02A1,
        ("Ħ\x00\x00\x00\x00Ĥ\x00\x00İ\x00ĞĴ\x00\x00\x00\x00ħ\x00\x00\x00\x00ĥ\x00\x00ı\x00ğĵ"),
    ),
    (0x02C5, "ĊĈ"),
    (0x02D5, "Ġ\x00\x00Ĝ\x00\x00\x00\x00ŬŜ\x00\x00\x00\x00\x00\x00ċĉ"),
    (0x02F5, "ġ\x00\x00ĝ\x00\x00\x00\x00ŭŝ"),
    (
        0x03A2,
        (
            "ĸŖ\x00ĨĻ\x00\x00\x00ĒĢŦ\x00\x00\x00\x00\x00\x00ŗ\x00ĩļ\x00\x00"
            "\x00ēģŧŊ\x00ŋĀ\x00\x00\x00\x00\x00\x00Į\x00\x00\x00\x00Ė\x00\x00"
            "Ī\x00ŅŌĶ\x00\x00\x00\x00\x00Ų\x00\x00\x00ŨŪ\x00ā\x00\x00\x00\x00"
            "\x00\x00į\x00\x00\x00\x00ė\x00\x00ī\x00ņōķ\x00\x00\x00\x00\x00ų"
            "\x00\x00\x00ũū"
        ),
    ),
    (0x047E, "‾"),
    (
        0x04A1,
        (
            "\u3002\u300c\u300d\u3001\u30fb\u30f2\u30a1\u30a3\u30a5\u30a7"
            "\u30a9\u30e3\u30e5\u30e7\u30c3\u30fc\u30a2\u30a4\u30a6\u30a8"
            "\u30aa\u30ab\u30ad\u30af\u30b1\u30b3\u30b5\u30b7\u30b9\u30bb"
            "\u30bd\u30bf\u30c1\u30c4\u30c6\u30c8\u30ca\u30cb\u30cc\u30cd"
            "\u30ce\u30cf\u30d2\u30d5\u30d8\u30db\u30de\u30df\u30e0\u30e1"
            "\u30e2\u30e4\u30e6\u30e8\u30e9\u30ea\u30eb\u30ec\u30ed\u30ef"
            "\u30f3\u309b\u309c"
        ),
    ),
    (0x05AC, "،"),
    (
        0x05BB,
        (
            "\u061b\x00\x00\x00\u061f\x00\u0621\u0622\u0623\u0624\u0625\u0626"
            "\u0627\u0628\u0629\u062a\u062b\u062c\u062d\u062e\u062f\u0630"
            "\u0631\u0632\u0633\u0634\u0635\u0636\u0637\u0638\u0639\u063a\x00"
            "\x00\x00\x00\x00\u0640\u0641\u0642\u0643\u0644\u0645\u0646\u0647"
            "\u0648\u0649\u064a\u064b\u064c\u064d\u064e\u064f\u0650\u0651"
            "\u0652"
        ),
    ),
    (
        0x06A1,
        (
            "ђѓёєѕіїјљњћќґўџ№ЂЃЁЄЅІЇЈЉЊЋЌҐЎЏюабцдефгхийклмнопярстужвьызшэщчъЮ"
            "АБЦДЕФГХИЙКЛМНОПЯРСТУЖВЬЫЗШЭЩЧЪ"
        ),
    ),
    (
        0x07A1,
        (
            "ΆΈΉΊΪ\x00ΌΎΫ\x00Ώ\x00\x00΅―\x00άέήίϊΐόύϋΰώ\x00\x00\x00\x00\x00ΑΒ"
            "ΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣ\x00ΤΥΦΧΨΩ\x00\x00\x00\x00\x00\x00\x00αβγδεζηθικ"
            "λμνξοπρσςτυφχψω"
        ),
    ),
    (0x08A1, "⎷\x00\x00⌠⌡\x00⎡⎣⎤⎦⎛⎝⎞⎠⎨⎬"),
    (
        0x08BC,
        ("≤≠≥∫∴∝∞\x00\x00∇\x00\x00∼≃\x00\x00\x00⇔⇒≡\x00\x00\x00\x00\x00\x00√\x00\x00\x00⊂⊃∩∪∧∨"),
    ),
    (0x08EF, "∂\x00\x00\x00\x00\x00\x00ƒ\x00\x00\x00\x00←↑→↓"),
    (0x09E0, "◆▒␉␌␍␊\x00\x00␤␋┘┐┌└┼⎺⎻─⎼⎽├┤┴┬│"),
    (
        0x0AA1,
        (
            "\u2003\u2002\u2004\u2005\u2007\u2008\u2009\u200a—–\x00\x00\x00…‥"
            "⅓⅔⅕⅖⅗⅘⅙⅚℅\x00\x00‒\x00\x00\x00\x00\x00\x00\x00⅛⅜⅝⅞\x00\x00™\x00"
            "\x00\x00\x00\x00\x00‘’“”℞‰′″\x00✝"
        ),
    ),
    (0x0AEC, "♣♦♥\x00✠†‡✓✗♯♭♂♀☎⌕℗‸‚„"),
    (0x0BC2, "⊤\x00⌊\x00\x00\x00\x00\x00∘\x00⎕\x00⊥○\x00\x00\x00⌈"),
    (0x0BDC, "⊣"),
    (0x0BFC, "⊢"),
    (
        0x0CDF,
        (
            "‗\u05d0\u05d1\u05d2\u05d3\u05d4\u05d5\u05d6\u05d7\u05d8\u05d9"
            "\u05da\u05db\u05dc\u05dd\u05de\u05df\u05e0\u05e1\u05e2\u05e3"
            "\u05e4\u05e5\u05e6\u05e7\u05e8\u05e9\u05ea"
        ),
    ),
    (
        0x0DA1,
        (
            "กขฃคฅฆงจฉชซฌญฎฏฐฑฒณดตถทธนบปผฝพฟภมยรฤลฦวศษสหฬอฮฯะ\u0e31าำ\u0e34"
            "\u0e35\u0e36\u0e37\u0e38\u0e39\u0e3a\x00\x00\x00\x00฿เแโใไๅๆ"
            "\u0e47\u0e48\u0e49\u0e4a\u0e4b\u0e4c\u0e4d\x00\x00๐๑๒๓๔๕๖๗๘๙"
        ),
    ),
    (
        0x0EA1,
        (
            "\u3131\u3132\u3133\u3134\u3135\u3136\u3137\u3138\u3139\u313a"
            "\u313b\u313c\u313d\u313e\u313f\u3140\u3141\u3142\u3143\u3144"
            "\u3145\u3146\u3147\u3148\u3149\u314a\u314b\u314c\u314d\u314e"
            "\u314f\u3150\u3151\u3152\u3153\u3154\u3155\u3156\u3157\u3158"
            "\u3159\u315a\u315b\u315c\u315d\u315e\u315f\u3160\u3161\u3162"
            "\u3163ᆨᆩᆪᆫᆬᆭᆮᆯᆰᆱᆲᆳᆴᆵᆶᆷᆸᆹᆺᆻᆼᆽᆾᆿᇀᇁᇂ\u316d\u3171\u3178\u317f\u3181"
            "\u3184\u3186\u318d\u318eᇫᇰᇹ"
        ),
    ),
    (0x13BC, "ŒœŸ"),
    (0x20AC, "€"),
)


def _build_legacy_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for first, chars in _LEGACY_BLOCKS:
        for offset, char in enumerate(chars):
            if char != "\x00":
                table[first + offset] = char
    return table


_LEGACY: dict[int, str] = _build_legacy_table()

_UNICODE_KEYSYM_BASE = 0x01000000


def keysym_to_char(keysym: int) -> str | None:
    """The character a keysym types, or None for function/modifier/unknown keysyms.

    Latin-1 keysyms are their own code points, 0x01000000 + c is U+c, and the legacy keysyms
    come from the reverse table.  Control characters are never "typed" this way: they only
    come from Return, Tab, Ctrl+letter ...
    """
    if 0x20 <= keysym <= 0x7E or 0xA0 <= keysym <= 0xFF:
        return chr(keysym)
    if _UNICODE_KEYSYM_BASE + 0x20 <= keysym <= _UNICODE_KEYSYM_BASE + 0x10FFFF:
        code = keysym - _UNICODE_KEYSYM_BASE
        if 0x7F <= code < 0xA0 or 0xD800 <= code <= 0xDFFF:
            return None
        return chr(code)
    return _LEGACY.get(keysym)


# --- dead keys --------------------------------------------------------------------------------
#
# keysym → (combining mark, what the dead key types on its own).  The stand-alone forms follow
# X's Compose tables for "<dead_x> <space>" (ASCII where X gives ASCII, e.g. dead_acute + space
# is an apostrophe); dead keys without a spacing form type a space carrying the mark.
_DEAD_KEYS: dict[int, tuple[str, str]] = {
    0xFE50: ("\u0300", "`"),  # dead_grave
    0xFE51: ("\u0301", "'"),  # dead_acute
    0xFE52: ("\u0302", "^"),  # dead_circumflex
    0xFE53: ("\u0303", "~"),  # dead_tilde
    0xFE54: ("\u0304", "\u00af"),  # dead_macron
    0xFE55: ("\u0306", "\u02d8"),  # dead_breve
    0xFE56: ("\u0307", "\u02d9"),  # dead_abovedot
    0xFE57: ("\u0308", '"'),  # dead_diaeresis
    0xFE58: ("\u030a", "\u00b0"),  # dead_abovering
    0xFE59: ("\u030b", "\u02dd"),  # dead_doubleacute
    0xFE5A: ("\u030c", "\u02c7"),  # dead_caron
    0xFE5B: ("\u0327", "\u00b8"),  # dead_cedilla
    0xFE5C: ("\u0328", "\u02db"),  # dead_ogonek
    0xFE5D: ("\u0345", "\u037a"),  # dead_iota
    0xFE5E: ("\u3099", "\u309b"),  # dead_voiced_sound
    0xFE5F: ("\u309a", "\u309c"),  # dead_semivoiced_sound
    0xFE60: ("\u0323", " \u0323"),  # dead_belowdot
    0xFE61: ("\u0309", " \u0309"),  # dead_hook
    0xFE62: ("\u031b", " \u031b"),  # dead_horn
    0xFE64: ("\u0313", " \u0313"),  # dead_abovecomma
    0xFE65: ("\u0314", " \u0314"),  # dead_abovereversedcomma
    0xFE66: ("\u030f", " \u030f"),  # dead_doublegrave
    0xFE67: ("\u0325", " \u0325"),  # dead_belowring
    0xFE68: ("\u0331", " \u0331"),  # dead_belowmacron
    0xFE69: ("\u032d", " \u032d"),  # dead_belowcircumflex
    0xFE6A: ("\u0330", " \u0330"),  # dead_belowtilde
    0xFE6B: ("\u032e", " \u032e"),  # dead_belowbreve
    0xFE6C: ("\u0324", " \u0324"),  # dead_belowdiaeresis
    0xFE6D: ("\u0311", " \u0311"),  # dead_invertedbreve
    0xFE6E: ("\u0326", " \u0326"),  # dead_belowcomma
}
# Pressing the same dead key twice types the accent itself; X gives the Latin-1 accent
# characters here rather than the ASCII look-alikes it gives for "+ space".
_DEAD_TWICE: dict[int, str] = {0xFE51: "\u00b4", 0xFE57: "\u00a8"}


def _compose(dead: int, char: str) -> str | None:
    """The single precomposed character for dead key + char, or None if there is none."""
    combining = _DEAD_KEYS[dead][0]
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
    """

    def __init__(self, encoding: str = "utf-8") -> None:
        self._encoding = encoding
        self._held: set[int] = set()
        self._dead: int | None = None

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
        if _is_modifier_keysym(keysym):
            if keysym in _TRACKED:
                self._held.add(keysym)
            return b""
        if keysym in _DEAD_KEYS:
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
            return self._encode(_DEAD_TWICE.get(keysym, _DEAD_KEYS[keysym][1]))
        # A different dead key: the first one types its accent, the second one waits.
        self._dead = keysym
        return self._encode(_DEAD_KEYS[previous][1])

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
                return self._encode(_DEAD_KEYS[dead][1])
            composed = _compose(dead, char)
            if composed is not None:
                return self._encode(composed, prefix)
            # Not composable: type the accent, then the key, as X does.
            return self._encode(_DEAD_KEYS[dead][1]) + self._encode(char, prefix)
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
            return b""
        dead, self._dead = self._dead, None
        if dead is None:
            return sequence
        if keysym in (XK_Escape, XK_BackSpace):
            return b""  # Escape or BackSpace after a dead key cancels it.
        return self._encode(_DEAD_KEYS[dead][1]) + sequence

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
