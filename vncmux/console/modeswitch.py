"""The terminal's modes: SM/RM and DECSET/DECRESET, XTSAVE/XTRESTORE, the alternate
screens, DECCOLM, and the soft reset (DECSTR) and conformance level (DECSCL).

:class:`ModesMixin` is part of :class:`~vncmux.console.screen.TermScreen`.  Modes that
change what a key or the mouse sends live in the shared :class:`~vncmux.console.modes.Modes`
record; modes that change nothing shown are remembered so that DECRQM can report them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from pyte import modes as mo
from pyte.charsets import LAT1_MAP
from pyte.screens import StaticDefaultDict

from vncmux.console.cells import DEFAULT_CELL
from vncmux.console.screenbase import ScreenBase


class ModesMixin(ScreenBase):
    """Mode switches of :class:`~vncmux.console.screen.TermScreen`."""

    # -- soft reset and conformance level ---------------------------------------------

    def soft_reset(self) -> None:
        """DECSTR (CSI ! p): modes, margins, character sets and attributes to their
        defaults, the saved cursor forgotten; the screen and the cursor stay (xterm keeps
        autowrap as it was)."""
        self.mode.add(mo.DECTCEM)
        self.reverse_wrap = False
        self.iso_protection = False
        self.mode.discard(mo.IRM)
        self.mode.discard(mo.DECOM)
        self.modes.app_cursor = False
        self.modes.app_keypad = False
        self.margins = None
        self.set_lrmm(False)
        self.g0_charset = self.g1_charset = LAT1_MAP
        self.charset = 0
        self.cursor.attrs = DEFAULT_CELL
        self.cursor.hidden = False
        self._saved.pop(self.in_alt, None)

    def set_conformance(self, level: int = 0, c1: int = 0) -> None:
        """DECSCL (CSI Pl ; Pc " p): the level (61-65) is remembered; a soft reset."""
        if 61 <= level <= 65:
            self.conformance = min(level, 64)  # a VT420 goes no higher
            self.soft_reset()

    # -- modes -----------------------------------------------------------------------

    def set_mode(self, *modes: int, **kwargs: Any) -> None:
        self._modes(modes, bool(kwargs.get("private")), True)

    def reset_mode(self, *modes: int, **kwargs: Any) -> None:
        self._modes(modes, bool(kwargs.get("private")), False)

    def _modes(self, modes: Sequence[int], private: bool, on: bool) -> None:
        m = self.modes
        rest: list[int] = []
        for mode in modes:
            self.note_mode(mode, private, on)
        if not private:
            for mode in modes:
                if mode == 20:
                    m.newline_mode = on
                    rest.append(mode)
                elif mode == 4:
                    rest.append(mode)
        else:
            for mode in modes:
                if mode == 1:
                    m.app_cursor = on
                elif mode in (9, 1000, 1002, 1003):
                    m.mouse_tracking = mode if on else 0  # xterm: any reset turns it off
                elif mode == 1006:
                    m.mouse_sgr = on
                elif mode == 2004:
                    m.bracketed_paste = on
                elif mode == 5:
                    if self.reverse_screen != on:
                        self.reverse_screen = on
                        self.dirty.update(range(self.lines))
                elif mode in (47, 1047, 1049):
                    self._alternate(mode, on)
                elif mode == 1048:
                    if on:
                        self.save_cursor()
                    else:
                        self.restore_cursor()
                elif mode in (6, 7, 25):
                    rest.append(mode)
                elif mode == 69:
                    self.set_lrmm(on)
                elif mode == 66:
                    m.app_keypad = on
                elif mode in (45, 1045):
                    self.reverse_wrap = on
                elif mode == 3 and self.other_modes.get((True, 40), False):
                    self._column_mode()
                # DECCOLM (3) is ignored on purpose, as xterm does by default: a remote
                # program must not resize every viewer's screen.
        if rest:
            if on:
                super().set_mode(*rest, private=private)
            else:
                super().reset_mode(*rest, private=private)

    def save_modes(self, *modes: int, **kwargs: Any) -> None:
        """XTSAVE (CSI ? Pm s): remember the DEC private modes listed (bounded)."""
        for mode in modes[:32]:
            state = self.mode_state(mode, True)
            if state in (1, 2):
                self.saved_modes[mode] = state == 1

    def restore_modes(self, *modes: int, **kwargs: Any) -> None:
        """XTRESTORE (CSI ? Pm r): set the DEC private modes listed as they were saved."""
        for mode in modes[:32]:
            on = self.saved_modes.get(mode)
            if on is not None:
                self._modes([mode], True, on)

    def _column_mode(self) -> None:
        """DECCOLM, when allowed (mode 40): as xterm, the screen is cleared, the margins
        reset and the cursor goes home; the column count stays (a program must not resize
        every viewer's screen).  DECNCSM (mode 95, "no clear") is a VT510's: a VT420, which
        this terminal is, clears whatever it says (as xterm set up as one)."""
        self.erase_in_display(2)
        self.margins = None
        self.lr_margins = None
        self.cursor.x = self.cursor.y = 0

    def _alternate(self, mode: int, on: bool) -> None:
        """Modes 47, 1047, 1049: the alternate screen (1049 also saves/restores the cursor)."""
        if on:
            if mode == 1049:
                self._alt_saved = self._savepoint()
            if not self.in_alt:
                self._main_buffer = self.buffer
                alt = self._alt_store
                if alt is None:
                    alt = defaultdict(lambda: StaticDefaultDict(DEFAULT_CELL))
                self.buffer = alt
                self.in_alt = True
            if mode == 1049:
                self.buffer.clear()
        else:
            if self.in_alt and self._main_buffer is not None:
                if mode == 1047:
                    self.buffer.clear()  # 1047 clears the alternate screen on leaving
                self._alt_store = self.buffer  # 47 keeps it, as xterm
                self.buffer = self._main_buffer
                self._main_buffer = None
                self.in_alt = False
            if mode == 1049 and self._alt_saved is not None:
                self._restore(self._alt_saved)
        self.dirty.update(range(self.lines))


__all__ = ["ModesMixin"]
