"""The status line: one row drawn below the terminal, outside its cells.

It says who holds the keyboard (``vncmux.keyboard``: "shared", "free", or the holder's
kind and address) and the device's state (connected / reconnecting), and for a few
seconds a notice: a viewer whose input was refused is told why, and a takeover names who
took the keyboard from whom, so the previous holder sees it.  Every viewer sees the same
line (``--status-line``; on by default with ``--input-policy exclusive``).

The text is made by pure functions (``keyboard_text``, ``layout``, ``status_cells``) so a
test can draw the line it expects with the console's own renderer; ``StatusLine`` follows
the lock and the device and hands the display a new line when it changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from vncmux.console.cells import Cell
from vncmux.events import Client
from vncmux.hub import Hub
from vncmux.keyboard import describe

#: Seconds a notice (input refused, a takeover) stays on the line.
NOTICE_SECONDS = 5.0
#: The key combination a VNC viewer takes the keyboard with, as the line names it...
TAKEOVER_KEYS = "Ctrl+Alt+T"
#: ... and its keysyms ('t', 'T').
_TAKEOVER_KEYSYMS = (0x74, 0x54)

_PLAIN = Cell(" ", "black", "white")
_NOTICE = Cell(" ", "brightwhite", "blue", bold=True)


class Modifiers(Protocol):
    @property
    def ctrl(self) -> bool: ...
    @property
    def alt(self) -> bool: ...


def is_takeover_key(keysym: int, held: Modifiers) -> bool:
    """Is this key, with these modifiers held, Ctrl+Alt+T?"""
    return keysym in _TAKEOVER_KEYSYMS and held.ctrl and held.alt


def keyboard_text(exclusive: bool, holder: Client | None) -> str:
    """The left part of the line: who may type."""
    if not exclusive:
        return "keyboard: shared"
    if holder is None:
        return "keyboard: free (the first to type takes it)"
    return f"keyboard: {describe(holder)} ({TAKEOVER_KEYS} takes it)"


def device_text(up: bool) -> str:
    """The right part of the line: the device's state."""
    return "device: connected" if up else "device: reconnecting"


def refused_notice(client: Client, holder: Client | None) -> str:
    """What the line says when ``client``'s input was dropped (the holder first: on a
    narrow console the end is cut)."""
    who = describe(holder) if holder is not None else "another client"
    return f"{who} has the keyboard: input from {describe(client)} dropped"


def takeover_notice(client: Client, previous: Client | None) -> str:
    """What the line says when ``client`` took the keyboard over."""
    if previous is None:
        return f"{describe(client)} took the keyboard"
    return f"{describe(client)} took the keyboard from {describe(previous)}"


def layout(left: str, right: str, cols: int) -> str:
    """``left`` and ``right`` on one line of exactly ``cols`` characters: right-aligned
    when both fit, otherwise one after the other and cut at the edge."""
    left, right = _printable(left), _printable(right)
    if len(left) + len(right) + 3 <= cols:
        return f" {left}".ljust(cols - len(right) - 1) + right + " "
    return f" {left} | {right}"[:cols].ljust(cols)


def status_cells(text: str, notice: bool = False) -> list[Cell]:
    """The cells the renderer draws for ``text`` (one cell a character)."""
    attrs = _NOTICE if notice else _PLAIN
    return [attrs._replace(data=ch) for ch in text]


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in text)


class StatusLine:
    """Follows the keyboard lock and the device and shows the line (see the module
    docstring): ``hub.keyboard`` and ``hub.device``.  ``show(left, right, notice)`` is
    called whenever the line changes (the display lays it out for its width).

    Promises: a notice stays ``notice_seconds`` after the last event that set it, then the
    line says who holds the keyboard again; ``update`` costs a comparison when nothing
    changed (it runs after every batch of output)."""

    def __init__(
        self,
        hub: Hub,
        clock: IReactorTime,
        show: Callable[[str, str, bool], None],
        notice_seconds: float = NOTICE_SECONDS,
    ) -> None:
        self.hub = hub
        self.keyboard = keyboard = hub.keyboard
        self._clock = clock
        self._show = show
        self.notice_seconds = notice_seconds
        self._notice: str | None = None
        self._notice_until = 0.0
        self._timer: IDelayedCall | None = None
        self._shown: tuple[str, str, bool] | None = None
        keyboard.watch(self)
        self.update()

    @property
    def line(self) -> tuple[str, str, bool]:
        """(left, right, notice) as shown now."""
        lock = self.keyboard
        right = device_text(self.hub.device is not None)
        if self._notice is not None:
            return (self._notice, right, True)
        return (keyboard_text(lock.exclusive, lock.holder), right, False)

    def update(self) -> None:
        """Show the line if it changed (the device's state is read here)."""
        line = self.line
        if line != self._shown:
            self._shown = line
            self._show(*line)

    # -- what the keyboard lock tells us ---------------------------------------------------

    def keyboardChanged(self) -> None:
        self.update()

    def inputRefused(self, client: Client) -> None:
        self._notify(refused_notice(client, self.keyboard.holder))

    def takenOver(self, client: Client, previous: Client | None) -> None:
        self._notify(takeover_notice(client, previous))

    def _notify(self, text: str) -> None:
        self._notice = text
        self._notice_until = self._clock.seconds() + self.notice_seconds
        if self._timer is None:
            self._timer = self._clock.callLater(self.notice_seconds, self._expire)
        self.update()

    def _expire(self) -> None:
        self._timer = None
        left = self._notice_until - self._clock.seconds()
        if left > 0:  # renewed meanwhile: one timer, re-armed for what remains
            self._timer = self._clock.callLater(left, self._expire)
            return
        self._notice = None
        self.update()

    def stop(self) -> None:
        """Stop following the lock (the console is going away)."""
        self.keyboard.unwatch(self)
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
