"""The seams where several implementations meet: the device (frontend) and the backends.

The hub (``vncmux.hub``) only ever talks to these interfaces, which is what lets it be
tested with fakes and lets a new kind of device or backend be added without touching it.
``IPausableInput`` is optional: the backends whose input can wait (byte sockets, ptys)
provide it so the hub can stop reading them while the device is not taking input.
"""

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
