"""The terminal modes that change what a key or a mouse event must send.

A tiny shared record: the terminal owns and updates it, the key mapper and the RFB server
read it.  Kept apart so that ``keys.py`` does not import pyte.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Modes:
    """xterm modes relevant to input (see xterm's ctlseqs)."""

    app_cursor: bool = False  # DECCKM (CSI ? 1 h): arrows send SS3 A instead of CSI A
    app_keypad: bool = False  # DECKPAM (ESC =) / DECKPNM (ESC >)
    bracketed_paste: bool = False  # CSI ? 2004 h
    mouse_tracking: int = 0  # 0 off, 9 X10, 1000 normal, 1002 button-event, 1003 any-event
    mouse_sgr: bool = False  # CSI ? 1006 h: SGR extended coordinates
    newline_mode: bool = False  # LNM (CSI 20 h): Return sends CR LF
