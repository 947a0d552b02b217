"""The audit log (``--audit-log FILE``): one JSON object per console event, one per line.

Each line says when (UTC, ISO 8601 with milliseconds), what (``start``, ``attach``,
``detach``, ``input``, ``device-up``...: ``vncmux.events.EVENTS``) and who (the client's
kind, address and credential class); ``input`` lines give the byte count, and with
``--audit-input`` the bytes themselves, escaped (passwords are typed on consoles: that is
why it is off by default, and why the file is created mode 0600).

The file is written one whole line per event with a single unbuffered ``write``, so every
event is on disk (in the kernel's hands) when ``event`` returns and nothing waits in a
buffer.  A write error (a full disk) is logged once, the event is lost and counted, and
writing resumes when the file takes lines again: the console never stops for its audit
log.  ``reopen`` (on SIGHUP, for logrotate) closes the file and opens the path again.

``AppendFile`` is that writing discipline on its own; the recording (``vncmux.record``)
uses it too.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime, timezone
from typing import IO, Any

from twisted.application.service import Service
from twisted.logger import Logger
from zope.interface import implementer

from vncmux.events import INPUT, START, Event, EventBus, IEventListener

log = Logger()


def open_append(path: str) -> IO[bytes]:
    """``path`` opened for appending, unbuffered, created mode 0600 if missing."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    return os.fdopen(fd, "ab", buffering=0)


class AppendFile:
    """A file that takes whole chunks and never raises: errors are logged once per episode.

    Promises: ``write(data)`` hands ``data`` to the kernel in one ``write`` call (True) or
    drops it, counted in ``lost`` (False); the first failure of an episode is logged with
    the path and the error, the first success after it is logged with how many chunks were
    lost.  A short write (the disk filled mid-chunk) counts as a failure, and the next
    chunk written starts on a fresh line so a line-oriented reader skips only the torn one.
    While the file cannot be opened, each write tries again.  ``reopen`` closes and opens
    the path anew (for logrotate).
    """

    def __init__(
        self, path: str, what: str, opener: Callable[[str], IO[bytes]] = open_append
    ) -> None:
        self.path = path
        self.what = what
        self._opener = opener
        self._file: IO[bytes] | None = None
        self._failing = False
        self._torn = False
        self.lost = 0
        self._lostThisEpisode = 0

    def open(self) -> bool:
        """Open the path (if not open); False (logged once) when it cannot be."""
        if self._file is not None:
            return True
        try:
            self._file = self._opener(self.path)
        except OSError as e:
            self._fail(f"cannot open it: {e.strerror or e}")
            return False
        return True

    def write(self, data: bytes) -> bool:
        if self._file is None and not self.open():
            self._lose()
            return False
        assert self._file is not None
        if self._torn:
            data = b"\n" + data
        try:
            written = self._file.write(data)
        except OSError as e:
            self._fail(f"cannot write: {e.strerror or e}")
            self._lose()
            return False
        if written is not None and written < len(data):
            self._torn = written > 0 or self._torn
            self._fail(f"short write ({written} of {len(data)} bytes): is the disk full?")
            self._lose()
            return False
        self._torn = False
        if self._failing:
            self._failing = False
            log.info(
                "{what} {path}: writing again; {count} record(s) were lost meanwhile",
                what=self.what,
                path=self.path,
                count=self._lostThisEpisode,
            )
            self._lostThisEpisode = 0
        return True

    def reopen(self) -> None:
        """Close and open the path again (logrotate moved the old file away)."""
        self.close()
        if self.open():
            log.info("{what} {path}: reopened", what=self.what, path=self.path)

    def close(self) -> None:
        if self._file is None:
            return
        f, self._file = self._file, None
        try:
            f.close()
        except OSError as e:
            self._fail(f"cannot close it: {e.strerror or e}")

    def _lose(self) -> None:
        self.lost += 1
        self._lostThisEpisode += 1

    def _fail(self, why: str) -> None:
        if self._failing:
            return
        self._failing = True
        log.error(
            "{what} {path}: {why}; records are lost (and counted) until it works again",
            what=self.what,
            path=self.path,
            why=why,
        )


def iso_time(seconds: float) -> str:
    """Epoch seconds as UTC ISO 8601 with milliseconds: '2026-12-07T16:40:00.123Z'."""
    stamp = datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


_ESCAPES = {0x5C: "\\\\", 0x0D: "\\r", 0x0A: "\\n", 0x09: "\\t"}


def escape_input(data: bytes) -> str:
    """Input bytes as printable ASCII, losslessly: printable ASCII as is, backslash doubled,
    CR/LF/TAB as ``\\r \\n \\t``, every other byte as ``\\xNN``."""
    out = []
    for byte in data:
        if byte in _ESCAPES:
            out.append(_ESCAPES[byte])
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


def audit_record(event: Event, with_input: bool = False, console: str | None = None) -> str:
    """One event as its JSON line (with the newline), keys in a fixed order:
    time, event, [console], [client], [bytes, [input]], [detail], [previous]."""
    record: dict[str, Any] = {"time": iso_time(event.time), "event": event.name}
    if console is not None:
        record["console"] = console
    if event.client is not None:
        record["client"] = event.client.asdict()
    if event.name == INPUT:
        record["bytes"] = len(event.data)
        if with_input:
            record["input"] = escape_input(event.data)
    if event.detail:
        record["detail"] = event.detail
    if event.previous is not None:
        record["previous"] = event.previous.asdict()
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


@implementer(IEventListener)
class AuditLog:
    """The audit log of one console: every event on its bus, one line each."""

    def __init__(
        self,
        path: str,
        *,
        with_input: bool = False,
        console: str | None = None,
        opener: Callable[[str], IO[bytes]] = open_append,
    ) -> None:
        self.file = AppendFile(path, "Audit log", opener)
        self.with_input = with_input
        self.console = console

    def event(self, event: Event) -> None:
        line = audit_record(event, self.with_input, self.console)
        self.file.write(line.encode("utf-8"))

    def reopen(self) -> None:
        self.file.reopen()

    def close(self) -> None:
        self.file.close()


class AuditService(Service):
    """Keeps an ``AuditLog`` on a console's bus while running: opens the file, writes the
    ``start`` line, reopens on SIGHUP (``vncmux.sighup``), closes on stop."""

    def __init__(self, audit: AuditLog, events: EventBus, detail: str = "", reactor: Any = None):
        self.setName("audit-log")
        self.audit = audit
        self.events = events
        self.detail = detail
        self._reactor = reactor
        self._cancelSighup: Callable[[], None] | None = None

    def startService(self) -> None:
        from vncmux.sighup import onSighup

        Service.startService(self)
        self.audit.file.open()
        self.events.subscribe(self.audit)
        self.events.emit(START, detail=self.detail)
        self._cancelSighup = onSighup(self.audit.reopen, self._reactor)

    def stopService(self) -> None:
        Service.stopService(self)
        if self._cancelSighup is not None:
            self._cancelSighup()
            self._cancelSighup = None
        self.events.unsubscribe(self.audit)
        self.audit.close()
