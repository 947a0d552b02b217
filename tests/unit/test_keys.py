"""keys.py: RFB keysyms, pointer masks and pastes become the bytes an xterm would send.

Expected bytes are written out from xterm's ctlseqs (PC-style keyboard, default
modifyCursorKeys/modifyFunctionKeys), not computed with the module's own helpers.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.logger import capturedLogs, formatEvent

from vncmux.console.keys import (
    KeyMapper,
    is_paste_key,
    keysym_to_char,
    mouse_report,
    paste_bytes,
)
from vncmux.console.modes import Modes

SHIFT, CTRL, ALT, META = 0xFFE1, 0xFFE3, 0xFFE9, 0xFFE7
SHIFT_R, CTRL_R, ALT_R, META_R = 0xFFE2, 0xFFE4, 0xFFEA, 0xFFE8
ALTGR = 0xFE03  # ISO_Level3_Shift
DEAD = {
    "grave": 0xFE50,
    "acute": 0xFE51,
    "circumflex": 0xFE52,
    "tilde": 0xFE53,
    "macron": 0xFE54,
    "breve": 0xFE55,
    "abovedot": 0xFE56,
    "diaeresis": 0xFE57,
    "abovering": 0xFE58,
    "doubleacute": 0xFE59,
    "caron": 0xFE5A,
    "cedilla": 0xFE5B,
    "ogonek": 0xFE5C,
    "voiced": 0xFE5E,
}
NAMED = {
    "BackSpace": 0xFF08,
    "Tab": 0xFF09,
    "Linefeed": 0xFF0A,
    "Return": 0xFF0D,
    "Escape": 0xFF1B,
    "Delete": 0xFFFF,
    "Home": 0xFF50,
    "Left": 0xFF51,
    "Up": 0xFF52,
    "Right": 0xFF53,
    "Down": 0xFF54,
    "Prior": 0xFF55,
    "Next": 0xFF56,
    "End": 0xFF57,
    "Begin": 0xFF58,
    "Insert": 0xFF63,
    "Menu": 0xFF67,
    "Find": 0xFF68,
    "Help": 0xFF6A,
    "Select": 0xFF60,
    "ISO_Left_Tab": 0xFE20,
    "KP_Space": 0xFF80,
    "KP_Tab": 0xFF89,
    "KP_Enter": 0xFF8D,
    "KP_F1": 0xFF91,
    "KP_F2": 0xFF92,
    "KP_F3": 0xFF93,
    "KP_F4": 0xFF94,
    "KP_Home": 0xFF95,
    "KP_Left": 0xFF96,
    "KP_Up": 0xFF97,
    "KP_Right": 0xFF98,
    "KP_Down": 0xFF99,
    "KP_Prior": 0xFF9A,
    "KP_Next": 0xFF9B,
    "KP_End": 0xFF9C,
    "KP_Begin": 0xFF9D,
    "KP_Insert": 0xFF9E,
    "KP_Delete": 0xFF9F,
    "KP_Multiply": 0xFFAA,
    "KP_Add": 0xFFAB,
    "KP_Separator": 0xFFAC,
    "KP_Subtract": 0xFFAD,
    "KP_Decimal": 0xFFAE,
    "KP_Divide": 0xFFAF,
    "KP_Equal": 0xFFBD,
    **{f"KP_{d}": 0xFFB0 + d for d in range(10)},
    **{f"F{n}": 0xFFBE + n - 1 for n in range(1, 36)},
    "Print": 0xFF61,
    "Pause": 0xFF13,
    "Scroll_Lock": 0xFF14,
    "Num_Lock": 0xFF7F,
    "Caps_Lock": 0xFFE5,
    "Super_L": 0xFFEB,
}


def press(
    keysym: int | str,
    modes: Modes | None = None,
    held: tuple[int, ...] = (),
    mapper: KeyMapper | None = None,
) -> bytes:
    """Hold the modifiers, press and release the key, release the modifiers; the key's bytes."""
    if isinstance(keysym, str):
        keysym = NAMED[keysym] if len(keysym) > 1 else ord(keysym)
    modes = modes or Modes()
    mapper = mapper or KeyMapper()
    for mod in held:
        assert mapper.key(mod, True, modes) == b""
    out = mapper.key(keysym, True, modes)
    assert mapper.key(keysym, False, modes) == b""
    for mod in held:
        assert mapper.key(mod, False, modes) == b""
    return out


APP_CURSOR = Modes(app_cursor=True)
APP_KEYPAD = Modes(app_keypad=True)

