"""The virtual console backend: the hub's bytes into the terminal emulator, in batches.

Feeding pyte on every read was what made the straightforward build slow: many tiny feeds
and a screen update per read.  Here everything that arrives during one reactor turn is
fed in one ``Terminal.feed`` on the next turn, in slices bounded by a time budget so a
flood never freezes the reactor; a bounded backlog pauses the device (through the hub)
when the console falls behind, so the console stays lossless without unbounded memory.

The terminal's speed depends a hundredfold on what it is fed (plain text through its fast
path runs at tens of MB/s, insert mode or scroll regions through pyte at tens of KB/s), so
the slice size follows the measured rate: a slice takes about half the time budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from vncmux.console.terminal import Terminal
from vncmux.events import Client
from vncmux.hub import Hub
from vncmux.interfaces import IBackend


@implementer(IBackend)
class VirtualConsole:
    """The ``vc`` backend: a :class:`Terminal` fed from the hub; ``input`` sends bytes (the
    terminal's replies, what viewers typed) back to the device through the hub.

    Promises: every byte from the hub is fed to the terminal exactly once and in order;
    bytes arriving in one reactor turn are fed together on a later turn (never from
    inside ``write``); one ``on_change`` per batch that left damage; while more than
    ``backlog_limit`` bytes wait, the hub holds the device paused, and it is released as
    soon as the backlog is drained; no single call feeds for much longer than
    ``time_budget`` seconds (the first slice of a much slower kind of output excepted:
    the slice size then adapts).
    """

    label = "console"
    stallable = False
    log = Logger()

    def __init__(
        self,
        hub: Hub,
        terminal: Terminal,
        clock: IReactorTime,
        on_change: Callable[[], None] = lambda: None,
        *,
        backlog_limit: int = 256 * 1024,
        slice_size: int = 16 * 1024,
        time_budget: float = 0.02,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hub = hub
        self.terminal = terminal
        self.clock = clock
        self.backlog_limit = backlog_limit
        self.slice_size = slice_size
        self.time_budget = time_budget
        self._timer = timer
        self.on_change = on_change
        self._backlog = bytearray()
        # Adapted to the measured feed rate; modest at first, as the rate is not known.
        self._slice = min(slice_size, 4096)
        self._call: IDelayedCall | None = None
        self._blocked = False

    # -- IBackend --------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue device output; the feed happens on a later reactor turn."""
        if not data:
            return
        self._backlog += data
        if self._call is None:
            self._call = self.clock.callLater(0, self._drain)
        if not self._blocked and len(self._backlog) > self.backlog_limit:
            self._blocked = True
            self.hub.blocked(self)

    def deviceStateChanged(self, up: bool, description: str) -> None:
        """Show (or remove) the 'device down' banner on the console's last row."""
        self.terminal.set_status(None if up else f"{description} — reconnecting")
        self.on_change()

    def stalled(self) -> None:
        """Never expected (not stallable): the console always makes progress itself."""
        self.log.info("The console was reported stalled; ignoring (it is not stallable)")

    # -- feeding -----------------------------------------------------------------------

    @property
    def backlog(self) -> int:
        """Bytes received and not yet fed."""
        return len(self._backlog)

    @property
    def blocked(self) -> bool:
        """True while this console holds the device paused."""
        return self._blocked

    def _drain(self) -> None:
        self._call = None
        start = before = self._timer()
        backlog = self._backlog
        fed = False
        while backlog:
            # Everything at once when it is small (the common case: one feed per turn),
            # otherwise slices, checking the clock between them.
            n = min(len(backlog), self._slice)
            chunk = bytes(backlog[:n])
            del backlog[:n]
            self.terminal.feed(chunk)
            fed = True
            now = self._timer()
            self._adapt(n, now - before)
            before = now
            if now - start >= self.time_budget:
                break
        if backlog:
            self._call = self.clock.callLater(0, self._drain)
        elif self._blocked:
            self._blocked = False
            self.hub.unblocked(self)
        if fed and self.terminal.has_damage:
            self.on_change()

    def _adapt(self, n: int, elapsed: float) -> None:
        """Size the next slice so that it takes about half the time budget at the rate
        just measured (only full slices tell the rate; a short tail says little)."""
        if n < self._slice and elapsed < self.time_budget / 2:
            return
        rate = n / max(elapsed, 1e-6)
        floor = min(256, self.slice_size)
        self._slice = max(floor, min(self.slice_size, int(rate * self.time_budget / 2)))

    def input(self, data: bytes, client: Client | None = None) -> None:
        """Bytes for the device (terminal replies, keys, pastes) as input from this console;
        ``client``: the viewer who typed them (None: the terminal's replies)."""
        self.hub.input(data, self, client=client)

    def close(self) -> None:
        """Stop feeding (the console is being torn down); pending bytes are dropped."""
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        self._backlog.clear()
        if self._blocked:
            self._blocked = False
            self.hub.unblocked(self)
