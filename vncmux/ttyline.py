"""A tty's line settings and modem lines, read and changed with termios and ioctls.

``TtyLine`` is the ``ISerialLine`` of an open tty device (``SerialDevice.line``), what an
RFC 2217 client changes through ``vncmux.rfc2217``.  It works on the descriptor directly
rather than through pyserial, whose reconfiguration would also reset VMIN (the device
relies on VMIN=1 to tell a hang-up from no data).  Every change is tried and then read
back, so a refusal (a pty refuses CS7 and parity with EINVAL, modem ioctls with ENOTTY)
leaves, and reports, the value in effect; a device without modem lines remembers the
DTR/RTS state asked for.  Its event counters (modem-line transitions, receive errors) are
the kernel's (TIOCGICOUNT), read for RFC 2217's notifications; a pty has none.
"""

from __future__ import annotations

import errno
import fcntl
import struct
import termios

from twisted.logger import Logger
from zope.interface import implementer

from vncmux.interfaces import ISerialLine, LineCounters

log = Logger()

#: termios speed constants by bits per second (the ones this platform has).
SPEEDS: dict[int, int] = {
    int(name[1:]): getattr(termios, name)
    for name in dir(termios)
    if name.startswith("B") and name[1:].isdigit() and int(name[1:]) > 0
}
RATES = {code: rate for rate, code in SPEEDS.items()}
SIZES = {5: termios.CS5, 6: termios.CS6, 7: termios.CS7, 8: termios.CS8}
CMSPAR = getattr(termios, "CMSPAR", 0o10000000000)
PARITY_BITS = termios.PARENB | termios.PARODD | CMSPAR
PARITIES = {
    "N": 0,
    "E": termios.PARENB,
    "O": termios.PARENB | termios.PARODD,
    "S": termios.PARENB | CMSPAR,
    "M": termios.PARENB | CMSPAR | termios.PARODD,
}
MODEM_BITS = {"dtr": termios.TIOCM_DTR, "rts": termios.TIOCM_RTS}
# RFC 2217 modem-state bits from TIOCMGET's
MODEM_STATE = (
    (termios.TIOCM_CTS, 0x10),
    (termios.TIOCM_DSR, 0x20),
    (termios.TIOCM_RI, 0x40),
    (termios.TIOCM_CD, 0x80),
)
IFLAG, CFLAG, ISPEED, OSPEED = 0, 2, 4, 5
#: Linux's serial_icounter_struct: cts dsr rng dcd rx tx frame overrun parity brk
#: buf_overrun, then 9 reserved ints.
TIOCGICOUNT = getattr(termios, "TIOCGICOUNT", 0x545D)
ICOUNT = struct.Struct("20i")