# (key, held modifiers, modes, expected bytes)
CASES: list[tuple[str, tuple[int, ...], Modes, bytes]] = [
    # Return, BackSpace, Tab, Escape
    ("Return", (), Modes(), b"\r"),
    ("Return", (), Modes(newline_mode=True), b"\r\n"),
    ("Return", (ALT,), Modes(), b"\x1b\r"),
    ("Linefeed", (), Modes(), b"\n"),
    ("BackSpace", (), Modes(), b"\x7f"),
    ("BackSpace", (CTRL,), Modes(), b"\x08"),
    ("BackSpace", (ALT,), Modes(), b"\x1b\x7f"),
    ("Tab", (), Modes(), b"\t"),
    ("Tab", (SHIFT,), Modes(), b"\x1b[Z"),
    ("Tab", (ALT,), Modes(), b"\x1b\t"),
    ("ISO_Left_Tab", (), Modes(), b"\x1b[Z"),
    ("ISO_Left_Tab", (SHIFT,), Modes(), b"\x1b[Z"),
    ("Escape", (), Modes(), b"\x1b"),
    ("Escape", (ALT,), Modes(), b"\x1b\x1b"),
    # cursor keys, DECCKM
    ("Up", (), Modes(), b"\x1b[A"),
    ("Down", (), Modes(), b"\x1b[B"),
    ("Right", (), Modes(), b"\x1b[C"),
    ("Left", (), Modes(), b"\x1b[D"),
    ("Home", (), Modes(), b"\x1b[H"),
    ("End", (), Modes(), b"\x1b[F"),
    ("Begin", (), Modes(), b"\x1b[E"),
    ("Up", (), APP_CURSOR, b"\x1bOA"),
    ("Left", (), APP_CURSOR, b"\x1bOD"),
    ("Home", (), APP_CURSOR, b"\x1bOH"),
    ("End", (), APP_CURSOR, b"\x1bOF"),
    ("Up", (CTRL,), Modes(), b"\x1b[1;5A"),
    ("Up", (SHIFT,), Modes(), b"\x1b[1;2A"),
    ("Up", (ALT,), Modes(), b"\x1b[1;3A"),
    ("Up", (META,), Modes(), b"\x1b[1;9A"),
    ("Up", (SHIFT, ALT, CTRL), Modes(), b"\x1b[1;8A"),
    ("Right", (CTRL,), APP_CURSOR, b"\x1b[1;5C"),  # modified keys ignore DECCKM
    ("End", (SHIFT,), Modes(), b"\x1b[1;2F"),
    # editing keys
    ("Insert", (), Modes(), b"\x1b[2~"),
    ("Delete", (), Modes(), b"\x1b[3~"),
    ("Prior", (), Modes(), b"\x1b[5~"),
    ("Next", (), Modes(), b"\x1b[6~"),
    ("Find", (), Modes(), b"\x1b[1~"),
    ("Select", (), Modes(), b"\x1b[4~"),
    ("Help", (), Modes(), b"\x1b[28~"),
    ("Menu", (), Modes(), b"\x1b[29~"),
    ("Delete", (CTRL,), Modes(), b"\x1b[3;5~"),
    ("Prior", (SHIFT,), Modes(), b"\x1b[5;2~"),
    ("Next", (CTRL, ALT), Modes(), b"\x1b[6;7~"),
    ("Delete", (), APP_CURSOR, b"\x1b[3~"),
    # function keys
    ("F1", (), Modes(), b"\x1bOP"),
    ("F2", (), Modes(), b"\x1bOQ"),
    ("F3", (), Modes(), b"\x1bOR"),
    ("F4", (), Modes(), b"\x1bOS"),
    ("F5", (), Modes(), b"\x1b[15~"),
    ("F6", (), Modes(), b"\x1b[17~"),
    ("F7", (), Modes(), b"\x1b[18~"),
    ("F8", (), Modes(), b"\x1b[19~"),
    ("F9", (), Modes(), b"\x1b[20~"),
    ("F10", (), Modes(), b"\x1b[21~"),
    ("F11", (), Modes(), b"\x1b[23~"),
    ("F12", (), Modes(), b"\x1b[24~"),
    ("F1", (SHIFT,), Modes(), b"\x1b[1;2P"),
    ("F3", (ALT,), Modes(), b"\x1b[1;3R"),
    ("F5", (CTRL,), Modes(), b"\x1b[15;5~"),
    ("F12", (SHIFT, CTRL), Modes(), b"\x1b[24;6~"),
    ("F13", (), Modes(), b"\x1b[1;2P"),
    ("F17", (), Modes(), b"\x1b[15;2~"),
    ("F25", (), Modes(), b"\x1b[1;5P"),
    ("KP_F1", (), Modes(), b"\x1bOP"),
    ("KP_F4", (), APP_KEYPAD, b"\x1bOS"),
    # keypad, numeric mode
    ("KP_0", (), Modes(), b"0"),
    ("KP_5", (), Modes(), b"5"),
    ("KP_9", (), Modes(), b"9"),
    ("KP_Add", (), Modes(), b"+"),
    ("KP_Subtract", (), Modes(), b"-"),
    ("KP_Multiply", (), Modes(), b"*"),
    ("KP_Divide", (), Modes(), b"/"),
    ("KP_Decimal", (), Modes(), b"."),
    ("KP_Separator", (), Modes(), b","),
    ("KP_Equal", (), Modes(), b"="),
    ("KP_Space", (), Modes(), b" "),
    ("KP_Tab", (), Modes(), b"\t"),
    ("KP_Enter", (), Modes(), b"\r"),
    ("KP_Enter", (), Modes(newline_mode=True), b"\r\n"),
    # keypad, application mode
    ("KP_0", (), APP_KEYPAD, b"\x1bOp"),
    ("KP_1", (), APP_KEYPAD, b"\x1bOq"),
    ("KP_9", (), APP_KEYPAD, b"\x1bOy"),
    ("KP_Multiply", (), APP_KEYPAD, b"\x1bOj"),
    ("KP_Add", (), APP_KEYPAD, b"\x1bOk"),
    ("KP_Separator", (), APP_KEYPAD, b"\x1bOl"),
    ("KP_Subtract", (), APP_KEYPAD, b"\x1bOm"),
    ("KP_Decimal", (), APP_KEYPAD, b"\x1bOn"),
    ("KP_Divide", (), APP_KEYPAD, b"\x1bOo"),
    ("KP_Equal", (), APP_KEYPAD, b"\x1bOX"),
    ("KP_Enter", (), APP_KEYPAD, b"\x1bOM"),
    ("KP_Tab", (), APP_KEYPAD, b"\x1bOI"),
    ("KP_Space", (), APP_KEYPAD, b"\x1bO "),
    # keypad with NumLock off: X sends the editing keysyms, which act as the editing keys
    ("KP_Up", (), Modes(), b"\x1b[A"),
    ("KP_Down", (), APP_CURSOR, b"\x1bOB"),
    ("KP_Left", (CTRL,), Modes(), b"\x1b[1;5D"),
    ("KP_Right", (), Modes(), b"\x1b[C"),
    ("KP_Home", (), Modes(), b"\x1b[H"),
    ("KP_End", (), APP_CURSOR, b"\x1bOF"),
    ("KP_Begin", (), Modes(), b"\x1b[E"),
    ("KP_Insert", (), Modes(), b"\x1b[2~"),
    ("KP_Delete", (), Modes(), b"\x1b[3~"),
    ("KP_Prior", (), APP_KEYPAD, b"\x1b[5~"),
    ("KP_Next", (SHIFT,), Modes(), b"\x1b[6;2~"),
    # control characters
    ("a", (CTRL,), Modes(), b"\x01"),
    ("z", (CTRL,), Modes(), b"\x1a"),
    ("c", (CTRL_R,), Modes(), b"\x03"),
    ("A", (CTRL, SHIFT), Modes(), b"\x01"),
    ("Z", (CTRL, SHIFT), Modes(), b"\x1a"),
    ("@", (CTRL,), Modes(), b"\x00"),
    (" ", (CTRL,), Modes(), b"\x00"),
    ("2", (CTRL,), Modes(), b"\x00"),
    ("[", (CTRL,), Modes(), b"\x1b"),
    ("3", (CTRL,), Modes(), b"\x1b"),
    ("\\", (CTRL,), Modes(), b"\x1c"),
    ("4", (CTRL,), Modes(), b"\x1c"),
    ("]", (CTRL,), Modes(), b"\x1d"),
    ("5", (CTRL,), Modes(), b"\x1d"),
    ("^", (CTRL,), Modes(), b"\x1e"),
    ("6", (CTRL,), Modes(), b"\x1e"),
    ("_", (CTRL,), Modes(), b"\x1f"),
    ("7", (CTRL,), Modes(), b"\x1f"),
    ("/", (CTRL,), Modes(), b"\x1f"),
    ("8", (CTRL,), Modes(), b"\x7f"),
    ("?", (CTRL,), Modes(), b"\x7f"),
    ("1", (CTRL,), Modes(), b"1"),
    ("a", (CTRL, ALT), Modes(), b"\x1b\x01"),
    # Alt / Meta prefix ESC; AltGr is not Alt
    ("x", (ALT,), Modes(), b"\x1bx"),
    ("x", (ALT_R,), Modes(), b"\x1bx"),
    ("x", (META,), Modes(), b"\x1bx"),
    ("x", (META_R,), Modes(), b"\x1bx"),
    ("X", (ALT, SHIFT), Modes(), b"\x1bX"),
    ("@", (ALTGR,), Modes(), b"@"),
    ("x", (0xFF7E,), Modes(), b"x"),  # Mode_switch
    # Shift never shifts again: the client sent the produced keysym
    ("A", (SHIFT,), Modes(), b"A"),
    ("a", (SHIFT,), Modes(), b"a"),
    ("!", (SHIFT_R,), Modes(), b"!"),
    # Latin-1 in UTF-8
    ("\u00e9", (), Modes(), "\u00e9".encode()),
    ("\u00df", (), Modes(), "\u00df".encode()),
    ("\u00e9", (ALT,), Modes(), b"\x1b" + "\u00e9".encode()),
    # keys that send nothing
    ("Print", (), Modes(), b""),
    ("Pause", (), Modes(), b""),
    ("Scroll_Lock", (), Modes(), b""),
    ("Num_Lock", (), Modes(), b""),
    ("Caps_Lock", (), Modes(), b""),
    ("Super_L", (), Modes(), b""),
]


