"""X11's keysym tables: which character a keysym types, modifiers, dead keys.

Data and small rules, no state: ``keysym_to_char`` is what a keysym *types* (Latin-1, the
0x01000000 + code point form, and the legacy pre-Unicode keysyms), ``is_modifier_keysym``
which keysyms only change the state of others, ``DEAD_KEYS`` what the dead keys combine with
and type on their own.  The key mapper (``vncmux.console.keys``) decides what to send; this
module only knows X's tables.
"""

from __future__ import annotations

__all__ = [
    "DEAD_KEYS",
    "DEAD_TWICE",
    "is_modifier_keysym",
    "keysym_to_char",
]


def is_modifier_keysym(keysym: int) -> bool:
    """Keys that only change the state of others and never produce bytes themselves.

    Shift/Control/Caps/Shift lock/Meta/Alt/Super/Hyper (0xffe1-0xffee), Num_Lock, Scroll_Lock,
    Mode_switch (0xff7e) and the ISO lock/latch/level keys (0xfe01-0xfe13, AltGr is
    ISO_Level3_Shift).
    """
    return (
        0xFFE1 <= keysym <= 0xFFEE
        or 0xFE01 <= keysym <= 0xFE13
        or keysym in (0xFF7E, 0xFF7F, 0xFF14)
    )