@implementer(ISerialLine)
class TtyLine:
    """The line of the tty open on ``fd`` (``label`` for logs; ``dtr``/``rts`` the
    states assumed when the tty has no modem lines: as configured, else on)."""

    def __init__(self, fd: int, label: str, dtr: bool | None = None, rts: bool | None = None):
        self.fd = fd
        self.label = label
        self.remembered = {"dtr": True if dtr is None else dtr, "rts": True if rts is None else rts}
        self._refusalsLogged: set[str] = set()

    def _attrs(self) -> list[int | list[bytes | int]]:
        return termios.tcgetattr(self.fd)

    def _change(self, what: str, edit: object) -> None:
        """tcsetattr with ``edit(attrs)`` applied; a refusal is logged once per setting."""
        try:
            attrs = self._attrs()
            edit(attrs)  # type: ignore[operator]
            termios.tcsetattr(self.fd, termios.TCSANOW, attrs)
        except (termios.error, OSError) as e:
            if what not in self._refusalsLogged:
                self._refusalsLogged.add(what)
                number = e.args[0] if e.args and isinstance(e.args[0], int) else 0
                log.warn(
                    "{label}: the device refuses to change its {what} ({why})",
                    label=self.label,
                    what=what,
                    why=errno.errorcode.get(number, str(e)),
                )

    def _cflag(self) -> int:
        return int(self._attrs()[CFLAG])  # type: ignore[arg-type]

    # -- ISerialLine ---------------------------------------------------------------------

    def setBaudrate(self, baud: int) -> int:
        code = SPEEDS.get(baud)
        if code is not None:

            def edit(a: list) -> None:  # type: ignore[type-arg]
                a[ISPEED] = a[OSPEED] = code

            self._change("baud rate", edit)
        return RATES.get(int(self._attrs()[OSPEED]), 0)  # type: ignore[arg-type]

    def setDataSize(self, bits: int) -> int:
        if bits in SIZES:

            def edit(a: list) -> None:  # type: ignore[type-arg]
                a[CFLAG] = (a[CFLAG] & ~termios.CSIZE) | SIZES[bits]

            self._change("data bits", edit)
        size = self._cflag() & termios.CSIZE
        return next((n for n, flag in SIZES.items() if flag == size), 8)

    def setParity(self, parity: str) -> str:
        if parity in PARITIES:

            def edit(a: list) -> None:  # type: ignore[type-arg]
                a[CFLAG] = (a[CFLAG] & ~PARITY_BITS) | PARITIES[parity]

            self._change("parity", edit)
        bits = self._cflag() & PARITY_BITS
        if not bits & termios.PARENB:
            return "N"
        return next((p for p, flag in PARITIES.items() if flag == bits), "N")

    def setStopSize(self, stopbits: float) -> float:
        if stopbits in (1, 1.5, 2):

            def edit(a: list) -> None:  # type: ignore[type-arg]
                if stopbits == 1:
                    a[CFLAG] &= ~termios.CSTOPB
                else:
                    a[CFLAG] |= termios.CSTOPB

            self._change("stop bits", edit)
        cflag = self._cflag()
        if not cflag & termios.CSTOPB:
            return 1.0
        return 1.5 if cflag & termios.CSIZE == termios.CS5 else 2.0

    def setFlowControl(self, flow: str) -> str:
        if flow in ("none", "xonxoff", "rtscts"):

            def edit(a: list) -> None:  # type: ignore[type-arg]
                a[CFLAG] &= ~termios.CRTSCTS
                a[IFLAG] &= ~(termios.IXON | termios.IXOFF)
                if flow == "rtscts":
                    a[CFLAG] |= termios.CRTSCTS
                elif flow == "xonxoff":
                    a[IFLAG] |= termios.IXON | termios.IXOFF

            self._change("flow control", edit)
        attrs = self._attrs()
        if int(attrs[CFLAG]) & termios.CRTSCTS:  # type: ignore[arg-type]
            return "rtscts"
        if int(attrs[IFLAG]) & termios.IXON:  # type: ignore[arg-type]
            return "xonxoff"
        return "none"

    def setModemLine(self, name: str, on: bool | None) -> bool:
        bit = struct.pack("i", MODEM_BITS[name])
        try:
            if on is not None:
                fcntl.ioctl(self.fd, termios.TIOCMBIS if on else termios.TIOCMBIC, bit)
            (bits,) = struct.unpack("i", fcntl.ioctl(self.fd, termios.TIOCMGET, b"\0" * 4))
            return bool(bits & MODEM_BITS[name])
        except OSError as e:
            if "modem" not in self._refusalsLogged:
                self._refusalsLogged.add("modem")
                log.info(
                    "{label} has no modem lines ({why}): DTR/RTS requests are remembered, "
                    "not applied",
                    label=self.label,
                    why=errno.errorcode.get(e.errno or 0, str(e)),
                )
            if on is not None:
                self.remembered[name] = on
            return self.remembered[name]

    def modemState(self) -> int | None:
        try:
            (bits,) = struct.unpack("i", fcntl.ioctl(self.fd, termios.TIOCMGET, b"\0" * 4))
        except OSError:
            return None
        return sum(value for flag, value in MODEM_STATE if bits & flag)

    def counters(self) -> LineCounters | None:
        try:
            raw = fcntl.ioctl(self.fd, TIOCGICOUNT, bytes(ICOUNT.size))
        except OSError:
            return None  # a pty (ENOTTY), a driver that does not count
        cts, dsr, ri, cd, _rx, _tx, framing, overrun, parity, breaks, lost = ICOUNT.unpack(raw)[:11]
        return LineCounters(
            cts=cts,
            dsr=dsr,
            ri=ri,
            cd=cd,
            overrun=overrun + lost,
            parity=parity,
            framing=framing,
            breaks=breaks,
        )

    def purge(self, receive: bool, transmit: bool) -> None:
        queue = (
            termios.TCIOFLUSH
            if receive and transmit
            else termios.TCIFLUSH
            if receive
            else termios.TCOFLUSH
        )
        try:
            termios.tcflush(self.fd, queue)
        except termios.error:
            pass


__all__ = ["TtyLine"]