@pytest.mark.parametrize(("key", "held", "modes", "expected"), CASES)
def test_key_table(key: str, held: tuple[int, ...], modes: Modes, expected: bytes) -> None:
    assert press(key, modes, held) == expected


@pytest.mark.parametrize("letter", "abcdefghijklmnopqrstuvwxyz")
def test_every_ctrl_letter(letter: str) -> None:
    expected = bytes([ord(letter) - ord("a") + 1])
    assert press(letter, held=(CTRL,)) == expected
    assert press(letter.upper(), held=(CTRL, SHIFT)) == expected


@pytest.mark.parametrize("code", range(0x20, 0x7F))
def test_printable_ascii_is_itself(code: int) -> None:
    assert press(code) == bytes([code])
    assert press(code, held=(SHIFT,)) == bytes([code])


@pytest.mark.parametrize(
    ("modifier", "expected"),
    [
        ((SHIFT,), b"\x1b[1;2A"),
        ((ALT,), b"\x1b[1;3A"),
        ((SHIFT, ALT), b"\x1b[1;4A"),
        ((CTRL,), b"\x1b[1;5A"),
        ((CTRL, SHIFT), b"\x1b[1;6A"),
        ((CTRL, ALT), b"\x1b[1;7A"),
        ((CTRL, ALT, SHIFT), b"\x1b[1;8A"),
        ((META,), b"\x1b[1;9A"),
        ((META, CTRL, ALT, SHIFT), b"\x1b[1;16A"),
    ],
)
def test_modifier_parameter(modifier: tuple[int, ...], expected: bytes) -> None:
    assert press("Up", held=modifier) == expected


