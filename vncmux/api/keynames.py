"""Key names (``Enter``, ``Ctrl+C``, ``F5``, ``Shift+Tab``, ``a``) → the bytes a viewer's
key press would send, so ``POST /keys`` obeys the same modes as VNC (application cursor
keys, keypad, newline mode).

Pure: a name becomes X keysym events (modifiers down, key down and up, modifiers up) and
those go through a fresh ``KeyMapper``, the one the VNC sessions use.
"""

from __future__ import annotations

from collections.abc import Iterable

from vncmux.console import keys as xk
from vncmux.console.keys import KeyMapper
from vncmux.console.modes import Modes

#: Most key names in one request.
MAX_KEYS = 256


class KeyNameError(ValueError):
    """A key name we do not know; the message says which and what is known."""


_NAMED: dict[str, int] = {
    "enter": xk.XK_Return,
    "return": xk.XK_Return,
    "tab": xk.XK_Tab,
    "escape": xk.XK_Escape,
    "esc": xk.XK_Escape,
    "backspace": xk.XK_BackSpace,
    "delete": xk.XK_Delete,
    "del": xk.XK_Delete,
    "insert": xk.XK_Insert,
    "ins": xk.XK_Insert,
    "home": xk.XK_Home,
    "end": xk.XK_End,
    "pageup": xk.XK_Prior,
    "pgup": xk.XK_Prior,
    "pagedown": xk.XK_Next,
    "pgdn": xk.XK_Next,
    "up": xk.XK_Up,
    "down": xk.XK_Down,
    "left": xk.XK_Left,
    "right": xk.XK_Right,
    "space": 0x20,
    "linefeed": xk.XK_Linefeed,
    "kpenter": xk.XK_KP_Enter,
}
_KNOWN = (
    "Enter, Tab, Escape (Esc), Backspace, Delete (Del), Insert (Ins), Home, End, "
    "PageUp (PgUp), PageDown (PgDn), Up, Down, Left, Right, Space, Linefeed, KPEnter"
)
_MODIFIERS: dict[str, int] = {
    "ctrl": xk.XK_Control_L,
    "control": xk.XK_Control_L,
    "alt": xk.XK_Alt_L,
    "shift": xk.XK_Shift_L,
    "meta": xk.XK_Meta_L,
}


def _char_keysym(char: str) -> int:
    code = ord(char)
    if 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xFF:
        return code
    return 0x01000000 + code


def key_events(name: str) -> list[tuple[int, bool]]:
    """(keysym, down) events for one key name: ``[Mod+]...KEY`` where KEY is a name of
    ``_NAMED`` or ``F1``..``F35`` (any case) or one character (``a``, ``+``, ``é``)."""
    if not name:
        raise KeyNameError("an empty key name")
    mods: list[str] = []
    if name == "+":
        key = "+"
    elif name.endswith("++"):
        mods, key = name[:-2].split("+"), "+"
    else:
        *mods, key = name.split("+")
    held: list[int] = []
    for mod in mods:
        keysym = _MODIFIERS.get(mod.lower())
        if keysym is None:
            raise KeyNameError(f"{name!r}: unknown modifier {mod!r} (Ctrl, Alt, Shift, Meta)")
        held.append(keysym)
    lower = key.lower()
    if lower in _NAMED:
        keysym = _NAMED[lower]
    elif len(lower) > 1 and lower[0] == "f" and lower[1:].isdigit() and 1 <= int(lower[1:]) <= 35:
        keysym = xk.XK_F1 + int(lower[1:]) - 1
    elif len(key) == 1 and key.isprintable():
        if xk.XK_Shift_L in held and key.isalpha():
            key = key.upper()  # a viewer sends the keysym Shift produced
        keysym = _char_keysym(key)
    else:
        raise KeyNameError(f"unknown key {name!r} (one character, F1-F35, or one of: {_KNOWN})")
    return (
        [(m, True) for m in held]
        + [(keysym, True), (keysym, False)]
        + [(m, False) for m in reversed(held)]
    )


def keys_bytes(names: Iterable[str], modes: Modes, encoding: str = "utf-8") -> bytes:
    """The bytes the keys ``names`` send, one after the other, under ``modes``.
    ``KeyNameError`` for an unknown name or more than ``MAX_KEYS`` (nothing is sent then)."""
    events: list[tuple[int, bool]] = []
    for count, name in enumerate(names, 1):
        if count > MAX_KEYS:
            raise KeyNameError(f"more than {MAX_KEYS} keys in one request")
        events += key_events(str(name))
    mapper = KeyMapper(encoding=encoding, peer="API")
    return b"".join(mapper.key(keysym, down, modes) for keysym, down in events)
