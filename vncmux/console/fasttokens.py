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
    f"|({_P})H({_T}*)"  # 5: CUP, 6: text after it (or '')
    f"|({_P})([@A-GILMPSTXZ`adehlt])"  # 7, 8: edits, moves, modes, window ops (EDITS)
    f"|({_P})([fKJ])"  # 9, 10: HVP, EL, ED
    "|\\?25(?:[hl]\x1b\\[\\?25)*([hl])"  # 11: cursor shown / hidden (DECTCEM; the last)
    f"|({_P})b"  # 12: REP (repeat the last character)
    f"|({_P})r((?:\x1b\\[{_P}H)?)"  # 13: DECSTBM, 14: a CUP after it (or '')
    f"|\\?({_P})([hl])"  # 15, 16: DEC private modes set / reset (see QUIET_MODES)
    # 17, 18: designate G0 / G1, 19: an SGR after it (as in ncurses' sgr0), 20: text
    f")|([()])([0-9A-OQ-WYZ])(?:\x1b\\[({_SGRS})m)?({_T}*)"
    "|([78DEM=>]))"  # 21: DECSC, DECRC, IND, NEL, RI, DECKPAM, DECKPNM
    "|(\r\n)"  # 22: CR LF
    "|(\r)"  # 23: CR
    "|([\n\x0b\x0c])"  # 24: LF, VT, FF (all line feeds)
    "|(\x08)"  # 25: BS
    "|(\t)"  # 26: HT
    "|([\x00-\x06\x10-\x1a\x1c-\x1f\x7f]+)"  # 27: C0 controls that do nothing here
    "|(\x07+)"  # 28: BEL (a run of them rings once)
    "|([\x0e\x0f])"  # 29: SO, SI
)

# DEC private modes that change no cells, nor the cursor's place, the margins, origin or
# the screen in use: set and reset in place through the screen's own ``set_mode`` /
# ``reset_mode`` (autowrap, 7, is read back afterwards); any other mode ends the run.
QUIET_MODES = frozenset(
    {1, 7, 9, 12, 25, 66, 1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1015, 1016}
    | {1034, 1035, 1036, 1039, 2004}
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