# -- characters beyond ASCII -------------------------------------------------------------------

LEGACY_SAMPLES = [
    (0x20AC, "\u20ac"),  # EuroSign
    (0x13BC, "\u0152"),  # OE
    (0x13BD, "\u0153"),  # oe
    (0x13BE, "\u0178"),  # Ydiaeresis
    (0x01A1, "\u0104"),  # Aogonek (Latin-2)
    (0x01A3, "\u0141"),  # Lstroke
    (0x01B9, "\u0161"),  # scaron
    (0x01FF, "\u02d9"),  # abovedot
    (0x02A1, "\u0126"),  # Hstroke (Latin-3)
    (0x02FE, "\u015d"),  # scircumflex
    (0x03A2, "\u0138"),  # kra (Latin-4)
    (0x03BD, "\u014a"),  # ENG
    (0x047E, "\u203e"),  # overline
    (0x04A1, "\u3002"),  # kana_fullstop
    (0x04B1, "\u30a2"),  # kana_A
    (0x04DD, "\u30f3"),  # kana_N
    (0x05AC, "\u060c"),  # Arabic_comma
    (0x05C7, "\u0627"),  # Arabic_alef
    (0x05E4, "\u0644"),  # Arabic_lam
    (0x06A3, "\u0451"),  # Cyrillic_io
    (0x06B0, "\u2116"),  # numerosign
    (0x06C1, "\u0430"),  # Cyrillic_a
    (0x06D1, "\u044f"),  # Cyrillic_ya
    (0x06F1, "\u042f"),  # Cyrillic_YA
    (0x06FF, "\u042a"),  # Cyrillic_HARDSIGN
    (0x07A1, "\u0386"),  # Greek_ALPHAaccent
    (0x07C1, "\u0391"),  # Greek_ALPHA
    (0x07D9, "\u03a9"),  # Greek_OMEGA
    (0x07F3, "\u03c2"),  # Greek_finalsmallsigma
    (0x07F9, "\u03c9"),  # Greek_omega
    (0x08BC, "\u2264"),  # lessthanequal
    (0x08FD, "\u2192"),  # rightarrow
    (0x09E0, "\u25c6"),  # soliddiamond
    (0x0AA9, "\u2014"),  # emdash
    (0x0AAE, "\u2026"),  # ellipsis
    (0x0AD2, "\u201c"),  # leftdoublequotemark
    (0x0AC9, "\u2122"),  # trademark
    (0x0CE0, "\u05d0"),  # hebrew_aleph
    (0x0CFA, "\u05ea"),  # hebrew_taw
    (0x0DA1, "\u0e01"),  # Thai_kokai
    (0x0EA1, "\u3131"),  # Hangul_Kiyeog
]


@pytest.mark.parametrize(("keysym", "char"), LEGACY_SAMPLES)
def test_legacy_keysyms(keysym: int, char: str) -> None:
    assert keysym_to_char(keysym) == char
    assert press(keysym) == char.encode()


def test_legacy_keysym_gaps_type_nothing_and_are_logged_once() -> None:
    # 0x07A6 and 0x07AA are holes in the Greek block, 0x08B1 (topleftsummation) and 0x09DF
    # (blank) have no Unicode meaning at all.
    mapper = KeyMapper(peer="10.0.0.7:5555")
    with capturedLogs() as events:
        for keysym in (0x07A6, 0x07AA, 0x08B1, 0x09DF, 0x0FFF, 0x1000, 0x20AB):
            assert keysym_to_char(keysym) is None
            assert press(keysym, mapper=mapper) == b""
            assert press(keysym, mapper=mapper) == b""  # again: not logged again
    lines = [formatEvent(e) for e in events]
    assert len(lines) == 7, lines
    assert "Viewer 10.0.0.7:5555: keysym 0x8b1 types nothing" in lines[2]


def test_unmapped_keysym_logging_is_bounded() -> None:
    mapper = KeyMapper()
    with capturedLogs() as events:
        for keysym in range(0x1008FF00, 0x1008FF00 + 500):  # XF86 media keys
            assert press(keysym, mapper=mapper) == b""
    assert len(events) == KeyMapper.unmapped_log_limit + 1
    assert "no longer logging" in formatEvent(events[-1])