# --- legacy keysym → Unicode ----------------------------------------------------------------
#
# X11 predates Unicode: Latin-2/3/4, Latin-9, Katakana, Arabic, Cyrillic, Greek, technical,
# special, publishing, APL, Hebrew, Thai and Korean characters have keysyms of their own, and
# noVNC/TigerVNC send those in preference to 0x01000000 + code point (noVNC sends 0x08A3 for
# "─", 0x0AE6 for "•", 0x0EFF for "₩").  Each block below is (first keysym, string): the
# character at index i is the one for keysym first + i; "\x00" marks keysyms without a Unicode
# meaning (3270 keys, the summation pieces, ``blank``, ``cursor``...).  The table follows
# keysymdef.h's comments, both its exact mappings ("U+XXXX") and the ones it marks as
# approximate ("(U+XXXX"): a viewer sends those keysyms for exactly those characters.  Two
# entries follow newer keysymdef.h versions and noVNC rather than older headers:
# leftanglebracket/rightanglebracket (0x0ABC/0x0ABE) are U+27E8/U+27E9, not the deprecated
# U+2329/U+232A.
_LEGACY_BLOCKS: tuple[tuple[int, str], ...] = (
    (
        0x01A1,
        (
            "Ą˘Ł\x00ĽŚ\x00\x00ŠŞŤŹ\x00ŽŻ\x00ą˛ł\x00ľśˇ\x00šşťź˝žżŔ\x00\x00Ă\x00ĹĆ\x00Č"
            "\x00Ę\x00Ě\x00\x00ĎĐŃŇ\x00\x00Ő\x00\x00ŘŮ\x00Ű\x00\x00Ţ\x00ŕ\x00\x00ă\x00ĺć"
            "\x00č\x00ę\x00ě\x00\x00ďđńň\x00\x00ő\x00\x00řů\x00ű\x00\x00ţ˙"
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
            "ĸŖ\x00ĨĻ\x00\x00\x00ĒĢŦ\x00\x00\x00\x00\x00\x00ŗ\x00ĩļ\x00\x00\x00ēģŧŊ\x00ŋĀ"
            "\x00\x00\x00\x00\x00\x00Į\x00\x00\x00\x00Ė\x00\x00Ī\x00ŅŌĶ\x00\x00\x00\x00"
            "\x00Ų\x00\x00\x00ŨŪ\x00ā\x00\x00\x00\x00\x00\x00į\x00\x00\x00\x00ė\x00\x00ī"
            "\x00ņōķ\x00\x00\x00\x00\x00ų\x00\x00\x00ũū"
        ),
    ),
    (0x047E, "‾"),
    (
        0x04A1,
        (
            "。「」、・ヲァィゥェォャュョッーアイウエオカキクケコサシスセソタチツテトナニ"
            "ヌネノハヒフヘホマミムメモヤユヨラリルレロワン゛゜"
        ),
    ),
    (0x05AC, "،"),
    (
        0x05BB,
        (
            "؛\x00\x00\x00؟\x00ءآأؤإئابةتثجحخدذرزسشصضطظعغ\x00\x00\x00\x00\x00ـفقكلمنهوىي"
            "\u064b\u064c\u064d\u064e\u064f\u0650\u0651\u0652"
        ),
    ),
    (
        0x06A1,
        (
            "ђѓёєѕіїјљњћќґўџ№ЂЃЁЄЅІЇЈЉЊЋЌҐЎЏюабцдефгхийклмнопярстужвьызшэщчъЮАБЦДЕФГХИЙКЛ"
            "МНОПЯРСТУЖВЬЫЗШЭЩЧЪ"
        ),
    ),
    (
        0x07A1,
        (
            "ΆΈΉΊΪ\x00ΌΎΫ\x00Ώ\x00\x00΅―\x00άέήίϊΐόύϋΰώ\x00\x00\x00\x00\x00ΑΒΓΔΕΖΗΘΙΚΛΜΝΞ"
            "ΟΠΡΣ\x00ΤΥΦΧΨΩ"
        ),
    ),
    (0x07E1, "αβγδεζηθικλμνξοπρσςτυφχψω"),
    (0x08A1, "⎷┌─⌠⌡│⎡⎣⎤⎦⎛⎝⎞⎠⎨⎬"),
    (
        0x08BC,
        ("≤≠≥∫∴∝∞\x00\x00∇\x00\x00∼≃\x00\x00\x00⇔⇒≡\x00\x00\x00\x00\x00\x00√\x00\x00\x00⊂⊃∩∪∧∨"),
    ),
    (0x08EF, "∂\x00\x00\x00\x00\x00\x00ƒ\x00\x00\x00\x00←↑→↓"),
    (0x09E0, "◆▒␉␌␍␊\x00\x00␤␋┘┐┌└┼⎺⎻─⎼⎽├┤┴┬│"),
    (
        0x0AA1,
        (
            "\u2003\u2002\u2004\u2005\u2007\u2008\u2009\u200a—–\x00␣\x00…‥⅓⅔⅕⅖⅗⅘⅙⅚℅\x00"
            "\x00‒⟨.⟩\x00\x00\x00\x00⅛⅜⅝⅞\x00\x00™☓\x00◁▷○▯‘’“”℞‰′″\x00✝\x00▬◀▶●▮◦▫▭△▽☆•▪"
            "▲▼☜☞♣♦♥\x00✠†‡✓✗♯♭♂♀☎⌕℗‸‚„"
        ),
    ),
    (0x0BA3, "<\x00\x00>\x00∨∧"),
    (
        0x0BC0,
        ("¯\x00⊤∩⌊\x00_\x00\x00\x00∘\x00⎕\x00⊥○\x00\x00\x00⌈\x00\x00∪\x00⊃\x00⊂\x00⊣"),
    ),
    (0x0BFC, "⊢"),
    (0x0CDF, "‗אבגדהוזחטיךכלםמןנסעףפץצקרשת"),
    (
        0x0DA1,
        (
            "กขฃคฅฆงจฉชซฌญฎฏฐฑฒณดตถทธนบปผฝพฟภมยรฤลฦวศษสหฬอฮฯะ\u0e31าำ\u0e34\u0e35\u0e36"
            "\u0e37\u0e38\u0e39\u0e3a\x00\x00\x00\x00฿เแโใไๅๆ\u0e47\u0e48\u0e49\u0e4a"
            "\u0e4b\u0e4c\u0e4d\x00\x00๐๑๒๓๔๕๖๗๘๙"
        ),
    ),
    (
        0x0EA1,
        (
            "ㄱㄲㄳㄴㄵㄶㄷㄸㄹㄺㄻㄼㄽㄾㄿㅀㅁㅂㅃㅄㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎㅏㅐㅑㅒㅓㅔㅕㅖ"
            "ㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣᆨᆩᆪᆫᆬᆭᆮᆯᆰᆱᆲᆳᆴᆵᆶᆷᆸᆹᆺᆻᆼᆽᆾᆿᇀᇁᇂㅭㅱㅸㅿㆁㆄㆆㆍㆎᇫᇰᇹ"
            "\x00\x00\x00\x00₩"
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


LEGACY: dict[int, str] = _build_legacy_table()

UNICODE_KEYSYM_BASE = 0x01000000


def keysym_to_char(keysym: int) -> str | None:
    """The character a keysym types, or None for function/modifier/unknown keysyms.

    Latin-1 keysyms are their own code points, 0x01000000 + c is U+c, and the legacy keysyms
    come from the reverse table.  Control characters are never "typed" this way: they only
    come from Return, Tab, Ctrl+letter ...
    """
    if 0x20 <= keysym <= 0x7E or 0xA0 <= keysym <= 0xFF:
        return chr(keysym)
    if UNICODE_KEYSYM_BASE + 0x20 <= keysym <= UNICODE_KEYSYM_BASE + 0x10FFFF:
        code = keysym - UNICODE_KEYSYM_BASE
        if 0x7F <= code < 0xA0 or 0xD800 <= code <= 0xDFFF:
            return None
        return chr(code)
    return LEGACY.get(keysym)


# --- dead keys --------------------------------------------------------------------------------
#
# keysym → (combining mark, what the dead key types on its own).  The stand-alone forms follow
# X's Compose tables for "<dead_x> <space>" (ASCII where X gives ASCII, e.g. dead_acute + space
# is an apostrophe); dead keys without a spacing form type a space carrying the mark.
DEAD_KEYS: dict[int, tuple[str, str]] = {
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
DEAD_TWICE: dict[int, str] = {0xFE51: "\u00b4", 0xFE57: "\u00a8"}
