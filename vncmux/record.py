"""The recording (``--record FILE``): the device's output as an asciicast v2 file.

asciicast v2 is what ``asciinema play`` plays and asciinema.org takes as is: a header line
(a JSON object: version 2, width, height, timestamp, title) then one JSON array per event,
``[seconds since the start, type, text]``.  Types written here: ``"o"`` the device's
output, ``"i"`` input (with ``--record-input``), ``"m"`` markers (a client attached or
left, the device came or went, a BREAK, the keyboard lock changed hands: the text says
which), ``"r"`` the console was resized (``"COLSxROWS"``).

The format wants text; a device sends bytes, maybe invalid in its encoding, maybe with a
multibyte character cut across two reads.  An incremental decoder (the console's encoding,
invalid bytes replaced by U+FFFD) keeps the tail of an unfinished character for the next
read, so no character is split across events and every event is valid UTF-8 JSON.

Each start makes a new recording: the file is replaced (``%`` patterns in its name are
expanded with ``strftime`` in UTC, so ``rec-%Y%m%d-%H%M%S.cast`` keeps every run).

The recording is a hub backend that never blocks the device: events are collected in
memory and written in one ``write`` a few times a second (and when the buffer passes
``FLUSH_BYTES``); a write error is logged once and the events of that write are lost
(``vncmux.audit.AppendFile``).
"""

from __future__ import annotations

import codecs
import json
import os
import time
from collections.abc import Callable
from typing import IO, Any

from twisted.application.service import Service
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from vncmux.audit import AppendFile
from vncmux.console.interfaces import ChangeListener
from vncmux.events import (
    ATTACH,
    BREAK,
    DETACH,
    DEVICE_DOWN,
    DEVICE_UP,
    INPUT,
    LOCK,
    TAKEOVER,
    UNLOCK,
    Event,
    IEventListener,
)
from vncmux.interfaces import IBackend

log = Logger()

#: How often buffered events are written, and the buffer size that writes at once.
FLUSH_INTERVAL = 0.25
FLUSH_BYTES = 256 * 1024

#: Events that become markers, and how the marker names them.
MARKERS = {
    ATTACH: "attach",
    DETACH: "detach",
    DEVICE_UP: "device up",
    DEVICE_DOWN: "device down",
    BREAK: "BREAK",
    LOCK: "keyboard locked by",
    UNLOCK: "keyboard unlocked",
    TAKEOVER: "keyboard taken over by",
}


def open_new(path: str) -> IO[bytes]:
    """``path`` opened for writing from the start (truncated), unbuffered, mode 0600."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
    return os.fdopen(os.open(path, flags, 0o600), "wb", buffering=0)


def expand_path(path: str, now: float) -> str:
    """``path`` with its ``strftime`` patterns filled in for ``now`` (UTC)."""
    return time.strftime(path, time.gmtime(now)) if "%" in path else path


def header(width: int, height: int, timestamp: float, title: str) -> str:
    """The asciicast v2 header line (with its newline)."""
    value = {
        "version": 2,
        "width": width,
        "height": height,
        "timestamp": int(timestamp),
        "title": title,
        "env": {"TERM": "xterm-256color"},
    }
    return json.dumps(value, ensure_ascii=False) + "\n"


def event_line(elapsed: float, kind: str, text: str) -> str:
    """One event line: ``[elapsed, kind, text]`` (elapsed to the microsecond)."""
    return json.dumps([round(max(0.0, elapsed), 6), kind, text], ensure_ascii=False) + "\n"


def marker_text(event: Event) -> str:
    """What a marker says: the event, the client, and the detail, e.g.
    'attach vnc 127.0.0.1:5555 (view-only)' or 'device down: EOF'."""
    text = MARKERS.get(event.name, event.name)
    if event.client is not None:
        text += f" {event.client} ({event.client.credential})"
    if event.previous is not None:
        text += f" from {event.previous}"
    if event.detail:
        text += f": {event.detail}"
    return text


class OutputDecoder:
    """Device bytes → text, incrementally: invalid bytes become U+FFFD, and the start of a
    character whose end has not arrived yet is kept for the next call."""

    def __init__(self, encoding: str = "utf-8") -> None:
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="replace")

    def decode(self, data: bytes) -> str:
        return str(self._decoder.decode(data))

    def flush(self) -> str:
        """What is held back, as text (replacement characters): the stream was cut."""
        return str(self._decoder.decode(b"", final=True))


@implementer(IBackend, IEventListener)
class Recording:
    """One console's recording: a hub backend for the output, a listener on its event bus
    for markers and input, and told of resizes by ``resized``.

    Promises: the header is the first line; every line is one JSON value; output events
    are the device's bytes decoded as described in the module docstring, in order;
    nothing here raises into the hub or blocks it.
    """

    stallable = False
    label = "recording"

    def __init__(
        self,
        path: str,
        clock: IReactorTime,
        *,
        width: int = 80,
        height: int = 24,
        title: str = "vncmux",
        encoding: str = "utf-8",
        with_input: bool = False,
        opener: Callable[[str], IO[bytes]] = open_new,
        wall: Callable[[], float] | None = None,
    ) -> None:
        self._clock = clock
        self._wall = wall or clock.seconds
        path = expand_path(path, self._wall())
        self.file = AppendFile(path, "Recording", opener)
        self.label = f"recording {path}"
        self.size = (width, height)
        self.title = title
        self.encoding = encoding
        self.with_input = with_input
        self._decoder = OutputDecoder(encoding)
        self._start = 0.0
        self._lines: list[str] = []
        self._pending = 0
        self._timer: IDelayedCall | None = None
        self._header = ""  # until it has been written: it goes first, whatever happens
        self.started = False

    # -- life -------------------------------------------------------------------------

    def start(self) -> None:
        """Write the header (the clock starts now)."""
        self._start = self._clock.seconds()
        self.started = True
        self.file.open()
        self._header = header(self.size[0], self.size[1], self._wall(), self.title)
        self.flush()

    def stop(self) -> None:
        """What the decoder holds back and every buffered event to the file; close it."""
        if not self.started:
            return
        self._output(self._decoder.flush())
        self.started = False
        self.flush()
        self.file.close()

    def flush(self) -> None:
        """Write the buffered events now (one ``write``)."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if not self._lines and not self._header:
            return
        data = (self._header + "".join(self._lines)).encode("utf-8")
        self._lines.clear()
        self._pending = 0
        if self.file.write(data):
            self._header = ""

    def _add(self, line: str) -> None:
        self._lines.append(line)
        self._pending += len(line)
        if self._pending >= FLUSH_BYTES:
            self.flush()
        elif self._timer is None:
            self._timer = self._clock.callLater(FLUSH_INTERVAL, self.flush)

    def _event(self, kind: str, text: str) -> None:
        if self.started:
            self._add(event_line(self._clock.seconds() - self._start, kind, text))

    def _output(self, text: str) -> None:
        if text:
            self._event("o", text)

    # -- IBackend ---------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        self._output(self._decoder.decode(data))

    def deviceStateChanged(self, up: bool, description: str) -> None:
        """A device going away ends its last character (the marker comes from the bus)."""
        if not up:
            self._output(self._decoder.flush())

    def stalled(self) -> None:
        """Never blocked, so never stalled."""

    # -- IEventListener ----------------------------------------------------------------

    def event(self, event: Event) -> None:
        if event.name == INPUT:
            if self.with_input:
                self._event("i", event.data.decode(self.encoding, "replace"))
        elif event.name in MARKERS:
            self._event("m", marker_text(event))

    # -- resizes ----------------------------------------------------------------------

    def resized(self, cols: int, rows: int) -> None:
        """The console has a new size: an ``"r"`` event (nothing if it did not change)."""
        if (cols, rows) != self.size:
            self.size = (cols, rows)
            self._event("r", f"{cols}x{rows}")