@pytest.mark.parametrize(
    ("keysym", "char"),
    [
        (0x08A3, "\u2500"),  # horizconnector: ─
        (0x0AE6, "\u2022"),  # enfilledcircbullet: •
        (0x0EFF, "\u20a9"),  # Korean_Won: ₩
        (0x08A2, "\u250c"),  # topleftradical: ┌
        (0x0ABC, "\u27e8"),  # leftanglebracket: ⟨ (newer keysymdef.h, noVNC)
        (0x0ABD, "."),  # decimalpoint
    ],
)
def test_approximate_legacy_keysyms_type_their_character(keysym: int, char: str) -> None:
    assert press(keysym) == char.encode()


KEYSYMDEF = Path("/usr/include/X11/keysymdef.h")
# keysymdef.h before xorgproto 2023 gave the deprecated U+2329/U+232A; newer headers and
# noVNC give U+27E8/U+27E9, which is what a viewer sends these keysyms for.
NEWER_KEYSYMDEF = {0x0ABC: "\u27e8", 0x0ABE: "\u27e9"}


@pytest.mark.skipif(not KEYSYMDEF.exists(), reason="X11 headers not installed")
def test_legacy_table_agrees_with_keysymdef() -> None:
    """Every mapping of keysymdef.h in the legacy ranges, exact ("U+XXXX") or approximate
    ("(U+XXXX"), and nothing else, is known."""
    mapping = re.compile(r"^#define XK_\w+\s+0x([0-9a-fA-F]+)\s*/\*\s*(\(?)U\+([0-9A-Fa-f]+)")
    exact: dict[int, str] = {}
    approximate: dict[int, str] = {}
    for line in KEYSYMDEF.read_text(encoding="latin-1").splitlines():
        match = mapping.match(line)
        if match:
            keysym = int(match[1], 16)
            if 0x100 <= keysym <= 0x1FFF or 0x20A0 <= keysym <= 0x20AC:
                (approximate if match[2] else exact)[keysym] = chr(int(match[3], 16))
    assert len(exact) > 700 and len(approximate) > 30
    expected = {**approximate, **exact}
    for keysym in range(0x100, 0x2100):
        want = expected.get(keysym)
        got = keysym_to_char(keysym)
        if keysym in NEWER_KEYSYMDEF:
            assert got in (want, NEWER_KEYSYMDEF[keysym]), hex(keysym)
        else:
            assert got == want, hex(keysym)


NOVNC_KEYSYMDEF = Path("/usr/share/novnc/core/input/keysymdef.js")


@pytest.mark.skipif(not NOVNC_KEYSYMDEF.exists(), reason="noVNC not installed")
def test_every_legacy_keysym_novnc_sends_types_its_character() -> None:
    """noVNC sends a legacy keysym for each character in its table: each must type exactly
    that character (UTF-8), never be dropped."""
    pairs = re.findall(
        r"(0x[0-9a-fA-F]+): (0x[0-9a-fA-F]+),", NOVNC_KEYSYMDEF.read_text(encoding="utf-8")
    )
    legacy = [(int(cp, 16), int(ks, 16)) for cp, ks in pairs if int(ks, 16) < 0x01000000]
    assert len(legacy) > 600
    with capturedLogs() as events:
        for code, keysym in legacy:
            assert press(keysym) == chr(code).encode(), (hex(code), hex(keysym))
    assert events == []


@pytest.mark.parametrize(
    ("keysym", "char"),
    [
        (0x01000000 + 0x0436, "\u0436"),
        (0x01000000 + 0x4E2D, "\u4e2d"),
        (0x01000000 + 0x1F600, "\U0001f600"),
        (0x01000000 + 0x20AC, "\u20ac"),
        (0x01000000 + 0x00E9, "\u00e9"),
    ],
)
def test_unicode_keysyms(keysym: int, char: str) -> None:
    assert press(keysym) == char.encode()


@pytest.mark.parametrize(
    "keysym",
    [
        0x01000000 + 0x1B,
        0x01000000 + 0x85,
        0x01000000 + 0xD800,
        0x01110000,
        0x0100_0000,
        0,
        0xFFFFFFFF,
        0x7F,
        0x9B,
    ],
)
def test_not_characters(keysym: int) -> None:
    assert press(keysym) == b""


def test_device_encoding() -> None:
    latin1 = KeyMapper(encoding="latin-1")
    assert press(0xE9, mapper=latin1) == b"\xe9"
    assert press(0x20AC, mapper=latin1) == b""  # no euro in Latin-1
    assert press(0x20AC, mapper=KeyMapper(encoding="iso8859-15")) == b"\xa4"
    assert press(0x06F1, mapper=KeyMapper(encoding="koi8-r")) == "\u042f".encode("koi8-r")
    assert press(0x20AC, mapper=latin1, held=(ALT,)) == b""  # no lone ESC either


# -- dead keys ---------------------------------------------------------------------------------


