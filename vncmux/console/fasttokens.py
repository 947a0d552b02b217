"""The fast path's vocabulary: the token pattern it scans output with, and the tables of
what it runs in place, hands to the screen's own methods, or leaves to the slow path.

Kept apart from :mod:`vncmux.console.fastpath` (which interprets the tokens) so that the
pattern's group numbers and the tables sit next to each other; a new token is added here
(its group numbers listed in the comments) and interpreted there.
"""

from __future__ import annotations

import re

# One token per match; ``lastindex`` tells which.  Only complete sequences: a sequence split
# across chunks does not match and goes to the slow path's state machine.
_T = "[^\x00-\x1f\x7f-\x9f]"  # a printable character
_P = "[0-9;:]*+"  # CSI parameters (possessive: no backtracking into them)
_SGRS = f"{_P}(?:m(?:\x1b\\(B)?\x1b\\[{_P})*"  # SGR parameters, several SGRs in a row
TOKEN = re.compile(
    f"({_T}+)(\r\n)?"  # 1: text, 2: followed by CR LF
    # CSI sequences share their prefix (scanned once), the most frequent first.
    "|\x1b(?:\\[(?:"
    # 3: SGR (or several in a row: "0m\x1b[31", maybe with G0 designated ASCII between them:
    # "39m\x1b(B\x1b[", as ncurses' sgr0 does), 4: text after it (or '')
    f"({_SGRS})m({_T}*)"
    # 5: the parameters of the others, scanned once; each alternative then starts with its
    # final byte, which the regex engine tells apart without scanning the parameters again
    f"|({_P})(?:"
    f"H({_T}*)"  # 6: CUP, and the text after it (or '')
    "|([@A-GILMPSTXZ`adehlt])"  # 7: edits, moves, modes, window ops (EDITS)
    "|([fKJ])"  # 8: HVP, EL, ED
    "|(b)"  # 9: REP (repeat the last character)
    f"|r((?:\x1b\\[{_P}H)?)"  # 10: DECSTBM, and a CUP after it (or '')
    ")"
    "|\\?25(?:[hl]\x1b\\[\\?25)*([hl])"  # 11: cursor shown / hidden (DECTCEM; the last)
    f"|\\?({_P})([hl])"  # 12, 13: DEC private modes set / reset (see QUIET_MODES)
    # 14, 15: designate G0 / G1, 16: an SGR after it (as in ncurses' sgr0), 17: text
    f")|([()])([0-9A-OQ-WYZ])(?:\x1b\\[({_SGRS})m)?({_T}*)"
    "|([78DEM=>]))"  # 18: DECSC, DECRC, IND, NEL, RI, DECKPAM, DECKPNM
    "|(\r\n)"  # 19: CR LF
    "|(\r)"  # 20: CR
    "|([\n\x0b\x0c])"  # 21: LF, VT, FF (all line feeds)
    "|([\x00-\x06\x10-\x1a\x1c-\x1f\x7f]+)"  # 22: C0 controls that do nothing here
    "|(\x07+|[\x08\t\x0e\x0f])"  # 23: the rarer ones: BEL (a run rings once), BS, HT, SO, SI
)
# (At most 24 groups: a match object then fits CPython's small-object allocator, which is
# measurably cheaper per token than the C library's malloc; a unit test holds the line.)

# DEC private modes that change no cells, nor the cursor's place, the margins, origin or
# the screen in use: set and reset in place through the screen's own ``set_mode`` /
# ``reset_mode`` (autowrap, 7, is read back afterwards); any other mode ends the run.
QUIET_MODES = frozenset(
    {1, 7, 9, 12, 25, 66, 1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1015, 1016}
    | {1034, 1035, 1036, 1039, 2004, 2026}
)

# CSI finals interpreted in place (cursor moves) while no left/right margins can apply.
MOVES = frozenset("ABCDG`d")

# CSI finals handed to the screen's own method (named by the parser's table, so both paths
# call the same code): 2 when it changes cells anywhere (the pending rows are settled
# first), 1 when only on the cursor's row (that row is), 0 when it changes no cells.
EDITS: dict[str, int] = {
    **dict.fromkeys("LMST", 2),  # (all rows settled first)
    **dict.fromkeys("@P", 1),  # ICH, DCH: the cursor's row alone
    # (SM/RM: the ANSI modes touch no cells (insert mode ends the run: see ``usable``);
    # XTWINOPS: reports and the title stack, never a resize)
    **dict.fromkeys("ABCDEFGIZ`adehlt", 0),
}

SD = ("scroll_down", 1)  # CSI T with one parameter (more: mouse tracking, not here)
DECTCEM_KEY = (True, 25)  # DECTCEM's key in ``TermScreen.other_modes``


__all__ = ["DECTCEM_KEY", "EDITS", "MOVES", "QUIET_MODES", "SD", "TOKEN"]
