"""RFC 2217's notifications, the server's side: the modem-state and line-state bytes a client
is sent when the device's lines change, and the watch that looks for the changes.

The modem-state byte holds the states of CTS 0x10, DSR 0x20, RI 0x40 and CD 0x80 in its
high nibble and, in its low nibble, what changed since the previous look: DCTS 0x01, DDSR
0x02, TERI 0x04 (the ring indicator's trailing edge: it went off) and DDCD 0x08.  The
line-state byte carries the receive errors counted since the previous look: overrun 0x02,
parity 0x04, framing 0x08, break 0x10.

``StateWatch`` is one client's.  Once COM-PORT-OPTION is agreed it sends the modem state
(through the client's SET-MODEMSTATE-MASK, 255 until it sets one) in the next reactor turn,
after the DO/WILL that agreed it, as ser2net does and as pyserial's client needs (it will
not read CTS/DSR/RI/CD before a notification came); again each time the client sets that
mask; then it looks at the device every ``MODEM_POLL_INTERVAL`` seconds and sends a
notification when a bit the mask lets through changed.  Line state goes out when an error
bit the client's SET-LINESTATE-MASK lets through is set (the mask is 0 until it sets one:
nothing is sent unasked).  A client's poll (NOTIFY-MODEMSTATE or NOTIFY-LINESTATE from it)
is answered in full: the masks filter what is sent unasked, not what is asked for.

Where the states come from:

- a tty with modem lines: TIOCMGET, and the kernel's counters (TIOCGICOUNT) so that a pulse
  shorter than the interval (a ring) still sets its delta bit, and for the line errors;
- a tty without modem lines (a pty): CTS, DSR and CD on, RI off, for ever
  (``NO_MODEM_LINES``).  It is what a null-modem cable gives a port (the far end's DTR
  wired to DSR and CD, its RTS to CTS), and it keeps scripts that wait for carrier or CTS
  before writing working; nothing can change there, so such a device is not polled;
- no device (down, being reopened): every line off, as with an unplugged adapter; the
  client is told (DDCD...) if its mask lets the change through, and told again when the
  device is back.

Nothing is polled while no client agreed COM-PORT-OPTION, while the device is down, or
while both of a client's masks are 0.  A poll finds nothing to log: only mask changes are
logged (debug).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from vncmux.interfaces import LineCounters

log = Logger()

#: Seconds between two looks at the device's modem lines (ser2net looks once a second).
MODEM_POLL_INTERVAL = 0.5

SERVER_NOTIFY_LINESTATE = 106
SERVER_NOTIFY_MODEMSTATE = 107

CTS, DSR, RI, CD = 0x10, 0x20, 0x40, 0x80
DCTS, DDSR, TERI, DDCD = 0x01, 0x02, 0x04, 0x08
STATES = CTS | DSR | RI | CD
DELTAS = DCTS | DDSR | TERI | DDCD
#: The modem state of a tty without modem lines: a null-modem cable's (see above).
NO_MODEM_LINES = CTS | DSR | CD
#: The modem state while the device is down: nothing asserted.
NO_DEVICE = 0

OVERRUN, PARITY_ERROR, FRAMING_ERROR, BREAK_DETECT = 0x02, 0x04, 0x08, 0x10

DEFAULT_MODEMSTATE_MASK = 0xFF
DEFAULT_LINESTATE_MASK = 0

# (state bit, its delta bit, its counter in LineCounters)
_LINES = ((CTS, DCTS, "cts"), (DSR, DDSR, "dsr"), (RI, TERI, "ri"), (CD, DDCD, "cd"))
_ERRORS = (
    (OVERRUN, "overrun"),
    (PARITY_ERROR, "parity"),
    (FRAMING_ERROR, "framing"),
    (BREAK_DETECT, "breaks"),
)


def _moved(before: LineCounters | None, now: LineCounters | None) -> set[str]:
    """The counters that grew between two looks (none unless both looks had counters: a
    reopened device starts again from 0)."""
    if before is None or now is None:
        return set()
    return {f.name for f in fields(LineCounters) if getattr(now, f.name) > getattr(before, f.name)}


def modemByte(
    before: int | None,
    now: int,
    countsBefore: LineCounters | None = None,
    countsNow: LineCounters | None = None,
) -> int:
    """The modem-state byte for the states ``now``, with a delta bit for each line that
    changed since the look that saw ``before`` (None: the first look, nothing changed).
    A line changed when its state differs, or when the kernel counted transitions although
    the state is back where it was (a pulse between the looks).  The ring's bit, TERI, is
    for its trailing edge only: RI went off, or pulsed."""
    now &= STATES
    if before is None:
        return now
    moved = _moved(countsBefore, countsNow)
    byte = now
    for state, delta, counter in _LINES:
        was, isNow = bool(before & state), bool(now & state)
        if was != isNow:
            changed = was if state == RI else True  # RI: only on→off is an edge to report
        else:
            changed = counter in moved
        if changed:
            byte |= delta
    return byte


def lineByte(before: LineCounters | None, now: LineCounters | None) -> int:
    """The line-state byte: the receive errors counted between two looks."""
    moved = _moved(before, now)
    return sum(bit for bit, counter in _ERRORS if counter in moved)


@dataclass(frozen=True)
class Look:
    """What one look at the device found, against the previous look."""

    modem: int  # the modem-state byte: states and deltas
    changes: int  # the bits that changed: states that differ, and the deltas
    line: int  # the line-state byte


class StateWatch:
    """One RFC 2217 client's view of the device's lines (see the module docstring).

    ``line()`` is the device's ``ISerialLine`` or None (down, or not a tty), ``up()`` says
    whether a device is open, ``send(payload)`` writes ``IAC SB 44 payload IAC SE`` (the
    escaping is done there), ``clock`` times the looks, ``peer`` names the client in logs.
    """

    def __init__(
        self,
        line: Callable[[], Any],
        up: Callable[[], bool],
        send: Callable[[bytes], None],
        clock: IReactorTime,
        peer: str,
    ) -> None:
        self._line = line
        self._up = up
        self._send = send
        self._clock = clock
        self.peer = peer
        self.modemstateMask = DEFAULT_MODEMSTATE_MASK
        self.linestateMask = DEFAULT_LINESTATE_MASK
        self.active = False  # COM-PORT-OPTION agreed, the client still here
        self._seen: int | None = None  # the states at the last look
        self._seenCounts: LineCounters | None = None
        self._static = False  # the device has neither modem lines nor counters
        self._first: IDelayedCall | None = None
        self._loop = LoopingCall(self._tick)
        self._loop.clock = clock

    @property
    def polling(self) -> bool:
        """Whether the device is being looked at every ``MODEM_POLL_INTERVAL`` seconds."""
        return bool(self._loop.running)

    # -- the client's life --------------------------------------------------------------

    def start(self) -> None:
        """COM-PORT-OPTION was agreed: the first notification goes out in the next reactor
        turn (after the answer that agreed it), then the device is watched."""
        if self.active:
            return
        self.active = True
        self._first = self._clock.callLater(0, self._firstReport)

    def stop(self) -> None:
        """The client left (or refused the option after all): no more looks."""
        self.active = False
        if self._first is not None and self._first.active():
            self._first.cancel()
        self._first = None
        self._schedule()

    def deviceChanged(self, up: bool) -> None:
        """The device went down (every line off, told as a change) or came back (looked
        at now, told as a change, and watched again)."""
        if not self.active or self._first is not None:
            return  # the first report, still to come, will tell the state
        self._static = False
        self._notify(self._look())
        self._schedule()

    # -- the client's commands ----------------------------------------------------------

    def setModemstateMask(self, mask: int) -> None:
        """SET-MODEMSTATE-MASK (already acknowledged): the current state, through the new
        mask, follows at once, as ser2net sends it."""
        self._logMask("modem-state", self.modemstateMask, mask)
        self.modemstateMask = mask
        if self._first is None:
            self._notify(self._look(), forced=True)
        self._schedule()

    def setLinestateMask(self, mask: int) -> None:
        """SET-LINESTATE-MASK (already acknowledged)."""
        self._logMask("line-state", self.linestateMask, mask)
        self.linestateMask = mask
        self._schedule()

    def pollModem(self) -> None:
        """NOTIFY-MODEMSTATE from the client: answered with the whole byte; line-state
        news found by the same look goes out as its mask says."""
        look = self._look()
        self._send(bytes((SERVER_NOTIFY_MODEMSTATE, look.modem)))
        self._notify(look, modem=False)

    def pollLine(self) -> None:
        """NOTIFY-LINESTATE from the client: as ``pollModem``, the other way round."""
        look = self._look()
        self._send(bytes((SERVER_NOTIFY_LINESTATE, look.line)))
        self._notify(look, line=False)

    # -- looking ------------------------------------------------------------------------

    def _look(self) -> Look:
        counts: LineCounters | None = None
        if not self._up():
            state = NO_DEVICE
        else:
            line = self._line()
            found = line.modemState() if line is not None else None
            counts = line.counters() if line is not None else None
            self._static = found is None and counts is None
            state = NO_MODEM_LINES if found is None else found & STATES
        before, countsBefore = self._seen, self._seenCounts
        modem = modemByte(before, state, countsBefore, counts)
        changes = 0 if before is None else ((before ^ state) & STATES) | (modem & DELTAS)
        self._seen, self._seenCounts = state, counts
        return Look(modem, changes, lineByte(countsBefore, counts))

    def _notify(
        self, look: Look, forced: bool = False, modem: bool = True, line: bool = True
    ) -> None:
        """Send what ``look`` found that the masks let through (``forced``: the modem state
        even if nothing changed)."""
        if modem and (forced or look.changes & self.modemstateMask):
            self._send(bytes((SERVER_NOTIFY_MODEMSTATE, look.modem & self.modemstateMask)))
        if line and look.line & self.linestateMask:
            self._send(bytes((SERVER_NOTIFY_LINESTATE, look.line & self.linestateMask)))

    def _firstReport(self) -> None:
        self._first = None
        self._notify(self._look(), forced=True)
        self._schedule()

    def _tick(self) -> None:
        self._notify(self._look())
        if self._static:
            self._schedule()  # nothing there can change: stop looking

    def _schedule(self) -> None:
        """Poll exactly while it can find something the client wants."""
        wanted = (
            self.active
            and self._first is None
            and self._up()
            and not self._static
            and bool(self.modemstateMask or self.linestateMask)
        )
        if wanted and not self._loop.running:
            self._loop.start(MODEM_POLL_INTERVAL, now=False).addErrback(self._failed)
        elif not wanted and self._loop.running:
            self._loop.stop()

    def _failed(self, failure: Failure) -> None:
        log.failure(
            "RFC 2217 client {peer}: watching the modem lines failed", failure, peer=self.peer
        )

    def _logMask(self, what: str, old: int, new: int) -> None:
        log.debug(
            "RFC 2217 client {peer} set its {what} mask to {new:#04x} (was {old:#04x})",
            peer=self.peer,
            what=what,
            new=new,
            old=old,
        )


__all__ = [
    "MODEM_POLL_INTERVAL",
    "NO_DEVICE",
    "NO_MODEM_LINES",
    "Look",
    "StateWatch",
    "lineByte",
    "modemByte",
]