def type_keys(mapper: KeyMapper, *keysyms: int, modes: Modes | None = None) -> bytes:
    modes = modes or Modes()
    out = b""
    for keysym in keysyms:
        out += mapper.key(keysym, True, modes)
        out += mapper.key(keysym, False, modes)
    return out


@pytest.mark.parametrize(
    ("dead", "base", "expected"),
    [
        ("acute", "e", "\u00e9"),
        ("acute", "E", "\u00c9"),
        ("grave", "a", "\u00e0"),
        ("circumflex", "o", "\u00f4"),
        ("tilde", "n", "\u00f1"),
        ("diaeresis", "u", "\u00fc"),
        ("abovering", "a", "\u00e5"),
        ("cedilla", "c", "\u00e7"),
        ("caron", "s", "\u0161"),
        ("ogonek", "a", "\u0105"),
        ("doubleacute", "o", "\u0151"),
        ("breve", "g", "\u011f"),
        ("macron", "a", "\u0101"),
        ("abovedot", "z", "\u017c"),
        ("acute", "\u00e7", "\u1e09"),
        ("voiced", "\u304b", "\u304c"),
    ],
)
def test_dead_key_composes(dead: str, base: str, expected: str) -> None:
    mapper = KeyMapper()
    assert type_keys(mapper, DEAD[dead]) == b""
    assert mapper.pending_dead_key == DEAD[dead]
    keysym = ord(base) if ord(base) <= 0xFF else 0x01000000 + ord(base)
    assert type_keys(mapper, keysym) == expected.encode()
    assert mapper.pending_dead_key is None
    assert type_keys(mapper, ord("x")) == b"x"  # the dead key is used up


@pytest.mark.parametrize(
    ("dead", "alone"),
    [
        ("acute", "'"),
        ("grave", "`"),
        ("circumflex", "^"),
        ("tilde", "~"),
        ("diaeresis", '"'),
        ("caron", "\u02c7"),
        ("abovering", "\u00b0"),
    ],
)
def test_dead_key_then_space_types_the_accent(dead: str, alone: str) -> None:
    assert type_keys(KeyMapper(), DEAD[dead], 0x20) == alone.encode()


def test_dead_key_twice_types_the_accent() -> None:
    assert type_keys(KeyMapper(), DEAD["acute"], DEAD["acute"]) == "\u00b4".encode()
    assert type_keys(KeyMapper(), DEAD["circumflex"], DEAD["circumflex"]) == b"^"


def test_dead_key_not_composable_types_accent_then_key() -> None:
    assert type_keys(KeyMapper(), DEAD["acute"], ord("q")) == b"'q"
    assert type_keys(KeyMapper(), DEAD["diaeresis"], ord("1")) == b'"1'
    # a second, different dead key: the first types its accent, the second waits
    mapper = KeyMapper()
    assert type_keys(mapper, DEAD["acute"], DEAD["grave"]) == b"'"
    assert type_keys(mapper, ord("a")) == "\u00e0".encode()


def test_dead_key_survives_shift_and_composes_capital() -> None:
    mapper, modes = KeyMapper(), Modes()
    assert type_keys(mapper, DEAD["acute"]) == b""
    assert mapper.key(SHIFT, True, modes) == b""
    assert mapper.key(ord("E"), True, modes) == "\u00c9".encode()


def test_dead_key_with_special_keys() -> None:
    assert type_keys(KeyMapper(), DEAD["acute"], NAMED["BackSpace"]) == b""
    assert type_keys(KeyMapper(), DEAD["acute"], NAMED["Escape"]) == b""
    assert type_keys(KeyMapper(), DEAD["acute"], NAMED["Return"]) == b"'\r"
    assert type_keys(KeyMapper(), DEAD["grave"], NAMED["Up"]) == b"`\x1b[A"


def test_ctrl_key_cancels_dead_key() -> None:
    mapper, modes = KeyMapper(), Modes()
    type_keys(mapper, DEAD["acute"])
    mapper.key(CTRL, True, modes)
    assert mapper.key(ord("c"), True, modes) == b"\x03"
    mapper.key(CTRL, False, modes)
    assert type_keys(mapper, ord("e")) == b"e"


def test_reset_forgets_dead_key_and_modifiers() -> None:
    mapper, modes = KeyMapper(), Modes()
    mapper.key(CTRL, True, modes)
    mapper.key(SHIFT, True, modes)
    type_keys(mapper, DEAD["acute"])
    assert mapper.ctrl and mapper.shift
    mapper.reset()
    assert not (mapper.ctrl or mapper.shift or mapper.alt or mapper.meta)
    assert mapper.pending_dead_key is None
    assert type_keys(mapper, ord("e")) == b"e"


def test_every_composition_is_one_code_point() -> None:
    mapper = KeyMapper()
    for dead in DEAD.values():
        for base in "aeiouAEIOUcgnsyzCGNSYZ":
            type_keys(mapper, dead)
            text = type_keys(mapper, ord(base)).decode()
            assert len(text) in (1, 2)
            if len(text) == 1:
                assert unicodedata.normalize("NFD", text)[0] == base


# -- modifier bookkeeping ----------------------------------------------------------------------


