"""The seams where several implementations meet: the device (frontend) and the backends.

The hub (``vncmux.hub``) only ever talks to these interfaces, which is what lets it be
tested with fakes and lets a new kind of device or backend be added without touching it.
``IPausableInput`` is optional: the backends whose input can wait (byte sockets, ptys)
provide it so the hub can stop reading them while the device is not taking input.
``ISerialLine`` is optional too: a device whose line settings a client may change (a tty,
for RFC 2217 clients); ``LineCounters`` is what it counts of the line's events.
"""

from dataclasses import dataclass

from zope.interface import Attribute, Interface


class IDevice(Interface):
    """The one console device currently open (serial port, socket, command in a pty).

    A device object stands for one *open* instance: when the device goes away the opener
    tells the hub (``Hub.deviceLost``) and later attaches a fresh object.  It is a Twisted
    push producer so the hub can pause it when a lossless backend cannot keep up.
    """

    label = Attribute("Human-readable name for logs, e.g. '/dev/ttyUSB0' or 'unix:/tmp/g.sock'.")

    def write(data: bytes) -> None:
        """Send input bytes to the device (what a user typed, a terminal reply...)."""

    def pauseProducing() -> None:
        """Stop reading from the device until ``resumeProducing``."""

    def resumeProducing() -> None:
        """Start reading from the device again."""

    def sendBreak(duration: float) -> str:
        """Send a serial BREAK (the line held at space for ``duration`` seconds, or what
        stands for it on this kind of device) after the input already written; return what
        was done, for the log ("break of 0.25 s", "IAC BREAK", "SIGINT to process group
        42").  Raise ``BreakUnsupported`` when this device cannot carry a BREAK (a raw
        socket); never block the reactor."""


class BreakUnsupported(Exception):
    """``IDevice.sendBreak``: this device cannot carry a BREAK (the message says why)."""


class IBackend(Interface):
    """One consumer of the device's output and source of its input.

    A socket connection, a log file, a pty, or the virtual console.  A backend that cannot
    take more output calls ``Hub.blocked(self)`` and later ``Hub.unblocked(self)``; the hub
    pauses the device meanwhile, so nothing is ever dropped for a backend that keeps reading.
    """

    label = Attribute("Human-readable name for logs: the peer address, a path, 'console'.")
    stallable = Attribute(
        "True when the stall timeout applies: the hub calls stalled() after the backend "
        "stayed blocked for --stall-timeout seconds.  False for in-process backends "
        "(the console) that always make progress on their own."
    )

    def write(data: bytes) -> None:
        """Bytes from the device, in order, each exactly once.  Never raises on purpose; if
        it does, the hub detaches this backend and goes on with the others."""

    def deviceStateChanged(up: bool, description: str) -> None:
        """The device came up or went down.  Byte streams ignore it (they carry only the
        device's bytes); the console shows it on screen."""

    def stalled() -> None:
        """Blocked for longer than the stall timeout: close yourself now (abort the
        connection even though its buffer is full).  The hub has already detached you."""


class IPausableInput(Interface):
    """A backend whose input can wait: the hub stops reading it while the device's write
    buffer is full, and starts again once it drained.  Nothing is lost: the peer's own
    buffers fill and its writes block, as they would on a slow serial line.

    Backends that cannot wait (the console: a viewer's keys, terminal replies) do not provide
    this; the hub bounds their input instead (``Hub.input`` returns False for what it drops).
    """

    def pauseInput() -> None:
        """Stop reading from the peer until ``resumeInput``.  A chunk already read may still
        be passed to ``Hub.input``; it is written whole."""

    def resumeInput() -> None:
        """Read from the peer again."""


class ISerialLine(Interface):
    """A device's line settings, changed by RFC 2217 clients (``vncmux.rfc2217``).

    Every setter tries the change and returns the value in effect afterwards, read back
    from the device: a setting the device refuses (a pty refuses 7 data bits and parity
    with EINVAL) leaves the old value, which is what the client is told.  None of them
    raises for a refusal, and none blocks."""

    def setBaudrate(baud: int) -> int:
        """Bits per second (0: only ask); the rate in effect."""

    def setDataSize(bits: int) -> int:
        """5-8 data bits (0: only ask); the size in effect."""

    def setParity(parity: str) -> str:
        """'N', 'O', 'E', 'M' or 'S' ('' : only ask); the parity in effect."""

    def setStopSize(stopbits: float) -> float:
        """1, 1.5 or 2 stop bits (0: only ask); the stop bits in effect."""

    def setFlowControl(flow: str) -> str:
        """'none', 'xonxoff' or 'rtscts' ('' : only ask); the flow control in effect."""

    def setModemLine(name: str, on: bool | None) -> bool:
        """'dtr' or 'rts' on or off (None: only ask); the line's state.  A device without
        modem lines (a pty: ENOTTY) remembers the state asked for and reports it."""

    def modemState() -> int | None:
        """The modem lines now, as the states of RFC 2217's modem-state byte (CTS 0x10,
        DSR 0x20, RI 0x40, CD 0x80; the delta bits are the protocol's to work out), or
        None when the device has no modem lines to read (a pty: ENOTTY)."""

    def counters() -> "LineCounters | None":
        """The line's event counts since the device was opened (modem-line transitions,
        receive errors), or None when the device does not count them (a pty).  Cheap
        enough to be read twice a second; never raises."""

    def purge(receive: bool, transmit: bool) -> None:
        """Drop what waits in the device's receive and/or transmit buffers."""


@dataclass(frozen=True)
class LineCounters:
    """What a serial line counted since it was opened (Linux: TIOCGICOUNT).  The counts
    only grow; a change between two looks is an event even when the line's state is the
    same again (a ring pulse shorter than the time between the looks)."""

    cts: int = 0  # CTS transitions
    dsr: int = 0  # DSR transitions
    ri: int = 0  # ring-indicator changes (some drivers count trailing edges only)
    cd: int = 0  # carrier-detect transitions
    overrun: int = 0  # bytes lost: the UART's FIFO or the tty's buffer overran
    parity: int = 0  # parity errors
    framing: int = 0  # framing errors
    breaks: int = 0  # BREAKs received