class SizeWatch(ChangeListener):
    """A console listener telling a recording of the console's size after each change (a
    resize is followed by ``changed``)."""

    def __init__(self, console: Any, recording: Recording) -> None:
        self.console = console
        self.recording = recording

    def changed(self) -> None:
        self.recording.resized(self.console.cols, self.console.rows)


class RecordingService(Service):
    """Keeps a recording on the hub and the bus while running (named ``recording``).

    Attached to the hub when started, so it records from then on; its header says the
    console's size at that moment."""

    def __init__(
        self, recording: Recording, hub: Any, console: Callable[[], Any] | None = None
    ) -> None:
        self.setName("recording")
        self.recording = recording
        self.hub = hub
        self._console = console or (lambda: None)
        self.console: Any = None
        self._watch: SizeWatch | None = None

    def startService(self) -> None:
        Service.startService(self)
        rec = self.recording
        self.console = self._console()
        if self.console is not None:
            rec.size = (self.console.cols, self.console.rows)
            self._watch = SizeWatch(self.console, rec)
            self.console.subscribe(self._watch)
        rec.start()
        self.hub.events.subscribe(rec)
        self.hub.attach(rec)

    def stopService(self) -> None:
        Service.stopService(self)
        rec = self.recording
        self.hub.detach(rec)
        self.hub.events.unsubscribe(rec)
        if self.console is not None and self._watch is not None:
            self.console.unsubscribe(self._watch)
        rec.stop()


def makeTraceServices(
    config: Any, hub: Any, reactor: Any, console: Callable[[], Any] | None = None
) -> list[Service]:
    """The audit log and the recording ``config`` asks for, on ``hub``'s bus.  Add them
    before the device service, so the log starts with ``start`` and the first device-up.
    ``console`` returns the console once it exists (the recording's size and resizes)."""
    from vncmux import __version__
    from vncmux.audit import AuditLog, AuditService

    services: list[Service] = []
    if config.audit_log is not None:
        log.info("vncmux: audit log {path}", path=config.audit_log)
        audit = AuditLog(config.audit_log, with_input=config.audit_input, console=config.name)
        detail = f"vncmux {__version__}, device {config.device.label}"
        services.append(AuditService(audit, hub.events, detail, reactor))
    if config.record is not None:
        recording = Recording(
            config.record,
            reactor,
            title=f"vncmux: {config.device.label}",
            encoding=config.encoding,
            with_input=config.record_input,
        )
        log.info("vncmux: recording the device output to {path}", path=recording.file.path)
        services.append(RecordingService(recording, hub, console))
    return services