def test_modifier_state_follows_down_and_up() -> None:
    mapper, modes = KeyMapper(), Modes()
    assert not mapper.shift
    mapper.key(SHIFT, True, modes)
    mapper.key(SHIFT_R, True, modes)
    mapper.key(SHIFT, False, modes)
    assert mapper.shift  # right Shift still down
    mapper.key(SHIFT_R, False, modes)
    assert not mapper.shift
    for keysym, attr in ((CTRL, "ctrl"), (ALT, "alt"), (META, "meta")):
        mapper.key(keysym, True, modes)
        assert getattr(mapper, attr)
        mapper.key(keysym, False, modes)
        assert not getattr(mapper, attr)
    mapper.key(ALTGR, True, modes)
    assert not mapper.alt


def test_key_up_and_repeat() -> None:
    mapper, modes = KeyMapper(), Modes()
    assert mapper.key(ord("a"), False, modes) == b""
    assert [mapper.key(ord("a"), True, modes) for _ in range(3)] == [b"a"] * 3
    assert [mapper.key(NAMED["Up"], True, modes) for _ in range(2)] == [b"\x1b[A"] * 2


def test_windows_altgr_is_not_ctrl_alt() -> None:
    # Windows viewers send AltGr as Control_L + Alt_R: AltGr+Q on a German layout is '@'
    assert press("@", held=(CTRL, ALT_R)) == b"@"
    assert press(0x20AC, held=(CTRL, ALT_R)) == "\u20ac".encode()
    # ... but real Ctrl+Alt chords on letters stay chords
    assert press("a", held=(CTRL, ALT_R)) == b"\x1b\x01"
    assert press("@", held=(CTRL, ALT)) == b"\x1b\x00"


def test_is_paste_key() -> None:
    mapper, modes = KeyMapper(), Modes()
    assert not is_paste_key(NAMED["Insert"], mapper)
    mapper.key(SHIFT, True, modes)
    assert is_paste_key(NAMED["Insert"], mapper)
    assert is_paste_key(NAMED["KP_Insert"], mapper)
    assert not is_paste_key(NAMED["Delete"], mapper)
    mapper.key(CTRL, True, modes)
    assert not is_paste_key(NAMED["Insert"], mapper)


# -- paste -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "modes", "expected"),
    [
        ("ls -l\n", Modes(), b"ls -l\r"),
        ("a\r\nb\nc\rd", Modes(), b"a\rb\rc\rd"),
        ("x\ty", Modes(), b"x\ty"),
        ("\u00e9t\u00e9", Modes(), "\u00e9t\u00e9".encode()),
        ("ls\n", Modes(bracketed_paste=True), b"\x1b[200~ls\r\x1b[201~"),
        (
            "a\x1b[201~rm -rf /\n",
            Modes(bracketed_paste=True),
            b"\x1b[200~a[201~rm -rf /\r\x1b[201~",
        ),
        (
            "\x1b\x1b[201~[201~",
            Modes(bracketed_paste=True),
            b"\x1b[200~[201~[201~\x1b[201~",
        ),
        ("a\x9b201~b", Modes(bracketed_paste=True), b"\x1b[200~a201~b\x1b[201~"),
        ("", Modes(bracketed_paste=True), b""),
        ("a\x1b[201~", Modes(), b"a\x1b[201~"),
    ],
)
def test_paste(text: str, modes: Modes, expected: bytes) -> None:
    assert paste_bytes(text, modes) == expected


def test_paste_encoding() -> None:
    assert paste_bytes("\u00e9\u20ac", Modes(), encoding="latin-1") == b"\xe9?"


@given(st.text())
@settings(max_examples=300)
def test_bracketed_paste_has_exactly_one_end_marker(text: str) -> None:
    data = paste_bytes(text, Modes(bracketed_paste=True))
    if text:
        assert data.startswith(b"\x1b[200~") and data.endswith(b"\x1b[201~")
        assert data.count(b"\x1b[201~") == 1
        assert b"\n" not in data


# -- mouse -------------------------------------------------------------------------------------

LEFT, MIDDLE, RIGHT, WHEEL_UP, WHEEL_DOWN = 1, 2, 4, 8, 16


def legacy(button: int, col: int, row: int) -> bytes:
    return b"\x1b[M" + bytes([32 + button, 33 + col, 33 + row])


MOUSE_CASES = [
    # (mode, sgr, mask, prev, col, row, expected)
    (0, False, LEFT, 0, 0, 0, b""),
    (0, True, WHEEL_UP, 0, 0, 0, b""),
    # X10: presses only, no wheel, no release
    (9, False, LEFT, 0, 0, 0, legacy(0, 0, 0)),
    (9, False, MIDDLE, 0, 4, 2, legacy(1, 4, 2)),
    (9, False, RIGHT, 0, 79, 23, legacy(2, 79, 23)),
    (9, False, 0, LEFT, 3, 3, b""),
    (9, False, WHEEL_UP, 0, 3, 3, b""),
    (9, False, LEFT, LEFT, 5, 3, b""),
    (9, True, LEFT, 0, 0, 0, b"\x1b[<0;1;1M"),
    # 1000: press and release, wheel
    (1000, False, LEFT, 0, 9, 4, legacy(0, 9, 4)),
    (1000, False, 0, LEFT, 9, 4, legacy(3, 9, 4)),
    (1000, False, 0, RIGHT, 0, 0, legacy(3, 0, 0)),
    (1000, False, WHEEL_UP, 0, 1, 1, legacy(64, 1, 1)),
    (1000, False, WHEEL_DOWN, 0, 1, 1, legacy(65, 1, 1)),
    (1000, False, 0, WHEEL_UP, 1, 1, b""),
    (1000, False, LEFT, LEFT, 10, 4, b""),  # motion is not reported
    (1000, False, LEFT | RIGHT, LEFT, 2, 2, legacy(2, 2, 2)),
    (1000, False, 0, LEFT | RIGHT, 2, 2, legacy(3, 2, 2) * 2),
    (1000, True, LEFT, 0, 9, 4, b"\x1b[<0;10;5M"),
    (1000, True, 0, LEFT, 9, 4, b"\x1b[<0;10;5m"),
    (1000, True, 0, MIDDLE, 9, 4, b"\x1b[<1;10;5m"),
    (1000, True, WHEEL_UP, 0, 9, 4, b"\x1b[<64;10;5M"),
    (1000, True, WHEEL_DOWN, 0, 0, 0, b"\x1b[<65;1;1M"),
    (1000, True, 32, 0, 0, 0, b"\x1b[<66;1;1M"),
    (1000, True, 64, 0, 0, 0, b"\x1b[<67;1;1M"),
    # 1002: also motion while a button is held
    (1002, False, LEFT, LEFT, 10, 4, legacy(32, 10, 4)),
    (1002, False, RIGHT, RIGHT, 10, 4, legacy(34, 10, 4)),
    (1002, False, 0, 0, 10, 4, b""),
    (1002, True, LEFT, LEFT, 10, 4, b"\x1b[<32;11;5M"),
    (1002, True, 0, LEFT, 10, 4, b"\x1b[<0;11;5m"),
    # 1003: any motion
    (1003, False, 0, 0, 10, 4, legacy(35, 10, 4)),
    (1003, True, 0, 0, 10, 4, b"\x1b[<35;11;5M"),
    (1003, True, MIDDLE, MIDDLE, 0, 0, b"\x1b[<33;1;1M"),
    (1003, False, LEFT, 0, 0, 0, legacy(0, 0, 0)),
    # legacy coordinate limit: 0-based 222 is the last one; beyond that xterm sends 0
    (1000, False, LEFT, 0, 222, 0, b"\x1b[M \xff!"),
    (1000, False, LEFT, 0, 223, 0, b"\x1b[M \x00!"),
    (1000, False, LEFT, 0, 500, 300, b"\x1b[M \x00\x00"),
    (1000, True, LEFT, 0, 500, 300, b"\x1b[<0;501;301M"),
]


@pytest.mark.parametrize(("mode", "sgr", "mask", "prev", "col", "row", "expected"), MOUSE_CASES)
def test_mouse_report(
    mode: int, sgr: bool, mask: int, prev: int, col: int, row: int, expected: bytes
) -> None:
    modes = Modes(mouse_tracking=mode, mouse_sgr=sgr)
    assert mouse_report(mask, prev, col, row, modes) == expected


# -- robustness --------------------------------------------------------------------------------

INTERESTING_KEYSYMS = sorted(
    set(NAMED.values())
    | set(DEAD.values())
    | {SHIFT, SHIFT_R, CTRL, CTRL_R, ALT, ALT_R, META, META_R, ALTGR, 0xFF7E}
    | {k for k, _ in LEGACY_SAMPLES}
    | {0x20, 0x41, 0x61, 0x7E, 0xE9}
)
modes_strategy = st.builds(
    Modes,
    app_cursor=st.booleans(),
    app_keypad=st.booleans(),
    bracketed_paste=st.booleans(),
    mouse_tracking=st.sampled_from([0, 9, 1000, 1002, 1003, 7]),
    mouse_sgr=st.booleans(),
    newline_mode=st.booleans(),
)
keysym_strategy = st.one_of(
    st.sampled_from(INTERESTING_KEYSYMS),
    st.integers(0, 0xFFFF),
    st.integers(0x01000000, 0x0110FFFF),
    st.integers(0, 2**32 - 1),
)


@given(
    st.lists(st.tuples(keysym_strategy, st.booleans(), modes_strategy), max_size=40),
    st.sampled_from(["utf-8", "latin-1", "ascii", "koi8-r", "cp1252"]),
)
@settings(max_examples=200)
def test_any_key_sequence_gives_bytes(events: list[tuple[int, bool, Modes]], encoding: str) -> None:
    mapper = KeyMapper(encoding=encoding)
    for keysym, down, modes in events:
        out = mapper.key(keysym, down, modes)
        assert isinstance(out, bytes)
        if not down:
            assert out == b""
        is_paste_key(keysym, mapper)


@given(
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(-5, 5000),
    st.integers(-5, 5000),
    modes_strategy,
)
def test_any_pointer_event_gives_bytes(
    mask: int, prev: int, col: int, row: int, modes: Modes
) -> None:
    out = mouse_report(mask, prev, col, row, modes)
    assert isinstance(out, bytes)
    if modes.mouse_tracking == 0:
        assert out == b""
